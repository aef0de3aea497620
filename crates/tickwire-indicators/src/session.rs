//! Trading days: the session a timestamp belongs to, in the exchange's zone.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The time zone of an exchange's sessions: Indian venues (NSE, BSE, MCX)
/// trade on Asia/Kolkata days; every other venue on UTC days (crypto venues
/// turn the day at 00:00 UTC).
pub fn exchange_zone(exchange: &str) -> TimeZone {
    let indian = ["NSE", "BSE", "MCX", "NFO", "BFO", "CDS"]
        .iter()
        .any(|e| exchange.eq_ignore_ascii_case(e));
    if indian {
        TimeZone::get("Asia/Kolkata").unwrap_or(TimeZone::UTC)
    } else {
        TimeZone::UTC
    }
}

/// Tells the trading date of a timestamp, caching the current day's bounds so
/// that only a tick on another day pays for a time-zone conversion.
#[derive(Debug, Clone)]
pub struct SessionClock {
    tz: TimeZone,
    day: Option<(Date, i64, i64)>,
}

impl SessionClock {
    pub fn new(tz: TimeZone) -> Self {
        Self { tz, day: None }
    }

    pub fn for_exchange(exchange: &str) -> Self {
        Self::new(exchange_zone(exchange))
    }

    /// The trading date of `ts_ms` (epoch ms) in the exchange's zone.
    pub fn date(&mut self, ts_ms: i64) -> Date {
        if let Some((date, start, end)) = self.day {
            if (start..end).contains(&ts_ms) {
                return date;
            }
        }
        let Ok(ts) = Timestamp::from_millisecond(ts_ms) else {
            return Date::MIN;
        };
        let date = ts.to_zoned(self.tz.clone()).date();
        let bound = |d: Date| {
            d.to_zoned(self.tz.clone())
                .map(|z| z.timestamp().as_millisecond())
                .ok()
        };
        if let (Some(start), Some(end)) = (bound(date), date.tomorrow().ok().and_then(bound)) {
            self.day = Some((date, start, end));
        }
        date
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indian_days_turn_at_ist_midnight_crypto_at_utc_midnight() {
        // 2024-01-01 18:29:59.999 UTC is 23:59:59.999 IST; a millisecond later is Jan 2 IST.
        let before = 1_704_133_799_999;
        let mut nse = SessionClock::for_exchange("nse");
        assert_eq!(nse.date(before), jiff::civil::date(2024, 1, 1));
        assert_eq!(nse.date(before + 1), jiff::civil::date(2024, 1, 2));
        let mut binance = SessionClock::for_exchange("binance");
        assert_eq!(binance.date(before + 1), jiff::civil::date(2024, 1, 1));
        assert_eq!(
            binance.date(1_704_153_600_000),
            jiff::civil::date(2024, 1, 2)
        );
    }
}
