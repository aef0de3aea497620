//! The normalized tick and instrument identity.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::num::{Dec, MAX_VALUE};

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
    pub day: Option<crate::bar::Day>,
    /// The DB purpose of the phase the tick traded in, set by the state stage
    /// (`None`: the continuous market).
    pub db: Option<crate::config::Db>,
}

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
        }
    }

    /// Exchange time in whole epoch milliseconds (floored, also before 1970).
    pub fn exchange_ts_ms(&self) -> i64 {
        self.exchange_ts_ns.div_euclid(1_000_000)
    }

    /// Checks the values a venue could send wrong; the parsers reject a tick that
    /// fails this rather than let it reach Redis.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.price.is_positive() || self.price > MAX_VALUE {
            return Err("price must be a positive number up to 1e18");
        }
        if self.qty.is_negative() || self.qty > MAX_VALUE {
            return Err("quantity must be a number from 0 to 1e18");
        }
        for v in [self.bid, self.ask, self.cum_volume].into_iter().flatten() {
            if v.is_negative() || v > MAX_VALUE {
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
    // that share a symbol sit side by side in the vector.
    by_symbol: HashMap<Box<str>, Vec<Arc<Instrument>>>,
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
}
