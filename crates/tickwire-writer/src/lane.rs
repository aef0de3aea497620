//! A writer lane: one connection per DB, one batch at a time, in order.
//!
//! A batch becomes a plan of commands (one `lua/tick_append.lua` call per run
//! of a stream's ticks, one HSET per instrument for its last price, XADD per
//! dead letter, EXPIREs when due), sent as one pipeline per DB, all DBs at
//! once. Commands that fail for a transient reason (connection lost, timeout)
//! are sent again; the rest are final. Every command is idempotent, so a
//! resend never double-applies anything.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::memo::{bound, hash128, BoundedSet, Memo};
use std::sync::Arc;
use std::time::Duration;

use std::fmt::Write as _;

use fred::bytes::{Bytes, BytesMut};
use fred::bytes_utils::Str;
use fred::clients::Pipeline;
use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::streams::{XCap, XCapKind, XCapTrim, XID};
use futures_util::future::join_all;
use tickwire_core::{Bar, BarUpdate, IndicatorUpdate, Rejected, SessionTrade, Tick, VolumeUpdate};
use tokio::sync::mpsc;

use crate::stats::WriterStats;
use crate::{pools::RedisPools, WriterError};

/// One tick with its stream ID and keys.
pub(crate) struct TickWrite {
    pub stream_key: Key,
    pub price_key: Key,
    /// The DB of the tick's phase, and of its last-price hash.
    pub db: u8,
    pub price_db: u8,
    pub id: (u64, u64),
    pub tick: Tick,
}

/// One rejected frame with its dead-letter stream ID and key.
pub(crate) struct RejectWrite {
    pub key: Key,
    pub id: (u64, u64),
    pub rejected: Rejected,
}

/// A closed bar (to its stream) or a forming one (to the hash beside it),
/// or (`None`) the news that none is forming: the hash goes.
pub(crate) struct BarWrite {
    pub key: Key,
    pub update: Option<BarUpdate>,
}

/// An indicator value, to `indicator:{name}:{symbol}`.
pub(crate) struct IndicatorWrite {
    pub key: Key,
    pub update: IndicatorUpdate,
}

/// Bucket or session volume, to its hash. A bucket also goes into the day's
/// profile (`profile`, field `HH:MM`); a session into the indexes the baseline
/// job reads (`sessions` sorted set, `symbols` set).
pub(crate) struct VolumeWrite {
    pub key: Key,
    pub update: VolumeUpdate,
    pub profile: Option<(Key, String)>,
    pub sessions: Option<Key>,
    pub symbols: Option<Key>,
    /// A bucket's live ratio to its baseline, and its alert.
    pub ratio: Option<RatioKeys>,
}

/// The keys of a bucket's volume ratio and surge alert.
#[derive(Clone)]
pub(crate) struct RatioKeys {
    /// `volume:baseline:{symbol}:{HH}:{MM}` (its `average`).
    pub baseline: Key,
    /// `indicator:volume_ratio:{symbol}`.
    pub ratio: Key,
    /// `alert:sent:{symbol}:{session}:{HH}:{MM}`.
    pub marker: Key,
    /// The alerts stream.
    pub stream: Key,
}

/// Volume-surge alerts: the script that appends one per bucket, and where.
#[derive(Clone)]
pub(crate) struct AlertSettings {
    pub script: Script,
    pub threshold: f64,
    pub db: u8,
    pub maxlen: i64,
    pub stream_ttl: i64,
    /// Markers outlive the session they mark.
    pub marker_ttl: i64,
}

/// What a lane remembers between batches.
#[derive(Default)]
pub(crate) struct LaneState {
    /// Baseline averages by key, as read for a session (`None`: no
    /// baseline): read once per bucket, at most [`BASELINES_CAP`] kept.
    baselines: HashMap<Key, (Arc<str>, Option<f64>)>,
    /// Buckets whose alert went out (bounded; the script appends a bucket's
    /// alert once whatever is forgotten here).
    alerted: BoundedSet,
    /// Which keys' TTLs this lane set and when, and which volume index
    /// members it wrote: bookkeeping is sent when due, not every batch.
    memo: Memo,
    /// EXPIREs owed after a batch during which a connection dropped or
    /// Redis restarted: its keys may have been written again to a Redis that
    /// lost them, without the EXPIRE the lane skipped for them. Sent with
    /// the next batch.
    owed: HashMap<(u8, Key), i64>,
}

/// Baselines kept per lane at most (a cache: a bucket's is read again).
const BASELINES_CAP: usize = 1 << 16;

/// The keys the Lua engine's scripts touch for one instrument.
#[derive(Clone)]
pub(crate) struct LuaKeys {
    pub state: Key,
    pub rsi: Key,
    pub atr: Key,
    pub vwap: Key,
}

/// A closed bar for the Lua engine's RSI/ATR script.
pub(crate) struct LuaBar {
    pub keys: LuaKeys,
    pub bar: Bar,
}

/// A trade for the Lua engine's VWAP script.
pub(crate) struct LuaTrade {
    pub keys: LuaKeys,
    pub trade: SessionTrade,
}

/// A quote for a last-price hash; `after` is how many of the batch's ticks
/// came before it, so that ticks and quotes fold into the hash in order.
pub(crate) struct QuoteWrite {
    pub price_key: Key,
    pub price_db: u8,
    pub after: usize,
    pub bid: Option<tickwire_core::Dec>,
    pub ask: Option<tickwire_core::Dec>,
}

#[derive(Default)]
pub(crate) struct LaneBatch {
    pub ticks: Vec<TickWrite>,
    pub snapshots: Vec<SnapshotWrite>,
    /// Writes of the selected key profiles other than `default`.
    pub profile: Vec<crate::profile::ProfileWrite>,
    pub quotes: Vec<QuoteWrite>,
    pub rejects: Vec<RejectWrite>,
    pub bars: Vec<BarWrite>,
    pub indicators: Vec<IndicatorWrite>,
    pub lua_bars: Vec<LuaBar>,
    pub lua_trades: Vec<LuaTrade>,
    pub volumes: Vec<VolumeWrite>,
    /// The state checkpoints of the instruments this batch's outputs belong
    /// to: written with the lane's next batch (or after the last), once
    /// these outputs are acknowledged, so a checkpoint is never ahead of them.
    pub checkpoints: Vec<SnapshotWrite>,
}

impl LaneBatch {
    pub fn len(&self) -> usize {
        self.ticks.len()
            + self.snapshots.len()
            + self.profile.len()
            + self.quotes.len()
            + self.rejects.len()
            + self.bars.len()
            + self.indicators.len()
            + self.lua_bars.len()
            + self.lua_trades.len()
            + self.volumes.len()
            + self.checkpoints.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the batch, leaving an empty one with the room this one had for
    /// each kind: the next batch fills without growing its vectors (each
    /// regrowth copies every tick so far). Halving the room after a small
    /// batch (what a lane that fell idle takes) still cost 1% of a replay
    /// in copies when full batches followed. The room is bounded: a batch
    /// goes out at `batch_size` items, so no vector outgrows twice that.
    pub fn take(&mut self) -> LaneBatch {
        fn room<T>(v: &Vec<T>) -> Vec<T> {
            Vec::with_capacity(v.capacity())
        }
        let next = LaneBatch {
            ticks: room(&self.ticks),
            bars: room(&self.bars),
            indicators: room(&self.indicators),
            volumes: room(&self.volumes),
            checkpoints: room(&self.checkpoints),
            ..LaneBatch::default()
        };
        std::mem::replace(self, next)
    }
}

/// A key whose whole value is replaced by each write (depth snapshots, feed
/// status): only the latest of a batch is written, with its TTL.
pub(crate) struct SnapshotWrite {
    pub db: u8,
    pub key: Key,
    pub value: Snapshot,
}

pub(crate) enum Snapshot {
    /// HSET of these fields.
    Hash(Vec<(Key, Value)>),
    /// SET of a string.
    Text(Value),
}

/// Where a lane writes and with what limits.
#[derive(Clone)]
pub(crate) struct LaneSettings {
    pub ticks_db: u8,
    pub system_db: u8,
    pub ticks_ttl: i64,
    pub system_ttl: i64,
    pub maxlen: i64,
    pub deadletter_maxlen: i64,
    pub max_retries: u32,
    /// The Lua engine's scripts, when it is the engine.
    pub lua: Option<LuaScripts>,
    /// TTL of the keys of each logical DB number.
    pub ttl_by_db: [i64; 16],
    pub volume_db: u8,
    /// TTL of the per-session volume totals.
    pub session_ttl: i64,
    pub alerts: AlertSettings,
    pub progress: Arc<crate::stats::WriterProgress>,
    /// `lua/tick_append.lua`: a run of one stream's ticks in one call.
    pub tick_script: Script,
    /// `lua/profile_write.lua`, when a key profile other than `default` is selected.
    pub profile_script: Option<Script>,
    /// Record each tick's receive-to-Redis latency (live runs).
    pub tick_latency: bool,
    /// Refusals logged so far, shared by the lanes: logged once each.
    pub refusals: Arc<Refusals>,
}

/// Commands Redis refused for good, by (error kind, command): the first of
/// each is logged, the rest only counted (write errors), so a Redis out of
/// memory logs one line per command kind, not one per command.
#[derive(Debug, Default)]
pub(crate) struct Refusals(std::sync::Mutex<Vec<(String, &'static str, u64)>>);

impl Refusals {
    /// Counts a refusal of `command` with `e`; logs it if it is the first
    /// of its kind.
    fn note(&self, db: u8, command: &'static str, e: &Error) {
        let details = e.details();
        // Redis' error code: its first word (OOM, WRONGTYPE, ERR...).
        let kind = details.split_whitespace().next().unwrap_or("").to_string();
        let first = {
            // A panic while holding this lock cannot leave it half-updated
            // (a push or an increment): a poisoned lock is still sound.
            let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match seen
                .iter_mut()
                .find(|(k, c, _)| *k == kind && *c == command)
            {
                Some((_, _, n)) => {
                    *n += 1;
                    false
                }
                None => {
                    seen.push((kind, command, 1));
                    true
                }
            }
        };
        if first {
            tracing::warn!(
                db,
                command,
                error = %e,
                "Redis refused a write; further {command} refused alike are counted \
                 (write errors), not logged"
            );
        }
    }

    /// Logs how many of each kind there were, for kinds refused more than
    /// once (one line each, at the end of a run).
    pub(crate) fn log_totals(&self) {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, command, n) in seen.iter().filter(|(_, _, n)| *n > 1) {
            tracing::warn!(command, error_kind = %kind, refused = n, "Redis refused {n} {command} commands with {kind}");
        }
    }
}

impl LaneSettings {
    fn ttl(&self, db: u8) -> i64 {
        self.ttl_by_db[usize::from(db & 15)]
    }

    /// SCRIPT LOAD of every script the lanes call (the cache is per server,
    /// not per DB): the alerts' and tick appends' always, the profile's and
    /// the Lua engine's when used. At start and after NOSCRIPT.
    pub(crate) async fn load_scripts(&self, client: &Client) -> Result<(), Error> {
        self.alerts.script.load(client).await?;
        self.tick_script.load(client).await?;
        if let Some(script) = &self.profile_script {
            script.load(client).await?;
        }
        if let Some(lua) = &self.lua {
            lua.load(client).await?;
        }
        Ok(())
    }
}

/// The Lua engine: its scripts (SHA-1 computed locally) and periods.
#[derive(Clone)]
pub(crate) struct LuaScripts {
    pub bar_indicators: Script,
    pub vwap: Script,
    pub rsi_period: u32,
    pub atr_period: u32,
}

impl LuaScripts {
    /// SCRIPT LOAD of both scripts (the cache is per server, not per DB).
    pub async fn load(&self, client: &Client) -> Result<(), Error> {
        self.bar_indicators.load(client).await?;
        self.vwap.load(client).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Profile,
    /// The stream entries of run `.0` of the batch's ticks (see [`tick_runs`]).
    Ticks(usize),
    DeadLetter,
    Bar,
    Hash,
    Indicator,
    Lua,
    Alert,
    Expire,
    /// A forming-bar hash deleted: its TTL is forgotten once applied, so
    /// the hash made again by the next bar gets its EXPIRE.
    Delete,
    /// A SET ... EX: the key is counted by its reply (it sets its own TTL).
    SetEx,
    /// A volume index write (ZADD, SADD), remembered by this hash of its key
    /// and member once applied: sent once per symbol and session.
    Index(u128),
}

enum Call {
    Xadd {
        key: Key,
        id: Str,
        cap: i64,
        fields: Vec<(Key, Value)>,
    },
    Hset {
        key: Key,
        fields: Vec<(Key, Value)>,
    },
    Expire {
        key: Key,
        secs: i64,
    },
    /// The key goes: `EXPIRE key 0`, which Redis documents as deleting it
    /// (replicated as a DEL), so the ACL line that lets tickwire write its
    /// keys needs nothing more.
    Del {
        key: Key,
    },
    Evalsha {
        sha: Str,
        keys: Vec<Key>,
        args: Vec<Value>,
    },
    /// SET key value EX secs. Typed, not custom: fred flushes the socket
    /// after every custom command (and EVALSHA), a write syscall each.
    SetEx {
        key: Key,
        value: Value,
        secs: i64,
    },
    /// A command fred's pipeline has no typed call for, or one simpler as is.
    Custom {
        cmd: &'static str,
        args: Vec<Value>,
    },
}

const LTP: Key = Key::from_static_str("ltp");
const QTY: Key = Key::from_static_str("qty");
const TS: Key = Key::from_static_str("ts");
const VOL: Key = Key::from_static_str("vol");
const BID: Key = Key::from_static_str("bid");
const ASK: Key = Key::from_static_str("ask");
const EXCHANGE: Key = Key::from_static_str("exchange");
const ERROR: Key = Key::from_static_str("error");
const RAW: Key = Key::from_static_str("raw");
const RECV_TS: Key = Key::from_static_str("recv_ts");
const BAR_FIELDS: [Key; 7] = [
    Key::from_static_str("o"),
    Key::from_static_str("h"),
    Key::from_static_str("l"),
    Key::from_static_str("c"),
    Key::from_static_str("v"),
    Key::from_static_str("n"),
    Key::from_static_str("ts"),
];
const VALUE: Key = Key::from_static_str("value");
const PERIOD: Key = Key::from_static_str("period");

/// A float's text (its `Display`, as every float tickwire writes), a
/// slice of the batch's buffer.
fn text(buf: &mut BytesMut, v: f64) -> Value {
    // Writing to a BytesMut cannot fail.
    let _ = write!(buf, "{v}");
    Value::Bytes(buf.split().freeze())
}

/// A decimal's text as a value: [`dec_bytes`], not `core::fmt`.
fn dec(buf: &mut BytesMut, v: tickwire_core::Dec) -> Value {
    Value::Bytes(dec_bytes(buf, v))
}

/// An integer's text as a value: [`int_bytes`], not `core::fmt`.
fn int(buf: &mut BytesMut, v: impl itoa::Integer) -> Value {
    Value::Bytes(int_bytes(buf, v))
}

/// A decimal's shortest text, a slice of the batch's buffer.
fn dec_bytes(buf: &mut BytesMut, v: tickwire_core::Dec) -> Bytes {
    let mut text = [0; tickwire_core::num::TEXT_LEN];
    buf.extend_from_slice(v.text_bytes(&mut text));
    buf.split().freeze()
}

/// An integer's text, a slice of the batch's buffer.
fn int_bytes(buf: &mut BytesMut, v: impl itoa::Integer) -> Bytes {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    buf.split().freeze()
}

fn bar_fields(buf: &mut BytesMut, b: &tickwire_core::Bar) -> Vec<(Key, Value)> {
    let values = [
        Value::Bytes(dec_bytes(buf, b.open)),
        Value::Bytes(dec_bytes(buf, b.high)),
        Value::Bytes(dec_bytes(buf, b.low)),
        Value::Bytes(dec_bytes(buf, b.close)),
        Value::Bytes(dec_bytes(buf, b.volume)),
        Value::Bytes(int_bytes(buf, b.trades)),
        Value::Bytes(int_bytes(buf, b.open_ms)),
    ];
    BAR_FIELDS.into_iter().zip(values).collect()
}

/// Where one value's text lies in a batch's text buffer ([`TickTexts`]).
#[derive(Clone, Copy, Default)]
struct Span(u32, u32);

/// The text of a batch's tick and quote numbers, written once into one
/// buffer and handed to fred as slices of it: no allocation, split or
/// reference count per value while the batch is planned.
#[derive(Default)]
struct TickTexts {
    buf: Vec<u8>,
}

impl TickTexts {
    fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, text: &[u8]) -> Span {
        let start = self.buf.len();
        self.buf.extend_from_slice(text);
        self.since(start)
    }

    /// The span of what was written from `start` on.
    fn since(&self, start: usize) -> Span {
        // A batch's texts are a few hundred kB at most.
        Span(
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(self.buf.len()).unwrap_or(u32::MAX),
        )
    }

    fn dec(&mut self, v: tickwire_core::Dec) -> Span {
        let mut text = [0; tickwire_core::num::TEXT_LEN];
        self.push(v.text_bytes(&mut text))
    }

    fn int(&mut self, v: impl itoa::Integer) -> Span {
        self.push(itoa::Buffer::new().format(v).as_bytes())
    }

    /// The buffer, frozen once every text is in it.
    fn freeze(self) -> Frozen {
        Frozen(Bytes::from(self.buf))
    }
}

/// [`TickTexts`] after the last text was written.
struct Frozen(Bytes);

impl Frozen {
    fn get(&self, s: Span) -> &[u8] {
        self.0.get(s.0 as usize..s.1 as usize).unwrap_or_default()
    }

    /// A value for fred: a slice sharing the buffer.
    fn bytes(&self, s: Span) -> Bytes {
        self.0.slice(s.0 as usize..s.1 as usize)
    }

    /// A stream entry ID (ASCII digits and a dash, so valid UTF-8).
    fn id(&self, s: Span) -> Str {
        Str::from_inner(self.bytes(s)).unwrap_or_else(|_| Str::from("0-1"))
    }
}

/// Where one tick's numbers lie in the batch's [`TickTexts`].
struct TickText {
    id: Span,
    price: Span,
    qty: Span,
    ts: Span,
    vol: Option<Span>,
    bid: Option<Span>,
    ask: Option<Span>,
}

impl TickText {
    fn new(texts: &mut TickTexts, w: &TickWrite) -> Self {
        let t = &w.tick;
        let mut ints = itoa::Buffer::new();
        let start = texts.buf.len();
        texts.buf.extend_from_slice(ints.format(w.id.0).as_bytes());
        texts.buf.push(b'-');
        texts.buf.extend_from_slice(ints.format(w.id.1).as_bytes());
        let id = texts.since(start);
        TickText {
            id,
            price: texts.dec(t.price),
            qty: texts.dec(t.qty),
            ts: texts.int(t.exchange_ts_ms()),
            vol: t.cum_volume.map(|v| texts.dec(v)),
            bid: t.bid.map(|v| texts.dec(v)),
            ask: t.ask.map(|v| texts.dec(v)),
        }
    }

    /// The optional fields the tick has, in entry order: vol, bid, ask.
    fn extras(&self) -> impl Iterator<Item = (Key, Span)> {
        [(VOL, self.vol), (BID, self.bid), (ASK, self.ask)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
    }
}

struct Cmd {
    db: u8,
    kind: Kind,
    call: Call,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Pending,
    Applied,
    /// An XADD whose ID the stream already had.
    AlreadyThere,
    /// An EXPIRE of a key Redis does not hold (it replied 0): the write
    /// before it was refused (out of memory), so the key is not counted.
    Absent,
    Failed,
}

/// A dead letter's entry: `error` (`{error_type}: {error}`), `raw` and, when
/// the input says, `recv_ts` (epoch ms).
fn dead_letter_fields(j: &Rejected) -> Vec<(Key, Value)> {
    let mut fields = vec![
        (ERROR, Value::from(format!("{}: {}", j.error_type, j.error))),
        (RAW, Value::from(j.raw.as_str())),
    ];
    if let Some(ns) = j.recv_ts_ns {
        fields.push((RECV_TS, Value::Integer(ns.div_euclid(1_000_000))));
    }
    fields
}

/// Whether a dead-letter entry read back (`fields`) is the one `j` writes.
pub(crate) fn is_dead_letter_of(
    fields: &std::collections::HashMap<String, String>,
    j: &Rejected,
) -> bool {
    let mine = dead_letter_fields(j);
    fields.len() == mine.len()
        && mine.iter().all(|(k, v)| {
            let theirs = std::str::from_utf8(k.as_bytes())
                .ok()
                .and_then(|k| fields.get(k));
            match (theirs, v) {
                (Some(t), Value::String(s)) => t == &**s,
                (Some(t), Value::Integer(i)) => t.parse() == Ok(*i),
                _ => false,
            }
        })
}

fn plan(batch: &LaneBatch, s: &LaneSettings, state: &LaneState) -> Vec<Cmd> {
    plan_with(batch, &tick_runs(batch), s, state)
}

/// The plan of a batch whose tick runs (see [`tick_runs`]) are known.
fn plan_with(
    batch: &LaneBatch,
    runs: &[Vec<usize>],
    s: &LaneSettings,
    state: &LaneState,
) -> Vec<Cmd> {
    let mut cmds = Vec::with_capacity(batch.ticks.len() + 64 + batch.rejects.len() * 2);
    let mut buf = BytesMut::with_capacity(256);
    let mut text_buf = TickTexts::with_capacity(batch.ticks.len() * 48 + batch.quotes.len() * 24);
    let mut texts = Vec::with_capacity(batch.ticks.len());
    let mut stream_keys: Vec<(u8, &Key)> = Vec::new();
    let mut seen: foldhash::HashSet<(u8, &Key)> = foldhash::HashSet::default();
    // Per price key, the latest value of each field in this batch: the same
    // hash as one HSET per tick would leave, whatever the batch boundaries
    // (a tick without bid/ask keeps the bid/ask an earlier tick gave).
    let mut last: foldhash::HashMap<(u8, &Key), LatestFields> = foldhash::HashMap::default();
    let mut price_order: Vec<(u8, &Key)> = Vec::new();
    let mut quotes = batch.quotes.iter().peekable();
    for (i, w) in batch.ticks.iter().enumerate() {
        fold_quotes(&mut quotes, i, &mut last, &mut price_order, &mut text_buf);
        let text = TickText::new(&mut text_buf, w);
        let latest = last.entry((w.price_db, &w.price_key)).or_insert_with(|| {
            price_order.push((w.price_db, &w.price_key));
            LatestFields::default()
        });
        latest.update(i, &text);
        texts.push(text);
        if seen.insert((w.db, &w.stream_key)) {
            stream_keys.push((w.db, &w.stream_key));
        }
    }
    fold_quotes(
        &mut quotes,
        usize::MAX,
        &mut last,
        &mut price_order,
        &mut text_buf,
    );
    let text_buf = text_buf.freeze();
    plan_ticks(batch, runs, s, &texts, &text_buf, &mut cmds);
    for (db, key) in stream_keys {
        expire(state, db, key, s.ttl(db), &mut cmds);
    }
    for (db, key) in price_order {
        let latest = &last[&(db, key)];
        let mut fields = Vec::with_capacity(7);
        if let Some(i) = latest.tick {
            fields.push((LTP, Value::Bytes(text_buf.bytes(texts[i].price))));
            fields.push((TS, Value::Bytes(text_buf.bytes(texts[i].ts))));
            fields.push((
                EXCHANGE,
                Value::from(&*batch.ticks[i].tick.instrument.exchange),
            ));
        }
        for (k, v) in [(VOL, latest.vol), (BID, latest.bid), (ASK, latest.ask)] {
            if let Some(v) = v {
                fields.push((k, Value::Bytes(text_buf.bytes(v))));
            }
        }
        if fields.is_empty() {
            // Only quotes without bid or ask: an HSET of no fields is an
            // error in Redis, and there is nothing to write.
            continue;
        }
        cmds.push(Cmd {
            db,
            kind: Kind::Hash,
            call: Call::Hset {
                key: key.clone(),
                fields,
            },
        });
        expire(state, db, key, s.ttl(db), &mut cmds);
    }
    let mut dl_keys: Vec<&Key> = Vec::new();
    for r in &batch.rejects {
        let fields = dead_letter_fields(&r.rejected);
        cmds.push(Cmd {
            db: s.system_db,
            kind: Kind::DeadLetter,
            call: Call::Xadd {
                key: r.key.clone(),
                id: Str::from(format!("{}-{}", r.id.0, r.id.1)),
                cap: s.deadletter_maxlen,
                fields,
            },
        });
        if !dl_keys.contains(&&r.key) {
            dl_keys.push(&r.key);
        }
    }
    for key in dl_keys {
        expire(state, s.system_db, key, s.system_ttl, &mut cmds);
    }
    plan_bars_and_indicators(batch, s, state, &mut buf, &mut cmds);
    if let Some(lua) = &s.lua {
        plan_lua(batch, s, state, lua, &mut buf, &mut cmds);
    }
    plan_volumes(batch, s, state, &mut buf, &mut cmds);
    plan_snapshots(batch, s, state, &mut cmds);
    plan_profiles(batch, s.profile_script.as_ref(), &mut cmds);
    for ((db, key), secs) in &state.owed {
        cmds.push(Cmd {
            db: *db,
            kind: Kind::Expire,
            call: Call::Expire {
                key: key.clone(),
                secs: *secs,
            },
        });
    }
    cmds
}

/// The fields a tick's stream entry has beyond ltp, qty and ts: a bit each
/// for vol, bid and ask.
fn tick_shape(t: &Tick) -> u8 {
    u8::from(t.cum_volume.is_some())
        | u8::from(t.bid.is_some()) << 1
        | u8::from(t.ask.is_some()) << 2
}

/// The batch's ticks as runs, each of one stream and one shape (the same
/// fields), in order: each run is one command. A stream's runs follow each
/// other in the plan as its ticks do in the batch, so its entries keep their
/// order. A deterministic function of the batch: a retry plans the same runs.
fn tick_runs(batch: &LaneBatch) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    // The open run of each stream and its shape.
    let mut open: HashMap<(u8, &Key), (usize, u8)> = HashMap::new();
    for (i, w) in batch.ticks.iter().enumerate() {
        let shape = tick_shape(&w.tick);
        match open.get_mut(&(w.db, &w.stream_key)) {
            Some((r, sh)) if *sh == shape => runs[*r].push(i),
            Some(slot) => {
                *slot = (runs.len(), shape);
                runs.push(vec![i]);
            }
            None => {
                open.insert((w.db, &w.stream_key), (runs.len(), shape));
                runs.push(vec![i]);
            }
        }
    }
    runs
}

/// The tick stream entries: a run of one stream's ticks is one call of
/// `lua/tick_append.lua` carrying every entry (Redis runs the XADDs inside
/// the script; for tickwire's client one command of many arguments costs a
/// fraction of many commands); a run of one tick is a plain XADD. Both are
/// idempotent by the entries' explicit IDs.
fn plan_ticks(
    batch: &LaneBatch,
    runs: &[Vec<usize>],
    s: &LaneSettings,
    texts: &[TickText],
    text_buf: &Frozen,
    cmds: &mut Vec<Cmd>,
) {
    for (r, run) in runs.iter().enumerate() {
        let w = &batch.ticks[run[0]];
        let kind = Kind::Ticks(r);
        if let [only] = run[..] {
            let text = &texts[only];
            let mut fields = Vec::with_capacity(6);
            fields.push((LTP, Value::Bytes(text_buf.bytes(text.price))));
            fields.push((QTY, Value::Bytes(text_buf.bytes(text.qty))));
            fields.push((TS, Value::Bytes(text_buf.bytes(text.ts))));
            fields.extend(
                text.extras()
                    .map(|(k, v)| (k, Value::Bytes(text_buf.bytes(v)))),
            );
            cmds.push(Cmd {
                db: w.db,
                kind,
                call: Call::Xadd {
                    key: w.stream_key.clone(),
                    id: text_buf.id(text.id),
                    cap: s.maxlen,
                    fields,
                },
            });
            continue;
        }
        let mut names = vec![LTP, QTY, TS];
        names.extend(texts[run[0]].extras().map(|(k, _)| k));
        let width = 1 + names.len();
        let mut args = Vec::with_capacity(3 + names.len());
        args.push(Value::Integer(s.maxlen));
        args.push(Value::Integer(names.len() as i64));
        args.extend(names.into_iter().map(|k| Value::Bytes(k.into_bytes())));
        // The entries as one MessagePack array of strings (the script's
        // last argument): one bulk string for fred to encode, not `width`
        // per tick.
        let mut packed = Vec::with_capacity(5 + run.len() * width * 12);
        pack_array_len(&mut packed, run.len() * width);
        for &i in run {
            let t = &texts[i];
            for span in [t.id, t.price, t.qty, t.ts] {
                pack_str(&mut packed, text_buf.get(span));
            }
            // The run's ticks all have the same optional fields (its shape).
            for (_, v) in t.extras() {
                pack_str(&mut packed, text_buf.get(v));
            }
        }
        args.push(Value::Bytes(packed.into()));
        cmds.push(Cmd {
            db: w.db,
            kind,
            call: Call::Evalsha {
                sha: s.tick_script.sha1().clone(),
                keys: vec![w.stream_key.clone()],
                args,
            },
        });
    }
}

/// A MessagePack array header of `len` elements.
fn pack_array_len(out: &mut Vec<u8>, len: usize) {
    // A batch holds far fewer than 2^32 entries (its size is configured in
    // thousands); writing into a Vec cannot fail.
    let _ = rmp::encode::write_array_len(out, u32::try_from(len).unwrap_or(u32::MAX));
}

/// `text` as a MessagePack string.
fn pack_str(out: &mut Vec<u8>, text: &[u8]) {
    // A tick's value is a few dozen bytes at most; writing into a Vec
    // cannot fail.
    let _ = rmp::encode::write_str_len(out, u32::try_from(text.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(text);
}

/// One EVALSHA of `profile_write.lua` per profile key: the batch's latest
/// value (lists: every entry, oldest first).
fn plan_profiles(batch: &LaneBatch, script: Option<&Script>, cmds: &mut Vec<Cmd>) {
    use crate::profile::ProfileValue;
    use tickwire_core::profiles::RedisType;
    let Some(script) = script else {
        return;
    };
    let mut by_key: HashMap<(u8, &Key), Vec<usize>> = HashMap::new();
    let mut order: Vec<(u8, &Key)> = Vec::new();
    for (i, w) in batch.profile.iter().enumerate() {
        let slot = by_key.entry((w.db, &w.key)).or_insert_with(|| {
            order.push((w.db, &w.key));
            Vec::new()
        });
        match w.value {
            // Only the latest hash or string value counts.
            ProfileValue::Fields(_) | ProfileValue::Text(_) => {
                slot.clear();
                slot.push(i);
            }
            ProfileValue::Entry(..) | ProfileValue::StreamEntry(..) => slot.push(i),
        }
    }
    for id in order {
        let writes = &by_key[&id];
        let Some(&last) = writes.last() else { continue };
        let w = &batch.profile[last];
        let kind = match w.redis_type {
            RedisType::Hash => "hash",
            RedisType::String => "string",
            RedisType::List => "list",
            RedisType::Stream => "stream",
        };
        let mut args: Vec<Value> = vec![
            Value::from(kind),
            Value::Integer(w.ttl),
            Value::Integer(w.cap),
            w.publish
                .as_ref()
                .map_or(Value::from(""), |k| Value::Bytes(k.clone().into_bytes())),
            Value::from(w.order_field.as_str()),
        ];
        for &i in writes {
            match &batch.profile[i].value {
                ProfileValue::Fields(fields) => {
                    for (k, v) in fields {
                        args.push(Value::from(k.as_str()));
                        args.push(Value::from(v.as_str()));
                    }
                }
                ProfileValue::Text(t) => args.push(Value::from(t.as_str())),
                ProfileValue::Entry(order, json) => {
                    args.push(Value::Integer(*order));
                    args.push(Value::from(json.as_str()));
                }
                ProfileValue::StreamEntry(id, fields) => {
                    args.push(Value::from(id.as_str()));
                    args.push(Value::Integer(fields.len() as i64));
                    for (k, v) in fields {
                        args.push(Value::from(k.as_str()));
                        args.push(Value::from(v.as_str()));
                    }
                }
            }
        }
        cmds.push(Cmd {
            db: w.db,
            kind: Kind::Profile,
            call: Call::Evalsha {
                sha: script.sha1().clone(),
                keys: vec![w.key.clone()],
                args,
            },
        });
    }
}

/// The latest snapshot of each key in the batch: one HSET (and its EXPIRE
/// when due) or one SET ... EX.
fn plan_snapshots(batch: &LaneBatch, s: &LaneSettings, state: &LaneState, cmds: &mut Vec<Cmd>) {
    let mut latest: HashMap<(u8, &Key), usize> = HashMap::new();
    let mut order: Vec<(u8, &Key)> = Vec::new();
    for (i, w) in batch.snapshots.iter().enumerate() {
        if latest.insert((w.db, &w.key), i).is_none() {
            order.push((w.db, &w.key));
        }
    }
    for id in order {
        let w = &batch.snapshots[latest[&id]];
        let ttl = s.ttl(w.db);
        match &w.value {
            Snapshot::Hash(fields) => {
                cmds.push(Cmd {
                    db: w.db,
                    kind: Kind::Hash,
                    call: Call::Hset {
                        key: w.key.clone(),
                        fields: fields.clone(),
                    },
                });
                expire(state, w.db, &w.key, ttl, cmds);
            }
            Snapshot::Text(value) => {
                // SET ... EX sets the TTL itself; its reply counts the key.
                cmds.push(Cmd {
                    db: w.db,
                    kind: Kind::SetEx,
                    call: Call::SetEx {
                        key: w.key.clone(),
                        value: value.clone(),
                        secs: ttl,
                    },
                });
            }
        }
    }
}

const VOLUME: Key = Key::from_static_str("volume");
const TRADES: Key = Key::from_static_str("trades");
const FIRST_TS: Key = Key::from_static_str("first_ts");
const LAST_TS: Key = Key::from_static_str("last_ts");

/// Bucket and session volume: one HSET of absolute values per key, the latest.
fn plan_volumes(
    batch: &LaneBatch,
    s: &LaneSettings,
    state: &LaneState,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let mut latest: HashMap<&Key, usize> = HashMap::new();
    let mut order: Vec<&Key> = Vec::new();
    for (i, v) in batch.volumes.iter().enumerate() {
        if latest.insert(&v.key, i).is_none() {
            order.push(&v.key);
        }
    }
    let bucket_ttl = s.ttl(s.volume_db);
    let mut expire_once: Vec<(&Key, i64)> = Vec::new();
    // Each day profile's fields of this batch, in one HSET.
    let mut profiles: Vec<(&Key, Vec<(Key, Value)>)> = Vec::new();
    let hset = |key: &Key, fields: Vec<(Key, Value)>, cmds: &mut Vec<Cmd>| {
        cmds.push(Cmd {
            db: s.volume_db,
            kind: Kind::Hash,
            call: Call::Hset {
                key: key.clone(),
                fields,
            },
        });
    };
    for key in order {
        let w = &batch.volumes[latest[key]];
        let u = &w.update;
        let volume = dec(buf, u.volume);
        let mut fields = vec![(VOLUME, volume.clone()), (TRADES, int(buf, u.trades))];
        match u.bucket {
            Some(minute) => {
                if let Some(r) = &w.ratio {
                    plan_ratio(r, u, minute, s, state, buf, cmds);
                }
                expire_once.push((key, bucket_ttl));
                if let Some((profile, field)) = &w.profile {
                    let field = (Key::from(field.as_str()), volume);
                    match profiles.iter_mut().find(|(k, _)| *k == profile) {
                        Some((_, fields)) => fields.push(field),
                        None => profiles.push((profile, vec![field])),
                    }
                    expire_once.push((profile, bucket_ttl));
                }
            }
            None => {
                fields.push((FIRST_TS, int(buf, u.first_ts_ms)));
                fields.push((LAST_TS, int(buf, u.last_ts_ms)));
                expire_once.push((key, s.session_ttl));
                // The indexes the baseline job reads: once per symbol and
                // session (each member is there for good once added).
                if let Some(sessions) = &w.sessions {
                    let memo = hash128(
                        s.volume_db,
                        &[b"ZADD", sessions.as_bytes(), u.session.as_bytes()],
                    );
                    if state.memo.index_due(memo) {
                        let score: i64 = u.session.replace('-', "").parse().unwrap_or(0);
                        let args = vec![
                            Value::from(sessions.clone()),
                            Value::Integer(score),
                            Value::from(&*u.session),
                        ];
                        cmds.push(Cmd {
                            db: s.volume_db,
                            kind: Kind::Index(memo),
                            call: Call::Custom { cmd: "ZADD", args },
                        });
                    }
                    expire_once.push((sessions, bucket_ttl));
                }
                if let Some(symbols) = &w.symbols {
                    let memo = hash128(
                        s.volume_db,
                        &[
                            b"SADD",
                            symbols.as_bytes(),
                            u.instrument.symbol.as_bytes(),
                            u.session.as_bytes(),
                        ],
                    );
                    if state.memo.index_due(memo) {
                        let args = vec![
                            Value::from(symbols.clone()),
                            Value::from(&*u.instrument.symbol),
                        ];
                        cmds.push(Cmd {
                            db: s.volume_db,
                            kind: Kind::Index(memo),
                            call: Call::Custom { cmd: "SADD", args },
                        });
                    }
                    expire_once.push((symbols, bucket_ttl));
                }
            }
        }
        hset(key, fields, cmds);
    }
    for (profile, fields) in profiles {
        hset(profile, fields, cmds);
    }
    let mut seen: HashSet<&Key> = HashSet::new();
    for (key, ttl) in expire_once {
        if seen.insert(key) {
            expire(state, s.volume_db, key, ttl, cmds);
        }
    }
}

/// One EVALSHA per instrument per batch and script, its inputs oldest first.
fn plan_lua(
    batch: &LaneBatch,
    s: &LaneSettings,
    state: &LaneState,
    lua: &LuaScripts,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let ttl = Value::Integer(s.ticks_ttl);
    let mut bars: Vec<(&LuaKeys, Vec<Value>)> = Vec::new();
    for b in &batch.lua_bars {
        let i = match bars.iter().position(|(k, _)| k.state == b.keys.state) {
            Some(i) => i,
            None => {
                let head = vec![
                    ttl.clone(),
                    Value::from(lua.rsi_period),
                    Value::from(lua.atr_period),
                ];
                bars.push((&b.keys, head));
                bars.len() - 1
            }
        };
        let args = &mut bars[i].1;
        args.push(int(buf, b.bar.open_ms));
        args.push(dec(buf, b.bar.high));
        args.push(dec(buf, b.bar.low));
        args.push(dec(buf, b.bar.close));
    }
    // The keys the scripts write get their EXPIRE from the lane when due,
    // after the call (a key the script has not made yet answers 0 and is
    // tried again with the next batch).
    let mut expiring: Vec<&Key> = Vec::new();
    for (keys, args) in bars {
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Lua,
            call: Call::Evalsha {
                sha: lua.bar_indicators.sha1().clone(),
                keys: vec![keys.state.clone(), keys.rsi.clone(), keys.atr.clone()],
                args,
            },
        });
        expiring.extend([&keys.state, &keys.rsi, &keys.atr]);
    }
    // Per instrument, its trades in runs of one session, each run's trades
    // packed as doubles (see `vwap.lua`): the script reads them without
    // parsing text, and Redis makes two strings per run instead of five
    // per trade.
    // Per instrument: its keys, its args so far, and its open run (session
    // and packed trades).
    type Open<'a> = Option<(&'a str, BytesMut)>;
    let mut trades: Vec<(&LuaKeys, Vec<Value>, Open)> = Vec::new();
    for t in &batch.lua_trades {
        let i = match trades.iter().position(|(k, _, _)| k.state == t.keys.state) {
            Some(i) => i,
            None => {
                trades.push((&t.keys, vec![ttl.clone()], None));
                trades.len() - 1
            }
        };
        let tr = &t.trade;
        let (_, args, open) = &mut trades[i];
        let run = match open {
            Some((session, packed)) if *session == &*tr.session => packed,
            slot => {
                if let Some((session, packed)) = slot.take() {
                    close_vwap_run(args, session, packed);
                }
                &mut slot.insert((&*tr.session, BytesMut::new())).1
            }
        };
        // The inline engine's validity and product (Vwap::update).
        let (p, q) = (tr.price.to_f64(), tr.qty.to_f64());
        let (pq, q) = if p.is_finite() && p > 0.0 && q.is_finite() && q > 0.0 {
            (p * q, q)
        } else {
            (0.0, 0.0)
        };
        // Exact in a double: epoch ms and a per-millisecond count are far
        // below 2^53.
        for v in [tr.ts_ms as f64, tr.seq as f64, pq, q] {
            run.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (keys, mut args, open) in trades {
        if let Some((session, packed)) = open {
            close_vwap_run(&mut args, session, packed);
        }
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Lua,
            call: Call::Evalsha {
                sha: lua.vwap.sha1().clone(),
                keys: vec![keys.state.clone(), keys.vwap.clone()],
                args,
            },
        });
        expiring.extend([&keys.state, &keys.vwap]);
    }
    let mut planned: HashSet<&Key> = HashSet::new();
    for key in expiring {
        if planned.insert(key) {
            expire(state, s.ticks_db, key, s.ticks_ttl, cmds);
        }
    }
}

/// A run of trades of one session: `vwap.lua`'s two arguments for it.
fn close_vwap_run(args: &mut Vec<Value>, session: &str, packed: BytesMut) {
    args.push(Value::from(session));
    args.push(Value::Bytes(packed.freeze()));
}

/// Closed bars: XADD with the bar's open time as ID. Forming bars and
/// indicator values: one HSET per key with its latest state.
fn plan_bars_and_indicators(
    batch: &LaneBatch,
    s: &LaneSettings,
    state: &LaneState,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let mut keys: Vec<&Key> = Vec::new();
    let mut latest: HashMap<&Key, usize> = HashMap::new();
    let mut order: Vec<&Key> = Vec::new();
    for (i, w) in batch.bars.iter().enumerate() {
        match &w.update {
            Some(u) if u.closed => {
                if !keys.contains(&&w.key) {
                    keys.push(&w.key);
                }
                let b = &u.bar;
                cmds.push(Cmd {
                    db: s.ticks_db,
                    kind: Kind::Bar,
                    call: Call::Xadd {
                        key: w.key.clone(),
                        id: Str::from(format!("{}-0", b.open_ms)),
                        cap: s.maxlen,
                        fields: bar_fields(buf, b),
                    },
                });
            }
            // The forming hash says what the batch's last news of it says.
            _ => {
                if latest.insert(&w.key, i).is_none() {
                    order.push(&w.key);
                }
            }
        }
    }
    for key in order {
        match &batch.bars[latest[key]].update {
            Some(u) => {
                keys.push(key);
                cmds.push(Cmd {
                    db: s.ticks_db,
                    kind: Kind::Hash,
                    call: Call::Hset {
                        key: key.clone(),
                        fields: bar_fields(buf, &u.bar),
                    },
                });
            }
            None => cmds.push(Cmd {
                db: s.ticks_db,
                kind: Kind::Delete,
                call: Call::Del { key: key.clone() },
            }),
        }
    }
    let mut latest: HashMap<&Key, usize> = HashMap::new();
    let mut order: Vec<&Key> = Vec::new();
    for (i, w) in batch.indicators.iter().enumerate() {
        if latest.insert(&w.key, i).is_none() {
            order.push(&w.key);
            keys.push(&w.key);
        }
    }
    for key in order {
        let u = &batch.indicators[latest[key]].update;
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Indicator,
            call: Call::Hset {
                key: key.clone(),
                fields: vec![
                    (VALUE, text(buf, u.value)),
                    (TS, int(buf, u.ts_ms)),
                    (PERIOD, int(buf, u.period)),
                ],
            },
        });
    }
    for key in keys {
        expire(state, s.ticks_db, key, s.ticks_ttl, cmds);
    }
}

const RATIO: Key = Key::from_static_str("value");

/// A bucket's volume over its baseline average to the ratio hash, and its
/// alert when it reaches the threshold (once per bucket).
fn plan_ratio(
    r: &RatioKeys,
    u: &VolumeUpdate,
    minute: u16,
    s: &LaneSettings,
    state: &LaneState,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let Some((_, Some(average))) = state.baselines.get(&r.baseline) else {
        return;
    };
    if *average <= 0.0 {
        return;
    }
    let ratio = u.volume.to_f64() / average;
    cmds.push(Cmd {
        db: s.ticks_db,
        kind: Kind::Indicator,
        call: Call::Hset {
            key: r.ratio.clone(),
            fields: vec![
                (RATIO, text(buf, ratio)),
                (TS, int(buf, u.last_ts_ms)),
                (PERIOD, int(buf, 0u32)),
            ],
        },
    });
    expire(state, s.ticks_db, &r.ratio, s.ttl(s.ticks_db), cmds);
    let a = &s.alerts;
    if ratio < a.threshold || state.alerted.contains(a.db, r.marker.as_bytes()) {
        return;
    }
    let bucket = tickwire_core::session::hhmm(minute);
    let args = vec![
        Value::Integer(a.marker_ttl),
        Value::Integer(a.stream_ttl),
        Value::Integer(a.maxlen),
        "symbol".into(),
        Value::from(&*u.instrument.symbol),
        "session".into(),
        Value::from(&*u.session),
        "bucket".into(),
        Value::from(bucket),
        "volume".into(),
        dec(buf, u.volume),
        "baseline".into(),
        text(buf, *average),
        "ratio".into(),
        text(buf, ratio),
        "time".into(),
        int(buf, u.last_ts_ms),
    ];
    cmds.push(Cmd {
        db: a.db,
        kind: Kind::Alert,
        call: Call::Evalsha {
            sha: a.script.sha1().clone(),
            keys: vec![r.marker.clone(), r.stream.clone()],
            args,
        },
    });
}

/// Reads the baseline averages this batch's buckets need and the lane does
/// not have for their session yet. A failed read leaves them unknown: the
/// ratio waits for a later batch.
async fn fetch_baselines(
    batch: &LaneBatch,
    pools: &RedisPools,
    lane: usize,
    s: &LaneSettings,
    state: &mut LaneState,
    stats: &mut WriterStats,
) {
    // Emptied before this batch's wants are known, so that it reads again
    // every baseline its plan needs.
    bound(&mut state.baselines, BASELINES_CAP);
    let mut wanted: Vec<(&Key, &Arc<str>)> = Vec::new();
    for w in &batch.volumes {
        if let Some(r) = &w.ratio {
            let fresh = matches!(state.baselines.get(&r.baseline), Some((session, _)) if *session == w.update.session);
            if !fresh && !wanted.iter().any(|(k, _)| *k == &r.baseline) {
                wanted.push((&r.baseline, &w.update.session));
            }
        }
    }
    if wanted.is_empty() {
        return;
    }
    let Ok(client) = pools.client(s.volume_db, lane) else {
        return;
    };
    stats.commands += wanted.len() as u64 + 1;
    let p = client.pipeline();
    for (key, _) in &wanted {
        let _: Result<(), _> = p.hget((*key).clone(), "average").await;
    }
    let (results, _) = futures_util::join!(p.try_all::<Option<f64>>(), client.ping::<Value>(None));
    for ((key, session), result) in wanted.into_iter().zip(results) {
        match result {
            Ok(average) => {
                state
                    .baselines
                    .insert(key.clone(), (Arc::clone(session), average));
            }
            Err(e) => tracing::warn!(lane, error = %e, "cannot read a volume baseline"),
        }
    }
}

/// Folds the quotes that came before tick `i` of the batch into the
/// last-price fields, in order.
fn fold_quotes<'a>(
    quotes: &mut std::iter::Peekable<std::slice::Iter<'a, QuoteWrite>>,
    i: usize,
    last: &mut HashMap<(u8, &'a Key), LatestFields>,
    price_order: &mut Vec<(u8, &'a Key)>,
    texts: &mut TickTexts,
) {
    while let Some(q) = quotes.next_if(|q| q.after <= i) {
        let latest = last.entry((q.price_db, &q.price_key)).or_insert_with(|| {
            price_order.push((q.price_db, &q.price_key));
            LatestFields::default()
        });
        if let Some(bid) = q.bid {
            latest.bid = Some(texts.dec(bid));
        }
        if let Some(ask) = q.ask {
            latest.ask = Some(texts.dec(ask));
        }
    }
}

/// The newest value of each last-price field seen in a batch.
#[derive(Default)]
struct LatestFields {
    /// Index of the newest tick (ltp, ts, exchange); none for quotes alone.
    tick: Option<usize>,
    vol: Option<Span>,
    bid: Option<Span>,
    ask: Option<Span>,
}

impl LatestFields {
    fn update(&mut self, i: usize, text: &TickText) {
        self.tick = Some(i);
        for (mine, theirs) in [
            (&mut self.vol, text.vol),
            (&mut self.bid, text.bid),
            (&mut self.ask, text.ask),
        ] {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }
}

/// An EXPIRE of `key`, when it is due: the key's first write of this lane
/// (or since the lane forgot, after a reconnect or Redis restart), or its
/// refresh interval has passed (see [`crate::memo::refresh_interval`]).
fn expire(state: &LaneState, db: u8, key: &Key, secs: i64, cmds: &mut Vec<Cmd>) {
    // An owed EXPIRE of the same key goes out anyway.
    if !state.memo.ttl_due(db, key.as_bytes(), secs)
        || (!state.owed.is_empty() && state.owed.contains_key(&(db, key.clone())))
    {
        return;
    }
    cmds.push(Cmd {
        db,
        kind: Kind::Expire,
        call: Call::Expire {
            key: key.clone(),
            secs,
        },
    });
}

/// Redis' reply to an XADD whose explicit ID is not above the stream's top.
fn is_id_too_small(e: &Error) -> bool {
    e.details()
        .contains("equal or smaller than the target stream top item")
}

/// Redis lost the script cache (restart, SCRIPT FLUSH): load and send again.
fn is_noscript(e: &Error) -> bool {
    e.details().starts_with("NOSCRIPT")
}

/// Redis' ACL refused the command or one of its keys or channels, or a
/// command a Lua script calls (Redis 7.0 says so with `ERR`, not `NOPERM`).
/// Final: sending it again is refused again.
pub fn is_noperm(e: &Error) -> bool {
    let d = e.details();
    d.starts_with("NOPERM") || d.contains("user executing the script can't run this command")
}

/// The command a call sends, for messages.
fn command_name(call: &Call) -> &'static str {
    match call {
        Call::Xadd { .. } => "XADD",
        Call::Hset { .. } => "HSET",
        Call::Expire { .. } => "EXPIRE",
        Call::Del { .. } => "EXPIRE",
        Call::Evalsha { .. } => "EVALSHA",
        Call::SetEx { .. } => "SET",
        Call::Custom { cmd, .. } => cmd,
    }
}

/// The primaries to WAIT on, (`host:port`, a slot, replicas wanted), and the
/// primary of each command, (command, index into the primaries).
type WaitPlan = (Vec<(String, u16, i64)>, Vec<(usize, usize)>);

/// Cluster: the primaries a pipeline of commands `idx` writes to that have
/// replicas to wait for, each with a slot it holds (its WAIT goes there) and
/// the replicas wanted; and the primary of each of those commands:
/// (command, index into the primaries).
fn plan_waits(
    wait: &crate::pools::ReplicaWait,
    client: &Client,
    idx: &[usize],
    calls: &[Option<Call>],
) -> WaitPlan {
    let mut primaries: Vec<(String, u16, i64)> = Vec::new();
    let mut primary_of = Vec::new();
    // Primaries without a replica: not waited on.
    let mut unwaited: Vec<String> = Vec::new();
    let Some(routing) = fred::interfaces::ClusterInterface::cached_cluster_state(client) else {
        return (primaries, primary_of);
    };
    for &i in idx {
        let Some(slot) = calls[i].as_ref().and_then(call_slot) else {
            continue;
        };
        let Some(server) = routing.get_server(slot).map(|s| s.to_string()) else {
            continue;
        };
        if unwaited.contains(&server) {
            continue;
        }
        let p = match primaries.iter().position(|(s, _, _)| *s == server) {
            Some(p) => p,
            None => {
                let wanted = wait.wanted(&server);
                if wanted == 0 {
                    unwaited.push(server);
                    continue;
                }
                primaries.push((server, slot, wanted));
                primaries.len() - 1
            }
        };
        primary_of.push((i, p));
    }
    (primaries, primary_of)
}

/// The cluster slot a call's (first) key is in.
fn call_slot(call: &Call) -> Option<u16> {
    let key: &[u8] = match call {
        Call::Xadd { key, .. }
        | Call::Hset { key, .. }
        | Call::Expire { key, .. }
        | Call::Del { key }
        | Call::SetEx { key, .. } => key.as_bytes(),
        Call::Evalsha { keys, .. } => keys.first()?.as_bytes(),
        Call::Custom { args, .. } => match args.first()? {
            Value::Bytes(b) => b,
            Value::String(s) => s.as_bytes(),
            _ => return None,
        },
    };
    Some(fred::util::redis_keyslot(key))
}

/// Worth sending again: the command may not have reached Redis.
pub(crate) fn is_transient(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Backpressure
            | ErrorKind::Routing
    ) || e.details().starts_with("LOADING")
        || e.details().starts_with("BUSY")
        // fred gave up writing the command on a connection that kept failing.
        || e.details().starts_with("Too many failed write attempts")
}

async fn queue(p: &Pipeline<Client>, call: Call) -> Result<(), Error> {
    match call {
        Call::Xadd {
            key,
            id,
            cap,
            fields,
        } => {
            let cap = XCap::try_from((XCapKind::MaxLen, XCapTrim::AlmostExact, cap))?;
            p.xadd::<(), _, _, _, _>(key, false, cap, XID::Manual(id), fields)
                .await
        }
        Call::Hset { key, fields } => p.hset::<(), _, _>(key, fields).await,
        Call::Expire { key, secs } => p.expire::<(), _>(key, secs, None).await,
        Call::Del { key } => p.expire::<(), _>(key, 0, None).await,
        Call::Evalsha { sha, keys, args } => {
            // fred 10.1's Pipeline has no LuaInterface: EVALSHA as a custom
            // command. In a cluster it goes to its first key's slot, named
            // explicitly: fred routes a custom command by its first string
            // (the SHA; a `hash:` given to `cmd!` other than a slot is not
            // used), so the call reached a random node, came back MOVED and
            // was resent after the commands queued behind it (an EXPIRE then
            // reached a tick stream before the script had made it).
            let cmd = match keys.first() {
                Some(k) => fred::cmd!(
                    "EVALSHA",
                    hash: fred::types::ClusterHash::Custom(fred::util::redis_keyslot(k.as_bytes()))
                ),
                None => fred::cmd!("EVALSHA"),
            };
            let mut all = Vec::with_capacity(2 + keys.len() + args.len());
            all.push(Value::String(sha));
            all.push(Value::Integer(keys.len() as i64));
            all.extend(keys.into_iter().map(|k| Value::Bytes(k.into_bytes())));
            all.extend(args);
            p.custom::<(), _>(cmd, all).await
        }
        Call::SetEx { key, value, secs } => {
            p.set::<(), _, _>(key, value, Some(Expiration::EX(secs)), None, false)
                .await
        }
        Call::Custom { cmd, args } => p.custom::<(), _>(fred::cmd!(cmd), args).await,
    }
}

/// Sends the pending commands of `cmds`, one pipeline per DB, all DBs at once.
/// Returns the last transient error if any command is still pending.
async fn attempt(
    cmds: Vec<Cmd>,
    outcomes: &mut [Outcome],
    replies: &mut [Option<Value>],
    pools: &RedisPools,
    lane: usize,
    stats: &mut WriterStats,
    refusals: &Refusals,
) -> Result<Option<Error>, WriterError> {
    let mut by_db: Vec<(u8, Vec<usize>)> = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        if outcomes[i] != Outcome::Pending {
            continue;
        }
        match by_db.iter_mut().find(|(db, _)| *db == c.db) {
            Some((_, idx)) => idx.push(i),
            None => by_db.push((c.db, vec![i])),
        }
    }
    let names: Vec<&'static str> = cmds.iter().map(|c| command_name(&c.call)).collect();
    let mut calls: Vec<Option<Call>> = cmds.into_iter().map(|c| Some(c.call)).collect();
    let mut sends = Vec::with_capacity(by_db.len());
    for (db, idx) in &by_db {
        let client = pools.client(*db, lane)?;
        let pipeline = client.pipeline();
        let wait = pools.replica_wait();
        if let Some(wait) = wait {
            wait.refresh(client).await;
        }
        let (primaries, primary_of) = match wait {
            Some(wait) => plan_waits(wait, client, idx, &calls),
            None => (Vec::new(), Vec::new()),
        };
        for &i in idx {
            let Some(call) = calls[i].take() else {
                continue;
            };
            // Queuing only buffers the command; it fails only for an argument
            // fred cannot encode, which is final for that command.
            if let Err(e) = queue(&pipeline, call).await {
                tracing::warn!(db, error = %e, "command could not be queued");
                outcomes[i] = Outcome::Failed;
                stats.write_errors += 1;
            }
        }
        let idx: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|i| outcomes[*i] == Outcome::Pending)
            .collect();
        if let Some(wait) = wait {
            for (_, slot, wanted) in &primaries {
                let cmd = fred::cmd!("WAIT", hash: fred::types::ClusterHash::Custom(*slot));
                let args = vec![Value::Integer(*wanted), Value::Integer(wait.timeout_ms)];
                if let Err(e) = pipeline.custom::<(), _>(cmd, args).await {
                    // Not encodable: unreachable for two integers.
                    tracing::warn!(db, error = %e, "WAIT could not be queued");
                }
            }
            stats.commands += primaries.len() as u64;
        }
        // fred 10.1 writes a pipeline as one router command and flushes the
        // socket after each of its commands while nothing else is queued on
        // the client (one writev per command). A PING queued right behind
        // the pipeline keeps the queue non-empty while the pipeline is
        // written, so the socket is flushed once, after the PING. A pipeline
        // of one command is flushed once anyway: the PING would only be a
        // second command and reply (a small batch, a live run's usual one,
        // has two such pipelines of four).
        let ping = idx.len() > 1;
        stats.commands += idx.len() as u64 + u64::from(ping);
        sends.push(async move {
            // `join!` polls in order: the pipeline is queued before the PING.
            let (results, _) = futures_util::join!(pipeline.try_all::<Value>(), async {
                if ping {
                    let _ = client.ping::<Value>(None).await;
                }
            });
            (*db, idx, results, primaries, primary_of)
        });
    }
    stats.pipelines += sends.len() as u64;
    let mut transient = None;
    for (db, idx, mut results, primaries, primary_of) in join_all(sends).await {
        // The WAITs' replies come last; a pipeline that failed as a whole
        // (fewer replies) is settled as such, every command pending.
        let waited = if !primaries.is_empty() && results.len() == idx.len() + primaries.len() {
            results.split_off(idx.len())
        } else {
            Vec::new()
        };
        let settled = settle(
            db, &idx, &names, results, outcomes, replies, stats, refusals,
        );
        if !matches!(settled, Settled::NoPerm(..)) {
            for (p, reply) in waited.into_iter().enumerate() {
                match reply {
                    Ok(Value::Integer(acked)) => {
                        let (primary, _, wanted) = &primaries[p];
                        if let Some(wait) = pools.replica_wait().filter(|_| acked < *wanted) {
                            wait.fell_short(primary, acked, *wanted);
                        }
                    }
                    Ok(_) => {}
                    // Whether the replicas had them is unknown: that
                    // primary's commands go again (each idempotent), to
                    // the replica that took its slots over if it failed.
                    Err(e) => {
                        for &(i, _) in primary_of.iter().filter(|(_, q)| *q == p) {
                            if outcomes[i] != Outcome::Failed {
                                outcomes[i] = Outcome::Pending;
                                replies[i] = None;
                            }
                        }
                        if let Some(wait) = pools.replica_wait() {
                            wait.fell_short(&primaries[p].0, -1, primaries[p].2);
                        }
                        tracing::warn!(
                            db,
                            primary = %primaries[p].0,
                            error = %e,
                            "WAIT failed: the primary's writes go again"
                        );
                        transient = Some(e);
                    }
                }
            }
        }
        match settled {
            Settled::Done => {}
            Settled::Transient(e) => transient = Some(e),
            Settled::NoPerm(i, e) => {
                let command = match names[i] {
                    "EVALSHA" => "EVALSHA (or a command its Lua script calls)".to_string(),
                    name => name.to_string(),
                };
                return Err(WriterError::Permission {
                    url: pools.url().to_string(),
                    command,
                    detail: e.details().to_string(),
                });
            }
        }
    }
    Ok(transient)
}

/// Takes the replies of one DB's pipeline (commands `idx` of the batch) into
/// their outcomes; returns a transient error if any of them is to be sent
/// again.
///
/// A pipeline that failed as a whole comes back as one error for all its
/// commands (a timeout, a connection given up after too many write
/// attempts): nothing is known of any of them, so all stay pending and are
/// sent again, each idempotent. Taking that one error for the first command
/// alone would leave the others unsent while the batch counted as written,
/// and the batch's checkpoints would then go out ahead of outputs Redis
/// never had.
///
/// A command the ACL refused (NOPERM) ends the run: every later command would
/// be refused alike, so it is named once rather than counted per command.
// The batch's per-command records (names, outcomes, replies) are separate
// slices indexed alike: bundling them would only rename the arguments.
#[allow(clippy::too_many_arguments)]
fn settle(
    db: u8,
    idx: &[usize],
    names: &[&'static str],
    results: Vec<Result<Value, Error>>,
    outcomes: &mut [Outcome],
    replies: &mut [Option<Value>],
    stats: &mut WriterStats,
    refusals: &Refusals,
) -> Settled {
    if results.len() != idx.len() {
        let error = results
            .into_iter()
            .find_map(Result::err)
            .unwrap_or_else(|| {
                Error::new(
                    ErrorKind::IO,
                    format!("a pipeline of {} commands had other replies", idx.len()),
                )
            });
        tracing::warn!(db, error = %error, "a pipeline failed as a whole");
        // Pending already: every command is sent again.
        return Settled::Transient(error);
    }
    if let Some((&i, Err(e))) = idx
        .iter()
        .zip(&results)
        .find(|(_, r)| r.as_ref().is_err_and(is_noperm))
    {
        return Settled::NoPerm(i, e.clone());
    }
    let mut transient = None;
    for (&i, result) in idx.iter().zip(results) {
        outcomes[i] = match result {
            // EXPIRE answers 0 for a key that does not exist.
            Ok(Value::Integer(0)) if names.get(i) == Some(&"EXPIRE") => Outcome::Absent,
            // A tick run's outcome per entry, taken apart by the batch.
            Ok(reply @ Value::Array(_)) => {
                replies[i] = Some(reply);
                Outcome::Applied
            }
            Ok(_) => Outcome::Applied,
            Err(e) if is_id_too_small(&e) => Outcome::AlreadyThere,
            Err(e) if is_transient(&e) || is_noscript(&e) => {
                transient = Some(e);
                Outcome::Pending
            }
            Err(e) => {
                refusals.note(db, names.get(i).copied().unwrap_or("?"), &e);
                stats.write_errors += 1;
                Outcome::Failed
            }
        };
    }
    match transient {
        Some(e) => Settled::Transient(e),
        None => Settled::Done,
    }
}

/// How one DB's pipeline came back.
enum Settled {
    /// Every command has its outcome.
    Done,
    /// Some are to be sent again after this error.
    Transient(Error),
    /// The ACL refused command `.0` of the batch.
    NoPerm(usize, Error),
}

/// Writes one batch, retrying transient failures with backoff.
async fn write_batch(
    batch: LaneBatch,
    pools: &RedisPools,
    lane: usize,
    s: &LaneSettings,
    state: &mut LaneState,
    stats: &mut WriterStats,
) -> Result<(), WriterError> {
    state.memo.begin(pools.restart_watch().generation());
    fetch_baselines(&batch, pools, lane, s, state, stats).await;
    // The commands go to fred by value; a retry plans the batch again (the plan
    // is a pure function of the batch and the lane's state) and sends only
    // what is still pending.
    let runs = tick_runs(&batch);
    let cmds = plan_with(&batch, &runs, s, state);
    let meta: Vec<(u8, Kind, Option<Key>)> = cmds
        .iter()
        .map(|c| match &c.call {
            Call::Expire { key, .. } | Call::Del { key } => (c.db, c.kind, Some(key.clone())),
            Call::Evalsha { keys, .. } if matches!(c.kind, Kind::Alert | Kind::Profile) => {
                (c.db, c.kind, keys.first().cloned())
            }
            Call::SetEx { key, .. } => (c.db, c.kind, Some(key.clone())),
            _ => (c.db, c.kind, None),
        })
        .collect();
    let mut outcomes = vec![Outcome::Pending; cmds.len()];
    let mut replies = vec![None; cmds.len()];
    let started = std::time::Instant::now();
    let mut tries = 0;
    let mut loading_said = false;
    let mut next = Some(cmds);
    while let Some(err) = attempt(
        next.take()
            .unwrap_or_else(|| plan_with(&batch, &runs, s, state)),
        &mut outcomes,
        &mut replies,
        pools,
        lane,
        stats,
        &s.refusals,
    )
    .await?
    {
        if crate::is_loading(&err) {
            // Redis is back and loading its data set: wait until it has,
            // then send what is pending at once. Not an attempt against
            // writer.max_retries (a long load is no failure) and no backoff
            // after the load.
            if !loading_said {
                loading_said = true;
                tracing::warn!(
                    lane,
                    "Redis is loading its data set (LOADING): waiting for it, then sending the batch again"
                );
            }
            stats.retries += 1;
            metrics::counter!(tickwire_core::telemetry::REDIS_RETRIES).increment(1);
            crate::wait_loaded(pools.client(s.ticks_db, lane)?).await;
            continue;
        }
        tries += 1;
        if tries > s.max_retries {
            return Err(WriterError::Exhausted {
                url: pools.url().to_string(),
                waited: started.elapsed(),
                max_retries: s.max_retries,
                source: err,
            });
        }
        if is_noscript(&err) {
            // The scripts are idempotent: the calls that failed are sent again
            // once the scripts are back, none of them applied twice.
            tracing::warn!(
                lane,
                "Redis lost the Lua scripts (NOSCRIPT): loading them again"
            );
            stats.script_reloads += 1;
            let client = pools.client(s.ticks_db, lane)?;
            let loaded = s.load_scripts(client).await;
            if let Err(e) = loaded {
                tracing::warn!(lane, error = %e, "SCRIPT LOAD failed");
            }
            continue;
        }
        let backoff = crate::retry_backoff(tries);
        tracing::warn!(lane, attempt = tries, error = %err, "Redis write failed, retrying");
        stats.retries += 1;
        metrics::counter!(tickwire_core::telemetry::REDIS_RETRIES).increment(1);
        tokio::time::sleep(backoff).await;
    }
    let ticks = tick_outcomes(
        &batch,
        &runs,
        &meta,
        &outcomes,
        &mut replies,
        stats,
        &s.refusals,
    )
    .map_err(|e| WriterError::Permission {
        url: pools.url().to_string(),
        command: "XADD (in lua/tick_append.lua)".to_string(),
        detail: e.details().to_string(),
    })?;
    record_metrics(&batch, &meta, &outcomes, &ticks, s, started.elapsed());
    // The newest acknowledged tick is the restart watch's witness.
    if let Some(w) = batch
        .ticks
        .iter()
        .zip(&ticks)
        .rev()
        .find(|(_, o)| **o == Outcome::Applied)
        .map(|(w, _)| w)
    {
        pools.restart_watch().witness(w.db, &w.stream_key, w.id);
    }
    // What the batch set is remembered only if no connection dropped while
    // it was out: otherwise Redis may have lost it (see `LaneState::owed`).
    let steady = state.memo.steady(pools.restart_watch().generation());
    // Waited for Redis: attempts failed, it was loading, or a connection
    // dropped while the batch was out (fred held its commands and sent them
    // again on the new connection, so no attempt failed).
    if tries > 0 || loading_said || !steady {
        stats.redis_wait_ms += started.elapsed().as_millis() as u64;
    }
    if steady {
        state.owed.clear();
    }
    for ((db_no, kind, key), outcome) in meta.into_iter().zip(&outcomes) {
        let db = stats.db(db_no);
        match (kind, outcome) {
            // A key gets its EXPIRE at its first write of the lane (and when
            // due again): count the keys it found there (none where the write
            // before it was refused), and remember when their TTL was set.
            (Kind::Expire, Outcome::Applied) => {
                if let Some(key) = key {
                    db.note_key(key.as_bytes());
                    if steady {
                        state.memo.ttl_was_set(db_no, key.as_bytes());
                    }
                }
            }
            (Kind::Delete, Outcome::Applied | Outcome::Absent) => {
                if let Some(key) = key {
                    state.memo.ttl_forget(db_no, key.as_bytes());
                    db.forget_key(key.as_bytes());
                }
                if *outcome == Outcome::Applied {
                    stats.forming_cleared += 1;
                }
            }
            (Kind::SetEx, Outcome::Applied) => {
                db.hash_writes += 1;
                if let Some(key) = key {
                    db.note_key(key.as_bytes());
                }
            }
            (Kind::Index(memo), Outcome::Applied) => {
                db.hash_writes += 1;
                if steady {
                    state.memo.indexed(memo);
                }
            }
            (Kind::DeadLetter, Outcome::Applied) => {
                db.stream_entries += 1;
                stats.deadlettered += 1;
            }
            (Kind::DeadLetter, Outcome::AlreadyThere) => {
                db.stream_entries_there += 1;
                stats.deadletter_duplicates += 1;
            }
            (Kind::Hash, Outcome::Applied) => db.hash_writes += 1,
            (Kind::Bar, Outcome::Applied) => {
                db.stream_entries += 1;
                stats.bars_written += 1;
            }
            (Kind::Bar, Outcome::AlreadyThere) => {
                db.stream_entries_there += 1;
                stats.bar_duplicates += 1;
            }
            // Refused for good (counted in write_errors): what is missing.
            (Kind::Bar, Outcome::Failed) => stats.bars_failed += 1,
            (Kind::DeadLetter, Outcome::Failed) => stats.deadletters_failed += 1,
            (Kind::Indicator, Outcome::Applied) => {
                db.hash_writes += 1;
                stats.indicator_writes += 1;
            }
            (Kind::Lua, Outcome::Applied) => stats.lua_calls += 1,
            (Kind::Profile, Outcome::Applied) => {
                db.hash_writes += 1;
                if let Some(key) = key {
                    db.note_key(key.as_bytes());
                }
            }
            (Kind::Alert, Outcome::Applied) => {
                if let Some(marker) = key {
                    state.alerted.insert(db_no, marker.as_bytes());
                }
                stats.alert_calls += 1;
            }
            _ => {}
        }
    }
    for (w, outcome) in batch.ticks.iter().zip(&ticks) {
        match outcome {
            Outcome::Applied => {
                stats.db(w.db).stream_entries += 1;
                stats.ticks_written += 1;
            }
            Outcome::AlreadyThere => {
                stats.db(w.db).stream_entries_there += 1;
                stats.duplicates += 1;
            }
            Outcome::Failed => stats.ticks_failed += 1,
            _ => {}
        }
    }
    if !steady {
        owe_expires(&batch, s, state);
    }
    Ok(())
}

/// Each tick's outcome: that of its run's command (see [`plan_ticks`]), or,
/// for a run written by `tick_append.lua`, that of its entry in the reply.
/// An entry Redis refused is a write error (the first refusal of its kind
/// logged); an entry the ACL refused is returned as the error that ends the
/// run, as a refused command is.
fn tick_outcomes(
    batch: &LaneBatch,
    runs: &[Vec<usize>],
    meta: &[(u8, Kind, Option<Key>)],
    outcomes: &[Outcome],
    replies: &mut [Option<Value>],
    stats: &mut WriterStats,
    refusals: &Refusals,
) -> Result<Vec<Outcome>, Error> {
    let mut ticks = vec![Outcome::Pending; batch.ticks.len()];
    for (c, (db, kind, _)) in meta.iter().enumerate() {
        let Kind::Ticks(r) = kind else {
            continue;
        };
        let Some(run) = runs.get(*r) else {
            continue;
        };
        let entries = match replies[c].take() {
            Some(Value::Array(entries)) if entries.len() == run.len() => entries,
            Some(other) => {
                // Not the script's reply (a script of another version under
                // its SHA-1?): nothing is known of the entries.
                tracing::warn!(db, reply = ?other, "tick_append.lua gave a reply of another shape");
                stats.write_errors += run.len() as u64;
                for &t in run {
                    ticks[t] = Outcome::Failed;
                }
                continue;
            }
            None => {
                if outcomes[c] == Outcome::Failed && run.len() > 1 {
                    // One write error per entry, as when each was its own XADD
                    // (settle counted the command once).
                    stats.write_errors += run.len() as u64 - 1;
                }
                for &t in run {
                    ticks[t] = outcomes[c].clone();
                }
                continue;
            }
        };
        for (&t, entry) in run.iter().zip(entries) {
            ticks[t] = match entry {
                Value::Integer(1) => Outcome::Applied,
                Value::Integer(0) => Outcome::AlreadyThere,
                other => {
                    let text = other.as_string().unwrap_or_else(|| format!("{other:?}"));
                    let e = Error::new(ErrorKind::Unknown, text);
                    if is_noperm(&e) {
                        return Err(e);
                    }
                    refusals.note(*db, "XADD", &e);
                    stats.write_errors += 1;
                    Outcome::Failed
                }
            };
        }
    }
    Ok(ticks)
}

/// After a batch during which a connection dropped or Redis restarted:
/// forgets every TTL set, and owes an EXPIRE to each key of the batch (those
/// it skipped may have been written again, without one, to a Redis that lost
/// them), to be sent with the next batch.
fn owe_expires(batch: &LaneBatch, s: &LaneSettings, state: &mut LaneState) {
    state.memo.forget();
    let owed: Vec<((u8, Key), i64)> = plan(batch, s, state)
        .into_iter()
        .filter_map(|c| match c.call {
            Call::Expire { key, secs } => Some(((c.db, key), secs)),
            _ => None,
        })
        .collect();
    state.owed.extend(owed);
}

/// Per batch: what was written per DB, how long it took, and (live) how old
/// each tick was when Redis had it.
fn record_metrics(
    batch: &LaneBatch,
    meta: &[(u8, Kind, Option<Key>)],
    outcomes: &[Outcome],
    ticks: &[Outcome],
    s: &LaneSettings,
    took: Duration,
) {
    use std::sync::atomic::Ordering;
    use tickwire_core::telemetry as t;
    // (db, ticks, duplicates, dead letters, bars, refused)
    let mut per_db: Vec<(u8, [u64; 5])> = Vec::new();
    let tick_slots = batch.ticks.iter().zip(ticks).filter_map(|(w, o)| {
        let slot = match o {
            Outcome::Applied => 0,
            Outcome::AlreadyThere => 1,
            Outcome::Failed => 4,
            _ => return None,
        };
        Some((w.db, slot))
    });
    let other_slots = meta.iter().zip(outcomes).filter_map(|((db, kind, _), o)| {
        let slot = match (kind, o) {
            // A tick run's outcome is counted per tick, above.
            (Kind::Ticks(_), _) => return None,
            (Kind::DeadLetter, Outcome::Applied) => 2,
            (Kind::Bar, Outcome::Applied) => 3,
            (_, Outcome::Failed) => 4,
            _ => return None,
        };
        Some((*db, slot))
    });
    for (db, slot) in tick_slots.chain(other_slots) {
        match per_db.iter_mut().find(|(d, _)| *d == db) {
            Some((_, n)) => n[slot] += 1,
            None => {
                let mut n = [0; 5];
                n[slot] = 1;
                per_db.push((db, n));
            }
        }
    }
    let mut written = 0;
    for (db, n) in per_db {
        let db = db.to_string();
        for (name, v) in [
            (t::TICKS_WRITTEN, n[0]),
            (t::DUPLICATES, n[1]),
            (t::DEADLETTERS_WRITTEN, n[2]),
            (t::BARS_WRITTEN, n[3]),
            (t::REDIS_WRITE_ERRORS, n[4]),
        ] {
            if v > 0 {
                metrics::counter!(name, "db" => db.clone()).increment(v);
            }
        }
        written += n[0];
    }
    metrics::histogram!(t::BATCH_SIZE).record(batch.len() as f64);
    metrics::histogram!(t::REDIS_WRITE_LATENCY).record(took.as_secs_f64());
    s.progress
        .ticks_written
        .fetch_add(written, Ordering::Relaxed);
    if let Some(last) = batch.ticks.last() {
        s.progress
            .last_tick_ms
            .fetch_max(last.tick.exchange_ts_ms(), Ordering::Relaxed);
    }
    if s.tick_latency && !batch.ticks.is_empty() {
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let h = metrics::histogram!(t::TICK_TO_REDIS_LATENCY);
        for w in &batch.ticks {
            h.record((now_ns - w.tick.recv_ts_ns).max(0) as f64 / 1e9);
        }
    }
}

/// How a lane tells the dispatcher it waits for work: `flag` set, then
/// `wake` notified.
pub(crate) struct Idle {
    pub(crate) flag: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

impl Idle {
    fn say(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }
}

/// The lane task: writes batches in arrival order until its channel closes.
pub(crate) async fn run_lane(
    lane: usize,
    mut rx: mpsc::Receiver<LaneBatch>,
    pools: Arc<RedisPools>,
    settings: LaneSettings,
    idle: Idle,
) -> Result<WriterStats, crate::WriterFailure> {
    let mut stats = WriterStats::default();
    // A lane that stops on an error hands on what it wrote before.
    let failed = |error, stats: &mut WriterStats| crate::WriterFailure {
        error,
        stats: std::mem::take(stats),
    };
    let mut state = LaneState::default();
    // The checkpoints of the batch written last, acknowledged with it.
    let mut acknowledged: Vec<SnapshotWrite> = Vec::new();
    while let Some(mut batch) = rx.recv().await {
        let checkpoints = std::mem::take(&mut batch.checkpoints);
        batch.snapshots.append(&mut acknowledged);
        if let Err(e) = write_batch(batch, &pools, lane, &settings, &mut state, &mut stats).await {
            return Err(failed(e, &mut stats));
        }
        acknowledged = checkpoints;
        if rx.is_empty() {
            idle.say();
        }
    }
    if !acknowledged.is_empty() {
        let last = LaneBatch {
            snapshots: acknowledged,
            ..LaneBatch::default()
        };
        if let Err(e) = write_batch(last, &pools, lane, &settings, &mut state, &mut stats).await {
            return Err(failed(e, &mut stats));
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ProfileValue, ProfileWrite};
    use tickwire_core::profiles::RedisType;

    fn write(key: &str, redis_type: RedisType, value: ProfileValue) -> ProfileWrite {
        ProfileWrite {
            db: 0,
            key: Key::from(key),
            redis_type,
            ttl: 60,
            cap: 100,
            publish: None,
            order_field: "ts".into(),
            value,
        }
    }

    /// A quote that names neither side writes nothing: no HSET of no
    /// fields (which Redis refuses, a write error per quote), no EXPIRE.
    #[test]
    fn a_quote_without_bid_and_ask_plans_no_empty_hset() {
        let settings = settings();
        let quote = |key: &str, bid: Option<f64>| QuoteWrite {
            price_key: Key::from(key),
            price_db: 0,
            after: 0,
            bid: bid.and_then(tickwire_core::Dec::from_f64),
            ask: None,
        };
        let mut batch = LaneBatch::default();
        batch.quotes.push(quote("price:empty", None));
        batch.quotes.push(quote("price:bid", Some(1.5)));
        let cmds = plan(&batch, &settings, &LaneState::default());
        let hsets: Vec<(&Key, usize)> = cmds
            .iter()
            .filter_map(|c| match &c.call {
                Call::Hset { key, fields } => Some((key, fields.len())),
                _ => None,
            })
            .collect();
        assert_eq!(hsets, [(&Key::from("price:bid"), 1)]);
        assert!(!cmds.iter().any(
            |c| matches!(&c.call, Call::Expire { key, .. } if *key == Key::from("price:empty"))
        ));
    }

    fn expires(cmds: &[Cmd]) -> Vec<Key> {
        cmds.iter()
            .filter_map(|c| match &c.call {
                Call::Expire { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect()
    }

    /// A key's EXPIRE goes with its first write, not with every batch; a
    /// new connection generation (reconnect, restart) sends it again, and
    /// an EXPIRE owed after a batch that was out during one is planned.
    #[test]
    fn a_key_is_expired_once_then_again_after_a_reconnect_or_when_owed() {
        let settings = settings();
        let mut batch = LaneBatch::default();
        batch.quotes.push(QuoteWrite {
            price_key: Key::from("price:a"),
            price_db: 2,
            after: 0,
            bid: tickwire_core::Dec::from_f64(1.5),
            ask: None,
        });
        let mut state = LaneState::default();
        state.memo.begin(0);
        assert_eq!(
            expires(&plan(&batch, &settings, &state)),
            [Key::from("price:a")]
        );
        state.memo.ttl_was_set(2, b"price:a");
        // The same plan again (a retry of the batch, or the next batch).
        let cmds = plan(&batch, &settings, &state);
        assert!(expires(&cmds).is_empty());
        assert_eq!(cmds.len(), 1, "the HSET alone");
        state.memo.begin(0);
        assert!(expires(&plan(&batch, &settings, &state)).is_empty());
        state.memo.begin(1);
        assert_eq!(
            expires(&plan(&batch, &settings, &state)),
            [Key::from("price:a")]
        );
        state.memo.ttl_was_set(2, b"price:a");
        state.owed.insert((4, Key::from("ticks:b")), 60);
        assert_eq!(
            expires(&plan(&batch, &settings, &state)),
            [Key::from("ticks:b")]
        );
    }

    fn settings() -> LaneSettings {
        LaneSettings {
            ticks_db: 0,
            system_db: 0,
            ticks_ttl: 60,
            system_ttl: 60,
            maxlen: 100,
            deadletter_maxlen: 100,
            max_retries: 1,
            lua: None,
            ttl_by_db: [60; 16],
            volume_db: 0,
            session_ttl: 60,
            alerts: AlertSettings {
                script: Script::from_lua(crate::LUA_VOLUME_ALERT),
                threshold: 2.0,
                db: 0,
                maxlen: 100,
                stream_ttl: 60,
                marker_ttl: 60,
            },
            progress: Arc::default(),
            tick_script: Script::from_lua(crate::LUA_TICK_APPEND),
            profile_script: None,
            tick_latency: false,
            refusals: Arc::default(),
        }
    }

    const NAMES: [&str; 4] = ["XADD", "XADD", "XADD", "HSET"];

    /// An EXPIRE that finds no key (the write before it refused) is not a
    /// key Redis took; refusals are counted per command, logged per kind.
    #[test]
    fn an_expire_of_a_missing_key_is_absent_and_refusals_are_counted_by_kind() {
        let mut stats = WriterStats::default();
        let names = ["XADD", "EXPIRE", "HSET", "EXPIRE", "HSET"];
        let mut outcomes = vec![Outcome::Pending; 5];
        let oom = || {
            Err(Error::new(
                ErrorKind::Unknown,
                "OOM command not allowed when used memory > 'maxmemory'.",
            ))
        };
        let refusals = Refusals::default();
        let replies = vec![
            oom(),
            Ok(Value::Integer(0)),
            oom(),
            Ok(Value::Integer(1)),
            oom(),
        ];
        assert!(matches!(
            settle(
                0,
                &[0, 1, 2, 3, 4],
                &names,
                replies,
                &mut outcomes,
                &mut vec![None; 8],
                &mut stats,
                &refusals
            ),
            Settled::Done
        ));
        assert_eq!(
            outcomes,
            [
                Outcome::Failed,
                Outcome::Absent,
                Outcome::Failed,
                Outcome::Applied,
                Outcome::Failed
            ]
        );
        assert_eq!(stats.write_errors, 3);
        let seen = refusals.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                ("OOM".to_string(), "XADD", 1),
                ("OOM".to_string(), "HSET", 2)
            ]
        );
    }

    #[test]
    fn a_pipeline_that_failed_as_a_whole_is_sent_again_whole() {
        let mut stats = WriterStats::default();
        let mut outcomes = vec![Outcome::Pending; 4];
        // fred's answer for a pipeline it gave up on: one error for all.
        let gave_up = Error::new(ErrorKind::Unknown, "Too many failed write attempts.");
        let e = settle(
            2,
            &[0, 2, 3],
            &NAMES,
            vec![Err(gave_up)],
            &mut outcomes,
            &mut vec![None; 8],
            &mut stats,
            &Refusals::default(),
        );
        assert!(matches!(e, Settled::Transient(_)), "to be retried");
        assert_eq!(outcomes, vec![Outcome::Pending; 4], "none taken as done");
        assert_eq!(stats.write_errors, 0);
        // Replies for each command: each its own outcome.
        let replies = vec![
            Ok(Value::Null),
            Err(Error::new(
                ErrorKind::Unknown,
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )),
            Err(Error::new(ErrorKind::InvalidArgument, "WRONGTYPE")),
        ];
        assert!(matches!(
            settle(
                2,
                &[0, 2, 3],
                &NAMES,
                replies,
                &mut outcomes,
                &mut vec![None; 8],
                &mut stats,
                &Refusals::default()
            ),
            Settled::Done
        ));
        assert_eq!(
            outcomes,
            [
                Outcome::Applied,
                Outcome::Pending,
                Outcome::AlreadyThere,
                Outcome::Failed
            ]
        );
        assert_eq!(stats.write_errors, 1);
        // A lone command fred gave up on is sent again too.
        let mut one = vec![Outcome::Pending];
        let gave_up = Error::new(ErrorKind::Unknown, "Too many failed write attempts.");
        assert!(matches!(
            settle(
                2,
                &[0],
                &NAMES,
                vec![Err(gave_up)],
                &mut one,
                &mut vec![None; 8],
                &mut stats,
                &Refusals::default()
            ),
            Settled::Transient(_)
        ));
        assert_eq!(one, [Outcome::Pending]);
    }

    #[test]
    fn a_command_the_acl_refuses_stops_the_batch_naming_it_not_counted() {
        let mut stats = WriterStats::default();
        let mut outcomes = vec![Outcome::Pending; 3];
        let noperm = || {
            Err(Error::new(
                ErrorKind::Unknown,
                "NOPERM User tw has no permissions to run the 'xadd' command",
            ))
        };
        let replies = vec![Ok(Value::Null), noperm(), noperm()];
        match settle(
            0,
            &[0, 1, 2],
            &NAMES,
            replies,
            &mut outcomes,
            &mut vec![None; 8],
            &mut stats,
            &Refusals::default(),
        ) {
            Settled::NoPerm(i, e) => {
                assert_eq!(i, 1, "the first refused command");
                assert!(e.details().contains("'xadd'"));
            }
            _ => panic!("NOPERM is final"),
        }
        assert_eq!(stats.write_errors, 0, "not one write error per command");
        // A command a script calls, refused (Redis 7.0's words), is one too.
        assert!(is_noperm(&Error::new(
            ErrorKind::Unknown,
            "ERR The user executing the script can't run this command or subcommand script: \
             2a08c2, on @user_script:38.",
        )));
        assert!(!is_noperm(&Error::new(ErrorKind::Unknown, "WRONGTYPE")));
    }

    #[test]
    fn a_profile_costs_one_command_per_key_per_batch() {
        let mut batch = LaneBatch::default();
        for i in 0..500 {
            batch.profile.push(write(
                "price:a",
                RedisType::String,
                ProfileValue::Text(format!("{{\"price\":{i}}}")),
            ));
            batch.profile.push(write(
                "ticks:b",
                RedisType::Hash,
                ProfileValue::Fields(vec![("ltp".into(), i.to_string())]),
            ));
            if i % 100 == 0 {
                batch.profile.push(write(
                    "bars:b",
                    RedisType::List,
                    ProfileValue::Entry(i, format!("{{\"ts\":{i}}}")),
                ));
            }
        }
        let script = Script::from_lua(crate::LUA_PROFILE_WRITE);
        let mut cmds = Vec::new();
        plan_profiles(&batch, Some(&script), &mut cmds);
        assert_eq!(cmds.len(), 3, "one EVALSHA per key");
        let args = |i: usize| match &cmds[i].call {
            Call::Evalsha { args, .. } => args.clone(),
            _ => panic!("not an EVALSHA"),
        };
        // The string and the hash: only the batch's latest value.
        assert_eq!(args(0).last(), Some(&Value::from("{\"price\":499}")));
        assert_eq!(args(1)[5..], [Value::from("ltp"), Value::from("499")]);
        // The list: every entry, oldest first.
        assert_eq!(args(2).len(), 5 + 2 * 5);
        assert_eq!(args(2)[5], Value::Integer(0));
    }
}
