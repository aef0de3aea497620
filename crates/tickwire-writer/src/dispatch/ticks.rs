//! Routing of ticks and quotes: each tick's stream (per phase DB), its ID and
//! its last-price hash; a quote's last-price hash. Planned in `plan::ticks`
//! and `plan::prices`.

use std::sync::Arc;

use fred::types::Key;
use tickwire_core::{ByAddress, Db};

use crate::dispatch::{instrument_value, lane_of, Dispatcher};
use crate::dispatch::{Route, StreamState};
use crate::plan::prices::QuoteWrite;
use crate::plan::ticks::TickWrite;
use tickwire_core::{Instrument, Quote, StreamIdSeq, Tick};

impl Dispatcher {
    /// A tick to its stream in its phase's DB, and its last-price hash.
    pub(crate) fn route_tick(&mut self, tick: Tick) -> Option<usize> {
        let key = ByAddress(Arc::clone(&tick.instrument));
        if !self.routes.contains_key(&key) {
            let route = self.new_route(&tick.instrument);
            self.routes.insert(key.clone(), route);
        }
        // Present: inserted just above if it was missing.
        let route = self.routes.get_mut(&key)?;
        let purpose = tick.db.unwrap_or(Db::ContinuousMarket);
        let db = self.dbs.get(purpose);
        // The last price of the continuous market has its own DB; other
        // phases keep theirs beside their ticks.
        let price_db = match purpose {
            Db::ContinuousMarket => self.dbs.get(Db::Prices),
            _ => db,
        };
        let keys = &self.keys;
        let value = |n: &str| instrument_value(&tick.instrument, n);
        let index = match route.streams.iter().find(|(d, _)| *d == db) {
            Some((_, i)) => *i,
            None => {
                let stream_key = Key::from(keys.tick_stream.render(keys.prefix(db), value));
                // Two instruments that render to the same stream share its ID sequence.
                let id = (db, stream_key.clone());
                let i = match self.stream_index.get(&id) {
                    Some(i) => *i,
                    None => {
                        self.streams.push(StreamState {
                            key: stream_key,
                            seq: StreamIdSeq::default(),
                        });
                        self.stream_index.insert(id, self.streams.len() - 1);
                        self.streams.len() - 1
                    }
                };
                route.streams.push((db, i));
                i
            }
        };
        let price_key = if price_db == self.dbs.get(Db::Prices) {
            route.price_key.clone()
        } else {
            match route.phase_prices.iter().find(|(d, _)| *d == price_db) {
                Some((_, k)) => k.clone(),
                None => {
                    let k = Key::from(keys.last_price.render(keys.prefix(price_db), value));
                    route.phase_prices.push((price_db, k.clone()));
                    k
                }
            }
        };
        let stream = &mut self.streams[index];
        let id = match tick.stream_id {
            // Numbered by the state stage; the writer's sequence
            // follows, for ticks that come without.
            Some(id) => {
                stream.seq.follow(id);
                id
            }
            None => stream.seq.next(tick.exchange_ts_ms()),
        };
        let lane = route.lane;
        self.pending[lane].ticks.push(TickWrite {
            stream_key: stream.key.clone(),
            price_key,
            db,
            price_db,
            id,
            tick,
        });
        Some(lane)
    }

    /// A quote to its instrument's last-price hash.
    pub(crate) fn route_quote(&mut self, quote: Quote) -> Option<usize> {
        let key = ByAddress(Arc::clone(&quote.instrument));
        if !self.routes.contains_key(&key) {
            let route = self.new_route(&quote.instrument);
            self.routes.insert(key.clone(), route);
        }
        // Present: inserted just above if it was missing.
        let route = self.routes.get(&key)?;
        let lane = route.lane;
        let batch = &mut self.pending[lane];
        batch.quotes.push(QuoteWrite {
            price_key: route.price_key.clone(),
            price_db: self.dbs.get(Db::Prices),
            after: batch.ticks.len(),
            bid: quote.bid,
            ask: quote.ask,
        });
        Some(lane)
    }

    pub(crate) fn new_route(&self, inst: &Instrument) -> Route {
        let value = |name: &str| instrument_value(inst, name);
        let price_key = Key::from(
            self.keys
                .last_price
                .render(self.keys.prefix_of(Db::Prices), value),
        );
        Route {
            price_key,
            phase_prices: Vec::new(),
            streams: Vec::new(),
            // By symbol: the stream and the price hash of a symbol share a lane,
            // so both are written in order.
            lane: lane_of(&inst.symbol, self.lanes),
        }
    }
}
