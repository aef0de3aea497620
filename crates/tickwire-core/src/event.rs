//! What the parse stage hands to the writer.

use crate::bar::{BarUpdate, IndicatorUpdate, Quote, SessionTrade, VolumeUpdate};
use crate::tick::Tick;

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
    /// A new indicator value (from the state stage's inline engine).
    Indicator(IndicatorUpdate),
    /// A trade for the Lua engine's VWAP (from the state stage, Lua engine).
    SessionTrade(SessionTrade),
    /// Bucket or session volume (from the state stage).
    Volume(VolumeUpdate),
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
