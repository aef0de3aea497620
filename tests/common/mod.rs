//! The pipeline run in-process for the cross-crate tests: a config from
//! TOML against a test's Redis, a replay through the `tickwire` library,
//! and a live run started and stopped. How a run is asked to stop is known
//! here only.
//! Everything else these tests share is in the test kit
//! (`tickwire_testkit::prelude`); this stays here because the test kit
//! cannot depend on the `tickwire` library (`tickwire`'s own tests depend on
//! the test kit, so that would make a circle of crates).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use tickwire::{AppError, CancellationToken, RunSummary};
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
        tickwire_parse::VENUES,
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
    replay_to_end(config, opts).await.expect("replay succeeds")
}

/// `tickwire::replay` of `opts`, never asked to stop: the whole input.
pub async fn replay_to_end(config: &Config, opts: ReplayOptions) -> Result<RunSummary, AppError> {
    tickwire::replay(config, opts, CancellationToken::new()).await
}

/// A live run (`tickwire::run::run`) on its own task.
pub struct LiveRun {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<RunSummary, AppError>>,
}

impl LiveRun {
    /// Starts a live run of `config`, recording into `record` if given.
    pub fn start(config: &Config, record: Option<PathBuf>) -> LiveRun {
        let stop = CancellationToken::new();
        let task = {
            let config = config.clone();
            let stop = stop.clone();
            tokio::spawn(async move { tickwire::run::run(&config, record, stop).await })
        };
        LiveRun { stop, task }
    }

    /// Asks the run to stop and waits for it: its summary. The test fails
    /// when it does not stop within 20 s or ends in an error.
    pub async fn finish(self) -> RunSummary {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the run stops within 20 s")
            .expect("run task")
            .expect("run succeeds")
    }
}
