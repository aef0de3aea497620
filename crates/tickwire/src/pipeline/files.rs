//! The pipeline from files: reader and parser threads -> the state stage's
//! thread -> the writer task.

use std::sync::Arc;
use std::time::Instant;

use tickwire_core::Config;
use tickwire_indicators::StateConfig;
use tickwire_ingest::{start_replay, ReplayOptions};
use tickwire_writer::writer_dbs;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connect::connect_waiting;
use super::end::{conclude, first_cause, Ended};
use crate::error::AppError;
use crate::ops::depth;
use crate::progress::ProgressMode;
use crate::state::{spawn_state_stage, Checkpoints};
use crate::supervisor::Supervisor;
use crate::writer::WriterTask;

/// Replays `opts.files`; `stop` (Ctrl-C) stops reading, and everything read
/// is still written before this returns.
pub(super) async fn run(
    config: &Config,
    opts: ReplayOptions,
    stop: &CancellationToken,
    mode: ProgressMode,
) -> Result<crate::RunSummary, AppError> {
    let started = Instant::now();
    let supervisor = Supervisor::new(stop);
    let (tx, parsed) = mpsc::channel(config.writer.channel_capacity);
    let (state_tx, rx) = mpsc::channel(config.writer.channel_capacity);
    let _gauges = crate::ops::ChannelGauges::start(vec![
        ("state", depth(tx.downgrade())),
        ("writer", depth(state_tx.downgrade())),
    ]);
    // Files first: a missing file fails before Redis is even asked.
    let close_at_end = opts.close_at_end;
    // A paced replay stamps each tick when its pacer releases it: its
    // tick-to-Redis latency is recorded as a live run's is.
    let paced = matches!(opts.pace, tickwire_ingest::Pace::Speed(_));
    let handle = start_replay(opts, tx, supervisor.token().clone())?;
    let pools = match connect_waiting(&config.redis, writer_dbs(config), supervisor.token()).await {
        Ok(p) => Arc::new(p),
        Err(e) => {
            supervisor.token().cancel();
            drop(parsed);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            return Err(e.into());
        }
    };
    let state = spawn_state_stage(
        StateConfig {
            close_at_end,
            ..StateConfig::from_config(config)
        },
        Checkpoints::new(&pools, config)?,
        // A recording's gaps: held and filled where its pages and fill
        // ends are, as the live run that made it did.
        crate::gaps::GapKeeper::new(config, tickwire_parse::VENUES, None),
        parsed,
        state_tx,
        supervisor.clone(),
    )?;
    let writer = WriterTask::start(config, &pools, rx, paced, &supervisor);
    let progress = handle.progress();
    let shown = crate::progress::show(mode, handle.progress());
    let ingest = tokio::task::spawn_blocking(move || handle.join());
    // Each stage ends with its report: the writer when its input closes (or
    // it gave up, which stops the reader; its heartbeat goes at once, no
    // last beat), the reader and parser when the files end or the stop
    // came, the state stage when its input closes.
    let written = writer.finish_or_abort().await?;
    shown.finish().await;
    let read = ingest.await?;
    let state = tokio::task::spawn_blocking(move || state.join())
        .await?
        .unwrap_or_default();
    pools.quit().await;
    // A writer failure explains an ingest "writer gone"; report it first.
    let (writer, cause) = first_cause(written, &state, []);
    let ingest = match (read, cause.is_some()) {
        (Ok(i), _) => i,
        (Err(_), true) => progress.summary(true),
        (Err(e), false) => return Err(e.into()),
    };
    let ended = Ended {
        mode: "replay",
        started,
        ingest,
        writer,
        state,
        feeds: Vec::new(),
        record: None,
    };
    conclude(config, ended, cause)
}
