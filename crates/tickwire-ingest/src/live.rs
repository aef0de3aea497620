//! Live feeds: one task per configured feed, one parser thread that turns
//! their frames into events (the same decoders replay uses), and an optional
//! recorder beside it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::thread;

use tickwire_core::feeds::{LiveConfig, RecordConfig};
use tickwire_core::{Event, FeedConfig};
use tickwire_parse::venues::Frame;
use tickwire_parse::LineDecoder;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::frame::FeedMsg;
use crate::record::{RecordSummary, Recorder};
use crate::watermark::{FeedFlow, Flows, Taken};
use crate::ws::{run_feed, FeedCounters, FeedError, FeedPlan};
use crate::IngestProgress;

/// What the live run needs to start.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub feeds: Vec<FeedConfig>,
    pub live: LiveConfig,
    /// Raw bytes kept with a rejected frame.
    pub max_raw: usize,
    /// Events per chunk handed on at most (less when the feeds are quiet).
    pub chunk_events: usize,
    /// Record every raw frame to this directory.
    pub record: Option<(std::path::PathBuf, RecordConfig)>,
    /// Decode frames into events (false for `tickwire record`: frames only).
    pub decode: bool,
    /// `[ingest] max_clock_skew_ms`: trades stamped further ahead are dead-lettered.
    pub max_clock_skew_ms: u64,
    /// `[spool]`: where frames go once a feed's backlog is full.
    pub spool: tickwire_core::feeds::SpoolConfig,
    /// `[backfill]`: how gaps are filled from the venues' history.
    pub backfill: tickwire_core::feeds::BackfillConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("no feeds configured: add [[feeds]] tables to the config")]
    NoFeeds,
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    #[error("cannot start the parser thread: {0}")]
    Thread(std::io::Error),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
}

/// One feed's totals at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedSummary {
    pub name: String,
    pub frames: u64,
    pub bytes: u64,
    pub connects: u64,
    pub reconnects: u64,
    pub idle_timeouts: u64,
    pub pings_sent: u64,
    pub backpressure: u64,
    pub max_backlog: u64,
    pub dropped: u64,
    /// Frames that went to the disk spool, and those handed on from it
    /// (also those a previous process left).
    pub spooled: u64,
    pub unspooled: u64,
    /// Frames an earlier process read and spooled, handed on by this one
    /// (counted with the frames read).
    pub inherited: u64,
    pub max_spool_bytes: u64,
    /// Microseconds from the last loss to the new subscription.
    pub last_reconnect_us: u64,
}

/// What a finished live run read.
#[derive(Debug, Clone, Default)]
pub struct LiveSummary {
    pub feeds: Vec<FeedSummary>,
    pub ticks: u64,
    pub quotes: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Items beyond the first of frames that held several: `frames + extra`
    /// is `ticks + quotes + rejected + skipped + dropped`.
    pub extra: u64,
    pub record: Option<RecordSummary>,
    /// Trades of gaps fetched from the venues' history and decoded.
    pub history_trades: u64,
    /// Why the parser thread ended on its own (it panicked, or its
    /// recorder could not be closed): the counts above are what it got to.
    pub parser_failed: Option<String>,
}

/// A stage of the live side that failed while the feeds were running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFailure {
    /// `recorder` or `parser`.
    pub stage: &'static str,
    pub cause: String,
}

impl std::fmt::Display for StageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} stopped: {}", self.stage, self.cause)
    }
}

/// A running set of feeds.
pub struct LiveHandle {
    tasks: Vec<tokio::task::JoinHandle<Option<crate::spool::Spool>>>,
    /// The feeds' spools once their tasks ended (see [`LiveHandle::spools`]).
    spools: Arc<std::sync::Mutex<Vec<crate::spool::Spool>>>,
    parser: thread::JoinHandle<Result<Option<RecordSummary>, LiveError>>,
    counters: Vec<(String, Arc<FeedCounters>)>,
    progress: Arc<IngestProgress>,
    /// Closes the feeds: cancelled by the caller's stop, by
    /// [`LiveHandle::finish`], or when the handle is dropped.
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    /// Cancelled when the parser thread ends (on its own, or once the
    /// feeds closed) or sees that the recorder failed.
    ended: CancellationToken,
    /// Set by the recorder thread the moment it fails.
    recorder_failed: Option<Arc<OnceLock<String>>>,
    /// Cancelled by the recorder thread the moment it fails.
    recorder_signal: Option<CancellationToken>,
    /// The frames waiting for the parser (for its channel-depth gauge).
    frames: mpsc::WeakSender<FeedMsg>,
    /// The fill task, where gaps are filled.
    fills: Option<tokio::task::JoinHandle<()>>,
}

impl LiveHandle {
    /// Counters of each feed, by name (live; for tests and the summary).
    pub fn counters(&self) -> &[(String, Arc<FeedCounters>)] {
        &self.counters
    }

    pub fn progress(&self) -> Arc<IngestProgress> {
        Arc::clone(&self.progress)
    }

    /// The channel of frames waiting for the parser, without keeping it
    /// open (for the `parser` channel-depth gauge).
    pub fn frames(&self) -> mpsc::WeakSender<FeedMsg> {
        self.frames.clone()
    }

    /// The feeds' spools, there once [`LiveHandle::finish`] returned: when
    /// everything handed on was written, [`crate::spool::Spool::forget_done`]
    /// deletes the segments kept in case it was not.
    pub fn spools(&self) -> Arc<std::sync::Mutex<Vec<crate::spool::Spool>>> {
        Arc::clone(&self.spools)
    }

    /// Asks every feed to close and the parser to finish.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until a stage of the live side fails (see
    /// [`LiveHandle::failure`]); pending while they all run.
    pub async fn failed(&self) -> StageFailure {
        match &self.recorder_signal {
            Some(recorder) => tokio::select! {
                () = self.ended.cancelled() => {}
                () = recorder.cancelled() => {}
            },
            None => self.ended.cancelled().await,
        }
        self.failure().unwrap_or_else(parser_ended)
    }

    /// A stage that failed while the feeds run: the recorder could not
    /// write, or the parser thread ended before it was asked to (it
    /// panicked). Either stops the run: frames would go unrecorded or
    /// undecoded while the feeds read on. The parser's cause is known once
    /// it is joined ([`LiveHandle::finish`] puts it in the summary).
    pub fn failure(&self) -> Option<StageFailure> {
        if let Some(why) = self.recorder_failed.as_ref().and_then(|f| f.get()) {
            return Some(StageFailure {
                stage: "recorder",
                cause: why.clone(),
            });
        }
        // The parser ends on its own only when it panicked, or when the
        // pipeline after it is gone (whose stage reports that itself).
        self.ended.is_cancelled().then(parser_ended)
    }

    /// Stops (if not yet), waits for the feeds and the parser, and sums up:
    /// a parser that failed is in [`LiveSummary::parser_failed`], with the
    /// counts it got to.
    pub async fn finish(self) -> Result<LiveSummary, LiveError> {
        self.stop.cancel();
        if let Some(fills) = self.fills {
            let _ = fills.await;
        }
        for t in self.tasks {
            if let Ok(Some(spool)) = t.await {
                if let Ok(mut spools) = self.spools.lock() {
                    spools.push(spool);
                }
            }
        }
        let parser = self.parser;
        let joined = tokio::task::spawn_blocking(move || parser.join())
            .await
            .map_err(|_| LiveError::Panicked("parser"))?;
        let (record, parser_failed) = match joined {
            Ok(Ok(record)) => (record, None),
            Ok(Err(e)) => (None, Some(e.to_string())),
            Err(panic) => (
                None,
                Some(format!(
                    "the parser thread panicked: {}",
                    panic_text(&*panic)
                )),
            ),
        };
        let p = &self.progress;
        Ok(LiveSummary {
            feeds: self
                .counters
                .iter()
                .map(|(name, c)| FeedSummary {
                    name: name.clone(),
                    frames: c.frames.load(Ordering::Relaxed),
                    bytes: c.bytes.load(Ordering::Relaxed),
                    connects: c.connects.load(Ordering::Relaxed),
                    reconnects: c.reconnects.load(Ordering::Relaxed),
                    idle_timeouts: c.idle_timeouts.load(Ordering::Relaxed),
                    pings_sent: c.pings_sent.load(Ordering::Relaxed),
                    backpressure: c.backpressure.load(Ordering::Relaxed),
                    max_backlog: c.max_backlog.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    spooled: c.spooled.load(Ordering::Relaxed),
                    unspooled: c.unspooled.load(Ordering::Relaxed),
                    inherited: c.inherited.load(Ordering::Relaxed),
                    max_spool_bytes: c.max_spool_bytes.load(Ordering::Relaxed),
                    last_reconnect_us: c.last_reconnect_us.load(Ordering::Relaxed),
                })
                .collect(),
            ticks: p.ticks.load(Ordering::Relaxed),
            quotes: p.quotes.load(Ordering::Relaxed),
            rejected: p.rejected.load(Ordering::Relaxed),
            skipped: p.skipped.load(Ordering::Relaxed),
            extra: p.extra.load(Ordering::Relaxed),
            history_trades: p.history_trades.load(Ordering::Relaxed),
            record,
            parser_failed,
        })
    }
}

fn parser_ended() -> StageFailure {
    StageFailure {
        stage: "parser",
        cause: "the parser thread ended early".into(),
    }
}

/// What a panic said, when it said it as text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "no message".into(),
    }
}

/// Installs rustls' one crypto provider (ring) for wss:// connections. Safe
/// to call more than once.
pub fn install_tls_provider() {
    // Err only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where the parser thread hands its events: a channel to the next stage's
/// thread, or a stage that runs on the parser thread itself (a live run's
/// state stage: one hand-off less for every chunk).
pub trait Downstream: Send + 'static {
    /// Before the first frame, on the parser thread, with the watermark
    /// (see [`Downstream::chunk`]). False: the pipeline after it is gone.
    fn start(&mut self, _received_before_ns: i64) -> bool {
        true
    }

    /// The longest the parser waits for a frame before it calls
    /// [`Downstream::chunk`] with none (None: until one comes).
    fn wait(&self) -> Option<std::time::Duration> {
        None
    }

    /// The events of the frames read, in order (none: [`Downstream::wait`]
    /// passed without a frame); `more` when frames wait already;
    /// `received_before_ns` the [`crate::watermark`]: every frame the feeds
    /// received before it is in these events or an earlier chunk's (the
    /// clock when none waits). False: the pipeline after it is gone.
    fn chunk(&mut self, events: Vec<Event>, more: bool, received_before_ns: i64) -> bool;
}

impl Downstream for mpsc::Sender<Vec<Event>> {
    fn chunk(&mut self, events: Vec<Event>, _more: bool, _received_before_ns: i64) -> bool {
        events.is_empty() || self.blocking_send(events).is_ok()
    }
}

/// Starts every feed and the parser thread. Events go to `downstream` in
/// chunks; it is dropped (a channel closes) after [`LiveHandle::finish`],
/// once everything read is handed on. The feeds close when `stop` is
/// cancelled (or the handle finishes or is dropped). Must be called inside
/// a Tokio runtime.
pub fn start_live<D: Downstream>(
    opts: LiveOptions,
    downstream: D,
    stop: &CancellationToken,
) -> Result<LiveHandle, LiveError> {
    start_live_filling(opts, downstream, None, stop)
}

/// [`start_live`], and gaps filled as `fills` asks (the state stage's
/// asks, [`crate::backfill`]): the fill task's pages and ends go to the
/// parser with the frames.
pub fn start_live_filling<D: Downstream>(
    opts: LiveOptions,
    downstream: D,
    fills: Option<mpsc::UnboundedReceiver<crate::backfill::GapAsk>>,
    stop: &CancellationToken,
) -> Result<LiveHandle, LiveError> {
    if opts.feeds.is_empty() {
        return Err(LiveError::NoFeeds);
    }
    install_tls_provider();
    let plans = opts
        .feeds
        .iter()
        .map(FeedPlan::of)
        .collect::<Result<Vec<_>, _>>()?;
    // Each feed's spool: what a previous process left goes out first (that
    // spool is opened and locked now); otherwise it opens when first needed.
    let mut spools = Vec::with_capacity(plans.len());
    let budget = Arc::new(crate::spool::SpoolBudget::default());
    for plan in &plans {
        spools.push(if opts.spool.enabled() {
            Some(crate::spool::SpoolSlot::new(
                &opts.spool,
                Arc::clone(&plan.name),
                plan.venue,
                Arc::clone(&budget),
            )?)
        } else {
            None
        });
    }
    let recorder = match &opts.record {
        Some((dir, cfg)) => Some(Recorder::create(dir, cfg.clone())?),
        None => None,
    };
    let recorder_failed = recorder.as_ref().map(Recorder::failure);
    let recorder_signal = recorder.as_ref().map(Recorder::failed_signal);
    // What each feed accepted, for the watermark; a spool an earlier
    // process left holds it from the start.
    let flows = Arc::new(Flows(
        plans
            .iter()
            .zip(&spools)
            .map(|(plan, spool)| {
                let flow = FeedFlow::new(Arc::clone(&plan.name));
                let left = spool
                    .as_ref()
                    .and_then(|s| s.peek())
                    .is_some_and(|s| !s.is_empty());
                flow.set_spool_waiting(left);
                Arc::new(flow)
            })
            .collect(),
    ));
    let stop = stop.child_token();
    let ended = CancellationToken::new();
    let (frames_tx, frames_rx) = mpsc::channel::<FeedMsg>(4096);
    let progress = Arc::new(IngestProgress::default());
    let runtime = tokio::runtime::Handle::current();
    let parser = {
        let progress = Arc::clone(&progress);
        let setup = ParserSetup {
            runtime,
            feeds: opts.feeds.clone(),
            max_raw: opts.max_raw,
            max_skew_ms: opts.max_clock_skew_ms,
            chunk: opts.chunk_events.max(1),
            decode: opts.decode,
            ended: ended.clone(),
        };
        let taken = Taken::new(Arc::clone(&flows));
        thread::Builder::new()
            .name("tickwire-live-parser".into())
            .spawn(move || {
                // However the thread ends (a panic too), the handle hears it.
                let _ended = setup.ended.clone().drop_guard();
                parse_frames(
                    frames_rx,
                    Box::new(downstream),
                    taken,
                    &setup,
                    recorder,
                    &progress,
                )
            })
            .map_err(LiveError::Thread)?
    };
    let frames = frames_tx.downgrade();
    let fills = fills.and_then(|asks| {
        let backfill = crate::backfill::Backfill::new(
            &opts.feeds,
            opts.backfill.clone(),
            tickwire_parse::VENUES,
        )?;
        Some(tokio::spawn(backfill.run(
            asks,
            frames_tx.clone(),
            stop.clone(),
        )))
    });
    let mut tasks = Vec::with_capacity(plans.len());
    let mut counters = Vec::with_capacity(plans.len());
    for ((plan, spool), flow) in plans.into_iter().zip(spools).zip(&flows.0) {
        let c = Arc::new(FeedCounters::default());
        counters.push((plan.name.to_string(), Arc::clone(&c)));
        tasks.push(tokio::spawn(run_feed(
            plan,
            opts.live.clone(),
            spool,
            frames_tx.clone(),
            c,
            Arc::clone(flow),
            stop.clone(),
        )));
    }
    Ok(LiveHandle {
        tasks,
        spools: Default::default(),
        parser,
        counters,
        progress,
        _stop_on_drop: stop.clone().drop_guard(),
        stop,
        ended,
        recorder_failed,
        recorder_signal,
        frames,
        fills,
    })
}

/// What the live parser thread works with.
struct ParserSetup {
    /// The runtime its timed waits are made in.
    runtime: tokio::runtime::Handle,
    feeds: Vec<FeedConfig>,
    /// Raw bytes kept with a rejected frame.
    max_raw: usize,
    max_skew_ms: u64,
    /// Events per chunk at most.
    chunk: usize,
    decode: bool,
    /// Cancelled when the thread ends or sees the recorder failed.
    ended: CancellationToken,
}

fn parse_frames(
    mut rx: mpsc::Receiver<FeedMsg>,
    mut downstream: Box<dyn Downstream>,
    mut taken: Taken,
    setup: &ParserSetup,
    mut recorder: Option<Recorder>,
    progress: &IngestProgress,
) -> Result<Option<RecordSummary>, LiveError> {
    let (runtime, chunk, decode) = (&setup.runtime, setup.chunk, setup.decode);
    // A recorder that failed stops the run: whoever supervises it hears it
    // from the recorder at once ([`LiveHandle::failed`]); the parser says
    // so too, with the next frame it was given (or the next timed wake).
    let recorder_failed = recorder.as_ref().map(Recorder::failure);
    let seen_failed = || {
        if recorder_failed.as_ref().is_some_and(|f| f.get().is_some()) {
            setup.ended.cancel();
        }
    };
    let mut decoder = LineDecoder::with_feeds(setup.max_raw, &setup.feeds);
    decoder.set_max_clock_skew_ms(setup.max_skew_ms);
    let mut metrics = crate::telemetry::EventMetrics::default();
    let mut out: Vec<Event> = Vec::with_capacity(chunk);
    let mut handle = |msg: FeedMsg,
                      out: &mut Vec<Event>,
                      recorder: &mut Option<Recorder>,
                      taken: &mut Taken| match msg {
        FeedMsg::Frame(f) => {
            taken.took(&f.feed, f.recv_ns);
            if let Some(r) = recorder.as_mut() {
                r.write(&f);
            }
            if decode {
                let frame = if f.binary {
                    Frame::Binary(&f.data)
                } else {
                    Frame::Text(&f.data)
                };
                let first = out.len();
                decoder.decode_frame(&f.feed, frame, f.recv_ns, out);
                count(&out[first..], progress);
                // Frames are counted by the feed task as they arrive.
                metrics.record(&f.feed, 0, &out[first..]);
            }
        }
        FeedMsg::Status(s) => {
            // A replay finds gaps after a connect as the live run did.
            if let (Some(r), tickwire_core::FeedStatus::Connected) = (recorder.as_mut(), s.status) {
                r.write_line(s.at_ns, crate::record::connect_line(&s));
            }
            if decode {
                out.push(Event::Feed(s));
            }
        }
        FeedMsg::History(h) => {
            if let Some(r) = recorder.as_mut() {
                r.write_line(h.recv_ns, crate::record::history_line(&h));
            }
            if decode {
                let first = out.len();
                decoder.decode_history(&h.feed, &h.key, &h.data, h.recv_ns, out);
                for e in &out[first..] {
                    let c = match e {
                        Event::Rejected(_) => &progress.history_rejected,
                        _ => &progress.history_trades,
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        FeedMsg::FillEnd(end) => {
            if let Some(r) = recorder.as_mut() {
                let now = crate::frame::now_ns();
                r.write_line(now, crate::record::fill_end_line(now, &end, &setup.feeds));
            }
            if decode {
                out.push(Event::FillEnd(end));
            }
        }
    };
    // The clock is read before the feeds' counts (see `watermark`).
    let mark = |taken: &Taken| taken.watermark(crate::frame::now_ns());
    // Once the pipeline after it is gone, frames are only recorded.
    let mut gone = !downstream.start(mark(&taken));
    loop {
        // Blocks this (dedicated) thread until a feed sends, all are gone,
        // or the downstream's wait passed.
        let wait = if gone { None } else { downstream.wait() };
        let msg = match wait {
            None => rx.blocking_recv(),
            // The timer is made inside the runtime's context.
            Some(wait) => {
                match runtime.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                    Ok(msg) => msg,
                    Err(_) => {
                        seen_failed();
                        gone = !downstream.chunk(Vec::new(), false, mark(&taken));
                        if gone && recorder.is_none() {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        let Some(msg) = msg else { break };
        if gone && recorder.is_none() {
            break;
        }
        handle(msg, &mut out, &mut recorder, &mut taken);
        // Take what is already waiting, then hand on: a quiet feed's tick is
        // not held back to fill a chunk.
        while out.len() < chunk {
            match rx.try_recv() {
                Ok(msg) => handle(msg, &mut out, &mut recorder, &mut taken),
                Err(_) => break,
            }
        }
        seen_failed();
        if !out.is_empty() {
            let batch = std::mem::replace(&mut out, Vec::with_capacity(chunk));
            if gone {
                continue;
            }
            if !downstream.chunk(batch, !rx.is_empty(), mark(&taken)) {
                // The writer is gone (or the stage after): it reports why.
                // Keep recording what comes.
                gone = true;
                if recorder.is_none() {
                    break;
                }
            }
        }
    }
    Ok(match recorder {
        Some(r) => Some(r.finish()?),
        None => None,
    })
}

/// Counts the items of one frame's events (at least one, the decoder sees to it).
fn count(events: &[Event], p: &IngestProgress) {
    let items = tickwire_parse::items(events) as u64;
    p.extra
        .fetch_add(items.saturating_sub(1), Ordering::Relaxed);
    for e in events {
        let c = match e {
            Event::Tick(_) => &p.ticks,
            Event::Quote(_) => &p.quotes,
            Event::Rejected(_) => &p.rejected,
            Event::Skipped { .. } => &p.skipped,
            _ => continue,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}
