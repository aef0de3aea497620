//! One supervisor: a stage that fails stops the whole process. A writer
//! that gives up (live run or replay) or a recorder that can no longer write
//! ends the run within seconds, non-zero, with the summary and an error
//! naming the stage and the cause; the heartbeat stops and its key expires.

use tickwire_testkit::prelude::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fred::prelude::*;
use tickwire_testkit::ws_server::{TradeFeed, WsServer};

/// A Binance trade feed of about 20 s: far longer than any run here lasts.
async fn long_feed() -> WsServer {
    WsServer::trades(TradeFeed {
        symbols: vec!["BTCUSDT".into()],
        trades: 4_000,
        every: Duration::from_millis(5),
        resend: 0,
        lead: Duration::ZERO,
        last_ahead: Duration::ZERO,
        first_id: 1_000,
        ..TradeFeed::binance()
    })
    .await
    .unwrap()
}

/// A config giving up on Redis after two retries of 300 ms commands, with a
/// heartbeat that expires 1 s after its last beat; `extra` is appended.
fn config(dir: &Path, feed: Option<&WsServer>, extra: &str) -> PathBuf {
    let mut text = String::from(
        "[redis]\ncommand_timeout_ms = 300\n[writer]\nmax_retries = 2\n\
         [heartbeat]\ninterval_ms = 200\nttl_secs = 1\n",
    );
    text.push_str(extra);
    if let Some(feed) = feed {
        text.push_str(&feed_toml(
            "binance",
            "binance",
            &feed.url("/stream"),
            &["BTCUSDT"],
            &["trade"],
        ));
    }
    config_file(dir, "tickwire.toml", &text)
}

/// Waits for `child` to exit on its own, `within` at most: its status, how
/// long it took, stdout, and the stderr it wrote to `log`.
fn exit_within(
    mut child: Child,
    from: Instant,
    within: Duration,
    log: &Path,
) -> (ExitStatus, Duration, String, String) {
    let Some(status) = wait_exit(&mut child, within.saturating_sub(from.elapsed())) else {
        let _ = child.kill();
        panic!(
            "still running {within:?} after a stage failed:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    let took = from.elapsed();
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout).unwrap();
    }
    let stderr = std::fs::read_to_string(log).unwrap();
    assert!(!stderr.contains("panicked"), "tickwire panicked: {stderr}");
    (status, took, stdout, stderr)
}

/// Waits until the heartbeat has written a tick to Redis.
async fn wait_for_ticks(db0: &Client) {
    wait_until(Duration::from_secs(15), "a tick to land", || async {
        let n: Option<u64> = db0.hget("tickwire:heartbeat", "ticks_total").await.unwrap();
        n.unwrap_or(0) > 0
    })
    .await;
}

/// The heartbeat key is gone within its TTL (1 s) and a little after the
/// process stopped: no last beat refreshed it, nothing beats any more.
async fn heartbeat_expires(db0: &Client) {
    wait_until(
        Duration::from_millis(2_500),
        "the heartbeat key to go after the process stopped",
        || async { db0.exists::<u64, _>("tickwire:heartbeat").await.unwrap() == 0 },
    )
    .await;
}

/// Redis stops taking writes (CLIENT PAUSE WRITE) for longer than the
/// writer retries.
async fn pause_writes(c: &Client) -> Instant {
    let _: () = c
        .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "15000", "WRITE"])
        .await
        .unwrap();
    Instant::now()
}

async fn unpause(c: &Client) {
    let _: () = c
        .custom(fred::cmd!("CLIENT"), vec!["UNPAUSE"])
        .await
        .unwrap();
}

/// What a stop on a writer that gave up prints: the summary, marked as
/// stopped, with the ticks not written, then the error naming Redis at its
/// URL, how long it was unreachable and writer.max_retries.
fn assert_gave_up(server: &RedisServer, stdout: &str, stderr: &str, mode: &str) {
    assert!(
        stdout.contains(&format!("{mode} STOPPED: the writer failed")),
        "{stdout}"
    );
    assert!(summary_value(stdout, "ticks read") > 0, "{stdout}");
    assert!(
        stdout.contains("NOT WRITTEN: up to ") && stdout.contains("ticks read not written"),
        "the summary says what was not written:\n{stdout}"
    );
    let named = format!("Redis at {} unreachable for ", server.url());
    let error = stderr
        .lines()
        .find(|l| l.starts_with("Error: ") && l.contains(&named))
        .unwrap_or_else(|| panic!("no error naming {named:?}:\n{stderr}"));
    assert!(error.contains("(writer.max_retries = 2;"), "{error}");
    // Three attempts of 300 ms commands and two backoffs: about a second.
    let secs: f64 = error
        .split(&named)
        .nth(1)
        .and_then(|rest| rest.split(" s ").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seconds in {error}"));
    assert!((0.5..10.0).contains(&secs), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_whose_writer_gave_up_exits_non_zero_within_seconds() {
    let feed = long_feed().await;
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), Some(&feed), "");
    let log = dir.path().join("run.log");
    let child = start_run(tickwire!(), &cfg, &server.url(), &log);
    let db0 = server.client(0).await.unwrap();
    wait_for_ticks(&db0).await;
    let paused = pause_writes(&db0).await;
    let (status, took, stdout, stderr) = exit_within(child, paused, Duration::from_secs(20), &log);
    assert!(!status.success(), "a run whose writer gave up exited 0");
    assert!(
        took < Duration::from_secs(6),
        "the run stopped {took:?} after its writer could no longer write"
    );
    assert_gave_up(&server, &stdout, &stderr, "run");
    assert!(
        feed.sent_trades().len() < 4_000,
        "the feed was still sending when the run stopped"
    );
    // Redis takes writes again: the heartbeat nobody refreshes expires. The
    // feed's status is not written (the writer could not): it keeps its TTL.
    unpause(&db0).await;
    heartbeat_expires(&db0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_whose_writer_gave_up_prints_its_summary_and_names_redis() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 3,
        sessions: 1,
        ticks_per_session: 2_000,
        seed: 3,
        start: jiff::civil::date(2024, 1, 2),
    };
    tickwire_testkit::synth::write_ticks(&spec, &mut std::fs::File::create(&file).unwrap())
        .unwrap();
    let cfg = config(dir.path(), None, "");
    let log = dir.path().join("replay.log");
    // At 100x the 6 h 15 min session takes minutes: still running when Redis pauses.
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "replay", "--speed", "100"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let db0 = server.client(0).await.unwrap();
    wait_for_ticks(&db0).await;
    let paused = pause_writes(&db0).await;
    let (status, took, stdout, stderr) = exit_within(child, paused, Duration::from_secs(20), &log);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(6), "stopped after {took:?}");
    assert_gave_up(&server, &stdout, &stderr, "replay");
    assert!(summary_value(&stdout, "ticks written") > 0, "{stdout}");
    unpause(&db0).await;
    heartbeat_expires(&db0).await;
}

/// Waits until the recorder has made a file in `out`, then takes the
/// directory away: it is moved aside and a plain file takes its place, so
/// the recorder's next file (its size rotation comes every few frames)
/// cannot be created. (Permission bits would not do: tests may run as root.)
fn break_recording_dir(out: &Path) {
    wait_for(Duration::from_secs(15), "a recorded file", || {
        std::fs::read_dir(out).map_or(0, |d| d.count()) > 0
    });
    std::fs::rename(out, out.with_extension("moved")).unwrap();
    std::fs::write(out, b"not a directory").unwrap();
}

/// Files rotate every ~20 frames (100 ms of the feed).
const ROTATE_OFTEN: &str = "[record]\nrotate_bytes = 4000\nflush_ms = 100\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_recorder_cannot_write_stops_naming_the_recorder() {
    let feed = long_feed().await;
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), Some(&feed), ROTATE_OFTEN);
    let out = dir.path().join("rec");
    let log = dir.path().join("run.log");
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "run", "--record"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let db0 = server.client(0).await.unwrap();
    wait_for_ticks(&db0).await;
    break_recording_dir(&out);
    let broken = Instant::now();
    let (status, took, stdout, stderr) = exit_within(child, broken, Duration::from_secs(20), &log);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(8),
        "stopped {took:?} after the directory went:\n{stdout}\n{stderr}"
    );
    assert!(
        feed.sent_trades().len() < 4_000,
        "the feed was still sending when the run stopped"
    );
    assert!(
        stdout.contains("run STOPPED: the recorder failed")
            && stdout.contains("RECORDING FAILED: cannot write recording"),
        "{stdout}"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.contains("the recorder stopped: cannot write recording")
            && error.contains(&out.display().to_string())
            && error.contains("Not a directory"),
        "{error}"
    );
    // Redis still took writes: what was read is there, the feed says it is
    // disconnected, and the heartbeat, stopped at the failure, expires.
    assert!(summary_value(&stdout, "ticks written") > 0, "{stdout}");
    let status: Option<String> = db0.get("feed:binance:status").await.unwrap();
    assert_eq!(status.as_deref(), Some("disconnected"));
    heartbeat_expires(&db0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_whose_directory_goes_stops_and_says_how_many_frames_are_missing() {
    let feed = long_feed().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), Some(&feed), ROTATE_OFTEN);
    let out = dir.path().join("rec");
    let log = dir.path().join("record.log");
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["record", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    break_recording_dir(&out);
    let broken = Instant::now();
    let (status, took, stdout, stderr) = exit_within(child, broken, Duration::from_secs(20), &log);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(8),
        "stopped {took:?} after the directory went:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.starts_with("record STOPPED: the recorder failed")
            && stdout.contains("RECORDING FAILED"),
        "{stdout}"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.contains("the recorder stopped: cannot write recording"),
        "{error}"
    );
    // "N frames not recorded": the frame that hit the error at least.
    let missing: u64 = error
        .split("; ")
        .last()
        .and_then(|t| t.strip_suffix(" frames not recorded"))
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no count of frames not recorded in {error}"));
    assert!(missing >= 1, "{error}");
}

/// The state stage runs on a live run's parser thread: when it cannot read
/// an instrument's checkpoint (here the key holds a hash, so GET is refused
/// with WRONGTYPE), the run stops within seconds, non-zero, naming the state
/// stage and the cause, and its heartbeat expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_whose_state_stage_cannot_read_a_checkpoint_stops_naming_it() {
    let feed = long_feed().await;
    let server = redis();
    let db0 = server.client(0).await.unwrap();
    let _: () = db0
        .hset(
            "tickwire:checkpoint:binance:BTCUSDT",
            ("not", "a checkpoint"),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), Some(&feed), "");
    let log = dir.path().join("run.log");
    let started = Instant::now();
    let child = start_run(tickwire!(), &cfg, &server.url(), &log);
    let (status, took, stdout, stderr) = exit_within(child, started, Duration::from_secs(20), &log);
    assert!(
        !status.success(),
        "a run whose state stage stopped exited 0"
    );
    assert!(
        took < Duration::from_secs(8),
        "the run stopped after {took:?}"
    );
    assert!(
        stdout.contains("run STOPPED: the state stage failed"),
        "{stdout}"
    );
    assert!(stderr.contains("cannot read checkpoints"), "{stderr}");
    assert!(stderr.contains("WRONGTYPE"), "{stderr}");
    // Nothing of the instrument was written past its unreadable checkpoint.
    let db4 = server.client(4).await.unwrap();
    assert_eq!(db4.xlen::<u64, _>("ticks:BTCUSDT").await.unwrap(), 0);
    heartbeat_expires(&db0).await;
}
