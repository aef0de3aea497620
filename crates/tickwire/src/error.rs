//! Why a run or replay failed: the one error type of the binary's library.

use tickwire_core::ConfigError;
use tickwire_ingest::IngestError;
use tickwire_writer::WriterError;

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
    #[error("the state stage stopped: {0}")]
    State(String),
    /// The recorder or the live parser failed while the feeds ran.
    #[error("{0}")]
    Stage(tickwire_ingest::live::StageFailure),
    /// A stage failed and stopped the run: `summary` is what it did before
    /// (printed before the error), `cause` why it stopped.
    #[error("{cause}")]
    Stopped {
        summary: Box<RunSummary>,
        cause: Box<AppError>,
    },
}

impl AppError {
    /// The summary of a run that a failed stage stopped.
    pub fn summary(&self) -> Option<&RunSummary> {
        match self {
            AppError::Stopped { summary, .. } => Some(summary),
            _ => None,
        }
    }

    /// The stage this error stopped a run in, as the summary names it.
    pub fn stage(&self) -> &'static str {
        match self {
            AppError::Stage(f) => f.stage,
            AppError::State(_) => "state stage",
            AppError::Stopped { cause, .. } => cause.stage(),
            _ => "writer",
        }
    }
}
