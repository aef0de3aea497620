//! OHLCV bars by exchange time.

use std::sync::Arc;

use tickwire_core::config::interval_ms;
use tickwire_core::{Bar, Dec};

/// A bar interval: its label as written in config and keys (`1m`) and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub label: Arc<str>,
    pub ms: i64,
}

impl Interval {
    /// `30s`, `1m`, `5m`, `1h`, ...; `None` for anything else.
    pub fn parse(label: &str) -> Option<Self> {
        Some(Self {
            label: label.into(),
            ms: interval_ms(label)?,
        })
    }

    /// Open time of the interval that `ts_ms` falls in (aligned to the epoch,
    /// which is also aligned to the exchange's clock for minute intervals that
    /// divide its UTC offset, e.g. 1m to 30m for India's +05:30).
    pub fn open_of(&self, ts_ms: i64) -> i64 {
        ts_ms - ts_ms.rem_euclid(self.ms)
    }
}

/// What an interval's forming hash is to say ([`BarBuilder::hand_on`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forming {
    /// This bar is forming.
    Bar(Bar),
    /// None is: the last one closed, and no trade of a later interval came.
    Gone,
}

/// Builds the bars of one instrument and interval. Bars with no trades are
/// never invented; a closed bar is never reopened: a trade stamped before
/// the forming bar's open (a clock step back), or in a bar already closed,
/// is added to the earliest bar still open.
#[derive(Debug, Clone)]
pub struct BarBuilder {
    interval: Interval,
    forming: Option<Bar>,
    /// The end of the interval of the last bar closed (`i64::MIN`: none):
    /// no later trade opens a bar before it.
    closed_until: i64,
    /// Whether the forming hash may hold a bar: one was handed on as
    /// forming (or a checkpoint was restored) and no news that none is
    /// forming went out since ([`BarBuilder::hand_on`]).
    shown: bool,
}

impl BarBuilder {
    pub fn new(interval: Interval) -> Self {
        Self {
            interval,
            forming: None,
            closed_until: i64::MIN,
            shown: false,
        }
    }

    pub fn interval(&self) -> &Interval {
        &self.interval
    }

    /// Adds a trade; returns the bar it closed, if it opened a later interval.
    pub fn update(&mut self, ts_ms: i64, price: Dec, qty: Dec) -> Option<Bar> {
        let open = self.interval.open_of(ts_ms.max(self.closed_until));
        match &mut self.forming {
            Some(bar) if open <= bar.open_ms => {
                bar.add(price, qty);
                None
            }
            slot => {
                let closed = slot.replace(Bar::new(open, price, qty));
                if let Some(c) = &closed {
                    self.closed_until = c.open_ms.saturating_add(self.interval.ms);
                }
                closed
            }
        }
    }

    /// When the forming bar is due to close: the end of its interval, or
    /// `phase_end_ms` (the end of the exchange phase it trades in) if sooner.
    pub fn due_ms(&self, phase_end_ms: Option<i64>) -> Option<i64> {
        let bar = self.forming.as_ref()?;
        let end = bar.open_ms.saturating_add(self.interval.ms);
        Some(phase_end_ms.map_or(end, |p| end.min(p)))
    }

    /// Where a checkpoint resumes: the end of the last closed bar's interval.
    pub fn closed_until(&self) -> i64 {
        self.closed_until
    }

    /// The bar being formed.
    pub fn forming(&self) -> Option<&Bar> {
        self.forming.as_ref()
    }

    /// Continues from a bar that was forming when a checkpoint was taken,
    /// and the end of the last one closed. The forming hash is taken to
    /// hold a bar (the checkpoint's, or one an older build left there after
    /// it closed), so that the next hand-on clears it if none is forming.
    pub fn resume(&mut self, forming: Option<Bar>, closed_until: i64) {
        self.forming = forming;
        self.closed_until = closed_until;
        self.shown = true;
    }

    /// Closes the forming bar (its time is up, or the input ended).
    pub fn close(&mut self) -> Option<Bar> {
        let closed = self.forming.take();
        if let Some(c) = &closed {
            self.closed_until = c.open_ms.saturating_add(self.interval.ms);
        }
        closed
    }

    /// What the forming hash is to say now: the forming bar, or (once)
    /// that none is forming since the last one closed; `None` when nothing
    /// is to be said.
    pub fn hand_on(&mut self) -> Option<Forming> {
        match (self.forming, self.shown) {
            (Some(bar), _) => {
                self.shown = true;
                Some(Forming::Bar(bar))
            }
            (None, true) => {
                self.shown = false;
                Some(Forming::Gone)
            }
            (None, false) => None,
        }
    }

    /// Whether a hand-on would say something though no trade came: the
    /// forming bar closed after it was handed on.
    pub fn gone(&self) -> bool {
        self.shown && self.forming.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn d(v: f64) -> Dec {
        Dec::from_f64(v).unwrap()
    }

    #[test]
    fn bars_close_on_a_later_interval_and_gaps_are_not_filled() {
        let mut b = BarBuilder::new(Interval::parse("1m").unwrap());
        let t0 = 1_704_080_700_000; // 03:45:00 UTC
        assert_eq!(b.update(t0 + 1_000, d(10.0), d(1.0)), None);
        assert_eq!(b.update(t0 + 2_000, d(12.0), d(2.0)), None);
        assert_eq!(b.update(t0 + 59_999, d(9.0), d(3.0)), None);
        // Three minutes later: the first bar closes, no empty bars in between.
        let closed = b.update(t0 + 3 * MIN + 5, d(11.0), d(1.0)).unwrap();
        assert_eq!(
            closed,
            Bar {
                open_ms: t0,
                open: d(10.0),
                high: d(12.0),
                low: d(9.0),
                close: d(9.0),
                volume: d(6.0),
                trades: 3
            }
        );
        assert_eq!(b.forming().unwrap().open_ms, t0 + 3 * MIN);
        // A trade stamped in an earlier minute joins the forming bar.
        assert_eq!(b.update(t0 + 2 * MIN, d(8.0), d(1.0)), None);
        let last = b.close().unwrap();
        assert_eq!((last.low, last.trades), (d(8.0), 2));
        assert!(b.close().is_none());
    }

    #[test]
    fn a_trade_of_a_closed_bar_counts_in_the_next_one_and_phases_cut_bars_short() {
        let mut b = BarBuilder::new(Interval::parse("1h").unwrap());
        let t0 = 1_704_099_600_000; // 09:00 UTC
        assert_eq!(b.update(t0 + 5 * MIN, d(10.0), d(1.0)), None);
        // Due at the hour, or at a phase end before it.
        assert_eq!(b.due_ms(None), Some(t0 + 60 * MIN));
        assert_eq!(b.due_ms(Some(t0 + 30 * MIN)), Some(t0 + 30 * MIN));
        assert_eq!(b.close().unwrap().trades, 1);
        assert_eq!(b.due_ms(None), None);
        // A late trade of the closed hour opens the next hour's bar instead.
        assert_eq!(b.update(t0 + 50 * MIN, d(11.0), d(2.0)), None);
        assert_eq!(b.forming().unwrap().open_ms, t0 + 60 * MIN);
        assert_eq!(b.closed_until(), t0 + 60 * MIN);
    }

    #[test]
    fn five_minute_bars_align_to_the_clock() {
        let i = Interval::parse("5m").unwrap();
        assert_eq!(i.open_of(1_704_080_999_999), 1_704_080_700_000);
        assert_eq!(Interval::parse("1h").unwrap().ms, 3_600_000);
        assert!(Interval::parse("5x").is_none());
    }
}
