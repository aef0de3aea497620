//! `tickwire demo`: a private redis-server, the bundled sample replayed into
//! it, what landed printed, the server stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use fred::prelude::*;
use futures_util::StreamExt;
use tickwire_core::config::Overrides;
use tickwire_core::{Config, Db};
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_sandbox::RedisServer;
use tickwire_writer::inspect::db_report;

use crate::error::AppError;
use crate::replay::replay;

/// The bundled sample: `tickwire synth --instruments 6 --sessions 2
/// --ticks-per-session 200 --seed 42 --start 2024-01-01`, zstd-compressed.
pub const SAMPLE: &[u8] = include_bytes!("../data/sample-nse.jsonl.zst");
pub const SAMPLE_SPEC: (usize, usize, usize, u64, &str) = (6, 2, 200, 42, "2024-01-01");

/// Runs the demo, writing its report to `out`.
pub async fn run(out: &mut (impl Write + Send)) -> Result<(), AppError> {
    let server = tokio::task::spawn_blocking(RedisServer::start).await??;
    writeln!(out, "tickwire demo")?;
    writeln!(
        out,
        "  started a private redis-server at {} (temporary; stopped at the end)",
        server.url()
    )?;
    let dir = tempfile::tempdir()?;
    let sample = dir.path().join("sample-nse.jsonl.zst");
    std::fs::write(&sample, SAMPLE)?;
    let (m, d, n, _, start) = SAMPLE_SPEC;
    writeln!(
        out,
        "  replaying the bundled sample: {m} NSE instruments x {d} sessions from {start}, {n} ticks each per session\n"
    )?;
    let config = Config::defaults(&Overrides {
        redis_url: Some(server.url()),
        prefix: None,
        ..Default::default()
    })?;
    let opts = ReplayOptions {
        feeds: Vec::new(),
        files: vec![sample],
        format: None,
        symbol: None,
        pace: Pace::Max,
        max_raw: config.streams.deadletter_raw_bytes,
        chunk_events: 1024,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        close_at_end: false,
    };
    let summary = replay(&config, opts, tokio_util::sync::CancellationToken::new()).await?;
    write!(out, "{}", summary.render())?;

    writeln!(out, "\nWhat is in Redis now (SCAN of each configured DB):")?;
    let dbs: BTreeSet<u8> = Db::ALL.iter().map(|d| config.databases.get(*d)).collect();
    for db in dbs {
        let client = server.client(db).await?;
        let r = db_report(&client).await?;
        if r.keys > 0 {
            let types: Vec<String> = r.by_type.iter().map(|(t, n)| format!("{n} {t}")).collect();
            writeln!(
                out,
                "  db {db:>2} {:<20} {:>4} keys: {}; {} stream entries; {} without TTL",
                format!("({})", config.databases.names_of(db).join(",")),
                r.keys,
                types.join(", "),
                r.stream_entries,
                r.without_ttl
            )?;
        }
        let _ = client.quit().await;
    }

    let prices_db = config.databases.get(Db::Prices);
    let client = server.client(prices_db).await?;
    let mut keys = Vec::new();
    let mut scan = client.scan_buffered("price:*", Some(1_000), None);
    while let Some(k) = scan.next().await {
        keys.push(k?);
    }
    let mut rows = BTreeMap::new();
    for k in keys {
        let h: BTreeMap<String, String> = client.hgetall(k.clone()).await?;
        let ttl: i64 = client.ttl(k.clone()).await?;
        rows.insert(k.as_str().unwrap_or_default().to_string(), (h, ttl));
    }
    writeln!(
        out,
        "\nLast price per instrument (db {prices_db}, HGETALL price:{{symbol}}):"
    )?;
    // The sample is NSE: show exchange time as the exchange's wall clock.
    let ist = jiff::tz::TimeZone::get("Asia/Kolkata").map_err(std::io::Error::other)?;
    let get = |h: &BTreeMap<String, String>, f: &str| h.get(f).cloned().unwrap_or_default();
    for (key, (h, ttl)) in rows {
        let ts = get(&h, "ts")
            .parse::<i64>()
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| {
                t.to_zoned(ist.clone())
                    .strftime("%Y-%m-%d %H:%M:%S%.3f IST")
                    .to_string()
            })
            .unwrap_or_default();
        writeln!(
            out,
            "  {key:<22} ltp {:>10}  bid {:>10}  ask {:>10}  vol {:>8}  at {ts}  ttl {ttl}s",
            get(&h, "ltp"),
            get(&h, "bid"),
            get(&h, "ask"),
            get(&h, "vol"),
        )?;
    }
    let _ = client.quit().await;
    drop(server);
    writeln!(
        out,
        "\nredis-server stopped; its temporary directory is removed."
    )?;
    Ok(())
}
