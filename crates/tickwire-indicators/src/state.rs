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
    Bar, BarUpdate, ByAddress, Event, IndicatorUpdate, Instrument, SessionTrade, StreamIdSeq, Tick,
};

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
    /// The trading date of the latest trade, as text (Lua engine).
    session: Option<(jiff::civil::Date, Arc<str>)>,
    /// Trade sequence for the Lua engine's idempotence.
    seq: StreamIdSeq,
    last_ts_ms: i64,
    dirty: bool,
}

/// Per-instrument state of one run.
pub struct StateStage {
    cfg: StateConfig,
    states: Vec<InstrumentState>,
    index: HashMap<ByAddress, usize>,
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
        if let Some(i) = self.index.get(&ByAddress(Arc::clone(inst))) {
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
            session: None,
            seq: StreamIdSeq::default(),
            last_ts_ms: 0,
            dirty: false,
        });
        self.index
            .insert(ByAddress(Arc::clone(inst)), self.states.len() - 1);
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
        let (cfg, s) = (&self.cfg, &mut self.states[i]);
        let inline = cfg.inline;
        let ts = tick.exchange_ts_ms();
        s.last_ts_ms = ts;
        s.dirty = true;
        for k in 0..s.bars.len() {
            if let Some(closed) = s.bars[k].update(ts, tick.price, tick.qty) {
                s.on_close(k, closed, cfg, out);
            }
        }
        let day = s.clock.date(ts);
        if inline {
            s.vwap.update(day, tick.price, tick.qty);
        } else {
            let session = match &s.session {
                Some((d, text)) if *d == day => Arc::clone(text),
                _ => {
                    let text: Arc<str> = day.to_string().into();
                    s.session = Some((day, Arc::clone(&text)));
                    text
                }
            };
            let (ts_ms, seq) = s.seq.next(ts);
            out.push(Event::SessionTrade(SessionTrade {
                instrument: Arc::clone(&s.instrument),
                ts_ms,
                seq,
                session,
                price: tick.price,
                qty: tick.qty,
            }));
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
        let cfg = &self.cfg;
        for s in &mut self.states {
            for k in 0..s.bars.len() {
                if let Some(closed) = s.bars[k].close() {
                    s.on_close(k, closed, cfg, out);
                }
            }
        }
    }
}

impl InstrumentState {
    /// A bar of interval `k` closed: hand it on, and on the indicator
    /// interval (inline engine) the RSI and ATR it makes.
    fn on_close(&mut self, k: usize, bar: Bar, cfg: &StateConfig, out: &mut Vec<Event>) {
        out.push(Event::Bar(BarUpdate {
            instrument: Arc::clone(&self.instrument),
            interval: Arc::clone(&self.bars[k].interval().label),
            bar,
            closed: true,
        }));
        if !cfg.inline || k != cfg.indicator_interval {
            return;
        }
        let values = [
            ("rsi", self.rsi.next(bar.close), cfg.rsi_period),
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
        Event::Tick(Tick {
            instrument: Arc::clone(inst),
            exchange_ts_ns: ms * 1_000_000,
            recv_ts_ns: ms * 1_000_000,
            price,
            qty,
            bid: None,
            ask: None,
            cum_volume: None,
        })
    }

    fn stage() -> StateStage {
        StateStage::new(StateConfig {
            intervals: vec![Interval::parse("1m").unwrap()],
            indicator_interval: 0,
            rsi_period: 2,
            atr_period: 2,
            inline: true,
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
        let day2 = 1_704_166_500_000;
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
            ..stage().cfg
        });
        let mut out = Vec::new();
        for k in 0..5 {
            s.process(
                tick(&inst, 1_704_103_020_000 + k * 60_000, 100.0 + k as f64, 1.0),
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
