//! Deterministic NSE-like ticks: M instruments over D sessions of the
//! continuous market (09:15-15:30 Asia/Kolkata), prices on the 0.05 grid,
//! quantities in whole lots, cumulative day volume. The same spec and seed give
//! the same bytes, on any machine.

use std::io::{self, Write};

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSpec {
    pub instruments: usize,
    pub sessions: usize,
    /// Ticks per instrument per session.
    pub ticks_per_session: usize,
    pub seed: u64,
    /// The first trading date; weekends are skipped.
    pub start: Date,
}

/// One generated instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthInstrument {
    pub symbol: String,
    pub segment: &'static str,
    pub security_id: Option<String>,
    pub lot: u64,
    /// Opening price in paise (a multiple of 5).
    pub open_paise: i64,
}

/// (symbol, segment, security id, lot, opening price in rupees).
/// Well-known NSE names first (equities with their NSE security ids, lot 1;
/// index futures in lots); beyond them, `SYN0011`, `SYN0012`, ...
const KNOWN: &[(&str, &str, Option<&str>, u64, i64)] = &[
    ("RELIANCE", "NSE_EQ", Some("2885"), 1, 2600),
    ("TCS", "NSE_EQ", Some("11536"), 1, 3800),
    ("HDFCBANK", "NSE_EQ", Some("1333"), 1, 1650),
    ("INFY", "NSE_EQ", Some("1594"), 1, 1500),
    ("BANKNIFTY-FUT", "NSE_FNO", None, 15, 47500),
    ("NIFTY-FUT", "NSE_FNO", None, 25, 21700),
    ("SBIN", "NSE_EQ", Some("3045"), 1, 640),
    ("ICICIBANK", "NSE_EQ", Some("4963"), 1, 1000),
    ("ITC", "NSE_EQ", Some("1660"), 1, 460),
    ("KOTAKBANK", "NSE_EQ", Some("1922"), 1, 1800),
];

/// The instruments of a spec with `m` instruments.
pub fn instruments(m: usize, rng: &mut ChaCha8Rng) -> Vec<SynthInstrument> {
    (0..m)
        .map(|i| match KNOWN.get(i) {
            Some(&(symbol, segment, id, lot, rupees)) => SynthInstrument {
                symbol: symbol.to_string(),
                segment,
                security_id: id.map(str::to_string),
                lot,
                open_paise: rupees * 100,
            },
            None => SynthInstrument {
                symbol: format!("SYN{:04}", i + 1),
                segment: "NSE_EQ",
                security_id: Some((900_000 + i).to_string()),
                lot: [1, 1, 1, 25, 50][i % 5],
                open_paise: rng.random_range(50..20_000) * 100,
            },
        })
        .collect()
}

/// The first `n` weekdays from `start`.
pub fn trading_dates(start: Date, n: usize) -> Vec<Date> {
    let mut out = Vec::with_capacity(n);
    let mut d = start;
    while out.len() < n {
        if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            out.push(d);
        }
        d = d.tomorrow().unwrap_or(d);
    }
    out
}

const SESSION_MS: i64 = (6 * 3600 + 15 * 60) * 1000; // 09:15 to 15:30

/// How a session's ticks are spread over the instruments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Universe {
    /// `ticks_per_session` ticks each.
    Uniform,
    /// `instruments x ticks_per_session` ticks a session, the instrument of
    /// rank r (its place in the list, from 1) getting a share in proportion
    /// to 1/r^s: a few busy names and a long tail that trades a few times a
    /// session or not at all, as a real market.
    Zipf { s: f64 },
}

/// Each instrument's ticks in one session of `universe`: they add up to
/// `instruments x ticks_per_session` (Zipf: shares rounded by largest
/// remainder, so the total is exact).
pub fn session_counts(
    universe: Universe,
    instruments: usize,
    ticks_per_session: usize,
) -> Vec<usize> {
    let total = instruments * ticks_per_session;
    let s = match universe {
        Universe::Uniform => return vec![ticks_per_session; instruments],
        Universe::Zipf { s } => s,
    };
    let weights: Vec<f64> = (1..=instruments).map(|r| (r as f64).powf(-s)).collect();
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let short = total - counts.iter().sum::<usize>();
    let mut by_remainder: Vec<usize> = (0..instruments).collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in by_remainder.iter().take(short) {
        counts[i] += 1;
    }
    counts
}

/// Writes the ticks as tickwire tick JSON lines, in time order; returns the count.
pub fn write_ticks(spec: &SynthSpec, out: &mut impl Write) -> io::Result<u64> {
    write_universe(spec, Universe::Uniform, out)
}

/// [`write_ticks`] with the session's ticks spread as `universe` says.
pub fn write_universe(
    spec: &SynthSpec,
    universe: Universe,
    out: &mut impl Write,
) -> io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let insts = instruments(spec.instruments, &mut rng);
    let tz = TimeZone::get("Asia/Kolkata").map_err(io::Error::other)?;
    let mut price: Vec<i64> = insts.iter().map(|i| i.open_paise).collect();
    let mut written = 0u64;
    let mut line = String::with_capacity(256);
    for date in trading_dates(spec.start, spec.sessions) {
        let open = date
            .at(9, 15, 0, 0)
            .to_zoned(tz.clone())
            .map_err(io::Error::other)?
            .timestamp()
            .as_millisecond();
        let mut ticks: Vec<(i64, usize)> =
            Vec::with_capacity(spec.instruments * spec.ticks_per_session);
        let counts = session_counts(universe, insts.len(), spec.ticks_per_session);
        for (i, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                ticks.push((open + rng.random_range(0..SESSION_MS), i));
            }
        }
        ticks.sort_unstable();
        let mut volume = vec![0u64; insts.len()];
        for (ts, i) in ticks {
            let inst = &insts[i];
            // A random walk on the 0.05 grid: mostly small steps, a few larger.
            let step = match rng.random_range(0..100) {
                0..=29 => 0,
                30..=59 => -1,
                60..=89 => 1,
                90..=94 => -rng.random_range(2..6),
                _ => rng.random_range(2..6),
            };
            price[i] = (price[i] + step * 5).max(5);
            let lots = 1 + rng.random_range(0u64..1_000).pow(2) / 20_000;
            let qty = lots * inst.lot;
            volume[i] += qty;
            let p = price[i];
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
                line,
                r#"{{"exchange":"NSE","segment":"{}","symbol":"{}","#,
                inst.segment, inst.symbol
            );
            if let Some(id) = &inst.security_id {
                let _ = write!(line, r#""security_id":"{id}","#);
            }
            let _ = writeln!(
                line,
                r#""ts":{ts},"ltp":{},"qty":{qty},"vol":{},"bid":{},"ask":{}}}"#,
                paise(p),
                volume[i],
                paise((p - 5).max(5)),
                paise(p + 5),
            );
            out.write_all(line.as_bytes())?;
            written += 1;
        }
    }
    Ok(written)
}

/// 245005 -> "2450.05"
fn paise(p: i64) -> String {
    format!("{}.{:02}", p / 100, p % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SynthSpec {
        SynthSpec {
            instruments: 12,
            sessions: 2,
            ticks_per_session: 50,
            seed: 7,
            start: jiff::civil::date(2024, 1, 5),
        }
    }

    /// The raw text of a numeric field of a generated JSON line.
    fn field<'a>(line: &'a str, name: &str) -> &'a str {
        let start = line.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
        let rest = &line[start..];
        &rest[..rest.find([',', '}']).unwrap()]
    }

    #[test]
    fn deterministic_and_well_formed() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(write_ticks(&spec(), &mut a).unwrap(), 12 * 2 * 50);
        write_ticks(&spec(), &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let mut last_ts = 0;
        for line in text.lines() {
            let ts: i64 = field(line, "ts").parse().unwrap();
            assert!(ts >= last_ts);
            last_ts = ts;
            let ltp = field(line, "ltp");
            let paise: i64 = ltp.replace('.', "").parse().unwrap();
            assert_eq!(paise % 5, 0, "{ltp} is not on the 0.05 grid");
        }
    }

    #[test]
    fn a_zipf_universe_has_a_few_busy_names_and_a_long_quiet_tail() {
        let counts = session_counts(Universe::Zipf { s: 1.1 }, 10_000, 100);
        assert_eq!(counts.iter().sum::<usize>(), 1_000_000);
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "by rank");
        // Rank 1 takes 1/H(10000, 1.1) of the ticks (about 15%).
        let h: f64 = (1..=10_000).map(|r| (r as f64).powf(-1.1)).sum();
        assert!(
            (counts[0] as f64 - 1e6 / h).abs() <= 1.0,
            "{} vs {}",
            counts[0],
            1e6 / h
        );
        // The tail trades a few times a session: rank 5,000 about 13 times,
        // the last under 10.
        assert!(counts[5_000] < 20 && counts[9_999] < 10, "{counts:?}");
        assert_eq!(session_counts(Universe::Uniform, 3, 7), vec![7, 7, 7]);
        // Time-ordered lines, as many as asked.
        let spec = SynthSpec {
            instruments: 200,
            ..spec()
        };
        let mut out = Vec::new();
        let n = write_universe(&spec, Universe::Zipf { s: 1.1 }, &mut out).unwrap();
        assert_eq!(n, 200 * 2 * 50);
        let text = String::from_utf8(out).unwrap();
        let ts: Vec<i64> = text
            .lines()
            .map(|l| field(l, "ts").parse().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        let busiest = text.lines().filter(|l| l.contains("\"RELIANCE\"")).count();
        assert!(busiest > 800, "{busiest}");
    }

    #[test]
    fn sessions_are_weekdays_inside_market_hours() {
        // 2024-01-05 is a Friday: the second session is Monday the 8th.
        let dates = trading_dates(jiff::civil::date(2024, 1, 5), 2);
        assert_eq!(
            dates,
            vec![jiff::civil::date(2024, 1, 5), jiff::civil::date(2024, 1, 8)]
        );
        let mut out = Vec::new();
        write_ticks(&spec(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let tz = TimeZone::get("Asia/Kolkata").unwrap();
        for line in text.lines() {
            let ts: i64 = field(line, "ts").parse().unwrap();
            let local = jiff::Timestamp::from_millisecond(ts)
                .unwrap()
                .to_zoned(tz.clone());
            let minutes = local.hour() as i32 * 60 + local.minute() as i32;
            assert!((9 * 60 + 15..15 * 60 + 30).contains(&minutes), "{local}");
        }
    }
}
