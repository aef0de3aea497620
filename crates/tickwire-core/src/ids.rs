//! Deterministic stream entry IDs: `{exchange_ts_ms}-{seq}`.

/// The ID sequence of one stream. `seq` counts entries within one millisecond;
/// a time that steps back is clamped to the last one, so IDs only increase.
/// The same input in the same order always yields the same IDs, which is what
/// makes a second replay add nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamIdSeq {
    last: Option<(u64, u64)>,
}

impl StreamIdSeq {
    /// The next ID for an entry stamped `ms` (epoch milliseconds).
    pub fn next(&mut self, ms: i64) -> (u64, u64) {
        let ms = u64::try_from(ms).unwrap_or(0);
        let id = match self.last {
            Some((last_ms, last_seq)) if ms <= last_ms => (last_ms, last_seq + 1),
            // 0-0 is not a valid stream ID.
            _ if ms == 0 => (0, 1),
            _ => (ms, 0),
        };
        self.last = Some(id);
        id
    }
}

impl StreamIdSeq {
    /// The last ID given.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.last
    }

    /// Takes `id` as the last one given (an ID assigned elsewhere), so the
    /// next one comes after it.
    pub fn follow(&mut self, id: (u64, u64)) {
        if self.last.is_none_or(|last| id > last) {
            self.last = Some(id);
        }
    }
}

/// Formats an ID the way Redis does.
pub fn format_id((ms, seq): (u64, u64)) -> String {
    format!("{ms}-{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_a_millisecond_and_clamps_steps_back() {
        let mut s = StreamIdSeq::default();
        assert_eq!(s.next(1000), (1000, 0));
        assert_eq!(s.next(1000), (1000, 1));
        assert_eq!(s.next(999), (1000, 2));
        assert_eq!(s.next(1001), (1001, 0));
        let mut z = StreamIdSeq::default();
        assert_eq!(z.next(0), (0, 1));
        assert_eq!(z.next(-5), (0, 2));
        assert_eq!(format_id((5, 2)), "5-2");
    }
}
