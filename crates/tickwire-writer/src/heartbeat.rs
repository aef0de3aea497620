//! `tickwire:heartbeat` in the system DB: refreshed every interval while a
//! run or replay is going, with a TTL a few intervals long, so a process that
//! died disappears from Redis on its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use tickwire_core::{Config, Db};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::profile::ProfileValue;
use crate::{RedisPools, WriterError, WriterProgress};

/// The heartbeat task; stops (after one last beat) when `stop` is cancelled.
pub struct Heartbeat {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// A heartbeat dropped without [`Heartbeat::stop`] or
    /// [`Heartbeat::abort`] stops too, as if stopped.
    _stop_on_drop: DropGuard,
}

impl Heartbeat {
    /// Starts beating now. `started_at_ms`: when the process started.
    pub fn start(
        config: &Config,
        pools: Arc<RedisPools>,
        progress: Arc<WriterProgress>,
        started_at_ms: i64,
    ) -> Result<Heartbeat, WriterError> {
        let keys = config.key_templates().clone();
        // (db, key, the profile output shaping it; None: the default layout's hash)
        let mut targets: Vec<(u8, String, Option<tickwire_core::profiles::Output>)> = Vec::new();
        if config.profiles.default_layout {
            targets.push((
                config.databases.get(Db::System),
                keys.heartbeat.render(keys.prefix_of(Db::System), |_| None),
                None,
            ));
        }
        for p in &config.profiles.others {
            if let Some(out) = &p.heartbeat {
                let prefix = format!("{}{}", keys.prefix(out.db), p.namespace);
                targets.push((out.db, out.key.render(&prefix, |_| None), Some(out.clone())));
            }
        }
        let every = Duration::from_millis(config.heartbeat.interval_ms);
        let ttl = i64::try_from(config.heartbeat.ttl_secs).unwrap_or(i64::MAX);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let pid = std::process::id().to_string();
            loop {
                // Read before the totals: a stop that comes while this beat is
                // being written gets a beat of its own, with the final totals
                // (a short replay can end during the first beat).
                let last = stopped.is_cancelled();
                let now_ms = jiff::Timestamp::now().as_millisecond();
                let fields: Vec<(&str, String)> = vec![
                    ("pid", pid.clone()),
                    ("version", env!("CARGO_PKG_VERSION").to_string()),
                    ("started_at", started_at_ms.to_string()),
                    (
                        "last_tick_ts",
                        progress.last_tick_ms.load(Ordering::Relaxed).to_string(),
                    ),
                    (
                        "ticks_total",
                        progress.ticks_written.load(Ordering::Relaxed).to_string(),
                    ),
                    ("updated_at", now_ms.to_string()),
                ];
                for (db, key, shape) in &targets {
                    let Ok(client) = pools.client(*db, 0) else {
                        continue;
                    };
                    let (value, key_ttl) = match shape {
                        None => (
                            ProfileValue::Fields(
                                fields
                                    .iter()
                                    .map(|(k, v)| (k.to_string(), v.clone()))
                                    .collect(),
                            ),
                            ttl,
                        ),
                        Some(out) => (
                            crate::profile::heartbeat_value(out, &fields),
                            i64::try_from(out.ttl).unwrap_or(i64::MAX),
                        ),
                    };
                    let p = client.pipeline();
                    let queued = async {
                        match value {
                            ProfileValue::Fields(hash) | ProfileValue::StreamEntry(_, hash) => {
                                let _: () = p.hset(key.as_str(), hash).await?;
                            }
                            ProfileValue::Text(text) | ProfileValue::Entry(_, text) => {
                                let _: () = p.set(key.as_str(), text, None, None, false).await?;
                            }
                        }
                        let _: () = p.expire(key.as_str(), key_ttl, None).await?;
                        p.all::<()>().await
                    };
                    // A missed beat is logged, never fatal: the writer's own
                    // retries deal with an unreachable Redis.
                    match tokio::time::timeout(every.max(Duration::from_secs(1)), queued).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat not written"),
                        Err(_) => tracing::warn!("heartbeat timed out"),
                    }
                }
                if last {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.cancelled() => {}
                }
            }
        });
        Ok(Heartbeat {
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            task,
        })
    }

    /// Writes one last beat (with the final totals) and stops.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Stops at once, without a last beat: a run that failed leaves its
    /// heartbeat to expire (after `heartbeat.ttl_secs`), so `tickwire health`
    /// and whoever watches the key see the process is no longer writing.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
