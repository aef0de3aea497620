//! The smaller sections of the config file, each with its own checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bar::interval_ms;
use crate::db::Db;
use crate::error::{check, FieldError};

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

impl ProcessConfig {
    /// The instance name goes into key names: a plain word.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(instance) = &self.instance {
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
        errors
    }
}

impl TtlConfig {
    /// Every key expires; overrides name a known DB.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.default > 0,
            "ttl.default",
            "must be greater than 0: every key tickwire writes expires".into(),
        );
        for (name, secs) in &self.overrides {
            let field = format!("ttl.override.{name}");
            if Db::from_name(name).is_none() {
                let known: Vec<_> = Db::ALL.iter().map(|d| d.name()).collect();
                check(
                    &mut errors,
                    false,
                    &field,
                    format!("unknown DB name (known: {})", known.join(", ")),
                );
            }
            check(
                &mut errors,
                *secs > 0,
                &field,
                "must be greater than 0".into(),
            );
        }
        errors
    }
}

impl StreamsConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.maxlen > 0,
            "streams.maxlen",
            "must be greater than 0".into(),
        );
        check(
            &mut errors,
            self.deadletter_maxlen > 0,
            "streams.deadletter_maxlen",
            "must be greater than 0".into(),
        );
        check(
            &mut errors,
            (16..=65_536).contains(&self.deadletter_raw_bytes),
            "streams.deadletter_raw_bytes",
            format!(
                "must be between 16 and 65536 (got {})",
                self.deadletter_raw_bytes
            ),
        );
        errors
    }
}

impl WriterConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            (1..=100_000).contains(&self.batch_size),
            "writer.batch_size",
            format!("must be between 1 and 100000 (got {})", self.batch_size),
        );
        check(
            &mut errors,
            (1..=60_000).contains(&self.flush_interval_ms),
            "writer.flush_interval_ms",
            format!(
                "must be between 1 and 60000 (got {})",
                self.flush_interval_ms
            ),
        );
        check(
            &mut errors,
            (1..=65_536).contains(&self.channel_capacity),
            "writer.channel_capacity",
            format!(
                "must be between 1 and 65536 (got {})",
                self.channel_capacity
            ),
        );
        errors
    }
}

impl BarsConfig {
    /// At least one interval, each a length, no length twice.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            !self.intervals.is_empty(),
            "bars.intervals",
            "must name at least one interval".into(),
        );
        check(
            &mut errors,
            self.close_grace_ms <= 60_000,
            "bars.close_grace_ms",
            format!("must be at most 60000 (got {})", self.close_grace_ms),
        );
        for (i, label) in self.intervals.iter().enumerate() {
            check(
                &mut errors,
                interval_ms(label).is_some(),
                &format!("bars.intervals[{i}]"),
                format!("{label:?} is not an interval like 30s, 1m, 5m, 1h"),
            );
            // Two labels of one length (`1m`, `60s`) would build the same bars twice.
            let first = self.intervals[..i].iter().position(|other| {
                other == label
                    || (interval_ms(other).is_some() && interval_ms(other) == interval_ms(label))
            });
            if let Some(j) = first {
                check(
                    &mut errors,
                    false,
                    &format!("bars.intervals[{i}]"),
                    format!(
                        "{label:?} is the interval of bars.intervals[{j}] ({:?}) again",
                        self.intervals[j]
                    ),
                );
            }
        }
        errors
    }
}

impl IndicatorsConfig {
    /// The interval is one `bars` builds; periods in range.
    pub fn validate(&self, bars: &BarsConfig) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            bars.intervals.contains(&self.interval),
            "indicators.interval",
            format!(
                "{:?} must be one of bars.intervals {:?}",
                self.interval, bars.intervals
            ),
        );
        for (field, p) in [
            ("indicators.rsi_period", self.rsi_period),
            ("indicators.atr_period", self.atr_period),
        ] {
            check(
                &mut errors,
                (2..=1000).contains(&p),
                field,
                format!("must be between 2 and 1000 (got {p})"),
            );
        }
        errors
    }
}

impl VolumeConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let bucket = interval_ms(&self.bucket);
        check(
            &mut errors,
            matches!(bucket, Some(ms) if ms % 60_000 == 0 && ms <= 3_600_000),
            "volume.bucket",
            format!("{:?} must be whole minutes from 1m to 60m", self.bucket),
        );
        check(
            &mut errors,
            self.session_ttl > 0,
            "volume.session_ttl",
            "must be greater than 0".into(),
        );
        errors
    }
}

impl IngestConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            (1..=86_400_000).contains(&self.max_clock_skew_ms),
            "ingest.max_clock_skew_ms",
            format!(
                "{} is not from 1 to 86400000 (a day)",
                self.max_clock_skew_ms
            ),
        );
        errors
    }
}

impl AlertsConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.volume_ratio_threshold.is_finite() && self.volume_ratio_threshold > 0.0,
            "alerts.volume_ratio_threshold",
            format!(
                "must be a number greater than 0 (got {})",
                self.volume_ratio_threshold
            ),
        );
        check(
            &mut errors,
            self.maxlen > 0,
            "alerts.maxlen",
            "must be greater than 0".into(),
        );
        errors
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.listen.parse::<std::net::SocketAddr>().is_ok(),
            "metrics.listen",
            format!("{:?} is not host:port (like 127.0.0.1:9464)", self.listen),
        );
        errors
    }
}

impl LogConfig {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            ["text", "json"].contains(&self.format.as_str()),
            "log.format",
            format!("{:?} must be text or json", self.format),
        );
        check(
            &mut errors,
            ["error", "warn", "info", "debug", "trace"].contains(&self.level.as_str()),
            "log.level",
            format!("{:?} must be error, warn, info, debug or trace", self.level),
        );
        errors
    }
}

impl HeartbeatConfig {
    /// The heartbeat outlives its interval.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            (100..=60_000).contains(&self.interval_ms),
            "heartbeat.interval_ms",
            format!("must be between 100 and 60000 (got {})", self.interval_ms),
        );
        check(
            &mut errors,
            self.ttl_secs >= 1 && self.ttl_secs * 1000 > self.interval_ms,
            "heartbeat.ttl_secs",
            format!(
                "must be at least 1 and longer than heartbeat.interval_ms (got {})",
                self.ttl_secs
            ),
        );
        errors
    }
}
