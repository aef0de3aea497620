//! The state stage: per-instrument bars and indicators, between parse and writer.
//!
//! Ticks pass through unchanged; behind them come closed bars, and (inline
//! engine) RSI/ATR values on each closed bar of the indicator interval. The
//! forming bars and the VWAP are updated on every tick and handed on once per
//! chunk of input, their latest state, since the writer keeps only the latest
//! per key anyway.

use std::collections::HashMap;

use std::sync::Arc;

use ta::Next;
use tickwire_core::config::{Config, Engine};
use tickwire_core::{
    Bar, BarUpdate, ByAddress, Dec, Event, FormingGone, IndicatorUpdate, Instrument, SessionTrade,
    StreamIdSeq, Tick,
};

use tickwire_core::config::Db;
use tickwire_core::session::{Calendar, SessionClock};
use tickwire_core::VolumeUpdate;

use crate::bars::Forming;
use crate::{Atr, BarBuilder, Interval, Macd, Rsi, Vwap};
use tickwire_core::{Day, IndicatorSet};

/// What the state stage computes.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub intervals: Vec<Interval>,
    /// Index in `intervals` of the bars RSI and ATR run on.
    pub indicator_interval: usize,
    pub rsi_period: usize,
    pub atr_period: usize,
    /// Compute indicators here (inline engine), or leave them to the writer (Lua).
    pub inline: bool,
    /// The exchanges' zones and phases.
    pub calendar: Calendar,
    /// Volume bucket width in minutes.
    pub bucket_minutes: u16,
    /// Also compute RSI 14, MACD 12/26/9 and Bollinger 20/2 on every bar
    /// interval and hand them on together (a key profile writes them).
    pub extended: bool,
    /// Hand on each changed instrument's checkpoint with its outputs.
    pub checkpoints: bool,
    /// Close what is still forming when the input ends (`replay
    /// --close-at-end`, a backtest meant to stand alone). Otherwise stopping
    /// never closes a bar: it stays forming, in the checkpoint, for the next
    /// process to finish.
    pub close_at_end: bool,
    /// `bars.close_grace_ms`: how long after its end a bar waits for late
    /// trades before the clock closes it ([`StateStage::close_due`], live runs).
    pub close_grace_ms: i64,
}

impl Default for StateConfig {
    /// The defaults of `config/tickwire.toml`: 1m bars, RSI/ATR 14, inline,
    /// NSE/BSE/MCX phases, 1m volume buckets.
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

impl StateConfig {
    /// From a validated config (an interval that does not parse is skipped).
    pub fn from_config(c: &Config) -> Self {
        let intervals: Vec<Interval> = c
            .bars
            .intervals
            .iter()
            .filter_map(|l| Interval::parse(l))
            .collect();
        let indicator_interval = intervals
            .iter()
            .position(|i| *i.label == *c.indicators.interval)
            .unwrap_or(0);
        let bucket = tickwire_core::config::interval_ms(&c.volume.bucket).unwrap_or(60_000);
        Self {
            intervals,
            indicator_interval,
            rsi_period: c.indicators.rsi_period as usize,
            atr_period: c.indicators.atr_period as usize,
            inline: c.indicators.engine == Engine::Inline,
            // Validated config: the exchanges parse; the default calendar otherwise.
            calendar: Calendar::from_config(&c.exchanges)
                .unwrap_or_else(|_| Calendar::around_the_clock()),
            bucket_minutes: u16::try_from(bucket / 60_000).unwrap_or(1).max(1),
            extended: c.profiles.others.iter().any(|p| p.indicators.is_some()),
            checkpoints: true,
            close_at_end: false,
            close_grace_ms: i64::try_from(c.bars.close_grace_ms).unwrap_or(i64::MAX),
        }
    }
}

struct InstrumentState {
    instrument: Arc<Instrument>,
    bars: Vec<BarBuilder>,
    rsi: Rsi,
    atr: Atr,
    vwap: Vwap,
    clock: SessionClock,
    /// Volume of the current bucket and of the current session.
    bucket: Option<VolumeUpdate>,
    session_volume: Option<VolumeUpdate>,
    /// Both volumes are as last handed on (or as restored from the
    /// checkpoint, whose outputs were written before it): a finished bucket
    /// or session is handed on again only if a trade changed it since.
    volume_sent: bool,
    /// The stream IDs of the instrument's ticks (also the Lua engine's
    /// trade sequence, which makes its scripts idempotent).
    seq: StreamIdSeq,
    last_ts_ms: i64,
    dirty: bool,
    /// A forming bar of it closed after it was handed on (by the clock, a
    /// phase's end or the input's): its hash is cleared at the next hand-on
    /// unless a trade opened the next bar by then.
    gone: bool,
    /// Changed since its checkpoint was last handed on.
    unsaved: bool,
    /// The length of its last checkpoint's JSON: the next one is written
    /// into a buffer that size, not grown to it step by step.
    checkpoint_len: usize,
    /// Restored from a checkpoint whose last stream ID was this: a tick
    /// without a venue id stamped before it, or at its millisecond within
    /// the positions already taken (the counter), is a resend.
    resume: Option<((u64, u64), u64)>,
    /// The trading day so far: (session date, its summary).
    day: Option<(Arc<str>, Day)>,
    /// Per bar interval, when `extended`: RSI, MACD, Bollinger.
    extended: Vec<Extended>,
    /// The venue's id of the last trade applied: a trade at or below it is a
    /// resend (an overlapping file, a repeated row, a feed's replay).
    /// Per id sequence (trades, aggregated trades).
    last_trade_id: [Option<u64>; 2],
    /// The end (epoch ms) of the exchange phase of the last continuous
    /// trade: its forming bars close then at the latest. `None` around the
    /// clock.
    phase_end_ms: Option<i64>,
    /// The earliest time a forming bar of it is due to close (`i64::MAX`: none).
    next_due: i64,
    /// Index of its exchange in the stage's `venues`.
    venue: usize,
    /// Its clock less the wall clock, from its latest tick (exchange time
    /// less receive time); `None` before any tick in this process.
    offset: Option<i64>,
    /// A fill of a gap in its trades is pending: the clock closes none of
    /// its bars (the fill may still add trades to them).
    held: bool,
}

/// The instruments of one exchange and its clock, for closing bars on time.
struct VenueWatch {
    members: Vec<usize>,
    /// At or before the earliest due time (plus grace) of a member's
    /// forming bar, in exchange time; `i64::MAX` when none.
    next_due: i64,
}

/// The indicator set of one bar interval (key profiles).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Extended {
    rsi: Rsi,
    macd: Macd,
    bb: ta::indicators::BollingerBands,
    closes: usize,
}

impl Extended {
    fn new() -> Option<Self> {
        Some(Self {
            rsi: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bb: ta::indicators::BollingerBands::new(20, 2.0).ok()?,
            closes: 0,
        })
    }

    fn next(&mut self, inst: &Arc<Instrument>, interval: &Arc<str>, bar: &Bar) -> IndicatorSet {
        self.closes += 1;
        let close = bar.close.to_f64();
        let rsi = self.rsi.next(close);
        let macd = self.macd.next(close);
        let bb = self.bb.next(close);
        // ta's bands start at the first close; TA-Lib's after 20.
        let bb = (self.closes >= 20).then_some(bb);
        IndicatorSet {
            instrument: Arc::clone(inst),
            interval: Arc::clone(interval),
            ts_ms: bar.open_ms,
            rsi,
            macd: macd.map(|m| m.macd),
            macd_signal: macd.map(|m| m.signal),
            macd_hist: macd.map(|m| m.hist),
            bb_upper: bb.as_ref().map(|b| b.upper),
            bb_middle: bb.as_ref().map(|b| b.average),
            bb_lower: bb.as_ref().map(|b| b.lower),
        }
    }
}

/// Everything one instrument's outputs are derived from, as it stood after
/// the last event applied: what a process that meets the instrument again
/// continues from (serialized as JSON into tickwire's own checkpoint key).
/// The session clock is not in it: it follows from the calendar.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The format: a checkpoint of another version is not loaded.
    v: u32,
    last_trade_id: [Option<u64>; 2],
    last_ts_ms: i64,
    seq: StreamIdSeq,
    /// The forming bar of each interval, by label.
    bars: Vec<(String, Option<Bar>)>,
    /// Per interval label, the end of the last closed bar's interval: a late
    /// trade counts in a bar after it.
    #[serde(default)]
    closed_until: Vec<(String, i64)>,
    rsi: Rsi,
    atr: Atr,
    vwap: Vwap,
    bucket: Option<VolumeState>,
    session: Option<VolumeState>,
    day: Option<(String, Day)>,
    extended: Vec<Extended>,
}

impl Checkpoint {
    fn of(s: &InstrumentState) -> Self {
        Checkpoint {
            v: CHECKPOINT_VERSION,
            last_trade_id: s.last_trade_id,
            last_ts_ms: s.last_ts_ms,
            seq: s.seq,
            bars: s
                .bars
                .iter()
                .map(|b| (b.interval().label.to_string(), b.forming().copied()))
                .collect(),
            closed_until: s
                .bars
                .iter()
                .map(|b| (b.interval().label.to_string(), b.closed_until()))
                .collect(),
            rsi: s.rsi.clone(),
            atr: s.atr.clone(),
            vwap: s.vwap.clone(),
            bucket: s.bucket.as_ref().map(VolumeState::of),
            session: s.session_volume.as_ref().map(VolumeState::of),
            day: s.day.as_ref().map(|(d, day)| (d.to_string(), *day)),
            extended: s.extended.clone(),
        }
    }
}

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A [`VolumeUpdate`] without its instrument.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct VolumeState {
    session: String,
    bucket: Option<u16>,
    volume: Dec,
    trades: u64,
    first_ts_ms: i64,
    last_ts_ms: i64,
}

impl VolumeState {
    fn of(v: &VolumeUpdate) -> Self {
        Self {
            session: v.session.to_string(),
            bucket: v.bucket,
            volume: v.volume,
            trades: v.trades,
            first_ts_ms: v.first_ts_ms,
            last_ts_ms: v.last_ts_ms,
        }
    }

    fn update(self, inst: &Arc<Instrument>) -> VolumeUpdate {
        VolumeUpdate {
            instrument: Arc::clone(inst),
            session: self.session.into(),
            bucket: self.bucket,
            volume: self.volume,
            trades: self.trades,
            first_ts_ms: self.first_ts_ms,
            last_ts_ms: self.last_ts_ms,
        }
    }
}

/// Per-instrument state of one run.
pub struct StateStage {
    cfg: StateConfig,
    states: Vec<InstrumentState>,
    index: HashMap<ByAddress, usize>,
    /// The same states by exchange and symbol (the checkpoint's identity):
    /// an instrument restored before its first tick (a live run's configured
    /// symbols) is found again under the parser's handle.
    by_name: HashMap<(Box<str>, Box<str>), usize>,
    venues: Vec<VenueWatch>,
    venue_index: HashMap<Box<str>, usize>,
    /// Ticks without quantity (quotes): passed on, not counted in bars or VWAP.
    pub ticks_without_qty: u64,
    /// Ticks outside every phase of their exchange, dropped by policy.
    pub dropped_outside: u64,
    /// Trades whose venue id was at or below their instrument's last applied
    /// one: resent, so applied to no output.
    pub duplicate_trades: u64,
}

impl StateStage {
    pub fn new(cfg: StateConfig) -> Self {
        Self {
            cfg,
            states: Vec::new(),
            index: HashMap::new(),
            by_name: HashMap::new(),
            venues: Vec::new(),
            venue_index: HashMap::new(),
            ticks_without_qty: 0,
            dropped_outside: 0,
            duplicate_trades: 0,
        }
    }

    fn state_of(&mut self, inst: &Arc<Instrument>) -> usize {
        if let Some(i) = self.index.get(&ByAddress(Arc::clone(inst))) {
            return *i;
        }
        let name = (inst.exchange.clone(), inst.symbol.clone());
        if let Some(&i) = self.by_name.get(&name) {
            self.index.insert(ByAddress(Arc::clone(inst)), i);
            return i;
        }
        let venue = match self.venue_index.get(&inst.exchange) {
            Some(&v) => v,
            None => {
                self.venues.push(VenueWatch {
                    members: Vec::new(),
                    next_due: i64::MAX,
                });
                self.venue_index
                    .insert(inst.exchange.clone(), self.venues.len() - 1);
                self.venues.len() - 1
            }
        };
        self.venues[venue].members.push(self.states.len());
        self.by_name.insert(name, self.states.len());
        self.states.push(InstrumentState {
            instrument: Arc::clone(inst),
            bars: self
                .cfg
                .intervals
                .iter()
                .cloned()
                .map(BarBuilder::new)
                .collect(),
            rsi: Rsi::new(self.cfg.rsi_period),
            atr: Atr::new(self.cfg.atr_period),
            vwap: Vwap::new(),
            clock: SessionClock::new(self.cfg.calendar.venue(&inst.exchange)),
            bucket: None,
            session_volume: None,
            volume_sent: true,
            seq: StreamIdSeq::default(),
            last_ts_ms: 0,
            dirty: false,
            gone: false,
            unsaved: false,
            checkpoint_len: 0,
            resume: None,
            day: None,
            extended: if self.cfg.extended {
                self.cfg
                    .intervals
                    .iter()
                    .filter_map(|_| Extended::new())
                    .collect()
            } else {
                Vec::new()
            },
            last_trade_id: [None; 2],
            phase_end_ms: None,
            next_due: i64::MAX,
            venue,
            offset: None,
            held: false,
        });
        self.index
            .insert(ByAddress(Arc::clone(inst)), self.states.len() - 1);
        self.states.len() - 1
    }

    /// The checkpoint of `inst`, if this stage has met it.
    pub fn checkpoint(&self, inst: &Arc<Instrument>) -> Option<Checkpoint> {
        let s = &self.states[*self.index.get(&ByAddress(Arc::clone(inst)))?];
        Some(Checkpoint::of(s))
    }

    /// Whether this stage has met `inst` (or restored it).
    /// Holds (or releases) the bars of `inst` from the clock while a fill
    /// of a gap in its trades is pending: a bar the fill may add trades to
    /// is not closed by the timer or a phase end meanwhile.
    pub fn hold(&mut self, inst: &Arc<Instrument>, held: bool) {
        let i = self.state_of(inst);
        self.states[i].held = held;
    }

    /// The venue id of the last trade of `inst` applied in `sequence`, and
    /// the exchange time (epoch ms) of its last continuous trade; `None`
    /// before any (here or in its checkpoint).
    pub fn last_trade(
        &self,
        inst: &Arc<Instrument>,
        sequence: tickwire_core::IdSequence,
    ) -> Option<(u64, i64)> {
        let i = match self.index.get(&ByAddress(Arc::clone(inst))) {
            Some(&i) => i,
            None => *self
                .by_name
                .get(&(inst.exchange.clone(), inst.symbol.clone()))?,
        };
        let s = &self.states[i];
        Some((s.last_trade_id[sequence as usize]?, s.last_ts_ms))
    }

    pub fn knows(&self, inst: &Arc<Instrument>) -> bool {
        self.index.contains_key(&ByAddress(Arc::clone(inst)))
            || self
                .by_name
                .contains_key(&(inst.exchange.clone(), inst.symbol.clone()))
    }

    /// Continues `inst` from a checkpoint taken by an earlier process, before
    /// this stage has seen any of its events. What the configuration changed
    /// since (a bar interval, an indicator period) starts afresh; a checkpoint
    /// of another format version is refused (`false`).
    pub fn restore(&mut self, inst: &Arc<Instrument>, c: Checkpoint) -> bool {
        if c.v != CHECKPOINT_VERSION {
            return false;
        }
        let i = self.state_of(inst);
        let (cfg, s) = (&self.cfg, &mut self.states[i]);
        s.last_trade_id = c.last_trade_id;
        s.last_ts_ms = c.last_ts_ms;
        s.seq = c.seq;
        s.resume = c.seq.last().map(|id| (id, 0));
        for b in &mut s.bars {
            let label = &*b.interval().label;
            if let Some((_, forming)) = c.bars.iter().find(|(l, _)| **l == *label) {
                let until = c.closed_until.iter().find(|(l, _)| **l == *label);
                b.resume(*forming, until.map_or(i64::MIN, |(_, t)| *t));
            }
        }
        // The phase of the last continuous trade, again from the calendar.
        s.phase_end_ms = (c.last_ts_ms > 0)
            .then(|| phase_end_ms(&mut s.clock, c.last_ts_ms))
            .flatten();
        if ta::Period::period(&c.rsi) == cfg.rsi_period {
            s.rsi = c.rsi;
        }
        if ta::Period::period(&c.atr) == cfg.atr_period {
            s.atr = c.atr;
        }
        s.vwap = c.vwap;
        s.bucket = c.bucket.map(|v| v.update(inst));
        s.session_volume = c.session.map(|v| v.update(inst));
        s.day = c.day.map(|(d, day)| (Arc::from(d), day));
        if c.extended.len() == s.extended.len() {
            s.extended = c.extended;
        }
        // An interval with nothing forming: its hash may still hold a bar an
        // older build left there after it closed; the next hand-on clears it.
        s.gone = s.bars.iter().any(BarBuilder::gone);
        self.watch(i);
        true
    }

    /// After instrument `i` opened, closed or restored forming bars: when they
    /// are due, for its own later ticks and for the clock.
    fn watch(&mut self, i: usize) {
        let grace = self.cfg.close_grace_ms;
        let s = &mut self.states[i];
        s.next_due = s
            .bars
            .iter()
            .filter_map(|b| b.due_ms(s.phase_end_ms))
            .min()
            .unwrap_or(i64::MAX);
        if s.next_due == i64::MAX {
            return;
        }
        let v = &mut self.venues[s.venue];
        v.next_due = v.next_due.min(s.next_due.saturating_add(grace));
    }

    /// Closes the forming bars of instrument `i` due at or before `at_ms`.
    fn close_bars(&mut self, i: usize, at_ms: i64, out: &mut Vec<Event>) {
        let (cfg, s) = (&self.cfg, &mut self.states[i]);
        let mut closed = false;
        for k in 0..s.bars.len() {
            let due = s.bars[k].due_ms(s.phase_end_ms);
            if due.is_some_and(|d| d <= at_ms) {
                if let Some(bar) = s.bars[k].close() {
                    s.on_close(k, bar, cfg, out);
                    closed = true;
                }
            }
        }
        if closed {
            s.unsaved = true;
            s.gone = s.bars.iter().any(BarBuilder::gone);
        }
        self.watch(i);
    }

    /// Closes what the clock says is over: every forming bar whose interval
    /// (or exchange phase) ended at least `close_grace_ms` before its
    /// instrument's clock at `now_ms` (live runs call this on a timer, so a
    /// quiet instrument's bar still closes, with the pipeline's watermark:
    /// the receive time before which every frame received has been applied,
    /// the wall clock when nothing waits). An instrument's clock is the
    /// exchange time of its latest tick advanced by the time from its receipt
    /// to `now_ms` (so a venue's clock offset, or a feed of old trades, does
    /// not close bars early); `now_ms` itself before its first tick (a bar a
    /// pause left forming closes at start). Returns the time to call again
    /// (on the clock `now_ms` is read from), if any bar is forming.
    pub fn close_due(&mut self, now_ms: i64, out: &mut Vec<Event>) -> Option<i64> {
        let grace = self.cfg.close_grace_ms;
        let mut wake = i64::MAX;
        for i in 0..self.states.len() {
            let (due, offset) = (self.states[i].next_due, self.states[i].offset.unwrap_or(0));
            // A held instrument is looked at again once released (the
            // next call).
            if due == i64::MAX || self.states[i].held {
                continue;
            }
            let clock = now_ms.saturating_add(offset);
            if due.saturating_add(grace) <= clock {
                self.close_bars(i, clock - grace, out);
            }
            let due = self.states[i].next_due;
            if due != i64::MAX {
                wake = wake.min(due.saturating_add(grace).saturating_sub(offset));
            }
        }
        (wake != i64::MAX).then_some(wake)
    }

    /// Takes one event; pushes it and what it caused to `out`.
    pub fn process(&mut self, event: Event, out: &mut Vec<Event>) {
        let Event::Tick(mut tick) = event else {
            out.push(event);
            return;
        };
        let i = self.state_of(&tick.instrument);
        let s = &mut self.states[i];
        let ts = tick.exchange_ts_ms();
        if let Some(id) = tick.trade_id {
            let last = &mut s.last_trade_id[id.sequence as usize];
            if last.is_some_and(|last| id.value <= last) {
                self.duplicate_trades += 1;
                return;
            }
            let before = last.replace(id.value);
            s.resume = None;
            // A venue that reports the day's volume, not each trade (Dhan):
            // the trade is everything the day volume grew by since the last
            // one applied (of its trading date; a new date starts from 0).
            if let (Some(_), Some(volume)) = (tick.ltq, tick.cum_volume) {
                let (date, _) = tickwire_core::TradeId::day_volume_parts(id.value);
                let since = before
                    .map(tickwire_core::TradeId::day_volume_parts)
                    .filter(|(d, _)| *d == date)
                    .map_or(0, |(_, v)| v);
                tick.qty = volume.minus(Dec::from(since));
            }
        } else if let Some(((ms, seq), taken)) = &mut s.resume {
            // Without an id, the tick's place in its millisecond is its identity.
            let at = u64::try_from(ts).unwrap_or(0);
            let resent = at < *ms || (at == *ms && *taken <= *seq);
            if at == *ms {
                *taken += 1;
            }
            if resent {
                self.duplicate_trades += 1;
                return;
            }
            s.resume = None;
        }
        // The instrument's own time has passed a forming bar's end (a trade
        // of a later interval, or any tick after its phase closed).
        if ts >= s.next_due {
            self.close_bars(i, ts, out);
        }
        self.states[i].offset = Some(ts - tick.recv_ts_ns.div_euclid(1_000_000));
        let s = &mut self.states[i];
        let local_minute = s.clock.at(ts).minute;
        let Some(db) = s.clock.venue().route(local_minute) else {
            self.dropped_outside += 1;
            return;
        };
        tick.db = Some(db);
        // The entry's place in its instrument's sequence, kept in the
        // checkpoint, so a process that continues the instrument numbers a
        // millisecond's trades after those already written.
        tick.stream_id = Some(s.seq.next(ts));
        s.unsaved = true;
        if tick.qty.is_positive() {
            let date = &s.clock.at(ts).session;
            match &mut s.day {
                Some((d, day)) if Arc::ptr_eq(d, date) || **d == **date => {
                    day.high = day.high.max(tick.price);
                    day.low = day.low.min(tick.price);
                    day.volume += tick.qty;
                }
                _ => {
                    s.day = Some((
                        Arc::clone(date),
                        Day {
                            open: tick.price,
                            high: tick.price,
                            low: tick.price,
                            volume: tick.qty,
                        },
                    ))
                }
            }
        }
        tick.day = s.day.as_ref().map(|(_, d)| *d);
        if tick.qty.is_positive() {
            self.on_trade(i, &mut tick, db, out);
        } else {
            self.ticks_without_qty += 1;
        }
        out.push(Event::Tick(tick));
    }

    fn on_trade(&mut self, i: usize, tick: &mut Tick, db: Db, out: &mut Vec<Event>) {
        let (cfg, s) = (&self.cfg, &mut self.states[i]);
        let inline = cfg.inline;
        let ts = tick.exchange_ts_ms();
        s.dirty = true;
        s.add_volume(ts, tick.qty, cfg.bucket_minutes, out);
        // Bars, VWAP and indicators follow the continuous market only.
        if db != Db::ContinuousMarket {
            return;
        }
        s.last_ts_ms = ts;
        let mut opened = false;
        for k in 0..s.bars.len() {
            let before = s.bars[k].forming().map(|b| b.open_ms);
            if let Some(closed) = s.bars[k].update(ts, tick.price, tick.qty) {
                s.on_close(k, closed, cfg, out);
            }
            opened |= s.bars[k].forming().map(|b| b.open_ms) != before;
        }
        if opened {
            s.phase_end_ms = phase_end_ms(&mut s.clock, ts);
        }
        let local = s.clock.at(ts);
        // Kept in both engines: a tick without the venue's average price
        // carries the session VWAP (a key profile's `atp`), the same value
        // whichever engine writes the indicator hash.
        s.vwap
            .update(local.date, tick.price.to_f64(), tick.qty.to_f64());
        if tick.atp.is_none() {
            tick.atp = s.vwap.value();
        }
        if !inline {
            let session = Arc::clone(&local.session);
            let (ts_ms, seq) = tick.stream_id.unwrap_or_else(|| s.seq.next(ts));
            out.push(Event::SessionTrade(SessionTrade {
                instrument: Arc::clone(&s.instrument),
                ts_ms,
                seq,
                session,
                price: tick.price,
                qty: tick.qty,
            }));
        }
        if opened {
            self.watch(i);
        }
    }

    /// Hands on the latest forming bars and VWAP of every instrument that
    /// traded since the last call, and the checkpoint of every instrument
    /// that changed.
    pub fn emit_dirty(&mut self, out: &mut Vec<Event>) {
        self.emit_forming(out);
        self.emit_checkpoints(out);
    }

    /// [`StateStage::emit_dirty`] but the checkpoints: they stay owed and
    /// go out with a later call. Each checkpoint is the instrument's whole
    /// state when it is taken, so a later one stands for every one skipped
    /// (and a lane writes only the latest of a batch anyway).
    pub fn emit_outputs(&mut self, out: &mut Vec<Event>) {
        self.emit_forming(out);
    }

    fn emit_checkpoints(&mut self, out: &mut Vec<Event>) {
        if !self.cfg.checkpoints {
            return;
        }
        out.reserve(self.states.iter().filter(|s| s.unsaved).count());
        for s in self.states.iter_mut().filter(|s| s.unsaved) {
            s.unsaved = false;
            let mut buf = Vec::with_capacity(s.checkpoint_len + 64);
            let written = serde_json::to_writer(&mut buf, &Checkpoint::of(s))
                .map_err(|e| e.to_string())
                .and_then(|()| String::from_utf8(buf).map_err(|e| e.to_string()));
            match written {
                Ok(json) => {
                    s.checkpoint_len = json.len();
                    out.push(Event::Checkpoint(tickwire_core::StateCheckpoint {
                        instrument: Arc::clone(&s.instrument),
                        json,
                    }))
                }
                // Plain data and finite floats: serializing cannot fail, and
                // serde_json writes UTF-8 only.
                Err(e) => unreachable!("a checkpoint does not serialize: {e}"),
            }
        }
    }

    fn emit_forming(&mut self, out: &mut Vec<Event>) {
        let inline = self.cfg.inline;
        // Room for every event below at once: growing `out` step by step
        // moved the whole chunk's events each time (1% of a replay).
        let most: usize = self
            .states
            .iter()
            .filter(|s| s.dirty || s.gone)
            .map(|s| s.bars.len() + 3)
            .sum();
        out.reserve(most);
        for s in self.states.iter_mut().filter(|s| s.dirty || s.gone) {
            let dirty = std::mem::replace(&mut s.dirty, false);
            s.gone = false;
            for b in &mut s.bars {
                // No trade since the last hand-on: only a bar that closed
                // since has news (its hash goes).
                if !dirty && !b.gone() {
                    continue;
                }
                match b.hand_on() {
                    Some(Forming::Bar(bar)) => out.push(Event::Bar(BarUpdate {
                        instrument: Arc::clone(&s.instrument),
                        interval: Arc::clone(&b.interval().label),
                        bar,
                        closed: false,
                    })),
                    Some(Forming::Gone) => out.push(Event::FormingGone(FormingGone {
                        instrument: Arc::clone(&s.instrument),
                        interval: Arc::clone(&b.interval().label),
                    })),
                    None => {}
                }
            }
            if !dirty {
                continue;
            }
            for v in [&s.bucket, &s.session_volume].into_iter().flatten() {
                out.push(Event::Volume(v.clone()));
            }
            s.volume_sent = true;
            if let (true, Some(value)) = (inline, s.vwap.value()) {
                out.push(Event::Indicator(IndicatorUpdate {
                    instrument: Arc::clone(&s.instrument),
                    name: "vwap",
                    value,
                    ts_ms: s.last_ts_ms,
                    period: 0,
                }));
            }
        }
    }

    /// The input ended or the process stops: what changed is handed on. A
    /// forming bar stays forming (in its hash and the checkpoint) unless
    /// `close_at_end` says to close it.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if self.cfg.close_at_end {
            let cfg = &self.cfg;
            for s in &mut self.states {
                for k in 0..s.bars.len() {
                    if let Some(closed) = s.bars[k].close() {
                        s.on_close(k, closed, cfg, out);
                        s.unsaved = true;
                        s.gone = true;
                    }
                }
            }
        }
        // After the closes: a bar closed at the end leaves no forming hash
        // (one never handed on as forming is not written as forming first).
        self.emit_forming(out);
        self.emit_checkpoints(out);
    }
}

/// The end (epoch ms) of the exchange phase that holds `ts_ms`, if the
/// exchange has phases. Minutes are counted on the local clock from `ts_ms`'s
/// minute, so a phase that spans a daylight-saving change ends an hour off.
fn phase_end_ms(clock: &mut SessionClock, ts_ms: i64) -> Option<i64> {
    let minute = clock.at(ts_ms).minute;
    let end = clock.venue().phase_end(minute)?;
    let minute_start = ts_ms - ts_ms.rem_euclid(60_000);
    Some(minute_start + i64::from(end - minute) * 60_000)
}

impl InstrumentState {
    /// Adds a trade's quantity to its bucket and its session; a trade of a new
    /// bucket or session hands on the finished one first, unless it was
    /// handed on as it is (by [`StateStage::emit_dirty`]): with thousands of
    /// quiet instruments nearly every trade opens a bucket, and the finished
    /// one would be written twice with the same values.
    fn add_volume(&mut self, ts: i64, qty: Dec, width: u16, out: &mut Vec<Event>) {
        let local = self.clock.at(ts).clone();
        let bucket = local.minute - local.minute % width;
        let unsent = !std::mem::replace(&mut self.volume_sent, false);
        for (slot, span) in [
            (&mut self.bucket, Some(bucket)),
            (&mut self.session_volume, None),
        ] {
            match slot {
                // A late trade (clock step back) counts in the current span.
                Some(v) if v.session == local.session && (span.is_none() || v.bucket >= span) => {
                    v.volume += qty;
                    v.trades += 1;
                    v.last_ts_ms = v.last_ts_ms.max(ts);
                }
                _ => {
                    if let Some(done) = slot.take().filter(|_| unsent) {
                        out.push(Event::Volume(done));
                    }
                    *slot = Some(VolumeUpdate {
                        instrument: Arc::clone(&self.instrument),
                        session: Arc::clone(&local.session),
                        bucket: span,
                        volume: qty,
                        trades: 1,
                        first_ts_ms: ts,
                        last_ts_ms: ts,
                    });
                }
            }
        }
    }

    /// A bar of interval `k` closed: hand it on, and on the indicator
    /// interval (inline engine) the RSI and ATR it makes.
    fn on_close(&mut self, k: usize, bar: Bar, cfg: &StateConfig, out: &mut Vec<Event>) {
        out.push(Event::Bar(BarUpdate {
            instrument: Arc::clone(&self.instrument),
            interval: Arc::clone(&self.bars[k].interval().label),
            bar,
            closed: true,
        }));
        if let Some(x) = self.extended.get_mut(k) {
            let set = x.next(&self.instrument, &self.bars[k].interval().label, &bar);
            out.push(Event::IndicatorSet(set));
        }
        if !cfg.inline || k != cfg.indicator_interval {
            return;
        }
        let values = [
            ("rsi", self.rsi.next(bar.close.to_f64()), cfg.rsi_period),
            ("atr", self.atr.next(&bar), cfg.atr_period),
        ];
        for (name, value, period) in values {
            if let Some(value) = value {
                out.push(Event::Indicator(IndicatorUpdate {
                    instrument: Arc::clone(&self.instrument),
                    name,
                    value,
                    ts_ms: bar.open_ms,
                    period: period as u32,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(inst: &Arc<Instrument>, ms: i64, price: f64, qty: f64) -> Event {
        Event::Tick(Tick::trade(
            Arc::clone(inst),
            ms * 1_000_000,
            ms * 1_000_000,
            Dec::from_f64(price).unwrap(),
            Dec::from_f64(qty).unwrap(),
        ))
    }

    fn stage() -> StateStage {
        StateStage::new(StateConfig {
            rsi_period: 2,
            atr_period: 2,
            close_at_end: true,
            checkpoints: false,
            ..StateConfig::default()
        })
    }

    fn indicators(out: &[Event], name: &str) -> Vec<f64> {
        out.iter()
            .filter_map(|e| match e {
                Event::Indicator(i) if i.name == name => Some(i.value),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_gap_between_sessions_keeps_rsi_going_and_restarts_vwap() {
        let inst = Arc::new(Instrument::new("NSE", "SBIN"));
        let mut s = stage();
        let mut out = Vec::new();
        // 2024-01-01 15:27..15:29 IST, then 2024-01-02 09:15 IST.
        let day1 = 1_704_103_020_000;
        for (k, p) in [100.0, 101.0, 102.0].into_iter().enumerate() {
            s.process(tick(&inst, day1 + k as i64 * 60_000, p, 1.0), &mut out);
        }
        s.emit_dirty(&mut out);
        assert_eq!(indicators(&out, "vwap"), [101.0]);
        let day2 = 1_704_167_100_000; // 09:15 IST
        out.clear();
        s.process(tick(&inst, day2, 90.0, 3.0), &mut out);
        s.emit_dirty(&mut out);
        // The 15:29 bar closed; RSI(2) had its two changes (+1, +1): 100.
        assert_eq!(indicators(&out, "rsi"), [100.0]);
        // The new day's VWAP is the new day's trade alone.
        assert_eq!(indicators(&out, "vwap"), [90.0]);
        out.clear();
        s.finish(&mut out);
        // The overnight bar closes into the same RSI: the fall of 12 weighs in.
        let rsi = indicators(&out, "rsi");
        assert_eq!(rsi.len(), 1);
        assert!(rsi[0] < 50.0, "{rsi:?}");
    }

    /// The bucket volumes handed on, as (HH:MM minute, volume).
    fn buckets(out: &[Event]) -> Vec<(u16, f64)> {
        out.iter()
            .filter_map(|e| match e {
                Event::Volume(v) => v.bucket.map(|b| (b, v.volume.to_f64())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_finished_bucket_is_handed_on_again_only_if_it_changed_since() {
        let inst = Arc::new(Instrument::new("NSE", "SBIN"));
        let mut s = stage();
        let mut out = Vec::new();
        let open = 1_704_080_700_000; // 2024-01-01 09:15 IST
        s.process(tick(&inst, open, 100.0, 2.0), &mut out);
        s.emit_dirty(&mut out);
        assert_eq!(buckets(&out), [(555, 2.0)]);
        // 09:16: 09:15 was handed on as it is, so only 09:16 goes out.
        out.clear();
        s.process(tick(&inst, open + 60_000, 100.0, 3.0), &mut out);
        s.emit_dirty(&mut out);
        assert_eq!(buckets(&out), [(556, 3.0)]);
        // A second 09:16 trade after the hand-on, then 09:17: 09:16 changed
        // since (5 now) and is handed on finished, then 09:17.
        out.clear();
        s.process(tick(&inst, open + 61_000, 100.0, 2.0), &mut out);
        s.process(tick(&inst, open + 120_000, 100.0, 1.0), &mut out);
        s.emit_dirty(&mut out);
        assert_eq!(buckets(&out), [(556, 5.0), (557, 1.0)]);
    }

    #[test]
    fn checkpoints_held_back_go_out_later_as_the_ones_never_held_back() {
        let insts: Vec<_> = ["A", "B", "C"]
            .iter()
            .map(|s| Arc::new(Instrument::new("NSE", s)))
            .collect();
        let events = two_sessions(&insts);
        let checkpoints = |out: &[Event]| -> Vec<String> {
            out.iter()
                .filter_map(|e| match e {
                    Event::Checkpoint(c) => Some(format!("{} {}", c.instrument.symbol, c.json)),
                    _ => None,
                })
                .collect()
        };
        let others = |out: &[Event]| {
            out.iter()
                .filter(|e| !matches!(e, Event::Checkpoint(_)))
                .count()
        };
        let cfg = || StateConfig {
            rsi_period: 2,
            atr_period: 2,
            ..StateConfig::default()
        };
        let (mut every, mut held) = (StateStage::new(cfg()), StateStage::new(cfg()));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (k, c) in events.chunks(50).enumerate() {
            for e in c {
                every.process(e.clone(), &mut a);
                held.process(e.clone(), &mut b);
            }
            every.emit_dirty(&mut a);
            let before = b.len();
            if k % 4 == 3 {
                held.emit_dirty(&mut b);
            } else {
                held.emit_outputs(&mut b);
                assert!(checkpoints(&b[before..]).is_empty());
            }
        }
        every.emit_dirty(&mut a);
        held.emit_dirty(&mut b);
        // The same outputs; of the checkpoints, fewer, each one of the
        // uninterrupted stage's, and the last of each instrument the same.
        assert_eq!(others(&a), others(&b));
        let (ca, cb) = (checkpoints(&a), checkpoints(&b));
        assert!(cb.len() * 3 < ca.len(), "{} vs {}", cb.len(), ca.len());
        assert!(cb.iter().all(|c| ca.contains(c)));
        for inst in &insts {
            let last = |cs: &[String]| {
                cs.iter()
                    .rev()
                    .find(|c| c.starts_with(&format!("{} ", inst.symbol)))
                    .cloned()
            };
            assert_eq!(last(&ca), last(&cb));
        }
    }

    /// Three instruments over two NSE sessions, a trade every 20 s, ids rising.
    fn two_sessions(insts: &[Arc<Instrument>]) -> Vec<Event> {
        let mut out = Vec::new();
        for (day, open) in [(0i64, 1_704_080_700_000i64), (1, 1_704_167_100_000)] {
            for k in 0..1_000i64 {
                for (j, inst) in insts.iter().enumerate() {
                    let price = 100.0 + ((k * 7 + j as i64 * 13 + day * 5) % 41) as f64 * 0.05;
                    let qty = (1 + (k + j as i64) % 9) as f64 * 0.001;
                    let Event::Tick(mut t) = tick(inst, open + k * 20_000, price, qty) else {
                        unreachable!()
                    };
                    t.trade_id = Some(tickwire_core::TradeId::trade((day * 10_000 + k) as u64));
                    out.push(Event::Tick(t));
                }
            }
        }
        out
    }

    fn run(stage: &mut StateStage, events: &[Event], chunk: usize) -> Vec<Event> {
        let mut out = Vec::new();
        for c in events.chunks(chunk) {
            for e in c {
                stage.process(e.clone(), &mut out);
            }
            stage.emit_dirty(&mut out);
        }
        out
    }

    #[test]
    fn a_stage_restored_from_checkpoints_continues_as_the_uninterrupted_one() {
        let cfg = || StateConfig {
            intervals: ["1m", "5m"]
                .iter()
                .filter_map(|l| Interval::parse(l))
                .collect(),
            rsi_period: 3,
            atr_period: 3,
            extended: true,
            ..StateConfig::default()
        };
        let insts: Vec<Arc<Instrument>> = ["SBIN", "TCS", "INFY"]
            .iter()
            .map(|s| Arc::new(Instrument::new("NSE", s)))
            .collect();
        let events = two_sessions(&insts);
        // Cut inside a minute of the first session, and inside the second.
        for cut in [1_501, 4_444] {
            let mut whole = StateStage::new(cfg());
            run(&mut whole, &events[..cut], 50);
            let mut want = run(&mut whole, &events[cut..], 50);
            whole.finish(&mut want);

            let mut first = StateStage::new(cfg());
            run(&mut first, &events[..cut], 50);
            let mut second = StateStage::new(cfg());
            for inst in &insts {
                let json = serde_json::to_string(&first.checkpoint(inst).unwrap()).unwrap();
                assert!(second.restore(inst, serde_json::from_str(&json).unwrap()));
            }
            let mut got = run(&mut second, &events[cut..], 50);
            second.finish(&mut got);
            assert!(want
                .iter()
                .any(|e| matches!(e, Event::IndicatorSet(s) if s.bb_upper.is_some())));
            assert_eq!(got.len(), want.len(), "cut at {cut}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "cut at {cut}");
            }
            // A resend of the last trade before the cut is known to the restored stage.
            let mut out = Vec::new();
            let mut again = StateStage::new(cfg());
            for inst in &insts {
                again.restore(inst, first.checkpoint(inst).unwrap());
            }
            again.process(events[cut - 1].clone(), &mut out);
            assert!(out.is_empty(), "{out:?}");
            assert_eq!(again.duplicate_trades, 1);
        }
    }

    fn closed_bars(out: &[Event]) -> Vec<(String, String, i64, u64)> {
        out.iter()
            .filter_map(|e| match e {
                Event::Bar(b) if b.closed => Some((
                    b.instrument.symbol.to_string(),
                    b.interval.to_string(),
                    b.bar.open_ms,
                    b.bar.trades,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_end_of_the_continuous_phase_ends_the_bars_of_it() {
        let (sbin, tcs) = (
            Arc::new(Instrument::new("NSE", "SBIN")),
            Arc::new(Instrument::new("NSE", "TCS")),
        );
        let mut s = StateStage::new(StateConfig {
            intervals: ["1m", "3h"]
                .iter()
                .filter_map(|l| Interval::parse(l))
                .collect(),
            checkpoints: false,
            close_grace_ms: 500,
            ..StateConfig::default()
        });
        let mut out = Vec::new();
        // 2024-01-01 15:29:40 and 15:29:30 IST; the market closes at 15:30.
        let t1529 = 1_704_103_170_000;
        s.process(tick(&sbin, t1529 + 10_000, 100.0, 1.0), &mut out);
        s.process(tick(&tcs, t1529, 200.0, 1.0), &mut out);
        // A quote of TCS just after the close (outside every phase, dropped)
        // ends TCS's bars: its own time passed their end.
        s.process(tick(&tcs, 1_704_103_200_100, 200.0, 0.0), &mut out);
        // The three-hour bar opened at 14:30 IST (epoch-aligned, to 17:30)
        // and is cut short by the phase end at 15:30.
        let three_hours = 1_704_099_600_000;
        let bars = |sym: &str, minute: i64| {
            [
                (sym.to_string(), "1m".to_string(), minute, 1),
                (sym.to_string(), "3h".to_string(), three_hours, 1),
            ]
        };
        assert_eq!(closed_bars(&out), bars("TCS", t1529 - 30_000));
        assert_eq!(s.dropped_outside, 1);
        // SBIN is quiet: the clock ends its phase, once the grace is over.
        out.clear();
        let close = 1_704_103_200_000;
        assert_eq!(s.close_due(close + 499, &mut out), Some(close + 500));
        assert!(closed_bars(&out).is_empty());
        assert_eq!(s.close_due(close + 500, &mut out), None);
        assert_eq!(closed_bars(&out), bars("SBIN", t1529 - 30_000));
        out.clear();
        s.finish(&mut out);
        assert!(closed_bars(&out).is_empty(), "nothing left forming");
    }

    #[test]
    fn the_clock_closes_a_quiet_bar_after_its_grace_and_a_later_trade_of_it_counts_next() {
        let inst = Arc::new(Instrument::new("BINANCE", "BTCUSDT"));
        let mut s = StateStage::new(StateConfig {
            close_grace_ms: 500,
            ..StateConfig::default()
        });
        let mut out = Vec::new();
        let t0 = 1_704_067_200_000; // 00:00 UTC
        assert_eq!(s.close_due(t0, &mut out), None, "nothing forming");
        s.process(tick(&inst, t0 + 20_000, 100.0, 1.0), &mut out);
        s.process(tick(&inst, t0 + 40_000, 101.0, 1.0), &mut out);
        let end = t0 + 60_000;
        assert_eq!(s.close_due(end + 499, &mut out), Some(end + 500));
        assert!(closed_bars(&out).is_empty());
        assert_eq!(s.close_due(end + 500, &mut out), None);
        assert_eq!(closed_bars(&out), [("BTCUSDT".into(), "1m".into(), t0, 2)]);
        // A trade of the closed minute arriving after that: in the next bar.
        out.clear();
        s.process(tick(&inst, t0 + 59_000, 102.0, 1.0), &mut out);
        s.emit_dirty(&mut out);
        let forming = out.iter().find_map(|e| match e {
            Event::Bar(b) if !b.closed => Some(b.bar),
            _ => None,
        });
        assert_eq!(forming.map(|b| (b.open_ms, b.trades)), Some((end, 1)));
        assert_eq!(s.close_due(end + 60_500, &mut out), None);
        assert_eq!(closed_bars(&out), [("BTCUSDT".into(), "1m".into(), end, 1)]);

        // Old trades received now (a feed catching up): the exchange's clock
        // runs from their time, so the wall clock does not close them at once.
        let old = Arc::new(Instrument::new("OKX", "BTC-USDT"));
        let received = t0 + 86_400_000;
        let Event::Tick(mut t) = tick(&old, t0 + 1_000, 100.0, 1.0) else {
            unreachable!()
        };
        t.recv_ts_ns = received * 1_000_000;
        out.clear();
        s.process(Event::Tick(t), &mut out);
        let wake = s.close_due(received + 100, &mut out);
        assert!(closed_bars(&out).is_empty());
        assert_eq!(wake, Some(received + 59_000 + 500));
        s.close_due(received + 59_500, &mut out);
        assert_eq!(closed_bars(&out), [("BTC-USDT".into(), "1m".into(), t0, 1)]);
    }

    /// The forming-hash news of `out`: (interval, bar open) of a forming
    /// bar, or (interval, None) when none is forming.
    fn forming_news(out: &[Event]) -> Vec<(String, Option<i64>)> {
        out.iter()
            .filter_map(|e| match e {
                Event::Bar(b) if !b.closed => Some((b.interval.to_string(), Some(b.bar.open_ms))),
                Event::FormingGone(g) => Some((g.interval.to_string(), None)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_closed_bar_leaves_no_forming_bar_behind_unless_the_next_one_formed() {
        let inst = Arc::new(Instrument::new("BINANCE", "BTCUSDT"));
        let cfg = |close_at_end| StateConfig {
            close_grace_ms: 500,
            close_at_end,
            intervals: vec![
                Interval::parse("1m").unwrap(),
                Interval::parse("5m").unwrap(),
            ],
            ..StateConfig::default()
        };
        let t0 = 1_704_067_200_000; // 00:00 UTC
        let mut s = StateStage::new(cfg(false));
        let mut out = Vec::new();
        s.process(tick(&inst, t0 + 20_000, 100.0, 1.0), &mut out);
        s.emit_dirty(&mut out);
        let one = Some(t0);
        assert_eq!(forming_news(&out), [("1m".into(), one), ("5m".into(), one)]);
        // A trade of the next minute closes the first and forms the next:
        // the forming hash gets the new bar, no news of none in between.
        out.clear();
        s.process(tick(&inst, t0 + 61_000, 101.0, 1.0), &mut out);
        s.emit_dirty(&mut out);
        assert_eq!(
            forming_news(&out),
            [("1m".into(), Some(t0 + 60_000)), ("5m".into(), one)]
        );
        // The clock closes the quiet minute: its hash goes, the 5m's stays.
        out.clear();
        s.close_due(t0 + 120_500, &mut out);
        s.emit_dirty(&mut out);
        assert_eq!(closed_bars(&out).len(), 1);
        assert_eq!(forming_news(&out), [("1m".into(), None)]);
        // Said once: nothing more to say until a trade comes.
        out.clear();
        s.emit_dirty(&mut out);
        assert!(forming_news(&out).is_empty());
        // The checkpoint agrees: nothing forming of 1m.
        let cp = s.checkpoint(&inst).unwrap();
        assert_eq!(cp.bars[0].1, None);
        assert!(cp.bars[1].1.is_some());
        // A restart from it says (again) that none is forming, so a hash an
        // older build left holding the closed bar goes too.
        let mut again = StateStage::new(cfg(true));
        let json = serde_json::to_string(&cp).unwrap();
        assert!(again.restore(&inst, serde_json::from_str(&json).unwrap()));
        out.clear();
        again.emit_dirty(&mut out);
        assert_eq!(forming_news(&out), [("1m".into(), None)]);
        // At the end of a backtest every bar closes: none left forming (the
        // new minute's was never handed on as forming, the 5m's was).
        out.clear();
        again.process(tick(&inst, t0 + 130_000, 102.0, 1.0), &mut out);
        again.finish(&mut out);
        assert_eq!(closed_bars(&out).len(), 2);
        assert_eq!(forming_news(&out), [("5m".into(), None)]);
        // A bar opened and closed before any hand-on was never shown as
        // forming: nothing to take back.
        let mut fresh = StateStage::new(cfg(true));
        out.clear();
        fresh.process(tick(&inst, t0, 100.0, 1.0), &mut out);
        fresh.finish(&mut out);
        assert_eq!(closed_bars(&out).len(), 2);
        assert!(forming_news(&out).is_empty());
    }

    #[test]
    fn a_bar_a_pause_left_forming_closes_when_the_clock_is_asked_after_restore() {
        let inst = Arc::new(Instrument::new("BINANCE", "ETHUSDT"));
        let cfg = || StateConfig {
            close_grace_ms: 500,
            ..StateConfig::default()
        };
        let mut first = StateStage::new(cfg());
        let t0 = 1_704_067_200_000;
        first.process(tick(&inst, t0 + 1_000, 10.0, 2.0), &mut Vec::new());
        let json = serde_json::to_string(&first.checkpoint(&inst).unwrap()).unwrap();
        // Restored under another handle of the same instrument (a live run's
        // configured symbol), then met under the parser's.
        let mut second = StateStage::new(cfg());
        let configured = Arc::new(Instrument::new("BINANCE", "ETHUSDT"));
        assert!(second.restore(&configured, serde_json::from_str(&json).unwrap()));
        assert!(second.knows(&inst));
        let mut out = Vec::new();
        assert_eq!(second.close_due(t0 + 3_600_000, &mut out), None);
        assert_eq!(closed_bars(&out), [("ETHUSDT".into(), "1m".into(), t0, 1)]);
        // The same minute again after the close: the next bar, one state.
        out.clear();
        second.process(tick(&inst, t0 + 2_000, 11.0, 1.0), &mut out);
        second.finish(&mut out);
        let cp = second.checkpoint(&configured).unwrap();
        assert_eq!(
            cp.bars[0].1.map(|b| (b.open_ms, b.trades)),
            Some((t0 + 60_000, 1))
        );
    }

    #[test]
    fn a_checkpoint_of_another_version_is_not_loaded() {
        let inst = Arc::new(Instrument::new("NSE", "SBIN"));
        let mut s = stage();
        s.process(tick(&inst, 1_704_080_700_000, 100.0, 1.0), &mut Vec::new());
        let mut json: serde_json::Value =
            serde_json::to_value(s.checkpoint(&inst).unwrap()).unwrap();
        json["v"] = (CHECKPOINT_VERSION + 1).into();
        let mut fresh = stage();
        assert!(!fresh.restore(&inst, serde_json::from_value(json).unwrap()));
        assert!(fresh.checkpoint(&inst).is_none());
    }

    #[test]
    fn a_trade_at_or_below_the_last_applied_id_is_applied_to_nothing() {
        let inst = Arc::new(Instrument::new("BINANCE", "BTCUSDT"));
        let mut s = stage();
        let mut out = Vec::new();
        let t0 = 1_704_067_200_000;
        for (k, id) in [10u64, 11, 11, 9, 12].into_iter().enumerate() {
            let Event::Tick(mut t) = tick(&inst, t0 + k as i64, 100.0, 1.0) else {
                unreachable!()
            };
            t.trade_id = Some(tickwire_core::TradeId::trade(id));
            s.process(Event::Tick(t), &mut out);
        }
        s.emit_dirty(&mut out);
        let ids: Vec<u64> = out
            .iter()
            .filter_map(|e| match e {
                Event::Tick(t) => t.trade_id.map(|i| i.value),
                _ => None,
            })
            .collect();
        assert_eq!(ids, [10, 11, 12]);
        assert_eq!(s.duplicate_trades, 2);
        // Bars and volume saw three trades, not five.
        let bar = out.iter().find_map(|e| match e {
            Event::Bar(b) => Some(b.bar),
            _ => None,
        });
        assert_eq!(bar.map(|b| b.trades), Some(3));
    }

    #[test]
    fn quotes_without_quantity_pass_through_without_touching_bars() {
        let inst = Arc::new(Instrument::new("BINANCE", "BTCUSDT"));
        let mut s = stage();
        let mut out = Vec::new();
        s.process(tick(&inst, 1_704_067_200_000, 42_000.0, 0.0), &mut out);
        assert!(matches!(out.as_slice(), [Event::Tick(_)]));
        s.finish(&mut out);
        assert_eq!(out.len(), 1, "no bar from a quote");
        assert_eq!(s.ticks_without_qty, 1);
    }

    #[test]
    fn lua_engine_leaves_indicators_to_the_writer() {
        let inst = Arc::new(Instrument::new("NSE", "SBIN"));
        let mut s = StateStage::new(StateConfig {
            inline: false,
            close_at_end: true,
            checkpoints: false,
            ..StateConfig::default()
        });
        let mut out = Vec::new();
        for k in 0..5 {
            s.process(
                tick(&inst, 1_704_080_700_000 + k * 60_000, 100.0 + k as f64, 1.0),
                &mut out,
            );
        }
        s.finish(&mut out);
        assert!(out.iter().all(|e| !matches!(e, Event::Indicator(_))));
        assert_eq!(
            out.iter()
                .filter(|e| matches!(e, Event::Bar(b) if b.closed))
                .count(),
            5
        );
    }
}
