//! Malformed input is counted and dead-lettered while good lines land; a
//! second replay of the same files leaves Redis as the first left it.

mod common;

use common::*;

fn mixed_file(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        dir,
        "mixed.jsonl",
        concat!(
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700100,"ltp":612.35,"qty":10}"#,
            "\n",
            "{this is not json\n",
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700200,"ltp":-1,"qty":10}"#,
            "\n",
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700300,"ltp":612.5,"qty":3}"#,
            "\n",
            r#"{"exchange":"NSE","ts":1704080700400,"ltp":612.5,"qty":3}"#,
            "\n",
            r#"{"exchange":"NSE","symbol":"INFY","ts":1704080700500,"ltp":1500.05,"qty":7}"#,
            "\n",
        ),
    )
}

#[tokio::test]
async fn malformed_lines_are_dead_lettered_and_counted_while_good_lines_land() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let s = replay(&config(&server, ""), &[mixed_file(dir.path())]).await;
    assert_eq!(
        (s.ingest.lines, s.ingest.ticks, s.ingest.rejected),
        (6, 3, 3)
    );
    assert_eq!((s.writer.ticks_written, s.writer.deadlettered), (3, 3));

    let db4 = server.client(4).await.unwrap();
    assert_eq!(xrange(&db4, "ticks:SBIN").await.len(), 2);
    assert_eq!(xrange(&db4, "ticks:INFY").await.len(), 1);

    let db0 = server.client(0).await.unwrap();
    let dead = xrange(&db0, "deadletter:tickwire").await;
    assert_eq!(dead.len(), 3);
    assert!(
        field(&dead[0], "error").starts_with("json:"),
        "{:?}",
        dead[0]
    );
    assert_eq!(field(&dead[0], "raw"), "{this is not json");
    assert!(
        field(&dead[1], "error").starts_with("invalid_tick: price"),
        "{:?}",
        dead[1]
    );
    assert!(
        field(&dead[2], "error").contains("symbol"),
        "names the missing field: {:?}",
        dead[2]
    );
    assert_ttl(&db0, "deadletter:tickwire").await;
}

#[tokio::test]
async fn raw_text_in_dead_letters_is_truncated() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{{\"junk\":\"{}\"\n", "x".repeat(5_000));
    let file = write(dir.path(), "long.jsonl", &long);
    let cfg = config(&server, "[streams]\ndeadletter_raw_bytes = 100\n");
    replay(&cfg, &[file]).await;
    let dead = xrange(&server.client(0).await.unwrap(), "deadletter:tickwire").await;
    let raw = field(&dead[0], "raw");
    assert!(raw.starts_with("{\"junk\":\"xxx"));
    assert_eq!(raw.chars().count(), 101, "100 bytes and an ellipsis");
}

#[tokio::test]
async fn replaying_twice_leaves_redis_exactly_as_after_the_first_run() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample.jsonl");
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 4,
        sessions: 2,
        ticks_per_session: 300,
        seed: 9,
        start: jiff::civil::date(2024, 1, 4),
    };
    let mut f = std::fs::File::create(&sample).unwrap();
    tickwire_testkit::synth::write_ticks(&spec, &mut f).unwrap();
    let files = [sample, mixed_file(dir.path())];
    let cfg = config(&server, "");

    let first = replay(&cfg, &files).await;
    assert_eq!(first.writer.ticks_written, 4 * 2 * 300 + 3);
    assert_eq!(first.writer.duplicates, 0);
    let before = snapshot(&server, &[0, 2, 3, 4, 5]).await;

    let second = replay(&cfg, &files).await;
    assert_eq!(second.writer.ticks_written, 0);
    // The checkpoint knows every tick already applied: each is a resend
    // (by its place in its millisecond, these ticks have no venue id).
    assert_eq!(second.state.resent, first.writer.ticks_written);
    assert_eq!(second.writer.duplicates, 0);
    assert_eq!(second.writer.deadlettered, 0);
    assert_eq!(second.writer.deadletter_duplicates, 3);
    let after = snapshot(&server, &[0, 2, 3, 4, 5]).await;
    assert_eq!(after.len(), before.len(), "same keys");
    for (b, a) in before.iter().zip(&after) {
        assert!(
            a == b,
            "{} {} changed:\nbefore {:.600}\nafter  {:.600}",
            b.0,
            b.1,
            b.2,
            a.2
        );
    }
}

const TARDIS_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

/// Tardis trade line `i` of Binance futures BTCUSDT (one trade every 10 ms).
fn tardis_line(exchange: &str, i: u64) -> String {
    let ts = 1_582_329_600_000_000 + i * 10_000;
    format!(
        "{exchange},BTCUSDT,{ts},{},{},buy,9680.{},0.{:03}",
        ts + 300_000,
        42_000_000 + i,
        i % 10,
        1 + i % 997
    )
}

/// `lines + more per line = ticks + quotes + rejected + skipped`.
fn assert_counts_add_up(s: &tickwire::RunSummary) {
    let i = &s.ingest;
    assert_eq!(
        i.lines + i.extra,
        i.ticks + i.quotes + i.rejected + i.skipped,
        "the counts add up: {i:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_exchange_is_a_malformed_line_and_the_backtest_goes_on() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![TARDIS_HEADER.to_string()];
    for i in 0..20_000 {
        lines.push(if i == 5_000 {
            tardis_line(&"x".repeat(1_000), i)
        } else {
            tardis_line("binance-futures", i)
        });
    }
    let csv = write(dir.path(), "trades.csv", &(lines.join("\n") + "\n"));
    // And a tick JSON line whose exchange is no name.
    let json = write(
        dir.path(),
        "ticks.jsonl",
        &format!(
            "{{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080700100,\"ltp\":612.35,\"qty\":10}}\n\
             {{\"exchange\":\"{}\",\"symbol\":\"SBIN\",\"ts\":1704080700200,\"ltp\":612.4,\"qty\":1}}\n\
             {{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080700300,\"ltp\":612.5,\"qty\":3}}\n",
            "n s e!"
        ),
    );
    let s = replay(&config(&server, ""), &[csv, json]).await;
    assert_counts_add_up(&s);
    assert_eq!(s.ingest.ticks, 19_999 + 2);
    assert_eq!(s.writer.ticks_written, 19_999 + 2);
    assert_eq!((s.ingest.rejected, s.writer.deadlettered), (2, 2));
    let db0 = server.client(0).await.unwrap();
    for (feed, needle) in [
        ("tardis", "exchange is not"),
        ("tickwire", "`exchange` is not"),
    ] {
        let dead = xrange(&db0, &format!("deadletter:{feed}")).await;
        assert_eq!(dead.len(), 1, "{feed}");
        let error = field(&dead[0], "error");
        assert!(
            error.starts_with("bad_value: ") && error.contains(needle),
            "{error}"
        );
        assert!(
            error.len() < 200,
            "the garbage is not repeated whole: {error}"
        );
    }
    let db4 = server.client(4).await.unwrap();
    assert_eq!(xrange(&db4, "ticks:BTCUSDT").await.len(), 19_999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_a_real_collision_dead_letters_what_it_rejected_and_its_counts_add_up() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // 2,000 futures trades with a damaged line every tenth, then a trade of
    // Binance spot's BTCUSDT (the same keys, another exchange: refused),
    // then 1,000 more of each.
    let mut lines = vec![TARDIS_HEADER.to_string()];
    let mut damaged_before = 0;
    for i in 0..3_000u64 {
        if i == 2_000 {
            lines.push(tardis_line("binance", i));
        } else if i % 10 == 3 {
            lines.push(format!("binance-futures,BTCUSDT,{i},damaged"));
            damaged_before += u64::from(i < 2_000);
        } else {
            lines.push(tardis_line("binance-futures", i));
        }
    }
    let csv = write(dir.path(), "trades.csv", &(lines.join("\n") + "\n"));
    let config = config(&server, "");
    let opts = tickwire_ingest::ReplayOptions {
        feeds: Vec::new(),
        files: vec![csv],
        format: None,
        symbol: None,
        pace: tickwire_ingest::Pace::Max,
        max_raw: 256,
        chunk_events: 64,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        close_at_end: false,
    };
    let err = tickwire::replay(&config, opts, tickwire::CancellationToken::new())
        .await
        .expect_err("two exchanges on one key stop the run");
    let s = err
        .summary()
        .expect("a stopped run has its summary")
        .clone();
    assert!(format!("{err}").contains("BTCUSDT of binance"), "{err}");
    assert_eq!(s.stopped_by, Some("writer"));
    assert_counts_add_up(&s);

    // Every damaged line before the refused trade is dead-lettered, and
    // every trade before it written; what was read after it and not
    // written is said so.
    let db0 = server.client(0).await.unwrap();
    let dead = xrange(&db0, "deadletter:tardis").await;
    assert!(
        dead.len() as u64 >= damaged_before,
        "{} of {damaged_before}",
        dead.len()
    );
    assert_eq!(dead.len() as u64, s.writer.deadlettered);
    assert_eq!(
        s.ingest.rejected,
        s.writer.deadlettered + s.rejected_not_dead_lettered()
    );
    let db4 = server.client(4).await.unwrap();
    let written = xrange(&db4, "ticks:BTCUSDT").await.len() as u64;
    assert!(written >= 2_000 - damaged_before, "{written}");
    assert_eq!(written, s.writer.ticks_written);
    assert_eq!(s.ingest.ticks, written + s.ticks_not_written());
    let shown = s.render();
    assert!(shown.contains("STOPPED: the writer failed"), "{shown}");
    if s.ticks_not_written() > 0 {
        assert!(shown.contains("ticks read not written"), "{shown}");
    }
}
