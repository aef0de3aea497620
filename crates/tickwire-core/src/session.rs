//! Exchanges' trading days and phases: which trading date, local minute and
//! phase a tick's exchange time falls in, by the exchange's own time zone
//! (jiff's tz database, never fixed offsets).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::error::FieldError;

/// `[exchanges.NAME]`: an exchange's zone and phases.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// IANA zone, e.g. `Asia/Kolkata`; its midnight turns the trading date.
    pub timezone: String,
    /// Phases in local time; none means the venue trades around the clock.
    #[serde(default)]
    pub phases: Vec<PhaseConfig>,
    /// Ticks outside every phase: `drop` (counted), or the name of a DB to route them to.
    #[serde(default = "drop")]
    pub outside: String,
}

fn drop() -> String {
    "drop".into()
}

/// One phase: `start` to `end` (local `HH:MM`, end excluded), its ticks to `db`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    pub name: String,
    pub start: String,
    pub end: String,
    /// A DB purpose name: `premarket`, `continuous_market`, ...
    pub db: String,
}

/// The default exchanges: NSE and BSE (pre-open 09:00-09:08, continuous
/// 09:15-15:30) and MCX (09:00-23:30), all on Asia/Kolkata.
pub fn default_exchanges() -> BTreeMap<String, ExchangeConfig> {
    let indian = |phases: Vec<(&str, &str, &str, &str)>| ExchangeConfig {
        timezone: "Asia/Kolkata".into(),
        phases: phases
            .into_iter()
            .map(|(name, start, end, db)| PhaseConfig {
                name: name.into(),
                start: start.into(),
                end: end.into(),
                db: db.into(),
            })
            .collect(),
        outside: drop(),
    };
    let equities = || {
        indian(vec![
            ("pre_open", "09:00", "09:08", "premarket"),
            ("continuous", "09:15", "15:30", "continuous_market"),
        ])
    };
    BTreeMap::from([
        ("NSE".to_string(), equities()),
        ("BSE".to_string(), equities()),
        (
            "MCX".to_string(),
            indian(vec![("continuous", "09:00", "23:30", "continuous_market")]),
        ),
    ])
}

/// `HH:MM` to minutes after midnight (24:00 allowed as an end).
fn minutes(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

/// An hour or a minute as two digits, as `{:02}` prints a number below
/// 100, without core::fmt (bucket keys render one per volume update).
pub struct TwoDigits([u8; 2]);

impl TwoDigits {
    pub fn as_str(&self) -> &str {
        // Two ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or("00")
    }
}

/// `v` (below 100: an hour of the day or a minute) as two digits.
pub fn two_digits(v: u16) -> TwoDigits {
    let v = v % 100;
    TwoDigits([b'0' + (v / 10) as u8, b'0' + (v % 10) as u8])
}

/// Minutes after midnight to `HH:MM`.
pub fn hhmm(minutes: u16) -> String {
    [
        two_digits(minutes / 60).as_str(),
        ":",
        two_digits(minutes % 60).as_str(),
    ]
    .concat()
}

/// What to do with a tick outside every phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    Drop,
    Route(Db),
}

#[derive(Debug, Clone)]
struct Phase {
    start: u16,
    end: u16,
    db: Db,
}

/// One exchange's zone and phases.
#[derive(Debug, Clone)]
pub struct Venue {
    tz: TimeZone,
    phases: Vec<Phase>,
    outside: Outside,
}

impl Venue {
    /// Around the clock on UTC days: venues the config does not name.
    pub fn around_the_clock_utc() -> Self {
        Self {
            tz: TimeZone::UTC,
            phases: Vec::new(),
            outside: Outside::Drop,
        }
    }

    /// The local minute (after midnight, up to 1440) at which the phase that
    /// holds `minute` ends; `None` around the clock or outside every phase.
    pub fn phase_end(&self, minute: u16) -> Option<u16> {
        self.phases
            .iter()
            .find(|p| p.start <= minute && minute < p.end)
            .map(|p| p.end)
    }

    /// Where a tick at local minute `minute` goes: `Some(db)` or `None` to drop.
    pub fn route(&self, minute: u16) -> Option<Db> {
        if self.phases.is_empty() {
            return Some(Db::ContinuousMarket);
        }
        match self
            .phases
            .iter()
            .find(|p| p.start <= minute && minute < p.end)
        {
            Some(p) => Some(p.db),
            None => match self.outside {
                Outside::Drop => None,
                Outside::Route(db) => Some(db),
            },
        }
    }

    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }
}

/// Every configured exchange, looked up case-insensitively.
#[derive(Debug, Clone)]
pub struct Calendar {
    venues: Vec<(String, Arc<Venue>)>,
    default: Arc<Venue>,
}

impl Calendar {
    /// Builds the calendar, naming every bad field.
    pub fn from_config(
        exchanges: &BTreeMap<String, ExchangeConfig>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut venues = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (name, ex) in exchanges {
            let at = |f: &str| format!("exchanges.{name}.{f}");
            // Names match in any case: two spellings of one exchange would
            // leave one of them silently unused.
            if let Some(other) = seen.iter().find(|o| o.eq_ignore_ascii_case(name)) {
                errors.push(FieldError::new(
                    format!("exchanges.{name}"),
                    format!(
                        "names the same exchange as exchanges.{other} (names match in any case)"
                    ),
                ));
            }
            seen.push(name);
            let tz = match TimeZone::get(&ex.timezone) {
                Ok(tz) => Some(tz),
                Err(_) => {
                    errors.push(FieldError::new(
                        at("timezone"),
                        format!("unknown time zone {:?}", ex.timezone),
                    ));
                    None
                }
            };
            let mut phases = Vec::new();
            // (index, phase) of each phase whose times are valid, to find overlaps.
            let mut spans: Vec<(usize, &PhaseConfig, u16, u16)> = Vec::new();
            for (i, p) in ex.phases.iter().enumerate() {
                if p.name.trim().is_empty() {
                    errors.push(FieldError::new(
                        at(&format!("phases[{i}].name")),
                        "must not be empty",
                    ));
                } else if let Some(j) = ex.phases[..i].iter().position(|q| q.name == p.name) {
                    errors.push(FieldError::new(
                        at(&format!("phases[{i}].name")),
                        format!("{:?} also names phases[{j}] of {name}", p.name),
                    ));
                }
                let (start, end) = (minutes(&p.start), minutes(&p.end));
                if start.is_none() {
                    errors.push(FieldError::new(
                        at(&format!("phases[{i}].start")),
                        format!("{:?} is not HH:MM", p.start),
                    ));
                }
                if end.is_none() {
                    errors.push(FieldError::new(
                        at(&format!("phases[{i}].end")),
                        format!("{:?} is not HH:MM", p.end),
                    ));
                }
                let db = Db::from_name(&p.db);
                if db.is_none() {
                    errors.push(FieldError::new(
                        at(&format!("phases[{i}].db")),
                        format!("unknown DB name {:?}", p.db),
                    ));
                }
                if let (Some(start), Some(end)) = (start, end) {
                    if start >= end {
                        errors.push(FieldError::new(
                            at(&format!("phases[{i}]")),
                            "start must be before end",
                        ));
                    } else {
                        spans.push((i, p, start, end));
                    }
                }
                if let (Some(start), Some(end), Some(db)) = (start, end, db) {
                    phases.push(Phase { start, end, db });
                }
            }
            // A tick's phase must not depend on the order phases are listed in.
            for (k, &(j, pj, sj, ej)) in spans.iter().enumerate() {
                for &(i, pi, si, ei) in &spans[..k] {
                    if si < ej && sj < ei {
                        errors.push(FieldError::new(
                            at(&format!("phases[{j}]")),
                            format!(
                                "phase {:?} ({}-{}) overlaps phase {:?} (phases[{i}], {}-{}) of exchange {name} \
                                 from {} to {}: a tick there would have two phases",
                                pj.name,
                                pj.start,
                                pj.end,
                                pi.name,
                                pi.start,
                                pi.end,
                                hhmm(si.max(sj)),
                                hhmm(ei.min(ej)),
                            ),
                        ));
                    }
                }
            }
            let outside = match ex.outside.as_str() {
                "drop" => Outside::Drop,
                other => match Db::from_name(other) {
                    Some(db) => Outside::Route(db),
                    None => {
                        errors.push(FieldError::new(
                            at("outside"),
                            format!("must be `drop` or a DB name (got {other:?})"),
                        ));
                        Outside::Drop
                    }
                },
            };
            if let Some(tz) = tz {
                venues.push((
                    name.to_ascii_uppercase(),
                    Arc::new(Venue {
                        tz,
                        phases,
                        outside,
                    }),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self {
                venues,
                default: Arc::new(Venue::around_the_clock_utc()),
            })
        } else {
            Err(errors)
        }
    }

    /// No exchange named: every venue around the clock on UTC days.
    pub fn around_the_clock() -> Self {
        Self {
            venues: Vec::new(),
            default: Arc::new(Venue::around_the_clock_utc()),
        }
    }

    /// The venue of an exchange name (any case); unnamed ones trade around the clock on UTC days.
    pub fn venue(&self, exchange: &str) -> Arc<Venue> {
        self.venues
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(exchange))
            .map(|(_, v)| Arc::clone(v))
            .unwrap_or_else(|| Arc::clone(&self.default))
    }
}

/// A tick's place in its exchange's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMinute {
    pub date: Date,
    /// `YYYY-MM-DD`, the `{session}` of keys.
    pub session: Arc<str>,
    /// Minutes after local midnight.
    pub minute: u16,
}

/// Tells local dates and minutes for one venue, converting once per UTC
/// minute (every zone's offset is a whole number of minutes, so a UTC minute
/// never straddles two local minutes).
#[derive(Debug, Clone)]
pub struct SessionClock {
    venue: Arc<Venue>,
    /// The UTC minute `local` is for (`i64::MIN`: nothing yet).
    utc_minute: i64,
    local: LocalMinute,
}

impl SessionClock {
    pub fn new(venue: Arc<Venue>) -> Self {
        Self {
            venue,
            utc_minute: i64::MIN,
            local: LocalMinute {
                date: Date::MIN,
                session: "".into(),
                minute: 0,
            },
        }
    }

    pub fn venue(&self) -> &Venue {
        &self.venue
    }

    /// The local date and minute of `ts_ms` (epoch ms).
    pub fn at(&mut self, ts_ms: i64) -> &LocalMinute {
        let utc_minute = ts_ms.div_euclid(60_000);
        if utc_minute != self.utc_minute {
            let zoned = Timestamp::from_millisecond(utc_minute.saturating_mul(60_000))
                .unwrap_or(Timestamp::UNIX_EPOCH)
                .to_zoned(self.venue.tz.clone());
            let date = zoned.date();
            if date != self.local.date {
                self.local.session = date.to_string().into();
                self.local.date = date;
            }
            self.local.minute = zoned.hour() as u16 * 60 + zoned.minute() as u16;
            self.utc_minute = utc_minute;
        }
        &self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm_is_what_the_zero_padded_format_prints() {
        for minutes in 0..=24 * 60 {
            let want = format!("{:02}:{:02}", minutes / 60, minutes % 60);
            assert_eq!(hhmm(minutes), want);
        }
    }

    fn calendar(extra: &[(&str, ExchangeConfig)]) -> Calendar {
        let mut ex = default_exchanges();
        for (n, c) in extra {
            ex.insert(n.to_string(), c.clone());
        }
        Calendar::from_config(&ex).unwrap()
    }

    #[test]
    fn nse_phases_route_pre_open_continuous_and_drop_the_rest() {
        let cal = calendar(&[]);
        let mut clock = SessionClock::new(cal.venue("nse"));
        // 2024-01-01 09:05 IST = 03:35 UTC: pre-open.
        let at = |c: &mut SessionClock, ms| {
            let m = c.at(ms).minute;
            c.venue().route(m)
        };
        assert_eq!(at(&mut clock, 1_704_080_100_000), Some(Db::Premarket));
        assert_eq!(
            at(&mut clock, 1_704_080_700_000),
            Some(Db::ContinuousMarket)
        ); // 09:15
        assert_eq!(at(&mut clock, 1_704_080_580_000), None); // 09:13, between phases
        assert_eq!(at(&mut clock, 1_704_103_200_000), None); // 15:30
        let mut binance = SessionClock::new(cal.venue("Binance"));
        assert_eq!(
            at(&mut binance, 1_704_103_200_000),
            Some(Db::ContinuousMarket)
        );
    }

    #[test]
    fn dates_turn_at_local_midnight_and_follow_daylight_saving() {
        let chicago = ExchangeConfig {
            timezone: "America/Chicago".into(),
            phases: vec![],
            outside: "drop".into(),
        };
        let cal = calendar(&[("CME", chicago)]);
        let mut c = SessionClock::new(cal.venue("cme"));
        // 2024-03-08 14:30 UTC is 08:30 CST (UTC-6); 2024-03-11 13:30 UTC is 08:30 CDT (UTC-5).
        let before = c.at(1_709_908_200_000).clone();
        assert_eq!(
            (before.session.as_ref(), before.minute),
            ("2024-03-08", 8 * 60 + 30)
        );
        let after = c.at(1_710_163_800_000).clone();
        assert_eq!(
            (after.session.as_ref(), after.minute),
            ("2024-03-11", 8 * 60 + 30)
        );
        // Midnight UTC turns the day for an unnamed (crypto) venue.
        let mut u = SessionClock::new(cal.venue("okx"));
        assert_eq!(&*u.at(1_704_153_599_999).session, "2024-01-01");
        assert_eq!(&*u.at(1_704_153_600_000).session, "2024-01-02");
    }

    #[test]
    fn bad_exchange_config_names_every_field() {
        let bad = ExchangeConfig {
            timezone: "Mars/Olympus".into(),
            phases: vec![PhaseConfig {
                name: "x".into(),
                start: "25:00".into(),
                end: "10:00".into(),
                db: "nowhere".into(),
            }],
            outside: "bin".into(),
        };
        let phase = |name: &str, start: &str, end: &str| PhaseConfig {
            name: name.into(),
            start: start.into(),
            end: end.into(),
            db: "continuous_market".into(),
        };
        // Overlapping phases, a repeated and an empty name; `nse` spells NSE again.
        let overlapping = ExchangeConfig {
            timezone: "Asia/Kolkata".into(),
            phases: vec![
                phase("pre_open", "09:00", "09:08"),
                phase("continuous", "09:15", "15:30"),
                phase("auction", "09:05", "09:20"),
                phase("continuous", "15:30", "16:00"),
                phase("", "16:00", "16:10"),
            ],
            outside: "drop".into(),
        };
        let ok = default_exchanges().remove("NSE").unwrap();
        let errs = Calendar::from_config(&BTreeMap::from([
            ("XX".to_string(), bad),
            ("NSE".to_string(), overlapping),
            ("nse".to_string(), ok),
        ]))
        .unwrap_err();
        let mut fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "exchanges.NSE.phases[2]",
                "exchanges.NSE.phases[2]",
                "exchanges.NSE.phases[3].name",
                "exchanges.NSE.phases[4].name",
                "exchanges.XX.outside",
                "exchanges.XX.phases[0].db",
                "exchanges.XX.phases[0].start",
                "exchanges.XX.timezone",
                "exchanges.nse",
            ]
        );
        let overlaps: Vec<_> = errs
            .iter()
            .filter(|e| e.field == "exchanges.NSE.phases[2]")
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(
            overlaps,
            [
                "phase \"auction\" (09:05-09:20) overlaps phase \"pre_open\" (phases[0], 09:00-09:08) \
                 of exchange NSE from 09:05 to 09:08: a tick there would have two phases",
                "phase \"auction\" (09:05-09:20) overlaps phase \"continuous\" (phases[1], 09:15-15:30) \
                 of exchange NSE from 09:15 to 09:20: a tick there would have two phases",
            ]
        );
        // phases[3] starts where phases[1] ends: touching is not overlapping
        // (only its repeated name was named).
        assert!(Calendar::from_config(&default_exchanges()).is_ok());
    }
}
