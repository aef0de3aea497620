//! tickwire-writer owns Redis: the connections (one fred pool per logical DB),
//! the mapping of events to keys, stream IDs and commands, and the batched,
//! idempotent pipelines that write them. It never knows a venue's wire format.
//!
//! Inside, a dispatcher task gives every tick its deterministic stream ID and
//! routes it to a lane by symbol; each lane owns one connection per DB and
//! writes its batches in order, so the IDs of a stream always reach Redis in
//! increasing order while the lanes run side by side.

pub mod baseline;
pub mod health;
pub mod heartbeat;
pub mod inspect;
mod lane;
mod memo;
mod plan;
pub mod pools;
pub mod profile;
pub mod stats;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;

/// The dispatcher's maps, keyed by instrument handles and key names: SipHash
/// was 3% of a replay's instructions (eight lookups per tick).
type FastMap<K, V> = foldhash::HashMap<K, V>;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::HashesInterface;
use fred::types::Key;
use tickwire_core::config::Keys;
use tickwire_core::{session, ByAddress, Config, Db, Event, Instrument, Quote, Tick};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use lane::is_noperm;
pub use pools::RedisPools;
pub use stats::{DbStats, WriterProgress, WriterStats};
pub use tickwire_core::ids::{self, StreamIdSeq};

use fred::types::scripts::Script;
use lane::{AlertSettings, LaneSettings, LuaScripts};
use plan::bars::{BarWrite, IndicatorWrite};
use plan::dead_letters::RejectWrite;
use plan::lua::{LuaBar, LuaKeys, LuaTrade};
use plan::prices::QuoteWrite;
use plan::snapshots::{Snapshot, SnapshotWrite};
use plan::ticks::TickWrite;
use plan::volume::{RatioKeys, VolumeWrite};
use plan::LaneBatch;
use tickwire_core::config::Engine;

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

struct Route {
    /// The last-price hash in the prices DB.
    price_key: Key,
    lane: usize,
    /// The instrument's stream in each DB it has traded into: (db, index).
    streams: Vec<(u8, usize)>,
    /// Its last-price hash in each other DB a phase keeps prices in (keys
    /// differ by DB only in cluster mode, where the DB is a namespace).
    phase_prices: Vec<(u8, Key)>,
}

struct StreamState {
    key: Key,
    seq: StreamIdSeq,
}

/// A feed's dead-letter stream, as this process numbers its entries.
///
/// A dead letter's ID is `{ms}-{seq}` (`ms` its receive time, 0 when the
/// input has none) counted from the start of the process (`natural`): the same input gives the same IDs, so a frame dead-lettered
/// again (a second replay, a restart on the whole input) lands on its earlier
/// entry and is counted as a duplicate. A stream an earlier process wrote
/// can already hold an entry at that ID for another frame (a new process
/// stamping a bad frame in a millisecond the last one used): the entry there
/// is read, and unless it is this frame, the dead letter goes after the
/// stream's last entry instead. Costs one read of the stream's last ID per
/// feed per process, and one read per dead letter that falls at or below it.
struct DeadLetters {
    key: Key,
    lane: usize,
    natural: StreamIdSeq,
    /// The stream's last ID when this process first wrote to it.
    before: Option<(u64, u64)>,
    /// The last ID in the stream: `before`, then each ID given.
    top: StreamIdSeq,
}

/// Assigns keys, stream IDs and lanes; holds the per-lane batches.
struct Dispatcher {
    keys: Keys,
    lanes: usize,
    routes: FastMap<ByAddress, Route>,
    streams: Vec<StreamState>,
    stream_index: FastMap<(u8, Key), usize>,
    dbs: tickwire_core::config::DbMap,
    deadletters: FastMap<Box<str>, DeadLetters>,
    skipped: u64,
    /// Keys of bar streams and forming-bar hashes per (instrument, interval).
    bar_keys: FastMap<(ByAddress, Arc<str>), (Key, Key)>,
    /// Keys of indicator hashes per (instrument, name).
    indicator_keys: FastMap<(ByAddress, &'static str), Key>,
    /// Lua engine: the bar interval its RSI/ATR run on, and its keys per instrument.
    lua_interval: Option<Arc<str>>,
    lua_keys: FastMap<ByAddress, LuaKeys>,
    pending: Vec<LaneBatch>,
    /// Whether the default layout is written (the `default` profile).
    default_layout: bool,
    /// The other selected key profiles.
    profiles: Vec<tickwire_core::profiles::Profile>,
    /// Rendered profile keys (and PUBLISH channels) per (profile, instrument,
    /// bar interval): rendering once per instrument, not per tick.
    profile_keys: FastMap<ProfileKeyId, (Key, Option<Key>)>,
    /// The entry IDs of each profile tick stream, for ticks the state stage
    /// did not number.
    profile_streams: FastMap<Key, StreamIdSeq>,
    /// The instruments met in this run, by symbol: a newcomer of another
    /// exchange that would share their keys is refused.
    by_symbol: FastMap<Box<str>, Vec<Arc<Instrument>>>,
    /// Checkpoint keys per instrument.
    checkpoint_keys: FastMap<ByAddress, Key>,
    /// Instruments whose last-price hash an earlier run wrote for another
    /// exchange, with why: refused at their first tick.
    owned_elsewhere: FastMap<ByAddress, String>,
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

/// The key of `inst`'s state checkpoint (in the system DB, beside the
/// process's other bookkeeping).
pub fn checkpoint_key(keys: &Keys, inst: &Instrument) -> String {
    keys.checkpoint
        .render(keys.prefix_of(Db::System), |n| instrument_value(inst, n))
}

/// Reads the checkpoints of `insts` (one pipelined GET each) from the
/// system DB: what a process continues each instrument from. A Redis still
/// loading its data set is waited for (see [`wait_loaded`]), then read.
pub async fn load_checkpoints(
    pools: &RedisPools,
    config: &Config,
    keys: &Keys,
    insts: &[Arc<Instrument>],
) -> Result<Vec<Option<String>>, WriterError> {
    let client = pools.client(config.databases.get(Db::System), 0)?;
    loop {
        let p = client.pipeline();
        for inst in insts {
            let _: () = fred::prelude::KeysInterface::get(&p, checkpoint_key(keys, inst))
                .await
                .map_err(WriterError::Checkpoint)?;
        }
        let read = p.try_all::<Option<String>>().await;
        if read.iter().any(|r| r.as_ref().is_err_and(is_loading)) {
            wait_loaded(client).await;
            continue;
        }
        return read
            .into_iter()
            .map(|r| r.map_err(WriterError::Checkpoint))
            .collect();
    }
}

/// A Redis read the writer cannot go on without, tried with the writer's
/// backoff while it fails (at most 6 attempts, about 2 s), on `client`; a
/// Redis still loading its data set is waited for (not an attempt).
async fn read_retrying<T, F, Fut>(
    client: &fred::prelude::Client,
    mut read: F,
) -> Result<T, fred::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, fred::error::Error>>,
{
    let mut tries = 0;
    loop {
        match read().await {
            Ok(v) => return Ok(v),
            Err(e) if is_loading(&e) => {
                wait_loaded(client).await;
            }
            Err(e) if tries >= 5 => return Err(e),
            Err(e) => {
                tries += 1;
                tracing::warn!(attempt = tries, error = %e, "Redis read failed, retrying");
                tokio::time::sleep(retry_backoff(tries)).await;
            }
        }
    }
}

/// SCRIPT LOAD of the scripts a run uses, before any batch is written: a
/// failure Redis may get over (a timeout, a connection lost) is tried again
/// like any write, up to `max_retries` times with the writer's backoff; a
/// Redis loading its data set is waited for (see [`wait_loaded`]); a
/// refusal (NOPERM, a script Redis will not compile) fails at once.
async fn load_scripts(
    client: &fred::prelude::Client,
    settings: &LaneSettings,
    max_retries: u32,
) -> Result<(), WriterError> {
    let mut tries = 0;
    loop {
        let loaded = settings.load_scripts(client).await;
        match loaded {
            Ok(()) => return Ok(()),
            Err(e) if is_loading(&e) => {
                wait_loaded(client).await;
            }
            Err(e) if lane::is_transient(&e) && tries < max_retries => {
                tries += 1;
                tracing::warn!(
                    attempt = tries,
                    error = %e,
                    "SCRIPT LOAD failed, retrying (writer.max_retries = {max_retries})"
                );
                metrics::counter!(tickwire_core::telemetry::REDIS_RETRIES).increment(1);
                tokio::time::sleep(retry_backoff(tries)).await;
            }
            Err(e) => return Err(WriterError::Script(e)),
        }
    }
}

/// Reads a stream ID as Redis writes it (`{ms}-{seq}`).
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The ID of the last entry of stream `key` (none: empty or missing).
async fn last_entry_id(
    pools: &RedisPools,
    db: u8,
    key: &Key,
) -> Result<Option<(u64, u64)>, WriterError> {
    use fred::prelude::StreamsInterface;
    let client = pools.client(db, 0)?;
    let last: Vec<(String, HashMap<String, String>)> = read_retrying(client, || {
        client.xrevrange::<Vec<(String, HashMap<String, String>)>, _, _, _>(
            key.clone(),
            "+",
            "-",
            Some(1),
        )
    })
    .await
    .map_err(|source| WriterError::DeadLetters {
        key: String::from_utf8_lossy(key.as_bytes()).into_owned(),
        source,
    })?;
    Ok(last.first().and_then(|(id, _)| parse_id(id)))
}

/// Whether the entry of stream `key` at `id` is the dead letter of `r`.
async fn entry_is(
    pools: &RedisPools,
    db: u8,
    key: &Key,
    id: (u64, u64),
    r: &tickwire_core::Rejected,
) -> Result<bool, WriterError> {
    use fred::prelude::StreamsInterface;
    let client = pools.client(db, 0)?;
    let id = ids::format_id(id);
    let found: Vec<(String, HashMap<String, String>)> = read_retrying(client, || {
        client.xrange::<Vec<(String, HashMap<String, String>)>, _, _, _>(
            key.clone(),
            id.as_str(),
            id.as_str(),
            Some(1),
        )
    })
    .await
    .map_err(|source| WriterError::DeadLetters {
        key: String::from_utf8_lossy(key.as_bytes()).into_owned(),
        source,
    })?;
    Ok(found
        .first()
        .is_some_and(|(_, fields)| plan::dead_letters::is_dead_letter_of(fields, r)))
}

/// (profile index, output kind, instrument, bar interval).
type ProfileKeyId = (usize, u8, ByAddress, Option<Arc<str>>);

/// A depth snapshot as hash fields: `ts`, `recv_ts` (epoch ms), then per
/// level n (1 = best) `bid{n}`, `bid{n}_qty`, `bid{n}_orders`, `ask{n}`,
/// `ask{n}_qty`, `ask{n}_orders`.
fn depth_fields(d: &tickwire_core::Depth) -> Vec<(Key, fred::types::Value)> {
    use fred::types::Value;
    let mut f = Vec::with_capacity(2 + 6 * d.levels.len());
    f.push((
        Key::from_static_str("ts"),
        Value::Integer(d.exchange_ts_ns.div_euclid(1_000_000)),
    ));
    f.push((
        Key::from_static_str("recv_ts"),
        Value::Integer(d.recv_ts_ns.div_euclid(1_000_000)),
    ));
    for (i, l) in d.levels.iter().enumerate() {
        let n = i + 1;
        f.push((
            Key::from(format!("bid{n}")),
            Value::from(l.bid_price.to_string()),
        ));
        f.push((
            Key::from(format!("bid{n}_qty")),
            Value::from(l.bid_qty.to_string()),
        ));
        f.push((
            Key::from(format!("bid{n}_orders")),
            Value::Integer(i64::from(l.bid_orders)),
        ));
        f.push((
            Key::from(format!("ask{n}")),
            Value::from(l.ask_price.to_string()),
        ));
        f.push((
            Key::from(format!("ask{n}_qty")),
            Value::from(l.ask_qty.to_string()),
        ));
        f.push((
            Key::from(format!("ask{n}_orders")),
            Value::Integer(i64::from(l.ask_orders)),
        ));
    }
    f
}

/// The value of an instrument placeholder in a key template.
fn instrument_value<'a>(inst: &'a Instrument, name: &str) -> Option<&'a str> {
    match name {
        "symbol" => Some(&inst.symbol),
        "exchange" => Some(&inst.exchange),
        "segment" => inst.segment.as_deref(),
        "security_id" => inst.security_id.as_deref(),
        _ => None,
    }
}

fn lane_of(name: &str, lanes: usize) -> usize {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

impl Dispatcher {
    /// The writes of the selected profiles other than `default`.
    fn route_profiles(&mut self, event: &Event) -> Option<usize> {
        if self.profiles.is_empty() {
            return None;
        }
        let mut lane = None;
        for (i, p) in self.profiles.iter().enumerate() {
            // Rendered only when a key is not cached yet (not per event).
            let prefix = |db: u8| format!("{}{}", self.keys.prefix(db), p.namespace);
            // Channels are not keys: no cluster namespace.
            let channel = || format!("{}{}", self.keys.base_prefix(), p.namespace);
            match event {
                Event::Tick(t) => {
                    if let Some(out) = &p.tick_stream {
                        let id = (i, 3, ByAddress(Arc::clone(&t.instrument)), None);
                        let (key, _) = self
                            .profile_keys
                            .entry(id)
                            .or_insert_with(|| {
                                let v = |n: &str| instrument_value(&t.instrument, n);
                                (Key::from(out.key.render(&prefix(out.db), v)), None)
                            })
                            .clone();
                        let seq = self.profile_streams.entry(key.clone()).or_default();
                        // The tick's own stream ID (the state stage's, which
                        // a new process continues from the checkpoint), as in
                        // the default layout's stream: a new trade goes after
                        // what an earlier process wrote there, a resend lands
                        // on its entry. A key two instruments share counts on
                        // from the last ID given instead.
                        let entry_id = match t.stream_id {
                            Some(id) if seq.last().is_none_or(|last| id > last) => {
                                seq.follow(id);
                                id
                            }
                            _ => seq.next(t.exchange_ts_ms()),
                        };
                        let l = lane_of(&t.instrument.symbol, self.lanes);
                        self.pending[l]
                            .profile
                            .push(profile::tick_entry(out, key, entry_id, t));
                        lane = Some(l);
                    }
                    let Some(out) = &p.last_price else { continue };
                    let id = (i, 0, ByAddress(Arc::clone(&t.instrument)), None);
                    let (key, publish) = self
                        .profile_keys
                        .entry(id)
                        .or_insert_with(|| {
                            let v = |n: &str| instrument_value(&t.instrument, n);
                            (
                                Key::from(out.key.render(&prefix(out.db), v)),
                                out.publish
                                    .as_ref()
                                    .map(|c| Key::from(c.render(&channel(), v))),
                            )
                        })
                        .clone();
                    let l = lane_of(&t.instrument.symbol, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::tick(out, key, publish, t));
                    lane = Some(l);
                }
                Event::Bar(u) if u.closed => {
                    let Some(out) = &p.bars else { continue };
                    if out.interval.as_deref().is_some_and(|i| i != &*u.interval) {
                        continue;
                    }
                    let id = (
                        i,
                        1,
                        ByAddress(Arc::clone(&u.instrument)),
                        Some(Arc::clone(&u.interval)),
                    );
                    let (key, _) = self
                        .profile_keys
                        .entry(id)
                        .or_insert_with(|| {
                            let minutes = tickwire_core::config::interval_ms(&u.interval)
                                .map(|ms| (ms / 60_000).to_string())
                                .unwrap_or_default();
                            let key = out.key.render(&prefix(out.db), |n| match n {
                                "interval" => Some(&*u.interval),
                                "interval_minutes" => Some(minutes.as_str()),
                                _ => instrument_value(&u.instrument, n),
                            });
                            (Key::from(key), None)
                        })
                        .clone();
                    let l = lane_of(&u.instrument.symbol, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::bar(out, key, &u.instrument, &u.bar));
                    lane = Some(l);
                }
                Event::IndicatorSet(set) => {
                    let Some(out) = &p.indicators else { continue };
                    if out.interval.as_deref().is_some_and(|i| i != &*set.interval) {
                        continue;
                    }
                    let id = (
                        i,
                        2,
                        ByAddress(Arc::clone(&set.instrument)),
                        Some(Arc::clone(&set.interval)),
                    );
                    let (key, publish) = self
                        .profile_keys
                        .entry(id)
                        .or_insert_with(|| {
                            let v = |n: &str| match n {
                                "interval" => Some(&*set.interval),
                                _ => instrument_value(&set.instrument, n),
                            };
                            (
                                Key::from(out.key.render(&prefix(out.db), v)),
                                out.publish
                                    .as_ref()
                                    .map(|c| Key::from(c.render(&channel(), v))),
                            )
                        })
                        .clone();
                    let l = lane_of(&set.instrument.symbol, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::indicators(out, key, publish, set));
                    lane = Some(l);
                }
                Event::Feed(f) => {
                    let Some(out) = &p.feed_status else { continue };
                    let key = Key::from(out.key.render(&prefix(out.db), |n| match n {
                        "feed" => Some(&*f.feed),
                        "exchange" => Some(f.exchange),
                        _ => None,
                    }));
                    let l = lane_of(&f.feed, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::feed_status(out, key, f.status.as_str()));
                    lane = Some(l);
                }
                _ => {}
            }
        }
        lane
    }

    /// Refuses an instrument that would share keys with one of another
    /// exchange met earlier in this run.
    fn claim(&mut self, inst: &Arc<Instrument>) -> Result<(), WriterError> {
        let others = self.by_symbol.entry(inst.symbol.clone()).or_default();
        if others.iter().any(|o| Arc::ptr_eq(o, inst)) {
            return Ok(());
        }
        for other in others.iter() {
            let shared = tickwire_core::venues::shared_keys(&self.keys, other, inst);
            if !shared.is_empty() {
                return Err(WriterError::VenueCollision(
                    tickwire_core::venues::collision_message(other, inst, &shared),
                ));
            }
        }
        others.push(Arc::clone(inst));
        Ok(())
    }

    /// Before a chunk is routed: the instruments it meets for the first time
    /// whose last-price hash an earlier run wrote for another exchange are
    /// refused (one pipelined HGET per chunk that has newcomers).
    async fn check_owners(
        &mut self,
        events: &[Event],
        pools: &RedisPools,
    ) -> Result<(), WriterError> {
        if !self.default_layout {
            return Ok(());
        }
        let mut newcomers: Vec<(Key, &Arc<Instrument>)> = Vec::new();
        for e in events {
            let Event::Tick(t) = e else { continue };
            let id = ByAddress(Arc::clone(&t.instrument));
            if self.routes.contains_key(&id)
                || newcomers.iter().any(|(_, i)| Arc::ptr_eq(i, &t.instrument))
            {
                continue;
            }
            newcomers.push((self.new_route(&t.instrument).price_key, &t.instrument));
        }
        if newcomers.is_empty() {
            return Ok(());
        }
        let client = pools.client(self.dbs.get(Db::Prices), 0)?;
        let p = client.pipeline();
        for (key, _) in &newcomers {
            let _: () = p
                .hget(key.clone(), "exchange")
                .await
                .map_err(WriterError::Owner)?;
        }
        let owners = p.try_all::<Option<String>>().await;
        for ((key, inst), owner) in newcomers.iter().zip(owners) {
            if let Some(owner) = owner
                .map_err(WriterError::Owner)?
                .filter(|o| !o.eq_ignore_ascii_case(&inst.exchange))
            {
                let earlier = Instrument::new(&owner, &inst.symbol);
                // Refused where its first tick comes (see `route`): what
                // the chunk holds before it is written.
                self.owned_elsewhere.insert(
                    ByAddress(Arc::clone(inst)),
                    format!(
                        "an earlier run wrote {} for {owner}; {}",
                        String::from_utf8_lossy(key.as_bytes()),
                        tickwire_core::venues::collision_message(
                            &earlier,
                            inst,
                            &[String::from_utf8_lossy(key.as_bytes()).into_owned()]
                        )
                    ),
                );
            }
        }
        Ok(())
    }

    fn route(&mut self, event: Event) -> Result<Option<usize>, WriterError> {
        if let Event::Tick(Tick { instrument, .. }) | Event::Quote(Quote { instrument, .. }) =
            &event
        {
            if !self.routes.contains_key(&ByAddress(Arc::clone(instrument))) {
                if let Some(why) = self.owned_elsewhere.get(&ByAddress(Arc::clone(instrument))) {
                    return Err(WriterError::VenueCollision(why.clone()));
                }
                self.claim(instrument)?;
            }
        }
        Ok(self.route_event(event))
    }

    fn route_event(&mut self, event: Event) -> Option<usize> {
        let profiled = self.route_profiles(&event);
        // Outputs the selected profiles do not name are not written; dead
        // letters and skips are the process's own bookkeeping, always kept.
        if !self.default_layout
            && !matches!(
                event,
                Event::Rejected(_) | Event::Skipped { .. } | Event::Checkpoint(_)
            )
        {
            return profiled;
        }
        match event {
            Event::Tick(tick) => {
                let key = ByAddress(Arc::clone(&tick.instrument));
                if !self.routes.contains_key(&key) {
                    let route = self.new_route(&tick.instrument);
                    self.routes.insert(key.clone(), route);
                }
                // Present: inserted just above if it was missing.
                let route = self.routes.get_mut(&key)?;
                let purpose = tick.db.unwrap_or(Db::ContinuousMarket);
                let db = self.dbs.get(purpose);
                // The last price of the continuous market has its own DB; other
                // phases keep theirs beside their ticks.
                let price_db = match purpose {
                    Db::ContinuousMarket => self.dbs.get(Db::Prices),
                    _ => db,
                };
                let keys = &self.keys;
                let value = |n: &str| instrument_value(&tick.instrument, n);
                let index = match route.streams.iter().find(|(d, _)| *d == db) {
                    Some((_, i)) => *i,
                    None => {
                        let stream_key = Key::from(keys.tick_stream.render(keys.prefix(db), value));
                        // Two instruments that render to the same stream share its ID sequence.
                        let id = (db, stream_key.clone());
                        let i = match self.stream_index.get(&id) {
                            Some(i) => *i,
                            None => {
                                self.streams.push(StreamState {
                                    key: stream_key,
                                    seq: StreamIdSeq::default(),
                                });
                                self.stream_index.insert(id, self.streams.len() - 1);
                                self.streams.len() - 1
                            }
                        };
                        route.streams.push((db, i));
                        i
                    }
                };
                let price_key = if price_db == self.dbs.get(Db::Prices) {
                    route.price_key.clone()
                } else {
                    match route.phase_prices.iter().find(|(d, _)| *d == price_db) {
                        Some((_, k)) => k.clone(),
                        None => {
                            let k = Key::from(keys.last_price.render(keys.prefix(price_db), value));
                            route.phase_prices.push((price_db, k.clone()));
                            k
                        }
                    }
                };
                let stream = &mut self.streams[index];
                let id = match tick.stream_id {
                    // Numbered by the state stage; the writer's sequence
                    // follows, for ticks that come without.
                    Some(id) => {
                        stream.seq.follow(id);
                        id
                    }
                    None => stream.seq.next(tick.exchange_ts_ms()),
                };
                let lane = route.lane;
                self.pending[lane].ticks.push(TickWrite {
                    stream_key: stream.key.clone(),
                    price_key,
                    db,
                    price_db,
                    id,
                    tick,
                });
                Some(lane)
            }
            Event::Quote(quote) => {
                let key = ByAddress(Arc::clone(&quote.instrument));
                if !self.routes.contains_key(&key) {
                    let route = self.new_route(&quote.instrument);
                    self.routes.insert(key.clone(), route);
                }
                // Present: inserted just above if it was missing.
                let route = self.routes.get(&key)?;
                let lane = route.lane;
                let batch = &mut self.pending[lane];
                batch.quotes.push(QuoteWrite {
                    price_key: route.price_key.clone(),
                    price_db: self.dbs.get(Db::Prices),
                    after: batch.ticks.len(),
                    bid: quote.bid,
                    ask: quote.ask,
                });
                Some(lane)
            }
            // Routed by `route_rejected` (it reads the stream); never here.
            Event::Rejected(_) => None,
            Event::Skipped { .. } => {
                self.skipped += 1;
                None
            }
            Event::FormingGone(gone) => {
                let (_, forming) = self.bar_keys_of(&gone.instrument, &gone.interval);
                let key = forming.clone();
                let lane = lane_of(&gone.instrument.symbol, self.lanes);
                self.pending[lane].bars.push(BarWrite { key, update: None });
                Some(lane)
            }
            Event::Bar(update) => {
                let (stream, forming) = self.bar_keys_of(&update.instrument, &update.interval);
                let key = if update.closed {
                    stream.clone()
                } else {
                    forming.clone()
                };
                let lane = lane_of(&update.instrument.symbol, self.lanes);
                let for_lua =
                    update.closed && self.lua_interval.as_deref() == Some(&*update.interval);
                if for_lua {
                    let keys = self.lua_keys_of(&update.instrument);
                    self.pending[lane].lua_bars.push(LuaBar {
                        keys,
                        bar: update.bar,
                    });
                }
                self.pending[lane].bars.push(BarWrite {
                    key,
                    update: Some(update),
                });
                Some(lane)
            }
            Event::Indicator(update) => {
                let id = (ByAddress(Arc::clone(&update.instrument)), update.name);
                let key = match self.indicator_keys.get(&id) {
                    Some(k) => k.clone(),
                    None => {
                        let prefix = self.keys.prefix_of(Db::ContinuousMarket);
                        let key = Key::from(self.keys.indicator.render(prefix, |n| {
                            instrument_value(&update.instrument, n)
                                .or((n == "name").then_some(update.name))
                        }));
                        self.indicator_keys.entry(id).or_insert(key).clone()
                    }
                };
                let lane = lane_of(&update.instrument.symbol, self.lanes);
                self.pending[lane]
                    .indicators
                    .push(IndicatorWrite { key, update });
                Some(lane)
            }
            Event::Volume(update) => {
                let inst = &update.instrument;
                let hh_mm = update
                    .bucket
                    .map(|m| (session::two_digits(m / 60), session::two_digits(m % 60)));
                let template = match update.bucket {
                    Some(_) => &self.keys.volume_bucket,
                    None => &self.keys.volume_session,
                };
                let p = self.keys.prefix_of(Db::CumulativeVolume);
                let key = Key::from(template.render(p, |n| match n {
                    "session" => Some(&*update.session),
                    "HH" => hh_mm.as_ref().map(|(h, _)| h.as_str()),
                    "MM" => hh_mm.as_ref().map(|(_, m)| m.as_str()),
                    _ => instrument_value(inst, n),
                }));
                let symbol_only = |n: &str| instrument_value(inst, n);
                let with_session = |n: &str| match n {
                    "session" => Some(&*update.session),
                    _ => instrument_value(inst, n),
                };
                let (profile, sessions, symbols) = match &hh_mm {
                    Some((h, m)) => (
                        Some((
                            Key::from(self.keys.volume_profile.render(p, with_session)),
                            [h.as_str(), ":", m.as_str()].concat(),
                        )),
                        None,
                        None,
                    ),
                    None => (
                        None,
                        Some(Key::from(self.keys.volume_sessions.render(p, symbol_only))),
                        Some(Key::from(self.keys.volume_symbols.render(p, symbol_only))),
                    ),
                };
                let lane = lane_of(&inst.symbol, self.lanes);
                let ratio = hh_mm.as_ref().map(|(h, m)| {
                    let bucket = |n: &str| match n {
                        "session" => Some(&*update.session),
                        "HH" => Some(h.as_str()),
                        "MM" => Some(m.as_str()),
                        _ => instrument_value(inst, n),
                    };
                    let ticks = self.keys.prefix_of(Db::ContinuousMarket);
                    let alerts = self.keys.prefix_of(Db::Alerts);
                    RatioKeys {
                        baseline: Key::from(self.keys.volume_baseline.render(p, bucket)),
                        ratio: Key::from(self.keys.indicator.render(ticks, |n| match n {
                            "name" => Some("volume_ratio"),
                            _ => instrument_value(inst, n),
                        })),
                        marker: Key::from(self.keys.volume_alert_marker.render(alerts, bucket)),
                        stream: Key::from(self.keys.volume_alerts.render(alerts, |_| None)),
                    }
                });
                self.pending[lane].volumes.push(VolumeWrite {
                    key,
                    update,
                    profile,
                    sessions,
                    symbols,
                    ratio,
                });
                Some(lane)
            }
            Event::Depth(depth) => {
                let inst = &depth.instrument;
                let key = Key::from(
                    self.keys
                        .depth
                        .render(self.keys.prefix_of(Db::Microstructure), |n| {
                            instrument_value(inst, n)
                        }),
                );
                let lane = lane_of(&inst.symbol, self.lanes);
                self.pending[lane].snapshots.push(SnapshotWrite {
                    db: self.dbs.get(Db::Microstructure),
                    key,
                    value: Snapshot::Hash(depth_fields(&depth)),
                });
                Some(lane)
            }
            Event::Feed(feed) => {
                let lane = lane_of(&feed.feed, self.lanes);
                let db = self.dbs.get(Db::System);
                let p = self.keys.prefix(db);
                let status = Key::from(self.keys.feed_status.render_one(p, "feed", &feed.feed));
                let reconnects =
                    Key::from(self.keys.feed_reconnects.render_one(p, "feed", &feed.feed));
                let batch = &mut self.pending[lane];
                batch.snapshots.push(SnapshotWrite {
                    db,
                    key: status,
                    value: Snapshot::Text(fred::types::Value::from(feed.status.as_str())),
                });
                batch.snapshots.push(SnapshotWrite {
                    db,
                    key: reconnects,
                    value: Snapshot::Text(fred::types::Value::Integer(
                        i64::try_from(feed.reconnects).unwrap_or(i64::MAX),
                    )),
                });
                Some(lane)
            }
            // Only key profiles write the indicator set (above).
            Event::IndicatorSet(_) => None,
            Event::Checkpoint(c) => {
                let inst = &c.instrument;
                let key = match self.checkpoint_keys.get(&ByAddress(Arc::clone(inst))) {
                    Some(k) => k.clone(),
                    None => {
                        let k = Key::from(checkpoint_key(&self.keys, inst));
                        self.checkpoint_keys
                            .insert(ByAddress(Arc::clone(inst)), k.clone());
                        k
                    }
                };
                let lane = lane_of(&inst.symbol, self.lanes);
                self.pending[lane].checkpoints.push(SnapshotWrite {
                    db: self.dbs.get(Db::System),
                    key,
                    value: Snapshot::Text(fred::types::Value::from(c.json)),
                });
                Some(lane)
            }
            Event::SessionTrade(trade) => {
                let keys = self.lua_keys_of(&trade.instrument);
                let lane = lane_of(&trade.instrument.symbol, self.lanes);
                self.pending[lane].lua_trades.push(LuaTrade { keys, trade });
                Some(lane)
            }
        }
    }

    /// A dead letter: its ID (see [`DeadLetters`]) and lane. Dead letters are
    /// the process's own bookkeeping, written whatever the profiles.
    async fn route_rejected(
        &mut self,
        rejected: tickwire_core::Rejected,
        pools: &RedisPools,
        system_db: u8,
    ) -> Result<usize, WriterError> {
        if !self.deadletters.contains_key(&*rejected.feed) {
            let key = Key::from(self.keys.deadletter.render_one(
                self.keys.prefix(system_db),
                "feed",
                &rejected.feed,
            ));
            let before = last_entry_id(pools, system_db, &key).await?;
            let mut top = StreamIdSeq::default();
            if let Some(id) = before {
                top.follow(id);
            }
            let lane = lane_of(&rejected.feed, self.lanes);
            self.deadletters.insert(
                rejected.feed.clone(),
                DeadLetters {
                    key,
                    lane,
                    natural: StreamIdSeq::default(),
                    before,
                    top,
                },
            );
        }
        // Without a receive time (a file's line), no time at all: the time of
        // a tick near it would differ between a first run and a second one
        // whose ticks are resends (dropped before the writer), and with it
        // the ID that recognises the line as dead-lettered already.
        let ms = rejected.recv_ts_ns.map_or(0, |ns| ns.div_euclid(1_000_000));
        // Inserted just above when it was missing.
        let Some(dl) = self.deadletters.get_mut(&*rejected.feed) else {
            return Err(WriterError::Lane("dead-letter stream missing".into()));
        };
        let natural = dl.natural.next(ms);
        let id = if dl.before.is_some_and(|b| natural <= b)
            && entry_is(pools, system_db, &dl.key, natural, &rejected).await?
        {
            // Dead-lettered before: it lands on its entry, a duplicate.
            natural
        } else if dl.top.last().is_some_and(|top| natural <= top) {
            // Another frame holds that ID: this one goes after the last.
            dl.top.next(ms)
        } else {
            natural
        };
        dl.top.follow(id);
        let lane = dl.lane;
        self.pending[lane].rejects.push(RejectWrite {
            key: dl.key.clone(),
            id,
            rejected,
        });
        Ok(lane)
    }

    /// The keys of `inst`'s bar stream and forming-bar hash of `interval`.
    fn bar_keys_of(&mut self, inst: &Arc<Instrument>, interval: &Arc<str>) -> &(Key, Key) {
        let id = (ByAddress(Arc::clone(inst)), Arc::clone(interval));
        let (keys, prefix) = (&self.keys, self.keys.prefix_of(Db::ContinuousMarket));
        self.bar_keys.entry(id).or_insert_with(|| {
            let render = |t: &tickwire_core::KeyTemplate| {
                Key::from(t.render(prefix, |n| {
                    instrument_value(inst, n).or((n == "interval").then_some(&**interval))
                }))
            };
            (render(&keys.bar_stream), render(&keys.bar_forming))
        })
    }

    fn lua_keys_of(&mut self, inst: &Arc<Instrument>) -> LuaKeys {
        if let Some(k) = self.lua_keys.get(&ByAddress(Arc::clone(inst))) {
            return k.clone();
        }
        let p = self.keys.prefix_of(Db::ContinuousMarket);
        let indicator = |name: &'static str| {
            Key::from(self.keys.indicator.render(p, |n| {
                instrument_value(inst, n).or((n == "name").then_some(name))
            }))
        };
        let keys = LuaKeys {
            state: Key::from(
                self.keys
                    .indicator_state
                    .render(p, |n| instrument_value(inst, n)),
            ),
            rsi: indicator("rsi"),
            atr: indicator("atr"),
            vwap: indicator("vwap"),
        };
        self.lua_keys
            .insert(ByAddress(Arc::clone(inst)), keys.clone());
        keys
    }

    fn new_route(&self, inst: &Instrument) -> Route {
        let value = |name: &str| instrument_value(inst, name);
        let price_key = Key::from(
            self.keys
                .last_price
                .render(self.keys.prefix_of(Db::Prices), value),
        );
        Route {
            price_key,
            phase_prices: Vec::new(),
            streams: Vec::new(),
            // By symbol: the stream and the price hash of a symbol share a lane,
            // so both are written in order.
            lane: lane_of(&inst.symbol, self.lanes),
        }
    }
}

/// Writes every event from `rx` until it closes, then flushes and returns the
/// totals. Batches go out when a lane has `batch_size` items or every
/// `flush_interval_ms`, whichever comes first.
pub async fn run(
    config: &Config,
    pools: Arc<RedisPools>,
    rx: mpsc::Receiver<Vec<Event>>,
) -> Result<WriterStats, WriterError> {
    run_with(config, pools, rx, WriterOptions::default())
        .await
        .map_err(|f| f.error)
}

/// What a writer run shares with the rest of the process.
#[derive(Debug, Clone, Default)]
pub struct WriterOptions {
    /// Live totals (the heartbeat reads them).
    pub progress: Arc<WriterProgress>,
    /// Record each tick's receive-to-Redis latency (live runs, where the
    /// receive time is the socket read, and paced replays, where it is the
    /// pacer's release; a replay at `--max` keeps the recording's).
    pub tick_latency: bool,
}

/// [`run`] with live totals and latency settings.
pub async fn run_with(
    config: &Config,
    pools: Arc<RedisPools>,
    mut rx: mpsc::Receiver<Vec<Event>>,
    opts: WriterOptions,
) -> Result<WriterStats, WriterFailure> {
    let keys = config.key_templates().clone();
    let lanes = pools.size().max(1);
    let d = &config.databases;
    let ttl = |db| i64::try_from(config.ttl.secs(db)).unwrap_or(i64::MAX);
    let settings = LaneSettings {
        ticks_db: d.get(Db::ContinuousMarket),
        system_db: d.get(Db::System),
        ticks_ttl: ttl(Db::ContinuousMarket),
        system_ttl: ttl(Db::System),
        maxlen: i64::try_from(config.streams.maxlen).unwrap_or(i64::MAX),
        deadletter_maxlen: i64::try_from(config.streams.deadletter_maxlen).unwrap_or(i64::MAX),
        max_retries: config.writer.max_retries,
        lua: None,
        ttl_by_db: {
            let mut t = [ttl(Db::ContinuousMarket); 16];
            // Purposes listed later win a shared DB number, as the first listed
            // is the most general (system).
            for purpose in Db::ALL.iter().rev() {
                t[usize::from(d.get(*purpose) & 15)] = ttl(*purpose);
            }
            t
        },
        volume_db: d.get(Db::CumulativeVolume),
        session_ttl: i64::try_from(config.volume.session_ttl).unwrap_or(i64::MAX),
        alerts: AlertSettings {
            script: Script::from_lua(LUA_VOLUME_ALERT),
            threshold: config.alerts.volume_ratio_threshold,
            db: d.get(Db::Alerts),
            maxlen: i64::try_from(config.alerts.maxlen).unwrap_or(i64::MAX),
            stream_ttl: ttl(Db::Alerts),
            marker_ttl: 2 * 86_400,
        },
        progress: Arc::clone(&opts.progress),
        tick_latency: opts.tick_latency,
        tick_script: Script::from_lua(LUA_TICK_APPEND),
        profile_script: (!config.profiles.others.is_empty())
            .then(|| Script::from_lua(LUA_PROFILE_WRITE)),
        refusals: Arc::default(),
    };
    let mut settings = settings;
    settings.lua = (config.indicators.engine == Engine::Lua).then(|| LuaScripts {
        bar_indicators: Script::from_lua(LUA_BAR_INDICATORS),
        vwap: Script::from_lua(LUA_VWAP),
        rsi_period: config.indicators.rsi_period,
        atr_period: config.indicators.atr_period,
    });
    load_scripts(
        pools.client(settings.ticks_db, 0)?,
        &settings,
        config.writer.max_retries,
    )
    .await?;
    let lua_interval = settings
        .lua
        .is_some()
        .then(|| Arc::from(config.indicators.interval.as_str()));
    let restart_watch = pools.watch_restarts(d.get(Db::System)).await;
    let mut tasks = JoinSet::new();
    let mut senders = Vec::with_capacity(lanes);
    // A lane waiting for work says so (its flag, then `wake`): what is
    // pending for it goes out at once instead of waiting to fill a batch or
    // for the flush timer. While it writes, its next batch grows.
    let wake = Arc::new(tokio::sync::Notify::new());
    let idle: Vec<Arc<AtomicBool>> = (0..lanes)
        .map(|_| Arc::new(AtomicBool::new(true)))
        .collect();
    for (lane, idle) in idle.iter().enumerate() {
        // Two batches queued per lane: one being written, one being filled.
        let (tx, lane_rx) = mpsc::channel(2);
        senders.push(tx);
        tasks.spawn(lane::run_lane(
            lane,
            lane_rx,
            Arc::clone(&pools),
            settings.clone(),
            lane::Idle {
                flag: Arc::clone(idle),
                wake: Arc::clone(&wake),
            },
        ));
    }
    let mut dispatcher = Dispatcher {
        keys,
        lanes,
        routes: FastMap::default(),
        streams: Vec::new(),
        stream_index: FastMap::default(),
        dbs: config.databases.clone(),
        deadletters: FastMap::default(),
        skipped: 0,
        bar_keys: FastMap::default(),
        indicator_keys: FastMap::default(),
        lua_interval,
        lua_keys: FastMap::default(),
        pending: (0..lanes).map(|_| LaneBatch::default()).collect(),
        default_layout: config.profiles.default_layout,
        profiles: config.profiles.others.clone(),
        profile_keys: FastMap::default(),
        profile_streams: FastMap::default(),
        by_symbol: FastMap::default(),
        checkpoint_keys: FastMap::default(),
        owned_elsewhere: FastMap::default(),
    };
    let batch_size = config.writer.batch_size.max(1);
    let system_db = d.get(Db::System);
    let mut flush = tokio::time::interval(Duration::from_millis(config.writer.flush_interval_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let sent: Result<(), WriterError> = async {
        // A refusal (two exchanges' instruments on one key) stops the run,
        // but not at once: what was routed before it is written, and the
        // rejections already read are dead-lettered, the chunks already in
        // the channel included (which is closed, so no more come).
        let mut refused: Option<WriterError> = None;
        loop {
            tokio::select! {
                chunk = rx.recv() => {
                    let Some(events) = chunk else { break };
                    if refused.is_none() {
                        dispatcher.check_owners(&events, &pools).await?;
                    }
                    for event in events {
                        let lane = match event {
                            Event::Rejected(r) => {
                                Some(dispatcher.route_rejected(r, &pools, system_db).await?)
                            }
                            // Read, not written: the summary counts it so.
                            _ if refused.is_some() => None,
                            event => match dispatcher.route(event) {
                                Ok(lane) => lane,
                                Err(e @ WriterError::VenueCollision(_)) => {
                                    tracing::error!(error = %e, "refused: the run stops once what was read before is written");
                                    refused = Some(e);
                                    rx.close();
                                    None
                                }
                                Err(e) => return Err(e),
                            },
                        };
                        if let Some(lane) = lane {
                            if dispatcher.pending[lane].len() >= batch_size {
                                let batch = dispatcher.pending[lane].take();
                                idle[lane].store(false, Ordering::Release);
                                send(&senders[lane], batch).await?;
                            }
                        }
                    }
                    to_idle_lanes(&mut dispatcher.pending, &senders, &idle);
                }
                _ = wake.notified() => to_idle_lanes(&mut dispatcher.pending, &senders, &idle),
                _ = flush.tick() => flush_all(&mut dispatcher.pending, &senders).await?,
            }
        }
        // Input ended: flush what is left.
        flush_all(&mut dispatcher.pending, &senders).await?;
        refused.map_or(Ok(()), Err)
    }
    .await;
    drop(senders);
    drop(rx);
    let mut stats = WriterStats {
        skipped: dispatcher.skipped,
        ..WriterStats::default()
    };
    let mut first_error = sent.err();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(lane_stats)) => stats.merge(lane_stats),
            // Why a lane stopped says more than that it stopped.
            Ok(Err(f)) => {
                stats.merge(f.stats);
                if matches!(first_error, None | Some(WriterError::Lane(_))) {
                    first_error = Some(f.error);
                }
            }
            Err(e) => {
                first_error.get_or_insert(WriterError::Lane(e.to_string()));
            }
        }
    }
    settings.refusals.log_totals();
    let restarts = pools.restarts(system_db).await;
    restart_watch.abort();
    stats.redis_restarts = restarts.restarts;
    stats.redis_restarts_lost = restarts.lost_data;
    match first_error {
        Some(error) => Err(WriterFailure { error, stats }),
        None => Ok(stats),
    }
}

/// Hands each idle lane its partial batch, without waiting: a lane that is
/// not writing writes what it has at once (the tick-to-Redis latency of a
/// quiet lane is one round trip, not `flush_interval_ms`).
fn to_idle_lanes(
    pending: &mut [LaneBatch],
    senders: &[mpsc::Sender<LaneBatch>],
    idle: &[Arc<AtomicBool>],
) {
    for ((batch, tx), idle) in pending.iter_mut().zip(senders).zip(idle) {
        if !batch.is_empty() && idle.swap(false, Ordering::AcqRel) {
            match tx.try_send(batch.take()) {
                Ok(()) => {}
                // Its slots are taken after all (a full batch just went in):
                // the batch waits for the lane's next call or the timer.
                Err(mpsc::error::TrySendError::Full(b)) => *batch = b,
                // A closed lane has failed; its error comes out when it is
                // joined, and the next send says so.
                Err(mpsc::error::TrySendError::Closed(b)) => *batch = b,
            }
        }
    }
}

/// Hands every lane its partial batch.
async fn flush_all(
    pending: &mut [LaneBatch],
    senders: &[mpsc::Sender<LaneBatch>],
) -> Result<(), WriterError> {
    for (batch, tx) in pending.iter_mut().zip(senders) {
        if !batch.is_empty() {
            send(tx, batch.take()).await?;
        }
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<LaneBatch>, batch: LaneBatch) -> Result<(), WriterError> {
    // A closed lane has failed; its error comes out when it is joined.
    tx.send(batch)
        .await
        .map_err(|_| WriterError::Lane("a lane stopped early".into()))
}
