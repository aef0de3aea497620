//! Routing of snapshots: order-book depth, a feed's status and reconnects,
//! and the state checkpoints. Planned in `plan::snapshots`.

use std::sync::Arc;

use fred::types::Key;
use tickwire_core::{ByAddress, Db};

use crate::checkpoints::checkpoint_key;
use crate::dispatch::depth_fields;
use crate::dispatch::{instrument_value, lane_of, Dispatcher};
use crate::plan::snapshots::{Snapshot, SnapshotWrite};

impl Dispatcher {
    /// A book's depth to its hash in the microstructure DB.
    pub(crate) fn route_depth(&mut self, depth: tickwire_core::Depth) -> Option<usize> {
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

    /// A feed's status and reconnect count.
    pub(crate) fn route_feed(&mut self, feed: tickwire_core::FeedEvent) -> Option<usize> {
        let lane = lane_of(&feed.feed, self.lanes);
        let db = self.dbs.get(Db::System);
        let p = self.keys.prefix(db);
        let status = Key::from(self.keys.feed_status.render_one(p, "feed", &feed.feed));
        let reconnects = Key::from(self.keys.feed_reconnects.render_one(p, "feed", &feed.feed));
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

    /// An instrument's state checkpoint (written after its outputs).
    pub(crate) fn route_checkpoint(&mut self, c: tickwire_core::StateCheckpoint) -> Option<usize> {
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
}
