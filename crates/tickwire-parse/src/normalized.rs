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
    let reject = |error_type, error: String| {
        Event::Rejected(Rejected::new(FEED, error_type, error, raw, max_raw, None))
    };
    let line: Line = match fast::line(raw) {
        Some(l) => l,
        None => {
            scratch.clear();
            scratch.extend_from_slice(raw);
            match simd_json::serde::from_slice_with_buffers(scratch, buffers) {
                Ok(l) => l,
                Err(e) => return reject("json", format!("not a tickwire tick: {e}")),
            }
        }
    };
    let Some(exchange_ts_ns) = line.ts.checked_mul(1_000_000) else {
        return reject("bad_value", format!("`ts` out of range: {}", line.ts));
    };
    if let Some(why) = tickwire_core::tick::exchange_name_problem(&line.exchange) {
        return reject("bad_value", format!("`exchange` {why}"));
    }
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
        ltq: None,
        fills_gap: None,
    };
    match tick.validate() {
        Ok(()) => Event::Tick(tick),
        Err(e) => reject("invalid_tick", e.to_string()),
    }
}

/// The common line read without simd-json and serde: a flat object of the
/// fields above, strings without escapes, plain numbers. It gives exactly
/// the [`Line`] the serde path gives, or `None` for anything else (an
/// escape, a nested value, an exponent, a duplicate or missing field,
/// invalid UTF-8...), which then goes the serde path, errors included. On
/// the lines `tickwire synth` writes (callgrind), simd-json and serde cost
/// about 5,800 instructions a line, this read about 3,400.
mod fast {
    use std::borrow::Cow;

    use tickwire_core::Dec;

    use super::{Line, SecurityId, TradeId};

    /// A JSON value as the scanner takes it.
    enum Val<'a> {
        /// A string without escapes, UTF-8 checked.
        Str(&'a str),
        /// A number `(0|[1-9][0-9]*)(.[0-9]+)?` (no sign, no exponent).
        Num(Num),
        /// An exponent form: a valid number, but only for unknown fields.
        OtherNum,
        Null,
        Bool,
    }

    /// The bytes that end a string scan: its closing quote, an escape, a
    /// control character.
    const STOP: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 0x20 {
            t[c] = true;
            c += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };

    /// A plain unsigned number read in one pass: its digits as one integer
    /// (exact while there are at most 19 of them), how many there are, and
    /// how many follow the point.
    #[derive(Clone, Copy)]
    struct Num {
        units: u64,
        digits: u32,
        frac: u32,
        point: bool,
    }

    struct Scan<'a> {
        /// The line, UTF-8 checked once as a whole (so is every string in it).
        t: &'a str,
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Scan<'a> {
        fn ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            if self.b.get(self.i) != Some(&c) {
                self.ws();
                if self.b.get(self.i) != Some(&c) {
                    return None;
                }
            }
            self.i += 1;
            Some(())
        }

        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.b.get(self.i).copied()
        }

        fn string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.i;
            let rest = self.b.get(start..)?;
            let mut len = 0;
            for &c in rest {
                if STOP[usize::from(c)] {
                    break;
                }
                len += 1;
            }
            let end = start + len;
            // An escape or a control character: the serde path's.
            if rest.get(len) != Some(&b'"') {
                return None;
            }
            self.i = end + 1;
            // Both ends are at ASCII quotes, so on character boundaries.
            self.t.get(start..end)
        }

        /// Adds the digits at the cursor to `n`; how many there were.
        fn digits(&mut self, n: &mut Num) -> u32 {
            let mut count = 0;
            for &c in self.b.get(self.i..).unwrap_or_default() {
                if !c.is_ascii_digit() {
                    break;
                }
                n.units = n.units.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                count += 1;
            }
            self.i += count as usize;
            n.digits += count;
            count
        }

        fn number(&mut self) -> Option<Val<'a>> {
            // A sign: the serde path (a negative price or size is refused
            // there anyway).
            let first = *self.b.get(self.i)?;
            let mut n = Num {
                units: 0,
                digits: 0,
                frac: 0,
                point: false,
            };
            let int = self.digits(&mut n);
            if int == 0 || (first == b'0' && int > 1) {
                return None;
            }
            if self.b.get(self.i) == Some(&b'.') {
                self.i += 1;
                n.point = true;
                n.frac = self.digits(&mut n);
                if n.frac == 0 {
                    return None;
                }
            }
            if let Some(b'e' | b'E') = self.b.get(self.i) {
                self.i += 1;
                if let Some(b'+' | b'-') = self.b.get(self.i) {
                    self.i += 1;
                }
                let mut exp = n;
                return (self.digits(&mut exp) > 0).then_some(Val::OtherNum);
            }
            Some(Val::Num(n))
        }

        fn word(&mut self, w: &[u8], v: Val<'a>) -> Option<Val<'a>> {
            let end = self.i + w.len();
            (self.b.get(self.i..end)? == w).then(|| {
                self.i = end;
                v
            })
        }

        fn value(&mut self) -> Option<Val<'a>> {
            match self.peek()? {
                b'"' => self.string().map(Val::Str),
                b'n' => self.word(b"null", Val::Null),
                b't' => self.word(b"true", Val::Bool),
                b'f' => self.word(b"false", Val::Bool),
                b'0'..=b'9' => self.number(),
                // Objects and arrays: the serde path.
                _ => None,
            }
        }
    }

    /// An integer of at most 18 digits (exact in i64 and u64).
    fn uint(n: &Num) -> Option<u64> {
        (!n.point && n.digits <= 18).then_some(n.units)
    }

    /// 10^15: a decimal below it in units has at most 15 significant digits.
    const DIGITS_15: u64 = 1_000_000_000_000_000;

    /// A number as the serde path reads it into a [`Dec`]: an integer as
    /// itself, a fraction as its float's shortest text. For a decimal of at
    /// most 15 significant digits that text is the decimal without trailing
    /// zeros (every such decimal reads back from its f64, and none shorter
    /// has the same f64), so that is what is built here; longer ones go the
    /// serde path.
    fn dec(v: &Val<'_>) -> Option<Dec> {
        let n = match v {
            Val::Num(n) => *n,
            Val::Str(s) => return Dec::parse(s),
            _ => return None,
        };
        if !n.point {
            return uint(&n).map(Dec::from);
        }
        if n.digits > 19 {
            return None;
        }
        let (mut units, mut frac) = (n.units, n.frac);
        while frac > 0 && units % 10 == 0 {
            units /= 10;
            frac -= 1;
        }
        if units >= DIGITS_15 {
            return None;
        }
        // Below 10^15: exact in i64.
        Some(Dec::from_scaled(units as i64, frac))
    }

    fn int(v: &Val<'_>) -> Option<i64> {
        match v {
            Val::Num(n) => uint(n).map(|u| u as i64),
            _ => None,
        }
    }

    fn opt<'a, T>(v: &Val<'a>, f: impl FnOnce(&Val<'a>) -> Option<T>) -> Option<Option<T>> {
        match v {
            Val::Null => Some(None),
            v => f(v).map(Some),
        }
    }

    /// A field serde reads as text or as an unsigned integer (an untagged
    /// enum), null as absent.
    fn text_or_uint<'a, T>(
        v: &Val<'a>,
        text: fn(Cow<'a, str>) -> T,
        number: fn(u64) -> T,
    ) -> Option<Option<T>> {
        opt(v, |v| match v {
            Val::Str(t) => Some(text(Cow::Borrowed(*t))),
            Val::Num(n) => uint(n).map(number),
            _ => None,
        })
    }

    pub(super) fn line(b: &[u8]) -> Option<Line<'_>> {
        let t = std::str::from_utf8(b).ok()?;
        let mut s = Scan { t, b, i: 0 };
        s.eat(b'{')?;
        let (mut exchange, mut symbol, mut ts, mut ltp, mut qty) = (None, None, None, None, None);
        let (mut segment, mut security_id, mut recv_ts) = (None, None, None);
        let (mut vol, mut bid, mut ask, mut id) = (None, None, None, None);
        let mut seen = 0u16;
        if s.peek()? != b'}' {
            loop {
                let key = s.string()?;
                s.eat(b':')?;
                let v = s.value()?;
                let bit = match key {
                    "exchange" => {
                        exchange = Some(match v {
                            Val::Str(t) => t,
                            _ => return None,
                        });
                        1
                    }
                    "symbol" => {
                        symbol = Some(match v {
                            Val::Str(t) => t,
                            _ => return None,
                        });
                        2
                    }
                    "segment" => {
                        segment = opt(&v, |v| match v {
                            Val::Str(t) => Some(Cow::Borrowed(*t)),
                            _ => None,
                        })?;
                        4
                    }
                    "security_id" => {
                        security_id = text_or_uint(&v, SecurityId::Text, SecurityId::Number)?;
                        8
                    }
                    "ts" => {
                        ts = Some(int(&v)?);
                        16
                    }
                    "recv_ts" => {
                        recv_ts = opt(&v, int)?;
                        32
                    }
                    "ltp" => {
                        ltp = Some(dec(&v)?);
                        64
                    }
                    "qty" => {
                        qty = Some(dec(&v)?);
                        128
                    }
                    "vol" => {
                        vol = opt(&v, dec)?;
                        256
                    }
                    "bid" => {
                        bid = opt(&v, dec)?;
                        512
                    }
                    "ask" => {
                        ask = opt(&v, dec)?;
                        1024
                    }
                    "id" => {
                        id = text_or_uint(&v, TradeId::Text, TradeId::Number)?;
                        2048
                    }
                    // Ignored, as by serde.
                    _ => 0,
                };
                // A known field twice is serde's error.
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                if s.eat(b',').is_none() {
                    break;
                }
            }
        }
        s.eat(b'}')?;
        s.ws();
        if s.i != b.len() {
            return None;
        }
        Some(Line {
            exchange: Cow::Borrowed(exchange?),
            symbol: Cow::Borrowed(symbol?),
            segment,
            security_id,
            ts: ts?,
            recv_ts,
            ltp: ltp?,
            qty: qty?,
            vol,
            bid,
            ask,
            id,
        })
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

    /// Everything a line says, numbers with their scale.
    fn describe(l: &Line<'_>) -> String {
        let d = |v: &Dec| format!("{v}/{}", v.scale());
        let od = |v: &Option<Dec>| v.as_ref().map(d);
        format!(
            "{:?} {:?} {:?} {:?} {} {:?} {} {} {:?} {:?} {:?} {:?}",
            l.exchange,
            l.symbol,
            l.segment,
            l.security_id.as_ref().map(|s| match s {
                SecurityId::Text(t) => format!("text {t}"),
                SecurityId::Number(n) => format!("number {n}"),
            }),
            l.ts,
            l.recv_ts,
            d(&l.ltp),
            d(&l.qty),
            od(&l.vol),
            od(&l.bid),
            od(&l.ask),
            l.id.as_ref().map(|i| match i {
                TradeId::Number(n) => format!("number {n}"),
                TradeId::Text(t) => format!("text {t}"),
            }),
        )
    }

    fn by_serde(line: &[u8]) -> Option<String> {
        let mut scratch = line.to_vec();
        let mut buffers = simd_json::Buffers::new(64);
        simd_json::serde::from_slice_with_buffers::<Line>(&mut scratch, &mut buffers)
            .ok()
            .map(|l| describe(&l))
    }

    /// The fast read either passes a line on to serde or reads exactly what
    /// serde reads from it.
    fn agrees(line: &[u8]) -> bool {
        match fast::line(line) {
            Some(l) => {
                assert_eq!(
                    Some(describe(&l)),
                    by_serde(line),
                    "{}",
                    String::from_utf8_lossy(line)
                );
                true
            }
            None => false,
        }
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A number as producers write them: up to 18 digits, up to 10
    /// decimals, trailing zeros kept, sometimes as a string.
    fn number(r: &mut Rng) -> String {
        let int = match r.below(4) {
            0 => "0".to_string(),
            _ => (r.next() % 10u64.pow(r.below(10) as u32 + 1)).to_string(),
        };
        let text = match r.below(3) {
            0 => int,
            _ => {
                let frac: String = (0..r.below(10) + 1)
                    .map(|_| char::from(b'0' + r.below(10) as u8))
                    .collect();
                format!("{int}.{frac}")
            }
        };
        match r.below(10) {
            0 => format!("\"{text}\""),
            1 => format!("{text}e{}", r.below(3)),
            _ => text,
        }
    }

    fn generated(r: &mut Rng) -> String {
        let mut fields = vec![
            format!(
                "\"exchange\":\"{}\"",
                ["NSE", "BINANCE", "BSE"][r.below(3) as usize]
            ),
            format!(
                "\"symbol\":\"{}\"",
                ["SBIN", "BTCUSDT", "M&M", "Ä€"][r.below(4) as usize]
            ),
            format!("\"ts\":{}", 1_704_080_700_000 + r.below(1_000_000)),
            format!("\"ltp\":{}", number(r)),
            format!("\"qty\":{}", number(r)),
        ];
        let optional = [
            "segment",
            "security_id",
            "recv_ts",
            "vol",
            "bid",
            "ask",
            "id",
            "extra",
            "note",
        ];
        for name in optional {
            let value = match (name, r.below(6)) {
                (_, 0) => continue,
                (_, 1) => "null".to_string(),
                ("segment", _) => "\"NSE_EQ\"".to_string(),
                ("security_id" | "id", 2) => format!("\"{}\"", r.below(1_000_000)),
                ("security_id" | "id", 3) => format!("\" {} \"", r.below(1_000)),
                ("security_id" | "id", _) => (r.next() >> r.below(64)).to_string(),
                ("recv_ts", _) => (1_704_080_700_000 + r.below(1_000)).to_string(),
                ("extra", 2) => "[1,2]".to_string(),
                ("extra", 3) => "{\"a\":1}".to_string(),
                ("extra" | "note", 4) => "true".to_string(),
                ("extra" | "note", _) => "\"free text\"".to_string(),
                _ => number(r),
            };
            fields.push(format!("\"{name}\":{value}"));
        }
        // Any order, sometimes with white space between the tokens.
        for i in (1..fields.len()).rev() {
            fields.swap(i, r.below(i as u64 + 1) as usize);
        }
        let sep = [",", ", ", " ,\t", ",\n"][r.below(4) as usize];
        format!("{{{}}}", fields.join(sep))
    }

    #[test]
    fn the_fast_read_reads_what_serde_reads_or_leaves_the_line_to_it() {
        let mut r = Rng(0x2545_F491_4F6C_DD1D);
        let mut read = 0;
        let total = 20_000;
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for _ in 0..total {
            let line = generated(&mut r);
            read += usize::from(agrees(line.as_bytes()));
            lines.push(line.into_bytes());
        }
        // Many generated lines are plain enough for the fast read.
        assert!(read > total / 4, "{read} of {total}");
        // Mutated lines: a byte replaced, inserted or removed, with bytes
        // that matter to JSON (and bytes that are not UTF-8).
        let bytes = b"\"\\{}[],:.-+eE0159 \t\n\x00\x1f\xff\xc3";
        let mut mutated_read = 0;
        for line in lines.iter().take(5_000) {
            for _ in 0..8 {
                let mut m = line.clone();
                let at = r.below(m.len() as u64) as usize;
                let b = bytes[r.below(bytes.len() as u64) as usize];
                match r.below(3) {
                    0 => m[at] = b,
                    1 => m.insert(at, b),
                    _ => {
                        m.remove(at);
                    }
                }
                mutated_read += usize::from(agrees(&m));
            }
        }
        assert!(mutated_read > 0);
        // The edges of the numbers: 15 significant digits and no more,
        // leading zeros of a fraction, trailing zeros, 18 and 19 digits.
        for n in [
            "612.35",
            "612.350",
            "1813.10",
            "25.0",
            "0.0",
            "0",
            "0.000123",
            "123456789012345",
            "12345678901234.5",
            "1234567890123.45600",
            "1234567890123456",
            "123456789012345.6",
            "0.123456789012345",
            "0.1234567890123456",
            "999999999999999999",
            "1000000000000000000",
            "9999999999999999999",
            "0.000000000000000001",
            "1.000000000000000000",
            "0.00000000000000000000001",
            "100000000000000.0000",
            "00.5",
            "1.",
            ".5",
            "-1.5",
            "1e2",
            "1.5E-3",
        ] {
            let line = format!(r#"{{"exchange":"NSE","symbol":"A","ts":1,"ltp":{n},"qty":{n}}}"#);
            agrees(line.as_bytes());
        }
    }

    #[test]
    fn the_fast_read_takes_the_lines_tickwire_writes_and_leaves_the_odd_ones() {
        let plain = br#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":"3045","ts":1704168900123,"ltp":612.35,"qty":25,"vol":125000,"bid":612.30,"ask":612.40}"#;
        assert!(agrees(plain));
        for odd in [
            // An escape, a duplicate field, a sign, a nested value of a known
            // field, text after the object, a missing field.
            &br#"{"exchange":"NSE","symbol":"M\u0026M","ts":1,"ltp":1,"qty":1}"#[..],
            br#"{"exchange":"NSE","symbol":"A","ts":1,"ltp":1,"ltp":2,"qty":1}"#,
            br#"{"exchange":"NSE","symbol":"A","ts":-1,"ltp":1,"qty":1}"#,
            br#"{"exchange":"NSE","symbol":"A","ts":1,"ltp":[1],"qty":1}"#,
            br#"{"exchange":"NSE","symbol":"A","ts":1,"ltp":1,"qty":1} x"#,
            br#"{"exchange":"NSE","symbol":"A","ts":1,"ltp":1}"#,
        ] {
            assert!(
                fast::line(odd).is_none(),
                "{}",
                String::from_utf8_lossy(odd)
            );
        }
    }
}
