//! What the writer does around Redis events it does not cause: a Redis
//! that holds every command for a while when the writer starts (SCRIPT
//! LOAD is retried like a write), and time spent waiting for Redis.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fred::prelude::*;
use tickwire_testkit::prelude::*;
use tickwire_testkit::RedisServer;

/// SCRIPT EXISTS of each: whether the server's script cache holds it.
async fn cached(server: &RedisServer, shas: &[String]) -> Vec<bool> {
    let c = server.client(0).await.unwrap();
    let mut args = vec!["EXISTS".to_string()];
    args.extend(shas.iter().cloned());
    let v: Vec<i64> = c.custom(fred::cmd!("SCRIPT"), args).await.unwrap();
    v.into_iter().map(|n| n == 1).collect()
}

/// The Lua engine's start loads its scripts while Redis holds every
/// command for 1.5 s (three 500 ms command timeouts): the SCRIPT LOAD that
/// times out is sent again, the writer starts and the scripts are in
/// Redis' cache, instead of a failed start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_load_at_start_is_retried_through_a_paused_redis() {
    let server = redis();
    let cfg = config(
        &server,
        "[redis]\ncommand_timeout_ms = 500\n[indicators]\nengine = \"lua\"\n",
    );
    let shas: Vec<String> = [
        tickwire_writer::LUA_VOLUME_ALERT,
        tickwire_writer::LUA_BAR_INDICATORS,
        tickwire_writer::LUA_VWAP,
    ]
    .iter()
    .map(|s| fred::util::sha1_hash(s))
    .collect();
    let pools = std::sync::Arc::new(
        tickwire_writer::RedisPools::connect(&cfg.redis, tickwire_writer::writer_dbs(&cfg))
            .await
            .unwrap(),
    );
    let admin = server.client(0).await.unwrap();
    let _: Value = admin
        .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "1500", "ALL"])
        .await
        .unwrap();
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    let stats = tickwire_writer::run(&cfg, pools, rx)
        .await
        .expect("the start rides out the pause");
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "the scripts were loaded after the pause, {:?} in",
        started.elapsed()
    );
    assert_eq!(stats.write_errors, 0);
    assert_eq!(cached(&server, &shas).await, [true, true, true]);
}

/// 4 instruments × 2,000 ticks of one session, paced to about 3 s.
fn paced_file(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    use tickwire_testkit::synth::{write_ticks, SynthSpec};
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

fn paced(file: std::path::PathBuf) -> tickwire_ingest::ReplayOptions {
    tickwire_ingest::ReplayOptions {
        feeds: Vec::new(),
        files: vec![file],
        format: None,
        symbol: None,
        // A 6 h 15 min session in about 3 s.
        pace: tickwire_ingest::Pace::Speed(7_500.0),
        max_raw: 1024,
        chunk_events: 64,
        max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
        close_at_end: false,
    }
}

/// The summary's `waited for redis` is the time the writer spent waiting
/// for Redis: about the 2 s Redis held writes mid-replay, and absent (0)
/// from a replay that never waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waited_for_redis_shows_how_long_redis_held_the_writes() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let (file, n) = paced_file(dir.path());
    let toml = "[redis]\ncommand_timeout_ms = 300\n[writer]\nbatch_size = 100\n";

    // Without an outage: no wait.
    let calm = replay_to_end(&config(&server, toml), paced(file.clone()))
        .await
        .unwrap();
    assert_eq!(calm.writer.redis_wait_ms, 0);
    assert!(
        !calm.render().contains("waited for redis"),
        "{}",
        calm.render()
    );

    // Into a fresh server (nothing there yet), Redis holds writes for 2 s.
    let server = redis();
    let cfg = config(&server, toml);
    let run = tokio::spawn(async move { replay_to_end(&cfg, paced(file)).await });
    // Mid-replay: once its first ticks are in.
    let db4 = server.client(4).await.unwrap();
    first_ticks_in(&db4, &["RELIANCE", "TCS", "HDFCBANK", "INFY"]).await;
    let admin = server.client(0).await.unwrap();
    let pause = Duration::from_millis(2_000);
    let _: Value = admin
        .custom(
            fred::cmd!("CLIENT"),
            vec![
                "PAUSE".to_string(),
                pause.as_millis().to_string(),
                "WRITE".into(),
            ],
        )
        .await
        .unwrap();
    let s = run.await.unwrap().unwrap();
    assert_eq!(s.writer.ticks_written + s.writer.duplicates, n);
    let waited = Duration::from_millis(s.writer.redis_wait_ms);
    assert!(
        waited >= pause / 2 && waited <= pause + Duration::from_millis(1_500),
        "waited {waited:?} for a {pause:?} pause"
    );
    eprintln!("waited for redis: {waited:?} for a {pause:?} pause");
    let text = s.render();
    let line = text
        .lines()
        .find(|l| l.contains("waited for redis"))
        .unwrap_or_else(|| panic!("{text}"));
    let secs: f64 = line
        .trim()
        .trim_start_matches("waited for redis")
        .trim()
        .trim_end_matches('s')
        .trim()
        .parse()
        .unwrap();
    assert!(
        (secs - waited.as_secs_f64()).abs() < 0.1,
        "{line} vs {waited:?}"
    );
}
