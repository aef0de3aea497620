//! The state stage: parsed events in; events with bars, indicator values and
//! checkpoints out. Each instrument it meets first continues from the
//! checkpoint an earlier process left.

use std::sync::Arc;

use tickwire_core::{Config, Event};
use tickwire_indicators::{StateConfig, StateStage};
use tickwire_writer::{RedisPools, WriterError};
use tokio::sync::mpsc;

use crate::summary::StateCounts;
use crate::supervisor::Supervisor;

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
        // This runs on the state stage's own thread (or the live parser
        // thread), never on a runtime worker: it waits here for the read,
        // whose retries wait on the runtime's timer.
        let loaded = self
            .handle
            .block_on(self.read(&newcomers))
            .map_err(|e| e.to_string())?;
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

    /// One pipelined read of `newcomers`' checkpoints; Redis unreachable:
    /// retried (`writer.max_retries`, the writer's backoff), as writes are.
    async fn read(
        &self,
        newcomers: &[Arc<tickwire_core::Instrument>],
    ) -> Result<Vec<Option<String>>, WriterError> {
        let mut tries = 0;
        loop {
            match tickwire_writer::load_checkpoints(
                &self.pools,
                &self.config,
                &self.keys,
                newcomers,
            )
            .await
            {
                Ok(l) => return Ok(l),
                // An ACL refusal (NOPERM) does not heal by waiting.
                Err(e) if tries < self.config.writer.max_retries && !e.is_final() => {
                    tries += 1;
                    tracing::warn!(attempt = tries, error = %e, "checkpoint read failed, retrying");
                    tokio::time::sleep(tickwire_writer::retry_backoff(tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
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
/// A checkpoint that cannot be read fails the stage: `supervisor` hears it.
pub(crate) fn spawn_state_stage(
    cfg: StateConfig,
    checkpoints: Checkpoints,
    gaps: crate::gaps::GapKeeper,
    mut input: mpsc::Receiver<Vec<Event>>,
    output: mpsc::Sender<Vec<Event>>,
    supervisor: Supervisor,
) -> std::io::Result<std::thread::JoinHandle<StateCounts>> {
    std::thread::Builder::new()
        .name("tickwire-state".into())
        .spawn(move || {
            let mut runner = StateRunner::new(cfg, checkpoints, None, output).with_gaps(gaps);
            loop {
                let Some(events) = input.blocking_recv() else {
                    return runner.finish();
                };
                if let Err(stop) = runner.chunk(events, !input.is_empty()) {
                    if matches!(stop, Stop::Failed(_)) {
                        supervisor.fail("state stage");
                    }
                    return runner.stopped(stop);
                }
            }
        })
}

/// Applies what the gap keeper let through (`apply`), then takes again,
/// one at a time, the trades of the gaps that closed, applying what each
/// lets through before the next is looked at.
fn apply_kept(
    keeper: &mut crate::gaps::GapKeeper,
    stage: &mut StateStage,
    apply: &mut Vec<Event>,
    out: &mut Vec<Event>,
) {
    loop {
        for a in apply.drain(..) {
            stage.process(a, out);
        }
        let Some(again) = keeper.requeued() else {
            return;
        };
        keeper.take(again, stage, apply);
    }
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
    /// Live: the gaps found in the feeds' trades and their fills.
    gaps: Option<crate::gaps::GapKeeper>,
    /// What the gap keeper lets through, reused.
    apply: Vec<Event>,
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
            gaps: None,
            apply: Vec::new(),
        }
    }

    /// Live: finds gaps in the feeds' trades and fills them with `keeper`.
    pub(crate) fn with_gaps(mut self, keeper: crate::gaps::GapKeeper) -> Self {
        self.gaps = Some(keeper);
        self
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
        match &mut self.gaps {
            // Event by event: whether a trade opens a gap depends on the
            // trades applied before it.
            Some(keeper) => {
                let (stage, apply) = (&mut self.stage, &mut self.apply);
                for e in events {
                    keeper.take(e, stage, apply);
                    apply_kept(keeper, stage, apply, &mut out);
                }
                keeper.expire(apply);
                apply_kept(keeper, stage, apply, &mut out);
                keeper.release(stage);
            }
            None => {
                for e in events {
                    self.stage.process(e, &mut out);
                }
            }
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
        if let Some(keeper) = &mut self.gaps {
            // A held trade taken again may open a gap of its own: until none is open.
            while keeper.is_open() {
                keeper.finish(&mut self.apply);
                apply_kept(keeper, &mut self.stage, &mut self.apply, &mut out);
            }
        }
        self.stage.finish(&mut out);
        if !out.is_empty() {
            let _ = self.output.blocking_send(out);
        }
        self.counts()
    }

    /// What the stage and the gap keeper counted.
    fn counts(&self) -> StateCounts {
        let mut counts = StateCounts::of(&self.stage);
        if let Some(k) = &self.gaps {
            (
                counts.gaps,
                counts.gap_filled,
                counts.gap_missing,
                counts.gap_held,
            ) = (k.closed, k.filled, k.missing, k.held);
        }
        counts
    }

    /// The counts of a runner that stopped early, and why.
    pub(crate) fn stopped(self, stop: Stop) -> StateCounts {
        let mut counts = self.counts();
        if let Stop::Failed(e) = stop {
            tracing::error!(error = %e, "cannot read checkpoints: the state stage stops");
            counts.failed = Some(e);
        }
        counts
    }
}
