//! `[redis]`: where tickwire writes and how its connections behave.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{check, FieldError};
use crate::redact::redact_url;

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

impl RedisConfig {
    /// The URL's scheme, WAIT, pool and timeouts, and `[redis.tls]`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let scheme_ok = URL_SCHEMES
            .iter()
            .any(|(s, _, _)| self.url.starts_with(s) && self.url.len() > s.len());
        check(
            &mut errors,
            scheme_ok,
            "redis.url",
            format!(
                "must be redis://host:port, rediss://host:port or \
                 redis-cluster://host:port?node=host:port (got {:?})",
                redact_url(&self.url)
            ),
        );
        check(
            &mut errors,
            self.wait_replicas == 0 || (1..=60_000).contains(&self.wait_timeout_ms),
            "redis.wait_timeout_ms",
            format!(
                "must be between 1 and 60000 while redis.wait_replicas is set (got {})",
                self.wait_timeout_ms
            ),
        );
        check(
            &mut errors,
            (1..=64).contains(&self.pool_size),
            "redis.pool_size",
            format!("must be between 1 and 64 (got {})", self.pool_size),
        );
        for (field, v) in [
            ("redis.connect_timeout_ms", self.connect_timeout_ms),
            ("redis.command_timeout_ms", self.command_timeout_ms),
            ("redis.reconnect_max_delay_ms", self.reconnect_max_delay_ms),
        ] {
            check(&mut errors, v > 0, field, "must be greater than 0".into());
        }
        if let Some(tls) = &self.tls {
            errors.extend(validate_redis_tls(tls, self));
        }
        errors
    }
}
