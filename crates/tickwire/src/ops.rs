//! What operators see: log lines (text or JSON), the Prometheus endpoint,
//! the channel-depth gauges and the heartbeat around a run.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tickwire_core::config::{LogConfig, MetricsConfig};
use tickwire_core::telemetry as t;
use tickwire_core::Config;
use tickwire_writer::heartbeat::Heartbeat;
use tickwire_writer::{RedisPools, WriterProgress};
use tokio::sync::mpsc;

/// Log lines to standard error, as `[log]` says; `RUST_LOG` overrides the level.
pub fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    // Err only when a subscriber is already set (tests calling twice).
    let _ = if log.format == "json" {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// Serves `/metrics` on `[metrics] listen` (histograms with buckets, upkeep
/// running). A port already taken is logged and the run goes on without it.
pub fn start_metrics(m: &MetricsConfig) -> bool {
    if !m.enabled {
        return false;
    }
    let Ok(addr) = m.listen.parse::<std::net::SocketAddr>() else {
        // Validated config: it parses.
        return false;
    };
    let mut builder = PrometheusBuilder::new()
        .with_http_listener(addr)
        .upkeep_timeout(Duration::from_secs(5));
    for (name, buckets) in [
        (t::REDIS_WRITE_LATENCY, t::LATENCY_BUCKETS),
        (t::TICK_TO_REDIS_LATENCY, t::LATENCY_BUCKETS),
        (t::BATCH_SIZE, t::BATCH_BUCKETS),
    ] {
        builder = match builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "metrics not served");
                return false;
            }
        };
    }
    match builder.install() {
        Ok(()) => {
            t::describe_all();
            let start = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
            metrics::gauge!(t::START_TIME).set(start);
            tracing::info!(%addr, "serving Prometheus metrics on /metrics");
            true
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "metrics not served");
            false
        }
    }
}

/// Which feeds a run's metrics are labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `tickwire run`: the configured live feeds.
    Live,
    /// `tickwire replay`: each file format's feed, and the configured feeds
    /// (recordings name them).
    Replay,
}

/// Exports every counter of a known label set at 0, with the gauges and
/// histograms a dashboard reads, so a healthy run's error panels show 0
/// rather than "No data": per writer DB (written, duplicates, dead letters,
/// bars, write errors), Redis retries, and per feed its frame counters and
/// its rejections by every `error_type` its source can produce. Call after
/// the recorder is installed (handles taken before stay no-ops).
pub fn export_at_zero(config: &Config, kind: RunKind) {
    for db in tickwire_writer::writer_dbs(config) {
        let db = db.to_string();
        for name in [
            t::TICKS_WRITTEN,
            t::DUPLICATES,
            t::DEADLETTERS_WRITTEN,
            t::BARS_WRITTEN,
            t::REDIS_WRITE_ERRORS,
        ] {
            metrics::counter!(name, "db" => db.clone()).increment(0);
        }
    }
    metrics::counter!(t::REDIS_RETRIES).increment(0);
    metrics::counter!(t::TRADES_RESENT).increment(0);
    for name in [
        t::BATCH_SIZE,
        t::REDIS_WRITE_LATENCY,
        t::TICK_TO_REDIS_LATENCY,
    ] {
        let _ = metrics::histogram!(name);
    }
    let mut stages = vec!["state", "writer"];
    // (feed, the error types of its source, whether it is a live connection)
    let mut feeds: Vec<(String, Vec<&'static str>, bool)> = Vec::new();
    for f in &config.feeds {
        let Some(venue) = tickwire_parse::VENUES.of(f) else {
            continue;
        };
        let mut types = venue.error_types().to_vec();
        if kind == RunKind::Replay {
            types.extend(t::error_types::RECORDED);
        }
        feeds.push((f.name.clone(), types, kind == RunKind::Live));
    }
    match kind {
        RunKind::Live => {
            stages.push("parser");
            metrics::counter!(t::RECORD_DROPPED).increment(0);
        }
        RunKind::Replay => {
            for format in tickwire_parse::Format::ALL {
                let types = t::error_types::of_format(format.name()).to_vec();
                feeds.push((format.default_feed().to_string(), types, false));
            }
        }
    }
    for stage in stages {
        metrics::gauge!(t::CHANNEL_DEPTH, "stage" => stage).set(0.0);
    }
    for (feed, mut types, live) in feeds {
        let l = [("feed", feed.clone())];
        for name in [
            t::FRAMES_RECEIVED,
            t::TICKS_RECEIVED,
            t::QUOTES_RECEIVED,
            t::FRAMES_SKIPPED,
        ] {
            metrics::counter!(name, &l).increment(0);
        }
        types.sort_unstable();
        types.dedup();
        for error_type in types {
            metrics::counter!(t::FRAMES_REJECTED, "feed" => feed.clone(), "error_type" => error_type)
                .increment(0);
        }
        if live {
            for name in [t::FEED_RECONNECTS, t::FEED_BACKPRESSURE, t::FEED_DROPPED] {
                metrics::counter!(name, &l).increment(0);
            }
            metrics::gauge!(t::FEED_UP, &l).set(0.0);
            metrics::gauge!(t::FEED_BACKLOG, &l).set(0.0);
            metrics::gauge!(t::FEED_BACKLOG_BYTES, &l).set(0.0);
        }
    }
}

/// How many items wait in a stage's input channel; None once it closed.
pub type Depth = Box<dyn Fn() -> Option<usize> + Send>;

/// The [`Depth`] of the channel `weak` sends into (it is not kept open).
pub fn depth<T: Send + 'static>(weak: mpsc::WeakSender<T>) -> Depth {
    Box::new(move || weak.upgrade().map(|tx| tx.max_capacity() - tx.capacity()))
}

/// Samples how many items wait in each stage's input channel, every 500 ms,
/// until they all closed or this is dropped.
pub struct ChannelGauges {
    task: tokio::task::JoinHandle<()>,
}

impl ChannelGauges {
    pub fn start(stages: Vec<(&'static str, Depth)>) -> ChannelGauges {
        let stages: Vec<_> = stages
            .into_iter()
            .map(|(stage, depth)| (metrics::gauge!(t::CHANNEL_DEPTH, "stage" => stage), depth))
            .collect();
        let task = tokio::spawn(async move {
            loop {
                let mut open = 0;
                for (gauge, depth) in &stages {
                    if let Some(n) = depth() {
                        gauge.set(n as f64);
                        open += 1;
                    }
                }
                if open == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        ChannelGauges { task }
    }
}

impl Drop for ChannelGauges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The heartbeat of a run, or nothing if it cannot start (logged).
pub fn start_heartbeat(
    config: &Config,
    pools: &Arc<RedisPools>,
    progress: &Arc<WriterProgress>,
) -> Option<Heartbeat> {
    let started_ms = process_start_ms();
    match Heartbeat::start(config, Arc::clone(pools), Arc::clone(progress), started_ms) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "no heartbeat");
            None
        }
    }
}

/// When this process started (epoch ms): the first time this is asked.
pub fn process_start_ms() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| jiff::Timestamp::now().as_millisecond())
}
