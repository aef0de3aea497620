//! The parser side's metrics: what each feed's frames decoded into.

use std::collections::HashMap;

use metrics::Counter;
use tickwire_core::telemetry as t;
use tickwire_core::Event;

/// Counter handles per feed, made on first use (a handful of feeds), and
/// counts not yet handed to them.
#[derive(Default)]
pub(crate) struct EventMetrics {
    by_feed: HashMap<Box<str>, [Counter; 4]>,
    /// frames, ticks, quotes, skipped since the last flush.
    pending: [u64; 4],
}

impl EventMetrics {
    /// Counts one frame (or line) and what it decoded into; rejections at once.
    pub fn tally(&mut self, events: &[Event]) {
        self.pending[0] += 1;
        for e in events {
            match e {
                Event::Tick(_) => self.pending[1] += 1,
                Event::Quote(_) => self.pending[2] += 1,
                Event::Skipped { .. } => self.pending[3] += 1,
                Event::Rejected(r) => metrics::counter!(
                    t::FRAMES_REJECTED,
                    "feed" => r.feed.to_string(),
                    "error_type" => r.error_type
                )
                .increment(1),
                _ => {}
            }
        }
    }

    /// Hands the tallied counts to `feed`'s counters.
    pub fn flush(&mut self, feed: &str) {
        let counts = std::mem::take(&mut self.pending);
        self.record(feed, counts[0], &[]);
        if let Some(h) = self.by_feed.get(feed) {
            for i in 1..4 {
                if counts[i] > 0 {
                    h[i].increment(counts[i]);
                }
            }
        }
    }

    /// Counts `frames` read and the events they decoded into, for `feed`.
    pub fn record(&mut self, feed: &str, frames: u64, events: &[Event]) {
        let handles = match self.by_feed.get(feed) {
            Some(h) => h,
            None => {
                let l = [("feed", feed.to_string())];
                let h = [
                    metrics::counter!(t::FRAMES_RECEIVED, &l),
                    metrics::counter!(t::TICKS_RECEIVED, &l),
                    metrics::counter!(t::QUOTES_RECEIVED, &l),
                    metrics::counter!(t::FRAMES_SKIPPED, &l),
                ];
                self.by_feed.entry(feed.into()).or_insert(h)
            }
        };
        if frames > 0 {
            handles[0].increment(frames);
        }
        let (mut ticks, mut quotes, mut skipped) = (0, 0, 0);
        for e in events {
            match e {
                Event::Tick(_) => ticks += 1,
                Event::Quote(_) => quotes += 1,
                Event::Skipped { .. } => skipped += 1,
                // Rare: labelled by the feed they name and their class.
                Event::Rejected(r) => metrics::counter!(
                    t::FRAMES_REJECTED,
                    "feed" => r.feed.to_string(),
                    "error_type" => r.error_type
                )
                .increment(1),
                _ => {}
            }
        }
        for (h, n) in [(1, ticks), (2, quotes), (3, skipped)] {
            if n > 0 {
                handles[h].increment(n);
            }
        }
    }
}
