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
/// persistence off ([`RedisServer::start`]) or an append-only file synced on
/// every write ([`RedisServer::start_persistent`]). Killed and its directory
/// removed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    binary: PathBuf,
    dir: tempfile::TempDir,
    persistence: Persistence,
    tls: Option<(u16, TlsFiles)>,
}

/// The files of a TLS listener ([`RedisServer::start_tls`]), all PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate (`--tls-cert-file`).
    pub cert: PathBuf,
    /// Its private key (`--tls-key-file`).
    pub key: PathBuf,
    /// The CA that client certificates must chain to (`--tls-ca-cert-file`).
    pub ca: PathBuf,
    /// `--tls-auth-clients yes`: a client without a certificate is refused.
    pub auth_clients: bool,
}

/// What a server keeps on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// Nothing: a restart loses every key.
    Off,
    /// `appendonly yes`, `appendfsync always`: every write Redis acknowledged
    /// is in the AOF, and a restart loads it.
    Aof,
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

fn spawn(
    binary: &Path,
    dir: &Path,
    port: u16,
    persistence: Persistence,
    tls: Option<&(u16, TlsFiles)>,
) -> Result<Child, RedisServerError> {
    let aof: &[&str] = match persistence {
        Persistence::Off => &["--appendonly", "no"],
        // Acknowledged means on disk: Redis fsyncs the AOF before it replies.
        Persistence::Aof => &["--appendonly", "yes", "--appendfsync", "always"],
    };
    let mut tls_args: Vec<std::ffi::OsString> = Vec::new();
    if let Some((tls_port, files)) = tls {
        tls_args.extend(["--tls-port".into(), tls_port.to_string().into()]);
        for (flag, path) in [
            ("--tls-cert-file", &files.cert),
            ("--tls-key-file", &files.key),
            ("--tls-ca-cert-file", &files.ca),
        ] {
            tls_args.extend([flag.into(), path.into()]);
        }
        let auth = if files.auth_clients { "yes" } else { "no" };
        tls_args.extend(["--tls-auth-clients".into(), auth.into()]);
    }
    Command::new(binary)
        .args(["--port", &port.to_string()])
        .args(&tls_args)
        .args(["--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", ""])
        .args(aof)
        .args(["--daemonize", "no"])
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
        Self::start_with(Persistence::Off)
    }

    /// Starts a server that keeps an append-only file (`appendonly yes`,
    /// `appendfsync always`: what it acknowledged is on disk), so that
    /// [`RedisServer::crash_and_recover`] brings back every acknowledged write.
    pub fn start_persistent() -> Result<Self, RedisServerError> {
        Self::start_with(Persistence::Aof)
    }

    /// Starts a server that also listens for TLS on [`RedisServer::tls_port`]
    /// with `files` (the plaintext [`RedisServer::port`] stays open, for
    /// readiness and reading back). The redis-server must be built with TLS.
    pub fn start_tls(files: TlsFiles) -> Result<Self, RedisServerError> {
        Self::start_with_tls(Persistence::Off, Some(files))
    }

    fn start_with(persistence: Persistence) -> Result<Self, RedisServerError> {
        Self::start_with_tls(persistence, None)
    }

    fn start_with_tls(
        persistence: Persistence,
        tls_files: Option<TlsFiles>,
    ) -> Result<Self, RedisServerError> {
        let binary = find_redis_server()?;
        let dir = tempfile::Builder::new()
            .prefix("tickwire-redis-")
            .tempdir()
            .map_err(RedisServerError::TempDir)?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(RedisServerError::TempDir)?;
            let tls = match &tls_files {
                Some(files) => Some((
                    free_port().map_err(RedisServerError::TempDir)?,
                    files.clone(),
                )),
                None => None,
            };
            let mut child = spawn(&binary, dir.path(), port, persistence, tls.as_ref())?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if answers_ping(port) {
                    return Ok(Self {
                        child,
                        port,
                        binary,
                        dir,
                        persistence,
                        tls,
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

    /// The TLS port of a server from [`RedisServer::start_tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(port, _)| *port)
    }

    /// `rediss://127.0.0.1:<tls port>` of a server from
    /// [`RedisServer::start_tls`] (`None` for a plaintext-only server).
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port().map(|p| format!("rediss://127.0.0.1:{p}"))
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
        if self.persistence == Persistence::Aof {
            // Lost with the disk: the next start finds no AOF to load.
            let _ = std::fs::remove_dir_all(self.dir.path().join("appendonlydir"));
            let _ = std::fs::remove_file(self.dir.path().join("appendonly.aof"));
        }
        self.respawn()
    }

    /// Kills the server with SIGKILL (no shutdown, no final save: a crash)
    /// and starts it again in the same directory and on the same port, where
    /// it loads its append-only file; returns once it answers PING, that is
    /// once the AOF is loaded (a loading server answers `-LOADING`). Only for
    /// a server from [`RedisServer::start_persistent`].
    pub fn crash_and_recover(&mut self) -> Result<(), RedisServerError> {
        self.crash()?;
        self.recover()
    }

    /// The first half of [`RedisServer::crash_and_recover`]: SIGKILL, and the
    /// port stays closed until [`RedisServer::recover`] (an outage).
    pub fn crash(&mut self) -> Result<(), RedisServerError> {
        if self.persistence != Persistence::Aof {
            return Err(RedisServerError::NotReady(
                "a crash to recover from needs a server started with start_persistent".into(),
            ));
        }
        // Child::kill is SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(())
    }

    /// Starts a crashed server again from its AOF (see [`RedisServer::crash`]).
    pub fn recover(&mut self) -> Result<(), RedisServerError> {
        if let Ok(None) = self.child.try_wait() {
            return Err(RedisServerError::NotReady(
                "the server is still running: crash it first".into(),
            ));
        }
        self.respawn()
    }

    /// Starts the server again (the old one is gone) and waits for PING.
    fn respawn(&mut self) -> Result<(), RedisServerError> {
        self.child = spawn(
            &self.binary,
            self.dir.path(),
            self.port,
            self.persistence,
            self.tls.as_ref(),
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(self.port) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(RedisServerError::NotReady(format!(
                    "exited with {status}: {}",
                    log_tail(self.dir.path())
                )));
            }
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

/// The last lines of `dir`'s redis.log, for a message saying why a server
/// did not come up.
pub fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Sends one inline command and returns its reply: a status line, or a
/// bulk string's value (`nil` for none).
#[cfg(test)]
fn inline(port: u16, cmd: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(format!("{cmd}\r\n").as_bytes()).expect("write");
    let mut line = || {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() && b[0] != b'\n' {
            out.push(b[0]);
        }
        String::from_utf8_lossy(&out).trim_end().to_string()
    };
    let first = line();
    match first.as_str() {
        "$-1" => "nil".into(),
        f if f.starts_with('$') => line(),
        _ => first,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_server_keeps_what_it_acknowledged_through_a_sigkill() {
        let mut server = RedisServer::start_persistent().expect("redis-server");
        assert_eq!(inline(server.port(), "SET k v1"), "+OK");
        let pid = server.child.id();
        server.crash_and_recover().expect("back up");
        assert_ne!(server.child.id(), pid, "a new process");
        assert_eq!(inline(server.port(), "GET k"), "v1");
        // restart() loses everything, AOF included, and the server keeps
        // its persistence for what is written after.
        server.restart().expect("back up");
        assert_eq!(inline(server.port(), "GET k"), "nil");
        assert_eq!(inline(server.port(), "SET k v2"), "+OK");
        server.crash_and_recover().expect("back up");
        assert_eq!(inline(server.port(), "GET k"), "v2");
    }

    #[test]
    fn a_server_without_persistence_refuses_to_recover() {
        let mut server = RedisServer::start().expect("redis-server");
        assert!(server.crash_and_recover().is_err());
        let mut server = RedisServer::start_persistent().expect("redis-server");
        assert!(server.recover().is_err(), "not crashed");
        server.crash().expect("killed");
        assert!(!answers_ping(server.port()), "down until recovered");
        server.recover().expect("back up");
        assert!(answers_ping(server.port()));
    }
}
