//! `tickwire baseline`: each instrument's usual volume per time-of-day bucket.
//!
//! For every symbol in the volume index, the last N sessions with volume (on
//! or before a date) are read from their day profiles (one HGETALL per
//! symbol and session, pipelined; no KEYS, no SCAN over buckets), and each
//! `HH:MM` bucket seen in any of them gets `volume:baseline:{symbol}:{HH}:{MM}`
//! with `average`, `samples` and `stddev` (population): a session that traded
//! that day but not in that bucket counts as zero. Written as absolute values,
//! so a re-run changes nothing.

use std::collections::BTreeMap;

use fred::prelude::*;
use tickwire_core::config::Keys;
use tickwire_core::{Config, Db};

use crate::{RedisPools, WriterError};

/// What to compute.
#[derive(Debug, Clone)]
pub struct BaselineOptions {
    /// Sessions averaged per symbol (the last ones with volume).
    pub lookback: usize,
    /// Only sessions on or before this date (`YYYY-MM-DD`); all when `None`.
    pub date: Option<String>,
}

/// What a baseline run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaselineSummary {
    pub symbols: u64,
    pub sessions: u64,
    pub baselines: u64,
}

/// Runs pipelines of `cmds` commands at a time on one connection.
const CHUNK: usize = 500;

async fn run_pipeline(client: &Client, p: Pipeline<Client>) -> Result<Vec<Value>, Error> {
    // A PING behind the pipeline makes fred flush once, not per command.
    let (results, _) = futures_util::join!(p.all::<Vec<Value>>(), client.ping::<Value>(None));
    results
}

use fred::clients::Pipeline;

/// Computes and writes the baselines.
pub async fn compute(
    config: &Config,
    pools: &RedisPools,
    opts: &BaselineOptions,
) -> Result<BaselineSummary, WriterError> {
    let keys: &Keys = config.key_templates();
    let db = config.databases.get(Db::CumulativeVolume);
    let ttl = i64::try_from(config.ttl.secs(Db::CumulativeVolume)).unwrap_or(i64::MAX);
    let client = pools.client(db, 0)?;
    // One attempt: the baseline is not retried (run it again).
    let started = std::time::Instant::now();
    let fail = |e: Error| WriterError::Exhausted {
        url: pools.url().to_string(),
        waited: started.elapsed(),
        max_retries: 0,
        source: e,
    };
    let p = keys.prefix(db);
    let symbols_key = keys.volume_symbols.render(p, |_| None);
    let mut symbols: Vec<String> = client.smembers(symbols_key).await.map_err(fail)?;
    symbols.sort();
    let max_score = match &opts.date {
        Some(d) => d.replace('-', ""),
        None => "+inf".to_string(),
    };
    let mut summary = BaselineSummary {
        symbols: symbols.len() as u64,
        ..Default::default()
    };
    for chunk in symbols.chunks(CHUNK) {
        // The last N sessions of each symbol, newest first.
        let pipe = client.pipeline();
        for sym in chunk {
            let key = keys
                .volume_sessions
                .render(p, |n| (n == "symbol").then_some(sym.as_str()));
            let args: Vec<Value> = vec![
                key.into(),
                max_score.as_str().into(),
                "-inf".into(),
                "BYSCORE".into(),
                "REV".into(),
                "LIMIT".into(),
                0.into(),
                (opts.lookback as i64).into(),
            ];
            let _: () = pipe
                .custom(fred::cmd!("ZRANGE"), args)
                .await
                .map_err(fail)?;
        }
        let sessions: Vec<Vec<String>> = run_pipeline(client, pipe)
            .await
            .map_err(fail)?
            .into_iter()
            .map(|v| v.convert().unwrap_or_default())
            .collect();
        // Their day profiles.
        let pipe = client.pipeline();
        for (sym, list) in chunk.iter().zip(&sessions) {
            for session in list {
                let key = keys.volume_profile.render(p, |n| match n {
                    "symbol" => Some(sym.as_str()),
                    "session" => Some(session.as_str()),
                    _ => None,
                });
                let _: () = pipe.hgetall(key).await.map_err(fail)?;
                summary.sessions += 1;
            }
        }
        let mut profiles = run_pipeline(client, pipe).await.map_err(fail)?.into_iter();
        let mut writes = client.pipeline();
        let mut queued = 0;
        for (sym, list) in chunk.iter().zip(&sessions) {
            let n = list.len();
            if n == 0 {
                continue;
            }
            let mut buckets: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for (k, _) in list.iter().enumerate() {
                let profile: BTreeMap<String, String> = profiles
                    .next()
                    .map(|v| v.convert().unwrap_or_default())
                    .unwrap_or_default();
                for (bucket, volume) in profile {
                    let v: f64 = volume.parse().unwrap_or(0.0);
                    buckets.entry(bucket).or_insert_with(|| vec![0.0; n])[k] = v;
                }
            }
            for (bucket, volumes) in buckets {
                let (hh, mm) = bucket.split_once(':').unwrap_or((bucket.as_str(), "00"));
                let key = keys.volume_baseline.render(p, |f| match f {
                    "symbol" => Some(sym.as_str()),
                    "HH" => Some(hh),
                    "MM" => Some(mm),
                    _ => None,
                });
                let samples = volumes.len() as f64;
                let average = volumes.iter().sum::<f64>() / samples;
                let variance = volumes.iter().map(|v| (v - average).powi(2)).sum::<f64>() / samples;
                let fields = vec![
                    ("average", average.to_string()),
                    ("samples", volumes.len().to_string()),
                    ("stddev", variance.sqrt().to_string()),
                ];
                let _: () = writes.hset(key.as_str(), fields).await.map_err(fail)?;
                let _: () = writes.expire(key.as_str(), ttl, None).await.map_err(fail)?;
                summary.baselines += 1;
                queued += 2;
                if queued >= 10_000 {
                    run_pipeline(client, std::mem::replace(&mut writes, client.pipeline()))
                        .await
                        .map_err(fail)?;
                    queued = 0;
                }
            }
        }
        if queued > 0 {
            run_pipeline(client, writes).await.map_err(fail)?;
        }
    }
    Ok(summary)
}
