//! `tickwire replay`: tick files through parse -> writer into Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tickwire_core::{Config, ConfigError};
use tickwire_ingest::{start_replay, IngestError, ReplayOptions};
use tickwire_writer::{writer_dbs, RedisPools, WriterError};
use tokio::sync::mpsc;

use crate::summary::RunSummary;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Redis(#[from] tickwire_testkit::TestkitError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("redis: {0}")]
    Fred(#[from] fred::error::Error),
    #[error("internal task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Replays `opts.files` into the Redis of `config`. Setting `stop` (Ctrl-C)
/// stops reading; everything read is still written before this returns.
pub async fn replay(
    config: &Config,
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, AppError> {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel(config.writer.channel_capacity);
    // Files first: a missing file fails before Redis is even asked.
    let handle = start_replay(opts, tx, Arc::clone(&stop))?;
    let pools = match RedisPools::connect(&config.redis, writer_dbs(config)).await {
        Ok(p) => Arc::new(p),
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            drop(rx);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            return Err(e.into());
        }
    };
    let writer = {
        let config = config.clone();
        let pools = Arc::clone(&pools);
        tokio::spawn(async move { tickwire_writer::run(&config, pools, rx).await })
    };
    let ingest = tokio::task::spawn_blocking(move || handle.join());
    let written = writer.await?;
    let read = ingest.await?;
    pools.quit().await;
    // A writer failure explains an ingest "writer gone"; report it first.
    let writer = written?;
    let ingest = read?;
    Ok(RunSummary {
        ingest,
        writer,
        elapsed: started.elapsed(),
        databases: config.databases.clone(),
    })
}
