//! `tickwire health`: one look at the Redis tickwire writes to. PING and
//! version, memory, keys per DB, a TTL audit (SCAN samples, never KEYS), tick
//! stream lengths and consumer-group lag, every process's heartbeat age and
//! feed status. On a Redis Cluster: every node (reachable, role, memory,
//! keys), and keys per namespace by SCAN on every primary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fred::prelude::*;
use fred::types::scan::ScanType;
use futures_util::StreamExt;
use serde::Serialize;
use tickwire_core::config::redact_url;
use tickwire_core::{Config, Db};

use crate::{writer_dbs, RedisPools};

/// What to check and how strictly.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Keys sampled per DB for the TTL audit.
    pub ttl_sample: usize,
    /// Tick streams inspected (length and groups) at most.
    pub max_streams: usize,
    /// A consumer group further behind than this many entries is a problem.
    pub max_lag: u64,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            ttl_sample: 1_000,
            max_streams: 200,
            max_lag: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unreachable,
}

impl Status {
    /// The process exit code: 0 healthy, 1 degraded, 2 unreachable.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Healthy => 0,
            Status::Degraded => 1,
            Status::Unreachable => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisInfo {
    pub url: String,
    pub version: String,
    pub ping_ms: f64,
    pub used_memory: u64,
    pub used_memory_human: String,
    pub maxmemory: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbHealth {
    pub db: u8,
    pub purpose: String,
    pub keys: u64,
    /// Keys whose TTL was checked.
    pub sampled: u64,
    pub without_ttl: u64,
    /// Some of the keys without a TTL.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupLag {
    pub name: String,
    pub consumers: u64,
    pub pending: u64,
    /// Entries not yet delivered to the group (`null` when Redis cannot tell).
    pub lag: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamHealth {
    pub db: u8,
    pub key: String,
    pub length: u64,
    pub groups: Vec<GroupLag>,
}

/// One node of a Redis Cluster, as CLUSTER NODES lists it and as it answers.
#[derive(Debug, Clone, Serialize)]
pub struct NodeHealth {
    /// `host:port`.
    pub addr: String,
    /// `primary` or `replica`.
    pub role: String,
    /// CLUSTER NODES' flags (`master`, `slave`, `fail`, ...).
    pub flags: String,
    pub reachable: bool,
    pub used_memory: u64,
    pub used_memory_human: String,
    pub maxmemory: u64,
    /// DBSIZE: keys held (a replica holds its primary's).
    pub keys: u64,
}

/// A feed's gaps of the last hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GapHealth {
    pub gaps: u64,
    /// Trades of them not filled.
    pub missing: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeartbeatHealth {
    pub age_ms: i64,
    pub fields: BTreeMap<String, String>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: Status,
    /// Why it is not healthy, one line each.
    pub problems: Vec<String>,
    pub redis: Option<RedisInfo>,
    pub databases: Vec<DbHealth>,
    pub streams: Vec<StreamHealth>,
    /// Tick streams found in all (more than `streams` lists when capped).
    pub tick_streams: u64,
    /// This config's heartbeat (its `[process] instance`'s, if named).
    pub heartbeat: Option<HeartbeatHealth>,
    /// Every process's heartbeat found, by key (`tickwire:heartbeat`,
    /// `tickwire:heartbeat:{instance}`).
    pub heartbeats: BTreeMap<String, HeartbeatHealth>,
    pub feeds: BTreeMap<String, String>,
    /// Per feed, its gaps of the last hour (`gaps:{feed}`).
    pub gaps: BTreeMap<String, GapHealth>,
    /// A Redis Cluster's nodes (empty for one Redis).
    pub nodes: Vec<NodeHealth>,
}

impl HealthReport {
    fn unreachable(url: &str, why: String) -> Self {
        // Reached, but the ACL refused a check: say so, not "unreachable".
        let problem = if why.contains("NOPERM") {
            format!(
                "Redis at {} refused a check (the user needs the ACL line for health in \
                 docs/operating.md, \"Least privilege\"): {why}",
                redact_url(url)
            )
        } else {
            format!("Redis at {} is unreachable: {why}", redact_url(url))
        };
        HealthReport {
            status: Status::Unreachable,
            problems: vec![problem],
            redis: None,
            databases: Vec::new(),
            streams: Vec::new(),
            tick_streams: 0,
            heartbeat: None,
            heartbeats: BTreeMap::new(),
            feeds: BTreeMap::new(),
            gaps: BTreeMap::new(),
            nodes: Vec::new(),
        }
    }
}

/// Checks the Redis of `config`. Never fails: an unreachable Redis is a report.
pub async fn check(config: &Config, opts: &HealthOptions) -> HealthReport {
    let mut redis_cfg = config.redis.clone();
    redis_cfg.pool_size = 1;
    redis_cfg.connect_timeout_ms = redis_cfg.connect_timeout_ms.min(3_000);
    redis_cfg.command_timeout_ms = redis_cfg.command_timeout_ms.min(5_000);
    let dbs = writer_dbs(config);
    let pools = match RedisPools::connect(&redis_cfg, dbs.iter().copied()).await {
        Ok(p) => p,
        Err(e) => return HealthReport::unreachable(&config.redis.url, e.to_string()),
    };
    let report = match gather(config, opts, &pools, &dbs).await {
        Ok(r) => r,
        Err(e) => HealthReport::unreachable(&config.redis.url, redact_url(&e.to_string())),
    };
    pools.quit().await;
    report
}

async fn gather(
    config: &Config,
    opts: &HealthOptions,
    pools: &RedisPools,
    dbs: &[u8],
) -> Result<HealthReport, Box<dyn std::error::Error + Send + Sync>> {
    let keys = config.key_templates();
    let system = pools.client(config.databases.get(Db::System), 0)?;
    let mut problems = Vec::new();
    let redis = redis_info(config, system, &mut problems).await?;
    let cluster = pools.is_cluster();
    let nodes = if cluster {
        cluster_nodes(config, system, &mut problems).await?
    } else {
        Vec::new()
    };
    let databases = db_health(config, opts, pools, dbs, &mut problems).await?;
    let (streams, tick_streams) = stream_health(config, opts, pools, &mut problems).await?;
    let (heartbeat, heartbeats) = heartbeat_health(config, system, cluster, &mut problems).await?;
    let feeds = feed_health(keys, system, cluster, &mut problems).await?;
    let gaps = gap_health(keys, system, cluster, &mut problems).await?;
    Ok(HealthReport {
        status: if problems.is_empty() {
            Status::Healthy
        } else {
            Status::Degraded
        },
        problems,
        redis: Some(redis),
        databases,
        streams,
        tick_streams,
        heartbeat,
        heartbeats,
        feeds,
        gaps,
        nodes,
    })
}

/// The server's version, memory and round trip; memory near maxmemory is a problem.
async fn redis_info(
    config: &Config,
    system: &Client,
    problems: &mut Vec<String>,
) -> Result<RedisInfo, Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    let _: String = system.ping(None).await?;
    let ping_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let server: String = system.info(Some(fred::types::InfoKind::Server)).await?;
    let memory: String = system.info(Some(fred::types::InfoKind::Memory)).await?;
    let info = |text: &str, field: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let redis = RedisInfo {
        url: redact_url(&config.redis.url),
        version: info(&server, "redis_version"),
        ping_ms,
        used_memory: info(&memory, "used_memory").parse().unwrap_or(0),
        used_memory_human: info(&memory, "used_memory_human"),
        maxmemory: info(&memory, "maxmemory").parse().unwrap_or(0),
    };
    if redis.maxmemory > 0 && redis.used_memory * 10 > redis.maxmemory * 9 {
        problems.push(format!(
            "memory at {} of maxmemory {}",
            redis.used_memory, redis.maxmemory
        ));
    }

    Ok(redis)
}

/// Every DB (a cluster: every namespace) tickwire writes: its keys, and a
/// sample of their TTLs.
async fn db_health(
    config: &Config,
    opts: &HealthOptions,
    pools: &RedisPools,
    dbs: &[u8],
    problems: &mut Vec<String>,
) -> Result<Vec<DbHealth>, Box<dyn std::error::Error + Send + Sync>> {
    let keys = config.key_templates();
    let d = &config.databases;
    let cluster = pools.is_cluster();
    // Every DB (a cluster: every namespace) tickwire writes must expire what
    // it holds.
    let mut databases = Vec::with_capacity(dbs.len());
    for &db in dbs {
        let c = pools.client(db, 0)?;
        let (total, sample) = if cluster {
            // The namespace's keys on every primary, counted to the end.
            let pattern = format!("{}*", glob_escape(keys.prefix(db)));
            scan_counting(c, &pattern, opts.ttl_sample).await?
        } else {
            let total: u64 = c.dbsize().await?;
            (total, scan(c, false, "*", None, opts.ttl_sample).await?)
        };
        let p = c.pipeline();
        for k in &sample {
            let _: () = p.ttl(k.clone()).await?;
        }
        let ttls: Vec<i64> = if sample.is_empty() {
            Vec::new()
        } else {
            p.all().await?
        };
        let no_ttl: Vec<String> = sample
            .iter()
            .zip(&ttls)
            .filter(|(_, t)| **t == -1)
            .map(|(k, _)| k.as_str_lossy().into_owned())
            .collect();
        let place = if cluster {
            format!("namespace {}", keys.prefix(db))
        } else {
            format!("db {db}")
        };
        if !no_ttl.is_empty() {
            problems.push(format!(
                "{place}: {} of {} sampled keys have no TTL (e.g. {})",
                no_ttl.len(),
                sample.len(),
                no_ttl[0]
            ));
        }
        databases.push(DbHealth {
            db,
            purpose: if cluster {
                tickwire_core::config::namespace_of(d, db)
            } else {
                d.names_of(db).join(",")
            },
            keys: total,
            sampled: sample.len() as u64,
            without_ttl: no_ttl.len() as u64,
            examples: no_ttl.into_iter().take(5).collect(),
        });
    }

    Ok(databases)
}

/// The tick streams (at most `opts.max_streams` looked at) and how many there are.
async fn stream_health(
    config: &Config,
    opts: &HealthOptions,
    pools: &RedisPools,
    problems: &mut Vec<String>,
) -> Result<(Vec<StreamHealth>, u64), Box<dyn std::error::Error + Send + Sync>> {
    let keys = config.key_templates();
    let d = &config.databases;
    let cluster = pools.is_cluster();
    // Tick streams: length and consumer-group lag.
    let mut streams = Vec::new();
    let mut tick_streams = 0;
    let mut stream_dbs = vec![d.get(Db::Premarket), d.get(Db::ContinuousMarket)];
    stream_dbs.dedup();
    for db in stream_dbs {
        let c = pools.client(db, 0)?;
        let pattern = keys.tick_stream.render(keys.prefix(db), |_| Some("*"));
        let mut found = scan(c, cluster, &pattern, Some(ScanType::Stream), usize::MAX).await?;
        found.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        tick_streams += found.len() as u64;
        for key in found.into_iter().take(opts.max_streams) {
            let length: u64 = c.xlen(key.clone()).await?;
            let raw: Value = c.xinfo_groups(key.clone()).await?;
            let groups = parse_groups(raw);
            for g in &groups {
                if g.lag.is_some_and(|l| l > opts.max_lag) {
                    problems.push(format!(
                        "db {db}: group {} of {} is {} entries behind",
                        g.name,
                        key.as_str_lossy(),
                        g.lag.unwrap_or(0)
                    ));
                }
            }
            streams.push(StreamHealth {
                db,
                key: key.as_str_lossy().into_owned(),
                length,
                groups,
            });
        }
    }

    Ok((streams, tick_streams))
}

/// This config's heartbeat and every running tickwire's.
async fn heartbeat_health(
    config: &Config,
    system: &Client,
    cluster: bool,
    problems: &mut Vec<String>,
) -> Result<
    (Option<HeartbeatHealth>, BTreeMap<String, HeartbeatHealth>),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let keys = config.key_templates();
    // The heartbeat of every running tickwire: this config's, the unnamed
    // process's and every named instance's.
    let own = keys.heartbeat.render(keys.prefix_of(Db::System), |_| None);
    let placed = |instance| {
        let place = tickwire_core::config::Placement {
            instance,
            ..config.placement()
        };
        config.keys.compile_for(place).map_err(|e| {
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    let unnamed = placed(None)?;
    let unnamed = unnamed
        .heartbeat
        .render(unnamed.prefix_of(Db::System), |_| None);
    let any = placed(Some("*"))?;
    // The glob of every instance: the prefix is matched as written.
    let keys_any = any
        .heartbeat
        .render(&glob_escape(any.prefix_of(Db::System)), |_| None);
    let mut hb_keys: Vec<String> = scan(system, cluster, &keys_any, None, usize::MAX)
        .await?
        .iter()
        .map(|k| k.as_str_lossy().into_owned())
        .collect();
    hb_keys.extend([own.clone(), unnamed]);
    hb_keys.sort();
    hb_keys.dedup();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let stale_after = Duration::from_millis(3 * config.heartbeat.interval_ms.max(1_000));
    let mut heartbeats = BTreeMap::new();
    for key in hb_keys {
        let fields: BTreeMap<String, String> = system.hgetall(key.as_str()).await?;
        if fields.is_empty() {
            continue;
        }
        let updated: i64 = fields
            .get("updated_at")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let age_ms = now_ms - updated;
        if age_ms > stale_after.as_millis() as i64 {
            problems.push(format!("heartbeat {key} is {age_ms} ms old"));
        }
        heartbeats.insert(key, HeartbeatHealth { age_ms, fields });
    }
    let heartbeat = heartbeats.get(&own).cloned();
    if heartbeat.is_none() && (config.process.instance.is_some() || heartbeats.is_empty()) {
        problems.push(format!(
            "no heartbeat ({own}): tickwire is not running against this Redis"
        ));
    }

    Ok((heartbeat, heartbeats))
}

/// Every feed's status.
async fn feed_health(
    keys: &tickwire_core::config::Keys,
    system: &Client,
    cluster: bool,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error + Send + Sync>> {
    // Feed status keys.
    let status_pattern = keys
        .feed_status
        .render(keys.prefix_of(Db::System), |_| Some("*"));
    let mut feeds = BTreeMap::new();
    let status_keys = scan(system, cluster, &status_pattern, None, usize::MAX).await?;
    for k in status_keys {
        let feed = feed_of_key(&status_pattern, &k);
        let v: Option<String> = system.get(k).await?;
        let v = v.unwrap_or_default();
        if v != "connected" {
            problems.push(format!("feed {feed} is {v}"));
        }
        feeds.insert(feed, v);
    }

    Ok(feeds)
}

/// Every feed's gaps of the last hour: one with missing trades is a problem
/// (the bars, volume and indicators of its minutes lack them).
async fn gap_health(
    keys: &tickwire_core::config::Keys,
    system: &Client,
    cluster: bool,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, GapHealth>, Box<dyn std::error::Error + Send + Sync>> {
    let pattern = keys.gaps.render(keys.prefix_of(Db::System), |_| Some("*"));
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .saturating_sub(3_600_000);
    let mut out = BTreeMap::new();
    for k in scan(
        system,
        cluster,
        &pattern,
        Some(ScanType::Stream),
        usize::MAX,
    )
    .await?
    {
        let feed = feed_of_key(&pattern, &k);
        let entries: Vec<(String, BTreeMap<String, String>)> =
            system.xrange(k, since.to_string(), "+", None).await?;
        let mut h = GapHealth::default();
        let mut symbols = Vec::new();
        for (_, g) in &entries {
            h.gaps += 1;
            let missing: u64 = g.get("missing").and_then(|m| m.parse().ok()).unwrap_or(0);
            h.missing += missing;
            if missing > 0 {
                if let Some(s) = g.get("symbol").filter(|s| !symbols.contains(*s)) {
                    symbols.push(s.clone());
                }
            }
        }
        if h.missing > 0 {
            problems.push(format!(
                "feed {feed}: {} trades missing in gaps of the last hour ({})",
                h.missing,
                symbols.join(", ")
            ));
        }
        out.insert(feed, h);
    }
    Ok(out)
}

/// The feed a key of a per-feed template names: what stands for the `*`
/// of `pattern` (the template rendered with `*` for the feed).
fn feed_of_key(pattern: &str, key: &Key) -> String {
    let (before, after) = pattern.split_once('*').unwrap_or((pattern, ""));
    let name = key.as_str_lossy();
    name.strip_prefix(before)
        .and_then(|r| r.strip_suffix(after))
        .unwrap_or(&name)
        .to_string()
}

/// `text` with the glob's special characters escaped, for a SCAN MATCH.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The keys matching `pattern` (SCAN, never KEYS; on every primary of a
/// cluster), at most `limit`.
async fn scan(
    c: &Client,
    cluster: bool,
    pattern: &str,
    kind: Option<ScanType>,
    limit: usize,
) -> Result<Vec<Key>, Error> {
    async fn collect(
        s: impl futures_util::Stream<Item = Result<Key, Error>>,
        limit: usize,
    ) -> Result<Vec<Key>, Error> {
        let mut s = std::pin::pin!(s);
        let mut out = Vec::new();
        while out.len() < limit {
            match s.next().await {
                Some(k) => out.push(k?),
                None => break,
            }
        }
        Ok(out)
    }
    let pattern = pattern.to_string();
    if cluster {
        collect(c.scan_cluster_buffered(pattern, Some(1_000), kind), limit).await
    } else {
        collect(c.scan_buffered(pattern, Some(1_000), kind), limit).await
    }
}

/// A cluster's keys matching `pattern` on every primary: how many, and the
/// first `keep` of them (the rest are counted, not held).
async fn scan_counting(c: &Client, pattern: &str, keep: usize) -> Result<(u64, Vec<Key>), Error> {
    let mut s = std::pin::pin!(c.scan_cluster_buffered(pattern.to_string(), Some(1_000), None));
    let (mut total, mut kept) = (0u64, Vec::new());
    while let Some(k) = s.next().await {
        let k = k?;
        total += 1;
        if kept.len() < keep {
            kept.push(k);
        }
    }
    Ok((total, kept))
}

/// A Redis Cluster's nodes (CLUSTER NODES), each asked on a connection of
/// its own (INFO, DBSIZE): one that does not answer, one the cluster marks
/// failed and a cluster not `ok` are problems, named.
async fn cluster_nodes(
    config: &Config,
    any: &Client,
    problems: &mut Vec<String>,
) -> Result<Vec<NodeHealth>, Box<dyn std::error::Error + Send + Sync>> {
    let random = fred::types::ClusterHash::Random;
    let state: String = any
        .custom(fred::cmd!("CLUSTER", hash: random.clone()), vec!["INFO"])
        .await?;
    if let Some(s) = state
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster_state:"))
        .filter(|s| *s != "ok")
    {
        problems.push(format!("cluster_state is {s}"));
    }
    let listing: String = any
        .custom(fred::cmd!("CLUSTER", hash: random), vec!["NODES"])
        .await?;
    let base = crate::pools::client_config(&config.redis)?;
    let mut nodes = Vec::new();
    for line in crate::pools::cluster_nodes(&listing) {
        let (addr, flags) = (line.addr.to_string(), line.flags);
        let role = if line.is_primary() {
            "primary"
        } else {
            "replica"
        };
        let mut node = NodeHealth {
            addr: addr.clone(),
            role: role.into(),
            flags: flags.to_string(),
            reachable: false,
            used_memory: 0,
            used_memory_human: String::new(),
            maxmemory: 0,
            keys: 0,
        };
        if flags.contains("fail") {
            problems.push(format!(
                "node {addr} ({role}) is marked failed by the cluster ({flags})"
            ));
        }
        match node_info(&base, &addr).await {
            Ok((memory, keys)) => {
                let field = |name: &str| -> String {
                    memory
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")))
                        .unwrap_or("")
                        .trim()
                        .to_string()
                };
                node.reachable = true;
                node.used_memory = field("used_memory").parse().unwrap_or(0);
                node.used_memory_human = field("used_memory_human");
                node.maxmemory = field("maxmemory").parse().unwrap_or(0);
                node.keys = keys;
                if node.maxmemory > 0 && node.used_memory * 10 > node.maxmemory * 9 {
                    problems.push(format!(
                        "node {addr}: memory at {} of maxmemory {}",
                        node.used_memory, node.maxmemory
                    ));
                }
            }
            Err(e) => problems.push(format!("node {addr} ({role}) is unreachable: {e}")),
        }
        nodes.push(node);
    }
    nodes.sort_by(|a, b| a.addr.cmp(&b.addr));
    Ok(nodes)
}

/// INFO memory and DBSIZE of one node, on a connection to it alone.
async fn node_info(base: &fred::prelude::Config, addr: &str) -> Result<(String, u64), Error> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| Error::new(ErrorKind::Config, format!("bad node address {addr}")))?;
    let mut config = base.clone();
    config.server = fred::types::config::ServerConfig::new_centralized(host, port);
    config.fail_fast = true;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = Duration::from_secs(2);
        })
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(3))
        .build()?;
    client.init().await?;
    let answer = async {
        let memory: String = client.info(Some(fred::types::InfoKind::Memory)).await?;
        let keys: u64 = client.dbsize().await?;
        Ok((memory, keys))
    }
    .await;
    let _ = client.quit().await;
    answer
}

/// XINFO GROUPS: a list of maps (RESP2: flat key/value arrays).
fn parse_groups(raw: Value) -> Vec<GroupLag> {
    let Value::Array(groups) = raw else {
        return Vec::new();
    };
    groups
        .into_iter()
        .filter_map(|g| {
            let pairs: Vec<(String, Value)> = match g {
                Value::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|kv| Some((kv.first()?.as_string()?, kv.get(1)?.clone())))
                    .collect(),
                Value::Map(m) => m
                    .inner()
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
                    .collect(),
                _ => return None,
            };
            let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            Some(GroupLag {
                name: get("name")?.as_string()?,
                consumers: get("consumers").and_then(Value::as_u64).unwrap_or(0),
                pending: get("pending").and_then(Value::as_u64).unwrap_or(0),
                lag: get("lag").and_then(Value::as_u64),
            })
        })
        .collect()
}
