//! What the parse stage hands to the writer.

use crate::bar::{
    BarUpdate, FormingGone, IndicatorSet, IndicatorUpdate, Quote, SessionTrade, StateCheckpoint,
    VolumeUpdate,
};
use crate::num::Dec;
use crate::tick::{Instrument, Tick};
use std::sync::Arc;

/// One decoded input item. A bad frame is an item in the stream, not the end of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A trade print to append to the tick stream and last-price hash.
    Tick(Tick),
    /// Bid/ask for the last-price hash only.
    Quote(Quote),
    /// A valid frame of a kind tickwire does not use (depth, klines, control
    /// replies): counted, never dead-lettered.
    Skipped { feed: Box<str> },
    /// A frame or line that could not be decoded: counted and dead-lettered.
    Rejected(Rejected),
    /// A closed or forming bar (from the state stage).
    Bar(BarUpdate),
    /// An interval's forming bar closed and none formed since (from the
    /// state stage): its forming hash goes.
    FormingGone(FormingGone),
    /// A new indicator value (from the state stage's inline engine).
    Indicator(IndicatorUpdate),
    /// A trade for the Lua engine's VWAP (from the state stage, Lua engine).
    SessionTrade(SessionTrade),
    /// Bucket or session volume (from the state stage).
    Volume(VolumeUpdate),
    /// An order-book snapshot for the microstructure DB.
    Depth(Depth),
    /// A feed connected, lost its connection or stopped: the gap is explicit.
    Feed(FeedEvent),
    /// All indicators of a closed bar (from the state stage, when a key
    /// profile writes them).
    IndicatorSet(IndicatorSet),
    /// An instrument's state as of the events before it (from the state stage).
    Checkpoint(StateCheckpoint),
    /// A fill from a venue's history ended (from the fill task, for the
    /// state stage; never written).
    FillEnd(crate::gap::FillEnd),
    /// A gap in an instrument's trades, filled or not (from the state
    /// stage): one entry of `gaps:{feed}`.
    Gap(crate::gap::Gap),
}

/// Where a live feed stands, as written to `feed:{feed}:status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStatus {
    Connected,
    Reconnecting,
    Disconnected,
}

impl FeedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedStatus::Connected => "connected",
            FeedStatus::Reconnecting => "reconnecting",
            FeedStatus::Disconnected => "disconnected",
        }
    }
}

/// A change of a live feed's connection. A `Reconnecting` event marks the
/// start of a gap; the next `Connected` (with `gap_ns`) its end.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub feed: Arc<str>,
    /// The feed's venue (`binance`, `okx`, `dhan`, ...): `{exchange}` in keys.
    pub exchange: &'static str,
    pub status: FeedStatus,
    /// When it happened (epoch ns, local clock).
    pub at_ns: i64,
    /// Reconnects of this feed since the process started.
    pub reconnects: u64,
    /// On `Connected` after a loss: how long the feed was away.
    pub gap_ns: Option<i64>,
    /// Why the connection was lost (a low-cardinality class), on `Reconnecting`.
    pub reason: Option<&'static str>,
}

/// One price level of a book snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DepthLevel {
    pub bid_price: Dec,
    pub bid_qty: Dec,
    pub bid_orders: u32,
    pub ask_price: Dec,
    pub ask_qty: Dec,
    pub ask_orders: u32,
}

/// The top levels of an instrument's book as a feed last sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Depth {
    pub instrument: Arc<Instrument>,
    /// Exchange time of the snapshot (epoch ns).
    pub exchange_ts_ns: i64,
    pub recv_ts_ns: i64,
    /// Best first.
    pub levels: Vec<DepthLevel>,
}

/// A rejected input item, as it goes to `deadletter:{feed}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The feed or file format the item came from.
    pub feed: Box<str>,
    /// Low-cardinality class of the error (`json`, `missing_field`, `bad_number`, ...).
    pub error_type: &'static str,
    /// Human-readable reason, naming the field where there is one.
    pub error: String,
    /// The raw text, truncated to `max_raw` bytes on a character boundary.
    pub raw: String,
    /// When the item was received (epoch ns), if the input says.
    pub recv_ts_ns: Option<i64>,
}

impl Rejected {
    /// Builds a rejection, keeping at most `max_raw` bytes of the raw input
    /// (lossy UTF-8, so binary garbage still shows as something).
    pub fn new(
        feed: &str,
        error_type: &'static str,
        error: impl Into<String>,
        raw: &[u8],
        max_raw: usize,
        recv_ts_ns: Option<i64>,
    ) -> Self {
        let cut = &raw[..raw.len().min(max_raw)];
        let mut text = String::from_utf8_lossy(cut).into_owned();
        if raw.len() > max_raw {
            text.push('…');
        }
        Self {
            feed: feed.into(),
            error_type,
            error: error.into(),
            raw: text,
            recv_ts_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_truncated_and_marked() {
        let r = Rejected::new("binance", "json", "bad", b"0123456789", 4, None);
        assert_eq!(r.raw, "0123…");
        let r = Rejected::new("binance", "json", "bad", b"0123", 4, None);
        assert_eq!(r.raw, "0123");
    }
}
