//! The Grafana dashboard and the README's metrics table against the metrics
//! the binary exports (`tickwire_core::telemetry::METRICS`).

use std::collections::BTreeSet;

use tickwire_core::telemetry::{Kind, METRICS};

/// Every `tickwire_*` identifier in a PromQL expression.
fn names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tickwire_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The exported metric a series name belongs to (histograms export
/// `_bucket`, `_sum` and `_count` series).
fn exported(series: &str) -> Option<&'static str> {
    METRICS
        .iter()
        .find(|m| {
            series == m.name
                || (m.kind == Kind::Histogram
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| series.strip_suffix(s) == Some(m.name)))
        })
        .map(|m| m.name)
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/grafana/tickwire-dashboard.json"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    let mut used = BTreeSet::new();
    let mut exprs = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            exprs += 1;
            let names = names_in(expr);
            assert!(!names.is_empty(), "{expr} names no tickwire metric");
            for n in names {
                let m = exported(&n).unwrap_or_else(|| {
                    panic!(
                        "panel {:?} queries {n}, which tickwire does not export",
                        panel["title"]
                    )
                });
                used.insert(m);
            }
        }
    }
    assert!(exprs >= 20, "{exprs} queries");
    // The operator's questions: throughput, latency quantiles, errors, reconnects, backlog.
    for needed in [
        "tickwire_ticks_received_total",
        "tickwire_ticks_written_total",
        "tickwire_redis_write_latency_seconds",
        "tickwire_tick_to_redis_latency_seconds",
        "tickwire_frames_rejected_total",
        "tickwire_feed_reconnects_total",
        "tickwire_feed_backlog_frames",
        "tickwire_channel_depth_items",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

#[test]
fn the_readme_lists_every_metric() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for m in METRICS {
        let row = format!("| `{}` |", m.name);
        assert!(
            readme.contains(&row),
            "README has no table row for {}",
            m.name
        );
    }
    // And names nothing the binary does not export.
    for line in readme.lines().filter(|l| l.starts_with("| `tickwire_")) {
        for n in names_in(line) {
            assert!(
                exported(&n).is_some(),
                "README lists {n}, which is not exported"
            );
        }
    }
}
