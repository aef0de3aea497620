//! The normalized tick and instrument identity.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::num::Dec;

/// Who an instrument is: the venue, its market segment, the symbol and, where the
/// venue numbers its instruments (Dhan, NSE), the security id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Instrument {
    pub exchange: Box<str>,
    pub segment: Option<Box<str>>,
    pub symbol: Box<str>,
    pub security_id: Option<Box<str>>,
}

impl Instrument {
    pub fn new(exchange: &str, symbol: &str) -> Self {
        Self {
            exchange: exchange.into(),
            segment: None,
            symbol: symbol.into(),
            security_id: None,
        }
    }
}

/// The longest exchange name a line may carry (Tardis' longest id,
/// `binance-european-options`, has 24 characters).
pub const MAX_EXCHANGE_NAME: usize = 32;

/// Whether an exchange name read from a line (tick JSON's `exchange`,
/// Tardis' `exchange` column) can be one: 1 to [`MAX_EXCHANGE_NAME`] ASCII
/// letters, digits, `-` and `_`, starting with a letter or digit, as the
/// calendar's (`NSE`), the venues' (`binance-futures`) and Tardis' ids are.
/// Anything else is a damaged line, not a trade of another exchange (whose
/// keys could collide with a real one's and stop the run).
pub fn is_exchange_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=MAX_EXCHANGE_NAME).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Why `name` is no exchange's name ([`is_exchange_name`]), as a parser's
/// rejection says it after the field's name; the name quoted, its first 40
/// characters at most. `None` for a name.
pub fn exchange_name_problem(name: &str) -> Option<String> {
    if is_exchange_name(name) {
        return None;
    }
    let cut: String = name.chars().take(40).collect();
    let shown = if cut.len() < name.len() {
        format!("{cut:?}… ({} bytes)", name.len())
    } else {
        format!("{cut:?}")
    };
    Some(format!(
        "is not an exchange's name (letters, digits, - and _, at most {MAX_EXCHANGE_NAME}): {shown}"
    ))
}

/// An instrument handle that compares and hashes by address. Parsers intern
/// instruments ([`InstrumentCache`]), so within a run the address is the
/// identity, and hashing it is cheaper than hashing the names.
#[derive(Debug, Clone)]
pub struct ByAddress(pub Arc<Instrument>);

impl PartialEq for ByAddress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ByAddress {}

impl Hash for ByAddress {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state)
    }
}

/// One trade print (or quote update) in tickwire's normalized form.
///
/// Times are epoch nanoseconds: `exchange_ts_ns` as stamped by the venue, which
/// everything downstream keys on (stream IDs, bars), and `recv_ts_ns` when this
/// process (or the recorder) received it, which only latency measurements use.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub instrument: Arc<Instrument>,
    pub exchange_ts_ns: i64,
    pub recv_ts_ns: i64,
    /// Exact decimals as the venue sent them.
    pub price: Dec,
    pub qty: Dec,
    pub bid: Option<Dec>,
    pub ask: Option<Dec>,
    /// Cumulative traded volume of the day, when the venue reports it.
    pub cum_volume: Option<Dec>,
    /// Average traded price of the day: the venue's (Dhan's ATP), else the
    /// session VWAP the state stage keeps (inline engine).
    pub atp: Option<f64>,
    /// The instrument's trading day so far, set by the state stage.
    pub day: Option<Day>,
    /// The DB purpose of the phase the tick traded in, set by the state stage
    /// (`None`: the continuous market).
    pub db: Option<crate::db::Db>,
    /// The venue's identity of the trade where it has one (Binance `t`/`a`,
    /// OKX `tradeId`, the Tardis and Binance-dump `id`, tick JSON `id`; Dhan:
    /// its trading date and day volume, [`TradeId::day_volume`]):
    /// increasing per instrument, so a trade at or below the last applied one
    /// is a resend.
    pub trade_id: Option<TradeId>,
    /// Its stream entry ID `({ms}, {seq})`, given by the state stage from
    /// the instrument's checkpointed sequence (`None`: the writer numbers it).
    pub stream_id: Option<(u64, u64)>,
    /// The venue's last traded quantity, for a trade whose quantity is the
    /// growth of the day's cumulative volume (Dhan: the state stage sets
    /// `qty` from `cum_volume` and the last volume it applied; several
    /// trades between two packets, or a gap, are all in it).
    pub ltq: Option<Dec>,
    /// The gap it fills, for a trade from the venue's history
    /// ([`crate::gap`]); `None` for a trade as it came.
    pub fills_gap: Option<u64>,
}

/// A venue's number for a trade, increasing per instrument within its
/// sequence. Binance numbers trades (`t`) and aggregated trades (`a`) in two
/// unrelated sequences, so an id is only ever compared within its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TradeId {
    pub sequence: IdSequence,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdSequence {
    /// Single trades: Binance `t`, OKX `tradeId`, Tardis and dump `id`, tick JSON `id`.
    Trade = 0,
    /// Binance aggTrade `a`.
    Aggregate = 1,
}

impl TradeId {
    pub fn trade(value: u64) -> Self {
        Self {
            sequence: IdSequence::Trade,
            value,
        }
    }

    pub fn aggregate(value: u64) -> Self {
        Self {
            sequence: IdSequence::Aggregate,
            value,
        }
    }

    /// The identity of a trade a venue reports only by its cumulative day
    /// volume (Dhan): the trading date (`yyyymmdd`) in the high 32 bits, the
    /// day volume after the trade in the low ones. A new trade raises the day
    /// volume, and the volume starts again each trading date, so the ids
    /// increase across days and a resent packet (the same date and volume, or
    /// less) is at or below the last one applied.
    pub fn day_volume(yyyymmdd: u32, volume: u32) -> Self {
        Self::trade((u64::from(yyyymmdd) << 32) | u64::from(volume))
    }

    /// The trading date (`yyyymmdd`) and day volume of an id made by
    /// [`TradeId::day_volume`].
    pub fn day_volume_parts(value: u64) -> (u32, u32) {
        ((value >> 32) as u32, (value & 0xFFFF_FFFF) as u32)
    }
}

/// 2000-01-01T00:00:00Z in epoch ns: no trade of a venue tickwire reads is older.
pub const EARLIEST_TRADE_NS: i64 = 946_684_800_000_000_000;

impl Tick {
    /// A trade print with no quote or day-volume information.
    pub fn trade(
        instrument: Arc<Instrument>,
        exchange_ts_ns: i64,
        recv_ts_ns: i64,
        price: Dec,
        qty: Dec,
    ) -> Self {
        Self {
            instrument,
            exchange_ts_ns,
            recv_ts_ns,
            price,
            qty,
            bid: None,
            ask: None,
            cum_volume: None,
            atp: None,
            day: None,
            db: None,
            trade_id: None,
            stream_id: None,
            ltq: None,
            fills_gap: None,
        }
    }

    /// Whether the exchange time is one a venue could have sent: not before
    /// 2000-01-01, and not more than `max_skew_ns` after the time the tick was
    /// received (`now_ns` when the input does not say: its receive time equals
    /// its exchange time). A trade stamped in the future would give later
    /// ticks stream IDs after it, and bars and sessions dated there. A
    /// receive time that is itself ahead of the clock by more than the skew
    /// (a file's `recv_ts` or `local_timestamp`, a recording's `recv_ns`)
    /// vouches for nothing: the tick is refused too.
    pub fn check_time(&self, max_skew_ns: i64, now_ns: i64) -> Result<(), String> {
        let ts = self.exchange_ts_ns;
        if ts < EARLIEST_TRADE_NS {
            return Err(format!(
                "exchange time {} ms is before 2000-01-01",
                self.exchange_ts_ms()
            ));
        }
        // The messages name no reading of the clock: a line refused again
        // (a second replay) must be dead-lettered with the same text, so
        // that it is known as the dead letter already there.
        if self.recv_ts_ns != ts && self.recv_ts_ns.saturating_sub(now_ns) > max_skew_ns {
            return Err(format!(
                "receive time {} ms is ahead of the clock by more than the {} ms [ingest] max_clock_skew_ms allows",
                self.recv_ts_ns.div_euclid(1_000_000),
                max_skew_ns / 1_000_000
            ));
        }
        if self.recv_ts_ns != ts {
            let received = self.recv_ts_ns;
            if ts.saturating_sub(received) > max_skew_ns {
                return Err(format!(
                    "exchange time {} ms is {} ms after its receive time ({} ms): more than the {} ms [ingest] max_clock_skew_ms allows",
                    self.exchange_ts_ms(),
                    ts.saturating_sub(received) / 1_000_000,
                    received.div_euclid(1_000_000),
                    max_skew_ns / 1_000_000
                ));
            }
        } else if ts.saturating_sub(now_ns) > max_skew_ns {
            return Err(format!(
                "exchange time {} ms is ahead of the clock by more than the {} ms [ingest] max_clock_skew_ms allows",
                self.exchange_ts_ms(),
                max_skew_ns / 1_000_000
            ));
        }
        Ok(())
    }

    /// Exchange time in whole epoch milliseconds (floored, also before 1970).
    pub fn exchange_ts_ms(&self) -> i64 {
        self.exchange_ts_ns.div_euclid(1_000_000)
    }

    /// Checks the values a venue could send wrong; the parsers reject a tick that
    /// fails this rather than let it reach Redis.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.price.is_positive() || !self.price.within_max() {
            return Err("price must be a positive number up to 1e18");
        }
        if self.qty.is_negative() || !self.qty.within_max() {
            return Err("quantity must be a number from 0 to 1e18");
        }
        for v in [self.bid, self.ask, self.cum_volume].into_iter().flatten() {
            if v.is_negative() || !v.within_max() {
                return Err("bid, ask and cumulative volume must be numbers from 0 to 1e18");
            }
        }
        if self.exchange_ts_ns <= 0 {
            return Err("exchange time must be after 1970-01-01");
        }
        Ok(())
    }
}

/// Interns instruments so that each tick carries a cheap `Arc` instead of its own
/// copies of the names. One cache per parser thread.
#[derive(Debug, Default)]
pub struct InstrumentCache {
    // Keyed by symbol (a `&str` lookup, no allocation per tick); the few venues
    // that share a symbol sit side by side in the vector. foldhash (randomly
    // seeded per process), not SipHash: one lookup per tick.
    by_symbol: foldhash::HashMap<Box<str>, Vec<Arc<Instrument>>>,
}

impl InstrumentCache {
    /// The instrument for `exchange`/`symbol`. A segment or security id given
    /// here that differs from the cached one makes a new identity (the venue
    /// said something new about it); `None` matches whatever is cached.
    pub fn get(
        &mut self,
        exchange: &str,
        symbol: &str,
        segment: Option<&str>,
        security_id: Option<&str>,
    ) -> Arc<Instrument> {
        let matches = |i: &Instrument| {
            &*i.exchange == exchange
                && (segment.is_none() || i.segment.as_deref() == segment)
                && (security_id.is_none() || i.security_id.as_deref() == security_id)
        };
        if let Some(list) = self.by_symbol.get(symbol) {
            if let Some(found) = list.iter().find(|i| matches(i)) {
                return Arc::clone(found);
            }
        }
        let inst = Arc::new(Instrument {
            exchange: exchange.into(),
            segment: segment.map(Into::into),
            symbol: symbol.into(),
            security_id: security_id.map(Into::into),
        });
        let list = self.by_symbol.entry(symbol.into()).or_default();
        // A newer identity for the same exchange/symbol replaces the old one.
        list.retain(|i| &*i.exchange != exchange);
        list.push(Arc::clone(&inst));
        inst
    }

    /// Number of distinct instruments seen.
    pub fn len(&self) -> usize {
        self.by_symbol.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_symbol.is_empty()
    }
}

/// The trading day so far of one instrument (its exchange's session date):
/// first, highest and lowest trade price and the quantity traded.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Day {
    pub open: Dec,
    pub high: Dec,
    pub low: Dec,
    pub volume: Dec,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_the_same_arc_and_separates_venues() {
        let mut c = InstrumentCache::default();
        let a = c.get("NSE", "SBIN", Some("NSE_EQ"), Some("3045"));
        let b = c.get("NSE", "SBIN", None, None);
        assert!(Arc::ptr_eq(&a, &b));
        let other = c.get("BSE", "SBIN", None, None);
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn ms_floor_and_validation() {
        let inst = Arc::new(Instrument::new("NSE", "X"));
        let mut t = Tick {
            instrument: inst,
            exchange_ts_ns: 1_700_000_000_123_999_999,
            recv_ts_ns: 0,
            price: Dec::from_int(10),
            qty: Dec::from_int(1),
            bid: None,
            ask: None,
            cum_volume: None,
            atp: None,
            day: None,
            db: None,
            trade_id: None,
            stream_id: None,
            ltq: None,
            fills_gap: None,
        };
        assert_eq!(t.exchange_ts_ms(), 1_700_000_000_123);
        assert!(t.validate().is_ok());
        t.price = Dec::ZERO;
        assert!(t.validate().is_err());
        t.price = Dec::from_int(1);
        t.qty = Dec::from_int(-1);
        assert!(t.validate().is_err());
        t.qty = Dec::parse("1000000000000000001").unwrap();
        assert!(t.validate().is_err());
    }

    #[test]
    fn exchange_names_are_short_identifiers() {
        for good in [
            "NSE",
            "binance",
            "binance-futures",
            "okex_swap",
            "CME2",
            "x",
        ] {
            assert!(is_exchange_name(good), "{good}");
        }
        let long = "x".repeat(1_000);
        for bad in [
            "",
            "-nse",
            "bin ance",
            "nse\n",
            "b\u{e9}",
            "a,b",
            long.as_str(),
        ] {
            assert!(!is_exchange_name(bad), "{bad:?}");
        }
        assert_eq!(exchange_name_problem("NSE"), None);
        assert!(exchange_name_problem("a b").is_some_and(|p| p.ends_with(": \"a b\"")));
        assert!(exchange_name_problem(&long).is_some_and(|p| p.ends_with("(1000 bytes)")));
    }

    #[test]
    fn implausible_exchange_times() {
        let inst = Arc::new(Instrument::new("binance", "BTCUSDT"));
        let minute = 60_000_000_000;
        // Received in 2021, stamped in 2100: refused; a second ahead: fine.
        let recv = 1_609_459_200_000_000_000;
        let at =
            |ts: i64, recv: i64| Tick::trade(Arc::clone(&inst), ts, recv, Dec::ZERO, Dec::ZERO);
        let later = recv + 3_600_000_000_000;
        assert!(at(4_102_444_800_000_000_000, recv)
            .check_time(minute, later)
            .is_err());
        assert!(at(recv + 1_000_000_000, recv)
            .check_time(minute, later)
            .is_ok());
        // A receive time ahead of the clock vouches for nothing.
        let ahead = at(recv + 1_000_000_000, recv).check_time(minute, recv - 2 * minute);
        assert!(ahead.is_err_and(|e| e.contains("receive time")));
        // No receive time (equal to the exchange time): the clock decides.
        let ts = 1_700_000_000_000_000_000;
        assert!(at(ts, ts).check_time(minute, ts - 2 * minute).is_err());
        assert!(at(ts, ts).check_time(minute, ts + 1).is_ok());
        // Before 2000, and the far future of i64::MAX ms as ns.
        assert!(at(EARLIEST_TRADE_NS - 1, recv)
            .check_time(minute, recv)
            .is_err());
        assert!(at(i64::MAX, recv).check_time(minute, recv).is_err());
    }
}
