//! The `tickwire` binary's library half: the wiring of the stages
//! (ingest -> parse -> writer), the run summary, and the demo. `main.rs` holds
//! only the command line. Bars, indicators and volume state
//! (`tickwire-indicators`, coming next) slot in between parse and writer.

pub mod demo;
pub mod replay;
pub mod summary;

pub use replay::{replay, AppError, StateCounts};
pub use summary::RunSummary;
