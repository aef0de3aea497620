//! What the writer did, for the end-of-run summary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicU64};

/// Totals readable while the writer runs (the heartbeat's source).
#[derive(Debug, Default)]
pub struct WriterProgress {
    /// Ticks appended to their stream so far.
    pub ticks_written: AtomicU64,
    /// Exchange time (epoch ms) of the latest tick written; 0 before the first.
    pub last_tick_ms: AtomicI64,
}

/// Writes to one logical DB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Distinct keys written.
    pub keys: BTreeSet<String>,
    /// Stream entries added (ticks or dead letters).
    pub stream_entries: u64,
    /// Hash writes (HSET of a whole hash counts once).
    pub hash_writes: u64,
}

/// Totals of one writer run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Ticks appended to their stream.
    pub ticks_written: u64,
    /// Ticks whose ID was already in the stream (a replay, a re-sent batch).
    pub duplicates: u64,
    /// Rejected frames appended to a dead-letter stream.
    pub deadlettered: u64,
    /// Dead letters already in their stream.
    pub deadletter_duplicates: u64,
    /// Frames skipped by the parser (valid but of unused kinds).
    pub skipped: u64,
    /// Closed bars appended to their stream.
    pub bars_written: u64,
    /// Closed bars already in their stream.
    pub bar_duplicates: u64,
    /// Indicator hash writes (one per key per batch, the latest value).
    pub indicator_writes: u64,
    /// EVALSHA calls of the Lua engine that ran.
    pub lua_calls: u64,
    /// Volume-surge alert calls (the script appends only a bucket's first).
    pub alert_calls: u64,
    /// Times the Lua scripts were loaded again after NOSCRIPT.
    pub script_reloads: u64,
    /// Commands Redis refused for good (wrong type and the like).
    pub write_errors: u64,
    /// Pipelines sent (retries included).
    pub pipelines: u64,
    /// Attempts of a batch that failed for a transient reason and were made again.
    pub retries: u64,
    pub per_db: BTreeMap<u8, DbStats>,
}

impl WriterStats {
    pub fn db(&mut self, db: u8) -> &mut DbStats {
        self.per_db.entry(db).or_default()
    }

    /// Adds another lane's totals into this one.
    pub fn merge(&mut self, other: WriterStats) {
        self.ticks_written += other.ticks_written;
        self.duplicates += other.duplicates;
        self.deadlettered += other.deadlettered;
        self.deadletter_duplicates += other.deadletter_duplicates;
        self.skipped += other.skipped;
        self.write_errors += other.write_errors;
        self.bars_written += other.bars_written;
        self.bar_duplicates += other.bar_duplicates;
        self.indicator_writes += other.indicator_writes;
        self.lua_calls += other.lua_calls;
        self.alert_calls += other.alert_calls;
        self.script_reloads += other.script_reloads;
        self.pipelines += other.pipelines;
        self.retries += other.retries;
        for (db, s) in other.per_db {
            let mine = self.db(db);
            mine.keys.extend(s.keys);
            mine.stream_entries += s.stream_entries;
            mine.hash_writes += s.hash_writes;
        }
    }
}
