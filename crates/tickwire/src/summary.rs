//! The table every run ends with.

use std::fmt::Write as _;
use std::time::Duration;

use tickwire_core::config::DbMap;
use tickwire_ingest::live::FeedSummary;
use tickwire_ingest::record::RecordSummary;
use tickwire_ingest::IngestSummary;
use tickwire_writer::WriterStats;

/// What a run read and wrote.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub ingest: IngestSummary,
    pub writer: WriterStats,
    pub state: StateCounts,
    pub elapsed: Duration,
    pub databases: DbMap,
    /// Written to a Redis Cluster: the DBs are namespaces there.
    pub cluster: bool,
    /// `replay` or `run`.
    pub mode: &'static str,
    /// Live feeds (`run`): per feed, frames and connection history.
    pub feeds: Vec<FeedSummary>,
    /// `run --record`: what the recorder wrote.
    pub record: Option<RecordSummary>,
    /// The stage whose failure stopped the run (`writer`, `recorder`...),
    /// if one did: the counts are what was done before.
    pub stopped_by: Option<&'static str>,
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
        let failed;
        let status = match self.stopped_by {
            Some(stage) => {
                failed = format!("STOPPED: the {stage} failed");
                failed.as_str()
            }
            None if i.stopped_early => "stopped early (signal)",
            None => "finished",
        };
        let _ = writeln!(
            s,
            "{} {status} in {:.2} s",
            self.mode,
            self.elapsed.as_secs_f64()
        );
        let live = !self.feeds.is_empty() || self.mode == "run";
        // A live run reads frames from feeds, a replay lines from files.
        let (sources, items) = if live {
            (("feeds", self.feeds.len() as u64), "frames read")
        } else {
            (("files read", i.files), "lines read")
        };
        let rows: [(&str, u64); 15] = [
            sources,
            (items, i.lines),
            ("ticks read", i.ticks),
            ("ticks written", w.ticks_written),
            ("quotes read", i.quotes),
            ("duplicates", w.duplicates),
            ("resent trades", self.state.resent),
            ("rejected", i.rejected),
            ("dead-lettered", w.deadlettered + w.deadletter_duplicates),
            ("skipped", i.skipped),
            ("outside phases", self.state.dropped_outside),
            ("bars written", w.bars_written),
            ("bars there", w.bar_duplicates),
            ("indicator writes", w.indicator_writes),
            ("write errors", w.write_errors),
        ];
        for (name, v) in rows {
            let _ = writeln!(s, "  {name:<16}{v:>12}");
        }
        let optional: [(&str, u64); 12] = [
            // Gaps in the feeds' trades, and what filled them.
            ("gaps", self.state.gaps),
            ("gap trades filled", self.state.gap_filled),
            ("gap trades missing", self.state.gap_missing),
            ("held for fills", self.state.gap_held),
            // Lines that held several items (an OKX push of three trades):
            // lines read + these = ticks + quotes + rejected + skipped.
            ("more per line", i.extra),
            // What the writer's lanes sent (a script call is one command).
            ("redis commands", w.commands),
            ("frames dropped", self.frames_dropped()),
            ("redis retries", w.retries),
            ("redis restarts", w.redis_restarts),
            ("data lost there", w.redis_restarts_lost),
            ("files cut short", i.truncated),
            ("empty files", i.empty),
        ];
        for (name, v) in optional {
            if v > 0 {
                let _ = writeln!(s, "  {name:<16}{v:>12}");
            }
        }
        if w.redis_wait_ms > 0 {
            let _ = writeln!(
                s,
                "  {:<16}{:>12.1} s",
                "waited for redis",
                w.redis_wait_ms as f64 / 1000.0
            );
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
            "  {:>3}  {:<28}{:>8}{:>16}{:>15}{:>13}",
            "db",
            if self.cluster { "namespace" } else { "purpose" },
            "keys",
            "stream entries",
            "already there",
            "hash writes"
        );
        for (db, d) in &w.per_db {
            // Past the cap of distinct keys counted: "at least".
            let keys = if d.keys_capped() {
                format!(">={}", d.distinct_keys())
            } else {
                d.distinct_keys().to_string()
            };
            let _ = writeln!(
                s,
                "  {db:>3}  {:<28}{:>8}{:>16}{:>15}{:>13}",
                if self.cluster {
                    tickwire_core::config::namespace_of(&self.databases, *db)
                } else {
                    self.databases.names_of(*db).join(",")
                },
                keys,
                d.stream_entries,
                d.stream_entries_there,
                d.hash_writes
            );
        }
        for line in self.missing() {
            let _ = writeln!(s, "  NOT WRITTEN: {line}");
        }
        s
    }

    /// Of a run a failed stage stopped: ticks read that reached neither
    /// their stream nor a count of their own (written, already there,
    /// refused, resent, outside phases). "Up to": those of the batch being
    /// written when the writer gave up may be in Redis. 0 for a run that
    /// was not stopped by a failure (every tick read was handed on).
    pub fn ticks_not_written(&self) -> u64 {
        if self.stopped_by.is_none() {
            return 0;
        }
        let w = &self.writer;
        self.ingest.ticks.saturating_sub(
            w.ticks_written
                + w.duplicates
                + w.ticks_failed
                + self.state.resent
                + self.state.dropped_outside,
        )
    }

    /// Of a run a failed stage stopped: rejections read that reached no
    /// dead-letter stream (written, already there or refused). 0 for a run
    /// that was not stopped by a failure.
    pub fn rejected_not_dead_lettered(&self) -> u64 {
        if self.stopped_by.is_none() {
            return 0;
        }
        let w = &self.writer;
        self.ingest
            .rejected
            .saturating_sub(w.deadlettered + w.deadletter_duplicates + w.deadletters_failed)
    }

    /// Frames the live feeds dropped (their backlog full): read, never written.
    pub fn frames_dropped(&self) -> u64 {
        self.feeds.iter().map(|f| f.dropped).sum()
    }

    /// What was read but is not in Redis, one line per kind ("3,204 ticks
    /// not written (Redis refused them)"); empty when everything read was
    /// written or deliberately skipped. A run with any of these exits non-zero.
    pub fn missing(&self) -> Vec<String> {
        let w = &self.writer;
        let mut out = Vec::new();
        let refused =
            |n: u64, what: &str| format!("{} {what} not written (refused by Redis)", thousands(n));
        if w.ticks_failed > 0 {
            out.push(refused(w.ticks_failed, "ticks"));
        }
        if w.bars_failed > 0 {
            out.push(refused(w.bars_failed, "closed bars"));
        }
        if w.deadletters_failed > 0 {
            out.push(refused(w.deadletters_failed, "dead letters"));
        }
        let other = w.write_errors.saturating_sub(w.not_written());
        if other > 0 {
            out.push(format!(
                "{} other writes (last prices, indicators, volume) refused by Redis",
                thousands(other)
            ));
        }
        let unwritten = self.ticks_not_written();
        if unwritten > 0 {
            out.push(format!(
                "up to {} ticks read not written (the run stopped before they landed)",
                thousands(unwritten)
            ));
        }
        let undead = self.rejected_not_dead_lettered();
        if undead > 0 {
            out.push(format!(
                "up to {} rejected lines or frames not dead-lettered (the run stopped before they landed)",
                thousands(undead)
            ));
        }
        if w.redis_restarts_lost > 0 && self.mode == "replay" {
            out.push(format!(
                "what was written before Redis restarted without its data ({} restart{}) is \
                 gone from Redis: run the replay again",
                w.redis_restarts_lost,
                if w.redis_restarts_lost == 1 { "" } else { "s" }
            ));
        }
        let dropped = self.frames_dropped();
        if dropped > 0 {
            out.push(format!(
                "{} frames dropped by the live feeds (backlog full and the spool full or off), never decoded",
                thousands(dropped)
            ));
        }
        out
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut s = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// One line per live feed.
pub fn render_feeds(feeds: &[FeedSummary]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:<16}{:>10}{:>12}{:>11}{:>10}{:>14}{:>10}{:>9}",
        "feed", "frames", "bytes", "reconnects", "idle", "backpressure", "spooled", "dropped"
    );
    for f in feeds {
        let _ = writeln!(
            s,
            "  {:<16}{:>10}{:>12}{:>11}{:>10}{:>14}{:>10}{:>9}",
            f.name,
            f.frames,
            f.bytes,
            f.reconnects,
            f.idle_timeouts,
            f.backpressure,
            f.spooled,
            f.dropped
        );
        if f.inherited > 0 {
            let _ = writeln!(
                s,
                "  {:<16}{:>10} frames a previous process spooled, handed on now",
                "", f.inherited
            );
        }
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
    if r.dropped > 0 {
        let _ = writeln!(
            s,
            "  recorder behind: {} frames dropped from the recording (queue full)",
            r.dropped
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  RECORDING FAILED: {e}; {} frames not recorded", r.lost);
    }
    s
}

/// `tickwire health` for people.
pub fn render_health(r: &tickwire_writer::health::HealthReport) -> String {
    let mut s = String::new();
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = writeln!(s, "health: {status}");
    if let Some(redis) = &r.redis {
        let _ = writeln!(
            s,
            "  redis {} at {}: ping {:.2} ms, memory {} (maxmemory {})",
            redis.version,
            redis.url,
            redis.ping_ms,
            redis.used_memory_human,
            if redis.maxmemory == 0 {
                "none".to_string()
            } else {
                redis.maxmemory.to_string()
            }
        );
        for n in &r.nodes {
            let state = if n.reachable {
                format!("memory {}, {} keys", n.used_memory_human, n.keys)
            } else {
                "UNREACHABLE".to_string()
            };
            let _ = writeln!(s, "  node {} {} ({}): {state}", n.addr, n.role, n.flags);
        }
        let cluster = !r.nodes.is_empty();
        let _ = writeln!(
            s,
            "  {:>3}  {:<28}{:>10}{:>16}",
            "db",
            if cluster { "namespace" } else { "purpose" },
            "keys",
            "no TTL/sampled"
        );
        for d in &r.databases {
            let _ = writeln!(
                s,
                "  {:>3}  {:<28}{:>10}{:>16}",
                d.db,
                d.purpose,
                d.keys,
                format!("{}/{}", d.without_ttl, d.sampled)
            );
        }
        let entries: u64 = r.streams.iter().map(|st| st.length).sum();
        let _ = writeln!(
            s,
            "  tick streams: {} ({} entries in those listed)",
            r.tick_streams, entries
        );
        for st in r.streams.iter().filter(|st| !st.groups.is_empty()) {
            for g in &st.groups {
                let lag = g.lag.map_or("?".to_string(), |l| l.to_string());
                let _ = writeln!(
                    s,
                    "    {} group {}: lag {lag}, pending {}, consumers {}",
                    st.key, g.name, g.pending, g.consumers
                );
            }
        }
        if r.heartbeats.is_empty() {
            let _ = writeln!(s, "  heartbeat: none");
        }
        for (key, hb) in &r.heartbeats {
            let get = |k: &str| hb.fields.get(k).map_or("?", String::as_str);
            let _ = writeln!(
                s,
                "  heartbeat {key}: {:.1} s old (pid {}, version {}, ticks {})",
                hb.age_ms as f64 / 1000.0,
                get("pid"),
                get("version"),
                get("ticks_total")
            );
        }
        for (feed, status) in &r.feeds {
            let _ = writeln!(s, "  feed {feed}: {status}");
        }
    }
    for p in &r.problems {
        let _ = writeln!(s, "  ! {p}");
    }
    s
}

/// What the state stage counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Why the stage stopped early, if it did.
    pub failed: Option<String>,
    /// Ticks outside every phase of their exchange, dropped by policy.
    pub dropped_outside: u64,
    /// Ticks without quantity: written, but no bar, VWAP or volume.
    pub without_qty: u64,
    /// Trades whose venue id was already applied: resent, applied to nothing.
    pub resent: u64,
    /// Gaps found in the feeds' trades (live), the trades of them applied
    /// from the venues' history, and those that were not.
    pub gaps: u64,
    pub gap_filled: u64,
    pub gap_missing: u64,
    /// Live trades that waited while their instrument's gap was filled
    /// (a trade taken again after one gap and held by the next counts twice).
    pub gap_held: u64,
}

impl StateCounts {
    /// The counts `stage` keeps.
    pub(crate) fn of(stage: &tickwire_indicators::StateStage) -> Self {
        Self {
            dropped_outside: stage.dropped_outside,
            without_qty: stage.ticks_without_qty,
            resent: stage.duplicate_trades,
            failed: None,
            gaps: 0,
            gap_filled: 0,
            gap_missing: 0,
            gap_held: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(mode: &'static str) -> RunSummary {
        RunSummary {
            ingest: IngestSummary::default(),
            writer: WriterStats::default(),
            state: StateCounts::default(),
            elapsed: Duration::from_secs(1),
            databases: DbMap::default(),
            cluster: false,
            mode,
            feeds: Vec::new(),
            record: None,
            stopped_by: None,
        }
    }

    #[test]
    fn what_did_not_land_is_named_with_its_count() {
        let mut s = summary("replay");
        assert!(s.missing().is_empty(), "nothing read, nothing missing");
        s.writer.write_errors = 3_210;
        s.writer.ticks_failed = 3_204;
        s.writer.bars_failed = 5;
        let missing = s.missing();
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(
            missing[0].starts_with("3,204 ticks not written"),
            "{missing:?}"
        );
        assert!(
            missing[1].starts_with("5 closed bars not written"),
            "{missing:?}"
        );
        assert!(missing[2].starts_with("1 other writes"), "{missing:?}");
        assert!(s.render().contains("NOT WRITTEN: 3,204 ticks not written"));

        let mut live = summary("run");
        live.feeds = vec![FeedSummary {
            name: "okx".into(),
            frames: 1_144_153,
            dropped: 1_144_153,
            ..Default::default()
        }];
        assert_eq!(
            live.missing(),
            ["1,144,153 frames dropped by the live feeds (backlog full and the spool full or off), never decoded"]
        );
        let shown = live.render();
        assert!(shown.contains("frames dropped"), "{shown}");
        assert!(
            shown.contains("feeds")
                && shown.contains("frames read")
                && !shown.contains("files read"),
            "{shown}"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_033_685), "1,033,685");
    }
}
