//! `tickwire replay`: tick files through parse -> state -> writer into Redis.

use tickwire_core::Config;
use tickwire_ingest::ReplayOptions;
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::pipeline::Source;
use crate::progress::ProgressMode;
use crate::summary::RunSummary;

/// Replays `opts.files` into the Redis of `config`. Cancelling `stop`
/// (Ctrl-C) stops reading; everything read is still written before this
/// returns.
pub async fn replay(
    config: &Config,
    opts: ReplayOptions,
    stop: CancellationToken,
) -> Result<RunSummary, AppError> {
    replay_shown(config, opts, stop, ProgressMode::Off).await
}

/// [`replay`], showing its progress on standard error as `mode` says.
pub async fn replay_shown(
    config: &Config,
    opts: ReplayOptions,
    stop: CancellationToken,
    mode: ProgressMode,
) -> Result<RunSummary, AppError> {
    let source = Source::Files {
        opts,
        progress: mode,
    };
    crate::pipeline::run(config, source, &stop).await
}
