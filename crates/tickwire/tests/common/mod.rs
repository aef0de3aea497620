//! Helpers shared by the command-line tests: the binary, a private
//! redis-server, stopping a child with a signal, reading the summary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
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

pub use tickwire_testkit::metrics::scrape;

/// [`scrape`], or nothing while the endpoint does not listen yet.
pub fn try_scrape(port: u16) -> HashMap<String, f64> {
    match TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => scrape(port),
        Err(_) => HashMap::new(),
    }
}

/// `tickwire run` with config file `cfg` against `server`, its stdout piped
/// (the summary), its log in `log`.
pub fn start_run(cfg: &std::path::Path, server: &RedisServer, log: &std::path::Path) -> Child {
    tickwire()
        .arg("--config")
        .arg(cfg)
        .args(["--redis", &server.url(), "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).expect("the log file can be made"))
        .spawn()
        .expect("tickwire starts")
}

/// Entries in the tick streams (`ticks:{symbol}`) of `symbols`, in `db4`'s
/// DB; a stream not made yet counts 0.
pub async fn ticks_of(db4: &fred::prelude::Client, symbols: &[&str]) -> u64 {
    use fred::prelude::StreamsInterface;
    let mut n = 0;
    for s in symbols {
        let len: u64 = db4.xlen(format!("ticks:{s}")).await.unwrap_or(0);
        n += len;
    }
    n
}
