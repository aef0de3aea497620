//! A Redis restart with AOF changes nothing: the Redis SIGKILLed and started
//! again from its append-only file (`appendfsync always`, so what it
//! acknowledged is on disk), between two processes or while one is writing,
//! leaves every key tickwire writes equal to one uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fred::prelude::*;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::RedisServer;

/// Tardis-shaped trades of two instruments with ids: bursts of four trades
/// in one millisecond, a burst every 0.9 s, over 12 minutes.
fn trades() -> Vec<String> {
    let t0 = 1_582_329_600_000_000i64; // µs, 2020-02-22 00:00 UTC
    let mut out = Vec::new();
    for i in 0..1_600i64 {
        for (j, symbol) in ["BTCUSDT", "ETHUSDT"].iter().enumerate() {
            let ts = t0 + (i / 4) * 1_800_000 + j as i64 * 400;
            out.push(format!(
                "binance-futures,{symbol},{ts},{},{},sell,{}.{},0.{:03}",
                ts + 180_000,
                80_000_000 + i,
                9_700 + (i * 5 + j as i64 * 7) % 47,
                i % 10,
                1 + (i * 29) % 997
            ));
        }
    }
    out
}

const HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

fn file(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    write(dir, name, &format!("{HEADER}\n{}\n", lines.join("\n")))
}

fn persistent() -> RedisServer {
    RedisServer::start_persistent()
        .unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"))
}

// Consumer-facing DBs first, then the system DB with the checkpoints.
const DBS: [u8; 6] = [2, 3, 4, 5, 6, 0];

async fn assert_same(got: &RedisServer, want: &RedisServer, what: &str) {
    let (g, w) = (snapshot(got, &DBS).await, snapshot(want, &DBS).await);
    assert_eq!(
        g.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        w.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        "{what}: the keys"
    );
    for (a, b) in g.iter().zip(&w) {
        assert!(
            a == b,
            "{what}: db {} key {} differs\n got {:.400}\nwant {:.400}",
            b.0,
            b.1,
            a.2,
            b.2
        );
    }
}

/// The SHA-1s of the scripts the writer loads under `toml`'s engine.
fn scripts(lua: bool) -> Vec<String> {
    let mut s = vec![fred::util::sha1_hash(tickwire_writer::LUA_VOLUME_ALERT)];
    if lua {
        s.push(fred::util::sha1_hash(tickwire_writer::LUA_BAR_INDICATORS));
        s.push(fred::util::sha1_hash(tickwire_writer::LUA_VWAP));
    }
    s
}

/// SCRIPT EXISTS of each: whether the server's script cache holds it.
async fn cached(server: &RedisServer, shas: &[String]) -> Vec<bool> {
    let c = server.client(0).await.unwrap();
    let v: Vec<i64> = c
        .custom(fred::cmd!("SCRIPT"), {
            let mut a = vec!["EXISTS".to_string()];
            a.extend(shas.iter().cloned());
            a
        })
        .await
        .unwrap();
    v.into_iter().map(|n| n == 1).collect()
}

fn engine(lua: bool) -> &'static str {
    if lua {
        "[indicators]\nengine = \"lua\"\n"
    } else {
        ""
    }
}

/// (a): two processes cut inside a minute (and inside a millisecond's burst),
/// the Redis SIGKILLed and recovered from its AOF between them.
async fn a_recovered_redis_between_two_processes_changes_nothing(lua: bool) {
    let toml = engine(lua);
    let lines = trades();
    let dir = tempfile::tempdir().unwrap();
    let reference = redis();
    replay_open(
        &config(&reference, toml),
        &[file(dir.path(), "all.csv", &lines)],
    )
    .await;

    // Line k of a burst is at 2k (two instruments): 1_203 cuts BTCUSDT's
    // burst of lines 1_200..1_207 after its second trade, mid-minute.
    let cut = 1_203;
    let mut server = persistent();
    let first = replay_open(
        &config(&server, toml),
        &[file(dir.path(), "a.csv", &lines[..cut])],
    )
    .await;
    assert_eq!(first.writer.ticks_written, cut as u64);
    let before = snapshot(&server, &DBS).await;
    tokio::task::block_in_place(|| server.crash_and_recover()).unwrap();
    // Everything acknowledged came back from the AOF; the script cache did
    // not (it is never persisted).
    assert_eq!(snapshot(&server, &DBS).await, before, "the AOF reloaded");
    assert!(
        cached(&server, &scripts(lua)).await.iter().all(|c| !c),
        "the script cache is empty after the restart"
    );
    let second = replay_open(
        &config(&server, toml),
        &[file(dir.path(), "b.csv", &lines[cut..])],
    )
    .await;
    assert_eq!(second.writer.ticks_written, (lines.len() - cut) as u64);
    assert_eq!((second.state.resent, second.writer.duplicates), (0, 0));
    assert_same(&server, &reference, "a Redis crash between two processes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_recovered_from_aof_between_processes_changes_nothing_inline_engine() {
    a_recovered_redis_between_two_processes_changes_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_recovered_from_aof_between_processes_changes_nothing_lua_engine() {
    a_recovered_redis_between_two_processes_changes_nothing(true).await;
}

fn paced(file: PathBuf) -> ReplayOptions {
    ReplayOptions {
        feeds: Vec::new(),
        files: vec![file],
        format: None,
        symbol: None,
        // 12 minutes of exchange time in about 2.4 s.
        pace: Pace::Speed(300.0),
        max_raw: 1024,
        chunk_events: 16,
        max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
        close_at_end: false,
    }
}

/// (b): the Redis SIGKILLed and recovered from its AOF while a paced replay
/// writes. The run either rides through (and then has written everything,
/// once) or stops with an error; either way a following run of the whole
/// input leaves every key equal to one uninterrupted run.
async fn a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(lua: bool, down: Duration) {
    let toml = engine(lua);
    let lines = trades();
    let n = lines.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let all = file(dir.path(), "all.csv", &lines);
    let reference = redis();
    replay_open(&config(&reference, toml), std::slice::from_ref(&all)).await;

    let mut server = persistent();
    let cfg = config(
        &server,
        &format!("{toml}[redis]\ncommand_timeout_ms = 500\n[writer]\nbatch_size = 50\n"),
    );
    let run = {
        let (cfg, all) = (cfg.clone(), all.clone());
        tokio::spawn(async move {
            tickwire::replay(&cfg, paced(all), Arc::new(AtomicBool::new(false))).await
        })
    };
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let db4 = server.client(4).await.unwrap();
    let landed: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    assert!(
        landed > 0 && landed < n / 2,
        "{landed} ticks before the crash"
    );
    server.crash().unwrap();
    tokio::time::sleep(down).await;
    tokio::task::block_in_place(|| server.recover()).unwrap();
    match run.await.unwrap() {
        Ok(s) => {
            // It rode through: everything read was written exactly once
            // (what the crash cut off was resent; what Redis had applied
            // came back as already there), and it says so.
            assert_eq!(s.ingest.ticks, n);
            assert_eq!(s.writer.write_errors, 0, "{:?}", s.writer);
            assert_eq!(
                s.writer.ticks_written + s.writer.duplicates,
                n,
                "every tick accounted for: {:?}",
                s.writer
            );
            if lua {
                assert!(
                    s.writer.script_reloads > 0,
                    "the Lua engine met NOSCRIPT and loaded its scripts again"
                );
            }
            assert_same(&server, &reference, "a run that rode through the crash").await;
        }
        Err(e) => {
            // It stopped: its error says why (the CLI exits non-zero).
            let text = e.to_string();
            assert!(text.contains("Redis"), "{text}");
        }
    }
    let again = replay_open(&cfg, std::slice::from_ref(&all)).await;
    assert_eq!(again.writer.write_errors, 0);
    assert_same(&server, &reference, "the whole input after the crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_replay_then_the_whole_input_equals_one_run_inline_engine() {
    a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(false, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_down_for_a_while_mid_replay_then_the_whole_input_equals_one_run() {
    // Three command timeouts' worth of outage: writes fail, are retried.
    a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(
        false,
        Duration::from_millis(1_500),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_replay_then_the_whole_input_equals_one_run_lua_engine() {
    a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(true, Duration::ZERO).await;
}
