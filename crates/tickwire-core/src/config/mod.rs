//! tickwire's configuration: the TOML file (`config/tickwire.toml`), its defaults
//! and its validation.
//!
//! Loading never stops at the first problem: unknown keys, values of the wrong
//! type and values out of range are all collected and reported together, each
//! with the dotted path of its field.

pub mod keys;
pub mod redis;
pub mod sections;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::venue::Venues;

pub use crate::bar::interval_ms;
pub use crate::db::{Db, DbMap};
pub use crate::error::{ConfigError, FieldError};
pub use crate::redact::redact_url;
pub use keys::{namespace_of, Keys, KeysConfig, Placement};
pub use redis::{RedisConfig, RedisTlsConfig};
pub use sections::{
    AlertsConfig, BarsConfig, Engine, HeartbeatConfig, IndicatorsConfig, IngestConfig, LogConfig,
    MetricsConfig, ProcessConfig, StreamsConfig, TtlConfig, VolumeConfig, WriterConfig,
};

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
    /// `[backfill]`: how gaps in the feeds' trades are filled.
    pub backfill: crate::feeds::BackfillConfig,
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
    /// The key templates of `[keys]`, compiled and placed once, when the
    /// file was validated: what every stage renders its keys with
    /// ([`Config::key_templates`]).
    #[serde(skip)]
    compiled_keys: Keys,
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
            backfill: Default::default(),
            metrics: Default::default(),
            log: Default::default(),
            heartbeat: Default::default(),
            ingest: Default::default(),
            process: Default::default(),
            profiles: Default::default(),
            compiled_keys: Keys::default(),
        }
    }
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
    /// `venues`: the registered venues its feeds may name
    /// (`tickwire_parse::VENUES`).
    pub fn load(path: &Path, overrides: &Overrides, venues: Venues) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, overrides, venues)
    }

    /// The built-in defaults (equal to `config/tickwire.toml`) with overrides applied.
    pub fn defaults(overrides: &Overrides) -> Result<Config, ConfigError> {
        // No feeds, so no venue to know.
        Self::from_toml("", overrides, Venues::new(&[]))
    }

    /// Parses, applies overrides, validates; every bad field is reported at once.
    pub fn from_toml(
        text: &str,
        overrides: &Overrides,
        venues: Venues,
    ) -> Result<Config, ConfigError> {
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
        let keys = config.keys.compile_for(config.placement());
        errors.extend(config.validate(&keys, venues));
        if let Ok(keys) = keys {
            config.compiled_keys = keys;
        }
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

    /// The key templates, parsed and placed (see [`KeysConfig::compile_for`])
    /// when this config was loaded. They follow `[keys]`, `[redis]`,
    /// `[databases]` and `[process]` as loaded: a config with other keys is
    /// loaded anew (`--prefix` is an [`Overrides`] field), not edited.
    pub fn key_templates(&self) -> &Keys {
        &self.compiled_keys
    }

    /// Range and consistency checks, section by section; returns every
    /// problem found. `keys`: the templates compiled, or their problems.
    fn validate(&self, keys: &Result<Keys, Vec<FieldError>>, venues: Venues) -> Vec<FieldError> {
        let mut errors = self.process.validate();
        if self.redis.is_cluster() {
            errors.extend(self.profiles.cluster_errors());
        }
        errors.extend(self.redis.validate());
        errors.extend(self.databases.validate());
        errors.extend(self.ttl.validate());
        errors.extend(self.streams.validate());
        errors.extend(self.writer.validate());
        errors.extend(self.bars.validate());
        errors.extend(self.indicators.validate(&self.bars));
        errors.extend(self.volume.validate());
        errors.extend(self.ingest.validate());
        errors.extend(self.alerts.validate());
        if let Err(bad) = crate::session::Calendar::from_config(&self.exchanges) {
            errors.extend(bad);
        }
        match keys {
            Ok(keys) => errors.extend(crate::collisions::feed_collisions(
                &self.feeds,
                keys,
                venues,
            )),
            Err(bad) => errors.extend(bad.iter().cloned()),
        }
        errors.extend(venues.check_feeds(&self.feeds));
        errors.extend(crate::feeds::validate_live_and_record(
            &self.live,
            &self.record,
        ));
        errors.extend(crate::feeds::validate_spool(&self.spool));
        errors.extend(self.backfill.validate());
        errors.extend(self.metrics.validate());
        errors.extend(self.log.validate());
        errors.extend(self.heartbeat.validate());
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
