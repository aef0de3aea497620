//! The metrics tickwire exports: one catalogue of names, kinds, labels and
//! help texts, used by every stage that records them, by the metrics
//! table of docs/operating.md and by the test that checks the Grafana dashboard names
//! only these. Names follow `tickwire_<name>_<unit>`, counters end in
//! `_total`; labels are low-cardinality (feed, db, stage, error_type).

/// What kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Exported as a Prometheus histogram with buckets.
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub const FRAMES_RECEIVED: &str = "tickwire_frames_received_total";
pub const TICKS_RECEIVED: &str = "tickwire_ticks_received_total";
pub const QUOTES_RECEIVED: &str = "tickwire_quotes_received_total";
pub const FRAMES_REJECTED: &str = "tickwire_frames_rejected_total";
pub const FRAMES_SKIPPED: &str = "tickwire_frames_skipped_total";
pub const TICKS_WRITTEN: &str = "tickwire_ticks_written_total";
pub const DUPLICATES: &str = "tickwire_duplicate_ticks_total";
pub const TRADES_RESENT: &str = "tickwire_trades_resent_total";
pub const DEADLETTERS_WRITTEN: &str = "tickwire_deadletters_written_total";
pub const BARS_WRITTEN: &str = "tickwire_bars_written_total";
pub const REDIS_RETRIES: &str = "tickwire_redis_retries_total";
pub const REDIS_WRITE_ERRORS: &str = "tickwire_redis_write_errors_total";
pub const REDIS_RESTARTS: &str = "tickwire_redis_restarts_total";
pub const REDIS_RESTARTS_DATA_LOST: &str = "tickwire_redis_restarts_data_lost_total";
pub const FEED_RECONNECTS: &str = "tickwire_feed_reconnects_total";
pub const FEED_UP: &str = "tickwire_feed_up";
pub const FEED_BACKLOG: &str = "tickwire_feed_backlog_frames";
pub const FEED_BACKPRESSURE: &str = "tickwire_feed_backpressure_total";
pub const FEED_DROPPED: &str = "tickwire_feed_dropped_frames_total";
pub const FEED_BACKLOG_BYTES: &str = "tickwire_feed_backlog_bytes";
pub const SPOOLED_FRAMES: &str = "tickwire_spooled_frames_total";
pub const SPOOL_BYTES: &str = "tickwire_spool_bytes";
pub const SPOOL_OLDEST_AGE: &str = "tickwire_spool_oldest_age_seconds";
pub const RECORD_DROPPED: &str = "tickwire_record_dropped_frames_total";
pub const CHANNEL_DEPTH: &str = "tickwire_channel_depth_items";
pub const BATCH_SIZE: &str = "tickwire_writer_batch_size_events";
pub const REDIS_WRITE_LATENCY: &str = "tickwire_redis_write_latency_seconds";
pub const TICK_TO_REDIS_LATENCY: &str = "tickwire_tick_to_redis_latency_seconds";
pub const START_TIME: &str = "tickwire_process_start_time_seconds";
pub const BACKFILL_TRADES: &str = "tickwire_backfill_trades_total";
pub const BACKFILL_REQUESTS: &str = "tickwire_backfill_requests_total";
pub const GAP_MISSING: &str = "tickwire_gap_missing_trades_total";

/// Every metric tickwire exports.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: FRAMES_RECEIVED,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Frames read from a live feed, or lines read from a replayed file (feed = its format's feed).",
    },
    MetricDef {
        name: TICKS_RECEIVED,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Trades decoded.",
    },
    MetricDef {
        name: QUOTES_RECEIVED,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Quote-only updates decoded (bid/ask for the last-price hash).",
    },
    MetricDef {
        name: FRAMES_REJECTED,
        kind: Kind::Counter,
        labels: &["feed", "error_type"],
        help: "Frames or lines that could not be decoded; each is dead-lettered.",
    },
    MetricDef {
        name: TRADES_RESENT,
        kind: Kind::Counter,
        labels: &[],
        help: "Trades whose venue trade id was at or below their instrument's last applied one: resent, applied to no output.",
    },
    MetricDef {
        name: FRAMES_SKIPPED,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Frames or lines that hold nothing to write: replies, pongs, depth of other venues, blank lines, CSV headers, empty pushes, quotes without bid and ask.",
    },
    MetricDef {
        name: TICKS_WRITTEN,
        kind: Kind::Counter,
        labels: &["db"],
        help: "Ticks appended to a tick stream.",
    },
    MetricDef {
        name: DUPLICATES,
        kind: Kind::Counter,
        labels: &["db"],
        help: "Ticks whose stream ID was already there (a resend or a second replay).",
    },
    MetricDef {
        name: DEADLETTERS_WRITTEN,
        kind: Kind::Counter,
        labels: &["db"],
        help: "Rejected frames appended to a dead-letter stream.",
    },
    MetricDef {
        name: BARS_WRITTEN,
        kind: Kind::Counter,
        labels: &["db"],
        help: "Closed bars appended to a bar stream.",
    },
    MetricDef {
        name: REDIS_RETRIES,
        kind: Kind::Counter,
        labels: &[],
        help: "Batches sent again after a transient Redis failure (timeout, lost connection).",
    },
    MetricDef {
        name: REDIS_RESTARTS,
        kind: Kind::Counter,
        labels: &[],
        help: "Redis restarts noticed (its run_id changed), with or without their data.",
    },
    MetricDef {
        name: REDIS_RESTARTS_DATA_LOST,
        kind: Kind::Counter,
        labels: &[],
        help: "Redis restarts that came back without what this process wrote before (no persistence).",
    },
    MetricDef {
        name: REDIS_WRITE_ERRORS,
        kind: Kind::Counter,
        labels: &["db"],
        help: "Commands Redis refused for good (wrong type and the like).",
    },
    MetricDef {
        name: FEED_RECONNECTS,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Connections of a live feed lost and dialled again.",
    },
    MetricDef {
        name: FEED_UP,
        kind: Kind::Gauge,
        labels: &["feed"],
        help: "1 while a live feed is connected and subscribed, else 0.",
    },
    MetricDef {
        name: FEED_BACKLOG,
        kind: Kind::Gauge,
        labels: &["feed"],
        help: "Frames a feed holds in memory because the parser is behind (the disk spool takes over when full).",
    },
    MetricDef {
        name: FEED_BACKPRESSURE,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Frames that found the parser's channel full and waited in the backlog.",
    },
    MetricDef {
        name: FEED_DROPPED,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Frames dropped: the backlog was full and the spool off, at spool.max_bytes or failing.",
    },
    MetricDef {
        name: SPOOLED_FRAMES,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Frames written to the disk spool because the backlog was full (or older frames waited there).",
    },
    MetricDef {
        name: SPOOL_BYTES,
        kind: Kind::Gauge,
        labels: &["feed"],
        help: "Bytes of frames waiting in a feed's disk spool.",
    },
    MetricDef {
        name: SPOOL_OLDEST_AGE,
        kind: Kind::Gauge,
        labels: &["feed"],
        help: "Age of the oldest frame waiting in a feed's spool (0 when empty).",
    },
    MetricDef {
        name: FEED_BACKLOG_BYTES,
        kind: Kind::Gauge,
        labels: &["feed"],
        help: "Bytes of the frames a feed holds in its backlog (bounded by live.max_backlog_bytes).",
    },
    MetricDef {
        name: RECORD_DROPPED,
        kind: Kind::Counter,
        labels: &[],
        help: "Frames not recorded: the recorder's queue was full, or the recorder had failed.",
    },
    MetricDef {
        name: CHANNEL_DEPTH,
        kind: Kind::Gauge,
        labels: &["stage"],
        help: "Items waiting in the channel into a stage: parser (live frames), state and writer (chunks of events).",
    },
    MetricDef {
        name: BATCH_SIZE,
        kind: Kind::Histogram,
        labels: &[],
        help: "Events in one writer lane's batch.",
    },
    MetricDef {
        name: REDIS_WRITE_LATENCY,
        kind: Kind::Histogram,
        labels: &[],
        help: "Time to write one batch's pipelines, retries included.",
    },
    MetricDef {
        name: TICK_TO_REDIS_LATENCY,
        kind: Kind::Histogram,
        labels: &[],
        help: "Live ticks: from the frame's receive time to Redis acknowledging its batch.",
    },
    MetricDef {
        name: START_TIME,
        kind: Kind::Gauge,
        labels: &[],
        help: "When the process started, Unix seconds.",
    },
    MetricDef {
        name: BACKFILL_TRADES,
        kind: Kind::Counter,
        labels: &["feed", "outcome"],
        help: "Trades of gaps fetched from a venue's history: applied (outcome applied), or come after their gap was closed (late; applied to nothing).",
    },
    MetricDef {
        name: BACKFILL_REQUESTS,
        kind: Kind::Counter,
        labels: &["feed", "status"],
        help: "Requests to a venue's trade history, by answer: 200, 429, 418, 4xx, 5xx, error (no answer), timeout.",
    },
    MetricDef {
        name: GAP_MISSING,
        kind: Kind::Counter,
        labels: &["feed"],
        help: "Trades of gaps that were not filled (the venue keeps no history, a fill's bounds or time ran out): what gaps:{feed} records as missing.",
    },
];

/// The `error_type`s a rejection can carry, by what was decoded: each list
/// is every class that source's decoder emits (tests/metrics_reference.rs
/// checks the parser emits no other); a venue's own are its
/// [`Venue::error_types`](crate::Venue::error_types).
/// `tickwire_frames_rejected_total` is exported at 0 from the start for each
/// feed and each type of its source.
pub mod error_types {
    /// tickwire tick JSON lines (`--format ticks`).
    pub const TICKS_JSON: &[&str] = &["json", "bad_value", "invalid_tick", "implausible_time"];
    /// Binance trade dumps and Tardis trade CSVs.
    pub const CSV: &[&str] = &[
        "encoding",
        "csv",
        "missing_field",
        "bad_number",
        "bad_value",
        "invalid_tick",
        "implausible_time",
    ];
    /// A recorded frame's own line (`--format frames`), before its venue
    /// decoder sees the frame.
    pub const RECORDED: &[&str] = &["json", "encoding", "unknown_feed"];

    /// Every list of the file formats, for the checks.
    pub const ALL: &[&[&str]] = &[TICKS_JSON, CSV, RECORDED];

    /// What a line of the file format named `format` (`--format` names) can
    /// be rejected for; recorded frames add their venue's types.
    pub fn of_format(format: &str) -> &'static [&'static str] {
        match format {
            "ticks" => TICKS_JSON,
            "frames" => RECORDED,
            _ => CSV,
        }
    }
}

/// Bucket bounds (seconds) of the latency histograms: 50 µs to 1 s, close
/// enough below 10 ms (50 µs steps to 500 µs, then 1-1.5-2-3-4-5-7.5) that a
/// p99 of a loopback round trip or two reads off it; what waits longer
/// (Redis down) is counted above 1 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015,
    0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
];

/// Bucket bounds of the batch size histogram (events).
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// Registers every metric's help text with the installed recorder.
pub fn describe_all() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        // Each a small fixed set: `outcome` and `status` are the backfill's
        // (applied/late; 200, 429, 418, 4xx, 5xx, error, timeout).
        let allowed_labels = ["feed", "db", "stage", "error_type", "outcome", "status"];
        for m in METRICS {
            assert!(m.name.starts_with("tickwire_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
            for l in m.labels {
                assert!(allowed_labels.contains(l), "{}: label {l}", m.name);
            }
        }
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a name listed twice");
    }
}
