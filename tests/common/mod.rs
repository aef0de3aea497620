//! The pipeline run in-process for the cross-crate tests: a config from
//! TOML against a test's Redis, and a replay through the `tickwire` library.
//! Everything else these tests share is in the test kit
//! (`tickwire_testkit::prelude`); this stays here because the test kit
//! cannot depend on the `tickwire` library (`tickwire`'s own tests depend on
//! the test kit, so that would make a circle of crates).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tickwire::RunSummary;
use tickwire_core::config::Overrides;
use tickwire_core::Config;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::RedisServer;

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
    tickwire::replay(config, opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("replay succeeds")
}
