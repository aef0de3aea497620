//! Exact decimals for prices and quantities.
//!
//! Venues send prices and quantities as decimal text (`"0.35130000"`); summed
//! as `f64` they print float noise (`19.06900000000001`). [`Dec`] keeps them as
//! the decimals they arrived as, so a bar's volume or a session total is the
//! exact sum and is written in its shortest form (`19.069`). Ratios (VWAP, RSI,
//! ATR, ...) are computed in `f64` from [`Dec::to_f64`].

use std::fmt;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// The largest price or quantity a tick may carry: with it, summing a day's
/// trades can never overflow (the type holds about 7.9e28).
pub const MAX_VALUE: Dec = Dec(Decimal::from_parts(0xA764_0000, 0x0DE0_B6B3, 0, false, 0)); // 1e18

/// An exact decimal number (a price, a quantity, a volume).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dec(Decimal);

impl Dec {
    pub const ZERO: Dec = Dec(Decimal::ZERO);

    /// Parses decimal text as a venue sends it (`"25.3519"`, `"-1"`, `"1e-5"`),
    /// surrounding white space allowed. `None` for anything else, and for
    /// more digits than the type holds exactly.
    pub fn parse(text: &str) -> Option<Dec> {
        let t = text.trim();
        if let Some(d) = parse_plain(t) {
            return Some(Dec(d));
        }
        if t.contains(['e', 'E']) {
            return Decimal::from_scientific(t).ok().map(Dec);
        }
        Decimal::from_str_exact(t).ok().map(Dec)
    }

    /// Whether the magnitude is at most [`MAX_VALUE`] (1e18), from the
    /// mantissa and scale alone: |m| / 10^s <= 1e18 exactly when |m| <=
    /// 10^(18+s); from scale 21 up a 96-bit mantissa (< 7.9e28) always is.
    /// Every tick's numbers are checked: this costs a few instructions, a
    /// general decimal comparison about a hundred.
    pub fn within_max(self) -> bool {
        /// 10^(18+s) for s in 0..=20 (10^38 < 2^128).
        const LIMIT: [u128; 21] = {
            let mut t = [0u128; 21];
            let mut p = 10u128.pow(18);
            let mut i = 0;
            while i < 21 {
                t[i] = p;
                p = p.saturating_mul(10);
                i += 1;
            }
            t
        };
        match LIMIT.get(self.0.scale() as usize) {
            Some(&limit) => self.0.mantissa().unsigned_abs() <= limit,
            None => true,
        }
    }

    /// The decimal a float stands for: its shortest round-trip text (what a
    /// JSON producer wrote, `612.35`, not the binary value
    /// 612.350000000000022737...). `None` for NaN, infinities and magnitudes
    /// past [`MAX_VALUE`].
    pub fn from_f64(v: f64) -> Option<Dec> {
        if !(v.is_finite() && v.abs() <= 1e18) {
            return None;
        }
        if let Some(d) = Dec::few_decimals(v) {
            return Some(d);
        }
        Dec::from_shortest(v, v)
    }

    /// The shortest text of `v` found by trying its decimals 0, 1, 2...:
    /// the first scale at which exactly one integer `c` reads back as `v`
    /// (`c / 10^s`, both exact, is the correctly rounded quotient, as
    /// parsing `c`e-`s` gives). That is the text `Display` prints (its
    /// digits are the fewest that read back, and of those the only one).
    /// `None` (the general way decides) when two read back (a halfway or
    /// near case), at 16 decimals or more, past 2^53, and for zero.
    fn few_decimals(v: f64) -> Option<Dec> {
        const POW10: [f64; 16] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        ];
        const EXACT: f64 = (1u64 << 53) as f64;
        if v == 0.0 {
            return None;
        }
        for (s, &p) in POW10.iter().enumerate() {
            let x = v * p;
            if x.abs() >= EXACT - 1.0 {
                return None;
            }
            // The integers near v·10^s: if any reads back as v, one of
            // these does (the nearest is within 0.5 of it).
            let c = x.round();
            let mut found = None;
            for cand in [c - 1.0, c, c + 1.0] {
                if cand / p == v {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(cand);
                }
            }
            if let Some(c) = found {
                // |c| < 2^53: the conversion is exact.
                return Some(Dec::from_scaled(c as i64, s as u32));
            }
        }
        None
    }

    /// The decimal an `f32` stands for: its shortest round-trip text (Dhan
    /// sends 2450.05 as an f32; this is 2450.05, not 2450.050048828125).
    pub fn from_f32(v: f32) -> Option<Dec> {
        if !(v.is_finite() && v.abs() <= 1e18) {
            return None;
        }
        Dec::from_shortest(v, f64::from(v))
    }

    /// Parses the shortest text that reads back as the float (`exact` is
    /// its value), as Rust's `Display` prints it: ryu's text, without
    /// core::fmt (3 floats per tick of a JSON feed), except where the two
    /// can differ: when two texts are equally short and equally near (the
    /// value is halfway between them: 366339.125 as an f32 is 366339.12 or
    /// .13) the two pick differently, and ryu's exponent form. Tested to
    /// read as `Display` does, scale included.
    fn from_shortest(v: impl ryu::Float + fmt::Display, exact: f64) -> Option<Dec> {
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v);
        // ryu writes a whole number as `25.0`, Display as `25`: the same
        // value, but scale 0 as before.
        let text = text.strip_suffix(".0").unwrap_or(text);
        if text.contains('e') {
            return Dec::from_display(v);
        }
        // Halfway between two texts of p decimals is a value of exactly
        // p + 1 binary fraction digits: times 2^(p+1) (exact, a power of
        // two), an odd integer.
        let p = text.find('.').map_or(0, |dot| text.len() - dot - 1);
        let scaled = exact * f64::powi(2.0, p as i32 + 1);
        if scaled.fract() == 0.0 && (scaled / 2.0).fract() != 0.0 {
            return Dec::from_display(v);
        }
        Dec::parse(text)
    }

    /// Parses a float's `Display` text (Rust prints the shortest text that
    /// reads back as the same float, the nearest of those).
    fn from_display(v: impl fmt::Display) -> Option<Dec> {
        let mut buf = StackText::default();
        fmt::Write::write_fmt(&mut buf, format_args!("{v}")).ok()?;
        Dec::parse(buf.as_str())
    }

    /// `units` × 10^-`scale` exactly (Dhan's integer paise: `from_scaled(288535, 2)`).
    pub fn from_scaled(units: i64, scale: u32) -> Dec {
        Dec(Decimal::new(units, scale.min(28)))
    }

    /// The number of decimals it carries (`1.50` read as text carries 2;
    /// [`Dec::text`] prints it without trailing zeros either way).
    pub fn scale(self) -> u32 {
        self.0.scale()
    }

    pub fn from_int(v: i64) -> Dec {
        Dec(Decimal::from(v))
    }

    /// The nearest `f64` (correctly rounded), for ratios and indicators.
    pub fn to_f64(self) -> f64 {
        let (m, scale) = (self.0.mantissa(), self.0.scale());
        // Both operands exact in f64, so the one division rounds correctly
        // (the fast path of decimal-to-float conversion).
        if m.unsigned_abs() < (1u128 << 53) && scale <= 22 {
            return m as f64 / 10f64.powi(scale as i32);
        }
        let mut buf = StackText::default();
        match fmt::Write::write_fmt(&mut buf, format_args!("{}", self.0)) {
            Ok(()) => buf.as_str().parse().unwrap_or(f64::NAN),
            Err(_) => self.0.to_f64().unwrap_or(f64::NAN),
        }
    }

    /// The value as an integer, when it is one.
    pub fn to_i64(self) -> Option<i64> {
        (self.0.fract().is_zero())
            .then(|| self.0.to_i64())
            .flatten()
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Strictly greater than zero.
    pub fn is_positive(self) -> bool {
        self.0.is_sign_positive() && !self.0.is_zero()
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// `self - other` (saturating at the type's bounds).
    pub fn minus(self, other: Dec) -> Dec {
        Dec(self.0.saturating_sub(other.0))
    }
}

impl Add for Dec {
    type Output = Dec;
    /// Saturates at the type's bounds instead of panicking; ticks are capped
    /// at [`MAX_VALUE`], so a real day's sum never gets near them.
    fn add(self, rhs: Dec) -> Dec {
        Dec(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Dec {
    fn add_assign(&mut self, rhs: Dec) {
        *self = *self + rhs;
    }
}

impl FromStr for Dec {
    type Err = ParseDecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dec::parse(s).ok_or(ParseDecError)
    }
}

/// Text that is not a decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal number")]
pub struct ParseDecError;

impl fmt::Display for Dec {
    /// The shortest exact form: no trailing zeros, no trailing point
    /// (`19.069`, `100`, `0.001`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() && f.precision().is_none() {
            let mut buf = [0; TEXT_LEN];
            return f.write_str(self.text(&mut buf));
        }
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

/// Room for the text of any [`Dec`]: a sign, 29 digits and a point, or a
/// sign, `0.` and 28 digits after it.
pub const TEXT_LEN: usize = 40;

impl Dec {
    /// The shortest exact text, as `Display` prints it (`19.069`, `100`,
    /// `-0.001`), written into `buf` without the formatting machinery: every
    /// tick's price and quantity go to Redis as this text.
    pub fn text(self, buf: &mut [u8; TEXT_LEN]) -> &str {
        ascii(self.text_bytes(buf))
    }

    /// [`Dec::text`] as bytes, for a caller that sends bytes: the text is
    /// ASCII by construction, and checking it as UTF-8 cost about 70
    /// instructions a number (1.6% of a replay's).
    pub fn text_bytes(self, buf: &mut [u8; TEXT_LEN]) -> &[u8] {
        let mut scale = self.0.scale() as usize;
        let mut m = self.0.mantissa().unsigned_abs();
        if m == 0 {
            buf[0] = b'0';
            return &buf[..1];
        }
        // The mantissa's digits, right to left, without the fraction's
        // trailing zeros (at most 29 digits: |mantissa| < 2^96).
        let mut digits = [0u8; 32];
        let mut at = digits.len();
        if let Ok(mut v) = u64::try_from(m) {
            while scale > 0 && v.is_multiple_of(10) {
                v /= 10;
                scale -= 1;
            }
            loop {
                at -= 1;
                digits[at] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
        } else {
            while scale > 0 && m.is_multiple_of(10) {
                m /= 10;
                scale -= 1;
            }
            loop {
                at -= 1;
                digits[at] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
        }
        let digits = &digits[at..];
        let n = digits.len();
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        if self.0.is_sign_negative() {
            put(b"-");
        }
        if n > scale {
            put(&digits[..n - scale]);
            if scale > 0 {
                put(b".");
                put(&digits[n - scale..]);
            }
        } else {
            put(b"0.");
            for _ in n..scale {
                put(b"0");
            }
            put(digits);
        }
        &buf[..len]
    }
}

/// Bytes known to be ASCII as a `&str`.
fn ascii(bytes: &[u8]) -> &str {
    // Only ASCII digits, `-` and `.` are ever written.
    std::str::from_utf8(bytes).unwrap_or("0")
}

/// Plain decimal text (`612.35`, `-0.001`, `100`: no exponent, no sign
/// `+`, at most 19 digits and 28 after the point) read without the general
/// parser; `None` for anything else, which the general parser then reads.
/// The same mantissa and scale as `Decimal::from_str_exact`.
fn parse_plain(t: &str) -> Option<Decimal> {
    let (neg, body) = match t.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        b => (false, b),
    };
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut scale: Option<u32> = None;
    for &c in body {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 19 {
                    return None;
                }
                m = m * 10 + u64::from(c - b'0');
                if let Some(s) = scale.as_mut() {
                    *s += 1;
                }
            }
            b'.' if scale.is_none() => scale = Some(0),
            _ => return None,
        }
    }
    let scale = scale.unwrap_or(0);
    // `1.` and `.5` and `-` are left to the general parser.
    if digits == 0 || scale > 28 || body.first() == Some(&b'.') || body.last() == Some(&b'.') {
        return None;
    }
    Some(Decimal::from_parts(
        m as u32,
        (m >> 32) as u32,
        0,
        neg,
        scale,
    ))
}

impl fmt::Debug for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<u32> for Dec {
    fn from(v: u32) -> Dec {
        Dec(Decimal::from(v))
    }
}

impl From<u64> for Dec {
    fn from(v: u64) -> Dec {
        Dec(Decimal::from(v))
    }
}

impl serde::Serialize for Dec {
    /// As its shortest exact text, so it reads back exactly.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The same text as Display, without core::fmt's machinery (every
        // checkpoint holds dozens of these).
        let mut buf = [0; TEXT_LEN];
        s.serialize_str(self.text(&mut buf))
    }
}

impl<'de> serde::Deserialize<'de> for Dec {
    /// A JSON number (taken as its shortest text) or a string of decimal text.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number (a JSON number or decimal text)")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dec, E> {
                Dec::from_f64(v).ok_or_else(|| E::custom(format!("{v} is not a usable number")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dec, E> {
                Ok(Dec::from_int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dec, E> {
                Ok(Dec::from(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dec, E> {
                Dec::parse(v).ok_or_else(|| E::custom(format!("{v:?} is not a decimal number")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A fixed buffer for one float's text (no allocation per tick).
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn sums_are_exact_and_print_shortest() {
        // Real Binance futures quantities whose f64 sum prints 19.06900000000001.
        let mut v = Dec::ZERO;
        for q in ["0.001", "19.000", "0.068"] {
            v += d(q);
        }
        assert_eq!(v.to_string(), "19.069");
        assert_eq!(d("0.35130000").to_string(), "0.3513");
        assert_eq!(d("100.00").to_string(), "100");
        assert_eq!((d("0.5") + d("0.5")).to_string(), "1");
        assert_eq!(d(" 7 ").to_string(), "7");
        assert_eq!(d("1e-5").to_string(), "0.00001");
    }

    #[test]
    fn floats_become_the_decimal_they_were_written_as() {
        assert_eq!(Dec::from_f64(612.35).unwrap().to_string(), "612.35");
        assert_eq!(Dec::from_f64(0.1).unwrap().to_string(), "0.1");
        assert_eq!(Dec::from_f64(25.0).unwrap().to_string(), "25");
        assert_eq!(Dec::from_f64(f64::NAN), None);
        assert_eq!(Dec::from_f64(f64::INFINITY), None);
        assert_eq!(Dec::from_f64(1e300), None);
        assert_eq!(Dec::from_f32(2450.05).unwrap().to_string(), "2450.05");
        assert_eq!(Dec::from_f32(83.2525).unwrap().to_string(), "83.2525");
        assert_eq!(Dec::from_f32(130_000.05).unwrap().to_string(), "130000.05");
    }

    #[test]
    fn paise_and_comparisons() {
        assert_eq!(Dec::from_scaled(288535, 2).to_string(), "2885.35");
        assert!(d("1.10") == d("1.1"));
        assert!(d("2") > d("1.99"));
        assert!(d("0").is_zero() && !d("0").is_positive());
        assert!(d("-1").is_negative());
        assert_eq!(MAX_VALUE.to_string(), "1000000000000000000");
        assert_eq!(Dec::parse("x"), None);
        assert_eq!(Dec::parse("NaN"), None);
        assert_eq!(Dec::parse(""), None);
        assert_eq!(d("1.5").minus(d("0.25")).to_string(), "1.25");
        assert_eq!(d("0.35130000").to_f64(), 0.3513);
        assert_eq!(d("19.069").to_f64(), 19.069);
        // Past 2^53: the slow path, still the correctly rounded double.
        assert_eq!(
            d("123456789.123456789").to_f64(),
            "123456789.123456789".parse::<f64>().unwrap()
        );
        assert_eq!(d("100.00").to_i64(), Some(100));
        assert_eq!(d("100.5").to_i64(), None);
    }

    /// Decimals of every shape: signs, scales 0 to 28, trailing zeros,
    /// mantissas past u64, and zeros of both signs.
    fn shapes() -> Vec<Decimal> {
        let mut v = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mantissas = [
            0i128,
            1,
            5,
            10,
            100,
            12_300,
            999_999_999,
            i128::from(u64::MAX),
            (1i128 << 96) - 1,
        ];
        for &m in &mantissas {
            for scale in 0..=28 {
                for neg in [false, true] {
                    v.push(Decimal::from_i128_with_scale(
                        if neg { -m } else { m },
                        scale,
                    ));
                }
            }
        }
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = i128::from(x >> (x % 60)) * if x.is_multiple_of(3) { -1 } else { 1 };
            let scale = (x % 29) as u32;
            // Some with trailing zeros in the fraction.
            let m = if x.is_multiple_of(5) {
                m / 1000 * 1000
            } else {
                m
            };
            v.push(Decimal::from_i128_with_scale(m, scale));
        }
        v
    }

    /// What `from_f64`/`from_f32` gave before ryu: the float's `Display`
    /// text, parsed.
    fn by_display(v: impl fmt::Display) -> Option<Decimal> {
        Dec::parse(&v.to_string()).map(|d| d.0)
    }

    #[test]
    fn within_max_is_a_comparison_of_the_magnitude_with_1e18() {
        let mut all = shapes();
        all.extend(
            [
                "1e18",
                "-1e18",
                "1000000000000000000.0000000001",
                "999999999999999999.99",
            ]
            .map(|t| d(t).0),
        );
        all.push(Decimal::from_i128_with_scale(10i128.pow(18) + 1, 0));
        for v in all {
            assert_eq!(Dec(v).within_max(), Dec(v.abs()) <= MAX_VALUE, "{v:?}");
        }
    }

    #[test]
    fn floats_read_as_their_display_text_reads() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Halfway cases (Display and ryu pick different texts) and ryu's
        // exponent forms.
        let mut floats: Vec<f64> = vec![
            0.0,
            -0.0,
            1e-5,
            1e-6,
            1.5e-7,
            1e15,
            1e16,
            1e17,
            1e18,
            366339.125,
            8_388_608.0 + 1.0 / 1024.0,
            1_658_206_780_088_562.0 + 0.25,
        ];
        for _ in 0..50_000 {
            let r = next();
            // Prices as a feed writes them (cents, ticks of 0.05, satoshis)...
            let units = (r >> 20) % 10_000_000_000;
            floats.push(units as f64 / 10f64.powi((r % 9) as i32));
            // ...and any float in range, by its bits.
            let any = f64::from_bits(next());
            if any.is_finite() && any.abs() <= 1e18 {
                floats.push(any);
            }
            // ...and binary fractions of few digits, where the halfway
            // cases are.
            let bits = (r % 40) as i32;
            floats.push((r >> 24) as f64 / f64::powi(2.0, bits));
        }
        for v in floats {
            let (got, want) = (Dec::from_f64(v).map(|d| d.0), by_display(v));
            assert_eq!(got, want, "{v:e}");
            // The same scale too, so the text written is the same.
            assert_eq!(got.map(|d| d.scale()), want.map(|d| d.scale()), "{v:e}");
            let f = v as f32;
            let (got, want) = (Dec::from_f32(f).map(|d| d.0), by_display(f));
            assert_eq!(got, want, "{f:e}");
            assert_eq!(got.map(|d| d.scale()), want.map(|d| d.scale()), "{f:e}");
        }
    }

    #[test]
    fn text_is_what_display_of_the_normalized_decimal_prints() {
        let mut buf = [0; TEXT_LEN];
        for d in shapes() {
            let want = d.normalize().to_string();
            assert_eq!(Dec(d).text(&mut buf), want, "{d:?}");
            assert_eq!(Dec(d).to_string(), want);
        }
        // Width and precision still go to the general formatter.
        assert_eq!(format!("{:>6}", d("1.50")), "   1.5");
        assert_eq!(format!("{:.3}", d("1.5")), "1.500");
    }

    #[test]
    fn plain_text_parses_to_the_same_mantissa_and_scale_as_the_general_parser() {
        let mut texts: Vec<String> = shapes().iter().map(|d| d.to_string()).collect();
        texts.extend(
            [
                "0",
                "-0",
                "00012.50",
                "0.35130000",
                "1.",
                ".5",
                "-",
                "",
                "1.2.3",
                "+5",
                "1e5",
                "12345678901234567890",
                "1234567890123456789",
                "0.0000000000000000000000000001",
                "0.00000000000000000000000000001",
                "9999999999999999999",
                "-.5",
                "1-2",
            ]
            .map(String::from),
        );
        for t in &texts {
            let general = Decimal::from_str_exact(t).ok();
            // What the fast path does not read is left to the general parser.
            if let Some(fast) = parse_plain(t) {
                let g = general.unwrap_or_else(|| panic!("{t:?} read only by the fast path"));
                assert_eq!(
                    (fast.mantissa(), fast.scale(), fast.is_sign_negative()),
                    (g.mantissa(), g.scale(), g.is_sign_negative()),
                    "{t:?}"
                );
            }
        }
        // What venues send goes the fast way.
        for t in [
            "612.35",
            "0.35130000",
            "100",
            "-0.001",
            "1234567890123456789",
        ] {
            assert!(parse_plain(t).is_some(), "{t}");
        }
        for t in ["1e5", "+5", "1.", ".5", "12345678901234567890"] {
            assert!(parse_plain(t).is_none(), "{t}");
        }
    }

    #[test]
    fn deserializes_numbers_and_text() {
        let v: Vec<Dec> = serde_json::from_str(r#"[612.35, "0.00100000", 25]"#).unwrap();
        assert_eq!(v, vec![d("612.35"), d("0.001"), d("25")]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["612.35","0.001","25"]"#
        );
    }
}
