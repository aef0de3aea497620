//! tickwire-ingest owns the sources: where raw lines and frames come from and
//! at what pace. Today that is tick files (plain or zstd), read on a dedicated
//! reader thread and decoded on a dedicated parser thread; live WebSocket feeds
//! and the recorder join them here.
//!
//! Data flow: reader thread -> (crossbeam, bounded) -> parser thread ->
//! (tokio mpsc, bounded, `blocking_send`) -> the writer's async task.

pub mod file;

pub use file::{
    start_replay, IngestError, IngestProgress, IngestSummary, Pace, ReplayHandle, ReplayOptions,
};
