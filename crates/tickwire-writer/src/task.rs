//! The writer task: the dispatcher fed from the pipeline's channel, the
//! lanes spawned and joined, the run's totals gathered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::types::scripts::Script;
use tickwire_core::config::Engine;
use tickwire_core::{Config, Db, Event};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::dispatch::Dispatcher;
use crate::lane::{self, AlertSettings, LaneSettings, LuaScripts};
use crate::plan::LaneBatch;
use crate::pools::RedisPools;
use crate::stats::{WriterProgress, WriterStats};
use crate::{is_loading, retry_backoff, wait_loaded};
use crate::{WriterError, WriterFailure};
use crate::{LUA_BAR_INDICATORS, LUA_PROFILE_WRITE, LUA_TICK_APPEND, LUA_VOLUME_ALERT, LUA_VWAP};

/// SCRIPT LOAD of the scripts a run uses, before any batch is written: a
/// failure Redis may get over (a timeout, a connection lost) is tried again
/// like any write, up to `max_retries` times with the writer's backoff; a
/// Redis loading its data set is waited for (see [`wait_loaded`]); a
/// refusal (NOPERM, a script Redis will not compile) fails at once.
async fn load_scripts(
    client: &fred::prelude::Client,
    settings: &LaneSettings,
    max_retries: u32,
) -> Result<(), WriterError> {
    let mut tries = 0;
    loop {
        let loaded = settings.load_scripts(client).await;
        match loaded {
            Ok(()) => return Ok(()),
            Err(e) if is_loading(&e) => {
                wait_loaded(client).await;
            }
            Err(e) if lane::is_transient(&e) && tries < max_retries => {
                tries += 1;
                tracing::warn!(
                    attempt = tries,
                    error = %e,
                    "SCRIPT LOAD failed, retrying (writer.max_retries = {max_retries})"
                );
                metrics::counter!(tickwire_core::telemetry::REDIS_RETRIES).increment(1);
                tokio::time::sleep(retry_backoff(tries)).await;
            }
            Err(e) => return Err(WriterError::Script(e)),
        }
    }
}

/// Writes every event from `rx` until it closes, then flushes and returns the
/// totals. Batches go out when a lane has `batch_size` items or every
/// `flush_interval_ms`, whichever comes first.
pub async fn run(
    config: &Config,
    pools: Arc<RedisPools>,
    rx: mpsc::Receiver<Vec<Event>>,
) -> Result<WriterStats, WriterError> {
    run_with(config, pools, rx, WriterOptions::default())
        .await
        .map_err(|f| f.error)
}

/// What a writer run shares with the rest of the process.
#[derive(Debug, Clone, Default)]
pub struct WriterOptions {
    /// Live totals (the heartbeat reads them).
    pub progress: Arc<WriterProgress>,
    /// Record each tick's receive-to-Redis latency (live runs, where the
    /// receive time is the socket read, and paced replays, where it is the
    /// pacer's release; a replay at `--max` keeps the recording's).
    pub tick_latency: bool,
}

/// [`run`] with live totals and latency settings.
pub async fn run_with(
    config: &Config,
    pools: Arc<RedisPools>,
    mut rx: mpsc::Receiver<Vec<Event>>,
    opts: WriterOptions,
) -> Result<WriterStats, WriterFailure> {
    let settings = lane_settings(config, &opts);
    load_scripts(
        pools.client(settings.ticks_db, 0)?,
        &settings,
        config.writer.max_retries,
    )
    .await?;
    let lua_interval = settings
        .lua
        .is_some()
        .then(|| Arc::from(config.indicators.interval.as_str()));
    let system_db = config.databases.get(Db::System);
    let restart_watch = pools.watch_restarts(system_db).await;
    let mut lanes = Lanes::spawn(&pools, &settings);
    let mut dispatcher = Dispatcher::new(config, lanes.senders.len(), lua_interval);
    let sent = feed_lanes(config, &pools, &mut rx, &mut dispatcher, &mut lanes).await;
    drop(rx);
    let mut stats = WriterStats {
        skipped: dispatcher.skipped,
        ..WriterStats::default()
    };
    let first_error = lanes.join(sent.err(), &mut stats).await;
    settings.refusals.log_totals();
    let restarts = pools.restarts(system_db).await;
    restart_watch.abort();
    stats.redis_restarts = restarts.restarts;
    stats.redis_restarts_lost = restarts.lost_data;
    match first_error {
        Some(error) => Err(WriterFailure { error, stats }),
        None => Ok(stats),
    }
}

/// The lanes' tasks, their inboxes, and who among them waits for work.
struct Lanes {
    tasks: JoinSet<Result<WriterStats, WriterFailure>>,
    senders: Vec<mpsc::Sender<LaneBatch>>,
    idle: Vec<Arc<AtomicBool>>,
    /// A lane waiting for work says so (its flag, then `wake`): what is
    /// pending for it goes out at once instead of waiting to fill a batch or
    /// for the flush timer. While it writes, its next batch grows.
    wake: Arc<tokio::sync::Notify>,
}

impl Lanes {
    /// One lane per connection of each DB's pool.
    fn spawn(pools: &Arc<RedisPools>, settings: &LaneSettings) -> Self {
        let n = pools.size().max(1);
        let mut tasks = JoinSet::new();
        let mut senders = Vec::with_capacity(n);
        let wake = Arc::new(tokio::sync::Notify::new());
        let idle: Vec<Arc<AtomicBool>> = (0..n).map(|_| Arc::new(AtomicBool::new(true))).collect();
        for (lane, idle) in idle.iter().enumerate() {
            // Two batches queued per lane: one being written, one being filled.
            let (tx, lane_rx) = mpsc::channel(2);
            senders.push(tx);
            tasks.spawn(lane::run_lane(
                lane,
                lane_rx,
                Arc::clone(pools),
                settings.clone(),
                lane::Idle {
                    flag: Arc::clone(idle),
                    wake: Arc::clone(&wake),
                },
            ));
        }
        Lanes {
            tasks,
            senders,
            idle,
            wake,
        }
    }

    /// Closes the inboxes and waits for every lane, adding its totals to
    /// `stats`; the run's error: `sent`'s, unless a lane says more.
    async fn join(
        mut self,
        sent: Option<WriterError>,
        stats: &mut WriterStats,
    ) -> Option<WriterError> {
        self.senders.clear();
        let mut first_error = sent;
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Ok(lane_stats)) => stats.merge(lane_stats),
                // Why a lane stopped says more than that it stopped.
                Ok(Err(f)) => {
                    stats.merge(f.stats);
                    if matches!(first_error, None | Some(WriterError::Lane(_))) {
                        first_error = Some(f.error);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(WriterError::Lane(e.to_string()));
                }
            }
        }
        first_error
    }
}

/// Routes every chunk from `rx` into the lanes' batches until the input
/// ends, handing each lane a batch when it is full, idle, or the flush timer
/// says so; then flushes what is left.
async fn feed_lanes(
    config: &Config,
    pools: &RedisPools,
    rx: &mut mpsc::Receiver<Vec<Event>>,
    dispatcher: &mut Dispatcher,
    lanes: &mut Lanes,
) -> Result<(), WriterError> {
    let batch_size = config.writer.batch_size.max(1);
    let system_db = config.databases.get(Db::System);
    let mut flush = tokio::time::interval(Duration::from_millis(config.writer.flush_interval_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A refusal (two exchanges' instruments on one key) stops the run,
    // but not at once: what was routed before it is written, and the
    // rejections already read are dead-lettered, the chunks already in
    // the channel included (which is closed, so no more come).
    let mut refused: Option<WriterError> = None;
    loop {
        tokio::select! {
            chunk = rx.recv() => {
                let Some(events) = chunk else { break };
                if refused.is_none() {
                    dispatcher.check_owners(&events, pools).await?;
                }
                for event in events {
                    let lane = match event {
                        Event::Rejected(r) => {
                            Some(dispatcher.route_rejected(r, pools, system_db).await?)
                        }
                        Event::Gap(g) => Some(dispatcher.route_gap(g, pools, system_db).await?),
                        // Read, not written: the summary counts it so.
                        _ if refused.is_some() => None,
                        event => match dispatcher.route(event) {
                            Ok(lane) => lane,
                            Err(e @ WriterError::VenueCollision(_)) => {
                                tracing::error!(error = %e, "refused: the run stops once what was read before is written");
                                refused = Some(e);
                                rx.close();
                                None
                            }
                            Err(e) => return Err(e),
                        },
                    };
                    if let Some(lane) = lane {
                        if dispatcher.pending[lane].len() >= batch_size {
                            let batch = dispatcher.pending[lane].take();
                            lanes.idle[lane].store(false, Ordering::Release);
                            send(&lanes.senders[lane], batch).await?;
                        }
                    }
                }
                to_idle_lanes(&mut dispatcher.pending, &lanes.senders, &lanes.idle);
            }
            _ = lanes.wake.notified() => to_idle_lanes(&mut dispatcher.pending, &lanes.senders, &lanes.idle),
            _ = flush.tick() => flush_all(&mut dispatcher.pending, &lanes.senders).await?,
        }
    }
    // Input ended: flush what is left.
    flush_all(&mut dispatcher.pending, &lanes.senders).await?;
    refused.map_or(Ok(()), Err)
}

/// Hands each idle lane its partial batch, without waiting: a lane that is
/// not writing writes what it has at once (the tick-to-Redis latency of a
/// quiet lane is one round trip, not `flush_interval_ms`).
fn to_idle_lanes(
    pending: &mut [LaneBatch],
    senders: &[mpsc::Sender<LaneBatch>],
    idle: &[Arc<AtomicBool>],
) {
    for ((batch, tx), idle) in pending.iter_mut().zip(senders).zip(idle) {
        if !batch.is_empty() && idle.swap(false, Ordering::AcqRel) {
            match tx.try_send(batch.take()) {
                Ok(()) => {}
                // Its slots are taken after all (a full batch just went in):
                // the batch waits for the lane's next call or the timer.
                Err(mpsc::error::TrySendError::Full(b)) => *batch = b,
                // A closed lane has failed; its error comes out when it is
                // joined, and the next send says so.
                Err(mpsc::error::TrySendError::Closed(b)) => *batch = b,
            }
        }
    }
}

/// Hands every lane its partial batch.
async fn flush_all(
    pending: &mut [LaneBatch],
    senders: &[mpsc::Sender<LaneBatch>],
) -> Result<(), WriterError> {
    for (batch, tx) in pending.iter_mut().zip(senders) {
        if !batch.is_empty() {
            send(tx, batch.take()).await?;
        }
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<LaneBatch>, batch: LaneBatch) -> Result<(), WriterError> {
    // A closed lane has failed; its error comes out when it is joined.
    tx.send(batch)
        .await
        .map_err(|_| WriterError::Lane("a lane stopped early".into()))
}

/// What every lane writes with, from `config` and the run's options.
fn lane_settings(config: &Config, opts: &WriterOptions) -> LaneSettings {
    let d = &config.databases;
    let ttl = |db| i64::try_from(config.ttl.secs(db)).unwrap_or(i64::MAX);
    let mut settings = LaneSettings {
        ticks_db: d.get(Db::ContinuousMarket),
        system_db: d.get(Db::System),
        ticks_ttl: ttl(Db::ContinuousMarket),
        system_ttl: ttl(Db::System),
        maxlen: i64::try_from(config.streams.maxlen).unwrap_or(i64::MAX),
        deadletter_maxlen: i64::try_from(config.streams.deadletter_maxlen).unwrap_or(i64::MAX),
        max_retries: config.writer.max_retries,
        lua: None,
        ttl_by_db: {
            let mut t = [ttl(Db::ContinuousMarket); 16];
            // Purposes listed later win a shared DB number, as the first listed
            // is the most general (system).
            for purpose in Db::ALL.iter().rev() {
                t[usize::from(d.get(*purpose) & 15)] = ttl(*purpose);
            }
            t
        },
        volume_db: d.get(Db::CumulativeVolume),
        session_ttl: i64::try_from(config.volume.session_ttl).unwrap_or(i64::MAX),
        alerts: AlertSettings {
            script: Script::from_lua(LUA_VOLUME_ALERT),
            threshold: config.alerts.volume_ratio_threshold,
            db: d.get(Db::Alerts),
            maxlen: i64::try_from(config.alerts.maxlen).unwrap_or(i64::MAX),
            stream_ttl: ttl(Db::Alerts),
            marker_ttl: 2 * 86_400,
        },
        progress: Arc::clone(&opts.progress),
        tick_latency: opts.tick_latency,
        tick_script: Script::from_lua(LUA_TICK_APPEND),
        profile_script: (!config.profiles.others.is_empty())
            .then(|| Script::from_lua(LUA_PROFILE_WRITE)),
        refusals: Arc::default(),
    };
    settings.lua = (config.indicators.engine == Engine::Lua).then(|| LuaScripts {
        bar_indicators: Script::from_lua(LUA_BAR_INDICATORS),
        vwap: Script::from_lua(LUA_VWAP),
        rsi_period: config.indicators.rsi_period,
        atr_period: config.indicators.atr_period,
    });
    settings
}
