//! Sending a plan: one pipeline per DB, all DBs at once; transient failures
//! sent again, final ones counted; the outcome of every command settled into
//! the lane's stats and metrics, and the TTLs it set remembered.

use std::time::Duration;

use fred::clients::Pipeline;
use fred::prelude::*;
use fred::types::streams::{XCap, XCapKind, XCapTrim, XID};
use futures_util::future::join_all;

use crate::lane::baselines::fetch_baselines;
use crate::lane::cluster::plan_waits;
use crate::lane::errors::*;
use crate::lane::settings::Refusals;
use crate::lane::settings::{LaneSettings, LaneState};
use crate::plan::cmd::{Call, Cmd, Kind};
use crate::plan::ticks::tick_runs;
use crate::plan::{plan, plan_with, LaneBatch};
use crate::stats::WriterStats;
use crate::{pools::RedisPools, WriterError};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Pending,
    Applied,
    /// An XADD whose ID the stream already had.
    AlreadyThere,
    /// An EXPIRE of a key Redis does not hold (it replied 0): the write
    /// before it was refused (out of memory), so the key is not counted.
    Absent,
    Failed,
}

/// The command a call sends, for messages.
pub(crate) fn command_name(call: &Call) -> &'static str {
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

pub(crate) async fn queue(p: &Pipeline<Client>, call: Call) -> Result<(), Error> {
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
pub(crate) async fn attempt(
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
pub(crate) fn settle(
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
pub(crate) enum Settled {
    /// Every command has its outcome.
    Done,
    /// Some are to be sent again after this error.
    Transient(Error),
    /// The ACL refused command `.0` of the batch.
    NoPerm(usize, Error),
}

/// Writes one batch, retrying transient failures with backoff.
pub(crate) async fn write_batch(
    batch: LaneBatch,
    pools: &RedisPools,
    lane: usize,
    s: &LaneSettings,
    state: &mut LaneState,
    stats: &mut WriterStats,
) -> Result<(), WriterError> {
    state.memo.begin(pools.restart_watch().generation());
    fetch_baselines(&batch.volumes, pools, lane, s, state, stats).await;
    // The commands go to fred by value; a retry plans the batch again (the plan
    // is a pure function of the batch and the lane's state) and sends only
    // what is still pending.
    let runs = tick_runs(&batch.ticks);
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
    account(meta, &outcomes, steady, state, stats);
    account_ticks(&batch, &ticks, stats);
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
pub(crate) fn tick_outcomes(
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
pub(crate) fn owe_expires(batch: &LaneBatch, s: &LaneSettings, state: &mut LaneState) {
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
pub(crate) fn record_metrics(
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

/// Counts what each settled command did into `stats`, and remembers in
/// `state` the TTLs set, indexes written and alerts sent (only when no
/// connection dropped while the batch was out: `steady`).
fn account(
    meta: Vec<(u8, Kind, Option<Key>)>,
    outcomes: &[Outcome],
    steady: bool,
    state: &mut LaneState,
    stats: &mut WriterStats,
) {
    for ((db_no, kind, key), outcome) in meta.into_iter().zip(outcomes) {
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
            (Kind::Gap, Outcome::Applied) => {
                db.stream_entries += 1;
                stats.gaps_written += 1;
            }
            (Kind::Gap, Outcome::AlreadyThere) => db.stream_entries_there += 1,
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
}

/// Counts each tick's outcome into `stats`.
fn account_ticks(batch: &LaneBatch, ticks: &[Outcome], stats: &mut WriterStats) {
    for (w, outcome) in batch.ticks.iter().zip(ticks) {
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
}
