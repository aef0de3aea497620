//! `[keys]`: the key prefix and templates, and their compiled, placed form
//! ([`Keys`]) that every stage renders keys with.

use serde::{Deserialize, Serialize};

use crate::db::{Db, DbMap};
use crate::error::FieldError;
use crate::keys::{KeyTemplate, TemplateError};

/// `[keys]`: the key prefix and the key templates.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Put before every key, so a backtest can share a Redis with live (`--prefix`).
    pub prefix: String,
    pub tick_stream: String,
    pub last_price: String,
    pub bar_stream: String,
    /// The forming bar's latest state, beside its stream.
    pub bar_forming: String,
    pub indicator: String,
    /// The Lua engine's per-instrument state (never read by consumers).
    pub indicator_state: String,
    pub volume_bucket: String,
    pub volume_baseline: String,
    /// Per-session totals: cumulative volume, trades, first and last tick time.
    pub volume_session: String,
    /// The day's volume profile, one field per bucket (`HH:MM` -> volume): what
    /// `tickwire baseline` reads.
    pub volume_profile: String,
    /// Sorted set of an instrument's sessions with volume (score YYYYMMDD).
    pub volume_sessions: String,
    /// Set of the symbols with volume.
    pub volume_symbols: String,
    /// The volume-surge alerts stream.
    pub volume_alerts: String,
    /// Marks a bucket whose alert was sent (one per instrument and bucket).
    pub volume_alert_marker: String,
    /// A feed's latest order-book depth (microstructure DB).
    pub depth: String,
    pub heartbeat: String,
    pub feed_status: String,
    /// Reconnects of a feed since the process started.
    pub feed_reconnects: String,
    pub deadletter: String,
    /// A feed's gaps: one entry per run of trades it did not get live.
    pub gaps: String,
    /// tickwire's own per-instrument checkpoint (not for consumers).
    pub checkpoint: String,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            tick_stream: "ticks:{symbol}".into(),
            last_price: "price:{symbol}".into(),
            bar_stream: "bars:{interval}:{symbol}".into(),
            bar_forming: "bars:{interval}:{symbol}:forming".into(),
            indicator: "indicator:{name}:{symbol}".into(),
            indicator_state: "indicator:state:{symbol}".into(),
            volume_bucket: "volume:bucket:{symbol}:{session}:{HH}:{MM}".into(),
            volume_baseline: "volume:baseline:{symbol}:{HH}:{MM}".into(),
            volume_session: "volume:session:{symbol}:{session}".into(),
            volume_profile: "volume:profile:{symbol}:{session}".into(),
            volume_sessions: "volume:sessions:{symbol}".into(),
            volume_symbols: "volume:symbols".into(),
            volume_alerts: "alerts:volume_surge".into(),
            volume_alert_marker: "alert:sent:{symbol}:{session}:{HH}:{MM}".into(),
            depth: "depth:{symbol}".into(),
            heartbeat: "tickwire:heartbeat".into(),
            feed_status: "feed:{feed}:status".into(),
            feed_reconnects: "feed:{feed}:reconnects".into(),
            deadletter: "deadletter:{feed}".into(),
            gaps: "gaps:{feed}".into(),
            checkpoint: "tickwire:checkpoint:{exchange}:{symbol}".into(),
        }
    }
}

/// The parsed key templates, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    /// `keys.prefix` as configured.
    base: String,
    /// What goes before every key of each DB number: `keys.prefix`, and in
    /// cluster mode the DB's name and a colon.
    prefixes: Vec<String>,
    cluster: bool,
    databases: DbMap,
    pub tick_stream: KeyTemplate,
    pub last_price: KeyTemplate,
    pub bar_stream: KeyTemplate,
    pub bar_forming: KeyTemplate,
    pub indicator: KeyTemplate,
    pub indicator_state: KeyTemplate,
    pub volume_bucket: KeyTemplate,
    pub volume_baseline: KeyTemplate,
    pub volume_session: KeyTemplate,
    pub volume_profile: KeyTemplate,
    pub volume_sessions: KeyTemplate,
    pub volume_symbols: KeyTemplate,
    pub volume_alerts: KeyTemplate,
    pub volume_alert_marker: KeyTemplate,
    pub depth: KeyTemplate,
    pub heartbeat: KeyTemplate,
    pub feed_status: KeyTemplate,
    pub feed_reconnects: KeyTemplate,
    pub deadletter: KeyTemplate,
    pub gaps: KeyTemplate,
    pub checkpoint: KeyTemplate,
}

/// Where keys live: one Redis with logical DBs, or a Redis Cluster, where
/// each DB is a key namespace; and the process's name, if it has one.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub cluster: bool,
    pub instance: Option<&'a str>,
    pub databases: &'a DbMap,
}

/// The namespace of DB number `db` in cluster mode: the name of the first
/// purpose `[databases]` maps to it (`continuous_market`), `db{n}` for a
/// number no purpose has (a profile's own DB).
pub fn namespace_of(databases: &DbMap, db: u8) -> String {
    databases
        .names_of(db)
        .first()
        .map_or_else(|| format!("db{db}"), |n| (*n).to_string())
}

impl Keys {
    /// What goes before every key written to DB number `db`: `keys.prefix`,
    /// then in cluster mode the DB's namespace (`prices:`).
    pub fn prefix(&self, db: u8) -> &str {
        self.prefixes
            .get(usize::from(db))
            .map_or(self.base.as_str(), String::as_str)
    }

    /// [`prefix`](Self::prefix) of the DB `[databases]` gives `purpose`.
    pub fn prefix_of(&self, purpose: Db) -> &str {
        self.prefix(self.databases.get(purpose))
    }

    /// `keys.prefix` as configured (`--prefix`).
    pub fn base_prefix(&self) -> &str {
        &self.base
    }

    /// Whether the keys are placed for a Redis Cluster.
    pub fn cluster(&self) -> bool {
        self.cluster
    }
}

impl KeysConfig {
    /// Parses every template for one Redis and an unnamed process, naming
    /// each bad one.
    pub fn compile(&self) -> Result<Keys, Vec<FieldError>> {
        self.compile_for(Placement {
            cluster: false,
            instance: None,
            databases: &DbMap::default(),
        })
    }

    /// Parses every template, naming each bad one, and places them: in
    /// cluster mode every key of an instrument carries its symbol as hash tag
    /// (`ticks:{BTCUSDT}`) and a feed's keys the feed's name; the alert
    /// marker carries the alerts stream's name, so the alert script's two
    /// keys share a slot. With an instance, the process's own keys
    /// (heartbeat, feed status and reconnects, dead letters) carry its name.
    pub fn compile_for(&self, place: Placement<'_>) -> Result<Keys, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut one = |field: &str, src: &str, required: &[&'static str]| {
            KeyTemplate::parse(src, required).unwrap_or_else(|e: TemplateError| {
                errors.push(FieldError::new(format!("keys.{field}"), e.to_string()));
                KeyTemplate::default()
            })
        };
        let prefixes = (0..=15u8)
            .map(|db| match place.cluster {
                true => format!("{}{}:", self.prefix, namespace_of(place.databases, db)),
                false => self.prefix.clone(),
            })
            .collect();
        let keys = Keys {
            base: self.prefix.clone(),
            prefixes,
            cluster: place.cluster,
            databases: place.databases.clone(),
            tick_stream: one("tick_stream", &self.tick_stream, &["symbol"]),
            last_price: one("last_price", &self.last_price, &["symbol"]),
            bar_stream: one("bar_stream", &self.bar_stream, &["symbol", "interval"]),
            bar_forming: one("bar_forming", &self.bar_forming, &["symbol", "interval"]),
            indicator: one("indicator", &self.indicator, &["symbol", "name"]),
            indicator_state: one("indicator_state", &self.indicator_state, &["symbol"]),
            volume_bucket: one(
                "volume_bucket",
                &self.volume_bucket,
                &["symbol", "session", "HH", "MM"],
            ),
            volume_baseline: one(
                "volume_baseline",
                &self.volume_baseline,
                &["symbol", "HH", "MM"],
            ),
            volume_session: one(
                "volume_session",
                &self.volume_session,
                &["symbol", "session"],
            ),
            volume_profile: one(
                "volume_profile",
                &self.volume_profile,
                &["symbol", "session"],
            ),
            volume_sessions: one("volume_sessions", &self.volume_sessions, &["symbol"]),
            volume_symbols: one("volume_symbols", &self.volume_symbols, &[]),
            volume_alerts: one("volume_alerts", &self.volume_alerts, &[]),
            volume_alert_marker: one(
                "volume_alert_marker",
                &self.volume_alert_marker,
                &["symbol", "session", "HH", "MM"],
            ),
            depth: one("depth", &self.depth, &["symbol"]),
            heartbeat: one("heartbeat", &self.heartbeat, &[]),
            feed_status: one("feed_status", &self.feed_status, &["feed"]),
            feed_reconnects: one("feed_reconnects", &self.feed_reconnects, &["feed"]),
            deadletter: one("deadletter", &self.deadletter, &["feed"]),
            gaps: one("gaps", &self.gaps, &["feed"]),
            checkpoint: one("checkpoint", &self.checkpoint, &["symbol"]),
        };
        if place.cluster && (self.prefix.contains('{') || self.prefix.contains('}')) {
            errors.push(FieldError::new(
                "keys.prefix",
                "must not hold `{` or `}` with a Redis Cluster: the hash tag is the symbol's",
            ));
        }
        if errors.is_empty() {
            Ok(keys.placed(place))
        } else {
            Err(errors)
        }
    }
}

impl Keys {
    /// The templates as `place` renders them (see [`KeysConfig::compile_for`]).
    fn placed(mut self, place: Placement<'_>) -> Keys {
        if let Some(instance) = place.instance {
            for t in [
                &mut self.heartbeat,
                &mut self.feed_status,
                &mut self.feed_reconnects,
                &mut self.deadletter,
                &mut self.gaps,
            ] {
                *t = std::mem::take(t).for_instance(instance, place.cluster);
            }
        }
        if !place.cluster {
            return self;
        }
        let stream = self
            .volume_alerts
            .render(self.prefix(place.databases.alerts), |_| None);
        self.volume_alert_marker =
            std::mem::take(&mut self.volume_alert_marker).led_by(&format!("{{{stream}}}:"));
        for t in [
            &mut self.tick_stream,
            &mut self.last_price,
            &mut self.bar_stream,
            &mut self.bar_forming,
            &mut self.indicator,
            &mut self.indicator_state,
            &mut self.volume_bucket,
            &mut self.volume_baseline,
            &mut self.volume_session,
            &mut self.volume_profile,
            &mut self.volume_sessions,
            &mut self.depth,
            &mut self.checkpoint,
        ] {
            *t = std::mem::take(t).hash_tagged("symbol");
        }
        for t in [
            &mut self.feed_status,
            &mut self.feed_reconnects,
            &mut self.deadletter,
            &mut self.gaps,
        ] {
            *t = std::mem::take(t).hash_tagged("feed");
        }
        self
    }
}

impl Default for Keys {
    /// The default templates, for one Redis and an unnamed process.
    fn default() -> Self {
        // The default templates parse: config::tests::empty_file_is_the_defaults
        // loads them.
        KeysConfig::default()
            .compile()
            .expect("the default key templates parse")
    }
}
