//! What a live source hands on: a frame as read off the socket, with its
//! receive time, or a change of the feed's status.

use std::sync::Arc;

use tickwire_core::{FeedEvent, FeedVenue};
use tokio_tungstenite::tungstenite::Bytes;

/// A frame as received, with its receive time.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub feed: Arc<str>,
    pub venue: FeedVenue,
    /// Epoch ns, local clock, taken when the frame was read.
    pub recv_ns: i64,
    pub binary: bool,
    pub data: Bytes,
}

/// A page of a venue's trade history, fetched to fill a gap.
#[derive(Debug, Clone)]
pub struct HistoryFrame {
    pub feed: Arc<str>,
    pub venue: FeedVenue,
    /// Epoch ns, local clock, when the page was received.
    pub recv_ns: i64,
    /// The gap and the ids of it the page gives.
    pub key: tickwire_core::HistoryKey,
    pub data: Bytes,
}

/// What a feed task (or the fill task) hands to the parser.
#[derive(Debug, Clone)]
pub enum FeedMsg {
    Frame(RawFrame),
    Status(FeedEvent),
    /// A page of trades for a gap ([`crate::backfill`]).
    History(HistoryFrame),
    /// A gap's fill ended.
    FillEnd(tickwire_core::FillEnd),
}

/// Epoch nanoseconds now.
pub fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
