//! `tickwire run` (live feeds through parse -> state -> writer, optionally
//! recording) and `tickwire record` (live feeds to files only).

use std::path::PathBuf;

use tickwire_core::Config;
use tickwire_ingest::live::LiveSummary;
use tickwire_ingest::record::RecordSummary;
use tickwire_ingest::start_live;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::ops::{depth, ChannelGauges};
use crate::pipeline::{live_options, Source};
use crate::summary::RunSummary;

/// Runs every configured feed into the Redis of `config` until `stop` is
/// cancelled; then closes the feeds, writes everything read, and sums up.
/// With `record`, every raw frame also goes to files in that directory.
pub async fn run(
    config: &Config,
    record: Option<PathBuf>,
    stop: CancellationToken,
) -> Result<RunSummary, AppError> {
    crate::pipeline::run(config, Source::Live { record }, &stop).await
}

/// Records every configured feed's raw frames to `dir` until `stop` is
/// cancelled. Nothing is decoded and Redis is not used.
pub async fn record(
    config: &Config,
    dir: PathBuf,
    stop: CancellationToken,
) -> Result<(LiveSummary, RecordSummary), AppError> {
    // Nothing reads events: frames are only recorded.
    let (tx, _rx) = mpsc::channel(1);
    let live = start_live(live_options(config, Some(dir), false), tx, &stop)?;
    let _gauges = ChannelGauges::start(vec![("parser", depth(live.frames()))]);
    // Until stopped, or until the recorder or the parser fails: recording on
    // would only count frames not recorded.
    tokio::select! {
        () = stop.cancelled() => {}
        f = live.failed() => tracing::error!(stage = f.stage, "{f}: stopping"),
    }
    let mut read = live.finish().await?;
    if let Some(cause) = read.parser_failed.take() {
        return Err(AppError::Stage(tickwire_ingest::live::StageFailure {
            stage: "parser",
            cause,
        }));
    }
    let recorded = read.record.take().unwrap_or_default();
    Ok((read, recorded))
}
