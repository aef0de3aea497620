//! The pipeline from live feeds: one task per feed (spooling to disk when
//! its backlog is full) -> the parser thread, with the recorder beside it
//! and the state stage on it -> the writer task.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::*;
use tickwire_core::Config;
use tickwire_indicators::StateConfig;
use tickwire_ingest::live::{LiveSummary, StageFailure};
use tickwire_ingest::{start_live_filling, IngestSummary, LiveOptions};
use tickwire_writer::{writer_dbs, RedisPools};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connect::connect_waiting;
use super::end::{conclude, first_cause, Ended};
use crate::error::AppError;
use crate::ops::{depth, ChannelGauges};
use crate::state::{Checkpoints, LiveClock, StateRunner, Stop};
use crate::summary::{RunSummary, StateCounts};
use crate::supervisor::Supervisor;
use crate::writer::WriterTask;

/// What the live side reads from `config`; `decode` false for `tickwire
/// record` (frames only).
pub(crate) fn live_options(config: &Config, record: Option<PathBuf>, decode: bool) -> LiveOptions {
    LiveOptions {
        feeds: config.feeds.clone(),
        live: config.live.clone(),
        max_raw: config.streams.deadletter_raw_bytes,
        chunk_events: 1024,
        record: record.map(|dir| (dir, config.record.clone())),
        decode,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        // `tickwire record` writes frames to disk anyway: no spool beside it
        // (and none to share with a `run` of the same feeds).
        spool: if decode {
            config.spool.clone()
        } else {
            tickwire_core::feeds::SpoolConfig {
                max_bytes: 0,
                ..config.spool.clone()
            }
        },
        backfill: config.backfill.clone(),
    }
}

/// Runs every configured feed into the Redis of `config` until `stop` is
/// cancelled or a stage fails; then closes the feeds, writes everything
/// read, and sums up. With `record`, every raw frame also goes to files in
/// that directory.
pub(super) async fn run(
    config: &Config,
    record: Option<PathBuf>,
    stop: &CancellationToken,
) -> Result<RunSummary, AppError> {
    let started = Instant::now();
    let supervisor = Supervisor::new(stop);
    // Redis first: a live run that cannot write should say so at once.
    let pools =
        Arc::new(connect_waiting(&config.redis, writer_dbs(config), supervisor.token()).await?);
    let (state_tx, rx) = mpsc::channel(config.writer.channel_capacity);
    // The state stage runs on the parser thread: nothing waits to go into it.
    let writer_depth = depth(state_tx.downgrade());
    let state = Arc::new(StateSlot::default());
    let runner = StateRunner::new(
        StateConfig::from_config(config),
        Checkpoints::new(&pools, config)?,
        Some(LiveClock {
            instruments: tickwire_core::collisions::feed_instruments(
                &config.feeds,
                tickwire_parse::VENUES,
            )
            .into_iter()
            .map(Arc::new)
            .collect(),
        }),
        state_tx,
    );
    // Gaps in the feeds' trades: found by the state stage, filled by the
    // fill task the live side starts.
    let (asks, fills) = tokio::sync::mpsc::unbounded_channel();
    let runner = runner.with_gaps(crate::gaps::GapKeeper::new(
        config,
        tickwire_parse::VENUES,
        Some(asks),
    ));
    let mut writer = WriterTask::start(config, &pools, rx, true, &supervisor);
    let downstream = LiveState {
        runner: Some(runner),
        slot: Arc::clone(&state),
        supervisor: supervisor.clone(),
    };
    let live = match start_live_filling(
        live_options(config, record, true),
        downstream,
        Some(fills),
        supervisor.token(),
    ) {
        Ok(h) => h,
        Err(e) => {
            let _ = writer.finish().await;
            pools.quit().await;
            return Err(e.into());
        }
    };
    let _gauges = ChannelGauges::start(vec![
        ("writer", writer_depth),
        ("parser", depth(live.frames())),
    ]);
    // Until stopped, or until a stage stops on its own: a writer that gave
    // up, a state stage that failed, a recorder that cannot write or a
    // parser thread that died ends the run (heartbeat stopped, feeds
    // closed, the summary and the cause reported) rather than leaving it
    // reading into a pipeline that writes or records nothing.
    let failed = tokio::select! {
        failed = supervisor.stopped() => failed,
        f = live.failed() => Some(f.stage),
    };
    let recorder_failure = live.failure().filter(|f| f.stage == "recorder");
    if let Some(stage) = failed {
        tracing::error!(stage, "a stage of the pipeline stopped: stopping the run");
        // No more beats: the key expires, and health says the process is gone.
        writer.stop_heartbeat().await;
    }
    tracing::info!("stopping: closing feeds, writing what was read");
    let spools = live.spools();
    // A parser that still runs hands on each feed's `disconnected`; the
    // writer writes it if it still can.
    let read = live.finish().await?;
    if read.parser_failed.is_some() && !writer.stopped() {
        // Its feeds' `disconnected` died with it: say it here.
        write_disconnected(config, &pools, &read).await;
    }
    let written = writer.finish().await?;
    // The parser thread has ended, and the state stage with it.
    let state = state.counts();
    pools.quit().await;
    let parser_failure = read.parser_failed.clone().map(|cause| StageFailure {
        stage: "parser",
        cause,
    });
    let (writer, cause) = first_cause(written, &state, [recorder_failure, parser_failure]);
    if cause.is_none() {
        // Everything the spools handed on is written: what they kept in
        // case it was not can go.
        for spool in spools.lock().iter_mut().flat_map(|s| s.iter_mut()) {
            if let Err(e) = spool.forget_done() {
                tracing::warn!(error = %e, "cannot delete a drained spool segment");
            }
        }
    }
    let ended = Ended {
        mode: "run",
        started,
        ingest: ingest_of(&read),
        writer,
        state,
        feeds: read.feeds,
        record: read.record,
    };
    conclude(config, ended, cause)
}

/// The state stage of a live run, on the parser thread: what it counted
/// once it ended.
#[derive(Default)]
struct StateSlot {
    counts: std::sync::Mutex<Option<StateCounts>>,
}

impl StateSlot {
    fn put(&self, counts: StateCounts) {
        if let Ok(mut c) = self.counts.lock() {
            *c = Some(counts);
        }
    }

    fn counts(&self) -> StateCounts {
        self.counts
            .lock()
            .ok()
            .and_then(|mut c| c.take())
            .unwrap_or_default()
    }
}

/// The live run's [`tickwire_ingest::live::Downstream`]: the state stage,
/// run on the parser thread, its outputs to the writer.
struct LiveState {
    /// None once it stopped or finished.
    runner: Option<StateRunner>,
    slot: Arc<StateSlot>,
    /// Hears that the stage stopped before the feeds closed.
    supervisor: Supervisor,
}

impl LiveState {
    fn stop(&mut self, stop: Stop) {
        if let Some(runner) = self.runner.take() {
            self.slot.put(runner.stopped(stop));
        }
        self.supervisor.fail("state stage");
    }

    fn finish(&mut self) {
        if let Some(runner) = self.runner.take() {
            self.slot.put(runner.finish());
        }
    }
}

impl tickwire_ingest::live::Downstream for LiveState {
    fn start(&mut self, received_before_ns: i64) -> bool {
        let Some(runner) = self.runner.as_mut() else {
            return false;
        };
        match runner.start(received_before_ns) {
            Ok(()) => true,
            Err(stop) => {
                self.stop(stop);
                false
            }
        }
    }

    fn wait(&self) -> Option<Duration> {
        self.runner.as_ref().and_then(StateRunner::wait)
    }

    fn chunk(
        &mut self,
        events: Vec<tickwire_core::Event>,
        more: bool,
        received_before_ns: i64,
    ) -> bool {
        let Some(runner) = self.runner.as_mut() else {
            return false;
        };
        runner.received_before(received_before_ns);
        match runner.chunk(events, more) {
            Ok(()) => true,
            Err(stop) => {
                self.stop(stop);
                false
            }
        }
    }
}

impl Drop for LiveState {
    /// The parser thread is done with it (its feeds closed, or it panicked):
    /// the stage hands on what changed, as a state thread of its own did
    /// when its input closed.
    fn drop(&mut self) {
        self.finish();
    }
}

/// Writes `disconnected` for every feed of `read` (the default layout's
/// `feed:{feed}:status`), for a parser that died before handing it on.
async fn write_disconnected(config: &Config, pools: &RedisPools, read: &LiveSummary) {
    let keys = config.key_templates();
    let db = config.databases.get(tickwire_core::Db::System);
    let Ok(client) = pools.client(db, 0) else {
        return;
    };
    let ttl = i64::try_from(config.ttl.secs(tickwire_core::Db::System)).unwrap_or(i64::MAX);
    for f in &read.feeds {
        let key = keys
            .feed_status
            .render_one(keys.prefix(db), "feed", &f.name);
        let set: Result<(), _> = client
            .set(
                key.as_str(),
                "disconnected",
                Some(fred::types::Expiration::EX(ttl)),
                None,
                false,
            )
            .await;
        if let Err(e) = set {
            tracing::warn!(feed = %f.name, error = %e, "feed status not written");
        }
    }
}

fn ingest_of(read: &LiveSummary) -> IngestSummary {
    IngestSummary {
        files: 0,
        bytes: read.feeds.iter().map(|f| f.bytes).sum(),
        // Frames a killed process read and spooled are read by this one.
        lines: read.feeds.iter().map(|f| f.frames + f.inherited).sum(),
        ticks: read.ticks,
        quotes: read.quotes,
        rejected: read.rejected,
        skipped: read.skipped,
        extra: read.extra,
        truncated: 0,
        empty: 0,
        stopped_early: false,
    }
}
