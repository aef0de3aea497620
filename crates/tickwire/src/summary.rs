//! The table every run ends with.

use std::fmt::Write as _;
use std::time::Duration;

use tickwire_core::config::DbMap;
use tickwire_ingest::live::FeedSummary;
use tickwire_ingest::record::RecordSummary;
use tickwire_ingest::IngestSummary;
use tickwire_writer::WriterStats;

use crate::replay::StateCounts;

/// What a run read and wrote.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub ingest: IngestSummary,
    pub writer: WriterStats,
    pub state: StateCounts,
    pub elapsed: Duration,
    pub databases: DbMap,
    /// `replay` or `run`.
    pub mode: &'static str,
    /// Live feeds (`run`): per feed, frames and connection history.
    pub feeds: Vec<FeedSummary>,
    /// `run --record`: what the recorder wrote.
    pub record: Option<RecordSummary>,
}

impl RunSummary {
    /// Ticks read per second of the whole run.
    pub fn ticks_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ingest.ticks as f64 / secs
        } else {
            0.0
        }
    }

    pub fn render(&self) -> String {
        let i = &self.ingest;
        let w = &self.writer;
        let mut s = String::new();
        let status = if i.stopped_early {
            "stopped early (signal)"
        } else {
            "finished"
        };
        let _ = writeln!(
            s,
            "{} {status} in {:.2} s",
            self.mode,
            self.elapsed.as_secs_f64()
        );
        let rows: [(&str, u64); 13] = [
            ("files read", i.files),
            ("lines read", i.lines),
            ("ticks read", i.ticks),
            ("ticks written", w.ticks_written),
            ("quotes read", i.quotes),
            ("duplicates", w.duplicates),
            ("rejected", i.rejected),
            ("dead-lettered", w.deadlettered + w.deadletter_duplicates),
            ("skipped", i.skipped),
            ("outside phases", self.state.dropped_outside),
            ("bars written", w.bars_written),
            ("indicator writes", w.indicator_writes),
            ("write errors", w.write_errors),
        ];
        for (name, v) in rows {
            let _ = writeln!(s, "  {name:<16}{v:>12}");
        }
        if i.truncated > 0 {
            let _ = writeln!(s, "  {:<16}{:>12}", "files cut short", i.truncated);
        }
        let _ = writeln!(s, "  {:<16}{:>12.0}", "ticks/s", self.ticks_per_sec());
        if !self.feeds.is_empty() {
            s.push_str(&render_feeds(&self.feeds));
        }
        if let Some(r) = &self.record {
            s.push_str(&render_record(r));
        }
        let _ = writeln!(
            s,
            "  {:>3}  {:<28}{:>8}{:>16}{:>13}",
            "db", "purpose", "keys", "stream entries", "hash writes"
        );
        for (db, d) in &w.per_db {
            let _ = writeln!(
                s,
                "  {db:>3}  {:<28}{:>8}{:>16}{:>13}",
                self.databases.names_of(*db).join(","),
                d.keys.len(),
                d.stream_entries,
                d.hash_writes
            );
        }
        s
    }
}

/// One line per live feed.
pub fn render_feeds(feeds: &[FeedSummary]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:<16}{:>10}{:>12}{:>11}{:>10}{:>14}{:>9}",
        "feed", "frames", "bytes", "reconnects", "idle", "backpressure", "dropped"
    );
    for f in feeds {
        let _ = writeln!(
            s,
            "  {:<16}{:>10}{:>12}{:>11}{:>10}{:>14}{:>9}",
            f.name, f.frames, f.bytes, f.reconnects, f.idle_timeouts, f.backpressure, f.dropped
        );
    }
    s
}

/// What the recorder wrote.
pub fn render_record(r: &RecordSummary) -> String {
    let mut s = format!(
        "  recorded {} frames ({} bytes) in {} file(s)\n",
        r.frames,
        r.bytes,
        r.files.len()
    );
    for f in &r.files {
        let _ = writeln!(s, "    {}", f.display());
    }
    s
}
