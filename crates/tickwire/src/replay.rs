//! `tickwire replay`: tick files through parse -> writer into Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tickwire_core::Event;
use tickwire_core::{Config, ConfigError};
use tickwire_indicators::{StateConfig, StateStage};
use tickwire_ingest::{start_replay, IngestError, IngestSummary, ReplayOptions};
use tickwire_writer::{writer_dbs, RedisPools, WriterError, WriterFailure, WriterStats};
use tokio::sync::mpsc;

use crate::summary::{RunSummary, StateCounts};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Redis(#[from] tickwire_sandbox::RedisServerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("redis: {0}")]
    Fred(#[from] fred::error::Error),
    #[error("internal task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Live(#[from] tickwire_ingest::LiveError),
    #[error("the state stage stopped: {0}")]
    State(String),
    /// The recorder or the live parser failed while the feeds ran.
    #[error("{0}")]
    Stage(tickwire_ingest::live::StageFailure),
    /// A stage failed and stopped the run: `summary` is what it did before
    /// (printed before the error), `cause` why it stopped.
    #[error("{cause}")]
    Stopped {
        summary: Box<RunSummary>,
        cause: Box<AppError>,
    },
}

impl AppError {
    /// The summary of a run that a failed stage stopped.
    pub fn summary(&self) -> Option<&RunSummary> {
        match self {
            AppError::Stopped { summary, .. } => Some(summary),
            _ => None,
        }
    }

    /// The stage this error stopped a run in, as the summary names it.
    pub fn stage(&self) -> &'static str {
        match self {
            AppError::Stage(f) => f.stage,
            AppError::State(_) => "state stage",
            AppError::Stopped { cause, .. } => cause.stage(),
            _ => "writer",
        }
    }
}

/// The summary of a replay that read through `p` (its reader did not get to
/// sum up: the writer stopped it).
fn ingest_so_far(p: &tickwire_ingest::IngestProgress) -> IngestSummary {
    IngestSummary {
        files: p.files_done.load(Ordering::Relaxed),
        bytes: p.bytes.load(Ordering::Relaxed),
        lines: p.lines.load(Ordering::Relaxed),
        ticks: p.ticks.load(Ordering::Relaxed),
        quotes: p.quotes.load(Ordering::Relaxed),
        rejected: p.rejected.load(Ordering::Relaxed),
        skipped: p.skipped.load(Ordering::Relaxed),
        extra: p.extra.load(Ordering::Relaxed),
        truncated: p.truncated.load(Ordering::Relaxed),
        empty: p.empty.load(Ordering::Relaxed),
        stopped_early: true,
    }
}

/// Where the state stage reads the checkpoints of instruments it meets.
pub(crate) struct Checkpoints {
    handle: tokio::runtime::Handle,
    pools: Arc<RedisPools>,
    config: Config,
    /// The key templates, parsed once.
    keys: tickwire_core::config::Keys,
}

impl Checkpoints {
    /// Reads through `pools` from the runtime this is called on.
    pub fn new(pools: &Arc<RedisPools>, config: &Config) -> Result<Self, WriterError> {
        Ok(Self {
            handle: tokio::runtime::Handle::current(),
            pools: Arc::clone(pools),
            config: config.clone(),
            keys: config.key_templates().clone(),
        })
    }

    /// Continues every instrument of `events` the stage has not met from its
    /// checkpoint, if an earlier process left one: one pipelined read per
    /// chunk that meets instruments. Redis unreachable: retried, as writes are.
    fn restore(&self, stage: &mut StateStage, events: &[Event]) -> Result<(), String> {
        let mut newcomers: Vec<Arc<tickwire_core::Instrument>> = Vec::new();
        for e in events {
            if let Event::Tick(t) = e {
                if !stage.knows(&t.instrument)
                    && !newcomers.iter().any(|i| Arc::ptr_eq(i, &t.instrument))
                {
                    newcomers.push(Arc::clone(&t.instrument));
                }
            }
        }
        self.load(stage, newcomers)
    }

    /// Continues `newcomers` from their checkpoints (one pipelined read).
    fn load(
        &self,
        stage: &mut StateStage,
        newcomers: Vec<Arc<tickwire_core::Instrument>>,
    ) -> Result<(), String> {
        if newcomers.is_empty() {
            return Ok(());
        }
        let mut tries = 0;
        let loaded = loop {
            let read = self.handle.block_on(tickwire_writer::load_checkpoints(
                &self.pools,
                &self.config,
                &self.keys,
                &newcomers,
            ));
            match read {
                Ok(l) => break l,
                // An ACL refusal (NOPERM) does not heal by waiting.
                Err(e) if tries < self.config.writer.max_retries && !e.is_final() => {
                    tries += 1;
                    tracing::warn!(attempt = tries, error = %e, "checkpoint read failed, retrying");
                    std::thread::sleep(tickwire_writer::retry_backoff(tries));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        for (inst, json) in newcomers.iter().zip(loaded) {
            let Some(json) = json else { continue };
            let restored = serde_json::from_str(&json).is_ok_and(|c| stage.restore(inst, c));
            if !restored {
                tracing::warn!(
                    symbol = %inst.symbol,
                    "checkpoint of another format: the instrument starts afresh"
                );
            }
        }
        Ok(())
    }
}

/// Replays `opts.files` into the Redis of `config`. Setting `stop` (Ctrl-C)
/// stops reading; everything read is still written before this returns.
pub async fn replay(
    config: &Config,
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, AppError> {
    replay_shown(config, opts, stop, crate::progress::ProgressMode::Off).await
}

/// [`replay`], showing its progress on standard error as `mode` says.
pub async fn replay_shown(
    config: &Config,
    opts: ReplayOptions,
    stop: Arc<AtomicBool>,
    mode: crate::progress::ProgressMode,
) -> Result<RunSummary, AppError> {
    let started = Instant::now();
    let (tx, parsed) = mpsc::channel(config.writer.channel_capacity);
    let (state_tx, rx) = mpsc::channel(config.writer.channel_capacity);
    let _gauges = crate::ops::ChannelGauges::start(vec![("state", &tx), ("writer", &state_tx)]);
    // Files first: a missing file fails before Redis is even asked.
    let close_at_end = opts.close_at_end;
    // A paced replay stamps each tick when its pacer releases it: its
    // tick-to-Redis latency is recorded as a live run's is.
    let paced = matches!(opts.pace, tickwire_ingest::Pace::Speed(_));
    let handle = start_replay(opts, tx, Arc::clone(&stop))?;
    let pools = match RedisPools::connect_waiting(&config.redis, writer_dbs(config), &stop).await {
        Ok(p) => Arc::new(p),
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            drop(parsed);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            return Err(e.into());
        }
    };
    let state = spawn_state_stage(
        StateConfig {
            close_at_end,
            ..StateConfig::from_config(config)
        },
        Checkpoints::new(&pools, config)?,
        parsed,
        state_tx,
    )?;
    let writer = WriterTask::start(config, &pools, rx, paced);
    let progress = handle.progress();
    let shown = crate::progress::show(mode, handle.progress());
    let ingest = tokio::task::spawn_blocking(move || handle.join());
    // A writer that gave up stops the replay: its heartbeat goes at once
    // (no last beat), the reader stops as its output closes.
    let written = writer.finish_or_abort().await?;
    shown.finish().await;
    let read = ingest.await?;
    let state = tokio::task::spawn_blocking(move || state.join())
        .await?
        .unwrap_or_default();
    pools.quit().await;
    // A writer failure explains an ingest "writer gone"; report it first.
    let (writer, cause) = match written {
        Ok(stats) => (stats, None),
        Err(f) => (f.stats, Some(AppError::Writer(f.error))),
    };
    let cause = match (&state.failed, cause) {
        (_, Some(c)) => Some(c),
        (Some(why), None) => Some(AppError::State(why.clone())),
        (None, None) => None,
    };
    let ingest = match (read, cause.is_some()) {
        (Ok(i), _) => i,
        (Err(_), true) => ingest_so_far(&progress),
        (Err(e), false) => return Err(e.into()),
    };
    let summary = RunSummary {
        ingest,
        writer,
        state,
        elapsed: started.elapsed(),
        databases: config.databases.clone(),
        cluster: config.redis.is_cluster(),
        mode: "replay",
        feeds: Vec::new(),
        record: None,
        stopped_by: cause.as_ref().map(AppError::stage),
    };
    match cause {
        None => Ok(summary),
        Some(cause) => Err(AppError::Stopped {
            summary: Box::new(summary),
            cause: Box::new(cause),
        }),
    }
}

/// How a live run's state stage keeps time.
#[derive(Default)]
pub(crate) struct LiveClock {
    /// The instruments the feeds are configured for: continued from their
    /// checkpoints at start, so what a pause left forming closes on time
    /// even if the instrument trades no more.
    pub instruments: Vec<Arc<tickwire_core::Instrument>>,
}

/// Now, as epoch milliseconds.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The least a live state stage waits for input while frames wait upstream
/// (see [`StateRunner::wait`]).
const LAGGING_WAIT_MS: i64 = 10;

/// Input chunks the state stage may take without handing on checkpoints
/// while more input waits (see [`spawn_state_stage`]).
const MAX_DEFERRED: u32 = 8;

/// A replay's state stage on its own thread: parsed events in, events with
/// bars, indicator values and checkpoints out; each instrument it meets
/// first continues from its checkpoint. Ends when its input closes, after
/// handing on what changed (closing forming bars only with `close_at_end`).
/// A live run's state stage runs on the parser thread instead, where it
/// also keeps the wall clock (see [`StateRunner::wait`]).
pub(crate) fn spawn_state_stage(
    cfg: StateConfig,
    checkpoints: Checkpoints,
    mut input: mpsc::Receiver<Vec<Event>>,
    output: mpsc::Sender<Vec<Event>>,
) -> std::io::Result<std::thread::JoinHandle<StateCounts>> {
    std::thread::Builder::new()
        .name("tickwire-state".into())
        .spawn(move || {
            let mut runner = StateRunner::new(cfg, checkpoints, None, output);
            loop {
                let Some(events) = input.blocking_recv() else {
                    return runner.finish();
                };
                if let Err(stop) = runner.chunk(events, !input.is_empty()) {
                    return runner.stopped(stop);
                }
            }
        })
}

/// Why a [`StateRunner`] stopped before its input ended.
pub(crate) enum Stop {
    /// The writer is gone; it reports why.
    Gone,
    /// A checkpoint could not be read.
    Failed(String),
}

/// The state stage's work chunk by chunk, wherever it runs: on a thread of
/// its own ([`spawn_state_stage`]) or, in a live run, on the parser thread,
/// a hand-off to a thread that may have to wake less for every chunk.
pub(crate) struct StateRunner {
    stage: StateStage,
    checkpoints: Checkpoints,
    live: Option<LiveClock>,
    output: mpsc::Sender<Vec<Event>>,
    resent: metrics::Counter,
    /// When the next forming bar is due (live).
    due: Option<i64>,
    /// Live: the watermark, epoch ms: every frame received before it has
    /// been applied (`tickwire_ingest::watermark`). The clock that closes
    /// quiet bars runs from it, not from the wall clock, so a minute whose
    /// trades still wait upstream (Redis stalled, the pipeline behind) is
    /// not closed before they are applied.
    received_before_ms: i64,
    /// Chunks taken in a row without handing on checkpoints.
    deferred: u32,
}

impl StateRunner {
    pub(crate) fn new(
        cfg: StateConfig,
        checkpoints: Checkpoints,
        live: Option<LiveClock>,
        output: mpsc::Sender<Vec<Event>>,
    ) -> Self {
        Self {
            stage: StateStage::new(cfg),
            checkpoints,
            live,
            output,
            resent: metrics::counter!(tickwire_core::telemetry::TRADES_RESENT),
            due: None,
            received_before_ms: i64::MIN,
            deferred: 0,
        }
    }

    /// Live: the watermark before the next chunk (epoch ns).
    pub(crate) fn received_before(&mut self, ns: i64) {
        self.received_before_ms = ns.div_euclid(1_000_000);
    }

    /// Live: continues the configured instruments from their checkpoints
    /// and hands on what that closed or changed. Runs off the runtime (it
    /// reads Redis by blocking on the runtime's handle).
    pub(crate) fn start(&mut self, received_before_ns: i64) -> Result<(), Stop> {
        let Some(clock) = &self.live else {
            return Ok(());
        };
        self.checkpoints
            .load(&mut self.stage, clock.instruments.clone())
            .map_err(Stop::Failed)?;
        self.received_before(received_before_ns);
        let mut out = Vec::new();
        self.due = self.stage.close_due(self.received_before_ms, &mut out);
        self.stage.emit_dirty(&mut out);
        self.send(out)
    }

    /// How long input may be waited for: live, until the next forming bar
    /// is due (at least once a second); otherwise until it comes. While the
    /// watermark lags the clock (frames wait upstream), at least
    /// [`LAGGING_WAIT_MS`]: the bars are due by a clock that moves only as
    /// those frames come, so asking sooner would spin.
    pub(crate) fn wait(&self) -> Option<std::time::Duration> {
        match (&self.live, self.due) {
            (Some(_), Some(at)) => {
                let now = wall_ms();
                let least = if self.received_before_ms < now - LAGGING_WAIT_MS {
                    LAGGING_WAIT_MS
                } else {
                    0
                };
                Some(std::time::Duration::from_millis(
                    (at - now).clamp(least, 1_000).unsigned_abs(),
                ))
            }
            _ => None,
        }
    }

    /// Takes one chunk of input (none: time passed), `more` when more
    /// input waits already.
    pub(crate) fn chunk(&mut self, events: Vec<Event>, more: bool) -> Result<(), Stop> {
        self.checkpoints
            .restore(&mut self.stage, &events)
            .map_err(Stop::Failed)?;
        // A tick is one event out (two with the Lua engine), and five or
        // six more when it closes a bar; a chunk that crosses a minute
        // closes one per instrument. Growing `out` step by step moved the
        // chunk's events each time; the forming outputs and checkpoints
        // reserve their own room.
        let mut out = Vec::with_capacity(events.len() * 2 + 16);
        let before = self.stage.duplicate_trades;
        for e in events {
            self.stage.process(e, &mut out);
        }
        self.resent.increment(self.stage.duplicate_trades - before);
        if self.live.is_some() {
            self.due = self.stage.close_due(self.received_before_ms, &mut out);
        }
        // While more input waits (a replay at full speed, a burst), the
        // checkpoints wait for it, up to MAX_DEFERRED chunks: a checkpoint
        // is about 3,500 instructions of JSON, and at 100 instruments two
        // of three were replaced by a newer one before a lane wrote them.
        if more && self.deferred < MAX_DEFERRED {
            self.deferred += 1;
            self.stage.emit_outputs(&mut out);
        } else {
            self.deferred = 0;
            self.stage.emit_dirty(&mut out);
        }
        self.send(out)
    }

    fn send(&self, out: Vec<Event>) -> Result<(), Stop> {
        if !out.is_empty() && self.output.blocking_send(out).is_err() {
            return Err(Stop::Gone);
        }
        Ok(())
    }

    /// Input ended: hands on what changed (and, with `close_at_end`, the
    /// forming bars), and counts.
    pub(crate) fn finish(mut self) -> StateCounts {
        let mut out = Vec::new();
        self.stage.finish(&mut out);
        if !out.is_empty() {
            let _ = self.output.blocking_send(out);
        }
        StateCounts::of(&self.stage)
    }

    /// The counts of a runner that stopped early, and why.
    pub(crate) fn stopped(self, stop: Stop) -> StateCounts {
        let mut counts = StateCounts::of(&self.stage);
        if let Stop::Failed(e) = stop {
            tracing::error!(error = %e, "cannot read checkpoints: the state stage stops");
            counts.failed = Some(e);
        }
        counts
    }
}

/// The writer's task with the heartbeat beside it.
pub(crate) struct WriterTask {
    task: tokio::task::JoinHandle<Result<WriterStats, WriterFailure>>,
    heartbeat: Option<tickwire_writer::heartbeat::Heartbeat>,
}

impl WriterTask {
    /// Writes what `rx` brings; `tick_latency` for live runs and paced
    /// replays.
    pub(crate) fn start(
        config: &Config,
        pools: &Arc<RedisPools>,
        rx: mpsc::Receiver<Vec<Event>>,
        tick_latency: bool,
    ) -> WriterTask {
        let progress = Arc::new(tickwire_writer::WriterProgress::default());
        let heartbeat = crate::ops::start_heartbeat(config, pools, &progress);
        let config = config.clone();
        let pools = Arc::clone(pools);
        let opts = tickwire_writer::WriterOptions {
            progress,
            tick_latency,
        };
        let task =
            tokio::spawn(async move { tickwire_writer::run_with(&config, pools, rx, opts).await });
        WriterTask { task, heartbeat }
    }

    /// Whether the writer has stopped on its own (it gave up, or failed).
    pub(crate) fn stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the writer (its input closed), then beats a last time.
    pub(crate) async fn finish(
        self,
    ) -> Result<Result<WriterStats, WriterFailure>, tokio::task::JoinError> {
        let written = self.task.await;
        if let Some(h) = self.heartbeat {
            h.stop().await;
        }
        written
    }

    /// [`WriterTask::finish`], but a writer that failed gets no last beat:
    /// its heartbeat stops the moment it is seen to have failed, and expires.
    pub(crate) async fn finish_or_abort(
        mut self,
    ) -> Result<Result<WriterStats, WriterFailure>, tokio::task::JoinError> {
        let heartbeat = self.heartbeat.take();
        let written = self.task.await;
        if let Some(h) = heartbeat {
            match &written {
                Ok(Ok(_)) => h.stop().await,
                _ => h.abort().await,
            }
        }
        written
    }

    /// Stops the heartbeat now, without a last beat (a stage failed: the
    /// run is no longer healthy, whatever it still drains).
    pub(crate) async fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort().await;
        }
    }
}
