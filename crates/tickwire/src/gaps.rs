//! Gaps found and their fills kept in order, in the state stage
//! ([`tickwire_core::gap`]).
//!
//! A gap is found at an instrument's live trade whose id lies more than one
//! above the last one applied: in mid-stream where the venue numbers trades
//! consecutively (Binance), and at the first trade after a reconnect or
//! after the process started for every venue that numbers them (OKX too).
//! From then on the instrument's live trades wait here (its other trades
//! flow), the fill task is asked for the trades between, and the trades it
//! fetches go to the state stage as they come. When the fill ends (or its
//! time runs out, or the waiting trades outgrow `max_waiting_bytes`) the
//! waiting trades go on, and the gap's record goes to the writer.
//!
//! A feed whose venue keeps no history, or whose `backfill` is off, is not
//! asked: its gaps are recorded at once (`unfillable`, `disabled`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_core::feeds::BackfillConfig;
use tickwire_core::{
    ByAddress, Config, Event, FeedStatus, FillEnd, Gap, GapOutcome, Instrument, Tick,
    TradeIdentity, Venues,
};
use tickwire_indicators::StateStage;
use tickwire_ingest::backfill::GapAsk;
use tokio::sync::mpsc::UnboundedSender;

/// What happens to a feed's gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Asked of the fill task.
    Ask,
    /// A replay of a recording: the live run's pages and fill's end are in
    /// it, where they came.
    Recorded,
    Disabled,
    Unfillable,
}

/// One configured feed.
struct FeedGaps {
    name: Arc<str>,
    identity: TradeIdentity,
    fill: Fill,
    /// A connect of it was seen. A replay looks for gaps only in a
    /// recording of a live run (which holds its connects): a tick file's or
    /// an older recording's jumps are as they were written.
    connected: bool,
    /// Counts its connects (from 1, the process's start): an instrument
    /// whose last trade looked at was of an earlier one is checked.
    epoch: u64,
}

/// A gap being filled.
struct Open {
    feed: usize,
    instrument: Arc<Instrument>,
    from_id: u64,
    to_id: u64,
    from_ts_ms: i64,
    to_ts_ms: i64,
    /// Trades of it applied from the history.
    filled: u64,
    /// The instrument's live trades since, in order.
    waiting: Vec<Event>,
    waiting_bytes: u64,
    asked_at: Instant,
}

/// A gap as the live run and its recording name it (history pages and a
/// fill's end): its feed, its symbol and the id of the first live trade
/// after it.
type GapId = (usize, Box<str>, u64);

/// The gap keeper of a live run's state stage.
pub(crate) struct GapKeeper {
    feeds: Vec<FeedGaps>,
    /// The feed of each configured instrument, by exchange and symbol.
    feed_of: HashMap<(Box<str>, Box<str>), usize>,
    /// The same, by the address of the instruments met (`None`: no feed's).
    met: HashMap<ByAddress, Option<usize>>,
    /// Per instrument met, its feed's connect it was last looked at in:
    /// the first trade after each connect (and at start) is checked
    /// whatever the venue's ids.
    looked_at: HashMap<ByAddress, u64>,
    /// Open gaps; and which instrument has one.
    open: HashMap<GapId, Open>,
    holding: HashMap<ByAddress, GapId>,
    asks: Option<UnboundedSender<GapAsk>>,
    config: BackfillConfig,
    /// Per instrument, the first trade after its last closed gap.
    recorded: HashMap<ByAddress, u64>,
    /// The trades of closed gaps, waiting to be taken again.
    requeued: std::collections::VecDeque<Event>,
    /// Instruments whose fill ended, for the stage to release
    /// ([`GapKeeper::release`]).
    released: Vec<Arc<Instrument>>,
    /// Gaps closed, their trades applied from history and those missing.
    pub(crate) closed: u64,
    pub(crate) filled: u64,
    pub(crate) missing: u64,
    /// Live trades that waited for a fill.
    pub(crate) held: u64,
}

/// A live trade's bytes while it waits: the tick and its share of the
/// instrument's strings (an estimate; what bounds the wait).
const WAITING_TICK_BYTES: u64 = std::mem::size_of::<Tick>() as u64 + 32;

impl GapKeeper {
    /// The keeper of `config`'s feeds; `asks` reaches the fill task (none:
    /// every gap of a feed with history is recorded, not filled).
    pub(crate) fn new(
        config: &Config,
        venues: Venues,
        asks: Option<UnboundedSender<GapAsk>>,
    ) -> Self {
        let mut feeds = Vec::new();
        let mut feed_of = HashMap::new();
        for f in &config.feeds {
            let Some(venue) = venues.of(f) else { continue };
            let fill = match (venue.history(), f.backfill) {
                (None, _) => Fill::Unfillable,
                (Some(_), Some(false)) => Fill::Disabled,
                (Some(_), _) if asks.is_none() => Fill::Recorded,
                (Some(_), _) => Fill::Ask,
            };
            let k = feeds.len();
            feeds.push(FeedGaps {
                name: Arc::from(f.name.as_str()),
                identity: venue.trade_identity(),
                fill,
                connected: false,
                epoch: 1,
            });
            for i in venue.instruments(f) {
                feed_of.insert((i.exchange, i.symbol), k);
            }
        }
        Self {
            feeds,
            feed_of,
            met: HashMap::new(),
            looked_at: HashMap::new(),
            open: HashMap::new(),
            holding: HashMap::new(),
            asks,
            config: config.backfill.clone(),
            released: Vec::new(),
            recorded: HashMap::new(),
            requeued: Default::default(),
            closed: 0,
            filled: 0,
            missing: 0,
            held: 0,
        }
    }

    /// Takes one event: what is to be applied now goes to `apply`, in order
    /// (the event, or nothing while its instrument waits, or the gap's
    /// record when a fill ends; its waiting trades are then
    /// [`GapKeeper::requeued`]).
    pub(crate) fn take(&mut self, event: Event, stage: &mut StateStage, apply: &mut Vec<Event>) {
        match event {
            Event::Tick(t) if t.fills_gap.is_some() => self.filled(t, apply),
            Event::Tick(t) if t.trade_id.is_some() => self.live(t, stage, apply),
            Event::FillEnd(end) => self.ended(&end, apply),
            Event::Feed(f) => {
                // Every connect, the first too: trades may have gone by
                // since the last one applied (a checkpoint's, at start).
                if f.status == FeedStatus::Connected {
                    self.reconnected(&f.feed);
                }
                // A replay's connects are its recording's, not its own.
                if self.asks.is_some() {
                    apply.push(Event::Feed(f));
                }
            }
            other => apply.push(other),
        }
    }

    /// Lets the stage's clock close the bars of the instruments whose fill
    /// ended since the last call.
    pub(crate) fn release(&mut self, stage: &mut StateStage) {
        for inst in self.released.drain(..) {
            // Held again by a later gap among its waiting trades: not yet.
            if !self.holding.contains_key(&ByAddress(Arc::clone(&inst))) {
                stage.hold(&inst, false);
            }
        }
    }

    /// Gaps whose fill outlived `timeout_s` (the fill task ends its own
    /// then; this is in case it cannot say so) let their trades go.
    pub(crate) fn expire(&mut self, apply: &mut Vec<Event>) {
        // A replay's fills end where its recording says.
        if self.open.is_empty() || self.asks.is_none() {
            return;
        }
        let limit = Duration::from_secs(self.config.timeout_s + 5);
        let late: Vec<GapId> = self
            .open
            .iter()
            .filter(|(_, o)| o.asked_at.elapsed() > limit)
            .map(|(g, _)| g.clone())
            .collect();
        for gap in late {
            self.close(gap, false, "timeout", apply);
        }
    }

    /// Whether a gap is being filled.
    pub(crate) fn is_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Every gap still open ends with what it has (input ended).
    pub(crate) fn finish(&mut self, apply: &mut Vec<Event>) {
        let gaps: Vec<GapId> = self.open.keys().cloned().collect();
        for gap in gaps {
            self.close(gap, false, "stopped", apply);
        }
    }

    fn reconnected(&mut self, feed: &str) {
        let Some(k) = self.feeds.iter().position(|f| &*f.name == feed) else {
            return;
        };
        self.feeds[k].connected = true;
        self.feeds[k].epoch += 1;
    }

    fn feed_index(&mut self, inst: &Arc<Instrument>) -> Option<usize> {
        let key = ByAddress(Arc::clone(inst));
        if let Some(k) = self.met.get(&key) {
            return *k;
        }
        let k = self
            .feed_of
            .get(&(inst.exchange.clone(), inst.symbol.clone()))
            .copied();
        self.met.insert(key, k);
        k
    }

    fn live(&mut self, t: Tick, stage: &mut StateStage, apply: &mut Vec<Event>) {
        let key = ByAddress(Arc::clone(&t.instrument));
        if !self.holding.is_empty() {
            if let Some(gap) = self.holding.get(&key).cloned() {
                self.wait(gap, t, apply);
                return;
            }
        }
        let Some(k) = self.feed_index(&t.instrument) else {
            apply.push(Event::Tick(t));
            return;
        };
        let Some(id) = t.trade_id else {
            apply.push(Event::Tick(t));
            return;
        };
        if self.asks.is_none() && !self.feeds[k].connected {
            apply.push(Event::Tick(t));
            return;
        }
        let epoch = self.feeds[k].epoch;
        let checking = self.looked_at.insert(key.clone(), epoch) != Some(epoch);
        let watch = match self.feeds[k].identity {
            TradeIdentity::Consecutive => true,
            TradeIdentity::Increasing => checking,
            TradeIdentity::DayVolume => {
                if checking {
                    self.day_volume_gap(k, &t, stage, apply);
                }
                false
            }
            // tickwire JSON's ids are as sent: a jump says nothing.
            TradeIdentity::AsSent => false,
        };
        let last = if watch {
            stage.last_trade(&t.instrument, id.sequence)
        } else {
            None
        };
        let Some((last_id, last_ts_ms)) = last.filter(|(l, _)| id.value > l + 1) else {
            apply.push(Event::Tick(t));
            return;
        };
        // The trade a closed gap ended at: that gap is recorded already.
        if self.recorded.get(&key) == Some(&id.value) {
            self.recorded.remove(&key);
            apply.push(Event::Tick(t));
            return;
        }
        let gap: GapId = (k, t.instrument.symbol.clone(), id.value);
        let open = Open {
            feed: k,
            instrument: Arc::clone(&t.instrument),
            from_id: last_id + 1,
            to_id: id.value - 1,
            from_ts_ms: last_ts_ms,
            to_ts_ms: t.exchange_ts_ms(),
            filled: 0,
            waiting: Vec::new(),
            waiting_bytes: 0,
            asked_at: Instant::now(),
        };
        let fill = self.feeds[k].fill;
        let asked = fill == Fill::Ask
            && self.asks.as_ref().is_some_and(|tx| {
                tx.send(GapAsk {
                    gap: id.value,
                    feed: Arc::clone(&self.feeds[k].name),
                    symbol: t.instrument.symbol.clone(),
                    sequence: id.sequence,
                    from_id: open.from_id,
                    below: id.value,
                })
                .is_ok()
            });
        tracing::info!(
            feed = %self.feeds[k].name,
            symbol = %t.instrument.symbol,
            from_id = open.from_id,
            to_id = open.to_id,
            filling = asked,
            "gap in the trades"
        );
        self.open.insert(gap.clone(), open);
        let asked = asked || fill == Fill::Recorded;
        if asked {
            stage.hold(&t.instrument, true);
            self.holding.insert(key, gap.clone());
            self.wait(gap, t, apply);
        } else {
            let reason = match fill {
                Fill::Unfillable => "no_history",
                Fill::Disabled => "backfill_off",
                Fill::Ask | Fill::Recorded => "fill_task_gone",
            };
            self.close(gap, false, reason, apply);
            apply.push(Event::Tick(t));
        }
    }

    /// A venue that reports the day's volume, not its trades (Dhan): after a
    /// reconnect or at start, a day volume grown by more than the packet's
    /// last trade says trades went by unseen. Nothing keeps them; their
    /// volume is in this trade (the state stage makes its quantity the
    /// growth): the gap is recorded `unfillable`, its ids the day volumes
    /// before and after it.
    fn day_volume_gap(&mut self, k: usize, t: &Tick, stage: &StateStage, apply: &mut Vec<Event>) {
        let (Some(id), Some(ltq), Some(volume)) = (t.trade_id, t.ltq, t.cum_volume) else {
            return;
        };
        let Some((last, last_ts_ms)) = stage.last_trade(&t.instrument, id.sequence) else {
            return;
        };
        let (date, before) = tickwire_core::TradeId::day_volume_parts(last);
        let (now_date, after) = tickwire_core::TradeId::day_volume_parts(id.value);
        if date != now_date || after <= before {
            return;
        }
        if volume.minus(tickwire_core::Dec::from(before)) <= ltq {
            return;
        }
        self.closed += 1;
        let feed = &self.feeds[k];
        tracing::info!(
            feed = %feed.name,
            symbol = %t.instrument.symbol,
            from_volume = before,
            to_volume = after,
            "gap in the trades: the venue keeps no history; its volume is in the next trade"
        );
        apply.push(Event::Gap(Gap {
            feed: Arc::clone(&feed.name),
            instrument: Arc::clone(&t.instrument),
            from_id: u64::from(before),
            to_id: u64::from(after),
            from_ts_ms: last_ts_ms,
            to_ts_ms: t.exchange_ts_ms(),
            filled: 0,
            missing: 0,
            outcome: GapOutcome::Unfillable,
            reason: "no_history",
        }));
    }

    fn wait(&mut self, gap: GapId, t: Tick, apply: &mut Vec<Event>) {
        let Some(open) = self.open.get_mut(&gap) else {
            apply.push(Event::Tick(t));
            return;
        };
        open.waiting.push(Event::Tick(t));
        open.waiting_bytes += WAITING_TICK_BYTES;
        self.held += 1;
        if open.waiting_bytes > self.config.max_waiting_bytes {
            self.close(gap, false, "max_waiting_bytes", apply);
        }
    }

    fn filled(&mut self, t: Tick, apply: &mut Vec<Event>) {
        let below = t.fills_gap.unwrap_or_default();
        let k = self.feed_index(&t.instrument);
        let open = k.and_then(|k| self.open.get_mut(&(k, t.instrument.symbol.clone(), below)));
        match open {
            Some(open) => {
                open.filled += 1;
                apply.push(Event::Tick(t));
            }
            // Its gap closed before it came: its place is taken.
            None => {
                let feed = k
                    .map(|k| self.feeds[k].name.to_string())
                    .unwrap_or_default();
                metrics::counter!(
                    tickwire_core::telemetry::BACKFILL_TRADES,
                    "feed" => feed,
                    "outcome" => "late"
                )
                .increment(1);
            }
        }
    }

    fn ended(&mut self, end: &FillEnd, apply: &mut Vec<Event>) {
        let Some(k) = self.feeds.iter().position(|f| f.name == end.feed) else {
            return;
        };
        self.close(
            (k, end.symbol.clone(), end.gap),
            end.complete,
            end.reason,
            apply,
        );
    }

    /// Ends gap `gap`: its waiting trades go on, after its record.
    fn close(&mut self, gap: GapId, complete: bool, reason: &'static str, apply: &mut Vec<Event>) {
        let Some(open) = self.open.remove(&gap) else {
            return;
        };
        let key = ByAddress(Arc::clone(&open.instrument));
        self.holding.remove(&key);
        // Taken again, the trade after the gap shows the same jump where
        // trades are missing: it is not a gap of its own.
        self.recorded.insert(key, open.to_id + 1);
        self.released.push(Arc::clone(&open.instrument));
        let feed = &self.feeds[open.feed];
        let span = open.to_id - open.from_id + 1;
        let missing = if complete {
            0
        } else {
            span.saturating_sub(open.filled)
        };
        let outcome = match (feed.fill, missing) {
            (_, 0) => GapOutcome::Filled,
            (Fill::Unfillable, _) => GapOutcome::Unfillable,
            // Binance futures' trade history needs a key the feed lacks.
            (_, _) if reason == "no_api_key" && open.filled == 0 => GapOutcome::Unfillable,
            (Fill::Disabled, _) => GapOutcome::Disabled,
            (Fill::Ask | Fill::Recorded, _) => GapOutcome::Partial,
        };
        self.closed += 1;
        self.filled += open.filled;
        self.missing += missing;
        let labels = [("feed", feed.name.to_string())];
        if open.filled > 0 {
            metrics::counter!(
                tickwire_core::telemetry::BACKFILL_TRADES,
                "feed" => feed.name.to_string(),
                "outcome" => "applied"
            )
            .increment(open.filled);
        }
        metrics::counter!(tickwire_core::telemetry::GAP_MISSING, &labels).increment(missing);
        // From the first live trade after the gap to the trades it held
        // going on: what `benches/gaps.sh` reads as the time to catch up.
        tracing::info!(
            feed = %feed.name,
            symbol = %open.instrument.symbol,
            filled = open.filled,
            missing,
            took_ms = open.asked_at.elapsed().as_millis() as u64,
            "gap closed"
        );
        if missing > 0 {
            tracing::warn!(
                feed = %feed.name,
                symbol = %open.instrument.symbol,
                filled = open.filled,
                missing,
                reason,
                "gap not wholly filled"
            );
        }
        apply.push(Event::Gap(Gap {
            feed: Arc::clone(&feed.name),
            instrument: open.instrument,
            from_id: open.from_id,
            to_id: open.to_id,
            from_ts_ms: open.from_ts_ms,
            to_ts_ms: open.to_ts_ms,
            filled: open.filled,
            missing,
            outcome,
            reason: if missing == 0 { "" } else { reason },
        }));
        // Looked at again, each in turn: a later jump among them is a gap
        // of its own.
        self.requeued.extend(open.waiting);
    }

    /// The next of the trades a closed gap held, to be taken again
    /// ([`GapKeeper::take`]) before any later event.
    pub(crate) fn requeued(&mut self) -> Option<Event> {
        self.requeued.pop_front()
    }
}
