//! The one pipeline of `run` and `replay`: sources (live feeds with the
//! recorder and spool where configured, or files) -> parse -> state ->
//! writer, every stage owned here and stopped through one
//! [`Supervisor`](crate::supervisor::Supervisor): a signal or the first
//! failing stage cancels its token, the sources stop reading, the stages
//! after them drain as their input closes, and each ends with its report
//! or its error. `end` sums up the end of a run, both kinds alike.

mod connect;
mod end;
mod files;
mod live;

use std::path::PathBuf;

use tickwire_core::Config;
use tickwire_ingest::ReplayOptions;
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::progress::ProgressMode;
use crate::summary::RunSummary;

pub use connect::connect_waiting;
pub(crate) use live::live_options;

/// Where a run's ticks come from.
pub enum Source {
    /// Every configured feed, live; with `record`, every raw frame also
    /// goes to files in that directory.
    Live { record: Option<PathBuf> },
    /// Recorded files, replayed; progress shown on standard error as
    /// `progress` says.
    Files {
        opts: ReplayOptions,
        progress: ProgressMode,
    },
}

/// Runs `source` through the pipeline into the Redis of `config` until it
/// ends (files) or `stop` is cancelled; then writes everything read and
/// sums up. A stage that fails stops the run: the error carries the
/// summary (see [`AppError::Stopped`]).
pub async fn run(
    config: &Config,
    source: Source,
    stop: &CancellationToken,
) -> Result<RunSummary, AppError> {
    match source {
        Source::Live { record } => live::run(config, record, stop).await,
        Source::Files { opts, progress } => files::run(config, opts, stop, progress).await,
    }
}
