//! Live feed configuration: the `[[feeds]]` tables, the connection policy
//! (`[live]`) and the recorder (`[record]`).

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// One `[[feeds]]` table: a WebSocket connection and what it subscribes to.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Names the feed in `feed:{feed}:status`, `deadletter:{feed}` and recordings.
    pub name: String,
    /// binance, binance-futures, okx, dhan, tickwire.
    pub venue: String,
    /// The endpoint; the venue's public one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Binance `BTCUSDT`, OKX `BTC-USDT`, Dhan `NSE_EQ:1333` or
    /// `NSE_EQ:1333=RELIANCE` (segment, security id, the symbol its keys use).
    #[serde(default)]
    pub symbols: Vec<String>,
    /// The venue's channels (Binance trade/aggTrade/bookTicker, OKX
    /// trades/tickers, Dhan ticker/quote/full); the venue's default when empty.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Dhan only: what the packets' LTT counts from, `ist` (the default: the
    /// Indian wall clock written as if it were UTC) or `utc` (a true epoch).
    /// A replay of a recording decodes with the basis of the feed of the
    /// same name, so it must match the live feed that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ltt_basis: Option<String>,
    /// The venue's public REST endpoint its gaps are filled from (`http://`
    /// or `https://`); the venue's own when absent. Tests and proxies set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_url: Option<String>,
    /// Whether gaps in its trades are filled from the venue's history: on by
    /// default where the venue keeps one ([`crate::gap`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<bool>,
}

/// `[backfill]`: how gaps in a feed's trades are filled from the venue's
/// history ([`crate::gap`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackfillConfig {
    /// Trades fetched for one gap at most; the newest are fetched, the
    /// older ones recorded missing.
    pub max_trades: u64,
    /// History older than this (seconds before now) is not asked for.
    pub max_age_s: u64,
    /// A fill ends after this long with what it fetched; the instrument's
    /// live trades, held meanwhile, go on.
    pub timeout_s: u64,
    /// Bytes of live trades held per instrument while its gap is filled;
    /// beyond it the fill is given up (what it fetched so far is applied).
    pub max_waiting_bytes: u64,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            max_trades: 100_000,
            max_age_s: 3_600,
            timeout_s: 30,
            max_waiting_bytes: 64 << 20,
        }
    }
}

impl BackfillConfig {
    /// The fields out of range, every one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut range = |name: &str, v: u64, lo: u64, hi: u64| {
            if !(lo..=hi).contains(&v) {
                errors.push(FieldError::new(
                    format!("backfill.{name}"),
                    format!("must be {lo} to {hi} (got {v})"),
                ));
            }
        };
        range("max_trades", self.max_trades, 1, 10_000_000);
        range("max_age_s", self.max_age_s, 1, 7 * 86_400);
        range("timeout_s", self.timeout_s, 1, 3_600);
        range(
            "max_waiting_bytes",
            self.max_waiting_bytes,
            1 << 16,
            1 << 34,
        );
        errors
    }
}

/// `[live]`: how feed connections are kept up.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// TCP + TLS + WebSocket handshake must finish within this.
    pub connect_timeout_ms: u64,
    /// After this long without any frame (data, ping or pong) the connection
    /// is taken for dead and replaced.
    pub idle_timeout_ms: u64,
    /// After this long without a frame, send a ping (OKX: the text `ping`;
    /// others: a WebSocket ping) so a quiet but healthy socket answers.
    pub ping_interval_ms: u64,
    /// First reconnect delay; doubles per failed attempt up to the cap, each
    /// delay drawn at random from its upper half (jitter).
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Frames a feed holds while the parser is behind, before it drops
    /// (and counts) the excess. The socket is read all the while.
    pub max_backlog_frames: usize,
    /// Bytes of frame data a feed holds the same way, at most (a frame can be
    /// 16 MiB, so a frame count alone does not bound memory). At least 16 MiB.
    pub max_backlog_bytes: u64,
}

/// The largest WebSocket message a feed accepts; `live.max_backlog_bytes`
/// must hold one.
pub const MAX_FRAME_BYTES: u64 = 16 << 20;

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            idle_timeout_ms: 45_000,
            ping_interval_ms: 15_000,
            backoff_initial_ms: 250,
            backoff_max_ms: 30_000,
            max_backlog_frames: 1_000_000,
            max_backlog_bytes: 256 << 20,
        }
    }
}

/// `[spool]`: where a live feed's frames go once its in-memory backlog is
/// full (Redis down or slower than the feeds), to be handed on in arrival
/// order when the pipeline catches up, by this process or the next.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// One subdirectory per feed (`{dir}/{feed}/`), created when needed. A
    /// relative path is taken from the working directory.
    pub dir: std::path::PathBuf,
    /// Bytes all feeds' spools may hold together; beyond it frames are
    /// dropped (counted). 0 turns the spool off: a full backlog drops.
    pub max_bytes: u64,
    /// A new segment file is started after this many bytes; a segment is
    /// deleted once everything in it has been handed on.
    pub segment_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: "spool".into(),
            max_bytes: 8 << 30,
            segment_bytes: 64 << 20,
        }
    }
}

impl SpoolConfig {
    /// Whether frames are spooled at all.
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }
}

/// A spool segment's file extension while frames in it wait.
pub const SPOOL_SEGMENT_EXT: &str = "seg";
/// A spool segment read to its end, kept a while in case its last frames
/// never reached Redis.
pub const SPOOL_DONE_EXT: &str = "done";

/// The `[spool]` fields that are out of range, every one.
pub fn validate_spool(spool: &SpoolConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spool.dir.as_os_str().is_empty() {
        errors.push(FieldError::new("spool.dir", "must not be empty"));
    }
    if !(64 << 10..=1 << 30).contains(&spool.segment_bytes) {
        errors.push(FieldError::new(
            "spool.segment_bytes",
            format!(
                "must be between 65536 (64 KiB) and 1073741824 (1 GiB) (got {})",
                spool.segment_bytes
            ),
        ));
    }
    errors
}

/// `[record]`: raw frame recordings (`tickwire record`, `run --record DIR`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// Start a new file when the current one has this many bytes (uncompressed).
    pub rotate_bytes: u64,
    /// Also start a new file at each full UTC hour.
    pub rotate_hourly: bool,
    /// Frames are compressed and on disk at most this long after arrival.
    pub flush_ms: u64,
    /// zstd level, 1-19.
    pub zstd_level: i32,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            rotate_bytes: 1 << 30,
            rotate_hourly: true,
            flush_ms: 1_000,
            zstd_level: 3,
        }
    }
}

/// `[live]` and `[record]`: timeouts, backoff, backlog and file settings.
pub(crate) fn validate_live_and_record(
    live: &LiveConfig,
    record: &RecordConfig,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, field: &str, msg: String| {
        if !ok {
            errors.push(FieldError::new(field, msg));
        }
    };
    for (field, v) in [
        ("live.connect_timeout_ms", live.connect_timeout_ms),
        ("live.idle_timeout_ms", live.idle_timeout_ms),
        ("live.ping_interval_ms", live.ping_interval_ms),
        ("live.backoff_initial_ms", live.backoff_initial_ms),
        ("live.backoff_max_ms", live.backoff_max_ms),
        ("record.flush_ms", record.flush_ms),
    ] {
        check(v > 0, field, "must be greater than 0".into());
    }
    check(
        live.ping_interval_ms < live.idle_timeout_ms,
        "live.ping_interval_ms",
        format!(
            "must be shorter than live.idle_timeout_ms ({} >= {})",
            live.ping_interval_ms, live.idle_timeout_ms
        ),
    );
    check(
        live.backoff_initial_ms <= live.backoff_max_ms,
        "live.backoff_initial_ms",
        format!(
            "must not exceed live.backoff_max_ms ({} > {})",
            live.backoff_initial_ms, live.backoff_max_ms
        ),
    );
    check(
        live.max_backlog_frames > 0,
        "live.max_backlog_frames",
        "must be greater than 0".into(),
    );
    check(
        live.max_backlog_bytes >= MAX_FRAME_BYTES,
        "live.max_backlog_bytes",
        format!(
            "must be at least {MAX_FRAME_BYTES} (16 MiB, the largest frame; got {})",
            live.max_backlog_bytes
        ),
    );
    check(
        record.rotate_bytes >= 1024,
        "record.rotate_bytes",
        format!("must be at least 1024 (got {})", record.rotate_bytes),
    );
    check(
        (1..=19).contains(&record.zstd_level),
        "record.zstd_level",
        format!("must be between 1 and 19 (got {})", record.zstd_level),
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_bounds_are_validated() {
        let live = LiveConfig {
            max_backlog_frames: 0,
            max_backlog_bytes: 1 << 20,
            ..LiveConfig::default()
        };
        let errors: Vec<String> = validate_live_and_record(&live, &RecordConfig::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("live.max_backlog_frames"), "{errors:?}");
        assert!(
            errors[1].contains("live.max_backlog_bytes") && errors[1].contains("16 MiB"),
            "{errors:?}"
        );
    }
}
