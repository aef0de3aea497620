//! The dispatcher: gives every event its keys, its stream ID and its lane,
//! and holds each lane's batch while it fills. One file per output kind
//! routes that kind's events (beside it, `plan/` plans them); this file
//! holds what they share and the match that sends each event to its kind.

mod bars;
mod dead_letters;
mod profiles;
mod snapshots;
mod ticks;
mod volume;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use fred::prelude::HashesInterface;
use fred::types::Key;
use tickwire_core::config::Keys;
use tickwire_core::{ByAddress, Config, Db, Event, Instrument, Quote, StreamIdSeq, Tick};

use crate::plan::lua::LuaKeys;
use crate::plan::LaneBatch;
use crate::pools::RedisPools;
use crate::{FastMap, WriterError};

pub(crate) struct Route {
    /// The last-price hash in the prices DB.
    pub(crate) price_key: Key,
    pub(crate) lane: usize,
    /// The instrument's stream in each DB it has traded into: (db, index).
    pub(crate) streams: Vec<(u8, usize)>,
    /// Its last-price hash in each other DB a phase keeps prices in (keys
    /// differ by DB only in cluster mode, where the DB is a namespace).
    pub(crate) phase_prices: Vec<(u8, Key)>,
}

pub(crate) struct StreamState {
    pub(crate) key: Key,
    pub(crate) seq: StreamIdSeq,
}

/// A feed's dead-letter stream, as this process numbers its entries.
///
/// A dead letter's ID is `{ms}-{seq}` (`ms` its receive time, 0 when the
/// input has none) counted from the start of the process (`natural`): the same input gives the same IDs, so a frame dead-lettered
/// again (a second replay, a restart on the whole input) lands on its earlier
/// entry and is counted as a duplicate. A stream an earlier process wrote
/// can already hold an entry at that ID for another frame (a new process
/// stamping a bad frame in a millisecond the last one used): the entry there
/// is read, and unless it is this frame, the dead letter goes after the
/// stream's last entry instead. Costs one read of the stream's last ID per
/// feed per process, and one read per dead letter that falls at or below it.
pub(crate) struct DeadLetters {
    pub(crate) key: Key,
    pub(crate) lane: usize,
    pub(crate) natural: StreamIdSeq,
    /// The stream's last ID when this process first wrote to it.
    pub(crate) before: Option<(u64, u64)>,
    /// The last ID in the stream: `before`, then each ID given.
    pub(crate) top: StreamIdSeq,
}

/// Assigns keys, stream IDs and lanes; holds the per-lane batches.
pub(crate) struct Dispatcher {
    pub(crate) keys: Keys,
    pub(crate) lanes: usize,
    pub(crate) routes: FastMap<ByAddress, Route>,
    pub(crate) streams: Vec<StreamState>,
    pub(crate) stream_index: FastMap<(u8, Key), usize>,
    pub(crate) dbs: tickwire_core::config::DbMap,
    pub(crate) deadletters: FastMap<Box<str>, DeadLetters>,
    /// Per feed: its `gaps:{feed}` key, lane and last entry ID.
    pub(crate) gaps: FastMap<std::sync::Arc<str>, (Key, usize, tickwire_core::StreamIdSeq)>,
    pub(crate) skipped: u64,
    /// Keys of bar streams and forming-bar hashes per (instrument, interval).
    pub(crate) bar_keys: FastMap<(ByAddress, Arc<str>), (Key, Key)>,
    /// Keys of indicator hashes per (instrument, name).
    pub(crate) indicator_keys: FastMap<(ByAddress, &'static str), Key>,
    /// Lua engine: the bar interval its RSI/ATR run on, and its keys per instrument.
    pub(crate) lua_interval: Option<Arc<str>>,
    pub(crate) lua_keys: FastMap<ByAddress, LuaKeys>,
    pub(crate) pending: Vec<LaneBatch>,
    /// Whether the default layout is written (the `default` profile).
    pub(crate) default_layout: bool,
    /// The other selected key profiles.
    pub(crate) profiles: Vec<tickwire_core::profiles::Profile>,
    /// Rendered profile keys (and PUBLISH channels) per (profile, instrument,
    /// bar interval): rendering once per instrument, not per tick.
    pub(crate) profile_keys: FastMap<ProfileKeyId, (Key, Option<Key>)>,
    /// The entry IDs of each profile tick stream, for ticks the state stage
    /// did not number.
    pub(crate) profile_streams: FastMap<Key, StreamIdSeq>,
    /// The instruments met in this run, by symbol: a newcomer of another
    /// exchange that would share their keys is refused.
    pub(crate) by_symbol: FastMap<Box<str>, Vec<Arc<Instrument>>>,
    /// Checkpoint keys per instrument.
    pub(crate) checkpoint_keys: FastMap<ByAddress, Key>,
    /// Instruments whose last-price hash an earlier run wrote for another
    /// exchange, with why: refused at their first tick.
    pub(crate) owned_elsewhere: FastMap<ByAddress, String>,
}

/// (profile index, output kind, instrument, bar interval).
pub(crate) type ProfileKeyId = (usize, u8, ByAddress, Option<Arc<str>>);

/// A depth snapshot as hash fields: `ts`, `recv_ts` (epoch ms), then per
/// level n (1 = best) `bid{n}`, `bid{n}_qty`, `bid{n}_orders`, `ask{n}`,
/// `ask{n}_qty`, `ask{n}_orders`.
pub(crate) fn depth_fields(d: &tickwire_core::Depth) -> Vec<(Key, fred::types::Value)> {
    use fred::types::Value;
    let mut f = Vec::with_capacity(2 + 6 * d.levels.len());
    f.push((
        Key::from_static_str("ts"),
        Value::Integer(d.exchange_ts_ns.div_euclid(1_000_000)),
    ));
    f.push((
        Key::from_static_str("recv_ts"),
        Value::Integer(d.recv_ts_ns.div_euclid(1_000_000)),
    ));
    for (i, l) in d.levels.iter().enumerate() {
        let n = i + 1;
        f.push((
            Key::from(format!("bid{n}")),
            Value::from(l.bid_price.to_string()),
        ));
        f.push((
            Key::from(format!("bid{n}_qty")),
            Value::from(l.bid_qty.to_string()),
        ));
        f.push((
            Key::from(format!("bid{n}_orders")),
            Value::Integer(i64::from(l.bid_orders)),
        ));
        f.push((
            Key::from(format!("ask{n}")),
            Value::from(l.ask_price.to_string()),
        ));
        f.push((
            Key::from(format!("ask{n}_qty")),
            Value::from(l.ask_qty.to_string()),
        ));
        f.push((
            Key::from(format!("ask{n}_orders")),
            Value::Integer(i64::from(l.ask_orders)),
        ));
    }
    f
}

/// The value of an instrument placeholder in a key template.
pub(crate) fn instrument_value<'a>(inst: &'a Instrument, name: &str) -> Option<&'a str> {
    match name {
        "symbol" => Some(&inst.symbol),
        "exchange" => Some(&inst.exchange),
        "segment" => inst.segment.as_deref(),
        "security_id" => inst.security_id.as_deref(),
        _ => None,
    }
}

pub(crate) fn lane_of(name: &str, lanes: usize) -> usize {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

impl Dispatcher {
    /// A dispatcher for `lanes` lanes, nothing routed yet; `lua_interval`:
    /// the bar interval the Lua engine's RSI/ATR run on, when it is the engine.
    pub(crate) fn new(config: &Config, lanes: usize, lua_interval: Option<Arc<str>>) -> Self {
        Dispatcher {
            keys: config.key_templates().clone(),
            lanes,
            routes: FastMap::default(),
            streams: Vec::new(),
            stream_index: FastMap::default(),
            dbs: config.databases.clone(),
            deadletters: FastMap::default(),
            gaps: FastMap::default(),
            skipped: 0,
            bar_keys: FastMap::default(),
            indicator_keys: FastMap::default(),
            lua_interval,
            lua_keys: FastMap::default(),
            pending: (0..lanes).map(|_| LaneBatch::default()).collect(),
            default_layout: config.profiles.default_layout,
            profiles: config.profiles.others.clone(),
            profile_keys: FastMap::default(),
            profile_streams: FastMap::default(),
            by_symbol: FastMap::default(),
            checkpoint_keys: FastMap::default(),
            owned_elsewhere: FastMap::default(),
        }
    }

    /// Refuses an instrument that would share keys with one of another
    /// exchange met earlier in this run.
    pub(crate) fn claim(&mut self, inst: &Arc<Instrument>) -> Result<(), WriterError> {
        let others = self.by_symbol.entry(inst.symbol.clone()).or_default();
        if others.iter().any(|o| Arc::ptr_eq(o, inst)) {
            return Ok(());
        }
        for other in others.iter() {
            let shared = tickwire_core::collisions::shared_keys(&self.keys, other, inst);
            if !shared.is_empty() {
                return Err(WriterError::VenueCollision(
                    tickwire_core::collisions::collision_message(other, inst, &shared),
                ));
            }
        }
        others.push(Arc::clone(inst));
        Ok(())
    }

    /// Before a chunk is routed: the instruments it meets for the first time
    /// whose last-price hash an earlier run wrote for another exchange are
    /// refused (one pipelined HGET per chunk that has newcomers).
    pub(crate) async fn check_owners(
        &mut self,
        events: &[Event],
        pools: &RedisPools,
    ) -> Result<(), WriterError> {
        if !self.default_layout {
            return Ok(());
        }
        let mut newcomers: Vec<(Key, &Arc<Instrument>)> = Vec::new();
        for e in events {
            let Event::Tick(t) = e else { continue };
            let id = ByAddress(Arc::clone(&t.instrument));
            if self.routes.contains_key(&id)
                || newcomers.iter().any(|(_, i)| Arc::ptr_eq(i, &t.instrument))
            {
                continue;
            }
            newcomers.push((self.new_route(&t.instrument).price_key, &t.instrument));
        }
        if newcomers.is_empty() {
            return Ok(());
        }
        let client = pools.client(self.dbs.get(Db::Prices), 0)?;
        let p = client.pipeline();
        for (key, _) in &newcomers {
            let _: () = p
                .hget(key.clone(), "exchange")
                .await
                .map_err(WriterError::Owner)?;
        }
        let owners = p.try_all::<Option<String>>().await;
        for ((key, inst), owner) in newcomers.iter().zip(owners) {
            if let Some(owner) = owner
                .map_err(WriterError::Owner)?
                .filter(|o| !o.eq_ignore_ascii_case(&inst.exchange))
            {
                let earlier = Instrument::new(&owner, &inst.symbol);
                // Refused where its first tick comes (see `route`): what
                // the chunk holds before it is written.
                self.owned_elsewhere.insert(
                    ByAddress(Arc::clone(inst)),
                    format!(
                        "an earlier run wrote {} for {owner}; {}",
                        String::from_utf8_lossy(key.as_bytes()),
                        tickwire_core::collisions::collision_message(
                            &earlier,
                            inst,
                            &[String::from_utf8_lossy(key.as_bytes()).into_owned()]
                        )
                    ),
                );
            }
        }
        Ok(())
    }

    pub(crate) fn route(&mut self, event: Event) -> Result<Option<usize>, WriterError> {
        if let Event::Tick(Tick { instrument, .. }) | Event::Quote(Quote { instrument, .. }) =
            &event
        {
            if !self.routes.contains_key(&ByAddress(Arc::clone(instrument))) {
                if let Some(why) = self.owned_elsewhere.get(&ByAddress(Arc::clone(instrument))) {
                    return Err(WriterError::VenueCollision(why.clone()));
                }
                self.claim(instrument)?;
            }
        }
        Ok(self.route_event(event))
    }

    pub(crate) fn route_event(&mut self, event: Event) -> Option<usize> {
        let profiled = self.route_profiles(&event);
        // Outputs the selected profiles do not name are not written; dead
        // letters and skips are the process's own bookkeeping, always kept.
        if !self.default_layout
            && !matches!(
                event,
                Event::Rejected(_) | Event::Skipped { .. } | Event::Checkpoint(_) | Event::Gap(_)
            )
        {
            return profiled;
        }
        match event {
            Event::Tick(tick) => self.route_tick(tick),
            Event::Quote(quote) => self.route_quote(quote),
            // Routed by `route_rejected` (it reads the stream); never here.
            Event::Rejected(_) => None,
            Event::Skipped { .. } => {
                self.skipped += 1;
                None
            }
            Event::FormingGone(gone) => self.route_forming_gone(gone),
            Event::Bar(update) => self.route_bar(update),
            Event::Indicator(update) => self.route_indicator(update),
            Event::Volume(update) => self.route_volume(update),
            Event::Depth(depth) => self.route_depth(depth),
            Event::Feed(feed) => self.route_feed(feed),
            // Only key profiles write the indicator set (above).
            Event::IndicatorSet(_) => None,
            Event::Checkpoint(c) => self.route_checkpoint(c),
            Event::SessionTrade(trade) => self.route_session_trade(trade),
            // Routed by `route_gap` (it reads the stream); a fill's end is
            // the state stage's, never written.
            Event::Gap(_) | Event::FillEnd(_) => None,
        }
    }
}
