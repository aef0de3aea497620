//! The tickwire binary started and stopped as an operator does: a clean
//! command, its run to the end, a signal and the wait for the exit, the
//! summary and the log read back.
//!
//! The binary's path is known only where cargo builds it for the test
//! (`env!("CARGO_BIN_EXE_tickwire")` in the tickwire package's own tests):
//! the [`tickwire!`](crate::tickwire!) macro expands there; everything else
//! here takes the [`Command`] it makes.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The tickwire binary under test as a [`Command`] (see [`command`]); only
/// in tests of the `tickwire` package, where cargo names the binary.
#[macro_export]
macro_rules! tickwire {
    () => {
        $crate::process::command(env!("CARGO_BIN_EXE_tickwire"))
    };
}

/// The binary at `bin`, with nothing from the environment that changes it.
pub fn command(bin: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(bin);
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

/// `tickwire health --json` with the flags `c` has: its exit code and the
/// JSON it printed (the test fails when it printed none).
pub fn health_json(c: &mut Command) -> (Option<i32>, serde_json::Value) {
    let (out, stdout, _) = run(c.args(["health", "--json"]));
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("health --json printed no JSON ({e}): {stdout}"));
    (out.status.code(), v)
}

/// `c run` with config file `cfg` against Redis at `redis_url`, its stdout
/// piped (the summary), its log in `log`.
pub fn start_run(mut c: Command, cfg: &Path, redis_url: &str, log: &Path) -> Child {
    c.arg("--config")
        .arg(cfg)
        .args(["--redis", redis_url, "run"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("the log file can be made"))
        .spawn()
        .expect("tickwire starts")
}

/// Waits for `child` to exit, `within` at most: its status, or `None` while
/// it still runs.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("the child can be waited for") {
            return Some(s);
        }
        if started.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (`-TERM`, `-KILL`) to `child` and waits for it to exit
/// (20 s at most): its status and what it printed on the pipes it has.
pub fn signal(mut child: Child, signal: &str) -> (ExitStatus, String, String) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} failed");
    let Some(status) = wait_exit(&mut child, Duration::from_secs(20)) else {
        panic!("did not stop after {signal}");
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout).expect("stdout reads");
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).expect("stderr reads");
    }
    (status, stdout, stderr)
}

/// SIGTERM and wait: the exit code and what it printed.
pub fn terminate(child: Child) -> (Option<i32>, String, String) {
    let (status, stdout, stderr) = signal(child, "-TERM");
    assert!(!stderr.contains("panicked"), "tickwire panicked: {stderr}");
    (status.code(), stdout, stderr)
}

/// [`signal`] from async code (the wait runs on a blocking thread): the
/// status and stdout.
pub async fn stop(child: Child, sig: &'static str) -> (ExitStatus, String) {
    let (status, stdout, _) = tokio::task::spawn_blocking(move || signal(child, sig))
        .await
        .expect("the stop does not panic");
    (status, stdout)
}

/// The log at `path` (empty when there is none); a panic in it fails the
/// test.
pub fn log_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(!text.contains("panicked"), "tickwire panicked: {text}");
    text
}

/// The number after `label` in the summary table.
pub fn summary_value(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` in summary:\n{stdout}"))
}

/// A loopback port nothing listens on (for the metrics endpoint).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port is free");
    l.local_addr().expect("a bound port").port()
}
