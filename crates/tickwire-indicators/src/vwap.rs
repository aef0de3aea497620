//! VWAP anchored at the session start: sum(price * qty) / sum(qty) over the
//! trades of the current trading day, reset when a trade of a new day arrives.

use jiff::civil::Date;
use ta::Reset;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vwap {
    day: Option<Date>,
    pv: f64,
    volume: f64,
}

impl Vwap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trade of trading day `day`; returns the VWAP after it. A trade
    /// with a price or quantity that is not a finite positive number is not
    /// counted (the VWAP so far is returned).
    pub fn update(&mut self, day: Date, price: f64, qty: f64) -> Option<f64> {
        let valid = price.is_finite() && price > 0.0 && qty.is_finite() && qty > 0.0;
        if valid {
            if self.day != Some(day) {
                self.reset();
                self.day = Some(day);
            }
            self.pv += price * qty;
            self.volume += qty;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.pv / self.volume)
    }
}

impl Reset for Vwap {
    fn reset(&mut self) {
        *self = Vwap::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_by_quantity_and_reset_each_session() {
        let d1 = jiff::civil::date(2024, 1, 1);
        let d2 = jiff::civil::date(2024, 1, 2);
        let mut v = Vwap::new();
        assert_eq!(v.update(d1, 10.0, 1.0), Some(10.0));
        assert_eq!(v.update(d1, 20.0, 3.0), Some(17.5));
        // Zero quantity and NaN are not counted.
        assert_eq!(v.update(d1, 99.0, 0.0), Some(17.5));
        assert_eq!(v.update(d1, f64::NAN, 1.0), Some(17.5));
        // A new day starts from scratch.
        assert_eq!(v.update(d2, 30.0, 2.0), Some(30.0));
        v.reset();
        assert_eq!(v.value(), None);
    }
}
