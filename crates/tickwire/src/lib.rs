//! The `tickwire` binary's library half: the wiring of the stages
//! (ingest -> parse -> state -> writer) for replay and for live runs, the run
//! summary, and the demo. `main.rs` holds only the command line.

pub mod demo;
pub mod ops;
pub mod progress;
pub mod replay;
pub mod run;
pub mod summary;

pub use replay::{replay, AppError};
pub use summary::{RunSummary, StateCounts};
