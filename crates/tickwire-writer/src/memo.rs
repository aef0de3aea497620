//! What a lane remembers of Redis' state between batches, so that
//! bookkeeping is written when it changes, not with every batch: when each
//! key's TTL was last set, and which volume index members are in place.
//!
//! Both are bounded (issue 14: flat memory): keys are held as 128-bit hashes
//! in two generations of at most [`GENERATION_CAP`] entries each; when the
//! newer one is full the older one is dropped. A key that falls out is only
//! sent its EXPIRE (or index write) again, which is always safe: forgetting
//! costs a command, never a TTL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Entries per generation: two generations hold at most twice this many
/// (24-32 bytes each, about 8 MiB in all at the cap).
pub(crate) const GENERATION_CAP: usize = 1 << 17;

/// The longest a key goes between EXPIREs while it is being written.
pub(crate) const MAX_REFRESH: Duration = Duration::from_secs(60);

/// How often a key with `ttl_secs` gets its TTL set again while written:
/// a quarter of its TTL, at most [`MAX_REFRESH`], so a key being written
/// never comes near expiring between two refreshes (and a key written for
/// the last time expires between `ttl - refresh` and `ttl` after that write).
pub(crate) fn refresh_interval(ttl_secs: i64) -> Duration {
    let ttl_ms = u64::try_from(ttl_secs).unwrap_or(0).saturating_mul(1000);
    Duration::from_millis(ttl_ms / 4).min(MAX_REFRESH)
}

/// A 128-bit hash of `parts` (XXH3-128 of the DB number and each part with
/// its length, so no two lists of parts read alike): two distinct keys of a
/// lane share one with odds of about 2^-90 at the cap, so a hash stands for
/// its key. Two SipHash passes cost about six times as much per key, 1.5%
/// of a replay's instructions.
pub(crate) fn hash128(db: u8, parts: &[&[u8]]) -> u128 {
    // Key names are short: one call over a buffer on the stack, the
    // streaming hasher (same digest) only for longer ones.
    let mut buf = [0u8; 256];
    buf[0] = db;
    let mut n = 1;
    for p in parts {
        let Some(end) = (n + 4 + p.len() <= buf.len()).then_some(n + 4 + p.len()) else {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(&[db]);
            for p in parts {
                h.update(&(p.len() as u32).to_le_bytes());
                h.update(p);
            }
            return h.digest128();
        };
        buf[n..n + 4].copy_from_slice(&(p.len() as u32).to_le_bytes());
        buf[n + 4..end].copy_from_slice(p);
        n = end;
    }
    xxhash_rust::xxh3::xxh3_128(&buf[..n])
}

/// Two generations of a bounded map (see the module docs).
struct Generations<V> {
    // Keyed by a hash already: no second SipHash of it.
    current: foldhash::HashMap<u128, V>,
    previous: foldhash::HashMap<u128, V>,
}

impl<V: Copy> Generations<V> {
    fn new() -> Self {
        Self {
            current: foldhash::HashMap::default(),
            previous: foldhash::HashMap::default(),
        }
    }

    fn get(&self, k: u128) -> Option<V> {
        self.current
            .get(&k)
            .or_else(|| self.previous.get(&k))
            .copied()
    }

    fn insert(&mut self, k: u128, v: V) {
        if self.current.len() >= GENERATION_CAP && !self.current.contains_key(&k) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(k, v);
    }

    fn remove(&mut self, k: u128) {
        self.current.remove(&k);
        self.previous.remove(&k);
    }

    fn clear(&mut self) {
        self.current.clear();
        self.previous.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// The lane's memory of TTLs and index members (see the module docs).
pub(crate) struct Memo {
    /// Key hash -> when an EXPIRE of it answered 1 (the start of its batch).
    ttl_set: Generations<Instant>,
    /// (index key, member) hashes written (ZADD/SADD answered).
    indexed: Generations<()>,
    /// The batch's time, fixed for all its attempts so its plan stays the
    /// same whenever it is made again.
    now: Instant,
    /// The pools' connection generation when the batch began.
    generation: u64,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            ttl_set: Generations::new(),
            indexed: Generations::new(),
            now: Instant::now(),
            generation: 0,
        }
    }
}

impl Memo {
    /// Starts a batch at `generation` (see `RestartWatch::generation`): if
    /// a connection dropped, reconnected or Redis restarted since the last
    /// batch, everything remembered is forgotten (a restart may have lost
    /// or flushed the keys), so every key gets its EXPIRE again.
    pub(crate) fn begin(&mut self, generation: u64) {
        if generation != self.generation {
            self.forget();
            self.generation = generation;
        }
        self.now = Instant::now();
    }

    /// Whether the batch ended at the generation it began at: only then
    /// is what it wrote remembered.
    pub(crate) fn steady(&self, generation: u64) -> bool {
        generation == self.generation
    }

    pub(crate) fn forget(&mut self) {
        self.ttl_set.clear();
        self.indexed.clear();
    }

    /// Whether `key` of `db` is to be sent an EXPIRE of `ttl_secs` in this
    /// batch: it was not set by this lane yet (a key new to the process, or
    /// forgotten), or not within its refresh interval.
    pub(crate) fn ttl_due(&self, db: u8, key: &[u8], ttl_secs: i64) -> bool {
        match self.ttl_set.get(hash128(db, &[key])) {
            None => true,
            Some(at) => self.now.saturating_duration_since(at) >= refresh_interval(ttl_secs),
        }
    }

    /// An EXPIRE of `key` answered 1 in this batch.
    pub(crate) fn ttl_was_set(&mut self, db: u8, key: &[u8]) {
        self.ttl_set.insert(hash128(db, &[key]), self.now);
    }

    /// `key` was deleted: the next write that makes it again is due its
    /// EXPIRE.
    pub(crate) fn ttl_forget(&mut self, db: u8, key: &[u8]) {
        self.ttl_set.remove(hash128(db, &[key]));
    }

    /// Whether `member` of index `key` is to be written (not yet done).
    pub(crate) fn index_due(&self, memo: u128) -> bool {
        self.indexed.get(memo).is_none()
    }

    /// The index write hashed `memo` was applied.
    pub(crate) fn indexed(&mut self, memo: u128) {
        self.indexed.insert(memo, ());
    }
}

/// A set bounded like [`Memo`]'s maps, for what a lane remembers by key.
pub(crate) struct BoundedSet(Generations<()>);

impl Default for BoundedSet {
    fn default() -> Self {
        Self(Generations::new())
    }
}

impl BoundedSet {
    pub(crate) fn contains(&self, db: u8, key: &[u8]) -> bool {
        self.0.get(hash128(db, &[key])).is_some()
    }
    pub(crate) fn insert(&mut self, db: u8, key: &[u8]) {
        self.0.insert(hash128(db, &[key]), ());
    }
}

/// Keeps at most `cap` entries in `map`: when it is full, it is emptied
/// (a cache of what can be read again).
pub(crate) fn bound<K, V, S>(map: &mut HashMap<K, V, S>, cap: usize) {
    if map.len() >= cap {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_tells_apart_the_db_and_how_a_key_is_cut_and_is_the_same_long_or_short() {
        assert_ne!(hash128(4, &[b"ticks:A"]), hash128(5, &[b"ticks:A"]));
        assert_ne!(hash128(4, &[b"ab", b"c"]), hash128(4, &[b"a", b"bc"]));
        assert_eq!(hash128(4, &[b"ticks:A"]), hash128(4, &[b"ticks:A"]));
        // A key past the stack buffer takes the streaming hasher: the same
        // digest as the one-shot hash of the same bytes.
        let long = vec![b'k'; 300];
        let mut bytes = vec![4u8];
        bytes.extend_from_slice(&300u32.to_le_bytes());
        bytes.extend_from_slice(&long);
        assert_eq!(hash128(4, &[&long]), xxhash_rust::xxh3::xxh3_128(&bytes));
        let mut short = vec![4u8];
        short.extend_from_slice(&7u32.to_le_bytes());
        short.extend_from_slice(b"ticks:A");
        assert_eq!(
            hash128(4, &[b"ticks:A"]),
            xxhash_rust::xxh3::xxh3_128(&short)
        );
    }

    #[test]
    fn a_key_is_due_first_then_once_per_interval_and_after_a_reconnect() {
        let mut m = Memo::default();
        m.begin(0);
        assert!(m.ttl_due(4, b"ticks:A", 57_600));
        m.ttl_was_set(4, b"ticks:A");
        assert!(!m.ttl_due(4, b"ticks:A", 57_600));
        // Another DB's key of the same name is another key.
        assert!(m.ttl_due(5, b"ticks:A", 57_600));
        // Past the interval it is due again.
        m.now += refresh_interval(57_600);
        assert!(m.ttl_due(4, b"ticks:A", 57_600));
        // A reconnect (new generation) forgets everything.
        m.ttl_was_set(4, b"ticks:A");
        m.begin(1);
        assert!(!m.steady(0));
        assert!(m.ttl_due(4, b"ticks:A", 57_600));
        assert_eq!(refresh_interval(57_600), MAX_REFRESH);
        assert_eq!(refresh_interval(2), Duration::from_millis(500));
    }

    #[test]
    fn generations_stay_bounded_and_keep_the_newest() {
        let mut g: Generations<()> = Generations::new();
        for i in 0..(GENERATION_CAP * 3) as u128 {
            g.insert(i, ());
        }
        assert!(g.len() <= 2 * GENERATION_CAP);
        assert!(g.get((GENERATION_CAP * 3 - 1) as u128).is_some());
        assert!(g.get(0).is_none());
    }
}
