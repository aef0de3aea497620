//! The baseline averages a batch's volume ratios need, read before the batch
//! is planned (the only read a plan waits for).

use std::sync::Arc;

use fred::prelude::*;

use crate::lane::settings::{LaneSettings, LaneState, BASELINES_CAP};
use crate::memo::bound;
use crate::plan::volume::VolumeWrite;
use crate::pools::RedisPools;
use crate::stats::WriterStats;

/// Reads the baseline averages this batch's buckets need and the lane does
/// not have for their session yet. A failed read leaves them unknown: the
/// ratio waits for a later batch.
pub(crate) async fn fetch_baselines(
    volumes: &[VolumeWrite],
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
    for w in volumes {
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
