//! The exit code says whether what was read landed: a replay into a Redis
//! that refuses writes (out of memory) ends non-zero with a line naming
//! what is missing; a replay of what Redis already holds ends 0.

use std::path::Path;
use std::time::Duration;

use tickwire_testkit::prelude::*;

/// 300 ticks of 3 instruments over 5 minutes of 2024-01-02 from 10:00 IST.
fn ticks_file(dir: &Path) -> std::path::PathBuf {
    let t0 = 1_704_169_800_000i64;
    let mut body = String::new();
    for i in 0..300i64 {
        let symbol = ["SBIN", "TCS", "INFY"][(i % 3) as usize];
        body.push_str(&format!(
            "{{\"exchange\":\"NSE\",\"symbol\":\"{symbol}\",\"ts\":{},\"ltp\":{}.5,\"qty\":{}}}\n",
            t0 + i * 1_000,
            600 + i % 7,
            1 + i % 5
        ));
    }
    let p = dir.join("ticks.jsonl");
    std::fs::write(&p, body).unwrap();
    p
}

/// Per DB of the summary's table: stream entries new and already there.
fn entries_by_db(stdout: &str) -> Vec<(String, u64, u64)> {
    stdout
        .lines()
        .skip_while(|l| !l.contains("stream entries"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [db, _purpose, _keys, new, there, _hashes] = f.as_slice() else {
                return None;
            };
            Some((db.to_string(), new.parse().ok()?, there.parse().ok()?))
        })
        .collect()
}

/// The entries of every stream in `db`, as Redis holds them.
fn stream_entries_in(server: &RedisServer, db: &str) -> u64 {
    redis_cli(server, db.parse().unwrap(), &["--scan"])
        .lines()
        .filter(|k| redis_cli(server, db.parse().unwrap(), &["TYPE", k]) == "stream")
        .map(|k| {
            redis_cli(server, db.parse().unwrap(), &["XLEN", k])
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

#[test]
fn a_replay_whose_writes_redis_refuses_exits_non_zero_saying_what_is_missing() {
    let server = redis();
    // Any write is refused with OOM: used memory is always above 1 byte.
    assert_eq!(
        redis_cli(
            &server,
            0,
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"]
        ),
        "OK"
    );
    assert_eq!(
        redis_cli(&server, 0, &["CONFIG", "SET", "maxmemory", "1"]),
        "OK"
    );
    let dir = tempfile::tempdir().unwrap();
    let input = ticks_file(dir.path());
    let (out, stdout, stderr) = run(tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .arg(&input));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(summary_value(&stdout, "ticks read"), 300, "{stdout}");
    assert_eq!(summary_value(&stdout, "ticks written"), 0, "{stdout}");
    assert!(summary_value(&stdout, "write errors") >= 300, "{stdout}");
    assert!(
        stdout.contains("NOT WRITTEN: 300 ticks not written"),
        "the summary says what is missing:\n{stdout}"
    );
    assert!(
        stderr.contains("300 ticks not written"),
        "the error says what is missing:\n{stderr}"
    );
    // Nothing of it is in Redis.
    assert_eq!(redis_cli(&server, 4, &["DBSIZE"]), "0");

    // Once Redis takes writes, the same replay lands all of it and ends 0;
    // a second one finds it all there and ends 0 too, counting it so.
    assert_eq!(
        redis_cli(&server, 0, &["CONFIG", "SET", "maxmemory", "0"]),
        "OK"
    );
    let (out, stdout, stderr) = run(tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .arg(&input));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 300, "{stdout}");
    assert_eq!(summary_value(&stdout, "write errors"), 0, "{stdout}");
    assert!(!stdout.contains("NOT WRITTEN"), "{stdout}");
    let bars = summary_value(&stdout, "bars written");
    assert!(bars > 0, "{stdout}");
    let first = entries_by_db(&stdout);
    assert!(!first.is_empty(), "{stdout}");
    // Without the checkpoints, the state stage does not know the trades:
    // the writer finds every tick and bar already there.
    for db in 0..16 {
        let keys = redis_cli(
            &server,
            db,
            &["--scan", "--pattern", "tickwire:checkpoint:*"],
        );
        for key in keys.lines().filter(|k| !k.is_empty()) {
            redis_cli(&server, db, &["DEL", key]);
        }
    }
    let (out, again, stderr) = run(tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .arg(&input));
    assert!(out.status.success(), "{again}\n{stderr}");
    assert_eq!(summary_value(&again, "ticks written"), 0, "{again}");
    assert_eq!(summary_value(&again, "duplicates"), 300, "{again}");
    assert_eq!(
        summary_value(&again, "bars written") + summary_value(&again, "bars there"),
        bars,
        "new and already-there bars add up to what Redis holds:\n{again}"
    );
    // Per DB, new + already there is what the streams hold, both times.
    for stdout in [&stdout, &again] {
        let rows = entries_by_db(stdout);
        assert_eq!(rows.len(), first.len(), "{stdout}");
        for (db, new, there) in rows {
            assert_eq!(
                new + there,
                stream_entries_in(&server, &db),
                "db {db}:\n{stdout}"
            );
        }
    }
    assert!(
        entries_by_db(&again).iter().all(|(_, new, _)| *new == 0),
        "nothing new the second time:\n{again}"
    );
}

/// A live run into a Redis that refuses writes: stopped by SIGTERM, it
/// prints its summary (feeds and frames, not files) and exits non-zero
/// saying how many ticks are not in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_whose_writes_redis_refuses_exits_non_zero_saying_what_is_missing() {
    use tickwire_testkit::ws_server::{TradeFeed, WsServer};
    let server = redis();
    assert_eq!(
        redis_cli(
            &server,
            0,
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"]
        ),
        "OK"
    );
    assert_eq!(
        redis_cli(&server, 0, &["CONFIG", "SET", "maxmemory", "1"]),
        "OK"
    );
    let feed = TradeFeed {
        symbols: vec!["BTCUSDT".into()],
        trades: 40,
        every: std::time::Duration::from_millis(2),
        resend: 0,
        lead: std::time::Duration::ZERO,
        last_ahead: std::time::Duration::ZERO,
        first_id: 1_000,
        ..TradeFeed::binance()
    };
    let ws = WsServer::trades(feed.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "live.toml",
        &format!(
            "[live]\nconnect_timeout_ms = 2000\nidle_timeout_ms = 5000\nping_interval_ms = 1000\n{}",
            feed_toml("binance", "binance", &ws.url("/ws"), &["BTCUSDT"], &["trade"])
        ),
    );
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(20),
        "the feed sent its trades",
        || async { ws.all_sent(&feed) },
    )
    .await;
    // What was sent is read and its writes refused before the stop.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| terminate(child));
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(summary_value(&stdout, "ticks read"), 40, "{stdout}");
    assert_eq!(summary_value(&stdout, "ticks written"), 0, "{stdout}");
    assert_eq!(summary_value(&stdout, "feeds"), 1, "{stdout}");
    assert!(summary_value(&stdout, "frames read") >= 40, "{stdout}");
    assert!(!stdout.contains("files read"), "{stdout}");
    assert!(
        stdout.contains("NOT WRITTEN: 40 ticks not written"),
        "{stdout}"
    );
    assert!(stderr.contains("40 ticks not written"), "{stderr}");
}

/// Per DB of the summary's table: the keys column (`>=n` when capped).
fn keys_by_db(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .skip_while(|l| !l.contains("stream entries"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [db, _purpose, keys, _new, _there, _hashes] = f.as_slice() else {
                return None;
            };
            Some((db.to_string(), keys.to_string()))
        })
        .collect()
}

/// Out of memory, Redis refuses every write but answers the EXPIRE after
/// each one (0: no such key). The summary counts per DB only the keys Redis
/// holds, none here; and the log names each refused command kind once
/// instead of once per refused command (300 ticks, their prices, bars...).
#[test]
fn refused_writes_count_no_keys_and_are_logged_once_per_kind() {
    let server = redis();
    assert_eq!(
        redis_cli(
            &server,
            0,
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"]
        ),
        "OK"
    );
    assert_eq!(
        redis_cli(&server, 0, &["CONFIG", "SET", "maxmemory", "1"]),
        "OK"
    );
    let dir = tempfile::tempdir().unwrap();
    let input = ticks_file(dir.path());
    let (out, stdout, stderr) = run(tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .arg(&input));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(summary_value(&stdout, "write errors") >= 300, "{stdout}");
    let rows = keys_by_db(&stdout);
    assert!(!rows.is_empty(), "{stdout}");
    for (db, keys) in &rows {
        assert_eq!(keys, "0", "db {db}: Redis holds no key:\n{stdout}");
        assert_eq!(redis_cli(&server, db.parse().unwrap(), &["DBSIZE"]), "0");
    }
    let logged = stderr.matches("Redis refused a write").count();
    assert!(
        (1..=8).contains(&logged),
        "one warning per refused command kind (XADD, HSET, SET...), not per command: \
         {logged}\n{stderr}"
    );
    assert!(stderr.contains("OOM"), "{stderr}");

    // Once Redis takes writes, the same table counts the keys it holds.
    assert_eq!(
        redis_cli(&server, 0, &["CONFIG", "SET", "maxmemory", "0"]),
        "OK"
    );
    let (out, stdout, stderr) = run(tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .arg(&input));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let db4 = keys_by_db(&stdout)
        .into_iter()
        .find(|(db, _)| db == "4")
        .map(|(_, k)| k);
    assert_eq!(
        db4.as_deref(),
        Some(redis_cli(&server, 4, &["DBSIZE"]).as_str()),
        "{stdout}"
    );
}
