//! ATR with Wilder smoothing, as TA-Lib's `TA_ATR` computes it.
//!
//! True range of a bar is max(H - L, |H - Cprev|, |L - Cprev|) (the `ta`
//! crate's `TrueRange`). TA-Lib skips bar 0, which has no previous close; the
//! first ATR, at bar `period`, is the mean of the true ranges of bars
//! 1..=period, then `(atr * (period - 1) + tr) / period`.

use ta::indicators::TrueRange;
use ta::{Next, Period, Reset};
use tickwire_core::Bar;

use crate::TaBar;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Atr {
    period: usize,
    tr: TrueRange,
    bars: usize,
    sum: f64,
    value: Option<f64>,
}

impl Atr {
    pub fn new(period: usize) -> Self {
        Self {
            period: period.max(1),
            tr: TrueRange::new(),
            bars: 0,
            sum: 0.0,
            value: None,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.value.is_some()
    }
}

impl Next<&Bar> for Atr {
    type Output = Option<f64>;

    /// Feeds one closed bar; `None` until warmed up.
    fn next(&mut self, bar: &Bar) -> Option<f64> {
        let tr = self.tr.next(&TaBar(bar));
        self.bars += 1;
        if self.bars == 1 {
            return None;
        }
        let n = self.period as f64;
        let ranges = self.bars - 1;
        if ranges < self.period {
            self.sum += tr;
        } else if ranges == self.period {
            self.sum += tr;
            self.value = Some(self.sum / n);
        } else if let Some(prev) = self.value {
            let mut v = prev * (n - 1.0);
            v += tr;
            self.value = Some(v / n);
        }
        self.value
    }
}

impl Period for Atr {
    fn period(&self) -> usize {
        self.period
    }
}

impl Reset for Atr {
    fn reset(&mut self) {
        *self = Atr::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(h: f64, l: f64, c: f64) -> Bar {
        let d = |v: f64| tickwire_core::Dec::from_f64(v).unwrap();
        Bar {
            open_ms: 0,
            open: d(c),
            high: d(h),
            low: d(l),
            close: d(c),
            volume: d(1.0),
            trades: 1,
        }
    }

    #[test]
    fn first_bar_is_skipped_and_seed_is_the_mean_of_the_next_period_ranges() {
        let mut atr = Atr::new(3);
        // Bar 0's range (100) must not count, as in TA-Lib.
        assert_eq!(atr.next(&bar(200.0, 100.0, 150.0)), None);
        assert_eq!(atr.next(&bar(151.0, 149.0, 150.0)), None); // tr 2
        assert_eq!(atr.next(&bar(152.0, 150.0, 151.0)), None); // tr 2
        assert_eq!(atr.next(&bar(155.0, 151.0, 154.0)), Some(8.0 / 3.0)); // tr 4
                                                                          // Wilder: (8/3 * 2 + tr) / 3 with tr = max(1, |154-... |) = |158-154| = 4
        let v = atr.next(&bar(158.0, 157.0, 157.5)).unwrap();
        assert!((v - (8.0 / 3.0 * 2.0 + 4.0) / 3.0).abs() < 1e-12);
        assert!(atr.is_ready());
    }

    #[test]
    fn gap_uses_the_previous_close() {
        let mut atr = Atr::new(1);
        atr.next(&bar(10.0, 9.0, 10.0));
        // A gap up: the range is from the previous close, 10, to the high, 20.
        assert_eq!(atr.next(&bar(20.0, 19.0, 19.5)), Some(10.0));
    }

    #[test]
    fn reset_starts_over() {
        let mut atr = Atr::new(1);
        atr.next(&bar(10.0, 9.0, 10.0));
        assert_eq!(atr.next(&bar(11.0, 10.0, 10.5)), Some(1.0));
        atr.reset();
        assert!(!atr.is_ready());
        assert_eq!(atr.next(&bar(11.0, 10.0, 10.5)), None);
        assert_eq!(atr.period(), 1);
    }
}
