//! A private redis-server: for `tickwire demo`, and for every test and bench
//! (through tickwire-testkit).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    #[error(
        "redis-server was not found on PATH. Install it: `sudo apt-get install redis-server` \
         (Debian/Ubuntu), `brew install redis` (macOS), or set TICKWIRE_REDIS_SERVER to its path"
    )]
    NotFound,
    #[error("cannot start {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("redis-server did not come up: {0}")]
    NotReady(String),
    #[error("cannot create a temporary directory: {0}")]
    TempDir(std::io::Error),
}

/// A redis-server child process on 127.0.0.1 with its own data directory,
/// persistence off. Killed and its directory removed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

/// Finds redis-server: `TICKWIRE_REDIS_SERVER`, then `PATH`.
pub fn find_redis_server() -> Result<PathBuf, RedisServerError> {
    if let Some(p) = std::env::var_os("TICKWIRE_REDIS_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(RedisServerError::NotFound)
        };
    }
    let path = std::env::var_os("PATH").ok_or(RedisServerError::NotFound)?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or(RedisServerError::NotFound)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn spawn(binary: &Path, dir: &Path, port: u16) -> Result<Child, RedisServerError> {
    Command::new(binary)
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--logfile", "redis.log"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| RedisServerError::Spawn {
            path: binary.to_path_buf(),
            source,
        })
}

impl RedisServer {
    /// Starts a server and waits until it answers PING (up to 10 s). A port
    /// taken between choosing and binding it is retried with another.
    pub fn start() -> Result<Self, RedisServerError> {
        let binary = find_redis_server()?;
        let dir = tempfile::Builder::new()
            .prefix("tickwire-redis-")
            .tempdir()
            .map_err(RedisServerError::TempDir)?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(RedisServerError::TempDir)?;
            let mut child = spawn(&binary, dir.path(), port)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if answers_ping(port) {
                    return Ok(Self {
                        child,
                        port,
                        binary,
                        dir,
                    });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("exited with {status}: {}", log_tail(dir.path()));
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!(
                        "no PONG on port {port} within 10 s: {}",
                        log_tail(dir.path())
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(RedisServerError::NotReady(last))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server and starts it again on the same port (its data is lost,
    /// as after a crash with persistence off).
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.binary, self.dir.path(), self.port)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(self.port) {
            if Instant::now() > deadline {
                return Err(RedisServerError::NotReady(log_tail(self.dir.path())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// A connected fred client on logical DB `db`, for reading back.
    pub async fn client(&self, db: u8) -> Result<fred::prelude::Client, fred::error::Error> {
        use fred::prelude::*;
        let mut config = Config::from_url(&self.url())?;
        config.database = Some(db);
        let client = Builder::from_config(config).build()?;
        client.init().await?;
        Ok(client)
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
