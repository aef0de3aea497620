//! Snapshots: keys whose whole value each write replaces (depth, feed
//! status, checkpoints); only a batch's latest is written, with its TTL.

use crate::plan::{LaneBatch, PlanCx};
use foldhash::{HashMap, HashMapExt};
use fred::prelude::*;

use crate::lane::settings::{LaneSettings, LaneState};
use crate::plan::cmd::*;

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

/// The batch's snapshots (see [`plan_snapshots`]).
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    plan_snapshots(&batch.snapshots, cx.s, cx.state, &mut cx.cmds);
}

/// The latest snapshot of each key in the batch: one HSET (and its EXPIRE
/// when due) or one SET ... EX.
pub(crate) fn plan_snapshots(
    snapshots: &[SnapshotWrite],
    s: &LaneSettings,
    state: &LaneState,
    cmds: &mut Vec<Cmd>,
) {
    let mut latest: HashMap<(u8, &Key), usize> = HashMap::new();
    let mut order: Vec<(u8, &Key)> = Vec::new();
    for (i, w) in snapshots.iter().enumerate() {
        if latest.insert((w.db, &w.key), i).is_none() {
            order.push((w.db, &w.key));
        }
    }
    for id in order {
        let w = &snapshots[latest[&id]];
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
