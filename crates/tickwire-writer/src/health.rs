//! `tickwire health`: one look at the Redis tickwire writes to. PING and
//! version, memory, keys per DB, a TTL audit (SCAN samples, never KEYS), tick
//! stream lengths and consumer-group lag, heartbeat age and feed status.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fred::prelude::*;
use fred::types::scan::ScanType;
use futures_util::StreamExt;
use serde::Serialize;
use tickwire_core::config::redact_url;
use tickwire_core::{Config, Db};

use crate::{compile_keys, writer_dbs, RedisPools};

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
    pub heartbeat: Option<HeartbeatHealth>,
    pub feeds: BTreeMap<String, String>,
}

impl HealthReport {
    fn unreachable(url: &str, why: String) -> Self {
        // Reached, but the ACL refused a check: say so, not "unreachable".
        let problem = if why.contains("NOPERM") {
            format!(
                "Redis at {} refused a check (the user needs the README's ACL line for \
                 health): {why}",
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
            feeds: BTreeMap::new(),
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
    let keys = compile_keys(config)?;
    let d = &config.databases;
    let system = pools.client(d.get(Db::System), 0)?;
    let mut problems = Vec::new();

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

    // Every DB tickwire writes must expire what it holds.
    let mut databases = Vec::with_capacity(dbs.len());
    for &db in dbs {
        let c = pools.client(db, 0)?;
        let total: u64 = c.dbsize().await?;
        let mut scan = c.scan_buffered("*", Some(1_000), None);
        let mut sample = Vec::new();
        while let Some(k) = scan.next().await {
            sample.push(k?);
            if sample.len() >= opts.ttl_sample {
                break;
            }
        }
        drop(scan);
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
        if !no_ttl.is_empty() {
            problems.push(format!(
                "db {db}: {} of {} sampled keys have no TTL (e.g. {})",
                no_ttl.len(),
                sample.len(),
                no_ttl[0]
            ));
        }
        databases.push(DbHealth {
            db,
            purpose: d.names_of(db).join(","),
            keys: total,
            sampled: sample.len() as u64,
            without_ttl: no_ttl.len() as u64,
            examples: no_ttl.into_iter().take(5).collect(),
        });
    }

    // Tick streams: length and consumer-group lag.
    let mut streams = Vec::new();
    let mut tick_streams = 0;
    let mut stream_dbs = vec![d.get(Db::Premarket), d.get(Db::ContinuousMarket)];
    stream_dbs.dedup();
    for db in stream_dbs {
        let c = pools.client(db, 0)?;
        let pattern = keys.tick_stream.render(keys.prefix(db), |_| Some("*"));
        let mut scan = c.scan_buffered(pattern.as_str(), Some(1_000), Some(ScanType::Stream));
        let mut found = Vec::new();
        while let Some(k) = scan.next().await {
            found.push(k?);
        }
        drop(scan);
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

    // The heartbeat of a running tickwire.
    let hb_key = keys.heartbeat.render(keys.prefix_of(Db::System), |_| None);
    let fields: BTreeMap<String, String> = system.hgetall(hb_key.as_str()).await?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let heartbeat = if fields.is_empty() {
        problems.push(format!(
            "no heartbeat ({hb_key}): tickwire is not running against this Redis"
        ));
        None
    } else {
        let updated: i64 = fields
            .get("updated_at")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let age_ms = now_ms - updated;
        let stale_after = Duration::from_millis(3 * config.heartbeat.interval_ms.max(1_000));
        if age_ms > stale_after.as_millis() as i64 {
            problems.push(format!("heartbeat is {age_ms} ms old"));
        }
        Some(HeartbeatHealth { age_ms, fields })
    };

    // Feed status keys.
    let status_pattern = keys
        .feed_status
        .render(keys.prefix_of(Db::System), |_| Some("*"));
    let mut feeds = BTreeMap::new();
    let mut scan = system.scan_buffered(status_pattern.as_str(), Some(1_000), None);
    let mut status_keys = Vec::new();
    while let Some(k) = scan.next().await {
        status_keys.push(k?);
    }
    drop(scan);
    let (before, after) = status_pattern
        .split_once('*')
        .unwrap_or((&status_pattern, ""));
    for k in status_keys {
        let name = k.as_str_lossy().into_owned();
        let feed = name
            .strip_prefix(before)
            .and_then(|r| r.strip_suffix(after))
            .unwrap_or(&name)
            .to_string();
        let v: Option<String> = system.get(k).await?;
        let v = v.unwrap_or_default();
        if v != "connected" {
            problems.push(format!("feed {feed} is {v}"));
        }
        feeds.insert(feed, v);
    }

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
        feeds,
    })
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
