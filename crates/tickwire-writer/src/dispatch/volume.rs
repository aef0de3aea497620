//! Routing of volume: bucket and session totals, the day's profile, the
//! session indexes, and a bucket's ratio and alert keys. Planned in
//! `plan::volume`.

use fred::types::Key;
use tickwire_core::Db;

use crate::dispatch::{instrument_value, lane_of, Dispatcher};
use crate::plan::volume::{RatioKeys, VolumeWrite};
use tickwire_core::session;

impl Dispatcher {
    /// A bucket's or session's volume, with the keys its ratio and alert need.
    pub(crate) fn route_volume(&mut self, update: tickwire_core::VolumeUpdate) -> Option<usize> {
        let inst = &update.instrument;
        let hh_mm = update
            .bucket
            .map(|m| (session::two_digits(m / 60), session::two_digits(m % 60)));
        let template = match update.bucket {
            Some(_) => &self.keys.volume_bucket,
            None => &self.keys.volume_session,
        };
        let p = self.keys.prefix_of(Db::CumulativeVolume);
        let key = Key::from(template.render(p, |n| match n {
            "session" => Some(&*update.session),
            "HH" => hh_mm.as_ref().map(|(h, _)| h.as_str()),
            "MM" => hh_mm.as_ref().map(|(_, m)| m.as_str()),
            _ => instrument_value(inst, n),
        }));
        let symbol_only = |n: &str| instrument_value(inst, n);
        let with_session = |n: &str| match n {
            "session" => Some(&*update.session),
            _ => instrument_value(inst, n),
        };
        let (profile, sessions, symbols) = match &hh_mm {
            Some((h, m)) => (
                Some((
                    Key::from(self.keys.volume_profile.render(p, with_session)),
                    [h.as_str(), ":", m.as_str()].concat(),
                )),
                None,
                None,
            ),
            None => (
                None,
                Some(Key::from(self.keys.volume_sessions.render(p, symbol_only))),
                Some(Key::from(self.keys.volume_symbols.render(p, symbol_only))),
            ),
        };
        let lane = lane_of(&inst.symbol, self.lanes);
        let ratio = hh_mm.as_ref().map(|(h, m)| {
            let bucket = |n: &str| match n {
                "session" => Some(&*update.session),
                "HH" => Some(h.as_str()),
                "MM" => Some(m.as_str()),
                _ => instrument_value(inst, n),
            };
            let ticks = self.keys.prefix_of(Db::ContinuousMarket);
            let alerts = self.keys.prefix_of(Db::Alerts);
            RatioKeys {
                baseline: Key::from(self.keys.volume_baseline.render(p, bucket)),
                ratio: Key::from(self.keys.indicator.render(ticks, |n| match n {
                    "name" => Some("volume_ratio"),
                    _ => instrument_value(inst, n),
                })),
                marker: Key::from(self.keys.volume_alert_marker.render(alerts, bucket)),
                stream: Key::from(self.keys.volume_alerts.render(alerts, |_| None)),
            }
        });
        self.pending[lane].volumes.push(VolumeWrite {
            key,
            update,
            profile,
            sessions,
            symbols,
            ratio,
        });
        Some(lane)
    }
}
