//! Issue 14, client cost per command: a batch's ticks of one stream go to
//! Redis as one call of `lua/tick_append.lua` per run of ticks with the same
//! fields, not one XADD each; the entries are the ones plain XADDs would
//! leave, in order, with the fields each tick has, and a resend finds them
//! there.

mod common;

use std::fmt::Write as _;

use common::*;
use fred::prelude::*;
use tickwire_testkit::prelude::*;

/// Tick `i` of `symbol`: two ticks per millisecond (the second has the next
/// sequence number of its millisecond), bid and ask on ticks 200-259, a day
/// volume on tick 400 alone.
fn line(symbol: &str, i: u64) -> String {
    // 2024-01-01 09:15:00 IST, in NSE's continuous phase.
    let ts = 1_704_080_700_000 + i / 2;
    let mut l = format!(
        r#"{{"exchange":"NSE","symbol":"{symbol}","ts":{ts},"ltp":{}.{:02},"qty":{}"#,
        600 + i % 7,
        i % 100,
        1 + i % 5
    );
    if (200..260).contains(&i) {
        let _ = write!(l, r#","bid":{}.5,"ask":{}.75"#, 599 + i % 7, 600 + i % 7);
    }
    if i == 400 {
        l.push_str(r#","vol":123456"#);
    }
    l.push('}');
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_ticks_go_in_one_call_per_run_in_order_with_their_fields() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let n = 600;
    let mut body = String::new();
    for i in 0..n {
        for symbol in ["SBIN", "INFY"] {
            body.push_str(&line(symbol, i));
            body.push('\n');
        }
    }
    let file = write(dir.path(), "ticks.jsonl", &body);
    let cfg = config(&server, "");
    let admin = server.client(0).await.unwrap();
    let _: Value = admin
        .custom(fred::cmd!("CONFIG"), vec!["RESETSTAT"])
        .await
        .unwrap();

    let first = replay(&cfg, std::slice::from_ref(&file)).await;
    assert_eq!(first.writer.ticks_written, 2 * n);
    assert_eq!(first.writer.write_errors, 0);
    let calls = command_calls(&admin).await;
    let evalsha = calls.get("EVALSHA").copied().unwrap_or(0);
    // Each stream's ticks of a batch are at most four runs (before, in and
    // after the bid/ask ticks, the one with a volume): far fewer calls than
    // ticks, and the entries are XADDs inside them.
    assert!(
        (1..=2 * n / 10).contains(&evalsha),
        "{evalsha} EVALSHA for {} ticks: {calls:?}",
        2 * n
    );
    assert!(
        calls.get("XADD").copied().unwrap_or(0) >= 2 * n,
        "{calls:?}"
    );

    let ticks = server.client(4).await.unwrap();
    for symbol in ["SBIN", "INFY"] {
        let entries = xrange(&ticks, &format!("ticks:{symbol}")).await;
        assert_eq!(entries.len(), n as usize, "{symbol}");
        for (i, e) in entries.iter().enumerate() {
            let i = i as u64;
            let want: serde_json::Value = serde_json::from_str(&line(symbol, i)).unwrap();
            // The ID: the tick's millisecond and its place in it.
            assert_eq!(e.0, format!("{}-{}", want["ts"], i % 2), "{symbol} {i}");
            assert_eq!(field(e, "ts"), want["ts"].to_string());
            assert_eq!(
                field(e, "ltp").parse::<f64>().unwrap(),
                want["ltp"].as_f64().unwrap(),
                "{symbol} {i}"
            );
            assert_eq!(field(e, "qty"), want["qty"].to_string());
            let mut names: Vec<&str> = e.1.keys().map(String::as_str).collect();
            names.sort_unstable();
            let expected: &[&str] = if (200..260).contains(&i) {
                &["ask", "bid", "ltp", "qty", "ts"]
            } else if i == 400 {
                &["ltp", "qty", "ts", "vol"]
            } else {
                &["ltp", "qty", "ts"]
            };
            assert_eq!(names, expected, "{symbol} {i}");
            if (200..260).contains(&i) {
                assert_eq!(
                    field(e, "bid").parse::<f64>().unwrap(),
                    want["bid"].as_f64().unwrap()
                );
            }
        }
    }
    let before = snapshot(&server, &[2, 3, 4, 5]).await;

    // Without the checkpoints the state stage takes every tick as new: the
    // writer sends the same runs again and the script finds each entry there.
    let system = server.client(0).await.unwrap();
    for key in keys(&system).await {
        if key.starts_with("tickwire:checkpoint:") {
            let _: i64 = system.del(&key).await.unwrap();
        }
    }
    let second = replay(&cfg, &[file]).await;
    assert_eq!(second.writer.ticks_written, 0);
    assert_eq!(second.writer.duplicates, 2 * n);
    assert_eq!(second.writer.write_errors, 0);
    assert_eq!(snapshot(&server, &[2, 3, 4, 5]).await, before);
}
