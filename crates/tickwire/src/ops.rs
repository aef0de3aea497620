//! What operators see: log lines (text or JSON), the Prometheus endpoint,
//! the channel-depth gauges and the heartbeat around a run.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tickwire_core::config::{LogConfig, MetricsConfig};
use tickwire_core::telemetry as t;
use tickwire_core::{Config, Event};
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

/// Samples how many chunks wait in each stage's input channel, every 500 ms,
/// without keeping the channels open.
pub struct ChannelGauges {
    task: tokio::task::JoinHandle<()>,
}

impl ChannelGauges {
    pub fn start(stages: Vec<(&'static str, &mpsc::Sender<Vec<Event>>)>) -> ChannelGauges {
        let stages: Vec<_> = stages
            .into_iter()
            .map(|(stage, tx)| {
                (
                    metrics::gauge!(t::CHANNEL_DEPTH, "stage" => stage),
                    tx.downgrade(),
                )
            })
            .collect();
        let task = tokio::spawn(async move {
            loop {
                let mut open = 0;
                for (gauge, weak) in &stages {
                    if let Some(tx) = weak.upgrade() {
                        gauge.set((tx.max_capacity() - tx.capacity()) as f64);
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
