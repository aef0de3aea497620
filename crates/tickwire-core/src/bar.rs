//! Bars and indicator values as they flow from the state stage to the writer.

use std::sync::Arc;

use crate::num::Dec;
use crate::tick::Instrument;

/// Length of a bar interval label in ms: `<n>s`, `<n>m`, `<n>h`, `<n>d` with
/// n > 0; `None` for anything else.
pub fn interval_ms(label: &str) -> Option<i64> {
    let unit = label.chars().last()?;
    let n: i64 = label[..label.len() - unit.len_utf8()].parse().ok()?;
    let per = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(per)).flatten()
}

/// One OHLCV bar, keyed by its open time (epoch ms, exchange time).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bar {
    pub open_ms: i64,
    pub open: Dec,
    pub high: Dec,
    pub low: Dec,
    pub close: Dec,
    pub volume: Dec,
    /// Number of trades in the bar.
    pub trades: u64,
}

impl Bar {
    /// A bar opened by one trade.
    pub fn new(open_ms: i64, price: Dec, qty: Dec) -> Self {
        Self {
            open_ms,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: qty,
            trades: 1,
        }
    }

    /// Adds a trade to the bar.
    pub fn add(&mut self, price: Dec, qty: Dec) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        self.volume += qty;
        self.trades += 1;
    }
}

/// A bar of one instrument and interval: closed (final) or still forming.
#[derive(Debug, Clone, PartialEq)]
pub struct BarUpdate {
    pub instrument: Arc<Instrument>,
    /// The interval's label, as in the key (`1m`, `5m`).
    pub interval: Arc<str>,
    pub bar: Bar,
    pub closed: bool,
}

/// No bar of one instrument and interval is forming any more: the last one
/// closed (and went on as closed) and no trade of a later interval has come
/// since. Its forming hash is deleted, so that no consumer reads a closed
/// bar as the forming one.
#[derive(Debug, Clone, PartialEq)]
pub struct FormingGone {
    pub instrument: Arc<Instrument>,
    /// The interval's label, as in the key (`1m`, `5m`).
    pub interval: Arc<str>,
}

/// A new value of an indicator of one instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorUpdate {
    pub instrument: Arc<Instrument>,
    /// `rsi`, `atr`, `vwap`.
    pub name: &'static str,
    pub value: f64,
    /// Exchange time the value is as of (epoch ms).
    pub ts_ms: i64,
    /// The period (bars); 0 for session-anchored indicators (VWAP).
    pub period: u32,
}

/// A trade as the Lua engine's VWAP script takes it: with its place in the
/// instrument's sequence (`{ts_ms}-{seq}`, as its tick stream ID), which makes
/// the script idempotent, and its trading date in the exchange's zone.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTrade {
    pub instrument: Arc<Instrument>,
    pub ts_ms: u64,
    pub seq: u64,
    /// `YYYY-MM-DD`.
    pub session: Arc<str>,
    pub price: Dec,
    pub qty: Dec,
}

/// Traded volume of one instrument, absolute for its span so that writing it
/// again never double-counts: a time bucket of the session (`bucket` = its
/// first local minute) or the whole session (`bucket` = `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeUpdate {
    pub instrument: Arc<Instrument>,
    /// `YYYY-MM-DD`, the exchange's trading date.
    pub session: Arc<str>,
    pub bucket: Option<u16>,
    pub volume: Dec,
    pub trades: u64,
    pub first_ts_ms: i64,
    pub last_ts_ms: i64,
}

/// An instrument's state checkpoint (JSON, the state stage's format), to
/// be written once the outputs it accounts for are acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct StateCheckpoint {
    pub instrument: Arc<Instrument>,
    pub json: String,
}

/// A quote-only update (Binance bookTicker, OKX tickers): it sets bid and ask
/// in the last-price hash and never appends to the tick stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub instrument: Arc<Instrument>,
    pub exchange_ts_ns: i64,
    pub recv_ts_ns: i64,
    pub bid: Option<Dec>,
    pub ask: Option<Dec>,
}

/// Every indicator of one closed bar (for key profiles that write them
/// together): RSI 14, MACD 12/26/9 and Bollinger 20/2, each `None` until its
/// warm-up is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSet {
    pub instrument: Arc<Instrument>,
    /// The bar interval's label (`1m`).
    pub interval: Arc<str>,
    /// The bar's open time (epoch ms).
    pub ts_ms: i64,
    pub rsi: Option<f64>,
    pub macd: Option<f64>,
    pub macd_signal: Option<f64>,
    pub macd_hist: Option<f64>,
    pub bb_upper: Option<f64>,
    pub bb_middle: Option<f64>,
    pub bb_lower: Option<f64>,
}
