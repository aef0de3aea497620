//! Routing of the writes of the selected key profiles other than `default`.
//! Planned in `plan::profiles`.

use std::sync::Arc;

use fred::types::Key;
use tickwire_core::{ByAddress, Event};

use crate::dispatch::{instrument_value, lane_of, Dispatcher};
use crate::profile;

impl Dispatcher {
    /// The writes of the selected profiles other than `default`.
    pub(crate) fn route_profiles(&mut self, event: &Event) -> Option<usize> {
        if self.profiles.is_empty() {
            return None;
        }
        let mut lane = None;
        for (i, p) in self.profiles.iter().enumerate() {
            // Rendered only when a key is not cached yet (not per event).
            let prefix = |db: u8| format!("{}{}", self.keys.prefix(db), p.namespace);
            // Channels are not keys: no cluster namespace.
            let channel = || format!("{}{}", self.keys.base_prefix(), p.namespace);
            match event {
                Event::Tick(t) => {
                    if let Some(out) = &p.tick_stream {
                        let id = (i, 3, ByAddress(Arc::clone(&t.instrument)), None);
                        let (key, _) = self
                            .profile_keys
                            .entry(id)
                            .or_insert_with(|| {
                                let v = |n: &str| instrument_value(&t.instrument, n);
                                (Key::from(out.key.render(&prefix(out.db), v)), None)
                            })
                            .clone();
                        let seq = self.profile_streams.entry(key.clone()).or_default();
                        // The tick's own stream ID (the state stage's, which
                        // a new process continues from the checkpoint), as in
                        // the default layout's stream: a new trade goes after
                        // what an earlier process wrote there, a resend lands
                        // on its entry. A key two instruments share counts on
                        // from the last ID given instead.
                        let entry_id = match t.stream_id {
                            Some(id) if seq.last().is_none_or(|last| id > last) => {
                                seq.follow(id);
                                id
                            }
                            _ => seq.next(t.exchange_ts_ms()),
                        };
                        let l = lane_of(&t.instrument.symbol, self.lanes);
                        self.pending[l]
                            .profile
                            .push(profile::tick_entry(out, key, entry_id, t));
                        lane = Some(l);
                    }
                    let Some(out) = &p.last_price else { continue };
                    let id = (i, 0, ByAddress(Arc::clone(&t.instrument)), None);
                    let (key, publish) = self
                        .profile_keys
                        .entry(id)
                        .or_insert_with(|| {
                            let v = |n: &str| instrument_value(&t.instrument, n);
                            (
                                Key::from(out.key.render(&prefix(out.db), v)),
                                out.publish
                                    .as_ref()
                                    .map(|c| Key::from(c.render(&channel(), v))),
                            )
                        })
                        .clone();
                    let l = lane_of(&t.instrument.symbol, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::tick(out, key, publish, t));
                    lane = Some(l);
                }
                Event::Bar(u) if u.closed => {
                    let Some(out) = &p.bars else { continue };
                    if out.interval.as_deref().is_some_and(|i| i != &*u.interval) {
                        continue;
                    }
                    let id = (
                        i,
                        1,
                        ByAddress(Arc::clone(&u.instrument)),
                        Some(Arc::clone(&u.interval)),
                    );
                    let (key, _) = self
                        .profile_keys
                        .entry(id)
                        .or_insert_with(|| {
                            let minutes = tickwire_core::config::interval_ms(&u.interval)
                                .map(|ms| (ms / 60_000).to_string())
                                .unwrap_or_default();
                            let key = out.key.render(&prefix(out.db), |n| match n {
                                "interval" => Some(&*u.interval),
                                "interval_minutes" => Some(minutes.as_str()),
                                _ => instrument_value(&u.instrument, n),
                            });
                            (Key::from(key), None)
                        })
                        .clone();
                    let l = lane_of(&u.instrument.symbol, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::bar(out, key, &u.instrument, &u.bar));
                    lane = Some(l);
                }
                Event::IndicatorSet(set) => {
                    let Some(out) = &p.indicators else { continue };
                    if out.interval.as_deref().is_some_and(|i| i != &*set.interval) {
                        continue;
                    }
                    let id = (
                        i,
                        2,
                        ByAddress(Arc::clone(&set.instrument)),
                        Some(Arc::clone(&set.interval)),
                    );
                    let (key, publish) = self
                        .profile_keys
                        .entry(id)
                        .or_insert_with(|| {
                            let v = |n: &str| match n {
                                "interval" => Some(&*set.interval),
                                _ => instrument_value(&set.instrument, n),
                            };
                            (
                                Key::from(out.key.render(&prefix(out.db), v)),
                                out.publish
                                    .as_ref()
                                    .map(|c| Key::from(c.render(&channel(), v))),
                            )
                        })
                        .clone();
                    let l = lane_of(&set.instrument.symbol, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::indicators(out, key, publish, set));
                    lane = Some(l);
                }
                Event::Feed(f) => {
                    let Some(out) = &p.feed_status else { continue };
                    let key = Key::from(out.key.render(&prefix(out.db), |n| match n {
                        "feed" => Some(&*f.feed),
                        "exchange" => Some(f.exchange),
                        _ => None,
                    }));
                    let l = lane_of(&f.feed, self.lanes);
                    self.pending[l]
                        .profile
                        .push(profile::feed_status(out, key, f.status.as_str()));
                    lane = Some(l);
                }
                _ => {}
            }
        }
        lane
    }
}
