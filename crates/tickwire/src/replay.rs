//! `tickwire replay`: tick files through parse -> writer into Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tickwire_core::Event;
use tickwire_core::{Config, ConfigError};
use tickwire_indicators::{StateConfig, StateStage};
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
    Redis(#[from] tickwire_sandbox::RedisServerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("redis: {0}")]
    Fred(#[from] fred::error::Error),
    #[error("internal task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Live(#[from] tickwire_ingest::LiveError),
}

/// Replays `opts.files` into the Redis of `config`. Setting `stop` (Ctrl-C)
/// stops reading; everything read is still written before this returns.
pub async fn replay(
    config: &Config,
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, AppError> {
    replay_shown(config, opts, stop, crate::progress::ProgressMode::Off).await
}

/// [`replay`], showing its progress on standard error as `mode` says.
pub async fn replay_shown(
    config: &Config,
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
    mode: crate::progress::ProgressMode,
) -> Result<RunSummary, AppError> {
    let started = Instant::now();
    let (tx, parsed) = mpsc::channel(config.writer.channel_capacity);
    let (state_tx, rx) = mpsc::channel(config.writer.channel_capacity);
    let _gauges = crate::ops::ChannelGauges::start(vec![("state", &tx), ("writer", &state_tx)]);
    // Files first: a missing file fails before Redis is even asked.
    let handle = start_replay(opts, tx, Arc::clone(&stop))?;
    let state = spawn_state_stage(StateConfig::from_config(config), parsed, state_tx)?;
    let pools = match RedisPools::connect(&config.redis, writer_dbs(config)).await {
        Ok(p) => Arc::new(p),
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            drop(rx);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            let _ = tokio::task::spawn_blocking(move || state.join()).await;
            // (its counts do not matter: the run did not start)
            return Err(e.into());
        }
    };
    let writer = WriterTask::start(config, &pools, rx, false);
    let shown = crate::progress::show(mode, handle.progress());
    let ingest = tokio::task::spawn_blocking(move || handle.join());
    let written = writer.finish().await?;
    shown.finish().await;
    let read = ingest.await?;
    let state = tokio::task::spawn_blocking(move || state.join())
        .await?
        .unwrap_or_default();
    pools.quit().await;
    // A writer failure explains an ingest "writer gone"; report it first.
    let writer = written?;
    let ingest = read?;
    Ok(RunSummary {
        ingest,
        writer,
        state,
        elapsed: started.elapsed(),
        databases: config.databases.clone(),
        mode: "replay",
        feeds: Vec::new(),
        record: None,
    })
}

/// The state stage on its own thread: parsed events in, events with bars and
/// indicator values out. Ends when its input closes, after closing every
/// forming bar.
pub(crate) fn spawn_state_stage(
    cfg: StateConfig,
    mut input: mpsc::Receiver<Vec<Event>>,
    output: mpsc::Sender<Vec<Event>>,
) -> std::io::Result<std::thread::JoinHandle<StateCounts>> {
    std::thread::Builder::new()
        .name("tickwire-state".into())
        .spawn(move || {
            let mut stage = StateStage::new(cfg);
            let resent = metrics::counter!(tickwire_core::telemetry::TRADES_RESENT);
            while let Some(events) = input.blocking_recv() {
                let mut out = Vec::with_capacity(events.len() + 16);
                let before = stage.duplicate_trades;
                for e in events {
                    stage.process(e, &mut out);
                }
                resent.increment(stage.duplicate_trades - before);
                stage.emit_dirty(&mut out);
                if output.blocking_send(out).is_err() {
                    // The writer is gone; it reports why.
                    return StateCounts::of(&stage);
                }
            }
            let mut out = Vec::new();
            stage.finish(&mut out);
            if !out.is_empty() {
                let _ = output.blocking_send(out);
            }
            StateCounts::of(&stage)
        })
}

/// What the state stage counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Ticks outside every phase of their exchange, dropped by policy.
    pub dropped_outside: u64,
    /// Ticks without quantity: written, but no bar, VWAP or volume.
    pub without_qty: u64,
    /// Trades whose venue id was already applied: resent, applied to nothing.
    pub resent: u64,
}

impl StateCounts {
    fn of(stage: &StateStage) -> Self {
        Self {
            dropped_outside: stage.dropped_outside,
            without_qty: stage.ticks_without_qty,
            resent: stage.duplicate_trades,
        }
    }
}

/// The writer's task with the heartbeat beside it.
pub(crate) struct WriterTask {
    task: tokio::task::JoinHandle<Result<tickwire_writer::WriterStats, WriterError>>,
    heartbeat: Option<tickwire_writer::heartbeat::Heartbeat>,
}

impl WriterTask {
    /// Writes what `rx` brings; `tick_latency` for live runs.
    pub(crate) fn start(
        config: &Config,
        pools: &Arc<RedisPools>,
        rx: mpsc::Receiver<Vec<Event>>,
        tick_latency: bool,
    ) -> WriterTask {
        let progress = Arc::new(tickwire_writer::WriterProgress::default());
        let heartbeat = crate::ops::start_heartbeat(config, pools, &progress);
        let config = config.clone();
        let pools = Arc::clone(pools);
        let opts = tickwire_writer::WriterOptions {
            progress,
            tick_latency,
        };
        let task =
            tokio::spawn(async move { tickwire_writer::run_with(&config, pools, rx, opts).await });
        WriterTask { task, heartbeat }
    }

    /// Waits for the writer (its input closed), then beats a last time.
    pub(crate) async fn finish(
        self,
    ) -> Result<Result<tickwire_writer::WriterStats, WriterError>, tokio::task::JoinError> {
        let written = self.task.await;
        if let Some(h) = self.heartbeat {
            h.stop().await;
        }
        written
    }
}
