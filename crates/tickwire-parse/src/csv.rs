//! Trade CSV files: Binance's public trade dumps and Tardis trade exports.
//!
//! Both layouts are plain comma-separated numbers and names with no quoting,
//! so a line is split on commas; a line that does not fit is rejected by itself.

use tickwire_core::{Event, InstrumentCache, Rejected, Tick};

use crate::format::SourceMeta;
use crate::num::{decimal, epoch_to_ns};

/// One line of a Binance trade dump:
/// `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]`, `time` in ms
/// (µs in newer spot dumps), the symbol from the file name. A header line
/// (`id,price,...`, found in some futures dumps) yields nothing.
pub fn decode_binance(
    meta: &SourceMeta,
    line: &[u8],
    instruments: &mut InstrumentCache,
    max_raw: usize,
) -> Option<Event> {
    let reject = |t, e: String| Some(reject("binance", t, e, line, max_raw));
    let f = match split(line, "id,", &[6, 7]) {
        Ok(Some(f)) => f,
        Ok(None) => return None,
        Err((t, e)) => return reject(t, e),
    };
    let Some(price) = decimal(f[1]) else {
        return reject("bad_number", format!("price is not a number: {:?}", f[1]));
    };
    let Some(qty) = decimal(f[2]) else {
        return reject("bad_number", format!("qty is not a number: {:?}", f[2]));
    };
    let Some(ts) = f[4].trim().parse::<i64>().ok().and_then(epoch_to_ns) else {
        return reject(
            "bad_value",
            format!("time is not an epoch time: {:?}", f[4]),
        );
    };
    let symbol = meta.symbol.as_deref().unwrap_or("UNKNOWN");
    let mut tick = Tick::trade(
        instruments.get(&meta.exchange, symbol, None, None),
        ts,
        ts,
        price,
        qty,
    );
    tick.trade_id = f[0].trim().parse().ok().map(tickwire_core::TradeId::trade);
    Some(finish(tick, "binance", line, max_raw))
}

/// One line of a Tardis trades export:
/// `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`, times in µs.
/// The header line yields nothing.
pub fn decode_tardis(
    line: &[u8],
    instruments: &mut InstrumentCache,
    max_raw: usize,
) -> Option<Event> {
    let reject = |t, e: String| Some(reject("tardis", t, e, line, max_raw));
    let f = match split(line, "exchange,symbol,", &[8]) {
        Ok(Some(f)) => f,
        Ok(None) => return None,
        Err((t, e)) => return reject(t, e),
    };
    if f[0].is_empty() || f[1].is_empty() {
        return reject(
            "missing_field",
            "exchange and symbol must not be empty".into(),
        );
    }
    if let Some(why) = tickwire_core::tick::exchange_name_problem(f[0]) {
        return reject("bad_value", format!("exchange {why}"));
    }
    let micros = |s: &str| {
        s.trim()
            .parse::<i64>()
            .ok()
            .and_then(|v| v.checked_mul(1_000))
    };
    let Some(ts) = micros(f[2]).filter(|v| *v > 0) else {
        return reject(
            "bad_value",
            format!("timestamp is not epoch µs: {:?}", f[2]),
        );
    };
    let recv = micros(f[3]).unwrap_or(ts);
    let Some(price) = decimal(f[6]) else {
        return reject("bad_number", format!("price is not a number: {:?}", f[6]));
    };
    let Some(qty) = decimal(f[7]) else {
        return reject("bad_number", format!("amount is not a number: {:?}", f[7]));
    };
    let mut tick = Tick::trade(
        instruments.get(f[0], f[1], None, None),
        ts,
        recv,
        price,
        qty,
    );
    tick.trade_id = f[4].trim().parse().ok().map(tickwire_core::TradeId::trade);
    Some(finish(tick, "tardis", line, max_raw))
}

/// Splits a CSV line into its fields: `None` for the header line (starting
/// with `header`), an error for text that is not UTF-8 or a wrong field count.
fn split<'a>(
    line: &'a [u8],
    header: &str,
    counts: &[usize],
) -> Result<Option<Vec<&'a str>>, (&'static str, String)> {
    let text =
        std::str::from_utf8(line).map_err(|_| ("encoding", "line is not UTF-8".to_string()))?;
    if text.starts_with(header) {
        return Ok(None);
    }
    let f: Vec<&str> = text.split(',').collect();
    if !counts.contains(&f.len()) {
        let expected: Vec<String> = counts.iter().map(ToString::to_string).collect();
        return Err((
            "csv",
            format!("expected {} fields, got {}", expected.join(" or "), f.len()),
        ));
    }
    Ok(Some(f))
}

fn reject(
    feed: &str,
    error_type: &'static str,
    error: String,
    line: &[u8],
    max_raw: usize,
) -> Event {
    Event::Rejected(Rejected::new(feed, error_type, error, line, max_raw, None))
}

fn finish(tick: Tick, feed: &str, line: &[u8], max_raw: usize) -> Event {
    match tick.validate() {
        Ok(()) => Event::Tick(tick),
        Err(e) => reject(feed, "invalid_tick", e.to_string(), line, max_raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;

    fn meta() -> SourceMeta {
        SourceMeta {
            format: Format::BinanceCsv,
            symbol: Some("BTCUSDT".into()),
            exchange: "binance".into(),
        }
    }

    #[test]
    fn binance_ms_and_us_times() {
        let mut c = InstrumentCache::default();
        for (line, ns) in [
            (
                "3380000001,42283.58,0.00118,49.8946244,1704067200123,false,true",
                1_704_067_200_123_000_000,
            ),
            (
                "3380000001,42283.58,0.00118,49.8946244,1704067200123456,false,true",
                1_704_067_200_123_456_000,
            ),
            (
                "3380000001,42283.58,0.00118,49.8946244,1704067200123,false",
                1_704_067_200_123_000_000,
            ),
        ] {
            let Some(Event::Tick(t)) = decode_binance(&meta(), line.as_bytes(), &mut c, 64) else {
                panic!("{line}")
            };
            assert_eq!(t.exchange_ts_ns, ns);
            assert_eq!(
                (t.price.to_string(), t.qty.to_string()),
                ("42283.58".into(), "0.00118".into())
            );
            assert_eq!(&*t.instrument.symbol, "BTCUSDT");
        }
        assert!(decode_binance(
            &meta(),
            b"id,price,qty,quote_qty,time,is_buyer_maker",
            &mut c,
            64
        )
        .is_none());
    }

    #[test]
    fn binance_bad_lines() {
        let mut c = InstrumentCache::default();
        for (line, kind) in [
            ("1,2,3", "csv"),
            ("1,abc,1,1,1704067200123,true,true", "bad_number"),
            ("1,1,1,1,yesterday,true,true", "bad_value"),
            ("1,1,-5,1,1704067200123,true,true", "invalid_tick"),
        ] {
            let Some(Event::Rejected(r)) = decode_binance(&meta(), line.as_bytes(), &mut c, 64)
            else {
                panic!("{line}")
            };
            assert_eq!(r.error_type, kind, "{line}");
        }
    }

    #[test]
    fn tardis_line_and_header() {
        let mut c = InstrumentCache::default();
        assert!(decode_tardis(
            b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
            &mut c,
            64
        )
        .is_none());
        let Some(Event::Tick(t)) = decode_tardis(
            b"binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132",
            &mut c,
            64,
        ) else {
            panic!()
        };
        assert_eq!(&*t.instrument.exchange, "binance-futures");
        assert_eq!(t.exchange_ts_ns, 1_582_329_602_111_000_000);
        assert_eq!(t.recv_ts_ns, 1_582_329_602_418_379_000);
        assert_eq!(
            (t.price.to_string(), t.qty.to_string()),
            ("9682".into(), "0.132".into())
        );
        let Some(Event::Rejected(r)) =
            decode_tardis(b"binance-futures,BTCUSDT,x,1,1,buy,1,1", &mut c, 64)
        else {
            panic!()
        };
        assert_eq!(r.error_type, "bad_value");
    }
}
