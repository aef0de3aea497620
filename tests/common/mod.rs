//! Helpers shared by the integration tests: run a replay into a private
//! redis-server and read back what landed.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fred::prelude::*;
use tickwire::RunSummary;
use tickwire_core::config::Overrides;
use tickwire_core::Config;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::RedisServer;

pub fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"))
}

pub fn config(server: &RedisServer, extra_toml: &str) -> Config {
    Config::from_toml(
        extra_toml,
        &Overrides {
            redis_url: Some(server.url()),
            prefix: None,
            ..Default::default()
        },
    )
    .expect("test config is valid")
}

pub async fn replay(config: &Config, files: &[PathBuf]) -> RunSummary {
    replay_with(config, files, None).await
}

/// A replay that leaves what is still forming at the end forming, as a live
/// run that stops does.
pub async fn replay_open(config: &Config, files: &[PathBuf]) -> RunSummary {
    replay_opts(config, files, None, false).await
}

pub async fn replay_with(config: &Config, files: &[PathBuf], symbol: Option<&str>) -> RunSummary {
    replay_opts(config, files, symbol, true).await
}

async fn replay_opts(
    config: &Config,
    files: &[PathBuf],
    symbol: Option<&str>,
    close_at_end: bool,
) -> RunSummary {
    let opts = ReplayOptions {
        feeds: config.feeds.clone(),
        files: files.to_vec(),
        format: None,
        symbol: symbol.map(str::to_string),
        pace: Pace::Max,
        max_raw: config.streams.deadletter_raw_bytes,
        chunk_events: 7,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        // Most tests read each replay as a backtest on its own.
        close_at_end,
    };
    tickwire::replay(config, opts, tickwire::CancellationToken::new())
        .await
        .expect("replay succeeds")
}

pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    if name.ends_with(".zst") {
        std::fs::write(&path, zstd::encode_all(body.as_bytes(), 3).unwrap()).unwrap();
    } else {
        std::fs::write(&path, body).unwrap();
    }
    path
}

/// INFO commandstats: calls per command (upper case).
pub async fn command_calls(client: &Client) -> HashMap<String, u64> {
    let info: String = client
        .custom(fred::cmd!("INFO"), vec!["commandstats"])
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_uppercase(), calls))
        })
        .collect()
}

pub type Entries = Vec<(String, HashMap<String, String>)>;

pub async fn xrange(client: &Client, key: &str) -> Entries {
    client.xrange(key, "-", "+", None).await.unwrap()
}

pub async fn hgetall(client: &Client, key: &str) -> HashMap<String, String> {
    client.hgetall(key).await.unwrap()
}

pub async fn ttl(client: &Client, key: &str) -> i64 {
    client.ttl(key).await.unwrap()
}

/// Every key of a DB with its type and TTL, found with SCAN.
pub async fn keys(client: &Client) -> Vec<String> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let mut scan = client.scan_buffered("*", Some(1000), None);
    while let Some(k) = scan.next().await {
        out.push(k.unwrap().as_str().unwrap().to_string());
    }
    out.sort();
    out
}

/// Asserts the key expires within the default 16 h TTL.
pub async fn assert_ttl(client: &Client, key: &str) {
    let t = ttl(client, key).await;
    assert!(t > 57_000 && t <= 57_600, "{key} has TTL {t}");
}

pub fn field<'a>(e: &'a (String, HashMap<String, String>), f: &str) -> &'a str {
    e.1.get(f)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("entry {} has no {f}: {:?}", e.0, e.1))
}

/// Every key of `dbs` with its full content (the heartbeat aside).
pub async fn snapshot(server: &RedisServer, dbs: &[u8]) -> Vec<(u8, String, String)> {
    tickwire_testkit::snapshot(server, dbs).await
}

/// A Dhan full packet (code 8, 162 bytes) from the published layout.
pub fn dhan_full(segment: u8, security: u32, ltp: f32, ltq: u16, ltt: u32, volume: u32) -> Vec<u8> {
    let mut b = vec![8u8];
    b.extend(162u16.to_le_bytes());
    b.push(segment);
    b.extend(security.to_le_bytes());
    b.extend(ltp.to_le_bytes());
    b.extend(ltq.to_le_bytes());
    b.extend(ltt.to_le_bytes());
    b.extend((ltp - 0.5).to_le_bytes()); // ATP
    b.extend(volume.to_le_bytes());
    b.extend(40_000u32.to_le_bytes()); // total sell qty
    b.extend(50_000u32.to_le_bytes()); // total buy qty
    for oi in [0u32, 0, 0] {
        b.extend(oi.to_le_bytes());
    }
    for v in [2_440.0f32, 2_430.0, 2_460.0, 2_420.0] {
        b.extend(v.to_le_bytes()); // open, close, high, low
    }
    for level in 0..5u32 {
        b.extend((100 * (level + 1)).to_le_bytes()); // bid qty
        b.extend((110 * (level + 1)).to_le_bytes()); // ask qty
        b.extend(((level + 1) as u16).to_le_bytes()); // bid orders
        b.extend(((level + 2) as u16).to_le_bytes()); // ask orders
        b.extend((ltp - 0.05 * (level + 1) as f32).to_le_bytes());
        b.extend((ltp + 0.05 * (level + 1) as f32).to_le_bytes());
    }
    assert_eq!(b.len(), 162);
    b
}
