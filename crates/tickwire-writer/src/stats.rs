//! What the writer did, for the end-of-run summary.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64};

/// Distinct keys counted exactly per DB, at most this many (a trading day of a
/// large universe writes more): each is held as a 64-bit hash, so the count
/// costs at most ~2 MiB per DB. Past it, writes of keys not yet counted are
/// counted in [`DbStats::keys_over_cap`] and the summary says "at least".
pub const DISTINCT_KEYS_CAP: usize = 100_000;

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
    /// Hashes of the distinct keys written, up to [`DISTINCT_KEYS_CAP`]
    /// (already hashes: foldhash, not SipHash, places them).
    keys: foldhash::HashSet<u64>,
    /// Writes of keys that were not counted because the set was full (the
    /// same key may be among them more than once).
    pub keys_over_cap: u64,
    /// Stream entries added (ticks, bars or dead letters).
    pub stream_entries: u64,
    /// Stream entries that were already in their stream (a resend, a
    /// replay again): with `stream_entries`, what the streams hold of this run.
    pub stream_entries_there: u64,
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
    /// Gap records appended to `gaps:{feed}`.
    pub gaps_written: u64,
    /// Frames skipped by the parser (valid but of unused kinds).
    pub skipped: u64,
    /// Closed bars appended to their stream.
    pub bars_written: u64,
    /// Closed bars already in their stream.
    pub bar_duplicates: u64,
    /// Indicator hash writes (one per key per batch, the latest value).
    pub indicator_writes: u64,
    /// Forming-bar hashes deleted: their bar closed and no next one formed.
    pub forming_cleared: u64,
    /// EVALSHA calls of the Lua engine that ran.
    pub lua_calls: u64,
    /// Volume-surge alert calls (the script appends only a bucket's first).
    pub alert_calls: u64,
    /// Times the Lua scripts were loaded again after NOSCRIPT.
    pub script_reloads: u64,
    /// Commands Redis refused for good (wrong type, out of memory and the like).
    pub write_errors: u64,
    /// Of those, ticks not appended to their stream.
    pub ticks_failed: u64,
    /// Of those, closed bars not appended to their stream.
    pub bars_failed: u64,
    /// Of those, dead letters not appended to their stream.
    pub deadletters_failed: u64,
    /// Pipelines sent (retries included).
    pub pipelines: u64,
    /// Commands the lanes sent to Redis (retries included; a script call is
    /// one, whatever it runs inside Redis).
    pub commands: u64,
    /// Attempts of a batch that failed for a transient reason and were made again.
    pub retries: u64,
    /// Time batches that had to be retried took, from their first attempt
    /// to their last, in ms: the longest any one lane waited for Redis (lanes
    /// wait side by side, so merging takes the maximum).
    pub redis_wait_ms: u64,
    /// Redis restarts noticed (its run_id changed).
    pub redis_restarts: u64,
    /// Of those, restarts that came back without what was written before.
    pub redis_restarts_lost: u64,
    pub per_db: BTreeMap<u8, DbStats>,
}

impl DbStats {
    /// Counts `key` as written (once, however often it is written).
    pub fn note_key(&mut self, key: &[u8]) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.note_hash(h.finish());
    }

    /// `key` is no longer held (it was deleted): not counted, unless
    /// written again.
    pub fn forget_key(&mut self, key: &[u8]) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.keys.remove(&h.finish());
    }

    fn note_hash(&mut self, hash: u64) {
        if self.keys.len() < DISTINCT_KEYS_CAP {
            self.keys.insert(hash);
        } else if !self.keys.contains(&hash) {
            self.keys_over_cap += 1;
        }
    }

    /// Distinct keys written, exact up to [`DISTINCT_KEYS_CAP`].
    pub fn distinct_keys(&self) -> u64 {
        self.keys.len() as u64
    }

    /// True when more keys were written than could be counted: the real
    /// number is at least [`DbStats::distinct_keys`] (and at most that plus
    /// `keys_over_cap`).
    pub fn keys_capped(&self) -> bool {
        self.keys_over_cap > 0
    }
}

impl WriterStats {
    /// Writes that did not land: refused ticks, bars and dead letters.
    pub fn not_written(&self) -> u64 {
        self.ticks_failed + self.bars_failed + self.deadletters_failed
    }

    pub fn db(&mut self, db: u8) -> &mut DbStats {
        self.per_db.entry(db).or_default()
    }

    /// Adds another lane's totals into this one.
    pub fn merge(&mut self, other: WriterStats) {
        self.ticks_written += other.ticks_written;
        self.duplicates += other.duplicates;
        self.deadlettered += other.deadlettered;
        self.deadletter_duplicates += other.deadletter_duplicates;
        self.gaps_written += other.gaps_written;
        self.skipped += other.skipped;
        self.write_errors += other.write_errors;
        self.ticks_failed += other.ticks_failed;
        self.bars_failed += other.bars_failed;
        self.deadletters_failed += other.deadletters_failed;
        self.redis_wait_ms = self.redis_wait_ms.max(other.redis_wait_ms);
        self.redis_restarts += other.redis_restarts;
        self.redis_restarts_lost += other.redis_restarts_lost;
        self.bars_written += other.bars_written;
        self.bar_duplicates += other.bar_duplicates;
        self.indicator_writes += other.indicator_writes;
        self.forming_cleared += other.forming_cleared;
        self.lua_calls += other.lua_calls;
        self.alert_calls += other.alert_calls;
        self.script_reloads += other.script_reloads;
        self.pipelines += other.pipelines;
        self.commands += other.commands;
        self.retries += other.retries;
        for (db, s) in other.per_db {
            let mine = self.db(db);
            for hash in s.keys {
                mine.note_hash(hash);
            }
            mine.keys_over_cap += s.keys_over_cap;
            mine.stream_entries += s.stream_entries;
            mine.stream_entries_there += s.stream_entries_there;
            mine.hash_writes += s.hash_writes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_are_counted_exactly_up_to_the_cap_then_counted_over_it() {
        let mut a = DbStats::default();
        for _ in 0..3 {
            for i in 0..DISTINCT_KEYS_CAP - 10 {
                a.note_key(format!("ticks:S{i}").as_bytes());
            }
        }
        assert_eq!(a.distinct_keys(), (DISTINCT_KEYS_CAP - 10) as u64);
        assert!(!a.keys_capped());
        // 30 new keys: 10 fit, 20 do not; keys already counted still count once.
        for i in 0..30 {
            a.note_key(format!("new:{i}").as_bytes());
        }
        a.note_key(b"ticks:S0");
        assert_eq!(a.distinct_keys(), DISTINCT_KEYS_CAP as u64);
        assert_eq!(a.keys_over_cap, 20);
        assert!(a.keys_capped());

        // Two lanes' sets merge into one, still capped.
        let mut w = WriterStats::default();
        let mut lane = WriterStats::default();
        lane.db(4).note_key(b"ticks:A");
        lane.db(4).note_key(b"ticks:B");
        w.db(4).note_key(b"ticks:A");
        w.merge(lane);
        assert_eq!(w.per_db[&4].distinct_keys(), 2);
        let mut full = WriterStats::default();
        full.per_db.insert(4, a);
        let mut more = WriterStats::default();
        more.db(4).note_key(b"ticks:S1");
        more.db(4).note_key(b"beyond");
        full.merge(more);
        assert_eq!(full.per_db[&4].distinct_keys(), DISTINCT_KEYS_CAP as u64);
        assert_eq!(full.per_db[&4].keys_over_cap, 21);
    }
}
