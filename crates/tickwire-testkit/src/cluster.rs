//! A private Redis Cluster for a test: three primaries and three replicas of
//! redis-server on free loopback ports, each in its own directory, formed
//! with `redis-cli --cluster create`, stopped on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tickwire_sandbox::redis_server::{find_redis_server, log_tail};
use tickwire_sandbox::RedisServerError;

/// One node of a [`RedisCluster`].
struct Node {
    port: u16,
    dir: PathBuf,
    /// `None` once killed.
    child: Option<Child>,
}

/// A running cluster: `primaries` primaries with one replica each.
pub struct RedisCluster {
    nodes: Vec<Node>,
    cli: PathBuf,
    _dir: tempfile::TempDir,
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port(taken: &[u16]) -> std::io::Result<u16> {
    for _ in 0..1_000 {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        if port > 55_535 || taken.contains(&port) || taken.contains(&(port + 10_000)) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "no free port pair for a cluster node",
    ))
}

/// redis-cli beside redis-server, or on PATH.
fn find_redis_cli(server: &Path) -> Result<PathBuf, RedisServerError> {
    let beside = server.with_file_name("redis-cli");
    if beside.is_file() {
        return Ok(beside);
    }
    let path = std::env::var_os("PATH").ok_or(RedisServerError::NotFound)?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-cli"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RedisServerError::NotReady(
                "redis-cli was not found (Debian: `apt-get install redis-tools`)".into(),
            )
        })
}

impl RedisCluster {
    /// Starts 3 primaries and 3 replicas and waits until every node says
    /// `cluster_state:ok` and every replica has synced (up to 30 s).
    pub fn start() -> Result<Self, RedisServerError> {
        let binary = find_redis_server()?;
        let cli = find_redis_cli(&binary)?;
        let dir = tempfile::tempdir().map_err(RedisServerError::TempDir)?;
        let mut nodes = Vec::new();
        let mut taken = Vec::new();
        for i in 0..6 {
            let port = free_cluster_port(&taken).map_err(RedisServerError::TempDir)?;
            taken.extend([port, port + 10_000]);
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).map_err(RedisServerError::TempDir)?;
            let child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(&node_dir)
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                // A dead primary is noticed, and its replica promoted, within
                // a few seconds.
                .args(["--cluster-node-timeout", "1000"])
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no", "--logfile", "redis.log"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|source| RedisServerError::Spawn {
                    path: binary.clone(),
                    source,
                })?;
            nodes.push(Node {
                port,
                dir: node_dir,
                child: Some(child),
            });
        }
        let cluster = RedisCluster {
            nodes,
            cli,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for n in &cluster.nodes {
            while cluster.cli(n.port, &["PING"]).as_deref() != Some("PONG") {
                if Instant::now() > deadline {
                    return Err(RedisServerError::NotReady(format!(
                        "node {} does not answer: {}",
                        n.port,
                        log_tail(&n.dir)
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut create = Command::new(&cluster.cli);
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RedisServerError::Spawn {
                path: cluster.cli.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(RedisServerError::NotReady(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        cluster.wait_ok(3, Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// One redis-cli command on node `port`; its output trimmed, `None` when
    /// the node cannot be reached.
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let out = Command::new(&self.cli)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// Waits until every live node says `cluster_state:ok`, every live
    /// replica's link to its primary is up, and at least `replicas` are.
    pub fn wait_ok(&self, replicas: usize, timeout: Duration) -> Result<(), RedisServerError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Every node sees the cluster ok, and every node meant to be a
            // replica is one, synced (a replica still loading its primary's
            // snapshot would lose what a primary killed now acknowledged).
            let mut linked = 0;
            let ok = self.live_ports().iter().all(|&p| {
                let info = self.cli(p, &["CLUSTER", "INFO"]).unwrap_or_default();
                let repl = self.cli(p, &["INFO", "replication"]).unwrap_or_default();
                if repl.contains("role:slave") && repl.contains("master_link_status:up") {
                    linked += 1;
                }
                info.contains("cluster_state:ok")
                    && (repl.contains("role:master") || repl.contains("master_link_status:up"))
            });
            let ok = ok && linked >= replicas;
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let states: Vec<String> = self
                    .live_ports()
                    .iter()
                    .map(|&p| {
                        format!(
                            "{p}: {}",
                            self.cli(p, &["CLUSTER", "INFO"])
                                .unwrap_or_default()
                                .lines()
                                .next()
                                .unwrap_or("")
                        )
                    })
                    .collect();
                return Err(RedisServerError::NotReady(format!(
                    "the cluster did not become ok: {}",
                    states.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ports of the nodes not killed.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Every node's port, killed or not.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The ports of the live nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        self.live_ports()
            .into_iter()
            .filter(|&p| {
                self.cli(p, &["INFO", "replication"])
                    .is_some_and(|r| r.contains("role:master"))
            })
            .collect()
    }

    /// `redis-cluster://` URL naming every node.
    pub fn url(&self) -> String {
        let mut ports = self.ports().into_iter();
        let first = ports.next().unwrap_or(0);
        let rest: Vec<String> = ports.map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", rest.join("&"))
    }

    /// The slot of `key` (CLUSTER KEYSLOT).
    pub fn keyslot(&self, key: &str) -> Option<u16> {
        let port = *self.live_ports().first()?;
        self.cli(port, &["CLUSTER", "KEYSLOT", key])?.parse().ok()
    }

    /// The port of the primary serving `slot` now, as a live node's
    /// CLUSTER NODES says.
    pub fn primary_of_slot(&self, slot: u16) -> Option<u16> {
        let port = *self.live_ports().first()?;
        let nodes = self.cli(port, &["CLUSTER", "NODES"])?;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let holds = fields[8..].iter().any(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                    _ => false,
                }
            });
            if holds {
                let addr = fields[1].split('@').next()?;
                return addr.rsplit(':').next()?.parse().ok();
            }
        }
        None
    }

    /// SIGKILLs node `port` (a crash: no shutdown, nothing saved).
    pub fn kill(&mut self, port: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// A connected fred client on the cluster, for reading back: it
    /// reconnects (and follows a failover), and every command times out.
    pub async fn client(&self) -> Result<fred::prelude::Client, fred::error::Error> {
        use fred::prelude::*;
        let client = Builder::from_config(Config::from_url(&self.url())?)
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(10))
            .set_policy(ReconnectPolicy::new_constant(0, 100))
            .build()?;
        client.init().await?;
        Ok(client)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
