//! The Grafana dashboard and the metrics table of docs/operating.md against the metrics
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
fn the_operating_page_lists_every_metric() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operating.md")).unwrap();
    for m in METRICS {
        let row = format!("| `{}` |", m.name);
        assert!(
            page.contains(&row),
            "docs/operating.md has no table row for {}",
            m.name
        );
    }
    // And names nothing the binary does not export.
    for line in page.lines().filter(|l| l.starts_with("| `tickwire_")) {
        for n in names_in(line) {
            assert!(
                exported(&n).is_some(),
                "docs/operating.md lists {n}, which is not exported"
            );
        }
    }
}

/// The string literals that open the arguments of a rejection in `src`
/// (`FrameError::new("x"`, `reject("x"`, `Rejected::new(feed, "x"`, `Err(("x"`),
/// test modules left out.
fn rejection_literals(src: &str) -> Vec<String> {
    let code = src.split("#[cfg(test)]").next().unwrap_or(src);
    let mut out = Vec::new();
    for opener in [
        "FrameError::new(",
        "reject(",
        "Rejected::new(",
        "Err((",
        "map_err(|_| (",
    ] {
        let mut rest = code;
        while let Some(at) = rest.find(opener) {
            rest = &rest[at + opener.len()..];
            // Up to two arguments in: `Rejected::new(feed, "json", ..)`.
            let args: String = rest.chars().take_while(|c| *c != ')').collect();
            for arg in args.split(',').take(2) {
                let arg = arg.trim();
                if let Some(lit) = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
                    if !lit.is_empty() && lit.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                        out.push(lit.to_string());
                    }
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn every_error_type_the_parser_emits_is_in_the_catalogue() {
    use tickwire_core::telemetry::error_types;
    let known: BTreeSet<&str> = error_types::ALL
        .iter()
        .copied()
        .chain(tickwire_parse::VENUES.iter().map(|v| v.error_types()))
        .flat_map(|l| l.iter().copied())
        .collect();
    // Feed names passed first to the CSV decoders' `reject(feed, type, ..)`.
    let feeds = ["binance", "tardis"];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/tickwire-parse/src");
    let mut files = vec![std::path::PathBuf::from(dir)];
    let mut found = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                files.push(e.unwrap().path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let src = std::fs::read_to_string(&path).unwrap();
            for lit in rejection_literals(&src) {
                if !feeds.contains(&lit.as_str()) {
                    found.insert((lit, path.display().to_string()));
                }
            }
        }
    }
    // The scan sees the decoders (a scan that finds nothing checks nothing).
    assert!(found.len() >= 10, "{found:?}");
    for (lit, file) in &found {
        assert!(
            known.contains(lit.as_str()),
            "{file} rejects with error_type {lit:?}, which telemetry::error_types does not list \
             (so it is not exported at 0 from the start)"
        );
    }
    // And the catalogue lists nothing the parser never emits.
    let emitted: BTreeSet<&str> = found.iter().map(|(l, _)| l.as_str()).collect();
    for k in &known {
        assert!(
            emitted.contains(k),
            "error_types lists {k:?}, which no decoder emits"
        );
    }
}
