//! RSI with Wilder smoothing, as TA-Lib's `TA_RSI` computes it.
//!
//! The first value comes after `period` price changes: the plain averages of
//! the first `period` gains and losses; then each average is
//! `(avg * (period - 1) + x) / period`. RSI = 100 * gain / (gain + loss), and
//! 0 when gain + loss is within TA-Lib's zero tolerance (1e-8), as for a
//! perfectly flat series. The operations are TA-Lib's, in TA-Lib's order, so
//! the values agree to the last bits.

use ta::{Next, Period, Reset};

/// TA-Lib's `TA_IS_ZERO`.
pub(crate) fn is_zero(v: f64) -> bool {
    -0.000_000_01 < v && v < 0.000_000_01
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rsi {
    period: usize,
    prev: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    /// `period` must be at least 1 (TA-Lib takes 2 and more).
    pub fn new(period: usize) -> Self {
        Self {
            period: period.max(1),
            prev: None,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    /// True once values are produced.
    pub fn is_ready(&self) -> bool {
        self.changes >= self.period
    }

    fn value(&self) -> f64 {
        let total = self.gain + self.loss;
        if is_zero(total) {
            0.0
        } else {
            100.0 * (self.gain / total)
        }
    }
}

impl Next<f64> for Rsi {
    type Output = Option<f64>;

    /// Feeds one close; `None` until warmed up. A close that is not a finite
    /// number is ignored (the state does not change).
    fn next(&mut self, close: f64) -> Option<f64> {
        if !close.is_finite() {
            return self.is_ready().then(|| self.value());
        }
        // The first close only sets the reference for the first change.
        let prev = self.prev.replace(close)?;
        let change = close - prev;
        let n = self.period as f64;
        self.changes += 1;
        if self.changes <= self.period {
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            if self.changes < self.period {
                return None;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            self.loss /= n;
            self.gain /= n;
        }
        Some(self.value())
    }
}

impl Period for Rsi {
    fn period(&self) -> usize {
        self.period
    }
}

impl Reset for Rsi {
    fn reset(&mut self) {
        *self = Rsi::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(period: usize, closes: &[f64]) -> Vec<Option<f64>> {
        let mut rsi = Rsi::new(period);
        closes.iter().map(|c| rsi.next(*c)).collect()
    }

    #[test]
    fn warm_up_boundary_is_after_period_changes() {
        let closes: Vec<f64> = (0..20).map(|i| 100.0 + (i % 3) as f64).collect();
        let out = run(14, &closes);
        assert!(
            out[..14].iter().all(Option::is_none),
            "nothing before index 14"
        );
        assert!(out[14].is_some(), "first value at index 14 (14 changes)");
    }

    #[test]
    fn wilder_textbook_series() {
        // Wilder's 14-period example closes; TA-Lib 0.8 gives these from index 14 on.
        let closes = [
            44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03,
            45.61, 46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64,
        ];
        let out = run(14, &closes);
        let expected = [
            70.46413502109704,
            66.24961855355505,
            66.48094183471265,
            69.34685316290864,
            66.29471265892623,
            57.91502067008556,
        ];
        for (got, want) in out[14..].iter().zip(expected) {
            let got = got.unwrap();
            assert!(((got - want) / want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn flat_prices_give_zero_as_ta_lib_does() {
        let out = run(5, &[10.0; 12]);
        assert_eq!(out[5], Some(0.0));
        assert_eq!(out[11], Some(0.0));
    }

    #[test]
    fn only_gains_give_100_and_only_losses_0() {
        let up: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(run(3, &up)[9], Some(100.0));
        let down: Vec<f64> = (0..10).map(|i| 100.0 - f64::from(i)).collect();
        assert_eq!(run(3, &down)[9], Some(0.0));
    }

    #[test]
    fn nan_is_ignored_and_reset_starts_over() {
        let mut rsi = Rsi::new(2);
        assert_eq!(rsi.next(1.0), None);
        assert_eq!(rsi.next(f64::NAN), None);
        assert_eq!(rsi.next(2.0), None);
        assert_eq!(rsi.next(3.0), Some(100.0));
        assert_eq!(rsi.next(f64::INFINITY), Some(100.0));
        rsi.reset();
        assert!(!rsi.is_ready());
        assert_eq!(rsi.next(3.0), None);
        assert_eq!(rsi.period(), 2);
    }
}
