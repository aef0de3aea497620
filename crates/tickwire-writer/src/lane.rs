//! A writer lane: one connection per DB, one batch at a time, in order.
//!
//! A batch becomes a plan of commands (XADD per tick, one HSET per instrument
//! for its last price, XADD per dead letter, one EXPIRE per key), sent as one
//! pipeline per DB, all DBs at once. Commands that fail for a transient reason
//! (connection lost, timeout) are sent again; the rest are final. Every command
//! is idempotent, so a resend never double-applies anything.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Pipeline;
use fred::prelude::*;
use fred::types::streams::{XCap, XCapKind, XCapTrim};
use futures_util::future::join_all;
use tickwire_core::{Rejected, Tick};
use tokio::sync::mpsc;

use crate::ids::format_id;
use crate::stats::WriterStats;
use crate::{pools::RedisPools, WriterError};

/// One tick with its stream ID and keys.
pub(crate) struct TickWrite {
    pub stream_key: Arc<str>,
    pub price_key: Arc<str>,
    pub id: (u64, u64),
    pub tick: Tick,
}

/// One rejected frame with its dead-letter stream ID and key.
pub(crate) struct RejectWrite {
    pub key: Arc<str>,
    pub id: (u64, u64),
    pub rejected: Rejected,
}

#[derive(Default)]
pub(crate) struct LaneBatch {
    pub ticks: Vec<TickWrite>,
    pub rejects: Vec<RejectWrite>,
}

impl LaneBatch {
    pub fn len(&self) -> usize {
        self.ticks.len() + self.rejects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a lane writes and with what limits.
#[derive(Clone)]
pub(crate) struct LaneSettings {
    pub ticks_db: u8,
    pub prices_db: u8,
    pub system_db: u8,
    pub ticks_ttl: i64,
    pub prices_ttl: i64,
    pub system_ttl: i64,
    pub maxlen: i64,
    pub deadletter_maxlen: i64,
    pub max_retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tick,
    DeadLetter,
    Hash,
    Expire,
}

enum Call {
    Xadd {
        key: Arc<str>,
        id: String,
        cap: i64,
        fields: Vec<(&'static str, Value)>,
    },
    Hset {
        key: Arc<str>,
        fields: Vec<(&'static str, Value)>,
    },
    Expire {
        key: Arc<str>,
        secs: i64,
    },
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
    Failed,
}

fn plan(batch: &LaneBatch, s: &LaneSettings) -> Vec<Cmd> {
    let mut cmds = Vec::with_capacity(batch.ticks.len() + 4 * 16 + batch.rejects.len() * 2);
    let mut stream_keys: Vec<&Arc<str>> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    // The latest tick of each instrument in this batch, in first-seen order.
    let mut last: HashMap<&str, usize> = HashMap::new();
    let mut price_order: Vec<&Arc<str>> = Vec::new();
    for (i, w) in batch.ticks.iter().enumerate() {
        let t = &w.tick;
        let mut fields = Vec::with_capacity(6);
        fields.push(("ltp", Value::Double(t.price)));
        fields.push(("qty", Value::Double(t.qty)));
        fields.push(("ts", Value::Integer(t.exchange_ts_ms())));
        push_optional(&mut fields, t);
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Tick,
            call: Call::Xadd {
                key: Arc::clone(&w.stream_key),
                id: format_id(w.id),
                cap: s.maxlen,
                fields,
            },
        });
        if seen.insert(&w.stream_key) {
            stream_keys.push(&w.stream_key);
        }
        if last.insert(&w.price_key, i).is_none() {
            price_order.push(&w.price_key);
        }
    }
    for key in stream_keys {
        cmds.push(expire(s.ticks_db, key, s.ticks_ttl));
    }
    for key in price_order {
        let t = &batch.ticks[last[&**key]].tick;
        let mut fields = Vec::with_capacity(6);
        fields.push(("ltp", Value::Double(t.price)));
        fields.push(("ts", Value::Integer(t.exchange_ts_ms())));
        push_optional(&mut fields, t);
        fields.push(("exchange", Value::from(&*t.instrument.exchange)));
        cmds.push(Cmd {
            db: s.prices_db,
            kind: Kind::Hash,
            call: Call::Hset {
                key: Arc::clone(key),
                fields,
            },
        });
        cmds.push(expire(s.prices_db, key, s.prices_ttl));
    }
    let mut dl_keys: Vec<&Arc<str>> = Vec::new();
    for r in &batch.rejects {
        let j = &r.rejected;
        let mut fields = vec![
            ("error", Value::from(format!("{}: {}", j.error_type, j.error))),
            ("raw", Value::from(j.raw.as_str())),
        ];
        if let Some(ns) = j.recv_ts_ns {
            fields.push(("recv_ts", Value::Integer(ns.div_euclid(1_000_000))));
        }
        cmds.push(Cmd {
            db: s.system_db,
            kind: Kind::DeadLetter,
            call: Call::Xadd {
                key: Arc::clone(&r.key),
                id: format_id(r.id),
                cap: s.deadletter_maxlen,
                fields,
            },
        });
        if !dl_keys.iter().any(|k| **k == r.key) {
            dl_keys.push(&r.key);
        }
    }
    for key in dl_keys {
        cmds.push(expire(s.system_db, key, s.system_ttl));
    }
    cmds
}

fn push_optional(fields: &mut Vec<(&'static str, Value)>, t: &Tick) {
    if let Some(v) = t.cum_volume {
        fields.push(("vol", Value::Double(v)));
    }
    if let Some(v) = t.bid {
        fields.push(("bid", Value::Double(v)));
    }
    if let Some(v) = t.ask {
        fields.push(("ask", Value::Double(v)));
    }
}

fn expire(db: u8, key: &Arc<str>, secs: i64) -> Cmd {
    Cmd {
        db,
        kind: Kind::Expire,
        call: Call::Expire {
            key: Arc::clone(key),
            secs,
        },
    }
}

/// Redis' reply to an XADD whose explicit ID is not above the stream's top.
fn is_id_too_small(e: &Error) -> bool {
    e.details().contains("equal or smaller than the target stream top item")
}

/// Worth sending again: the command may not have reached Redis.
fn is_transient(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Backpressure | ErrorKind::Routing
    ) || e.details().starts_with("LOADING")
        || e.details().starts_with("BUSY")
}

async fn queue(p: &Pipeline<Client>, cmd: &Cmd) -> Result<(), Error> {
    match &cmd.call {
        Call::Xadd { key, id, cap, fields } => {
            let cap = XCap::try_from((XCapKind::MaxLen, XCapTrim::AlmostExact, *cap))?;
            p.xadd::<(), _, _, _, _>(&**key, false, cap, id.as_str(), fields.clone()).await
        }
        Call::Hset { key, fields } => p.hset::<(), _, _>(&**key, fields.clone()).await,
        Call::Expire { key, secs } => p.expire::<(), _>(&**key, *secs, None).await,
    }
}

/// Sends the pending commands of `cmds`, one pipeline per DB, all DBs at once.
/// Returns the last transient error if any command is still pending.
async fn attempt(
    cmds: &[Cmd],
    outcomes: &mut [Outcome],
    pools: &RedisPools,
    lane: usize,
    stats: &mut WriterStats,
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
    let mut sends = Vec::with_capacity(by_db.len());
    for (db, idx) in &by_db {
        let pipeline = pools.client(*db, lane)?.pipeline();
        for &i in idx {
            // Queuing only buffers the command; it fails only for an argument
            // fred cannot encode, which is final for that command.
            if let Err(e) = queue(&pipeline, &cmds[i]).await {
                tracing::warn!(db, error = %e, "command could not be queued");
                outcomes[i] = Outcome::Failed;
                stats.write_errors += 1;
            }
        }
        let idx: Vec<usize> = idx.iter().copied().filter(|i| outcomes[*i] == Outcome::Pending).collect();
        sends.push(async move { (idx, pipeline.try_all::<Value>().await) });
    }
    stats.pipelines += sends.len() as u64;
    let mut transient = None;
    for (idx, results) in join_all(sends).await {
        for (n, i) in idx.into_iter().enumerate() {
            let Some(result) = results.get(n) else {
                continue;
            };
            outcomes[i] = match result {
                Ok(_) => Outcome::Applied,
                Err(e) if is_id_too_small(e) => Outcome::AlreadyThere,
                Err(e) if is_transient(e) => {
                    transient = Some(e.clone());
                    Outcome::Pending
                }
                Err(e) => {
                    tracing::warn!(db = cmds[i].db, error = %e, "Redis refused a write");
                    stats.write_errors += 1;
                    Outcome::Failed
                }
            };
        }
    }
    Ok(transient)
}

/// Writes one batch, retrying transient failures with backoff.
async fn write_batch(
    batch: LaneBatch,
    pools: &RedisPools,
    lane: usize,
    s: &LaneSettings,
    stats: &mut WriterStats,
) -> Result<(), WriterError> {
    let cmds = plan(&batch, s);
    let mut outcomes = vec![Outcome::Pending; cmds.len()];
    let mut tries = 0;
    while let Some(err) = attempt(&cmds, &mut outcomes, pools, lane, stats).await? {
        tries += 1;
        if tries > s.max_retries {
            return Err(WriterError::Exhausted {
                attempts: tries,
                source: err,
            });
        }
        let backoff = Duration::from_millis((50u64 << tries.min(6)).min(2_000));
        tracing::warn!(lane, attempt = tries, error = %err, "Redis write failed, retrying");
        tokio::time::sleep(backoff).await;
    }
    for (cmd, outcome) in cmds.iter().zip(&outcomes) {
        let db = stats.db(cmd.db);
        match (cmd.kind, outcome) {
            // Every key of the batch gets exactly one EXPIRE: count keys there.
            (Kind::Expire, _) => {
                if let Call::Expire { key, .. } = &cmd.call {
                    if !db.keys.contains(&**key) {
                        db.keys.insert(key.to_string());
                    }
                }
            }
            (Kind::Tick, Outcome::Applied) => {
                db.stream_entries += 1;
                stats.ticks_written += 1;
            }
            (Kind::Tick, Outcome::AlreadyThere) => stats.duplicates += 1,
            (Kind::DeadLetter, Outcome::Applied) => {
                db.stream_entries += 1;
                stats.deadlettered += 1;
            }
            (Kind::DeadLetter, Outcome::AlreadyThere) => stats.deadletter_duplicates += 1,
            (Kind::Hash, Outcome::Applied) => db.hash_writes += 1,
            _ => {}
        }
    }
    Ok(())
}

/// The lane task: writes batches in arrival order until its channel closes.
pub(crate) async fn run_lane(
    lane: usize,
    mut rx: mpsc::Receiver<LaneBatch>,
    pools: Arc<RedisPools>,
    settings: LaneSettings,
) -> Result<WriterStats, WriterError> {
    let mut stats = WriterStats::default();
    while let Some(batch) = rx.recv().await {
        write_batch(batch, &pools, lane, &settings, &mut stats).await?;
    }
    Ok(stats)
}
