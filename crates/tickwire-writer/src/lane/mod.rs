//! A writer lane: one connection per DB, one batch at a time, in order.
//!
//! A batch becomes a plan of commands (one `lua/tick_append.lua` call per run
//! of a stream's ticks, one HSET per instrument for its last price, XADD per
//! dead letter, EXPIREs when due), sent as one pipeline per DB, all DBs at
//! once. Commands that fail for a transient reason (connection lost, timeout)
//! are sent again; the rest are final. Every command is idempotent, so a
//! resend never double-applies anything.

pub(crate) mod baselines;
pub(crate) mod cluster;
pub(crate) mod errors;
pub(crate) mod send;
pub(crate) mod settings;
#[cfg(test)]
mod tests;

use tokio::sync::mpsc;

pub use errors::is_noperm;
pub(crate) use errors::is_transient;
pub(crate) use settings::{AlertSettings, LaneSettings, LaneState, LuaScripts};

use crate::plan::snapshots::SnapshotWrite;
use crate::plan::LaneBatch;
use crate::pools::RedisPools;
use crate::stats::WriterStats;
use send::write_batch;
use std::sync::Arc;

/// How a lane tells the dispatcher it waits for work: `flag` set, then
/// `wake` notified.
pub(crate) struct Idle {
    pub(crate) flag: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

impl Idle {
    pub(crate) fn say(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }
}

/// The lane task: writes batches in arrival order until its channel closes.
pub(crate) async fn run_lane(
    lane: usize,
    mut rx: mpsc::Receiver<LaneBatch>,
    pools: Arc<RedisPools>,
    settings: LaneSettings,
    idle: Idle,
) -> Result<WriterStats, crate::WriterFailure> {
    let mut stats = WriterStats::default();
    // A lane that stops on an error hands on what it wrote before.
    let failed = |error, stats: &mut WriterStats| crate::WriterFailure {
        error,
        stats: std::mem::take(stats),
    };
    let mut state = LaneState::default();
    // The checkpoints of the batch written last, acknowledged with it.
    let mut acknowledged: Vec<SnapshotWrite> = Vec::new();
    while let Some(mut batch) = rx.recv().await {
        let checkpoints = std::mem::take(&mut batch.checkpoints);
        batch.snapshots.append(&mut acknowledged);
        if let Err(e) = write_batch(batch, &pools, lane, &settings, &mut state, &mut stats).await {
            return Err(failed(e, &mut stats));
        }
        acknowledged = checkpoints;
        if rx.is_empty() {
            idle.say();
        }
    }
    if !acknowledged.is_empty() {
        let last = LaneBatch {
            snapshots: acknowledged,
            ..LaneBatch::default()
        };
        if let Err(e) = write_batch(last, &pools, lane, &settings, &mut state, &mut stats).await {
            return Err(failed(e, &mut stats));
        }
    }
    Ok(stats)
}
