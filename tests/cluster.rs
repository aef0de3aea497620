//! Redis Cluster: a replay into a real 3-primary, 3-replica cluster writes
//! what the same replay writes into one Redis, under the documented
//! namespaced keys, every key of an instrument in one slot.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use tickwire_core::config::{namespace_of, DbMap, Overrides};
use tickwire_core::Config;
use tickwire_testkit::prelude::*;
use tickwire_testkit::synth::{write_ticks, SynthSpec};
use tickwire_testkit::RedisCluster;

fn cluster_config(cluster: &RedisCluster, extra_toml: &str) -> Config {
    Config::from_toml(
        extra_toml,
        &Overrides {
            redis_url: Some(cluster.url()),
            ..Default::default()
        },
        tickwire_parse::VENUES,
    )
    .expect("test config is valid")
}

/// A cluster key as the single-Redis key it stands for: (namespace, key
/// without the hash tag's braces), `prefix` (`--prefix`) staying in front.
/// The alert marker's leading tag (the alerts stream's name) goes with its
/// braces.
fn unplaced_after(key: &str, prefix: &str) -> (String, String) {
    let key = key.strip_prefix(prefix).expect("the prefix first");
    let (ns, rest) = key.split_once(':').expect("a namespace");
    let plain = match rest.strip_prefix('{') {
        Some(tagged) => tagged.split_once("}:").expect("a closed tag").1.to_string(),
        None => rest.replacen('{', "", 1).replacen('}', "", 1),
    };
    (ns.to_string(), format!("{prefix}{plain}"))
}

/// Every key of one Redis by (namespace of its DB, key): what a cluster's
/// keys stand for.
async fn by_namespace(
    single: &tickwire_testkit::RedisServer,
) -> BTreeMap<(String, String), String> {
    let dbs: Vec<u8> = (0..16).collect();
    snapshot(single, &dbs)
        .await
        .into_iter()
        .map(|(db, key, content)| ((namespace_of(&DbMap::default(), db), key), content))
        .collect()
}

/// The cluster's keys (after `prefix`) as the single-Redis keys they stand for.
fn unplaced_all(placed: &[(String, String)], prefix: &str) -> BTreeMap<(String, String), String> {
    placed
        .iter()
        .map(|(k, c)| (unplaced_after(k, prefix), c.clone()))
        .collect()
}

/// History of `instruments` over three sessions, then a fourth session
/// after the baselines: files to replay in that order.
fn inputs(dir: &std::path::Path, instruments: usize) -> (PathBuf, PathBuf) {
    let file = |name: &str, sessions: usize, start| {
        let spec = SynthSpec {
            instruments,
            sessions,
            ticks_per_session: 1_200,
            seed: 15,
            start,
        };
        let path = dir.join(name);
        write_ticks(&spec, &mut std::fs::File::create(&path).unwrap()).unwrap();
        path
    };
    (
        file("history.jsonl", 3, jiff::civil::date(2024, 3, 4)),
        file("day4.jsonl", 1, jiff::civil::date(2024, 3, 7)),
    )
}

async fn baseline(config: &Config) {
    let pools = tickwire_writer::RedisPools::connect(
        &config.redis,
        [config.databases.get(tickwire_core::Db::CumulativeVolume)],
    )
    .await
    .unwrap();
    let opts = tickwire_writer::baseline::BaselineOptions {
        lookback: 3,
        date: None,
    };
    tickwire_writer::baseline::compute(config, &pools, &opts)
        .await
        .unwrap();
    pools.quit().await;
}

/// The alerts stream's entries without their IDs (`*`: the time of writing).
fn alert_fields(content: &str) -> Vec<String> {
    let mut out: Vec<String> = content
        .split("), (\"")
        .map(|e| e.split_once(", [").map_or("", |(_, f)| f).to_string())
        .collect();
    out.sort();
    out
}

async fn replay_into_a_cluster_matches_one_redis(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (history, day4) = inputs(dir.path(), 3);
    // Low enough that the fourth session alerts, through the alert script.
    let toml = format!("[alerts]\nvolume_ratio_threshold = 1.2\n{extra}");

    let single = redis();
    let cfg = config(&single, &toml);
    replay(&cfg, std::slice::from_ref(&history)).await;
    baseline(&cfg).await;
    let single_day4 = replay(&cfg, std::slice::from_ref(&day4)).await;

    let cluster = cluster();
    let ccfg = cluster_config(&cluster, &toml);
    assert!(ccfg.redis.is_cluster());
    replay(&ccfg, std::slice::from_ref(&history)).await;
    baseline(&ccfg).await;
    let cluster_day4 = replay(&ccfg, std::slice::from_ref(&day4)).await;
    assert_eq!(
        cluster_day4.writer.ticks_written,
        single_day4.writer.ticks_written
    );
    assert!(cluster_day4.writer.ticks_written > 3_000);

    let expected = by_namespace(&single).await;
    let placed = snapshot_cluster_keys(&cluster).await;
    let found = unplaced_all(&placed, "");
    let names = |m: &BTreeMap<(String, String), String>| -> Vec<(String, String)> {
        m.keys().cloned().collect()
    };
    assert_eq!(names(&found), names(&expected), "the same keys, namespaced");
    let alerts = ("alerts".to_string(), "alerts:volume_surge".to_string());
    for (k, want) in &expected {
        let got = &found[k];
        if *k == alerts {
            assert_eq!(alert_fields(got), alert_fields(want), "the same alerts");
            assert!(alert_fields(got).len() >= 3, "the fourth session alerts");
        } else {
            assert!(
                tickwire_testkit::equal_within(got, want, 1e-9),
                "{k:?}: {got} against {want}"
            );
        }
    }

    // Every key expires, as on one Redis.
    let reader = cluster.client().await.unwrap();
    for (key, _) in &placed {
        let ttl: i64 = fred::prelude::KeysInterface::ttl(&reader, key.as_str())
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has TTL {ttl}");
    }

    // The documented names, and every key of an instrument in its symbol's slot.
    let sym = "RELIANCE";
    for key in [
        format!("continuous_market:ticks:{{{sym}}}"),
        format!("prices:price:{{{sym}}}"),
        format!("continuous_market:bars:1m:{{{sym}}}"),
        format!("continuous_market:indicator:rsi:{{{sym}}}"),
        format!("continuous_market:indicator:vwap:{{{sym}}}"),
        format!("cumulative_volume:volume:bucket:{{{sym}}}:2024-03-07:10:03"),
        format!("cumulative_volume:volume:baseline:{{{sym}}}:10:03"),
        "cumulative_volume:volume:symbols".to_string(),
    ] {
        assert!(
            placed.iter().any(|(k, _)| *k == key),
            "{key} is written; keys: {:?}",
            placed.iter().map(|(k, _)| k).take(12).collect::<Vec<_>>()
        );
    }
    let slot_of = |k: &str| cluster.keyslot(k).expect("CLUSTER KEYSLOT answers");
    let mut by_symbol: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (key, _) in &placed {
        if let Some(tag) = key
            .split_once('{')
            .and_then(|(_, r)| r.split_once('}'))
            .map(|(t, _)| t)
        {
            if !tag.contains(':') {
                by_symbol.entry(tag.to_string()).or_default().push(key);
            }
        }
    }
    assert_eq!(
        by_symbol.len(),
        3,
        "three instruments: {:?}",
        by_symbol.keys()
    );
    for (symbol, keys) in &by_symbol {
        let slot = slot_of(symbol);
        // A sample of each instrument's keys, every kind among them.
        for key in keys.iter().step_by(7).chain(keys.last()) {
            assert_eq!(slot_of(key), slot, "{key} lives in {symbol}'s slot");
        }
    }
    let markers: Vec<&String> = placed
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains("alert:sent:"))
        .collect();
    assert!(!markers.is_empty());
    for m in markers {
        assert_eq!(
            slot_of(m),
            slot_of("alerts:alerts:volume_surge"),
            "{m} shares the alerts stream's slot"
        );
    }
}

async fn snapshot_cluster_keys(cluster: &RedisCluster) -> Vec<(String, String)> {
    tickwire_testkit::snapshot_cluster(cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_a_cluster_writes_what_one_redis_holds_inline_engine() {
    replay_into_a_cluster_matches_one_redis("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_a_cluster_writes_what_one_redis_holds_lua_engine() {
    replay_into_a_cluster_matches_one_redis("[indicators]\nengine = \"lua\"\n").await;
}

/// Per symbol, the ticks of a tickwire JSON lines file.
fn ticks_per_symbol(path: &std::path::Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *out.entry(v["symbol"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

/// The primary holding an instrument's slot is SIGKILLed mid-replay: its
/// replica takes the slots over, the writes resume there, and every tick is
/// in its stream once; the run ends as one without the failure would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_replay_fails_over_and_every_tick_is_there_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec {
        instruments: 3,
        sessions: 1,
        ticks_per_session: 40_000,
        seed: 21,
        start: jiff::civil::date(2024, 3, 4),
    };
    let path = dir.path().join("day.jsonl");
    write_ticks(&spec, &mut std::fs::File::create(&path).unwrap()).unwrap();
    let want = ticks_per_symbol(&path);
    let total: u64 = want.values().sum();

    let mut cluster = cluster();
    let stream = "continuous_market:ticks:{RELIANCE}";
    let slot = cluster.keyslot(stream).unwrap();
    let victim = cluster
        .primary_of_slot(slot)
        .expect("a primary holds the slot");
    let cfg = cluster_config(&cluster, "");
    let reader = cluster.client().await.unwrap();

    let replay = tokio::spawn({
        let cfg = cfg.clone();
        let path = path.clone();
        async move { common::replay(&cfg, &[path]).await }
    });
    // Killed once a tenth of the instrument's ticks are in.
    wait_until(
        std::time::Duration::from_secs(60),
        "a tenth of the instrument's ticks (the replay does not progress)",
        || async {
            let len: u64 = fred::prelude::StreamsInterface::xlen(&reader, stream)
                .await
                .unwrap_or(0);
            len >= want["RELIANCE"] / 10
        },
    )
    .await;
    assert!(!replay.is_finished(), "killed mid-replay, not after it");
    cluster.kill(victim);
    let summary = replay.await.expect("the replay survives the failover");
    let promoted = cluster
        .primary_of_slot(slot)
        .expect("the slot has a primary again");
    assert_ne!(promoted, victim, "a replica took the slot over");

    assert_eq!(summary.ingest.ticks, total);
    assert_eq!(summary.stopped_by, None);
    assert_eq!(summary.writer.ticks_failed, 0);
    let w = &summary.writer;
    assert!(
        w.redis_wait_ms > 0 || w.retries > 0,
        "the failover was waited for: waited {} ms, {} retries",
        w.redis_wait_ms,
        w.retries
    );
    // The promoted replica had none of the scripts (SCRIPT LOAD is not
    // replicated): NOSCRIPT there loaded them again.
    assert!(
        w.script_reloads >= 1,
        "scripts reloaded: {}",
        w.script_reloads
    );
    for (symbol, n) in &want {
        let key = format!("continuous_market:ticks:{{{symbol}}}");
        let len: u64 = fred::prelude::StreamsInterface::xlen(&reader, key.as_str())
            .await
            .unwrap();
        assert_eq!(len, *n, "{key}: every tick once");
    }
}

/// Every built-in profile at once, with `--prefix`: the cluster holds what
/// one Redis holds, each profile key in its namespace with the instrument as
/// its tag (Dhan's layout: the security id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_and_the_prefix_render_alike_on_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec {
        instruments: 4,
        sessions: 1,
        ticks_per_session: 600,
        seed: 8,
        start: jiff::civil::date(2024, 3, 5),
    };
    let path = dir.path().join("day.jsonl");
    write_ticks(&spec, &mut std::fs::File::create(&path).unwrap()).unwrap();
    let overrides = |url: String| Overrides {
        redis_url: Some(url),
        prefix: Some("bt:".into()),
        profiles: ["default", "trading-system", "tradingboost", "dhanscalper"]
            .map(String::from)
            .to_vec(),
    };
    let single = redis();
    let cfg = Config::from_toml("", &overrides(single.url()), tickwire_parse::VENUES).unwrap();
    replay(&cfg, std::slice::from_ref(&path)).await;
    let cluster = cluster();
    let ccfg = Config::from_toml("", &overrides(cluster.url()), tickwire_parse::VENUES).unwrap();
    let s = replay(&ccfg, std::slice::from_ref(&path)).await;
    assert_eq!(s.writer.ticks_written, 2_400);

    let expected = by_namespace(&single).await;
    let placed = snapshot_cluster_keys(&cluster).await;
    let found = unplaced_all(&placed, "bt:");
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same keys, namespaced"
    );
    for (k, want) in &expected {
        // A profile's heartbeat says when each process beat.
        if want.contains("started_at") {
            continue;
        }
        assert!(
            tickwire_testkit::equal_within(&found[k], want, 1e-9),
            "{k:?}: {} against {want}",
            found[k]
        );
    }
    // Each profile's keys are there, tagged by the instrument.
    let names: Vec<&str> = placed.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        names.contains(&"bt:system:dhan_scalper:v1:ticks:NSE_EQ:{2885}"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|k| k.ends_with("price:NSE:{RELIANCE}")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|k| k.ends_with("stocks:price:{RELIANCE}")),
        "{names:?}"
    );
}
