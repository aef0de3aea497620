//! The process as an operator restarts it: SIGKILLed at several points, or
//! stopped with SIGTERM, and started again on the whole input, tickwire leaves
//! every key equal to one uninterrupted run.

use tickwire_testkit::prelude::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fred::prelude::*;

/// Trades per instrument in the input.
const TRADES: i64 = 24_000;

/// Tardis-shaped trades of two instruments with ids, three in each
/// millisecond they trade in, over 30 minutes of exchange time.
fn input(dir: &Path) -> std::path::PathBuf {
    let t0 = 1_582_329_600_000_000i64;
    let step = 1_800_000_000 / (TRADES / 3);
    let mut body = String::from("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n");
    for i in 0..TRADES {
        for (j, symbol) in ["BTCUSDT", "ETHUSDT"].iter().enumerate() {
            let ts = t0 + (i / 3) * step + j as i64 * 900;
            body += &format!(
                "binance-futures,{symbol},{ts},{},{},sell,{}.{},0.{:03}\n",
                ts + 100_000,
                70_000_000 + i,
                9_500 + (i * 11 + j as i64) % 61,
                i % 10,
                1 + (i * 17) % 997
            );
        }
    }
    let path = dir.join("trades.csv");
    std::fs::write(&path, body).unwrap();
    path
}

fn replay(server: &RedisServer, file: &Path, pace: &[&str]) -> Command {
    // A short queue between the stages: a stop drains little, so a run
    // stopped early has really written only part of the input.
    let cfg = file.with_file_name("queue.toml");
    std::fs::write(&cfg, "[writer]\nchannel_capacity = 2\n").unwrap();
    let mut c = tickwire!();
    c.arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "replay"])
        .args(pace)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn run_to_end(server: &RedisServer, file: &Path) {
    let status = replay(server, file, &["--max"]).status().unwrap();
    assert!(status.success(), "replay exited {status}");
}

/// Starts a paced replay and stops it after `after`, with `signal`; returns
/// what it printed.
fn interrupt(server: &RedisServer, file: &Path, after: Duration, signal: &str) -> String {
    // 30 minutes of exchange time at 900x: about 2 s a run.
    let child = replay(server, file, &["--speed", "900"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let (status, stdout, _) = tickwire_testkit::process::signal(child, signal);
    if signal == "-TERM" {
        assert!(
            status.success(),
            "SIGTERM: drain, flush, exit 0 (got {status})"
        );
    }
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_several_points_then_the_whole_input_equals_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path());
    let reference = redis();
    run_to_end(&reference, &file);

    let server = redis();
    for after in [400, 900, 1_500] {
        interrupt(&server, &file, Duration::from_millis(after), "-KILL");
    }
    // Something landed before the kills, and not everything.
    let db4 = server.client(4).await.unwrap();
    let landed: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    assert!(
        landed > 0 && landed < TRADES as u64,
        "{landed} ticks before the restart"
    );
    run_to_end(&server, &file);
    assert_same(&server, &reference, &RUN_DBS, "after SIGKILLs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_then_the_rest_of_the_input_equals_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path());
    let reference = redis();
    run_to_end(&reference, &file);

    // Stopped with SIGTERM, then started again on what it had not read:
    // the second process continues from the checkpoints alone.
    let server = redis();
    let printed = interrupt(&server, &file, Duration::from_millis(800), "-TERM");
    let read = summary_value(&printed, "ticks read") as usize;
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rest: Vec<&str> = lines.skip(read).collect();
    assert!(!rest.is_empty() && read > 0, "read {read}");
    let rest_file = dir.path().join("rest.csv");
    std::fs::write(&rest_file, format!("{header}\n{}\n", rest.join("\n"))).unwrap();
    run_to_end(&server, &rest_file);
    assert_same(&server, &reference, &RUN_DBS, "SIGTERM, then the rest").await;

    // And, as after a crash, the whole input again changes nothing.
    let server = redis();
    interrupt(&server, &file, Duration::from_millis(800), "-TERM");
    let db4 = server.client(4).await.unwrap();
    let landed: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    assert!(
        landed > 0 && landed < TRADES as u64,
        "{landed} ticks before the restart"
    );
    run_to_end(&server, &file);
    assert_same(&server, &reference, &RUN_DBS, "after SIGTERM").await;
}
