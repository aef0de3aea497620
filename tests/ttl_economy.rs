//! Issue 14, commands per tick: a key's TTL is set at its first write and
//! refreshed once per interval, not with every batch, and still no key
//! tickwire writes is ever left without one, also after a Redis restart
//! that lost (or someone deleted) keys tickwire had set a TTL on.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use fred::prelude::*;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::RedisServer;

async fn reset_stats(client: &Client) {
    let _: Value = client
        .custom(fred::cmd!("CONFIG"), vec!["RESETSTAT"])
        .await
        .unwrap();
}

/// Every key of DBs 0-8 with a TTL of -1 (none) or -2 (gone while read).
async fn keys_without_ttl(server: &RedisServer) -> Vec<(u8, String, i64)> {
    let mut out = Vec::new();
    for db in 0..=8u8 {
        let client = server.client(db).await.unwrap();
        for key in keys(&client).await {
            let t = ttl(&client, &key).await;
            if t <= 0 {
                out.push((db, key, t));
            }
        }
    }
    out
}

async fn total_keys(server: &RedisServer) -> u64 {
    let mut n = 0;
    for db in 0..=8u8 {
        let client = server.client(db).await.unwrap();
        let size: u64 = client.dbsize().await.unwrap();
        n += size;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gets_one_expire_not_one_per_batch_and_every_key_has_a_ttl() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks.jsonl");
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 4,
        sessions: 1,
        ticks_per_session: 3_000,
        seed: 7,
        start: "2024-01-01".parse().unwrap(),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let ticks = tickwire_testkit::synth::write_ticks(&spec, &mut out).unwrap();
    drop(out);
    // Small batches: many of them, each touching every instrument's keys.
    // The heartbeat's own EXPIREs (one a beat) beside the lanes' would make
    // the count depend on how long the run takes: a beat at start and one
    // at the end only.
    let cfg = config(
        &server,
        "[writer]\nbatch_size = 40\n[heartbeat]\ninterval_ms = 60000\nttl_secs = 120\n",
    );
    let client = server.client(0).await.unwrap();
    reset_stats(&client).await;
    let s = replay(&cfg, &[path]).await;
    assert_eq!(s.writer.ticks_written, ticks);
    let calls = command_calls(&client).await;
    let expires = calls.get("EXPIRE").copied().unwrap_or(0);
    let held = total_keys(&server).await;
    let batches = ticks / 40;
    assert!(batches >= 250, "{batches} batches");
    // Before, each batch sent an EXPIRE for every key it wrote (about ten
    // per instrument): thousands here. Now each key gets one, at its first
    // write (the refresh interval, 60 s, does not pass in this test). A
    // forming-bar hash deleted after its bar closed (EXPIRE 0) and made
    // again by the next bar costs two more.
    let cleared = s.writer.forming_cleared;
    assert!(cleared > 0, "the last bars closed at the end");
    assert!(
        expires <= held + 2 * cleared,
        "{expires} EXPIREs for {held} keys ({cleared} forming hashes cleared) over {batches} batches: {calls:?}"
    );
    assert!(expires > 0);
    assert_eq!(keys_without_ttl(&server).await, []);
    // The summary's key counts are still the keys Redis holds (the
    // heartbeat, written beside the lanes, aside).
    for (db, stats) in &s.writer.per_db {
        let c = server.client(*db).await.unwrap();
        let mut held = keys(&c).await;
        held.retain(|k| !k.starts_with("tickwire:heartbeat"));
        assert_eq!(
            stats.distinct_keys(),
            held.len() as u64,
            "DB {db}: counted vs held {held:?}"
        );
    }
    // A replay of the same file again: every key already has its TTL in
    // Redis, but this process has not set it yet, so each gets one EXPIRE.
    reset_stats(&client).await;
    replay(&cfg, &[dir.path().join("ticks.jsonl")]).await;
    let again = command_calls(&client)
        .await
        .get("EXPIRE")
        .copied()
        .unwrap_or(0);
    assert!(again <= held, "{again} EXPIREs in the second run");
    assert_eq!(keys_without_ttl(&server).await, []);
}

/// Tardis-shaped trades of two instruments, one a second, for two minutes
/// from `t0_s`.
fn trades(t0_s: i64, first_id: i64) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..120i64 {
        for (j, symbol) in ["BTCUSDT", "ETHUSDT"].iter().enumerate() {
            let ts = (t0_s + i) * 1_000_000 + j as i64 * 400;
            out.push(format!(
                "binance-futures,{symbol},{ts},{},{},sell,{}.5,0.{:03}",
                ts + 1_000,
                first_id + i * 2 + j as i64,
                9_700 + (i * 7) % 31,
                1 + (i * 29) % 997
            ));
        }
    }
    out
}

fn file(dir: &Path, lines: &[String]) -> PathBuf {
    write(
        dir,
        "trades.csv",
        &format!(
            "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n{}\n",
            lines.join("\n")
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_deleted_after_a_redis_restart_get_their_ttl_back() {
    // Two minutes of trades, an hour without any, two more minutes; at
    // speed 600 the quiet hour is 6 s, in which Redis is SIGKILLed and
    // started again from its AOF (the keys come back, with their TTLs), and
    // then the keys of DBs 2 and 4 are deleted behind tickwire's back. The
    // writer had set their TTLs before; after the restart it must set them
    // again when it writes them.
    let t0 = 1_582_329_600i64; // 2020-02-22 00:00 UTC
    let mut lines = trades(t0, 1);
    let first = lines.len() as u64 / 2;
    lines.extend(trades(t0 + 3_720, 10_000));
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), &lines);
    let mut server = RedisServer::start_persistent()
        .unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"));
    let cfg = config(&server, "[writer]\nbatch_size = 20\n");
    let opts = ReplayOptions {
        feeds: Vec::new(),
        files: vec![path],
        format: None,
        symbol: None,
        pace: Pace::Speed(600.0),
        max_raw: 1024,
        chunk_events: 16,
        max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
        close_at_end: false,
    };
    let run = tokio::spawn(async move {
        tickwire::replay(&cfg, opts, tickwire::CancellationToken::new()).await
    });
    // The first two minutes landed.
    let t = std::time::Instant::now();
    loop {
        let db4 = server.client(4).await.unwrap();
        let n: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap_or(0);
        if n == first {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{n} of {first} ticks");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| server.crash_and_recover()).unwrap();
    for db in [2u8, 4] {
        let c = server.client(db).await.unwrap();
        let held = keys(&c).await;
        assert!(!held.is_empty(), "DB {db} came back from the AOF");
        let _: Value = c
            .custom(fred::cmd!("FLUSHDB"), Vec::<Value>::new())
            .await
            .unwrap();
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "restarted and deleted within the quiet hour"
    );
    let s = run.await.unwrap().expect("the replay rides through");
    assert_eq!(s.writer.write_errors, 0);
    assert!(s.writer.redis_restarts >= 1, "{:?}", s.writer);
    let db4 = server.client(4).await.unwrap();
    let after: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    assert_eq!(
        after, first,
        "the second part was written after the deletes"
    );
    assert_eq!(keys_without_ttl(&server).await, []);
}
