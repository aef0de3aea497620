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
        self.count(events);
    }

    /// Counts `frames` of `feed` and what they decoded into, now.
    pub fn record(&mut self, feed: &str, frames: u64, events: &[Event]) {
        self.count(events);
        self.pending[0] += frames;
        self.flush(feed);
    }

    /// Hands the tallied counts to `feed`'s counters.
    pub fn flush(&mut self, feed: &str) {
        let counts = std::mem::take(&mut self.pending);
        // Looked up by &str: a feed's handles are made (and its name copied) once.
        if !self.by_feed.contains_key(feed) {
            let l = [("feed", feed.to_string())];
            let h = [
                metrics::counter!(t::FRAMES_RECEIVED, &l),
                metrics::counter!(t::TICKS_RECEIVED, &l),
                metrics::counter!(t::QUOTES_RECEIVED, &l),
                metrics::counter!(t::FRAMES_SKIPPED, &l),
            ];
            self.by_feed.insert(feed.into(), h);
        }
        let Some(handles) = self.by_feed.get(feed) else {
            return;
        };
        for (h, n) in handles.iter().zip(counts) {
            if n > 0 {
                h.increment(n);
            }
        }
    }

    fn count(&mut self, events: &[Event]) {
        for e in events {
            match e {
                Event::Tick(_) => self.pending[1] += 1,
                Event::Quote(_) => self.pending[2] += 1,
                Event::Skipped { .. } => self.pending[3] += 1,
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
    }
}
