//! A Redis restart mid-replay is noticed by its run_id: without persistence
//! it comes back empty, and the replay ends non-zero telling the user to run
//! it again; with AOF it keeps everything, and the restart is counted but is
//! not an error.

use std::process::Stdio;
use std::time::Duration;

use tickwire_testkit::prelude::*;

/// 4 instruments × 2,000 ticks of one session.
fn day(dir: &std::path::Path) -> std::path::PathBuf {
    use tickwire_testkit::synth::{write_ticks, SynthSpec};
    let path = dir.join("day.jsonl");
    let spec = SynthSpec {
        instruments: 4,
        sessions: 1,
        ticks_per_session: 2_000,
        seed: 11,
        start: jiff::civil::date(2024, 1, 2),
    };
    write_ticks(&spec, &mut std::fs::File::create(&path).unwrap()).unwrap();
    path
}

/// Replays `file` paced over about 4 s, kills Redis with SIGKILL once the
/// first ticks are in and starts it again on the same port: the exit code, stdout and stderr.
fn replay_through_a_restart(
    server: &mut RedisServer,
    file: &std::path::Path,
    persistent: bool,
) -> (Option<i32>, String, String) {
    let child = tickwire!()
        .args(["--redis", &server.url(), "replay", "--speed", "5600"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-replay: once its first ticks are in.
    wait_for(Duration::from_secs(30), "the first ticks in Redis", || {
        ["RELIANCE", "TCS", "HDFCBANK", "INFY"].iter().any(|s| {
            redis_cli(server, 4, &["XLEN", &format!("ticks:{s}")])
                .parse::<u64>()
                .unwrap_or(0)
                > 0
        })
    });
    if persistent {
        server.crash_and_recover().unwrap();
    } else {
        server.restart().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn a_redis_without_persistence_restarted_mid_replay_fails_the_replay_saying_run_it_again() {
    let mut server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = day(dir.path());
    let (code, stdout, stderr) = replay_through_a_restart(&mut server, &file, false);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(summary_value(&stdout, "redis restarts"), 1, "{stdout}");
    assert_eq!(summary_value(&stdout, "data lost there"), 1, "{stdout}");
    assert!(
        stdout.contains("NOT WRITTEN: what was written before Redis restarted without its data")
            && stdout.contains("run the replay again"),
        "{stdout}"
    );
    assert!(stderr.contains("run the replay again"), "{stderr}");
    // Logged once, naming the URL.
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Redis restarted without its data (no persistence)"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains(&server.url()), "{stderr}");
}

#[test]
fn a_redis_with_aof_restarted_mid_replay_is_counted_not_an_error() {
    let mut server = RedisServer::start_persistent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = day(dir.path());
    let (code, stdout, stderr) = replay_through_a_restart(&mut server, &file, true);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(summary_value(&stdout, "redis restarts"), 1, "{stdout}");
    assert!(!stdout.contains("data lost there"), "{stdout}");
    assert!(!stdout.contains("NOT WRITTEN"), "{stdout}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("Redis restarted and still holds"))
            .count(),
        1,
        "{stderr}"
    );
}
