//! The binary on a real Redis Cluster: two named processes with disjoint
//! instruments replay side by side, each with its own heartbeat; `health`
//! lists both and every node, exits 0 while the cluster is whole and 1 with
//! a dead node named.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;
use tickwire_testkit::prelude::*;

/// `n` trades of `symbol` a second apart from 10:00 IST on 2024-01-02.
fn trades(symbol: &str, n: i64, price: f64) -> String {
    let t0 = 1_704_169_800_000i64;
    (0..n)
        .map(|i| {
            format!(
                "{{\"exchange\":\"NSE\",\"symbol\":\"{symbol}\",\"ts\":{},\"ltp\":{},\"qty\":{}}}\n",
                t0 + i * 1_000,
                price + (i % 7) as f64 * 0.05,
                1 + i % 3
            )
        })
        .collect()
}

/// `tickwire replay` as process `instance` of `n` trades of `symbol` into
/// `url`, started (its config file beside the input in `dir`).
fn replay_as(
    dir: &std::path::Path,
    url: &str,
    instance: &str,
    symbol: &str,
    n: i64,
) -> (std::path::PathBuf, std::process::Child) {
    let cfg = config_file(
        dir,
        &format!("{instance}.toml"),
        &format!("[process]\ninstance = \"{instance}\"\n"),
    );
    let file = dir.join(format!("{instance}.jsonl"));
    std::fs::write(&file, trades(symbol, n, 600.0)).unwrap();
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", url, "replay"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (cfg, child)
}

#[test]
fn two_instances_share_a_cluster_and_health_sees_both_and_every_node() {
    let mut cluster = cluster();
    let url = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for (instance, symbol) in [("east", "SBIN"), ("west", "TCS")] {
        let (cfg, child) = replay_as(dir.path(), &url, instance, symbol, 400);
        children.push((instance, symbol, cfg, child));
    }
    let mut configs = Vec::new();
    for (instance, symbol, cfg, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{instance}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(summary_value(&stdout, "ticks written"), 400, "{stdout}");
        // The summary names the cluster's namespaces.
        assert!(stdout.contains("namespace"), "{stdout}");
        assert!(stdout.contains("continuous_market"), "{stdout}");
        configs.push((instance, symbol, cfg));
    }

    // Side by side: each instrument's stream whole, each process's own heartbeat.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use fred::prelude::*;
        let c = cluster.client().await.unwrap();
        for (instance, symbol, _) in &configs {
            let len: u64 = c
                .xlen(format!("continuous_market:ticks:{{{symbol}}}"))
                .await
                .unwrap();
            assert_eq!(len, 400, "{symbol}");
            let hb: std::collections::HashMap<String, String> = c
                .hgetall(format!("system:tickwire:heartbeat:{{{instance}}}"))
                .await
                .unwrap();
            assert_eq!(
                hb.get("ticks_total").map(String::as_str),
                Some("400"),
                "{instance}: {hb:?}"
            );
        }
        let unnamed: u64 = c.exists("system:tickwire:heartbeat").await.unwrap();
        assert_eq!(unnamed, 0, "no process wrote the unnamed heartbeat");
    });

    // Healthy: every node answers, both heartbeats are listed (fresh: the
    // replays have just ended).
    let (code, v) = health_json(
        tickwire!()
            .arg("--config")
            .arg(&configs[0].2)
            .args(["--redis", &url]),
    );
    assert_eq!(code, Some(0), "{v:#}");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{v:#}");
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles.iter().filter(|r| **r == "primary").count(), 3);
    assert!(nodes.iter().all(|n| n["reachable"] == true));
    let beats: BTreeSet<&str> = v["heartbeats"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        beats,
        BTreeSet::from([
            "system:tickwire:heartbeat:{east}",
            "system:tickwire:heartbeat:{west}"
        ])
    );
    assert_eq!(v["heartbeat"]["fields"]["ticks_total"], "400");
    let ns = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["purpose"] == "continuous_market")
        .unwrap();
    assert!(ns["keys"].as_u64().unwrap() >= 4, "{ns}");
    assert_eq!(ns["without_ttl"], 0);
    let streams: BTreeSet<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert!(
        streams.contains("continuous_market:ticks:{SBIN}"),
        "{streams:?}"
    );

    // `redis.cluster = true` with one node's plain URL finds the same cluster.
    let flag = config_file(
        dir.path(),
        "flag.toml",
        "[redis]\ncluster = true\n[process]\ninstance = \"west\"\n",
    );
    let one_node = format!("redis://127.0.0.1:{}", cluster.ports()[0]);
    let (code, v) = health_json(
        tickwire!()
            .arg("--config")
            .arg(&flag)
            .args(["--redis", &one_node]),
    );
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(v["heartbeat"]["fields"]["ticks_total"], "400");

    // A replica dies: the cluster still serves, health names the node and says 1.
    let replica = cluster
        .live_ports()
        .into_iter()
        .find(|p| !cluster.primaries().contains(p))
        .unwrap();
    cluster.kill(replica);
    let (code, v) = health_json(
        tickwire!()
            .arg("--config")
            .arg(&configs[0].2)
            .args(["--redis", &url]),
    );
    assert_eq!(code, Some(1), "{v:#}");
    let problems = v["problems"].to_string();
    assert!(
        problems.contains(&format!("127.0.0.1:{replica}")),
        "the dead node is named: {problems}"
    );
    let (out, text, _) = run(tickwire!()
        .arg("--config")
        .arg(&configs[0].2)
        .args(["--redis", &url, "health"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains(&format!("node 127.0.0.1:{replica}")),
        "{text}"
    );
    assert!(text.contains("UNREACHABLE"), "{text}");
}

/// The same two named processes on one Redis: each its own heartbeat in the
/// system DB, both listed by health.
#[test]
fn two_instances_share_one_redis() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for (instance, symbol) in [("east", "SBIN"), ("west", "TCS")] {
        children.push(replay_as(dir.path(), &server.url(), instance, symbol, 300).1);
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use fred::prelude::*;
        let db0 = server.client(0).await.unwrap();
        for instance in ["east", "west"] {
            let hb: std::collections::HashMap<String, String> = db0
                .hgetall(format!("tickwire:heartbeat:{instance}"))
                .await
                .unwrap();
            assert_eq!(
                hb.get("ticks_total").map(String::as_str),
                Some("300"),
                "{instance}"
            );
        }
        let db4 = server.client(4).await.unwrap();
        for symbol in ["SBIN", "TCS"] {
            let len: u64 = db4.xlen(format!("ticks:{symbol}")).await.unwrap();
            assert_eq!(len, 300);
        }
    });
    // A config without an instance sees both and no unnamed process.
    let (code, v) = health_json(tickwire!().args(["--redis", &server.url()]));
    assert_eq!(code, Some(0), "{v:#}");
    let beats: BTreeSet<&str> = v["heartbeats"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        beats,
        BTreeSet::from(["tickwire:heartbeat:east", "tickwire:heartbeat:west"])
    );
    assert!(v["nodes"].as_array().unwrap().is_empty());
}

/// `tickwire run` on a cluster: a live Binance feed's trades all land in
/// their namespaced streams once, the feed's status key says connected, and
/// SIGTERM drains and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_writes_a_feed_into_a_cluster() {
    use fred::prelude::*;
    use tickwire_testkit::ws_server::{TradeFeed, WsServer};
    let cluster = cluster();
    let feed = WsServer::trades(TradeFeed {
        symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
        trades: 1_000,
        every: std::time::Duration::from_millis(2),
        resend: 0,
        lead: std::time::Duration::ZERO,
        last_ahead: std::time::Duration::ZERO,
        first_id: 1_000,
        ..TradeFeed::binance()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "live.toml",
        &feed_toml(
            "binance",
            "binance",
            &feed.url("/stream"),
            &["BTCUSDT", "ETHUSDT"],
            &["trade"],
        ),
    );
    let log = dir.path().join("run.log");
    let child = start_run(tickwire!(), &cfg, &cluster.url(), &log);
    let c = cluster.client().await.unwrap();
    let lens = || async {
        let mut n = 0u64;
        for s in ["BTCUSDT", "ETHUSDT"] {
            let len: u64 = c
                .xlen(format!("continuous_market:ticks:{{{s}}}"))
                .await
                .unwrap_or(0);
            n += len;
        }
        n
    };
    assert!(
        poll_until(Duration::from_secs(30), || async { lens().await >= 2_000 }).await,
        "not every trade landed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let status: Option<String> = c.get("system:feed:{binance}:status").await.unwrap();
    assert_eq!(status.as_deref(), Some("connected"));
    let (code, stdout, _) = terminate(child);
    assert_eq!(
        code,
        Some(0),
        "{stdout}{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(lens().await, 2_000, "every trade once");
    assert!(stdout.contains("namespace"), "{stdout}");
}
