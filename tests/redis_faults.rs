//! Redis stalls and restarts during a replay: writes time out, the writer
//! resends what did not apply, and nothing accepted is lost or doubled.

mod common;

use common::*;
use fred::prelude::*;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::prelude::*;
use tickwire_testkit::synth::{write_ticks, SynthSpec};

fn paced_file(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let path = dir.join("day.jsonl");
    let spec = SynthSpec {
        instruments: 4,
        sessions: 1,
        ticks_per_session: 2_000,
        seed: 11,
        start: jiff::civil::date(2024, 1, 2),
    };
    let n = write_ticks(&spec, &mut std::fs::File::create(&path).unwrap()).unwrap();
    (path, n)
}

fn opts(file: std::path::PathBuf) -> ReplayOptions {
    ReplayOptions {
        feeds: Vec::new(),
        files: vec![file],
        format: None,
        symbol: None,
        // A 6 h 15 min session in about 3 s.
        pace: Pace::Speed(7_500.0),
        max_raw: 1024,
        chunk_events: 64,
        max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
        close_at_end: false,
    }
}

/// The instruments of the replays here.
const SYMBOLS: &[&str] = &["RELIANCE", "TCS", "HDFCBANK", "INFY"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_times_writes_out_and_every_tick_still_lands_once() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let (file, n) = paced_file(dir.path());
    let cfg = config(
        &server,
        "[redis]\ncommand_timeout_ms = 300\n[writer]\nbatch_size = 100\n",
    );
    let run = {
        let cfg = cfg.clone();
        tokio::spawn(async move { replay_to_end(&cfg, opts(file)).await })
    };
    first_ticks_in(&server.client(4).await.unwrap(), SYMBOLS).await;
    // Writes from every client block for 1.5 s: five command timeouts' worth.
    let admin = server.client(0).await.unwrap();
    let _: Value = admin
        .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "1500", "WRITE"])
        .await
        .unwrap();
    let s = run
        .await
        .unwrap()
        .expect("the replay rides through the stall");

    assert_eq!(s.ingest.ticks, n);
    assert_eq!(s.writer.write_errors, 0);
    assert_eq!(
        s.writer.ticks_written + s.writer.duplicates,
        n,
        "every tick accounted for"
    );
    // Timed-out batches were resent. What the stalled Redis still applied came
    // back as "already there"; what fred dropped with its connection landed
    // with the resend: either way exactly once (checked below).
    assert!(s.writer.retries > 0, "the stall made the writer resend");
    let db4 = server.client(4).await.unwrap();
    let mut in_redis = 0;
    for symbol in ["RELIANCE", "TCS", "HDFCBANK", "INFY"] {
        let e = xrange(&db4, &format!("ticks:{symbol}")).await;
        let mut ids: Vec<&String> = e.iter().map(|e| &e.0).collect();
        ids.dedup();
        assert_eq!(ids.len(), e.len());
        in_redis += e.len() as u64;
    }
    assert_eq!(in_redis, n, "nothing lost, nothing doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_replay_is_reconnected_and_the_rest_lands() {
    let mut server = redis();
    let dir = tempfile::tempdir().unwrap();
    let (file, n) = paced_file(dir.path());
    let last_line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let cfg = config(
        &server,
        "[redis]\ncommand_timeout_ms = 500\n[writer]\nbatch_size = 100\n",
    );
    let run = {
        let cfg = cfg.clone();
        let file = file.clone();
        tokio::spawn(async move { replay_to_end(&cfg, opts(file)).await })
    };
    first_ticks_in(&server.client(4).await.unwrap(), SYMBOLS).await;
    // Persistence is off: what was written before the restart is gone with it.
    tokio::task::block_in_place(|| server.restart()).unwrap();
    let s = run
        .await
        .unwrap()
        .expect("the replay rides through the restart");
    assert_eq!(s.ingest.ticks, n);
    assert_eq!(s.writer.write_errors, 0);

    // The ticks after the restart landed, up to the very last one.
    let symbol = last_line
        .split("\"symbol\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let ts = last_line
        .split("\"ts\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let db4 = server.client(4).await.unwrap();
    let e = xrange(&db4, &format!("ticks:{symbol}")).await;
    assert!(
        !e.is_empty() && (e.len() as u64) < n,
        "only the part after the restart: {}",
        e.len()
    );
    assert_eq!(field(e.last().unwrap(), "ts"), ts);
    let price = hgetall(&server.client(2).await.unwrap(), &format!("price:{symbol}")).await;
    assert_eq!(price["ts"], ts);
    assert_ttl(&db4, &format!("ticks:{symbol}")).await;
}
