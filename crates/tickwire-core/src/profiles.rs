//! Key profiles: the Redis layouts of the stacks tickwire replaces, so their
//! consumers keep reading the keys they know. A profile maps each kind of
//! output to a key template, a Redis type, a value encoding, a DB, a TTL and a
//! cap; an output a profile does not name is not written by it.
//!
//! `default` is the layout of `[keys]`, `[databases]` and `[ttl]` (design.md);
//! the others live in `config/profiles/*.toml` and are built into the binary.
//! Several profiles can be selected at once (`--profile NAME`, repeatable).

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::keys::KeyTemplate;

/// The profiles built into the binary: (name, TOML).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "default",
        include_str!("../../../config/profiles/default.toml"),
    ),
    (
        "dhanscalper",
        include_str!("../../../config/profiles/dhanscalper.toml"),
    ),
    (
        "trading-system",
        include_str!("../../../config/profiles/trading-system.toml"),
    ),
    (
        "tradingboost",
        include_str!("../../../config/profiles/tradingboost.toml"),
    ),
];

/// A Redis type a profile output can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisType {
    Hash,
    String,
    List,
    /// Tick streams: entries with the deterministic `{ms}-{seq}` IDs.
    Stream,
}

/// How an output's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One hash field per output field (hashes only).
    Fields,
    /// One JSON object; `a.b` output names nest.
    Json,
    /// The one field's value as plain text (a string key mirroring a status).
    Value,
}

/// One output of a profile, as written in its file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    pub key: String,
    #[serde(rename = "type")]
    pub redis_type: RedisType,
    pub encoding: Encoding,
    pub db: u8,
    /// Seconds; every key tickwire writes expires.
    pub ttl: u64,
    /// Lists: entries kept (newest first). 0 for other types.
    #[serde(default)]
    pub cap: u64,
    /// `name` or `name=source`; the sources each kind offers are listed in
    /// [`OutputKind::sources`].
    pub fields: Vec<String>,
    /// PUBLISH the value on this channel template after each write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// Bars and indicators: only this bar interval (`1m`); every one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// A profile file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Put before every key of this profile (its namespace).
    #[serde(default)]
    pub namespace: String,
    /// `default` only: the layout of `[keys]` and `[databases]`.
    #[serde(default)]
    pub layout: Option<String>,
    #[serde(default)]
    pub tick_stream: Option<OutputConfig>,
    #[serde(default)]
    pub last_price: Option<OutputConfig>,
    #[serde(default)]
    pub bars: Option<OutputConfig>,
    #[serde(default)]
    pub indicators: Option<OutputConfig>,
    #[serde(default)]
    pub heartbeat: Option<OutputConfig>,
    #[serde(default)]
    pub feed_status: Option<OutputConfig>,
}

/// The kinds of output a profile can map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    TickStream,
    LastPrice,
    Bars,
    Indicators,
    Heartbeat,
    FeedStatus,
}

impl OutputKind {
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::TickStream => "tick_stream",
            OutputKind::LastPrice => "last_price",
            OutputKind::Bars => "bars",
            OutputKind::Indicators => "indicators",
            OutputKind::Heartbeat => "heartbeat",
            OutputKind::FeedStatus => "feed_status",
        }
    }

    /// The values a field of this kind can take.
    pub fn sources(self) -> &'static [&'static str] {
        match self {
            OutputKind::TickStream | OutputKind::LastPrice => &[
                "ltp",
                "qty",
                "ts",
                "ts_iso",
                "vol",
                "atp",
                "bid",
                "ask",
                "symbol",
                "exchange",
                "segment",
                "security_id",
                "day_open",
                "day_high",
                "day_low",
                "day_volume",
            ],
            OutputKind::Indicators => &[
                "rsi",
                "macd",
                "macd_signal",
                "macd_hist",
                "bb_upper",
                "bb_middle",
                "bb_lower",
                "bb_width",
                "ts",
                "ts_iso",
                "symbol",
            ],
            OutputKind::Bars => &[
                "open", "high", "low", "close", "volume", "trades", "open_ms", "symbol",
            ],
            OutputKind::Heartbeat => &[
                "pid",
                "version",
                "started_at",
                "last_tick_ts",
                "ticks_total",
                "updated_at",
            ],
            OutputKind::FeedStatus => &["status"],
        }
    }

    /// Placeholders its key template may use.
    fn placeholders(self) -> &'static [&'static str] {
        match self {
            OutputKind::TickStream | OutputKind::LastPrice => {
                &["symbol", "exchange", "segment", "security_id"]
            }
            OutputKind::Bars => &[
                "symbol",
                "exchange",
                "segment",
                "security_id",
                "interval",
                "interval_minutes",
            ],
            OutputKind::Indicators => &["symbol", "exchange", "segment", "security_id", "interval"],
            OutputKind::Heartbeat => &["instance"],
            OutputKind::FeedStatus => &["feed", "exchange", "instance"],
        }
    }
}

/// A parsed output, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub key: KeyTemplate,
    pub redis_type: RedisType,
    pub encoding: Encoding,
    pub db: u8,
    pub ttl: u64,
    pub cap: u64,
    /// (output name, source).
    pub fields: Vec<(String, String)>,
    pub publish: Option<KeyTemplate>,
    /// Bars and indicators: only this interval's label.
    pub interval: Option<String>,
}

/// A selected profile other than `default`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub namespace: String,
    pub tick_stream: Option<Output>,
    pub last_price: Option<Output>,
    pub bars: Option<Output>,
    pub indicators: Option<Output>,
    pub heartbeat: Option<Output>,
    pub feed_status: Option<Output>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile {name:?}: known {known}, or a path to a profile file")]
    Unknown { name: String, known: String },
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("profile {name}: {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        name: String,
        errors: Vec<FieldError>,
    },
}

/// The selected profiles: whether the default layout is written, and the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    pub default_layout: bool,
    pub others: Vec<Profile>,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            default_layout: true,
            others: Vec::new(),
        }
    }
}

/// The placeholder naming the instrument in an output's key, its hash tag in
/// a cluster: `{symbol}`, or for a key without one (Dhan's layout)
/// `{security_id}`.
fn instrument_tag(key: &KeyTemplate) -> Option<&'static str> {
    ["symbol", "security_id"].into_iter().find(|p| key.uses(p))
}

impl Profiles {
    /// What a Redis Cluster refuses: an instrument's output whose key names
    /// no instrument (no `{symbol}`, nor a Dhan `{security_id}`), which would
    /// put every instrument in one slot.
    pub fn cluster_errors(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for p in &self.others {
            for (kind, out) in [
                (OutputKind::TickStream, &p.tick_stream),
                (OutputKind::LastPrice, &p.last_price),
                (OutputKind::Bars, &p.bars),
                (OutputKind::Indicators, &p.indicators),
            ] {
                if let Some(out) = out.as_ref().filter(|o| instrument_tag(&o.key).is_none()) {
                    errors.push(FieldError::new(
                        format!("--profile {}: {}.key", p.name, kind.name()),
                        format!(
                            "{:?} has no {{symbol}}: with a Redis Cluster every key of an \
                             instrument carries its symbol (or security_id) as hash tag",
                            out.key.as_str()
                        ),
                    ));
                }
            }
        }
        errors
    }

    /// The profiles' keys as `place` renders them: in cluster mode the
    /// symbol (or feed) is the hash tag; with an instance, the heartbeat and
    /// feed status keys carry its name.
    pub fn placed(mut self, place: crate::config::keys::Placement<'_>) -> Profiles {
        for p in &mut self.others {
            for (instrument, out) in [
                (true, &mut p.tick_stream),
                (true, &mut p.last_price),
                (true, &mut p.bars),
                (true, &mut p.indicators),
                (false, &mut p.feed_status),
                (false, &mut p.heartbeat),
            ] {
                let Some(out) = out.as_mut() else { continue };
                let mut key = std::mem::take(&mut out.key);
                let tag = match instrument {
                    true => instrument_tag(&key),
                    false => Some("feed"),
                };
                if let Some(instance) = place.instance.filter(|_| !instrument) {
                    key = key.for_instance(instance, place.cluster);
                }
                if let Some(tag) = tag.filter(|_| place.cluster) {
                    key = key.hash_tagged(tag);
                }
                out.key = key;
            }
        }
        self
    }

    /// Loads the named profiles (built-in names or paths to profile files).
    /// No name at all means `default`.
    pub fn load(names: &[String]) -> Result<Profiles, ProfileError> {
        if names.is_empty() {
            return Ok(Profiles::default());
        }
        let mut out = Profiles {
            default_layout: false,
            others: Vec::new(),
        };
        for name in names {
            let (label, text) = match BUILT_IN.iter().find(|(n, _)| n == name) {
                Some((n, t)) => (n.to_string(), t.to_string()),
                None if name.ends_with(".toml") => (
                    name.clone(),
                    std::fs::read_to_string(name).map_err(|source| ProfileError::Read {
                        path: name.clone(),
                        source,
                    })?,
                ),
                None => {
                    return Err(ProfileError::Unknown {
                        name: name.clone(),
                        known: BUILT_IN
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            };
            match parse(&label, &text)? {
                None => out.default_layout = true,
                Some(p) => out.others.push(p),
            }
        }
        Ok(out)
    }
}

/// Parses a profile file: `None` for the default layout.
pub fn parse(name: &str, text: &str) -> Result<Option<Profile>, ProfileError> {
    let invalid = |errors| ProfileError::Invalid {
        name: name.to_string(),
        errors,
    };
    let cfg: ProfileConfig = toml::from_str(text)
        .map_err(|e| invalid(vec![FieldError::new("profile", e.message().to_string())]))?;
    if let Some(layout) = &cfg.layout {
        if layout == "default" {
            return Ok(None);
        }
        return Err(invalid(vec![FieldError::new(
            "layout",
            format!("{layout:?}: only \"default\" is known"),
        )]));
    }
    let mut errors = Vec::new();
    let profile = Profile {
        name: name.to_string(),
        namespace: cfg.namespace.clone(),
        tick_stream: parse_output(&mut errors, OutputKind::TickStream, &cfg.tick_stream),
        last_price: parse_output(&mut errors, OutputKind::LastPrice, &cfg.last_price),
        bars: parse_output(&mut errors, OutputKind::Bars, &cfg.bars),
        indicators: parse_output(&mut errors, OutputKind::Indicators, &cfg.indicators),
        heartbeat: parse_output(&mut errors, OutputKind::Heartbeat, &cfg.heartbeat),
        feed_status: parse_output(&mut errors, OutputKind::FeedStatus, &cfg.feed_status),
    };
    if errors.is_empty() {
        Ok(Some(profile))
    } else {
        Err(invalid(errors))
    }
}

/// One output table of a profile (`[bars]`, ...), if present; its problems
/// go into `errors`.
fn parse_output(
    errors: &mut Vec<FieldError>,
    kind: OutputKind,
    o: &Option<OutputConfig>,
) -> Option<Output> {
    let o = o.as_ref()?;
    let at = |f: &str| format!("{}.{f}", kind.name());
    let key = match KeyTemplate::parse(&o.key, &[]) {
        Ok(k) => k,
        Err(e) => {
            errors.push(FieldError::new(at("key"), e.to_string()));
            return None;
        }
    };
    for p in key.placeholders() {
        if !kind.placeholders().contains(&p) {
            errors.push(FieldError::new(
                at("key"),
                format!(
                    "{{{p}}} is not available for {} (use {})",
                    kind.name(),
                    kind.placeholders().join(", ")
                ),
            ));
        }
    }
    if o.db > 15 {
        errors.push(FieldError::new(at("db"), format!("{} is not 0-15", o.db)));
    }
    if o.ttl == 0 {
        errors.push(FieldError::new(
            at("ttl"),
            "must be greater than 0: every key tickwire writes expires",
        ));
    }
    if (kind == OutputKind::TickStream) != (o.redis_type == RedisType::Stream) {
        errors.push(FieldError::new(
            at("type"),
            "tick_stream and only tick_stream is a stream",
        ));
    }
    match (o.redis_type, o.encoding) {
        (RedisType::Hash | RedisType::Stream, Encoding::Fields)
        | (RedisType::String, Encoding::Json | Encoding::Value)
        | (RedisType::List, Encoding::Json) => {}
        (t @ (RedisType::Hash | RedisType::Stream), e) => errors.push(FieldError::new(
            at("encoding"),
            format!("a {t:?} takes encoding = \"fields\" (got {e:?})"),
        )),
        (t, _) => errors.push(FieldError::new(
            at("encoding"),
            format!("a {t:?} holds JSON: use encoding = \"json\""),
        )),
    }
    if o.encoding == Encoding::Value && o.fields.len() != 1 {
        errors.push(FieldError::new(
            at("fields"),
            "encoding = \"value\" writes exactly one field",
        ));
    }
    if matches!(o.redis_type, RedisType::List | RedisType::Stream) && o.cap == 0 {
        errors.push(FieldError::new(
            at("cap"),
            "a list or stream needs a cap (entries kept)",
        ));
    }
    let mut fields = Vec::with_capacity(o.fields.len());
    for (i, f) in o.fields.iter().enumerate() {
        let (out, src) = f.split_once('=').unwrap_or((f.as_str(), f.as_str()));
        if !kind.sources().contains(&src) {
            errors.push(FieldError::new(
                format!("{}.fields[{i}]", kind.name()),
                format!(
                    "unknown source {src:?} (known: {})",
                    kind.sources().join(", ")
                ),
            ));
        }
        fields.push((out.to_string(), src.to_string()));
    }
    if fields.is_empty() {
        errors.push(FieldError::new(
            at("fields"),
            "must name at least one field",
        ));
    }
    // A list skips entries at or before its newest by this field, which
    // keeps resends and replays from adding them twice.
    if o.redis_type == RedisType::List
        && !fields
            .iter()
            .any(|(name, src)| src == "open_ms" && !name.contains('.'))
    {
        errors.push(FieldError::new(
            at("fields"),
            "a list needs a top-level field from open_ms (its entries' order)",
        ));
    }
    let publish = o
        .publish
        .as_ref()
        .and_then(|p| match KeyTemplate::parse(p, &[]) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(FieldError::new(at("publish"), e.to_string()));
                None
            }
        });
    if let Some(i) = &o.interval {
        if crate::bar::interval_ms(i).is_none() {
            errors.push(FieldError::new(
                at("interval"),
                format!("{i:?} is not an interval like 1m, 5m"),
            ));
        }
    }
    Some(Output {
        interval: o.interval.clone(),
        key,
        redis_type: o.redis_type,
        encoding: o.encoding,
        db: o.db,
        ttl: o.ttl,
        cap: o.cap,
        fields,
        publish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse() {
        for (name, text) in BUILT_IN {
            let p = parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.is_none(), *name == "default", "{name}");
        }
        let all: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
        let p = Profiles::load(&all).unwrap();
        assert!(p.default_layout);
        assert_eq!(p.others.len(), BUILT_IN.len() - 1);
        let only = Profiles::load(&["tradingboost".to_string()]).unwrap();
        assert!(!only.default_layout);
        assert!(Profiles::load(&[]).unwrap().default_layout);
    }

    #[test]
    fn every_bad_field_of_a_profile_is_named() {
        let text = r#"
            [last_price]
            key = "p:{symbol}:{interval}"
            type = "list"
            encoding = "fields"
            db = 22
            ttl = 0
            fields = ["ltp", "price=nope"]
        "#;
        let Err(ProfileError::Invalid { errors, .. }) = parse("x", text) else {
            panic!("accepted")
        };
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "last_price.cap",
                "last_price.db",
                "last_price.encoding",
                "last_price.fields",
                "last_price.fields[1]",
                "last_price.key",
                "last_price.ttl"
            ]
        );
        assert!(matches!(
            Profiles::load(&["nope".to_string()]),
            Err(ProfileError::Unknown { .. })
        ));
    }
}
