//! Trade identity: a trade the venue numbered is applied once, whatever the
//! input repeats; a trade stamped at an implausible time never reaches an
//! output.

mod common;

use common::*;
use tickwire_testkit::prelude::*;

/// Tardis-shaped trades of one instrument with ids, several per millisecond.
fn tardis_lines() -> Vec<String> {
    let t0 = 1_582_329_600_000_000i64; // µs
    (0..240i64)
        .map(|i| {
            let ts = t0 + (i / 3) * 1_500_000 + (i % 3) * 100; // 3 trades within one ms
            format!(
                "binance-futures,BTCUSDT,{ts},{},{},buy,{}.{},0.{:03}",
                ts + 300_000,
                42_000_000 + i,
                9_680 + i % 7,
                i % 10,
                1 + i % 997
            )
        })
        .collect()
}

const HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

fn file_of(dir: &std::path::Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    write(dir, name, &format!("{HEADER}\n{}\n", lines.join("\n")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_files_and_repeated_rows_apply_each_trade_once() {
    let lines = tardis_lines();
    let dir = tempfile::tempdir().unwrap();

    // The reference: every trade once, in one file.
    let reference = redis();
    let whole = file_of(dir.path(), "whole.csv", &lines);
    let r = replay(&config(&reference, ""), &[whole]).await;
    assert_eq!(r.writer.ticks_written, 240);

    // Two files overlapping by 60 trades, and a repeated row in the second.
    let server = redis();
    let first = file_of(dir.path(), "a.csv", &lines[..150]);
    let mut rest: Vec<String> = lines[90..].to_vec();
    rest.insert(10, rest[9].clone());
    let second = file_of(dir.path(), "b.csv", &rest);
    let s = replay(&config(&server, ""), &[first, second]).await;
    assert_eq!(s.writer.ticks_written, 240, "each trade written once");
    assert_eq!(
        s.state.resent, 61,
        "the overlap and the repeated row, counted"
    );

    let dbs = [2, 4, 5];
    assert_eq!(
        snapshot(&server, &dbs).await,
        snapshot(&reference, &dbs).await,
        "every key equal to the single-file run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_from_the_future_is_dead_lettered_and_the_symbol_goes_on() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // Recorded Binance frames received in 2021: the first trades claim 2100,
    // i64::MAX ms and the year 10000; the last two are real.
    let recv = 1_609_459_200_100_000_000i64;
    let frame = |t: i64, id: u64| {
        let data = format!(
            r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1609459200000,"s":"BTCUSDT","t":{id},"p":"29000.5","q":"0.5","T":{t},"m":false}}}}"#
        );
        serde_json::json!({"recv_ns": recv, "feed": "binance", "data": data}).to_string()
    };
    let body = [
        frame(4_102_444_800_000, 1),
        frame(i64::MAX, 2),
        frame(253_402_300_800_000, 3),
        frame(1_609_459_200_000, 4),
        frame(1_609_459_200_050, 5),
    ]
    .join("\n");
    let file = write(dir.path(), "poisoned.jsonl", &body);
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(s.writer.ticks_written, 2);

    let db4 = server.client(4).await.unwrap();
    let ids: Vec<String> = xrange(&db4, "ticks:BTCUSDT")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(ids, ["1609459200000-0", "1609459200050-0"]);
    let dead = xrange(&server.client(0).await.unwrap(), "deadletter:binance").await;
    assert_eq!(dead.len(), 3);
    assert!(dead
        .iter()
        .all(|e| field(e, "error").starts_with("implausible_time: ")));
    // No bar or volume session dated in the future.
    let bars = xrange(&db4, "bars:1m:BTCUSDT").await;
    assert!(bars
        .iter()
        .all(|e| field(e, "ts").parse::<i64>().unwrap() < 1_609_459_260_000));
    let db5 = server.client(5).await.unwrap();
    let sessions = keys(&db5).await;
    assert!(
        sessions
            .iter()
            .all(|k| !k.contains(":2100-") && !k.contains(":2262-")),
        "{sessions:?}"
    );
    // A second run of the same file adds nothing and loses nothing.
    let again = replay(
        &config(&server, ""),
        &[write(dir.path(), "again.jsonl", &body)],
    )
    .await;
    assert_eq!(again.writer.ticks_written, 0);
    assert_eq!(xrange(&db4, "ticks:BTCUSDT").await.len(), 2);
}

/// Epoch ms now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The entry IDs of a stream as (ms, seq).
fn ids_of(entries: &Entries) -> Vec<(u64, u64)> {
    entries
        .iter()
        .map(|(id, _)| {
            let (ms, seq) = id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_time_never_numbers_the_dead_letter_stream() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let y2051 = 2_570_785_609_579u64;
    // A Binance dump (no receive times) with a row timed in 2051 between
    // good rows, then a row that is no trade at all.
    let dump = write(
        dir.path(),
        "BTCUSDT-trades-2024-01-01.csv",
        &format!(
            "1,42000.1,0.5,21000.05,1704067200000,true,true\n\
             2,42000.2,0.5,21000.10,{y2051},true,true\n\
             3,not-a-price,0.5,0,1704067200100,true,true\n\
             4,42000.3,0.5,21000.15,1704067200200,true,true\n"
        ),
    );
    let s = replay(&config(&server, ""), std::slice::from_ref(&dump)).await;
    assert_eq!((s.writer.ticks_written, s.writer.deadlettered), (2, 2));
    let db0 = server.client(0).await.unwrap();
    let dead = xrange(&db0, "deadletter:binance").await;
    assert_eq!(
        dead.iter()
            .map(|e| field(e, "error").split(':').next().unwrap().to_string())
            .collect::<Vec<_>>(),
        ["implausible_time", "bad_number"]
    );
    // Numbered as every line without a receive time is, in order; no
    // receive time claimed.
    assert_eq!(ids_of(&dead), [(0, 1), (0, 2)]);
    assert!(
        dead.iter().all(|e| !e.1.contains_key("recv_ts")),
        "{dead:?}"
    );

    // A recording of a later process: frames received in 2024, one of a
    // trade timed in 2051, one that does not decode. Their dead letters are
    // numbered by their receive times, after the earlier ones.
    let recv_ns = 1_704_067_260_000_000_000i64;
    let frame = |t: u64| {
        format!(
            r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t},"s":"BTCUSDT","t":9,"p":"42000.4","q":"0.5","T":{t},"m":false}}}}"#
        )
    };
    let record = |recv: i64, data: &str| {
        serde_json::json!({"recv_ns": recv, "feed": "binance", "data": data}).to_string()
    };
    let rec = write(
        dir.path(),
        "rec.jsonl",
        &[
            record(recv_ns, &frame(y2051)),
            record(recv_ns + 5_000_000, "{not json"),
            // A receive time itself in 2051 numbers nothing either.
            record((y2051 * 1_000_000) as i64, "{not json either"),
        ]
        .join("\n"),
    );
    replay(&config(&server, ""), &[rec]).await;
    let dead = xrange(&db0, "deadletter:binance").await;
    let ids = ids_of(&dead);
    assert_eq!(ids.len(), 5, "{dead:?}");
    assert_eq!(ids[2], (1_704_067_260_000, 0));
    assert_eq!(ids[3], (1_704_067_260_005, 0));
    assert_eq!(field(&dead[2], "recv_ts"), "1704067260000");
    // The one without a plausible receive time goes after the last entry.
    assert_eq!(ids[4], (1_704_067_260_005, 1));
    assert!(!dead[4].1.contains_key("recv_ts"));
    assert!(ids.iter().all(|(ms, _)| *ms < now_ms()), "{ids:?}");

    // A later live-like dead letter (received now) still lands after them,
    // and a second replay of the dump adds nothing.
    let again = replay(&config(&server, ""), &[dump]).await;
    assert_eq!(again.writer.deadlettered, 0);
    assert_eq!(again.writer.deadletter_duplicates, 2);
    assert_eq!(xrange(&db0, "deadletter:binance").await.len(), 5);
}
