//! MACD exactly as TA-Lib computes it (`TA_MACD`, default compatibility).
//!
//! `ta`'s MACD seeds its EMAs with the first input; TA-Lib seeds each EMA with
//! a simple average and aligns the fast one to the slow one: with periods
//! (fast, slow, signal) = (12, 26, 9) the slow EMA starts at bar 25 as the mean
//! of bars 0..=25, the fast EMA starts at the same bar as the mean of bars
//! 14..=25, the MACD line runs from bar 25, and the signal (EMA 9 of the line,
//! seeded with the mean of its first 9 values) gives the first output at bar
//! 33. Each EMA then moves by `k = 2 / (period + 1)`.

use std::collections::VecDeque;

use ta::{Next, Period, Reset};

/// One MACD value: the line, its signal and their difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdOutput {
    pub macd: f64,
    pub signal: f64,
    pub hist: f64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Macd {
    fast: usize,
    slow: usize,
    signal: usize,
    /// The first `slow` closes (to seed both EMAs).
    seed: VecDeque<f64>,
    fast_ema: Option<f64>,
    slow_ema: Option<f64>,
    /// The first `signal` MACD values (to seed the signal EMA).
    line_seed: Vec<f64>,
    signal_ema: Option<f64>,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = (fast.max(1), slow.max(1));
        // TA-Lib swaps the periods when fast > slow.
        let (fast, slow) = if fast > slow {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Self {
            fast,
            slow,
            signal: signal.max(1),
            seed: VecDeque::with_capacity(slow),
            fast_ema: None,
            slow_ema: None,
            line_seed: Vec::with_capacity(signal),
            signal_ema: None,
        }
    }

    fn k(period: usize) -> f64 {
        2.0 / (period as f64 + 1.0)
    }
}

impl Next<f64> for Macd {
    /// `None` until `slow + signal - 2` earlier closes (TA-Lib's lookback).
    type Output = Option<MacdOutput>;

    fn next(&mut self, close: f64) -> Option<MacdOutput> {
        let line = match (self.fast_ema, self.slow_ema) {
            (Some(f), Some(s)) => {
                let f = f + (close - f) * Self::k(self.fast);
                let s = s + (close - s) * Self::k(self.slow);
                self.fast_ema = Some(f);
                self.slow_ema = Some(s);
                f - s
            }
            _ => {
                self.seed.push_back(close);
                if self.seed.len() < self.slow {
                    return None;
                }
                let mean =
                    |xs: &mut dyn Iterator<Item = &f64>, n: usize| xs.sum::<f64>() / n as f64;
                let s = mean(&mut self.seed.iter(), self.slow);
                let f = mean(&mut self.seed.iter().skip(self.slow - self.fast), self.fast);
                self.slow_ema = Some(s);
                self.fast_ema = Some(f);
                self.seed.clear();
                f - s
            }
        };
        let signal = match self.signal_ema {
            Some(sig) => sig + (line - sig) * Self::k(self.signal),
            None => {
                self.line_seed.push(line);
                if self.line_seed.len() < self.signal {
                    return None;
                }
                self.line_seed.iter().sum::<f64>() / self.signal as f64
            }
        };
        self.signal_ema = Some(signal);
        Some(MacdOutput {
            macd: line,
            signal,
            hist: line - signal,
        })
    }
}

impl Period for Macd {
    fn period(&self) -> usize {
        self.slow
    }
}

impl Reset for Macd {
    fn reset(&mut self) {
        *self = Macd::new(self.fast, self.slow, self.signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_after_the_ta_lib_lookback() {
        let mut m = Macd::new(12, 26, 9);
        let closes: Vec<f64> = (0..40)
            .map(|i| 100.0 + (i as f64 * 0.7).sin() * 3.0)
            .collect();
        let outs: Vec<_> = closes.iter().map(|c| m.next(*c)).collect();
        assert!(outs[..33].iter().all(Option::is_none));
        assert!(outs[33..].iter().all(Option::is_some));
        // A constant series has no divergence.
        let mut flat = Macd::new(12, 26, 9);
        let last = (0..50).filter_map(|_| flat.next(5.0)).last().unwrap();
        assert_eq!((last.macd, last.signal, last.hist), (0.0, 0.0, 0.0));
    }
}
