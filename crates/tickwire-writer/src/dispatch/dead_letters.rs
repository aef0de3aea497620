//! Routing of dead letters: each rejected frame's ID in its feed's
//! dead-letter stream, read against what an earlier process left there.
//! Planned in `plan::dead_letters`.

use std::collections::HashMap;

use fred::types::Key;

use crate::checkpoints::read_retrying;
use crate::dispatch::{lane_of, DeadLetters, Dispatcher};
use crate::plan::dead_letters::RejectWrite;
use crate::pools::RedisPools;
use crate::WriterError;
use tickwire_core::ids::{self, StreamIdSeq};

impl Dispatcher {
    /// A dead letter: its ID (see [`DeadLetters`]) and lane. Dead letters are
    /// the process's own bookkeeping, written whatever the profiles.
    pub(crate) async fn route_rejected(
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
}

impl Dispatcher {
    /// A gap's entry: at its first live trade's time, after the last entry
    /// of its feed's stream (read once per feed and process: a gap written
    /// again after a retry lands on its own ID, refused as there already).
    pub(crate) async fn route_gap(
        &mut self,
        gap: tickwire_core::Gap,
        pools: &RedisPools,
        system_db: u8,
    ) -> Result<usize, WriterError> {
        if !self.gaps.contains_key(&gap.feed) {
            let key = Key::from(self.keys.gaps.render_one(
                self.keys.prefix(system_db),
                "feed",
                &gap.feed,
            ));
            let mut top = StreamIdSeq::default();
            if let Some(id) = last_entry_id(pools, system_db, &key).await? {
                top.follow(id);
            }
            let lane = lane_of(&gap.feed, self.lanes);
            self.gaps
                .insert(std::sync::Arc::clone(&gap.feed), (key, lane, top));
        }
        let Some((key, lane, top)) = self.gaps.get_mut(&gap.feed) else {
            return Err(WriterError::Lane("gap stream missing".into()));
        };
        let id = top.next(gap.to_ts_ms);
        let lane = *lane;
        self.pending[lane].gaps.push(crate::plan::gaps::GapWrite {
            key: key.clone(),
            id,
            gap,
        });
        Ok(lane)
    }
}

/// Reads a stream ID as Redis writes it (`{ms}-{seq}`).
pub(crate) fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// An entry of a dead-letter stream with its fields.
type Entry = (String, HashMap<String, String>);

/// The first entry of stream `key` in `range` (`newest`: counting from the
/// end), read again while Redis is away; none where there is none.
async fn one_entry(
    pools: &RedisPools,
    db: u8,
    key: &Key,
    range: (&str, &str),
    newest: bool,
) -> Result<Option<Entry>, WriterError> {
    use fred::prelude::StreamsInterface;
    let client = pools.client(db, 0)?;
    let (from, to) = range;
    let found: Vec<Entry> = read_retrying(client, || async {
        match newest {
            true => client.xrevrange(key.clone(), from, to, Some(1)).await,
            false => client.xrange(key.clone(), from, to, Some(1)).await,
        }
    })
    .await
    .map_err(|source| WriterError::DeadLetters {
        key: String::from_utf8_lossy(key.as_bytes()).into_owned(),
        source,
    })?;
    Ok(found.into_iter().next())
}

/// The ID of the last entry of stream `key` (none: empty or missing).
pub(crate) async fn last_entry_id(
    pools: &RedisPools,
    db: u8,
    key: &Key,
) -> Result<Option<(u64, u64)>, WriterError> {
    let last = one_entry(pools, db, key, ("+", "-"), true).await?;
    Ok(last.and_then(|(id, _)| parse_id(&id)))
}

/// Whether the entry of stream `key` at `id` is the dead letter of `r`.
pub(crate) async fn entry_is(
    pools: &RedisPools,
    db: u8,
    key: &Key,
    id: (u64, u64),
    r: &tickwire_core::Rejected,
) -> Result<bool, WriterError> {
    let id = ids::format_id(id);
    let found = one_entry(pools, db, key, (id.as_str(), id.as_str()), false).await?;
    Ok(found.is_some_and(|(_, fields)| crate::plan::dead_letters::is_dead_letter_of(&fields, r)))
}
