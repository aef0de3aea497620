//! tickwire-writer owns Redis: the connections (one fred pool per logical DB),
//! the mapping of events to keys, stream IDs and commands, and the batched,
//! idempotent pipelines that write them. It never knows a venue's wire format.
//!
//! Inside, a dispatcher task gives every tick its deterministic stream ID and
//! routes it to a lane by symbol; each lane owns one connection per DB and
//! writes its batches in order, so the IDs of a stream always reach Redis in
//! increasing order while the lanes run side by side.
//!
//! The rooms, in the order an event passes them:
//! - `task`: the writer task: feeds the dispatcher, spawns and joins the lanes.
//! - `dispatch/`: routing; one file per output kind gives its events keys,
//!   stream IDs and a lane (`dispatch/mod.rs` holds the match over events).
//! - `plan/`: planning; one file per output kind turns a lane's writes of
//!   that kind into commands (`plan/mod.rs` lists the kinds in send order).
//! - `lane/`: transport: pipelines per DB, retry and resend, settling the
//!   replies, WAIT and cluster routing; `memo` remembers the TTLs set.
//!
//! Beside them: [`pools`] (connections), `checkpoints` (reading them back),
//! [`health`], [`heartbeat`], [`baseline`] and [`profile`] (key profiles).

pub mod baseline;
mod checkpoints;
mod dispatch;
pub mod health;
pub mod heartbeat;
pub mod inspect;
mod lane;
mod memo;
mod plan;
pub mod pools;
pub mod profile;
pub mod stats;
mod task;

/// The maps the dispatcher keys by instrument, key or name.
type FastMap<K, V> = foldhash::HashMap<K, V>;

use std::time::Duration;

use tickwire_core::{Config, Db};

pub use checkpoints::{checkpoint_key, load_checkpoints};
pub use lane::is_noperm;
pub use pools::RedisPools;
pub use stats::{DbStats, WriterProgress, WriterStats};
pub use task::{run, run_with, WriterOptions};
pub use tickwire_core::ids::{self, StreamIdSeq};

/// The Lua engine's scripts, as in `lua/`.
pub const LUA_BAR_INDICATORS: &str = include_str!("../../../lua/bar_indicators.lua");
pub const LUA_VWAP: &str = include_str!("../../../lua/vwap.lua");
pub const LUA_VOLUME_ALERT: &str = include_str!("../../../lua/volume_alert.lua");
pub const LUA_PROFILE_WRITE: &str = include_str!("../../../lua/profile_write.lua");
pub const LUA_TICK_APPEND: &str = include_str!("../../../lua/tick_append.lua");

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("invalid Redis URL {url}: {source}")]
    Url {
        url: String,
        source: fred::error::Error,
    },
    #[error("cannot connect to Redis at {url} (db {db}): {source}")]
    Connect {
        url: String,
        db: u8,
        source: fred::error::Error,
    },
    #[error("{last}; gave up after {attempts} attempts in {secs:.1} s (redis.reconnect_max_attempts = {limit}{})", if *limit == 0 { ", stopped" } else { "" })]
    GaveUpConnecting {
        attempts: u32,
        secs: f64,
        limit: u32,
        last: Box<WriterError>,
    },
    #[error("cannot set up TLS for Redis at {url}: {message}")]
    Tls { url: String, message: String },
    /// A `rediss://` handshake that failed; not worth retrying.
    #[error("refused TLS with Redis at {url}: {cause} ({source})")]
    TlsHandshake {
        url: String,
        cause: String,
        source: fred::error::Error,
    },
    #[error("no connection pool for db {0}")]
    NoPool(u8),
    /// A batch still failing after `writer.max_retries`: `waited` is from
    /// its first attempt to giving up, `url` without its password.
    #[error(
        "Redis at {url} unreachable for {} (writer.max_retries = {max_retries}; last error: {source})",
        human_duration(*waited)
    )]
    Exhausted {
        url: String,
        waited: Duration,
        max_retries: u32,
        source: fred::error::Error,
    },
    /// Redis' ACL refused a command (NOPERM): final, not retried.
    #[error(
        "Redis at {url} refused {command}: {detail} (the user needs the ACL line of \
         docs/operating.md, \"Least privilege\")"
    )]
    Permission {
        url: String,
        command: String,
        detail: String,
    },
    #[error("cannot load the Lua scripts into Redis: {0}")]
    Script(fred::error::Error),
    #[error("a writer lane stopped: {0}")]
    Lane(String),
    /// Two exchanges' instruments would write the same keys.
    #[error("refused: {0}")]
    VenueCollision(String),
    #[error("cannot read which exchange a last-price hash belongs to: {0}")]
    Owner(fred::error::Error),
    #[error("cannot read the instruments' checkpoints: {0}")]
    Checkpoint(fred::error::Error),
    #[error("cannot read dead-letter stream {key}: {source}")]
    DeadLetters {
        key: String,
        source: fred::error::Error,
    },
}

impl WriterError {
    /// Trying again cannot help: the ACL refused a command, or a `rediss://`
    /// server's certificate (or ours) was refused. A start-up that waits for
    /// Redis stops at once on these instead of retrying.
    pub fn is_final(&self) -> bool {
        match self {
            WriterError::Permission { .. } | WriterError::Tls { .. } | WriterError::Url { .. } => {
                true
            }
            WriterError::TlsHandshake { source, .. } => {
                !matches!(source.kind(), fred::error::ErrorKind::Timeout)
            }
            WriterError::Connect { source, .. } | WriterError::Script(source) => is_noperm(source),
            _ => false,
        }
    }
}

/// `5 min 2 s`, `1 h 3 min`, `4.2 s`: a wait as an operator reads it.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{:.1} s", d.as_secs_f64()),
        60..=3_599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3_600, secs % 3_600 / 60),
    }
}

/// A writer run that stopped on an error, with what it had written before
/// (the summary of a run that gave up still says what landed).
#[derive(Debug)]
pub struct WriterFailure {
    pub error: WriterError,
    pub stats: WriterStats,
}

impl From<WriterError> for WriterFailure {
    fn from(error: WriterError) -> Self {
        WriterFailure {
            error,
            stats: WriterStats::default(),
        }
    }
}

/// The logical DBs the writer writes to under `config` (connect these).
pub fn writer_dbs(config: &Config) -> Vec<u8> {
    let d = &config.databases;
    let mut dbs: Vec<u8> = [
        Db::System,
        Db::Prices,
        Db::Premarket,
        Db::ContinuousMarket,
        Db::CumulativeVolume,
        Db::Alerts,
        Db::Microstructure,
    ]
    .iter()
    .map(|p| d.get(*p))
    .collect();
    // DBs the exchanges' phases route to.
    for ex in config.exchanges.values() {
        let named = ex
            .phases
            .iter()
            .map(|p| p.db.as_str())
            .chain([ex.outside.as_str()]);
        dbs.extend(named.filter_map(Db::from_name).map(|p| d.get(p)));
    }
    // DBs of the selected key profiles.
    for p in &config.profiles.others {
        for out in [
            &p.tick_stream,
            &p.last_price,
            &p.bars,
            &p.indicators,
            &p.heartbeat,
            &p.feed_status,
        ]
        .into_iter()
        .flatten()
        {
            dbs.push(out.db);
        }
    }
    dbs.sort_unstable();
    dbs.dedup();
    dbs
}
/// How long to wait before attempt `tries` + 1 of a Redis call that failed
/// for a transient reason: 100 ms doubling to 500 ms. Short, so a Redis that
/// is back is written to within half a second (an attempt against a Redis
/// still down waits for its reconnect or its command timeout anyway).
pub fn retry_backoff(tries: u32) -> Duration {
    Duration::from_millis((50u64 << tries.min(6)).min(500))
}

/// How often a Redis that answers `LOADING` is asked again (a PING).
const LOADING_POLL: Duration = Duration::from_millis(100);

/// Redis is up and answering but still loading its data set (AOF or RDB)
/// after a restart. fred connects during loading when it authenticates
/// (AUTH, SELECT and CLIENT are allowed then; its PING of a password-less
/// connection is not), so writes meet this reply for as long as the load
/// takes: seconds to minutes for a large data set.
pub fn is_loading(e: &fred::error::Error) -> bool {
    e.details().starts_with("LOADING")
}

/// Waits while Redis answers `LOADING`: a PING on `client` every 100 ms
/// until it answers anything else (PONG, or an error that is the caller's
/// to handle). Not bounded and not counted against `writer.max_retries`: a
/// loading Redis is reachable and every load ends; counting its replies as
/// failed attempts gave up on a Redis that was merely loading (20 tries at
/// 500 ms: about 10 s of loading), and backing off left the writer idle up
/// to 500 ms after the load ended. Logs every 5 s that it waits.
pub(crate) async fn wait_loaded(client: &fred::prelude::Client) {
    use fred::prelude::ClientLike;
    let started = std::time::Instant::now();
    let mut said = started;
    loop {
        match client.ping::<fred::types::Value>(None).await {
            Err(e) if is_loading(&e) => {
                if said.elapsed() >= Duration::from_secs(5) {
                    said = std::time::Instant::now();
                    tracing::warn!(
                        waited_s = started.elapsed().as_secs_f64(),
                        "Redis is still loading its data set; waiting"
                    );
                }
                tokio::time::sleep(LOADING_POLL).await;
            }
            _ => return,
        }
    }
}
