//! What an operator sees of a running tickwire: `/metrics` scraped over HTTP
//! during a replay and checked against what landed in Redis, the heartbeat,
//! `tickwire health`, and log lines free of credentials.

use tickwire_testkit::prelude::*;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// 50 ticks within a second (one of them malformed), then one two minutes
/// later: paced at 1x, the replay writes the 50 and then waits.
fn paced_file(dir: &Path) -> std::path::PathBuf {
    let t0 = 1_704_169_800_000i64; // 2024-01-02 10:00 IST
    let mut body = String::new();
    for i in 0..50 {
        let symbol = ["SBIN", "TCS"][i % 2];
        body += &format!(
            "{{\"exchange\":\"NSE\",\"symbol\":\"{symbol}\",\"ts\":{},\"ltp\":{},\"qty\":1}}\n",
            t0 + i as i64 * 10,
            600.0 + i as f64 * 0.05
        );
        if i == 20 {
            body += "{\"exchange\":\"NSE\",\"symbol\":\n";
        }
    }
    body += &format!(
        "{{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":{},\"ltp\":601,\"qty\":1}}\n",
        t0 + 120_000
    );
    let path = dir.join("paced.jsonl");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn metrics_during_a_replay_match_what_landed_and_the_heartbeat_beats() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(
        dir.path(),
        "ops.toml",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n[writer]\nflush_interval_ms = 5\n"),
    );
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "replay", "--speed", "1"])
        .arg(paced_file(dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    wait_for(Duration::from_secs(20), "50 ticks in Redis", || {
        let n: u64 = ["SBIN", "TCS"]
            .iter()
            .map(|s| {
                redis_cli(&server, 4, &["XLEN", &format!("ticks:{s}")])
                    .parse::<u64>()
                    .unwrap_or(0)
            })
            .sum();
        n == 50
    });
    // The heartbeat has caught up with the writer once a beat has passed.
    wait_for(Duration::from_secs(5), "the heartbeat's totals", || {
        redis_cli(&server, 0, &["HGET", "tickwire:heartbeat", "ticks_total"]) == "50"
    });
    let m = scrape(port);
    let hb: Vec<String> = redis_cli(&server, 0, &["HGETALL", "tickwire:heartbeat"])
        .lines()
        .map(str::to_string)
        .collect();
    let hb: HashMap<&str, &str> = hb
        .chunks(2)
        .map(|kv| (kv[0].as_str(), kv[1].as_str()))
        .collect();
    let ttl: i64 = redis_cli(&server, 0, &["TTL", "tickwire:heartbeat"])
        .parse()
        .unwrap();
    let (code, stdout, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    // Counters equal what Redis holds.
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {m:#?}"))
    };
    assert_eq!(get("tickwire_ticks_written_total{db=\"4\"}"), 50.0);
    assert_eq!(
        get("tickwire_ticks_received_total{feed=\"tickwire\"}"),
        50.0
    );
    assert_eq!(
        get("tickwire_frames_received_total{feed=\"tickwire\"}"),
        51.0
    );
    assert_eq!(
        get("tickwire_frames_rejected_total{feed=\"tickwire\",error_type=\"json\"}"),
        1.0
    );
    assert_eq!(redis_cli(&server, 0, &["XLEN", "deadletter:tickwire"]), "1");
    assert_eq!(get("tickwire_deadletters_written_total{db=\"0\"}"), 1.0);
    // Real histograms: buckets, a count and a sum.
    for h in [
        "tickwire_redis_write_latency_seconds",
        "tickwire_writer_batch_size_events",
    ] {
        let buckets = m
            .keys()
            .filter(|k| k.starts_with(&format!("{h}_bucket{{")))
            .count();
        assert!(buckets >= 10, "{h} has {buckets} buckets");
        assert!(get(&format!("{h}_bucket{{le=\"+Inf\"}}")) >= 1.0);
        assert!(get(&format!("{h}_count")) >= 1.0);
    }
    assert!(get("tickwire_process_start_time_seconds") > 1.7e9);
    // Every series scraped belongs to a metric of the catalogue (docs/operating.md
    // table and the dashboard are checked against the same list).
    for series in m.keys() {
        let base = series.split('{').next().unwrap_or(series);
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| base.strip_suffix(s))
            .filter(|b| {
                tickwire_core::telemetry::METRICS
                    .iter()
                    .any(|d| d.name == *b)
            })
            .unwrap_or(base);
        assert!(
            tickwire_core::telemetry::METRICS
                .iter()
                .any(|d| d.name == base),
            "{series} is exported but not in the catalogue"
        );
    }
    assert!(
        m.contains_key("tickwire_channel_depth_items{stage=\"writer\"}"),
        "{m:#?}"
    );

    assert_eq!(hb["pid"], pid);
    assert_eq!(hb["ticks_total"], "50");
    assert_eq!(hb["last_tick_ts"], "1704169800490");
    assert_eq!(hb["version"], env!("CARGO_PKG_VERSION"));
    assert!((1..=5).contains(&ttl), "heartbeat TTL {ttl}");
}

#[test]
fn health_says_healthy_degraded_or_unreachable_with_its_exit_code() {
    let server = redis();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    let mut body = String::new();
    for i in 0..30 {
        body += &format!(
            "{{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":{},\"ltp\":600.5,\"qty\":1}}\n",
            1_704_169_800_000i64 + i * 1_000
        );
    }
    std::fs::write(&file, body).unwrap();
    let replay = tickwire!()
        .args(["--redis", &url, "replay"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(replay.status.success());
    // A consumer that has read nothing: the whole stream is its lag.
    redis_cli(
        &server,
        4,
        &["XGROUP", "CREATE", "ticks:SBIN", "strategy", "0"],
    );

    // Healthy: right after the replay its heartbeat is fresh.
    let (code, v) = health_json(tickwire!().args(["--redis", &url]));
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["status"], "healthy");
    assert_eq!(
        v["redis"]["version"].as_str().map(|s| s.is_empty()),
        Some(false)
    );
    let db4 = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["db"] == 4)
        .unwrap();
    assert_eq!(db4["without_ttl"], 0);
    assert!(db4["keys"].as_u64().unwrap() >= 1);
    let stream = &v["streams"][0];
    assert_eq!(
        (stream["key"].as_str(), stream["length"].as_u64()),
        (Some("ticks:SBIN"), Some(30))
    );
    assert_eq!(stream["groups"][0]["name"], "strategy");
    assert_eq!(stream["groups"][0]["lag"], 30);
    assert_eq!(v["heartbeat"]["fields"]["ticks_total"], "30");

    // Degraded: a key without a TTL where every key must expire, and a lagging group.
    redis_cli(&server, 2, &["SET", "stray", "1"]);
    let (code, v) = health_json(tickwire!().args(["--redis", &url]));
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["status"], "degraded");
    let db2 = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["db"] == 2)
        .unwrap();
    assert_eq!(db2["examples"], serde_json::json!(["stray"]));
    let problems = v["problems"].to_string();
    assert!(problems.contains("stray"), "{problems}");
    let out = tickwire!()
        .args(["--redis", &url, "health", "--max-lag", "10"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.starts_with("health: degraded"), "{text}");
    assert!(
        text.contains("group strategy of ticks:SBIN is 30 entries behind"),
        "{text}"
    );

    // Unreachable: nothing listens there.
    let nowhere = format!("redis://user:hunter2@127.0.0.1:{}", free_port());
    let (code, v) = health_json(tickwire!().args(["--redis", &nowhere]));
    assert_eq!(code, Some(2), "{v:#}");
    assert_eq!(v["status"], "unreachable");
    assert!(!v.to_string().contains("hunter2"), "{v}");
}

#[test]
fn no_log_line_carries_the_redis_password() {
    let server = redis();
    let password = "pw-Zq81-secret";
    redis_cli(&server, 0, &["CONFIG", "SET", "requirepass", password]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "log.toml",
        "[log]\nformat = \"json\"\nlevel = \"debug\"\n[metrics]\nenabled = false\n",
    );
    let file = paced_file(dir.path());
    let with_password = format!("redis://:{password}@127.0.0.1:{}", server.port());
    let ok = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &with_password, "replay"])
        .arg(&file)
        .output()
        .unwrap();
    let wrong = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args([
            "--redis",
            &format!("redis://:{password}-wrong@127.0.0.1:{}", server.port()),
            "replay",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(wrong.status.code(), Some(1));
    let mut lines = 0;
    for out in [&ok, &wrong] {
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains(password), "the password leaked:\n{text}");
        }
        // Log lines are JSON objects, as configured.
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if line.starts_with('{') {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(v["level"].is_string(), "{line}");
                lines += 1;
            }
        }
    }
    assert!(lines > 10, "debug logging wrote {lines} JSON lines");
    let wrong_err = String::from_utf8_lossy(&wrong.stderr);
    assert!(wrong_err.contains("redis://:***@127.0.0.1"), "{wrong_err}");
}

#[test]
fn replay_prints_progress_lines_when_stderr_is_not_a_terminal() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "p.toml",
        "[log]\nprogress_interval_ms = 200\n[metrics]\nenabled = false\n",
    );
    // Two minutes of recorded time at 80x: about 1.5 s.
    let out = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "replay", "--speed", "80"])
        .arg(paced_file(dir.path()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("replay: files "))
        .collect();
    assert!(lines.len() >= 3, "{stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("ticks/s") && l.contains("ETA")),
        "{stderr}"
    );
    assert!(lines[0].starts_with("replay: files 0/1"), "{stderr}");
    // The run still ends with its summary table.
    assert!(stdout.starts_with("replay finished"), "{stdout}");
}

#[test]
fn a_live_run_exports_feed_state_and_tick_latency() {
    use tickwire_testkit::ws_server::{Step, WsServer};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trade = |id: u64| {
        Step::Text(format!(
            r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"{id}","px":"42000.5","sz":"0.1","side":"buy","ts":"{}"}}]}}"#,
            1_704_067_200_000 + id
        ))
    };
    let ws = rt
        .block_on(WsServer::start(
            vec![
                vec![Step::ExpectText, trade(1), trade(2), Step::Drop],
                vec![
                    Step::ExpectText,
                    trade(3),
                    Step::Text("garbage".into()),
                    Step::Hold,
                ],
            ],
            true,
        ))
        .unwrap();
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(dir.path(), "live.toml", &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n[live]\nbackoff_initial_ms = 20\nbackoff_max_ms = 50\n\
             [[feeds]]\nname = \"okx\"\nvenue = \"okx\"\nurl = \"{}\"\nsymbols = [\"BTC-USDT\"]\n",
            ws.url("/ws/v5/public")
        ));
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(15), "3 ticks in Redis", || {
        redis_cli(&server, 4, &["XLEN", "ticks:BTC-USDT"]) == "3"
    });
    let mut m = HashMap::new();
    wait_for(
        Duration::from_secs(5),
        "the metrics to show all 3 ticks written and the bad frame",
        || {
            m = scrape(port);
            m.get("tickwire_ticks_written_total{db=\"4\"}") == Some(&3.0)
            // The garbage frame follows the third trade.
            && m.get("tickwire_frames_rejected_total{feed=\"okx\",error_type=\"json\"}")
                == Some(&1.0)
        },
    );
    let status = redis_cli(&server, 0, &["GET", "feed:okx:status"]);
    let (code, stdout, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {m:#?}"))
    };
    assert_eq!(status, "connected");
    assert_eq!(get("tickwire_feed_up{feed=\"okx\"}"), 1.0);
    assert_eq!(get("tickwire_feed_reconnects_total{feed=\"okx\"}"), 1.0);
    assert_eq!(get("tickwire_ticks_received_total{feed=\"okx\"}"), 3.0);
    assert!(get("tickwire_frames_received_total{feed=\"okx\"}") >= 4.0);
    assert_eq!(
        get("tickwire_frames_rejected_total{feed=\"okx\",error_type=\"json\"}"),
        1.0
    );
    assert_eq!(get("tickwire_tick_to_redis_latency_seconds_count"), 3.0);
    assert!(m.contains_key("tickwire_tick_to_redis_latency_seconds_bucket{le=\"0.01\"}"));
    assert!(
        m.contains_key("tickwire_channel_depth_items{stage=\"parser\"}"),
        "{m:#?}"
    );
    assert_eq!(get("tickwire_feed_backlog_frames{feed=\"okx\"}"), 0.0);
}

/// The counters that count something going wrong; a healthy run shows each at 0.
const ERROR_COUNTERS: &[&str] = &[
    "tickwire_frames_rejected_total",
    "tickwire_duplicate_ticks_total",
    "tickwire_deadletters_written_total",
    "tickwire_redis_retries_total",
    "tickwire_redis_write_errors_total",
];

/// The series of metric `name` in a scrape (histograms: their `_bucket` etc.).
fn series_of<'a>(m: &'a HashMap<String, f64>, name: &str) -> Vec<(&'a String, f64)> {
    m.iter()
        .filter(|(k, _)| {
            let base = k.split('{').next().unwrap_or(k);
            base == name
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| base.strip_suffix(s) == Some(name))
        })
        .map(|(k, v)| (k, *v))
        .collect()
}

/// Every metric the Grafana dashboard's queries name.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/grafana/tickwire-dashboard.json"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("tickwire_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let n = &tail[..end];
                let n = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| n.strip_suffix(s))
                    .unwrap_or(n);
                names.insert(n.to_string());
                rest = &tail[end..];
            }
        }
    }
    assert!(names.len() >= 15, "{names:?}");
    names
}

#[test]
fn a_healthy_replay_exports_every_error_counter_at_zero() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(
        dir.path(),
        "zero.toml",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n[writer]\nflush_interval_ms = 5\n"),
    );
    // Two good ticks now, one two minutes later: at 1x the replay waits.
    let t0 = 1_704_169_800_000i64;
    let line = |ts: i64| {
        format!(
            "{{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":{ts},\"ltp\":600.5,\"qty\":1}}\n"
        )
    };
    let file = dir.path().join("healthy.jsonl");
    std::fs::write(&file, line(t0) + &line(t0 + 10) + &line(t0 + 120_000)).unwrap();
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "replay", "--speed", "1"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut m = HashMap::new();
    wait_for(
        Duration::from_secs(20),
        "2 ticks written and their latency recorded",
        || {
            m = try_scrape(port);
            m.get("tickwire_ticks_written_total{db=\"4\"}") == Some(&2.0)
                && m.get("tickwire_tick_to_redis_latency_seconds_count") == Some(&2.0)
        },
    );
    let (code, stdout, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // A paced replay measures each tick from its release by the pacer (the
    // recording's times are in 2024): a moment, not months.
    let latency = m["tickwire_tick_to_redis_latency_seconds_sum"];
    assert!(
        (0.0..2.0).contains(&latency),
        "2 ticks took {latency} s from release to Redis"
    );
    for name in ERROR_COUNTERS {
        let series = series_of(&m, name);
        assert!(!series.is_empty(), "{name} is not exported: {m:#?}");
        for (s, v) in series {
            assert_eq!(v, 0.0, "{s} on a healthy replay");
        }
    }
    // Labelled as the dashboard sums them: by the replay's feed and every
    // error type of its format, by each DB the writer writes.
    for error_type in tickwire_core::telemetry::error_types::TICKS_JSON {
        let s = format!(
            "tickwire_frames_rejected_total{{feed=\"tickwire\",error_type=\"{error_type}\"}}"
        );
        assert_eq!(m.get(&s), Some(&0.0), "{s}");
    }
    for s in [
        "tickwire_duplicate_ticks_total{db=\"4\"}",
        "tickwire_redis_write_errors_total{db=\"4\"}",
        "tickwire_deadletters_written_total{db=\"0\"}",
        "tickwire_redis_retries_total",
        "tickwire_bars_written_total{db=\"4\"}",
        "tickwire_quotes_received_total{feed=\"tickwire\"}",
    ] {
        assert_eq!(m.get(s), Some(&0.0), "{s}: {m:#?}");
    }
    // Every metric the dashboard queries has a series, except those of live
    // connections and their spools (a replay has neither).
    let live_only = [
        "tickwire_feed_up",
        "tickwire_feed_reconnects_total",
        "tickwire_feed_dropped_frames_total",
        "tickwire_feed_backpressure_total",
        "tickwire_feed_backlog_frames",
        "tickwire_spool_bytes",
        "tickwire_spool_oldest_age_seconds",
    ];
    for name in dashboard_metrics() {
        if !live_only.contains(&name.as_str()) {
            assert!(!series_of(&m, &name).is_empty(), "{name} has no series");
        }
    }
}

#[test]
fn a_healthy_live_run_gives_every_dashboard_query_a_series() {
    use tickwire_testkit::ws_server::{Step, WsServer};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trade = Step::Text(
        r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":"42000.5","sz":"0.1","side":"buy","ts":"1704067200001"}]}"#
            .into(),
    );
    let ws = rt
        .block_on(WsServer::start(
            vec![vec![Step::ExpectText, trade, Step::Hold]],
            true,
        ))
        .unwrap();
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(
        dir.path(),
        "live.toml",
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\
             [[feeds]]\nname = \"okx\"\nvenue = \"okx\"\nurl = \"{}\"\nsymbols = [\"BTC-USDT\"]\n",
            ws.url("/ws/v5/public")
        ),
    );
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut m = HashMap::new();
    wait_for(Duration::from_secs(15), "the trade written", || {
        m = try_scrape(port);
        m.get("tickwire_ticks_written_total{db=\"4\"}") == Some(&1.0)
    });
    let (code, stdout, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    for name in dashboard_metrics() {
        assert!(
            !series_of(&m, &name).is_empty(),
            "{name} has no series: {m:#?}"
        );
    }
    let mut errors = ERROR_COUNTERS.to_vec();
    errors.extend([
        "tickwire_feed_reconnects_total",
        "tickwire_feed_dropped_frames_total",
    ]);
    for name in errors {
        let series = series_of(&m, name);
        assert!(!series.is_empty(), "{name} is not exported");
        for (s, v) in series {
            assert_eq!(v, 0.0, "{s} on a healthy live run");
        }
    }
    let okx = tickwire_parse::VENUES
        .get("okx")
        .expect("okx is registered");
    for error_type in okx.error_types() {
        let s =
            format!("tickwire_frames_rejected_total{{feed=\"okx\",error_type=\"{error_type}\"}}");
        assert_eq!(m.get(&s), Some(&0.0), "{s}");
    }
    assert_eq!(m.get("tickwire_feed_up{feed=\"okx\"}"), Some(&1.0));
}
