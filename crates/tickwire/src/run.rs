//! `tickwire run` (live feeds through parse -> state -> writer, optionally
//! recording) and `tickwire record` (live feeds to files only).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_core::Config;
use tickwire_indicators::StateConfig;
use tickwire_ingest::live::LiveSummary;
use tickwire_ingest::record::RecordSummary;
use tickwire_ingest::{start_live, IngestSummary, LiveOptions};
use tickwire_writer::{writer_dbs, RedisPools};
use tokio::sync::mpsc;

use crate::replay::{spawn_state_stage, AppError, WriterTask};
use crate::summary::RunSummary;

fn live_options(config: &Config, record: Option<PathBuf>, decode: bool) -> LiveOptions {
    LiveOptions {
        feeds: config.feeds.clone(),
        live: config.live.clone(),
        max_raw: config.streams.deadletter_raw_bytes,
        chunk_events: 1024,
        record: record.map(|dir| (dir, config.record.clone())),
        decode,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        // `tickwire record` writes frames to disk anyway: no spool beside it
        // (and none to share with a `run` of the same feeds).
        spool: if decode {
            config.spool.clone()
        } else {
            tickwire_core::feeds::SpoolConfig {
                max_bytes: 0,
                ..config.spool.clone()
            }
        },
    }
}

async fn wait_for(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs every configured feed into the Redis of `config` until `stop` is
/// set; then closes the feeds, writes everything read, and sums up. With
/// `record`, every raw frame also goes to files in that directory.
pub async fn run(
    config: &Config,
    record: Option<PathBuf>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, AppError> {
    let started = Instant::now();
    // Redis first: a live run that cannot write should say so at once.
    let pools =
        Arc::new(RedisPools::connect_waiting(&config.redis, writer_dbs(config), &stop).await?);
    let (tx, parsed) = mpsc::channel(config.writer.channel_capacity);
    let (state_tx, rx) = mpsc::channel(config.writer.channel_capacity);
    let _gauges = crate::ops::ChannelGauges::start(vec![("state", &tx), ("writer", &state_tx)]);
    let state = spawn_state_stage(
        StateConfig::from_config(config),
        crate::replay::Checkpoints::new(&pools, config)?,
        Some(crate::replay::LiveClock {
            instruments: tickwire_core::venues::feed_instruments(&config.feeds)
                .into_iter()
                .map(Arc::new)
                .collect(),
        }),
        parsed,
        state_tx,
    )?;
    let writer = WriterTask::start(config, &pools, rx, true);
    let live = match start_live(live_options(config, record, true), tx) {
        Ok(h) => h,
        Err(e) => {
            let _ = writer.finish().await;
            let _ = tokio::task::spawn_blocking(move || state.join()).await;
            pools.quit().await;
            return Err(e.into());
        }
    };
    // Until stopped, or until a stage stops on its own: a writer that gave
    // up or a state stage that failed ends the run (feeds closed, heartbeat
    // stopped, the cause reported) rather than leaving it reading into a
    // pipeline that writes nothing.
    while !stop.load(Ordering::Relaxed) && !writer.stopped() && !state.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if writer.stopped() || state.is_finished() {
        tracing::error!("a stage of the pipeline stopped: closing the feeds");
    }
    tracing::info!("stopping: closing feeds, writing what was read");
    let spools = live.spools();
    let read = live.finish().await;
    let written = writer.finish().await?;
    if written.is_ok() {
        // Everything the spools handed on is written: what they kept in
        // case it was not can go.
        for spool in spools.lock().iter_mut().flat_map(|s| s.iter_mut()) {
            if let Err(e) = spool.forget_done() {
                tracing::warn!(error = %e, "cannot delete a drained spool segment");
            }
        }
    }
    let state = tokio::task::spawn_blocking(move || state.join())
        .await?
        .unwrap_or_default();
    pools.quit().await;
    if let Some(why) = &state.failed {
        return Err(AppError::State(why.clone()));
    }
    let writer = written?;
    let read = read?;
    Ok(RunSummary {
        ingest: ingest_of(&read),
        writer,
        state,
        elapsed: started.elapsed(),
        databases: config.databases.clone(),
        mode: "run",
        feeds: read.feeds,
        record: read.record,
    })
}

fn ingest_of(read: &LiveSummary) -> IngestSummary {
    IngestSummary {
        files: 0,
        bytes: read.feeds.iter().map(|f| f.bytes).sum(),
        // Frames a killed process read and spooled are read by this one.
        lines: read.feeds.iter().map(|f| f.frames + f.inherited).sum(),
        ticks: read.ticks,
        quotes: read.quotes,
        rejected: read.rejected,
        skipped: read.skipped,
        extra: read.extra,
        truncated: 0,
        empty: 0,
        stopped_early: false,
    }
}

/// Records every configured feed's raw frames to `dir` until `stop` is set.
/// Nothing is decoded and Redis is not used.
pub async fn record(
    config: &Config,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
) -> Result<(LiveSummary, RecordSummary), AppError> {
    // Nothing reads events: frames are only recorded.
    let (tx, _rx) = mpsc::channel(1);
    let live = start_live(live_options(config, Some(dir), false), tx)?;
    wait_for(&stop).await;
    let mut read = live.finish().await?;
    let recorded = read.record.take().unwrap_or_default();
    Ok((read, recorded))
}
