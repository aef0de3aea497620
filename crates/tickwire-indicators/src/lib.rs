//! tickwire-indicators owns the per-instrument state between parse and writer:
//! the phase each tick trades in (by its exchange's calendar), OHLCV bars by
//! exchange time, RSI and ATR with Wilder smoothing exactly as TA-Lib computes
//! them, VWAP anchored at the session start, and time-bucketed volume. Everything
//! here is pure, O(1) per update and driven only by exchange time, so a replay
//! at any speed yields the same values as the live run.
//!
//! The indicators implement the `ta` crate's traits (`Next`, `Period`, `Reset`);
//! `ta`'s own RSI, ATR and MACD seed their averages with the first value, which
//! is not TA-Lib's convention, so they are implemented here; its `TrueRange`
//! and `BollingerBands` (SMA and population standard deviation, as TA-Lib's
//! BBANDS) are used as they are.

pub mod atr;
pub mod bars;
pub mod macd;
pub mod rsi;
pub mod state;
pub mod vwap;

pub use atr::Atr;
pub use bars::{BarBuilder, Interval};
pub use macd::{Macd, MacdOutput};
pub use rsi::Rsi;
pub use state::{StateConfig, StateStage};
pub use vwap::Vwap;

/// ta's bar traits for tickwire's bar, so ta's indicators take it directly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaBar<'a>(pub &'a tickwire_core::Bar);

impl ta::Open for TaBar<'_> {
    fn open(&self) -> f64 {
        self.0.open.to_f64()
    }
}
impl ta::High for TaBar<'_> {
    fn high(&self) -> f64 {
        self.0.high.to_f64()
    }
}
impl ta::Low for TaBar<'_> {
    fn low(&self) -> f64 {
        self.0.low.to_f64()
    }
}
impl ta::Close for TaBar<'_> {
    fn close(&self) -> f64 {
        self.0.close.to_f64()
    }
}
impl ta::Volume for TaBar<'_> {
    fn volume(&self) -> f64 {
        self.0.volume.to_f64()
    }
}
