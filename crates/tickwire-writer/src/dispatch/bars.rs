//! Routing of bars, indicator values and the Lua engine's inputs: the keys of
//! each (instrument, interval) rendered once. Planned in `plan::bars` and
//! `plan::lua`.

use std::sync::Arc;

use fred::types::Key;
use tickwire_core::{ByAddress, Db};

use crate::dispatch::{instrument_value, lane_of, Dispatcher};
use crate::plan::bars::{BarWrite, IndicatorWrite};
use crate::plan::lua::{LuaBar, LuaKeys, LuaTrade};
use tickwire_core::Instrument;

impl Dispatcher {
    /// A forming hash whose bar closed with nothing after it: it goes.
    pub(crate) fn route_forming_gone(&mut self, gone: tickwire_core::FormingGone) -> Option<usize> {
        let (_, forming) = self.bar_keys_of(&gone.instrument, &gone.interval);
        let key = forming.clone();
        let lane = lane_of(&gone.instrument.symbol, self.lanes);
        self.pending[lane].bars.push(BarWrite { key, update: None });
        Some(lane)
    }

    /// A closed bar to its stream (and the Lua engine), a forming one to its hash.
    pub(crate) fn route_bar(&mut self, update: tickwire_core::BarUpdate) -> Option<usize> {
        let (stream, forming) = self.bar_keys_of(&update.instrument, &update.interval);
        let key = if update.closed {
            stream.clone()
        } else {
            forming.clone()
        };
        let lane = lane_of(&update.instrument.symbol, self.lanes);
        let for_lua = update.closed && self.lua_interval.as_deref() == Some(&*update.interval);
        if for_lua {
            let keys = self.lua_keys_of(&update.instrument);
            self.pending[lane].lua_bars.push(LuaBar {
                keys,
                bar: update.bar,
            });
        }
        self.pending[lane].bars.push(BarWrite {
            key,
            update: Some(update),
        });
        Some(lane)
    }

    /// An indicator value to its hash.
    pub(crate) fn route_indicator(
        &mut self,
        update: tickwire_core::IndicatorUpdate,
    ) -> Option<usize> {
        let id = (ByAddress(Arc::clone(&update.instrument)), update.name);
        let key = match self.indicator_keys.get(&id) {
            Some(k) => k.clone(),
            None => {
                let prefix = self.keys.prefix_of(Db::ContinuousMarket);
                let key = Key::from(self.keys.indicator.render(prefix, |n| {
                    instrument_value(&update.instrument, n).or((n == "name").then_some(update.name))
                }));
                self.indicator_keys.entry(id).or_insert(key).clone()
            }
        };
        let lane = lane_of(&update.instrument.symbol, self.lanes);
        self.pending[lane]
            .indicators
            .push(IndicatorWrite { key, update });
        Some(lane)
    }

    /// A trade for the Lua engine's VWAP.
    pub(crate) fn route_session_trade(
        &mut self,
        trade: tickwire_core::SessionTrade,
    ) -> Option<usize> {
        let keys = self.lua_keys_of(&trade.instrument);
        let lane = lane_of(&trade.instrument.symbol, self.lanes);
        self.pending[lane].lua_trades.push(LuaTrade { keys, trade });
        Some(lane)
    }

    /// The keys of `inst`'s bar stream and forming-bar hash of `interval`.
    pub(crate) fn bar_keys_of(
        &mut self,
        inst: &Arc<Instrument>,
        interval: &Arc<str>,
    ) -> &(Key, Key) {
        let id = (ByAddress(Arc::clone(inst)), Arc::clone(interval));
        let (keys, prefix) = (&self.keys, self.keys.prefix_of(Db::ContinuousMarket));
        self.bar_keys.entry(id).or_insert_with(|| {
            let render = |t: &tickwire_core::KeyTemplate| {
                Key::from(t.render(prefix, |n| {
                    instrument_value(inst, n).or((n == "interval").then_some(&**interval))
                }))
            };
            (render(&keys.bar_stream), render(&keys.bar_forming))
        })
    }

    pub(crate) fn lua_keys_of(&mut self, inst: &Arc<Instrument>) -> LuaKeys {
        if let Some(k) = self.lua_keys.get(&ByAddress(Arc::clone(inst))) {
            return k.clone();
        }
        let p = self.keys.prefix_of(Db::ContinuousMarket);
        let indicator = |name: &'static str| {
            Key::from(self.keys.indicator.render(p, |n| {
                instrument_value(inst, n).or((n == "name").then_some(name))
            }))
        };
        let keys = LuaKeys {
            state: Key::from(
                self.keys
                    .indicator_state
                    .render(p, |n| instrument_value(inst, n)),
            ),
            rsi: indicator("rsi"),
            atr: indicator("atr"),
            vwap: indicator("vwap"),
        };
        self.lua_keys
            .insert(ByAddress(Arc::clone(inst)), keys.clone());
        keys
    }
}
