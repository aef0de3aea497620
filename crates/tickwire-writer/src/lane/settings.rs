//! What a lane writes with (its settings: DBs, TTLs, caps, scripts) and what
//! it remembers between batches (TTLs set, baselines read, alerts sent).

use std::sync::Arc;

use foldhash::HashMap;
use fred::prelude::*;
use fred::types::scripts::Script;

use crate::memo::{BoundedSet, Memo};

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
    pub(crate) baselines: HashMap<Key, (Arc<str>, Option<f64>)>,
    /// Buckets whose alert went out (bounded; the script appends a bucket's
    /// alert once whatever is forgotten here).
    pub(crate) alerted: BoundedSet,
    /// Which keys' TTLs this lane set and when, and which volume index
    /// members it wrote: bookkeeping is sent when due, not every batch.
    pub(crate) memo: Memo,
    /// EXPIREs owed after a batch during which a connection dropped or
    /// Redis restarted: its keys may have been written again to a Redis that
    /// lost them, without the EXPIRE the lane skipped for them. Sent with
    /// the next batch.
    pub(crate) owed: HashMap<(u8, Key), i64>,
}

/// Baselines kept per lane at most (a cache: a bucket's is read again).
pub(crate) const BASELINES_CAP: usize = 1 << 16;

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
pub(crate) struct Refusals(pub(crate) std::sync::Mutex<Vec<(String, &'static str, u64)>>);

impl Refusals {
    /// Counts a refusal of `command` with `e`; logs it if it is the first
    /// of its kind.
    pub(crate) fn note(&self, db: u8, command: &'static str, e: &Error) {
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
    pub(crate) fn ttl(&self, db: u8) -> i64 {
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
    pub(crate) async fn load(&self, client: &Client) -> Result<(), Error> {
        self.bar_indicators.load(client).await?;
        self.vwap.load(client).await
    }
}
