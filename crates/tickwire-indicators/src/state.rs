//! The state stage: per-instrument bars and indicators, between parse and writer.
//!
//! Ticks pass through unchanged; behind them come closed bars, and (inline
//! engine) RSI/ATR values on each closed bar of the indicator interval. The
//! forming bars and the VWAP are updated on every tick and handed on once per
//! chunk of input, their latest state, since the writer keeps only the latest
//! per key anyway.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ta::Next;
use tickwire_core::config::{Config, Engine};
use tickwire_core::{BarUpdate, Event, IndicatorUpdate, Instrument, Tick};

use crate::{Atr, BarBuilder, Interval, Rsi, SessionClock, Vwap};

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
        Self {
            intervals,
            indicator_interval,
            rsi_period: c.indicators.rsi_period as usize,
            atr_period: c.indicators.atr_period as usize,
            inline: c.indicators.engine == Engine::Inline,
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
    last_ts_ms: i64,
    dirty: bool,
}

#[derive(Clone)]
struct ByPtr(Arc<Instrument>);
impl PartialEq for ByPtr {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for ByPtr {}
impl Hash for ByPtr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state)
    }
}

/// Per-instrument state of one run.
pub struct StateStage {
    cfg: StateConfig,
    states: Vec<InstrumentState>,
    index: HashMap<ByPtr, usize>,
    /// Ticks without quantity (quotes): passed on, not counted in bars or VWAP.
    pub ticks_without_qty: u64,
}

impl StateStage {
    pub fn new(cfg: StateConfig) -> Self {
        Self {
            cfg,
            states: Vec::new(),
            index: HashMap::new(),
            ticks_without_qty: 0,
        }
    }

    fn state_of(&mut self, inst: &Arc<Instrument>) -> usize {
        if let Some(i) = self.index.get(&ByPtr(Arc::clone(inst))) {
            return *i;
        }
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
            clock: SessionClock::for_exchange(&inst.exchange),
            last_ts_ms: 0,
            dirty: false,
        });
        self.index
            .insert(ByPtr(Arc::clone(inst)), self.states.len() - 1);
        self.states.len() - 1
    }

    /// Takes one event; pushes it and what it caused to `out`.
    pub fn process(&mut self, event: Event, out: &mut Vec<Event>) {
        let Event::Tick(tick) = event else {
            out.push(event);
            return;
        };
        if tick.qty > 0.0 {
            self.on_trade(&tick, out);
        } else {
            self.ticks_without_qty += 1;
        }
        out.push(Event::Tick(tick));
    }

    fn on_trade(&mut self, tick: &Tick, out: &mut Vec<Event>) {
        let i = self.state_of(&tick.instrument);
        let (indicator_interval, inline) = (self.cfg.indicator_interval, self.cfg.inline);
        let (rsi_period, atr_period) = (self.cfg.rsi_period as u32, self.cfg.atr_period as u32);
        let s = &mut self.states[i];
        let ts = tick.exchange_ts_ms();
        s.last_ts_ms = ts;
        s.dirty = true;
        for (k, builder) in s.bars.iter_mut().enumerate() {
            if let Some(closed) = builder.update(ts, tick.price, tick.qty) {
                out.push(Event::Bar(BarUpdate {
                    instrument: Arc::clone(&s.instrument),
                    interval: Arc::clone(&builder.interval().label),
                    bar: closed,
                    closed: true,
                }));
                if inline && k == indicator_interval {
                    indicators_on_close(
                        &s.instrument,
                        &mut s.rsi,
                        &mut s.atr,
                        &closed,
                        (rsi_period, atr_period),
                        out,
                    );
                }
            }
        }
        if inline {
            let day = s.clock.date(ts);
            s.vwap.update(day, tick.price, tick.qty);
        }
    }

    /// Hands on the latest forming bars and VWAP of every instrument that
    /// traded since the last call.
    pub fn emit_dirty(&mut self, out: &mut Vec<Event>) {
        let inline = self.cfg.inline;
        for s in self.states.iter_mut().filter(|s| s.dirty) {
            s.dirty = false;
            for b in &s.bars {
                if let Some(bar) = b.forming() {
                    out.push(Event::Bar(BarUpdate {
                        instrument: Arc::clone(&s.instrument),
                        interval: Arc::clone(&b.interval().label),
                        bar: *bar,
                        closed: false,
                    }));
                }
            }
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

    /// The input (or the session) ended: every forming bar closes.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.emit_dirty(out);
        let (indicator_interval, inline) = (self.cfg.indicator_interval, self.cfg.inline);
        let periods = (self.cfg.rsi_period as u32, self.cfg.atr_period as u32);
        for s in &mut self.states {
            for (k, builder) in s.bars.iter_mut().enumerate() {
                if let Some(closed) = builder.close() {
                    out.push(Event::Bar(BarUpdate {
                        instrument: Arc::clone(&s.instrument),
                        interval: Arc::clone(&builder.interval().label),
                        bar: closed,
                        closed: true,
                    }));
                    if inline && k == indicator_interval {
                        indicators_on_close(
                            &s.instrument,
                            &mut s.rsi,
                            &mut s.atr,
                            &closed,
                            periods,
                            out,
                        );
                    }
                }
            }
        }
    }
}

fn indicators_on_close(
    instrument: &Arc<Instrument>,
    rsi: &mut Rsi,
    atr: &mut Atr,
    bar: &tickwire_core::Bar,
    (rsi_period, atr_period): (u32, u32),
    out: &mut Vec<Event>,
) {
    let values = [
        ("rsi", rsi.next(bar.close), rsi_period),
        ("atr", atr.next(bar), atr_period),
    ];
    for (name, value, period) in values {
        if let Some(value) = value {
            out.push(Event::Indicator(IndicatorUpdate {
                instrument: Arc::clone(instrument),
                name,
                value,
                ts_ms: bar.open_ms,
                period,
            }));
        }
    }
}
