//! One fred pool per logical DB. The DB is fixed in each pool's config and
//! SELECTed by fred on every (re)connect; nothing SELECTs at run time.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use fred::prelude::*;
use fred::types::config::{ServerConfig, TcpConfig, TlsConnector, UnresponsiveConfig};
use tickwire_core::config::{redact_url, RedisConfig, RedisTlsConfig};

use crate::WriterError;

/// A cluster batch is written once `replicas` replicas of every primary it
/// touched acknowledged it (WAIT after that primary's commands, on the same
/// connection): Redis replicates asynchronously, and a primary that dies
/// takes what it acknowledged but had not yet passed on with it. A WAIT
/// that fails (the primary died) sends the primary's commands again. A
/// primary is asked for at most the replicas it has (CLUSTER NODES, read
/// again after a WAIT failed or came back short): a promoted replica has
/// none until its old primary returns, and is written to without waiting.
#[derive(Debug)]
pub(crate) struct ReplicaWait {
    pub replicas: i64,
    pub timeout_ms: i64,
    /// Live replicas per primary (`host:port`), and whether to read them again.
    known: std::sync::Mutex<(HashMap<String, i64>, bool, Option<std::time::Instant>)>,
    warned: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Warnings of replicas falling behind come at most this often.
const REPLICA_WARN_EVERY: Duration = Duration::from_secs(5);

impl ReplicaWait {
    fn new(replicas: i64, timeout_ms: i64) -> Self {
        ReplicaWait {
            replicas,
            timeout_ms,
            known: std::sync::Mutex::new((HashMap::new(), true, None)),
            warned: std::sync::Mutex::default(),
        }
    }

    /// Reads the replicas of every primary again when asked to (at most once
    /// a second); a failed read keeps what was known.
    pub async fn refresh(&self, client: &Client) {
        {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            let recent = known
                .2
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
            if !known.1 || recent {
                return;
            }
        }
        let cmd = fred::cmd!("CLUSTER", hash: fred::types::ClusterHash::Random);
        let listing: Result<String, Error> = client.custom(cmd, vec!["NODES"]).await;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.2 = Some(std::time::Instant::now());
        let Ok(listing) = listing else { return };
        known.0 = live_replicas(&listing);
        known.1 = false;
    }

    /// How many replicas to wait for on `primary`: at most those it has.
    pub fn wanted(&self, primary: &str) -> i64 {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .0
            .get(primary)
            .map_or(self.replicas, |n| (*n).min(self.replicas))
    }

    /// A WAIT failed or came back with `acked` of `wanted`: the replicas are
    /// read again before the next batch.
    pub fn fell_short(&self, primary: &str, acked: i64, wanted: i64) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        if acked < 0 {
            return;
        }
        let now = std::time::Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.is_none_or(|at| now.duration_since(at) >= REPLICA_WARN_EVERY) {
            *warned = Some(now);
            tracing::warn!(
                primary,
                acked,
                wanted,
                timeout_ms = self.timeout_ms,
                "a primary's replicas did not acknowledge a batch within redis.wait_timeout_ms: \
                 it is written but not yet on a replica"
            );
        }
    }
}

/// One line of CLUSTER NODES.
pub(crate) struct NodeLine<'a> {
    pub id: &'a str,
    /// `host:port` (the bus port dropped).
    pub addr: &'a str,
    /// `master`, `slave`, `myself`, `fail`, ... comma-separated.
    pub flags: &'a str,
    /// A replica's primary's id (`-` for a primary).
    pub master: &'a str,
    /// The link state: `connected` or `disconnected`.
    pub link: &'a str,
}

impl NodeLine<'_> {
    pub fn is_primary(&self) -> bool {
        self.flags.contains("master")
    }
}

/// The nodes of a CLUSTER NODES listing (lines too short are skipped).
pub(crate) fn cluster_nodes(listing: &str) -> Vec<NodeLine<'_>> {
    listing
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(NodeLine {
                id: f.first()?,
                addr: f.get(1)?.split('@').next()?,
                flags: f.get(2)?,
                master: f.get(3)?,
                link: f.get(7)?,
            })
        })
        .collect()
}

/// Live replicas per primary address in a CLUSTER NODES listing.
fn live_replicas(listing: &str) -> HashMap<String, i64> {
    let nodes = cluster_nodes(listing);
    let mut count: HashMap<&str, i64> = HashMap::new();
    for n in nodes.iter().filter(|n| !n.is_primary()) {
        if n.flags.contains("slave") && !n.flags.contains("fail") && n.link == "connected" {
            *count.entry(n.master).or_default() += 1;
        }
    }
    nodes
        .iter()
        .filter(|n| n.is_primary())
        .map(|n| (n.addr.to_string(), count.get(n.id).copied().unwrap_or(0)))
        .collect()
}

/// Connected pools, one per logical DB number, each of `size` connections.
pub struct RedisPools {
    pools: BTreeMap<u8, Pool>,
    size: usize,
    /// The URL, password hidden, for messages.
    url: String,
    /// A Redis Cluster: every pool reaches every primary.
    cluster: bool,
    /// Cluster: the replicas each batch waits for (`redis.wait_replicas`).
    replica_wait: Option<ReplicaWait>,
    /// Restarts of the Redis server noticed (see [`RedisPools::watch_restarts`]).
    restarts: std::sync::Arc<RestartWatch>,
}

/// What the process knows of the Redis server it writes to: its `run_id`
/// (INFO server), which a restart changes, and witnesses: the newest tick
/// entries Redis acknowledged (stream key and ID), with when. A Redis that
/// restarts with its data (AOF, RDB) still holds an entry acknowledged
/// before the connection dropped; one without persistence comes back
/// empty, and that entry is gone with everything written before it. Only
/// an entry acknowledged before the first connection error is asked for:
/// one acknowledged later may be a resend to the new server. No extra key
/// is written.
#[derive(Debug, Default)]
pub struct RestartWatch {
    state: tokio::sync::Mutex<Option<String>>,
    witness: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, Witness)>>,
    /// When a connection first failed since the last check.
    dropped: std::sync::Mutex<Option<std::time::Instant>>,
    restarts: std::sync::atomic::AtomicU64,
    lost: std::sync::atomic::AtomicU64,
    /// Connection errors of any connection so far.
    errors: std::sync::atomic::AtomicU64,
    /// Reconnects of any connection so far.
    reconnects: std::sync::atomic::AtomicU64,
}

/// An entry as XRANGE returns it.
type StreamEntry = (String, HashMap<String, String>);

/// A stream entry Redis acknowledged: (db, stream key, entry ID).
type Witness = (u8, Key, String);

/// Restarts noticed during a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restarts {
    /// Times the run_id changed.
    pub restarts: u64,
    /// Of those, restarts after which this process's marker was gone: what
    /// it wrote before is gone too.
    pub lost_data: u64,
}

/// The `run_id` of `INFO server`'s reply.
fn run_id_of(info: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("run_id:"))
        .map(|id| id.trim().to_string())
}

impl RedisPools {
    /// Connects a pool for each DB in `dbs`. Fails if Redis cannot be reached
    /// (the first connect is not retried); later drops are reconnected with
    /// exponential backoff, and every command has a timeout.
    pub async fn connect(
        cfg: &RedisConfig,
        dbs: impl IntoIterator<Item = u8>,
    ) -> Result<Self, WriterError> {
        let base = client_config(cfg)?;
        let command_timeout = Duration::from_millis(cfg.command_timeout_ms);
        let mut wanted: Vec<u8> = dbs.into_iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Every pool dials at once: start-up costs one connect round, not one
        // per DB and connection (a short replay pays it on every file).
        let connects = wanted.into_iter().map(|db| {
            let mut config = base.clone();
            // A cluster has DB 0 only: each DB's pool is a namespace there.
            config.database = (!config.server.is_clustered()).then_some(db);
            config.fail_fast = true;
            async move {
                let pool = Builder::from_config(config)
                    .with_connection_config(|c| {
                        c.connection_timeout = Duration::from_millis(cfg.connect_timeout_ms);
                        c.internal_command_timeout = command_timeout;
                        // In-flight commands are re-sent after a reconnect; every
                        // write tickwire makes is idempotent, so that is safe.
                        c.max_command_attempts = 3;
                        c.unresponsive = UnresponsiveConfig {
                            max_timeout: Some(command_timeout),
                            interval: Duration::from_secs(1),
                        };
                        c.tcp = TcpConfig {
                            nodelay: Some(true),
                            ..Default::default()
                        };
                    })
                    .with_performance_config(|p| {
                        p.default_command_timeout = command_timeout;
                        // A lane's pipeline of a full batch is a few thousand
                        // commands: flushed every 1,000 frames rather than
                        // fred's 200, fewer writes for both sides (5% less
                        // CPU per tick in tickwire, 5-10% in redis-server).
                        p.max_feed_count = 1_000;
                    })
                    .set_policy(ReconnectPolicy::new_exponential(
                        cfg.reconnect_max_attempts,
                        100,
                        u32::try_from(cfg.reconnect_max_delay_ms).unwrap_or(u32::MAX),
                        2,
                    ))
                    .build_pool(cfg.pool_size)
                    .map_err(|source| WriterError::Connect {
                        url: redact_url(&cfg.url),
                        db,
                        source,
                    })?;
                pool.init()
                    .await
                    .map_err(|source| connect_error(cfg, db, source))?;
                Ok((db, pool))
            }
        });
        let mut pools = BTreeMap::new();
        let mut first_error = None;
        // All of them finish (none is left dialling); the first failure, in DB
        // order, is the one reported.
        for connected in futures_util::future::join_all(connects).await {
            match connected {
                Ok((db, pool)) => {
                    pools.insert(db, pool);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            for pool in pools.values() {
                let _ = pool.quit().await;
            }
            return Err(e);
        }
        Ok(Self {
            pools,
            size: cfg.pool_size,
            url: redact_url(&cfg.url),
            cluster: base.server.is_clustered(),
            replica_wait: (base.server.is_clustered() && cfg.wait_replicas > 0).then(|| {
                ReplicaWait::new(
                    i64::from(cfg.wait_replicas),
                    i64::try_from(cfg.wait_timeout_ms).unwrap_or(i64::MAX),
                )
            }),
            restarts: std::sync::Arc::default(),
        })
    }

    /// Starts noticing Redis restarts: learns the server's `run_id` and
    /// checks it again after every reconnect of any connection (fred's
    /// reconnect events) until the returned task is aborted. A restart is
    /// logged once and counted, and counted as lost data when the witness
    /// (see [`RestartWatch`]) is gone. Failing to learn the run_id (an ACL
    /// without INFO) only turns the watch off, with a warning.
    pub async fn watch_restarts(&self, db: u8) -> tokio::task::JoinHandle<()> {
        let watch = std::sync::Arc::clone(&self.restarts);
        // A cluster's run_id is per node, and a failover changes which node
        // holds a slot: there the writes' resends carry a failover (the
        // writes are idempotent), and no run_id is watched.
        if let Some(client) = self.client(db, 0).ok().filter(|_| !self.cluster) {
            match server_run_id(client).await {
                Ok(id) => *watch.state.lock().await = Some(id),
                Err(e) => tracing::warn!(
                    url = %self.url,
                    error = %e,
                    "cannot read Redis' run_id (INFO server): a Redis restart will not be noticed"
                ),
            }
        }
        // Every connection's reconnect events, funnelled into one.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut forwards = tokio::task::JoinSet::new();
        for pool in self.pools.values() {
            for client in pool.clients() {
                let mut events = client.reconnect_rx();
                let mut errors = client.error_rx();
                let w = std::sync::Arc::clone(&watch);
                let tx = tx.clone();
                // One task per connection, its errors first: fred sends a
                // connection's error before its reconnect, and the drop
                // must be known before the reconnect's check runs, or the
                // witness could be an entry resent after the restart (found
                // there, so a restart without data would pass as harmless).
                forwards.spawn(async move {
                    use tokio::sync::broadcast::error::RecvError;
                    let (mut errors_open, mut events_open) = (true, true);
                    while errors_open || events_open {
                        tokio::select! {
                            biased;
                            e = errors.recv(), if errors_open => match e {
                                Ok(_) | Err(RecvError::Lagged(_)) => {
                                    w.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    w.dropped
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .get_or_insert_with(std::time::Instant::now);
                                }
                                Err(RecvError::Closed) => errors_open = false,
                            },
                            r = events.recv(), if events_open => match r {
                                Ok(_) | Err(RecvError::Lagged(_)) => {
                                    w.reconnects
                                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    let _ = tx.try_send(());
                                }
                                Err(RecvError::Closed) => events_open = false,
                            },
                        }
                    }
                });
            }
        }
        drop(tx);
        let client = self.client(db, 0).ok().cloned();
        let pools: Vec<(u8, Client)> = self
            .pools
            .iter()
            .filter_map(|(db, p)| p.clients().first().map(|c| (*db, c.clone())))
            .collect();
        let url = self.url.clone();
        tokio::spawn(async move {
            // Aborting this task drops the forwarders with it.
            let _forwards = forwards;
            let Some(client) = client else { return };
            while rx.recv().await.is_some() {
                watch.check(&client, &pools, &url).await;
            }
        })
    }

    /// Checks the run_id once more (the end of a run: a restart without a
    /// reconnect seen yet) and returns the restarts noticed so far.
    pub async fn restarts(&self, db: u8) -> Restarts {
        if let Ok(client) = self.client(db, 0) {
            let pools: Vec<(u8, Client)> = self
                .pools
                .iter()
                .filter_map(|(db, p)| p.clients().first().map(|c| (*db, c.clone())))
                .collect();
            self.restarts.check(client, &pools, &self.url).await;
        }
        self.restarts.counts()
    }

    /// The restart watch, for the lanes to leave their witness in.
    pub(crate) fn restart_watch(&self) -> &RestartWatch {
        &self.restarts
    }

    /// Connections per DB (the number of writer lanes).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Cluster: the replicas a batch waits for on each primary it wrote to.
    pub(crate) fn replica_wait(&self) -> Option<&ReplicaWait> {
        self.replica_wait.as_ref()
    }

    /// Whether the pools reach a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The URL connected to, its password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The DB numbers connected.
    pub fn dbs(&self) -> impl Iterator<Item = u8> + '_ {
        self.pools.keys().copied()
    }

    /// The pool of DB `db`, if it was connected.
    pub fn pool(&self, db: u8) -> Option<&Pool> {
        self.pools.get(&db)
    }

    /// Connection `lane` of DB `db`. Each lane always uses the same connection,
    /// so its writes reach Redis in the order it sends them.
    pub fn client(&self, db: u8, lane: usize) -> Result<&Client, WriterError> {
        let pool = self.pools.get(&db).ok_or(WriterError::NoPool(db))?;
        let clients = pool.clients();
        Ok(&clients[lane % clients.len()])
    }

    /// Closes every connection.
    pub async fn quit(&self) {
        futures_util::future::join_all(self.pools.values().map(|pool| pool.quit())).await;
    }
}

/// fred's config for `cfg.url`: for `rediss://` always with a rustls (ring)
/// connector, verified against `[redis.tls] ca_file` or the system store,
/// with the client certificate of `[redis.tls]` if one is given. A TLS URL
/// never yields a plaintext config.
pub fn client_config(cfg: &RedisConfig) -> Result<Config, WriterError> {
    let mut config = tls_or_plain_config(cfg)?;
    if cfg.cluster {
        // `redis.cluster = true` with a `redis://` URL: that node is the
        // first the cluster is discovered from.
        if let ServerConfig::Centralized { server } = &config.server {
            config.server = ServerConfig::Clustered {
                hosts: vec![server.clone()],
                policy: Default::default(),
            };
        }
    }
    Ok(config)
}

fn tls_or_plain_config(cfg: &RedisConfig) -> Result<Config, WriterError> {
    let url = redact_url(&cfg.url);
    if !cfg.uses_tls() {
        return Config::from_url(&cfg.url).map_err(|source| WriterError::Url { url, source });
    }
    // Parsed as plaintext, then given our own connector: fred's own choice
    // for `rediss://` would read the system store even when a CA is given.
    let plain = cfg
        .url
        .replacen("rediss://", "redis://", 1)
        .replacen("valkeys://", "valkey://", 1)
        .replacen("rediss-cluster://", "redis-cluster://", 1)
        .replacen("valkeys-cluster://", "valkey-cluster://", 1);
    let mut config = Config::from_url(&plain).map_err(|source| WriterError::Url {
        url: url.clone(),
        source,
    })?;
    let tls = cfg.tls.clone().unwrap_or_default();
    let connector = rustls_connector(&tls).map_err(|message| WriterError::Tls {
        url: url.clone(),
        message,
    })?;
    config.tls = Some(connector.into());
    if let Some(name) = &tls.server_name {
        match &mut config.server {
            ServerConfig::Centralized { server } => {
                server.tls_server_name = Some(name.as_str().into());
            }
            ServerConfig::Clustered { hosts, .. } => {
                for server in hosts {
                    server.tls_server_name = Some(name.as_str().into());
                }
            }
            _ => {}
        }
    }
    if !config.uses_tls() {
        // Unreachable by construction (tls was set just above); kept as a
        // guard so that a rediss:// URL can never go out in cleartext.
        return Err(WriterError::Tls {
            url,
            message: "no TLS connector was configured".into(),
        });
    }
    Ok(config)
}

/// A rustls client config on the ring provider from `[redis.tls]`.
fn rustls_connector(tls: &RedisTlsConfig) -> Result<TlsConnector, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let read_certs =
        |path: &std::path::Path, what: &str| -> Result<Vec<CertificateDer<'static>>, String> {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "the {what} {} holds no PEM certificate",
                    path.display()
                ));
            }
            Ok(certs)
        };
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            for cert in read_certs(path, "CA file (redis.tls.ca_file)")? {
                roots.add(cert).map_err(|e| {
                    format!("the CA file {} (redis.tls.ca_file): {e}", path.display())
                })?;
            }
        }
        None => {
            // The system store, as fred loads it (rustls-native-certs).
            return match (&tls.cert_file, &tls.key_file) {
                (None, None) => TlsConnector::default_rustls()
                    .map_err(|e| format!("cannot load the system's CA certificates: {e}")),
                _ => {
                    Err("a client certificate (redis.tls.cert_file) needs redis.tls.ca_file".into())
                }
            };
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls: {e}"))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client certificate (redis.tls.cert_file)")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "cannot read the private key {} (redis.tls.key_file): {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key do not go together: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config.into())
}

/// The error of a first connect that failed; for a TLS URL, what the
/// handshake's failure means in `[redis.tls]` terms.
fn connect_error(cfg: &RedisConfig, db: u8, source: fred::error::Error) -> WriterError {
    let url = redact_url(&cfg.url);
    if !cfg.uses_tls() {
        return WriterError::Connect { url, db, source };
    }
    let detail = format!("{source:?} {source}");
    let has = |s: &str| detail.contains(s);
    let ca = if cfg.tls.as_ref().is_some_and(|t| t.ca_file.is_some()) {
        "the CA of redis.tls.ca_file"
    } else {
        "a CA of the system's certificate store (set redis.tls.ca_file)"
    };
    let cause = if has("UnknownIssuer") {
        format!("the server's certificate does not verify: it is not signed by {ca}")
    } else if has("NotValidForName") {
        "the server's certificate is not valid for the host name of the URL \
         (or redis.tls.server_name)"
            .to_string()
    } else if has("Expired") || has("NotValidYet") {
        "the server's certificate is outside its validity period".to_string()
    } else if has("InvalidCertificate") || has("BadSignature") {
        "the server's certificate does not verify".to_string()
    } else if has("CertificateRequired") || has("HandshakeFailure") {
        "the server wants a client certificate (set redis.tls.cert_file and key_file)".to_string()
    } else if has("BadCertificate") || has("UnknownCA") {
        "the server refused the client certificate of redis.tls.cert_file".to_string()
    } else if has("InvalidContentType") || has("CorruptMessage") || has("InvalidMessage") {
        "the server did not answer in TLS: is the port a plaintext port?".to_string()
    } else if matches!(source.kind(), ErrorKind::Timeout) {
        format!(
            "no TLS handshake within {} ms: is the port Redis's tls-port (and the host up)?",
            cfg.connect_timeout_ms
        )
    } else {
        return WriterError::Connect { url, db, source };
    };
    WriterError::TlsHandshake { url, cause, source }
}

/// Redis' `run_id`, from INFO server.
async fn server_run_id(client: &Client) -> Result<String, Error> {
    let info: String = client.info(Some(fred::types::InfoKind::Server)).await?;
    run_id_of(&info)
        .ok_or_else(|| Error::new(ErrorKind::Protocol, "INFO server has no run_id field"))
}

impl RestartWatch {
    /// The counts so far.
    pub fn counts(&self) -> Restarts {
        use std::sync::atomic::Ordering::Relaxed;
        Restarts {
            restarts: self.restarts.load(Relaxed),
            lost_data: self.lost.load(Relaxed),
        }
    }

    /// Changes whenever a connection failed or reconnected or Redis was
    /// seen to restart: what a lane remembers of Redis' keys (which TTLs it
    /// set) holds only while this stays the same, and a batch out while it
    /// changed waited for Redis even when fred held and resent its commands
    /// without the lane seeing an error.
    pub(crate) fn generation(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.errors.load(Relaxed) + self.reconnects.load(Relaxed) + self.restarts.load(Relaxed)
    }

    /// The newest tick entry Redis acknowledged (a lane, after a batch).
    pub(crate) fn witness(&self, db: u8, key: &Key, id: (u64, u64)) {
        // A panic while holding this lock cannot leave it half-written (one
        // assignment): a poisoned lock is still sound.
        let mut w = self.witness.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= 256 {
            w.pop_front();
        }
        w.push_back((
            std::time::Instant::now(),
            (db, key.clone(), format!("{}-{}", id.0, id.1)),
        ));
    }

    /// Compares Redis' run_id with the one known; on a change, counts and
    /// logs the restart (once: the run_id is then the new one) and whether
    /// the witness survived it. A Redis that cannot answer now is checked
    /// on its next reconnect.
    async fn check(&self, client: &Client, pools: &[(u8, Client)], url: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        use tickwire_core::telemetry as t;
        let mut known = self.state.lock().await;
        let Some(old) = known.clone() else {
            return;
        };
        let now = match server_run_id(client).await {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read Redis' run_id now; checked again on the next reconnect");
                return;
            }
        };
        if now == old {
            // No restart: the drop that led here (a network blip, a killed
            // connection) is over. Kept, its time would stand for a later
            // restart's and pick a witness from before it, or none at all
            // when it came before the first write: a restart without data
            // would then pass as harmless.
            self.dropped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            return;
        }
        // The newest entry acknowledged before a connection first failed
        // (or, without an error seen, before now).
        let dropped = self
            .dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(std::time::Instant::now);
        let witness = self
            .witness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|(at, _)| *at < dropped)
            .map(|(_, w)| w.clone());
        let lost = match witness {
            // Nothing acknowledged yet: nothing to lose.
            None => false,
            Some((db, key, id)) => {
                let Some((_, c)) = pools.iter().find(|(d, _)| *d == db) else {
                    return;
                };
                let mut found: Result<Vec<StreamEntry>, Error> = c
                    .xrange(key.clone(), id.as_str(), id.as_str(), Some(1))
                    .await;
                if found.as_ref().is_err_and(crate::is_loading) {
                    // INFO answers while Redis loads its data set, XRANGE
                    // not: ask once it has loaded rather than at the next
                    // reconnect (there may be none).
                    crate::wait_loaded(c).await;
                    found = c.xrange(key, id.as_str(), id.as_str(), Some(1)).await;
                }
                match found {
                    Ok(entries) => entries.is_empty(),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read the restart witness now; checked again on the next reconnect");
                        return;
                    }
                }
            }
        };
        self.restarts.fetch_add(1, Relaxed);
        metrics::counter!(t::REDIS_RESTARTS).increment(1);
        if lost {
            self.lost.fetch_add(1, Relaxed);
            metrics::counter!(t::REDIS_RESTARTS_DATA_LOST).increment(1);
            tracing::error!(
                url,
                old_run_id = %old,
                new_run_id = %now,
                "Redis restarted without its data (no persistence): what this process wrote \
                 before the restart is gone"
            );
        } else {
            tracing::warn!(
                url,
                old_run_id = %old,
                new_run_id = %now,
                "Redis restarted and still holds what this process wrote: nothing lost"
            );
        }
        *known = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: &str, tls: Option<RedisTlsConfig>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            tls,
            ..RedisConfig::default()
        }
    }

    #[test]
    fn the_run_id_is_read_from_info_server() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:4f1c0d6e9a\r\ntcp_port:6379\r\n";
        assert_eq!(run_id_of(info).as_deref(), Some("4f1c0d6e9a"));
        assert_eq!(run_id_of("# Server\r\nredis_version:7.0.15\r\n"), None);
    }

    #[test]
    fn a_tls_url_always_gets_a_rustls_connector_and_a_plain_one_never() {
        // The system store (no [redis.tls]), and a name to check given.
        for cfg in [
            redis("rediss://h:6380/2", None),
            redis("valkeys://h:6380", None),
            redis(
                "rediss://h:6380",
                Some(RedisTlsConfig {
                    server_name: Some("redis.internal".into()),
                    ..Default::default()
                }),
            ),
        ] {
            let config = client_config(&cfg).expect("a TLS config");
            assert!(config.uses_rustls(), "{}", cfg.url);
            let ServerConfig::Centralized { server } = &config.server else {
                panic!("centralized");
            };
            let expected = cfg.tls.and_then(|t| t.server_name);
            assert_eq!(
                server.tls_server_name.as_ref().map(|s| s.to_string()),
                expected
            );
        }
        let plain = client_config(&redis("redis://h:6379", None)).unwrap();
        assert!(!plain.uses_tls());
        // A CA file that is not PEM is refused naming it.
        let dir = std::env::temp_dir().join(format!("tw-pools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let err = client_config(&redis(
            "rediss://:pw@h:6380",
            Some(RedisTlsConfig {
                ca_file: Some(ca.clone()),
                ..Default::default()
            }),
        ))
        .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("redis.tls.ca_file"), "{text}");
        assert!(text.contains("rediss://:***@h:6380"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn live_replicas_count_connected_replicas_not_failed_ones() {
        let listing = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected
e5 127.0.0.1:7005@17005 slave,fail b2 0 0 2 disconnected
f6 127.0.0.1:7006@17006 slave b2 0 0 2 connected
";
        let n = live_replicas(listing);
        assert_eq!(n.get("127.0.0.1:7001"), Some(&1));
        assert_eq!(n.get("127.0.0.1:7002"), Some(&1));
        assert_eq!(n.get("127.0.0.1:7003"), Some(&0));
        assert_eq!(n.len(), 3);
    }

    /// A drop that was no restart is forgotten when its reconnect is
    /// checked: the next restart's witness is chosen by that restart's own
    /// drop, not by an earlier one that came before any write.
    #[tokio::test]
    async fn a_drop_without_a_restart_does_not_stand_for_the_next_one() {
        let server = tickwire_sandbox::RedisServer::start()
            .expect("redis-server is installed (apt-get install redis-server)");
        let client = Client::new(Config::from_url(&server.url()).unwrap(), None, None, None);
        client.init().await.unwrap();
        let watch = RestartWatch::default();
        *watch.state.lock().await = Some(server_run_id(&client).await.unwrap());
        // A connection failed before anything was written; Redis stayed up.
        *watch.dropped.lock().unwrap() = Some(std::time::Instant::now());
        watch.check(&client, &[(0, client.clone())], "test").await;
        assert!(watch.dropped.lock().unwrap().is_none());
        assert_eq!(watch.restarts.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
