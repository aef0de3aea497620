//! tickwire's normalized tick JSON, one object per line:
//!
//! ```json
//! {"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":"3045","ts":1704168900123,"ltp":612.35,"qty":25,"vol":125000}
//! ```
//!
//! `ts` is exchange time in epoch ms; optional `recv_ts` (epoch ms), `vol`
//! (cumulative day volume), `bid`, `ask`, `segment`, `security_id` (string or
//! number), `id` (the venue's trade id, a number or digits: a line whose id is
//! at or below its instrument's last applied one is a resend). Unknown fields are
//! ignored, so producers can add their own.

use std::borrow::Cow;

use serde::Deserialize;
use tickwire_core::{Dec, Event, InstrumentCache, Rejected, Tick};

pub(crate) const FEED: &str = "tickwire";

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    exchange: Cow<'a, str>,
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(borrow, default)]
    segment: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    security_id: Option<SecurityId<'a>>,
    ts: i64,
    #[serde(default)]
    recv_ts: Option<i64>,
    ltp: Dec,
    qty: Dec,
    #[serde(default)]
    vol: Option<Dec>,
    #[serde(default)]
    bid: Option<Dec>,
    #[serde(default)]
    ask: Option<Dec>,
    /// The trade's identity at its venue, when the producer knows it.
    #[serde(borrow, default)]
    id: Option<TradeId<'a>>,
}

/// A trade id as a number or as digits in a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum TradeId<'a> {
    Number(u64),
    Text(#[serde(borrow)] Cow<'a, str>),
}

impl TradeId<'_> {
    fn value(&self) -> Option<u64> {
        match self {
            TradeId::Number(n) => Some(*n),
            TradeId::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecurityId<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(u64),
}

pub(crate) fn decode(
    raw: &[u8],
    scratch: &mut Vec<u8>,
    buffers: &mut simd_json::Buffers,
    instruments: &mut InstrumentCache,
    max_raw: usize,
) -> Event {
    scratch.clear();
    scratch.extend_from_slice(raw);
    let reject = |error_type, error: String| {
        Event::Rejected(Rejected::new(FEED, error_type, error, raw, max_raw, None))
    };
    let line: Line = match simd_json::serde::from_slice_with_buffers(scratch, buffers) {
        Ok(l) => l,
        Err(e) => return reject("json", format!("not a tickwire tick: {e}")),
    };
    let Some(exchange_ts_ns) = line.ts.checked_mul(1_000_000) else {
        return reject("bad_value", format!("`ts` out of range: {}", line.ts));
    };
    let security_id = match &line.security_id {
        Some(SecurityId::Text(s)) => Some(Cow::Borrowed(&**s)),
        Some(SecurityId::Number(n)) => Some(Cow::Owned(n.to_string())),
        None => None,
    };
    let tick = Tick {
        instrument: instruments.get(
            &line.exchange,
            &line.symbol,
            line.segment.as_deref(),
            security_id.as_deref(),
        ),
        exchange_ts_ns,
        recv_ts_ns: line
            .recv_ts
            .and_then(|ms| ms.checked_mul(1_000_000))
            .unwrap_or(exchange_ts_ns),
        price: line.ltp,
        qty: line.qty,
        bid: line.bid,
        ask: line.ask,
        cum_volume: line.vol,
        atp: None,
        day: None,
        db: None,
        trade_id: line
            .id
            .as_ref()
            .and_then(TradeId::value)
            .map(tickwire_core::TradeId::trade),
        stream_id: None,
    };
    match tick.validate() {
        Ok(()) => Event::Tick(tick),
        Err(e) => reject("invalid_tick", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: f64) -> Dec {
        Dec::from_f64(v).unwrap()
    }

    fn run(line: &str) -> Event {
        let mut cache = InstrumentCache::default();
        decode(
            line.as_bytes(),
            &mut Vec::new(),
            &mut simd_json::Buffers::new(64),
            &mut cache,
            64,
        )
    }

    #[test]
    fn full_line() {
        let e = run(
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":3045,"ts":1704168900123,"ltp":612.35,"qty":25,"vol":125000,"bid":612.3,"ask":612.4,"extra":"ignored"}"#,
        );
        let Event::Tick(t) = e else { panic!("{e:?}") };
        assert_eq!(t.instrument.security_id.as_deref(), Some("3045"));
        assert_eq!(t.instrument.segment.as_deref(), Some("NSE_EQ"));
        assert_eq!(t.exchange_ts_ns, 1_704_168_900_123_000_000);
        assert_eq!(t.recv_ts_ns, t.exchange_ts_ns);
        assert_eq!(
            (t.price, t.qty, t.cum_volume, t.bid, t.ask),
            (
                d(612.35),
                d(25.0),
                Some(d(125000.0)),
                Some(d(612.3)),
                Some(d(612.4))
            )
        );
    }

    #[test]
    fn escaped_symbol_is_unescaped() {
        let Event::Tick(t) =
            run(r#"{"exchange":"NSE","symbol":"M\u0026M","ts":1704168900123,"ltp":1,"qty":1}"#)
        else {
            panic!()
        };
        assert_eq!(&*t.instrument.symbol, "M&M");
    }

    #[test]
    fn bad_lines_are_rejected_with_a_type() {
        for (line, kind) in [
            ("{", "json"),
            (
                r#"{"exchange":"NSE","symbol":"A","ts":1704168900123,"qty":1}"#,
                "json",
            ),
            (
                r#"{"exchange":"NSE","symbol":"A","ts":1704168900123,"ltp":"x","qty":1}"#,
                "json",
            ),
            (
                r#"{"exchange":"NSE","symbol":"A","ts":1704168900123,"ltp":0,"qty":1}"#,
                "invalid_tick",
            ),
            (
                r#"{"exchange":"NSE","symbol":"A","ts":9223372036854775807,"ltp":1,"qty":1}"#,
                "bad_value",
            ),
        ] {
            match run(line) {
                Event::Rejected(r) => {
                    assert_eq!(r.error_type, kind, "{line}");
                    assert_eq!(&*r.feed, FEED);
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
