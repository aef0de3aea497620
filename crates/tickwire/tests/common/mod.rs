//! Helpers shared by the command-line tests: the binary, a private
//! redis-server, stopping a child with a signal, reading the summary.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

pub use tickwire_testkit::RedisServer;

/// The tickwire binary, with nothing from the environment that changes it.
pub fn tickwire() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickwire"));
    c.env_remove("TICKWIRE_REDIS_URL").env_remove("RUST_LOG");
    c
}

/// Runs `c` to the end: its output, stdout and stderr as text. A panic in
/// tickwire fails the test whatever it asserts.
pub fn run(c: &mut Command) -> (Output, String, String) {
    let out = c.output().expect("tickwire runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "tickwire panicked: {stderr}");
    (out, stdout, stderr)
}

pub fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"))
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The number after `label` in the summary table.
pub fn summary_value(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` in summary:\n{stdout}"))
}

/// Sends `signal` (`-TERM`, `-KILL`) to `child` and waits for it to exit
/// (20 s at most): its status and what it printed on the pipes it has.
pub fn signal(mut child: Child, signal: &str) -> (ExitStatus, String, String) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} failed");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "did not stop after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout).unwrap();
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).unwrap();
    }
    (status, stdout, stderr)
}

/// SIGTERM and wait: the exit code and what it printed.
pub fn terminate(child: Child) -> (Option<i32>, String, String) {
    let (status, stdout, stderr) = signal(child, "-TERM");
    assert!(!stderr.contains("panicked"), "tickwire panicked: {stderr}");
    (status.code(), stdout, stderr)
}
