//! tickwire-ingest owns the sources: where raw lines and frames come from and
//! at what pace.
//!
//! - [`file`]: tick files (plain or zstd) replayed at recorded pace or as fast
//!   as possible: reader thread -> (crossbeam, bounded) -> parser thread.
//! - [`ws`]: one live WebSocket feed (connect, subscribe, read, ping, idle
//!   timeout, reconnect with jittered backoff).
//! - [`backfill`]: the fill task: a gap's trades from the venue's REST
//!   history, handed to the parser as history frames.
//! - [`live`]: every configured feed at once -> (tokio mpsc) -> one parser
//!   thread, with the [`record`]er beside it. A feed whose in-memory
//!   backlog is full spills to its disk [`spool`] and drains it in order.
//!   The [`watermark`] says up to which receive time everything the feeds
//!   read has been taken (the live bar timer closes nothing past it).
//!
//! Either way the parser thread hands chunks of events on through a bounded
//! tokio mpsc (`blocking_send`) to the state stage and the writer.

pub mod backfill;
pub mod file;
pub mod frame;
pub mod live;
pub mod record;
pub mod spool;
mod telemetry;
pub mod watermark;
pub mod ws;

pub use file::{
    start_replay, IngestError, IngestProgress, IngestSummary, Pace, ReplayHandle, ReplayOptions,
};
pub use live::{start_live, start_live_filling, LiveError, LiveHandle, LiveOptions, LiveSummary};
