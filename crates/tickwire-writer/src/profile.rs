//! Key profiles in the writer: the values each selected profile's outputs
//! take from ticks, closed bars, feed status and the heartbeat, and the keys
//! they go to. Each key is written with one EVALSHA of `lua/profile_write.lua`
//! per batch (value, TTL, cap and PUBLISH in one command), holding only the
//! batch's latest value (lists: every new entry, in order).

use fred::types::Key;
use serde_json::{Map, Value as Json};
use tickwire_core::profiles::{Encoding, Output, RedisType};
use tickwire_core::{Bar, Dec, Instrument, Tick};

/// What a profile output writes to one key.
#[derive(Debug, Clone)]
pub(crate) struct ProfileWrite {
    pub db: u8,
    pub key: Key,
    pub redis_type: RedisType,
    pub ttl: i64,
    pub cap: i64,
    pub publish: Option<Key>,
    /// Lists: the JSON field holding the order key (the bar's open time).
    pub order_field: String,
    pub value: ProfileValue,
}

#[derive(Debug, Clone)]
pub(crate) enum ProfileValue {
    /// Hash fields.
    Fields(Vec<(String, String)>),
    /// A string's whole value.
    Text(String),
    /// A list entry and its order key.
    Entry(i64, String),
    /// A stream entry: its ID and fields.
    StreamEntry(String, Vec<(String, String)>),
}

/// One source value.
enum V<'a> {
    /// A price or quantity: its exact decimal.
    Dec(Dec),
    /// A ratio (an indicator, an average price).
    Num(f64),
    Int(i64),
    Str(&'a str),
    Owned(String),
}

impl V<'_> {
    fn text(&self) -> String {
        match self {
            V::Dec(d) => d.to_string(),
            V::Num(n) => n.to_string(),
            V::Int(i) => i.to_string(),
            V::Str(s) => s.to_string(),
            V::Owned(s) => s.clone(),
        }
    }

    fn json(&self) -> Json {
        match self {
            // A whole number as a JSON integer; otherwise the nearest double,
            // which serde_json prints in its shortest form: the decimal's own
            // digits for any value of up to 15 significant digits.
            V::Dec(d) => d.to_i64().map_or_else(
                || serde_json::Number::from_f64(d.to_f64()).map_or(Json::Null, Json::Number),
                Json::from,
            ),
            V::Num(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
            V::Int(i) => Json::from(*i),
            V::Str(s) => Json::from(*s),
            V::Owned(s) => Json::from(s.as_str()),
        }
    }
}

/// `a.b` nests: `{"a": {"b": v}}`.
fn insert_path(map: &mut Map<String, Json>, path: &str, v: Json) {
    match path.split_once('.') {
        None => {
            map.insert(path.to_string(), v);
        }
        Some((head, rest)) => {
            let inner = map
                .entry(head.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            if let Json::Object(m) = inner {
                insert_path(m, rest, v);
            }
        }
    }
}

/// The output's value from `source`, which names each field's value.
fn value<'a>(out: &Output, source: impl Fn(&str) -> Option<V<'a>>) -> ProfileValue {
    match out.encoding {
        Encoding::Fields => ProfileValue::Fields(
            out.fields
                .iter()
                .filter_map(|(name, src)| Some((name.clone(), source(src)?.text())))
                .collect(),
        ),
        Encoding::Value => ProfileValue::Text(
            out.fields
                .first()
                .and_then(|(_, src)| source(src))
                .map_or_else(String::new, |v| v.text()),
        ),
        Encoding::Json => {
            let mut map = Map::new();
            for (name, src) in &out.fields {
                if let Some(v) = source(src) {
                    insert_path(&mut map, name, v.json());
                }
            }
            ProfileValue::Text(Json::Object(map).to_string())
        }
    }
}

fn instrument_source<'a>(inst: &'a Instrument, src: &str) -> Option<V<'a>> {
    match src {
        "symbol" => Some(V::Str(&inst.symbol)),
        "exchange" => Some(V::Str(&inst.exchange)),
        "segment" => inst.segment.as_deref().map(V::Str),
        "security_id" => inst.security_id.as_deref().map(V::Str),
        _ => None,
    }
}

/// ISO 8601 UTC with milliseconds: `2024-01-02T04:30:00.123Z`.
pub(crate) fn iso_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn write(out: &Output, key: Key, value: ProfileValue) -> ProfileWrite {
    ProfileWrite {
        db: out.db,
        key,
        redis_type: out.redis_type,
        ttl: i64::try_from(out.ttl).unwrap_or(i64::MAX),
        cap: i64::try_from(out.cap).unwrap_or(i64::MAX),
        publish: None,
        order_field: String::new(),
        value,
    }
}

/// A tick's entry in a profile's tick stream, with its stream ID.
pub(crate) fn tick_entry(out: &Output, key: Key, id: (u64, u64), t: &Tick) -> ProfileWrite {
    let mut w = tick(out, key, None, t);
    if let ProfileValue::Fields(f) =
        std::mem::replace(&mut w.value, ProfileValue::Text(String::new()))
    {
        w.value = ProfileValue::StreamEntry(format!("{}-{}", id.0, id.1), f);
    }
    w
}

/// A tick's write to a profile's last-price output.
pub(crate) fn tick(out: &Output, key: Key, publish: Option<Key>, t: &Tick) -> ProfileWrite {
    let ts = t.exchange_ts_ms();
    let v = value(out, |src| match src {
        "ltp" => Some(V::Dec(t.price)),
        "qty" => Some(V::Dec(t.qty)),
        "ts" => Some(V::Int(ts)),
        "ts_iso" => Some(V::Owned(iso_ms(ts))),
        "vol" => t.cum_volume.map(V::Dec),
        "atp" => t.atp.map(V::Num),
        "bid" => t.bid.map(V::Dec),
        "ask" => t.ask.map(V::Dec),
        "day_open" => t.day.map(|d| V::Dec(d.open)),
        "day_high" => t.day.map(|d| V::Dec(d.high)),
        "day_low" => t.day.map(|d| V::Dec(d.low)),
        "day_volume" => t.day.map(|d| V::Dec(d.volume)),
        other => instrument_source(&t.instrument, other),
    });
    let mut w = write(out, key, v);
    w.publish = publish;
    w
}

/// A closed bar's indicators to a profile's indicators output. Values still
/// warming up are left out.
pub(crate) fn indicators(
    out: &Output,
    key: Key,
    publish: Option<Key>,
    set: &tickwire_core::IndicatorSet,
) -> ProfileWrite {
    // The bands' width in price, as the trading-system schema shows it
    // (upper 152.50, lower 148.50, width 4.0).
    let width = match (set.bb_upper, set.bb_lower) {
        (Some(u), Some(l)) => Some(u - l),
        _ => None,
    };
    let v = value(out, |src| match src {
        "rsi" => set.rsi.map(V::Num),
        "macd" => set.macd.map(V::Num),
        "macd_signal" => set.macd_signal.map(V::Num),
        "macd_hist" => set.macd_hist.map(V::Num),
        "bb_upper" => set.bb_upper.map(V::Num),
        "bb_middle" => set.bb_middle.map(V::Num),
        "bb_lower" => set.bb_lower.map(V::Num),
        "bb_width" => width.map(V::Num),
        "ts" => Some(V::Int(set.ts_ms)),
        "ts_iso" => Some(V::Owned(iso_ms(set.ts_ms))),
        other => instrument_source(&set.instrument, other),
    });
    let mut w = write(out, key, v);
    w.publish = publish;
    w
}

/// A closed bar's entry in a profile's bars output.
pub(crate) fn bar(out: &Output, key: Key, inst: &Instrument, b: &Bar) -> ProfileWrite {
    let v = value(out, |src| match src {
        "open" => Some(V::Dec(b.open)),
        "high" => Some(V::Dec(b.high)),
        "low" => Some(V::Dec(b.low)),
        "close" => Some(V::Dec(b.close)),
        "volume" => Some(V::Dec(b.volume)),
        "trades" => Some(V::Int(i64::try_from(b.trades).unwrap_or(i64::MAX))),
        "open_ms" => Some(V::Int(b.open_ms)),
        other => instrument_source(inst, other),
    });
    let entry = match v {
        ProfileValue::Text(json) => ProfileValue::Entry(b.open_ms, json),
        other => other,
    };
    let mut w = write(out, key, entry);
    // The list's order key: the output field fed by the bar's open time.
    w.order_field = order_field(out);
    w
}

/// The list's order key: the output field fed by the bar's open time (a
/// validated list output has one).
fn order_field(out: &Output) -> String {
    out.fields
        .iter()
        .find(|(_, src)| src == "open_ms")
        .map(|(name, _)| name.clone())
        .unwrap_or_default()
}

/// A feed's status to a profile's feed-status output.
pub(crate) fn feed_status(out: &Output, key: Key, status: &str) -> ProfileWrite {
    let v = value(out, |src| (src == "status").then_some(V::Str(status)));
    write(out, key, v)
}

/// The heartbeat's fields as a profile's heartbeat output shapes them:
/// hash fields, or one string.
pub(crate) fn heartbeat_value(out: &Output, fields: &[(&str, String)]) -> ProfileValue {
    value(out, |src| {
        fields
            .iter()
            .find(|(name, _)| *name == src)
            .map(|(_, v)| V::Str(v.as_str()))
    })
}
