//! The `tickwire` binary's library half: the one pipeline of `run` and
//! `replay` (sources -> parse -> state -> writer) and the supervisor that
//! stops it, the run summary, and the demo. `main.rs` holds only the
//! command line.

pub mod demo;
pub mod error;
mod gaps;
pub mod ops;
pub mod pipeline;
pub mod progress;
pub mod replay;
pub mod run;
mod state;
pub mod summary;
pub mod supervisor;
mod writer;

pub use error::AppError;
pub use replay::replay;
pub use summary::{RunSummary, StateCounts};
/// The stop a run ends on (see [`supervisor`]).
pub use tokio_util::sync::CancellationToken;
