//! Numbers as venues send them.

use tickwire_core::Dec;

/// Parses a decimal number sent as text (`"0.35130000"`) exactly; NaN,
/// infinities and other text are `None`.
pub(crate) fn decimal(s: &str) -> Option<Dec> {
    Dec::parse(s)
}

/// Epoch time of unknown unit (s, ms, µs or ns) to nanoseconds, by magnitude:
/// no venue time of this century is ambiguous between the four.
pub(crate) fn epoch_to_ns(v: i64) -> Option<i64> {
    match v {
        v if v <= 0 => None,
        v if v < 100_000_000_000 => v.checked_mul(1_000_000_000),
        v if v < 100_000_000_000_000 => v.checked_mul(1_000_000),
        v if v < 100_000_000_000_000_000 => v.checked_mul(1_000),
        v => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_by_magnitude() {
        assert_eq!(epoch_to_ns(1_700_000_000), Some(1_700_000_000_000_000_000));
        assert_eq!(
            epoch_to_ns(1_700_000_000_123),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(
            epoch_to_ns(1_700_000_000_123_456),
            Some(1_700_000_000_123_456_000)
        );
        assert_eq!(
            epoch_to_ns(1_700_000_000_123_456_789),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(epoch_to_ns(0), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(
            decimal("0.35130000").map(|d| d.to_string()).as_deref(),
            Some("0.3513")
        );
        assert_eq!(decimal("NaN"), None);
        assert_eq!(decimal("inf"), None);
        assert_eq!(decimal("x"), None);
    }
}
