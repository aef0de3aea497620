//! The end of a run, either kind: which stage's failure is the cause, and
//! the summary.

use std::time::Instant;

use tickwire_core::Config;
use tickwire_ingest::live::{FeedSummary, StageFailure};
use tickwire_ingest::record::RecordSummary;
use tickwire_ingest::IngestSummary;
use tickwire_writer::{WriterFailure, WriterStats};

use crate::error::AppError;
use crate::summary::{RunSummary, StateCounts};

/// What the stages of a run reported at its end.
pub(super) struct Ended {
    pub mode: &'static str,
    pub started: Instant,
    pub ingest: IngestSummary,
    pub writer: WriterStats,
    pub state: StateCounts,
    pub feeds: Vec<FeedSummary>,
    pub record: Option<RecordSummary>,
}

/// The first cause among the stages' ends: a writer that gave up explains
/// a state stage and a parser whose output closed, and those explain the
/// recorder and parser failures `later` lists (in their order).
pub(super) fn first_cause(
    written: Result<WriterStats, WriterFailure>,
    state: &StateCounts,
    later: impl IntoIterator<Item = Option<StageFailure>>,
) -> (WriterStats, Option<AppError>) {
    let (stats, cause) = match written {
        Ok(stats) => (stats, None),
        Err(f) => (f.stats, Some(AppError::Writer(f.error))),
    };
    let cause = cause
        .or_else(|| state.failed.clone().map(AppError::State))
        .or_else(|| later.into_iter().flatten().next().map(AppError::Stage));
    (stats, cause)
}

/// The end of a run, either kind: its summary, or the error of the stage
/// that stopped it carrying that summary.
pub(super) fn conclude(
    config: &Config,
    e: Ended,
    cause: Option<AppError>,
) -> Result<RunSummary, AppError> {
    let summary = RunSummary {
        ingest: e.ingest,
        writer: e.writer,
        state: e.state,
        elapsed: e.started.elapsed(),
        databases: config.databases.clone(),
        cluster: config.redis.is_cluster(),
        mode: e.mode,
        feeds: e.feeds,
        record: e.record,
        stopped_by: cause.as_ref().map(AppError::stage),
    };
    match cause {
        None => Ok(summary),
        Some(cause) => Err(AppError::Stopped {
            summary: Box::new(summary),
            cause: Box::new(cause),
        }),
    }
}
