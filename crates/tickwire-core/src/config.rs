//! tickwire's configuration: the TOML file (`config/tickwire.toml`), its defaults
//! and its validation.
//!
//! Loading never stops at the first problem: unknown keys, values of the wrong
//! type and values out of range are all collected and reported together, each
//! with the dotted path of its field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::{KeyTemplate, TemplateError};

/// The logical databases tickwire knows by purpose (the operations guide's DB map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Db {
    System,
    Prices,
    Premarket,
    ContinuousMarket,
    CumulativeVolume,
    Alerts,
    Microstructure,
    Patterns,
    News,
    Metrics,
}

impl Db {
    pub const ALL: [Db; 10] = [
        Db::System,
        Db::Prices,
        Db::Premarket,
        Db::ContinuousMarket,
        Db::CumulativeVolume,
        Db::Alerts,
        Db::Microstructure,
        Db::Patterns,
        Db::News,
        Db::Metrics,
    ];

    /// The name used in the config file and in output.
    pub fn name(self) -> &'static str {
        match self {
            Db::System => "system",
            Db::Prices => "prices",
            Db::Premarket => "premarket",
            Db::ContinuousMarket => "continuous_market",
            Db::CumulativeVolume => "cumulative_volume",
            Db::Alerts => "alerts",
            Db::Microstructure => "microstructure",
            Db::Patterns => "patterns",
            Db::News => "news",
            Db::Metrics => "metrics",
        }
    }

    pub fn from_name(name: &str) -> Option<Db> {
        Db::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub redis: RedisConfig,
    pub databases: DbMap,
    pub ttl: TtlConfig,
    pub streams: StreamsConfig,
    pub keys: KeysConfig,
    pub writer: WriterConfig,
    pub bars: BarsConfig,
    pub indicators: IndicatorsConfig,
    pub volume: VolumeConfig,
    pub alerts: AlertsConfig,
    /// Per exchange (any case): time zone and phases. A venue not named here
    /// trades around the clock on UTC days.
    pub exchanges: BTreeMap<String, crate::session::ExchangeConfig>,
    /// `[live]`: how feed connections are kept up.
    pub live: crate::feeds::LiveConfig,
    /// `[record]`: raw frame recordings.
    pub record: crate::feeds::RecordConfig,
    /// `[spool]`: live frames kept on disk while the pipeline is behind.
    pub spool: crate::feeds::SpoolConfig,
    /// `[[feeds]]`: the WebSocket feeds `tickwire run` connects to.
    pub feeds: Vec<crate::feeds::FeedConfig>,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `[log]`: log format and level.
    pub log: LogConfig,
    /// `[heartbeat]`: the liveness hash in the system DB.
    pub heartbeat: HeartbeatConfig,
    /// `[ingest]`: what the parsers accept.
    pub ingest: IngestConfig,
    /// `[process]`: the process's name among several.
    pub process: ProcessConfig,
    /// The key profiles selected on the command line (`--profile`), not in
    /// the file: the default layout unless told otherwise.
    #[serde(skip)]
    pub profiles: crate::profiles::Profiles,
}

/// `[metrics]`: Prometheus `/metrics` over HTTP while `run` or `replay` runs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// `host:port`; loopback by default.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// `[log]`: where log lines go (standard error) and how they look.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json` (one object per line).
    pub format: String,
    /// error, warn, info, debug or trace; `RUST_LOG` overrides it.
    pub level: String,
    /// `replay` with standard error not a terminal: a progress line this
    /// often (0: none). On a terminal it shows a progress bar instead.
    pub progress_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "warn".into(),
            progress_interval_ms: 5_000,
        }
    }
}

/// `[heartbeat]`: `tickwire:heartbeat` in the system DB, refreshed while
/// `run` or `replay` runs; its short TTL makes a dead process disappear.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    pub interval_ms: u64,
    pub ttl_secs: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            ttl_secs: 5,
        }
    }
}

/// `[alerts]`: volume-surge alerts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// An instrument's bucket volume over its baseline average at or above
    /// this appends one alert for that bucket.
    pub volume_ratio_threshold: f64,
    /// `MAXLEN ~` of the alerts stream.
    pub maxlen: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            volume_ratio_threshold: 3.0,
            maxlen: 10_000,
        }
    }
}

/// `[volume]`: time-bucketed volume.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// Bucket width, whole minutes (`1m`, `5m`, ...), by exchange-local time.
    pub bucket: String,
    /// Expiry of the per-session totals hash, seconds.
    pub session_ttl: u64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            bucket: "1m".into(),
            session_ttl: 86_400,
        }
    }
}

/// `[bars]`: the bar intervals built for every instrument.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BarsConfig {
    /// `30s`, `1m`, `5m`, `1h`, ... (several at once).
    pub intervals: Vec<String>,
    /// Live runs: a forming bar closes by the clock once its interval (or
    /// its exchange phase) has ended plus this, even when its instrument
    /// trades no more; a trade arriving later than that counts in the next bar.
    pub close_grace_ms: u64,
}

impl Default for BarsConfig {
    fn default() -> Self {
        Self {
            intervals: vec!["1m".into()],
            close_grace_ms: 500,
        }
    }
}

/// Which engine computes the indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// In process, in Rust.
    Inline,
    /// Lua scripts in Redis (EVALSHA), state kept in Redis.
    Lua,
}

/// `[indicators]`: RSI and ATR on closed bars of one interval, VWAP per tick.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndicatorsConfig {
    pub engine: Engine,
    /// The bar interval RSI and ATR are computed on; one of `bars.intervals`.
    pub interval: String,
    pub rsi_period: u32,
    pub atr_period: u32,
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        Self {
            engine: Engine::Inline,
            interval: "1m".into(),
            rsi_period: 14,
            atr_period: 14,
        }
    }
}

/// Length of a bar interval label in ms: `<n>s`, `<n>m`, `<n>h`, `<n>d` with
/// n > 0; `None` for anything else.
pub fn interval_ms(label: &str) -> Option<i64> {
    let unit = label.chars().last()?;
    let n: i64 = label[..label.len() - unit.len_utf8()].parse().ok()?;
    let per = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(per)).flatten()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            redis: RedisConfig::default(),
            databases: DbMap::default(),
            ttl: TtlConfig::default(),
            streams: StreamsConfig::default(),
            keys: KeysConfig::default(),
            writer: WriterConfig::default(),
            bars: BarsConfig::default(),
            indicators: IndicatorsConfig::default(),
            volume: VolumeConfig::default(),
            alerts: AlertsConfig::default(),
            exchanges: crate::session::default_exchanges(),
            live: Default::default(),
            record: Default::default(),
            spool: Default::default(),
            feeds: Vec::new(),
            metrics: Default::default(),
            log: Default::default(),
            heartbeat: Default::default(),
            ingest: Default::default(),
            process: Default::default(),
            profiles: Default::default(),
        }
    }
}

/// `[ingest]`: what the parsers accept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// How far a trade's exchange time may lie after its receive time (or
    /// the clock, for inputs without one) before it is dead-lettered as
    /// `implausible_time`.
    pub max_clock_skew_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_clock_skew_ms: 60_000,
        }
    }
}

/// `[redis]`: where to write and how the connections behave.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port` or `rediss://` for TLS. Any DB path
    /// in the URL is ignored: each logical DB gets its own pool.
    pub url: String,
    /// Connections per logical DB; also the number of writer lanes.
    pub pool_size: usize,
    pub connect_timeout_ms: u64,
    /// Every command times out after this (fred's default is never).
    pub command_timeout_ms: u64,
    /// Reconnect backoff cap (exponential from 100 ms).
    pub reconnect_max_delay_ms: u64,
    /// 0 = keep trying for ever.
    pub reconnect_max_attempts: u32,
    /// A Redis Cluster at `url` (also selected by a `redis-cluster://` URL):
    /// the logical DBs become key namespaces (`prices:price:{BTCUSDT}`).
    pub cluster: bool,
    /// Cluster only: a batch counts as written once this many replicas of
    /// each primary it touched have it (WAIT), so a primary's failure loses
    /// nothing acknowledged; a batch whose WAIT fails is sent again. 0: not
    /// waited for.
    pub wait_replicas: u32,
    /// Cluster only: how long WAIT waits; a batch whose replicas did not
    /// answer in time counts as written, with a warning. A primary without a
    /// live replica (a promoted one) is not waited on.
    pub wait_timeout_ms: u64,
    /// `[redis.tls]`: the CA and client certificate of a `rediss://` URL.
    /// Without it a `rediss://` URL verifies the server against the system's
    /// certificate store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RedisTlsConfig>,
}

/// `[redis.tls]`: how a `rediss://` connection is verified (rustls, ring).
/// Paths are relative to the working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisTlsConfig {
    /// PEM file of the CA certificate(s) the server's certificate must chain
    /// to; absent = the system's certificate store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (`tls-auth-clients yes`);
    /// needs `key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry; absent = the URL's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            pool_size: 4,
            connect_timeout_ms: 5_000,
            command_timeout_ms: 10_000,
            reconnect_max_delay_ms: 500,
            reconnect_max_attempts: 0,
            cluster: false,
            wait_replicas: 1,
            wait_timeout_ms: 1_000,
            tls: None,
        }
    }
}

/// The URL schemes fred takes: (scheme, TLS, cluster).
const URL_SCHEMES: [(&str, bool, bool); 8] = [
    ("redis://", false, false),
    ("rediss://", true, false),
    ("valkey://", false, false),
    ("valkeys://", true, false),
    ("redis-cluster://", false, true),
    ("rediss-cluster://", true, true),
    ("valkey-cluster://", false, true),
    ("valkeys-cluster://", true, true),
];

impl RedisConfig {
    /// The URL's scheme: (TLS, cluster); `None` for one fred does not take.
    fn scheme(&self) -> Option<(bool, bool)> {
        URL_SCHEMES
            .iter()
            .find(|(s, _, _)| self.url.starts_with(s))
            .map(|(_, tls, cluster)| (*tls, *cluster))
    }

    /// Whether the URL asks for TLS (`rediss://`, `valkeys://`, and their
    /// `-cluster` forms).
    pub fn uses_tls(&self) -> bool {
        self.scheme().is_some_and(|(tls, _)| tls)
    }

    /// Whether the writes go to a Redis Cluster: `redis.cluster = true` or a
    /// `redis-cluster://` URL (fred's scheme; `rediss-cluster://` with TLS).
    pub fn is_cluster(&self) -> bool {
        self.cluster || self.scheme().is_some_and(|(_, cluster)| cluster)
    }
}

/// `[process]`: who this process is among several sharing one Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Names the process: its heartbeat, feed status and dead-letter keys
    /// carry the name (`tickwire:heartbeat:{instance}`), so processes with
    /// disjoint instruments share one Redis or cluster. Letters, digits,
    /// `-`, `_` and `.`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `[databases]`: the logical DB number of each purpose.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbMap {
    pub system: u8,
    pub prices: u8,
    pub premarket: u8,
    pub continuous_market: u8,
    pub cumulative_volume: u8,
    pub alerts: u8,
    pub microstructure: u8,
    pub patterns: u8,
    pub news: u8,
    pub metrics: u8,
}

impl Default for DbMap {
    fn default() -> Self {
        Self {
            system: 0,
            prices: 2,
            premarket: 3,
            continuous_market: 4,
            cumulative_volume: 5,
            alerts: 6,
            microstructure: 8,
            patterns: 10,
            news: 11,
            metrics: 13,
        }
    }
}

impl DbMap {
    /// The DB number for a purpose.
    pub fn get(&self, db: Db) -> u8 {
        match db {
            Db::System => self.system,
            Db::Prices => self.prices,
            Db::Premarket => self.premarket,
            Db::ContinuousMarket => self.continuous_market,
            Db::CumulativeVolume => self.cumulative_volume,
            Db::Alerts => self.alerts,
            Db::Microstructure => self.microstructure,
            Db::Patterns => self.patterns,
            Db::News => self.news,
            Db::Metrics => self.metrics,
        }
    }

    /// The purposes mapped to DB number `n`, for labelling output.
    pub fn names_of(&self, n: u8) -> Vec<&'static str> {
        Db::ALL
            .into_iter()
            .filter(|d| self.get(*d) == n)
            .map(Db::name)
            .collect()
    }
}

/// `[ttl]`: expiry of every key written, in seconds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtlConfig {
    pub default: u64,
    /// Per-DB overrides by purpose name: `[ttl.override] prices = 86400`.
    #[serde(rename = "override")]
    pub overrides: BTreeMap<String, u64>,
}

impl Default for TtlConfig {
    fn default() -> Self {
        Self {
            default: 57_600,
            overrides: BTreeMap::new(),
        }
    }
}

impl TtlConfig {
    pub fn secs(&self, db: Db) -> u64 {
        self.overrides
            .get(db.name())
            .copied()
            .unwrap_or(self.default)
    }
}

/// `[streams]`: stream caps and dead-letter shape.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// `MAXLEN ~` of every tick stream.
    pub maxlen: u64,
    /// `MAXLEN ~` of every dead-letter stream.
    pub deadletter_maxlen: u64,
    /// Raw text kept per dead-lettered frame, in bytes.
    pub deadletter_raw_bytes: usize,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            maxlen: 100_000,
            deadletter_maxlen: 10_000,
            deadletter_raw_bytes: 1_024,
        }
    }
}

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
            checkpoint: "tickwire:checkpoint:{exchange}:{symbol}".into(),
        }
    }
}

/// The parsed key templates, ready to render.
#[derive(Debug, Clone)]
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
        ] {
            *t = std::mem::take(t).hash_tagged("feed");
        }
        self
    }
}

/// `[writer]`: batching of the Redis writes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Ticks per pipeline (per writer lane).
    pub batch_size: usize,
    /// A partial batch is flushed after this long.
    pub flush_interval_ms: u64,
    /// Bounded capacity, in chunks of events, of the channel into the writer.
    pub channel_capacity: usize,
    /// Attempts per batch when Redis is unreachable or times out, before the
    /// run fails.
    pub max_retries: u32,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            flush_interval_ms: 20,
            channel_capacity: 64,
            max_retries: 20,
        }
    }
}

/// One bad field: its dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("invalid config ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
    Invalid(Vec<FieldError>),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// The bad fields, when the file parsed but its values did not pass.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid(f) => f,
            _ => &[],
        }
    }
}

/// `[redis.tls]`: TLS asked for by the URL, files that exist, a key with
/// every certificate and a certificate with every key.
fn validate_redis_tls(tls: &RedisTlsConfig, redis: &RedisConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !redis.uses_tls() {
        errors.push(FieldError::new(
            "redis.tls",
            format!(
                "is set but redis.url {:?} is not TLS: use rediss://",
                redact_url(&redis.url)
            ),
        ));
    }
    for (field, path) in [
        ("redis.tls.ca_file", &tls.ca_file),
        ("redis.tls.cert_file", &tls.cert_file),
        ("redis.tls.key_file", &tls.key_file),
    ] {
        if let Some(path) = path {
            if let Err(e) = std::fs::File::open(path) {
                errors.push(FieldError::new(
                    field,
                    format!("cannot read {}: {e}", path.display()),
                ));
            } else if !path.is_file() {
                errors.push(FieldError::new(
                    field,
                    format!("{} is not a file", path.display()),
                ));
            }
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => errors.push(FieldError::new(
            "redis.tls.key_file",
            "is required with redis.tls.cert_file (the client certificate's private key)",
        )),
        (None, Some(_)) => errors.push(FieldError::new(
            "redis.tls.cert_file",
            "is required with redis.tls.key_file (the client certificate)",
        )),
        (Some(_), Some(_)) if tls.ca_file.is_none() => errors.push(FieldError::new(
            "redis.tls.ca_file",
            "is required with a client certificate (the CA the server's certificate chains to)",
        )),
        _ => {}
    }
    if let Some(name) = &tls.server_name {
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            errors.push(FieldError::new(
                "redis.tls.server_name",
                format!("must be a DNS name or IP address (got {name:?})"),
            ));
        }
    }
    errors
}

/// Settings from the command line and environment that win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub redis_url: Option<String>,
    pub prefix: Option<String>,
    /// `--profile` names (built-in) or paths; none means `default`.
    pub profiles: Vec<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, overrides)
    }

    /// The built-in defaults (equal to `config/tickwire.toml`) with overrides applied.
    pub fn defaults(overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::from_toml("", overrides)
    }

    /// Parses, applies overrides, validates; every bad field is reported at once.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        let mut errors = Vec::new();
        // serde stops at the first bad field; take it out and go again, so that
        // every unknown key and badly typed value is named in one report.
        let mut config = None;
        for _ in 0..256 {
            match serde_path_to_error::deserialize::<_, Config>(table.clone()) {
                Ok(c) => {
                    config = Some(c);
                    break;
                }
                Err(e) => {
                    let path = e.path().to_string();
                    let message = e.inner().to_string();
                    let field = unknown_field_path(&path, &message).unwrap_or(path);
                    let removed = remove_path(&mut table, &field);
                    errors.push(FieldError::new(field, clean_message(&message)));
                    if !removed {
                        break;
                    }
                }
            }
        }
        let Some(mut config) = config else {
            return Err(ConfigError::Invalid(errors));
        };
        if let Some(url) = &overrides.redis_url {
            config.redis.url = url.clone();
        }
        if let Some(prefix) = &overrides.prefix {
            config.keys.prefix = prefix.clone();
        }
        match crate::profiles::Profiles::load(&overrides.profiles) {
            Ok(p) => config.profiles = p,
            Err(e) => errors.push(FieldError::new("--profile", e.to_string())),
        }
        errors.extend(config.validate());
        if errors.is_empty() {
            let profiles = std::mem::take(&mut config.profiles);
            config.profiles = profiles.placed(config.placement());
            Ok(config)
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    /// Where this config's keys live (see [`Placement`]).
    pub fn placement(&self) -> Placement<'_> {
        Placement {
            cluster: self.redis.is_cluster(),
            instance: self.process.instance.as_deref(),
            databases: &self.databases,
        }
    }

    /// The key templates, parsed and placed (see [`KeysConfig::compile_for`]).
    pub fn compile_keys(&self) -> Result<Keys, Vec<FieldError>> {
        self.keys.compile_for(self.placement())
    }

    /// Range and consistency checks; returns every problem found.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(instance) = &self.process.instance {
            if instance.is_empty()
                || !instance
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                errors.push(FieldError::new(
                    "process.instance",
                    format!("{instance:?}: use letters, digits, `-`, `_` and `.` (it goes into key names)"),
                ));
            }
        }
        if self.redis.is_cluster() {
            errors.extend(self.profiles.cluster_errors());
        }
        let mut check = |ok: bool, field: &str, msg: String| {
            if !ok {
                errors.push(FieldError::new(field, msg));
            }
        };
        let r = &self.redis;
        let scheme_ok = URL_SCHEMES
            .iter()
            .any(|(s, _, _)| r.url.starts_with(s) && r.url.len() > s.len());
        check(
            scheme_ok,
            "redis.url",
            format!(
                "must be redis://host:port, rediss://host:port or \
                 redis-cluster://host:port?node=host:port (got {:?})",
                redact_url(&r.url)
            ),
        );
        check(
            r.wait_replicas == 0 || (1..=60_000).contains(&r.wait_timeout_ms),
            "redis.wait_timeout_ms",
            format!(
                "must be between 1 and 60000 while redis.wait_replicas is set (got {})",
                r.wait_timeout_ms
            ),
        );
        check(
            (1..=64).contains(&r.pool_size),
            "redis.pool_size",
            format!("must be between 1 and 64 (got {})", r.pool_size),
        );
        for (field, v) in [
            ("redis.connect_timeout_ms", r.connect_timeout_ms),
            ("redis.command_timeout_ms", r.command_timeout_ms),
            ("redis.reconnect_max_delay_ms", r.reconnect_max_delay_ms),
        ] {
            check(v > 0, field, "must be greater than 0".into());
        }
        if let Some(tls) = &r.tls {
            errors.extend(validate_redis_tls(tls, r));
        }
        let mut check = |ok: bool, field: &str, msg: String| {
            if !ok {
                errors.push(FieldError::new(field, msg));
            }
        };
        for db in Db::ALL {
            let n = self.databases.get(db);
            check(
                n <= 15,
                &format!("databases.{}", db.name()),
                format!("must be a logical DB between 0 and 15 (got {n})"),
            );
        }
        check(
            self.ttl.default > 0,
            "ttl.default",
            "must be greater than 0: every key tickwire writes expires".into(),
        );
        for (name, secs) in &self.ttl.overrides {
            let field = format!("ttl.override.{name}");
            if Db::from_name(name).is_none() {
                let known: Vec<_> = Db::ALL.iter().map(|d| d.name()).collect();
                check(
                    false,
                    &field,
                    format!("unknown DB name (known: {})", known.join(", ")),
                );
            }
            check(*secs > 0, &field, "must be greater than 0".into());
        }
        let s = &self.streams;
        check(
            s.maxlen > 0,
            "streams.maxlen",
            "must be greater than 0".into(),
        );
        check(
            s.deadletter_maxlen > 0,
            "streams.deadletter_maxlen",
            "must be greater than 0".into(),
        );
        check(
            (16..=65_536).contains(&s.deadletter_raw_bytes),
            "streams.deadletter_raw_bytes",
            format!(
                "must be between 16 and 65536 (got {})",
                s.deadletter_raw_bytes
            ),
        );
        let w = &self.writer;
        check(
            (1..=100_000).contains(&w.batch_size),
            "writer.batch_size",
            format!("must be between 1 and 100000 (got {})", w.batch_size),
        );
        check(
            (1..=60_000).contains(&w.flush_interval_ms),
            "writer.flush_interval_ms",
            format!("must be between 1 and 60000 (got {})", w.flush_interval_ms),
        );
        check(
            (1..=65_536).contains(&w.channel_capacity),
            "writer.channel_capacity",
            format!("must be between 1 and 65536 (got {})", w.channel_capacity),
        );
        let b = &self.bars;
        check(
            !b.intervals.is_empty(),
            "bars.intervals",
            "must name at least one interval".into(),
        );
        check(
            b.close_grace_ms <= 60_000,
            "bars.close_grace_ms",
            format!("must be at most 60000 (got {})", b.close_grace_ms),
        );
        for (i, label) in b.intervals.iter().enumerate() {
            check(
                interval_ms(label).is_some(),
                &format!("bars.intervals[{i}]"),
                format!("{label:?} is not an interval like 30s, 1m, 5m, 1h"),
            );
            // Two labels of one length (`1m`, `60s`) would build the same bars twice.
            let first = b.intervals[..i].iter().position(|other| {
                other == label
                    || (interval_ms(other).is_some() && interval_ms(other) == interval_ms(label))
            });
            if let Some(j) = first {
                check(
                    false,
                    &format!("bars.intervals[{i}]"),
                    format!(
                        "{label:?} is the interval of bars.intervals[{j}] ({:?}) again",
                        b.intervals[j]
                    ),
                );
            }
        }
        let ind = &self.indicators;
        check(
            b.intervals.contains(&ind.interval),
            "indicators.interval",
            format!(
                "{:?} must be one of bars.intervals {:?}",
                ind.interval, b.intervals
            ),
        );
        for (field, p) in [
            ("indicators.rsi_period", ind.rsi_period),
            ("indicators.atr_period", ind.atr_period),
        ] {
            check(
                (2..=1000).contains(&p),
                field,
                format!("must be between 2 and 1000 (got {p})"),
            );
        }
        let bucket = interval_ms(&self.volume.bucket);
        check(
            matches!(bucket, Some(ms) if ms % 60_000 == 0 && ms <= 3_600_000),
            "volume.bucket",
            format!(
                "{:?} must be whole minutes from 1m to 60m",
                self.volume.bucket
            ),
        );
        check(
            self.volume.session_ttl > 0,
            "volume.session_ttl",
            "must be greater than 0".into(),
        );
        check(
            (1..=86_400_000).contains(&self.ingest.max_clock_skew_ms),
            "ingest.max_clock_skew_ms",
            format!(
                "{} is not from 1 to 86400000 (a day)",
                self.ingest.max_clock_skew_ms
            ),
        );
        let a = &self.alerts;
        check(
            a.volume_ratio_threshold.is_finite() && a.volume_ratio_threshold > 0.0,
            "alerts.volume_ratio_threshold",
            format!(
                "must be a number greater than 0 (got {})",
                a.volume_ratio_threshold
            ),
        );
        check(
            a.maxlen > 0,
            "alerts.maxlen",
            "must be greater than 0".into(),
        );
        if let Err(mut bad) = crate::session::Calendar::from_config(&self.exchanges) {
            errors.append(&mut bad);
        }
        match self.keys.compile_for(self.placement()) {
            Ok(keys) => errors.extend(crate::venues::feed_collisions(&self.feeds, &keys)),
            Err(mut bad) => errors.append(&mut bad),
        }
        errors.extend(crate::feeds::validate(
            &self.feeds,
            &self.live,
            &self.record,
        ));
        errors.extend(crate::feeds::validate_spool(&self.spool));
        let mut check = |ok: bool, field: &str, msg: String| {
            if !ok {
                errors.push(FieldError::new(field, msg));
            }
        };
        check(
            self.metrics.listen.parse::<std::net::SocketAddr>().is_ok(),
            "metrics.listen",
            format!(
                "{:?} is not host:port (like 127.0.0.1:9464)",
                self.metrics.listen
            ),
        );
        check(
            ["text", "json"].contains(&self.log.format.as_str()),
            "log.format",
            format!("{:?} must be text or json", self.log.format),
        );
        check(
            ["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()),
            "log.level",
            format!(
                "{:?} must be error, warn, info, debug or trace",
                self.log.level
            ),
        );
        let hb = &self.heartbeat;
        check(
            (100..=60_000).contains(&hb.interval_ms),
            "heartbeat.interval_ms",
            format!("must be between 100 and 60000 (got {})", hb.interval_ms),
        );
        check(
            hb.ttl_secs >= 1 && hb.ttl_secs * 1000 > hb.interval_ms,
            "heartbeat.ttl_secs",
            format!(
                "must be at least 1 and longer than heartbeat.interval_ms (got {})",
                hb.ttl_secs
            ),
        );
        errors
    }
}

/// For serde's "unknown field `x`" the path is the parent table; name the key itself.
fn unknown_field_path(path: &str, message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let name = &rest[..rest.find('`')?];
    if path == "." || path.is_empty() {
        Some(name.to_string())
    } else if path.ends_with(name) {
        Some(path.to_string())
    } else {
        Some(format!("{path}.{name}"))
    }
}

/// toml's messages can span lines; keep one line per field.
fn clean_message(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// Removes `a.b.c` (or `a[0].b`) from the table; false when nothing was there
/// to remove.
fn remove_path(table: &mut toml::Table, path: &str) -> bool {
    fn step<'t>(value: &'t mut toml::Value, part: &str) -> Option<&'t mut toml::Value> {
        let (name, index) = split_index(part);
        let mut v = value.as_table_mut()?.get_mut(name)?;
        if let Some(i) = index {
            v = v.as_array_mut()?.get_mut(i)?;
        }
        Some(v)
    }
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut root = toml::Value::Table(std::mem::take(table));
    let mut cur = Some(&mut root);
    for p in parts {
        cur = cur.and_then(|v| step(v, p));
    }
    let (name, index) = split_index(last);
    // A whole array element is not removed: the elements after it would shift
    // and later errors would name the wrong index.
    let removed = match (cur.and_then(|v| v.as_table_mut()), index) {
        (Some(t), None) => t.remove(name).is_some(),
        _ => false,
    };
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    removed
}

/// `feeds[2]` -> (`feeds`, Some(2)).
fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((name, i)) => match i.parse() {
            Ok(i) => (name, Some(i)),
            Err(_) => (part, None),
        },
        None => (part, None),
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!(
                "{}{}@{}",
                &url[..scheme_end + 3],
                masked,
                &url[scheme_end + 3 + at + 1..]
            )
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: ConfigError) -> Vec<String> {
        e.fields().iter().map(|f| f.field.clone()).collect()
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::defaults(&Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.databases.get(Db::ContinuousMarket), 4);
        assert_eq!(c.ttl.secs(Db::Prices), 57_600);
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let text = r#"
            bogus_top = 1
            [redis]
            url = "http://nope"
            pool_size = "two"
            [databases]
            prices = 22
            colour = "red"
            [ttl]
            default = 0
            [ttl.override]
            pricez = 10
            [writer]
            batch_size = 0
            [keys]
            tick_stream = "ticks:{sym}"
            [bars]
            intervals = ["1m", "5m", "60s"]
            [indicators]
            interval = "1m"
            [alerts]
            volume_ratio_threshold = nan
            maxlen = 0
            [exchanges.NSE]
            timezone = "Asia/Kolkata"
            phases = [
                { name = "pre_open", start = "09:00", end = "09:08", db = "premarket" },
                { name = "continuous", start = "09:05", end = "15:30", db = "continuous_market" },
            ]
        "#;
        let err = Config::from_toml(text, &Overrides::default()).unwrap_err();
        let overlap = err
            .fields()
            .iter()
            .find(|f| f.field == "exchanges.NSE.phases[1]")
            .map(|f| f.message.clone())
            .unwrap_or_default();
        assert!(
            overlap.contains("exchange NSE")
                && overlap.contains("\"pre_open\"")
                && overlap.contains("\"continuous\""),
            "{overlap}"
        );
        let mut got = fields(err);
        got.sort();
        assert_eq!(
            got,
            vec![
                "alerts.maxlen",
                "alerts.volume_ratio_threshold",
                "bars.intervals[2]",
                "bogus_top",
                "databases.colour",
                "databases.prices",
                "exchanges.NSE.phases[1]",
                "keys.tick_stream",
                "redis.pool_size",
                "redis.url",
                "ttl.default",
                "ttl.override.pricez",
                "writer.batch_size",
            ]
        );
    }

    #[test]
    fn every_bad_feed_field_is_named_at_once() {
        let text = r#"
            [live]
            idle_timeout_ms = 100
            ping_interval_ms = 500
            [record]
            zstd_level = 40
            [[feeds]]
            name = "a"
            venue = "binance"
            symbols = ["BTCUSDT"]
            channels = ["trade", "depth"]
            colour = "red"
            ltt_basis = "ist"
            [[feeds]]
            name = "a"
            venue = "kraken"
            [[feeds]]
            name = "d"
            venue = "dhan"
            url = "http://x"
            symbols = ["NSE_EQ:1333", "BSE:1", "NSE_EQ:x"]
            ltt_basis = "gmt"
            [[feeds]]
            name = "own"
            venue = "tickwire"
            [[feeds]]
            name = "ok"
            venue = "okx"
            symbols = ["BTC-USDT", "ETH-USDT", "BTC-USDT"]
            channels = ["tickers"]
        "#;
        let err = Config::from_toml(text, &Overrides::default()).unwrap_err();
        let mut got = fields(err);
        got.sort();
        assert_eq!(
            got,
            vec![
                "feeds[0].channels[1]",
                "feeds[0].colour",
                "feeds[0].ltt_basis",
                "feeds[1].name",
                "feeds[1].venue",
                "feeds[2].ltt_basis",
                "feeds[2].symbols[1]",
                "feeds[2].symbols[2]",
                "feeds[2].url",
                "feeds[3].url",
                "feeds[4].symbols[2]",
                "live.ping_interval_ms",
                "record.zstd_level",
            ]
        );
    }

    #[test]
    fn dhan_ltt_basis_defaults_to_ist_wall_clock() {
        use crate::feeds::LttBasis;
        let text = r#"
            [[feeds]]
            name = "a"
            venue = "dhan"
            symbols = ["NSE_EQ:1333"]
            [[feeds]]
            name = "b"
            venue = "dhan"
            symbols = ["NSE_EQ:1333"]
            ltt_basis = "utc"
        "#;
        let c = Config::from_toml(text, &Overrides::default()).unwrap();
        assert_eq!(c.feeds[0].ltt_basis(), LttBasis::IstWallClock);
        assert_eq!(c.feeds[1].ltt_basis(), LttBasis::Utc);
        let err = Config::from_toml(&text.replace("\"utc\"", "\"UTC+5\""), &Overrides::default())
            .unwrap_err();
        assert_eq!(err.fields().len(), 1);
        assert_eq!(err.fields()[0].field, "feeds[1].ltt_basis");
        assert!(
            err.fields()[0].message.contains("\"UTC+5\"")
                && err.fields()[0].message.contains("ist, utc"),
            "{}",
            err.fields()[0].message
        );
    }

    #[test]
    fn overrides_win_and_are_validated() {
        let o = Overrides {
            redis_url: Some("redis://10.0.0.1:7000".into()),
            prefix: Some("bt:".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[redis]\nurl = \"redis://x:1\"\n", &o).unwrap();
        assert_eq!(c.redis.url, "redis://10.0.0.1:7000");
        assert_eq!(c.keys.prefix, "bt:");
        let bad = Overrides {
            redis_url: Some("nonsense".into()),
            prefix: None,
            ..Default::default()
        };
        assert_eq!(
            fields(Config::from_toml("", &bad).unwrap_err()),
            vec!["redis.url"]
        );
    }

    #[test]
    fn ttl_override_applies_per_db() {
        let c = Config::from_toml("[ttl.override]\nprices = 60\n", &Overrides::default()).unwrap();
        assert_eq!(c.ttl.secs(Db::Prices), 60);
        assert_eq!(c.ttl.secs(Db::System), 57_600);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(matches!(
            Config::from_toml("[redis\n", &Overrides::default()),
            Err(ConfigError::Syntax(_))
        ));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@h:6379/2"),
            "redis://:***@h:6379/2"
        );
        assert_eq!(
            redact_url("redis://u:s3cret@h:6379"),
            "redis://u:***@h:6379"
        );
        assert_eq!(redact_url("redis://tok@h:6379"), "redis://***@h:6379");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
    }

    #[test]
    fn redis_tls_names_every_bad_field_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not checked here").unwrap();
        // A plaintext URL, a missing CA, a certificate without its key and an
        // unknown key: all four named in one report.
        let text = format!(
            "[redis]\nurl = \"redis://h:6379\"\n[redis.tls]\nca_file = {:?}\ncert_file = {:?}\ncolour = 1\n",
            dir.path().join("missing.pem"),
            ca,
        );
        let err = Config::from_toml(&text, &Overrides::default()).unwrap_err();
        let mut got = fields(err);
        got.sort();
        assert_eq!(
            got,
            vec![
                "redis.tls",
                "redis.tls.ca_file",
                "redis.tls.colour",
                "redis.tls.key_file"
            ]
        );
        // A key without its certificate names the certificate.
        let text = format!("[redis]\nurl = \"rediss://h:6379\"\n[redis.tls]\nkey_file = {ca:?}\n");
        let err = Config::from_toml(&text, &Overrides::default()).unwrap_err();
        assert_eq!(fields(err), vec!["redis.tls.cert_file"]);
        // A complete section over rediss:// loads.
        let text = format!(
            "[redis]\nurl = \"rediss://h:6379\"\n[redis.tls]\nca_file = {ca:?}\ncert_file = {ca:?}\nkey_file = {ca:?}\nserver_name = \"redis.internal\"\n"
        );
        let c = Config::from_toml(&text, &Overrides::default()).unwrap();
        let tls = c.redis.tls.expect("[redis.tls]");
        assert_eq!(tls.ca_file.as_deref(), Some(ca.as_path()));
        assert_eq!(tls.server_name.as_deref(), Some("redis.internal"));
    }

    fn placed(toml: &str, profiles: &[&str]) -> Result<Config, ConfigError> {
        Config::from_toml(
            toml,
            &Overrides {
                redis_url: Some("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001".into()),
                profiles: profiles.iter().map(|p| p.to_string()).collect(),
                prefix: Some("bt:".into()),
            },
        )
    }

    #[test]
    fn cluster_keys_carry_their_namespace_and_the_symbol_as_hash_tag() {
        let c = placed("", &[]).unwrap();
        let keys = c.compile_keys().unwrap();
        let inst = |n: &str| match n {
            "symbol" => Some("BTCUSDT"),
            "exchange" => Some("binance"),
            "session" => Some("2024-03-05"),
            "HH" => Some("10"),
            "MM" => Some("03"),
            _ => None,
        };
        let ticks = keys
            .tick_stream
            .render(keys.prefix_of(Db::ContinuousMarket), inst);
        assert_eq!(ticks, "bt:continuous_market:ticks:{BTCUSDT}");
        let pre = keys.tick_stream.render(keys.prefix_of(Db::Premarket), inst);
        assert_eq!(pre, "bt:premarket:ticks:{BTCUSDT}");
        let price = keys.last_price.render(keys.prefix_of(Db::Prices), inst);
        assert_eq!(price, "bt:prices:price:{BTCUSDT}");
        let bucket = keys
            .volume_bucket
            .render(keys.prefix_of(Db::CumulativeVolume), inst);
        assert_eq!(
            bucket,
            "bt:cumulative_volume:volume:bucket:{BTCUSDT}:2024-03-05:10:03"
        );
        let hb = keys.heartbeat.render(keys.prefix_of(Db::System), |_| None);
        assert_eq!(hb, "bt:system:tickwire:heartbeat");
        let feed = keys
            .feed_status
            .render_one(keys.prefix_of(Db::System), "feed", "binance");
        assert_eq!(feed, "bt:system:feed:{binance}:status");
        let alerts = keys
            .volume_alerts
            .render(keys.prefix_of(Db::Alerts), |_| None);
        assert_eq!(alerts, "bt:alerts:alerts:volume_surge");
        let marker = keys
            .volume_alert_marker
            .render(keys.prefix_of(Db::Alerts), inst);
        assert_eq!(
            marker, "bt:alerts:{bt:alerts:alerts:volume_surge}:alert:sent:BTCUSDT:2024-03-05:10:03",
            "the alert script's two keys share the stream's slot"
        );
        // One Redis: the same templates as written.
        let one = Config::from_toml("", &Overrides::default()).unwrap();
        let keys = one.compile_keys().unwrap();
        assert_eq!(
            keys.tick_stream.render(keys.prefix_of(Db::Premarket), inst),
            "ticks:BTCUSDT"
        );
    }

    #[test]
    fn an_instance_names_the_process_keys() {
        let c =
            Config::from_toml("[process]\ninstance = \"a-1\"\n", &Overrides::default()).unwrap();
        let keys = c.compile_keys().unwrap();
        let p = keys.prefix_of(Db::System);
        assert_eq!(keys.heartbeat.render(p, |_| None), "tickwire:heartbeat:a-1");
        assert_eq!(
            keys.feed_status.render_one(p, "feed", "okx"),
            "feed:okx:status:a-1"
        );
        assert_eq!(
            keys.deadletter.render_one(p, "feed", "okx"),
            "deadletter:okx:a-1"
        );
        let c = placed("[process]\ninstance = \"a-1\"\n", &[]).unwrap();
        let keys = c.compile_keys().unwrap();
        let p = keys.prefix_of(Db::System);
        assert_eq!(
            keys.heartbeat.render(p, |_| None),
            "bt:system:tickwire:heartbeat:{a-1}"
        );
        assert_eq!(
            keys.feed_status.render_one(p, "feed", "okx"),
            "bt:system:feed:{okx}:status:{a-1}"
        );
        let bad = Config::from_toml("[process]\ninstance = \"a b\"\n", &Overrides::default());
        let Err(ConfigError::Invalid(errors)) = bad else {
            panic!("a blank in the instance is refused")
        };
        assert!(
            errors.iter().any(|e| e.field == "process.instance"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_cluster_refuses_braces_in_the_prefix_and_profile_keys_naming_no_instrument() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("flat.toml");
        std::fs::write(
            &profile,
            "[last_price]\nkey = \"ltp\"\ntype = \"hash\"\nencoding = \"fields\"\n\
             db = 2\nttl = 60\nfields = [\"ltp\"]\n",
        )
        .unwrap();
        let Err(ConfigError::Invalid(errors)) = placed("", &[profile.to_str().unwrap()]) else {
            panic!("a flat profile key is refused on a cluster")
        };
        assert!(
            errors
                .iter()
                .any(|e| e.field.contains("last_price.key") && e.message.contains("{symbol}")),
            "{errors:?}"
        );
        let Err(ConfigError::Invalid(errors)) = Config::from_toml(
            "[redis]\ncluster = true\n[keys]\nprefix = \"{bt}:\"\n",
            &Overrides::default(),
        ) else {
            panic!("braces in the prefix are refused on a cluster")
        };
        assert!(
            errors.iter().any(|e| e.field == "keys.prefix"),
            "{errors:?}"
        );
        // Dhan's layout names its instruments by security id: that is the tag.
        let c = placed("", &["dhanscalper"]).unwrap();
        let ticks = c.profiles.others[0].last_price.as_ref().unwrap();
        assert_eq!(
            ticks.key.render("", |n| match n {
                "segment" => Some("NSE_EQ"),
                "security_id" => Some("2885"),
                _ => None,
            }),
            "ticks:NSE_EQ:{2885}"
        );
    }
}
