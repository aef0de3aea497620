//! The forming-bar hash (`bars:{interval}:{symbol}:forming`) holds the bar
//! being formed, and nothing once that bar has closed and no trade of a
//! later interval has come: a consumer never reads a closed bar as forming.

mod common;

use common::*;
use tickwire_testkit::prelude::*;
use tickwire_testkit::synth::{write_ticks, SynthSpec};
use tickwire_testkit::RedisServer;

fn ticks() -> Vec<u8> {
    let mut out = Vec::new();
    write_ticks(
        &SynthSpec {
            instruments: 4,
            sessions: 1,
            ticks_per_session: 600,
            seed: 11,
            start: jiff::civil::date(2024, 1, 1),
        },
        &mut out,
    )
    .unwrap();
    out
}

/// Keys of DB 4 matching `pattern`.
async fn keys_like(server: &RedisServer, pattern: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let db4 = server.client(4).await.unwrap();
    let mut out = Vec::new();
    let mut scan = db4.scan_buffered(pattern, Some(1000), None);
    while let Some(k) = scan.next().await {
        out.push(k.unwrap().as_str().unwrap().to_string());
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_at_end_no_forming_hash_holds_a_closed_bar_in_either_engine() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.jsonl");
    std::fs::write(&file, ticks()).unwrap();
    for engine in ["inline", "lua"] {
        let server = redis();
        let cfg = config(
            &server,
            &format!("[indicators]\nengine = \"{engine}\"\n[bars]\nintervals = [\"1m\", \"5m\"]\n"),
        );
        // Left open first: every instrument's last bars are forming.
        replay_open(&cfg, std::slice::from_ref(&file)).await;
        let forming = keys_like(&server, "bars:*:forming").await;
        assert_eq!(forming.len(), 8, "{engine}: {forming:?}");
        let db4 = server.client(4).await.unwrap();
        for key in &forming {
            let bar = hgetall(&db4, key).await;
            let stream = key.trim_end_matches(":forming");
            let last = xrange(&db4, stream).await.pop().expect("closed bars");
            assert!(
                bar["ts"].parse::<i64>().unwrap() > field(&last, "ts").parse::<i64>().unwrap(),
                "{engine}: {key} holds a bar after the last closed one"
            );
        }
        // The same input again, closed at the end: nothing new is read, but
        // the forming bars close and their hashes go.
        let s = replay(&cfg, std::slice::from_ref(&file)).await;
        assert_eq!(s.writer.bars_written, 8, "{engine}");
        assert_eq!(
            keys_like(&server, "bars:*:forming").await,
            Vec::<String>::new(),
            "{engine}: a closed bar left as forming"
        );
        for key in &forming {
            let stream = key.trim_end_matches(":forming");
            let last = xrange(&db4, stream).await.pop().unwrap();
            assert_eq!(field(&last, "n").parse::<u64>().map(|n| n > 0), Ok(true));
        }
        // The checkpoints say the same: nothing forming.
        let db0 = server.client(0).await.unwrap();
        for symbol in keys_like(&server, "ticks:*").await {
            let symbol = symbol.trim_start_matches("ticks:");
            let cp: String = fred::prelude::KeysInterface::get(
                &db0,
                format!("tickwire:checkpoint:NSE:{symbol}"),
            )
            .await
            .unwrap();
            let cp: serde_json::Value = serde_json::from_str(&cp).unwrap();
            for (label, bar) in cp["bars"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (&b[0], &b[1]))
            {
                assert!(
                    bar.is_null(),
                    "{engine}: {symbol} {label} still forming in the checkpoint"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_bar_leaves_its_forming_hash_in_one_pass_as_in_two() {
    // One replay closed at the end, against the same input cut in two
    // runs (the second closing at the end): every key of DB 4 alike.
    let dir = tempfile::tempdir().unwrap();
    let body = String::from_utf8(ticks()).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let whole = write(dir.path(), "whole.jsonl", &(lines.join("\n") + "\n"));
    let cut = lines.len() / 2;
    let a = write(dir.path(), "a.jsonl", &(lines[..cut].join("\n") + "\n"));
    let b = write(dir.path(), "b.jsonl", &(lines[cut..].join("\n") + "\n"));
    let one = redis();
    replay(&config(&one, ""), &[whole]).await;
    let two = redis();
    replay_open(&config(&two, ""), &[a]).await;
    assert!(!keys_like(&two, "bars:*:forming").await.is_empty());
    replay(&config(&two, ""), &[b]).await;
    assert_eq!(snapshot(&one, &[4]).await, snapshot(&two, &[4]).await);
    assert!(keys_like(&two, "bars:*:forming").await.is_empty());
}
