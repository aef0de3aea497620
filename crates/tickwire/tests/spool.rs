//! A live run through a Redis outage: the feed keeps being read (and its
//! pings answered) while Redis is down, what the in-memory backlog cannot
//! hold goes to the disk spool, and everything lands in arrival order once
//! Redis is back; a process killed while spooling leaves its spool to the
//! next one, which hands it on first.
//!
//! The suite runs these at a small size (a few thousand frames a second, an
//! outage of a few seconds); `benches/spool.sh` runs the first at full size
//! (20,000 frames a second, Redis down 30 s) through the environment
//! variables `TICKWIRE_SPOOL_RATE`, `TICKWIRE_SPOOL_DOWN_S` and
//! `TICKWIRE_SPOOL_BEFORE_S`.

use tickwire_testkit::prelude::*;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fred::prelude::*;
use tickwire_testkit::ws_server::{trade_id_of_qty, Flood, WsServer};

const SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

/// Small writer batches and channels: the frames of the outage must be more
/// than the stages between the feed and Redis hold (with the defaults, 2,000
/// events per lane batch and 64 chunks per channel, they held all 12,000 of
/// a 4 s outage at 3,000 frames/s on a quiet machine, and nothing spooled).
fn live_config(dir: &Path, url: &str) -> PathBuf {
    config_file(
        dir,
        "tickwire.toml",
        &format!(
            "[live]\nping_interval_ms = 1000\nidle_timeout_ms = 5000\n\
             max_backlog_frames = 2000\n\
             [writer]\nbatch_size = 200\nchannel_capacity = 4\n\
             [spool]\ndir = \"{}\"\nsegment_bytes = 262144\n\
             [metrics]\nenabled = false\n\
             [streams]\nmaxlen = 100000000\n{}",
            dir.join("spool").display(),
            feed_toml("binance", "binance", url, &SYMBOLS, &["trade"])
        ),
    )
}

/// The trade ids of `symbol`'s stream, in stream order.
async fn ids_in_stream(db4: &Client, symbol: &str) -> Vec<u64> {
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = db4
        .xrange(format!("ticks:{symbol}"), "-", "+", None)
        .await
        .unwrap();
    entries
        .iter()
        .map(|(_, f)| trade_id_of_qty(&f["qty"]).expect("a flood quantity"))
        .collect()
}

/// Bytes in the feed's spool segments (`.seg`: not yet handed on).
fn spooled_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("spool").join("binance"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .map(|e| e.metadata().map_or(0, |m| m.len().saturating_sub(8)))
                .sum()
        })
        .unwrap_or(0)
}

/// Files left in the feed's spool directory, besides its lock.
fn spool_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("spool").join("binance"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lock")
                .collect()
        })
        .unwrap_or_default()
}

/// Each symbol's ids rise one by one from 1: every trade once, in order.
fn assert_every_trade_once_in_order(ids: &[u64], symbol: &str, sent: u64) {
    assert_eq!(
        ids.len() as u64,
        sent,
        "{symbol}: every trade sent is in Redis"
    );
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(
            *id,
            k as u64 + 1,
            "{symbol}: entry {k} out of order or missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_feed_through_a_redis_outage_spools_and_drops_nothing() {
    let rate = env_or("TICKWIRE_SPOOL_RATE", 3_000);
    let down = Duration::from_secs(env_or("TICKWIRE_SPOOL_DOWN_S", 4));
    let before = Duration::from_secs(env_or("TICKWIRE_SPOOL_BEFORE_S", 2));
    // Sending goes on as long again after Redis is back as before it went.
    let total = rate * (2 * before.as_secs() + down.as_secs());
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start_persistent().unwrap();
    let db4 = redis.client(4).await.unwrap();
    let (venue, flood) = WsServer::flood(Flood {
        symbols: SYMBOLS.map(String::from).to_vec(),
        rate: rate as u32,
        total: total as usize,
        every: Duration::from_millis(2),
        behind: Duration::ZERO,
        away: None,
    })
    .await
    .unwrap();
    let cfg = live_config(dir.path(), &venue.url("/stream"));
    let log = dir.path().join("run.log");
    let run = start_run(tickwire!(), &cfg, &redis.url(), &log);
    wait_until(
        Duration::from_secs(30),
        "the first trades in Redis",
        || async { ticks_of(&db4, &SYMBOLS).await > 0 },
    )
    .await;
    tokio::time::sleep(before).await;

    // Redis goes away (SIGKILL; AOF keeps what it took) for `down`.
    let went = Instant::now();
    let pongs = flood.pongs.load(Ordering::Relaxed);
    redis.crash().unwrap();
    let mut most = 0;
    while went.elapsed() < down {
        most = most.max(spooled_bytes(dir.path()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pongs_while_down = flood.pongs.load(Ordering::Relaxed) - pongs;
    let sent_while_down = flood.sent.load(Ordering::Relaxed);
    redis.recover().unwrap();
    let db4 = redis.client(4).await.unwrap();
    assert!(
        most > 0,
        "frames went to the spool while Redis was down ({sent_while_down} sent)"
    );
    assert!(
        pongs_while_down >= down.as_secs() as usize / 2,
        "the feed answered the venue's pings while Redis was down ({pongs_while_down})"
    );

    let drained_all = poll_until(Duration::from_secs(60 + 2 * down.as_secs()), || async {
        flood.sent.load(Ordering::Relaxed) as u64 >= total
            && ticks_of(&db4, &SYMBOLS).await >= total
    })
    .await;
    if !drained_all {
        let sent = flood.sent.load(Ordering::Relaxed) as u64;
        let landed = ticks_of(&db4, &SYMBOLS).await;
        if let Ok(keep) = std::env::var("TICKWIRE_SPOOL_LOG") {
            let _ = std::fs::copy(&log, keep);
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        panic!(
            "timed out: {sent} of {total} sent, {landed} in Redis, {} bytes spooled; \
             the log's end:\n{}",
            spooled_bytes(dir.path()),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let drained = went.elapsed();
    let (status, stdout) = stop(run, "-TERM").await;
    let text = log_of(&log);
    assert!(
        status.success(),
        "exit 0 after SIGTERM ({status})\n{stdout}\n{text}"
    );
    assert_eq!(
        venue.connections(),
        1,
        "the feed was never dropped: {:?}",
        venue.seen()
    );
    assert_eq!(flood.lost.load(Ordering::Relaxed), 0);
    for s in SYMBOLS {
        let ids = ids_in_stream(&db4, s).await;
        assert_every_trade_once_in_order(&ids, s, total / 2);
    }
    // Every trade, and the answer to the subscription (skipped).
    assert_eq!(summary_value(&stdout, "frames read"), total + 1, "{stdout}");
    assert_eq!(summary_value(&stdout, "skipped"), 1, "{stdout}");
    // A batch Redis applied but could not answer before it died is sent
    // again: those entries are there already (duplicates), not lost.
    assert_eq!(
        summary_value(&stdout, "ticks written") + summary_value(&stdout, "duplicates"),
        total,
        "{stdout}"
    );
    assert!(!stdout.contains("frames dropped"), "{stdout}");
    assert!(!stdout.contains("NOT WRITTEN"), "{stdout}");
    // The feed table's spooled column.
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("binance"))
        .unwrap_or_else(|| panic!("no feed row:\n{stdout}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let spooled: u64 = cols[cols.len() - 2].parse().unwrap();
    let dropped: u64 = cols[cols.len() - 1].parse().unwrap();
    assert!(spooled > 0 && dropped == 0, "{stdout}");
    assert!(
        spool_files(dir.path()).is_empty(),
        "{:?}",
        spool_files(dir.path())
    );
    eprintln!(
        "spool figures: {rate} frames/s, Redis down {:.1} s, {sent_while_down} frames sent by \
         then, spool peak {most} bytes, {spooled} frames spooled, everything in Redis {:.1} s \
         after Redis went down",
        down.as_secs_f64(),
        drained.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_a_killed_process_is_handed_on_first_by_the_next() {
    let rate = 3_000u64;
    let total = rate * 8;
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start_persistent().unwrap();
    let db4 = redis.client(4).await.unwrap();
    let (venue, flood) = WsServer::flood(Flood {
        symbols: SYMBOLS.map(String::from).to_vec(),
        rate: rate as u32,
        total: total as usize,
        every: Duration::from_millis(2),
        behind: Duration::ZERO,
        away: None,
    })
    .await
    .unwrap();
    let cfg = live_config(dir.path(), &venue.url("/stream"));
    let first = start_run(
        tickwire!(),
        &cfg,
        &redis.url(),
        &dir.path().join("first.log"),
    );
    wait_until(
        Duration::from_secs(30),
        "the first trades in Redis",
        || async { ticks_of(&db4, &SYMBOLS).await > 0 },
    )
    .await;
    redis.crash().unwrap();
    // Killed once a good part of a second's frames are in the spool.
    wait_until(Duration::from_secs(20), "frames in the spool", || async {
        spooled_bytes(dir.path()) > 100 * 1000
    })
    .await;
    let (status, _) = stop(first, "-KILL").await;
    assert!(!status.success());
    log_of(&dir.path().join("first.log"));
    assert!(
        (flood.sent.load(Ordering::Relaxed) as u64) < total,
        "killed before the feed ended"
    );
    // What the killed process spooled, read from a copy of its spool.
    let copy = tempfile::tempdir().unwrap();
    let src = dir.path().join("spool").join("binance");
    let dst = copy.path().join("binance");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.file_name() != "lock" {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    let mut left = tickwire_ingest::spool::Spool::open(
        &tickwire_core::feeds::SpoolConfig {
            dir: copy.path().to_path_buf(),
            ..Default::default()
        },
        "binance".into(),
        tickwire_parse::VENUES.get("binance").unwrap(),
        Default::default(),
    )
    .unwrap();
    let mut spooled: Vec<(String, u64)> = Vec::new();
    loop {
        let frames = left.take(1000, 1 << 20).unwrap();
        if frames.is_empty() {
            break;
        }
        for f in frames {
            let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
            let d = &v["data"];
            spooled.push((
                d["s"].as_str().unwrap().to_string(),
                d["t"].as_u64().unwrap(),
            ));
        }
    }
    assert!(spooled.len() > 100, "{} frames spooled", spooled.len());

    // Redis back, a new process: the spool goes out first, then the feed's
    // new frames (the venue goes on where the lost connection stopped).
    redis.recover().unwrap();
    let db4 = redis.client(4).await.unwrap();
    // Health sees frames that are not in Redis yet.
    let (out, stdout, _) =
        run(tickwire!()
            .arg("--config")
            .arg(&cfg)
            .args(["--redis", &redis.url(), "health"]));
    assert_eq!(out.status.code(), Some(1), "degraded:\n{stdout}");
    assert!(stdout.contains("spool of feed binance holds"), "{stdout}");
    let second = start_run(
        tickwire!(),
        &cfg,
        &redis.url(),
        &dir.path().join("second.log"),
    );
    let mut last = std::collections::HashMap::new();
    wait_until(
        Duration::from_secs(60),
        "the spooled trades and the rest of the feed in Redis",
        || async {
            if (flood.sent.load(Ordering::Relaxed) as u64) < total {
                return false;
            }
            for s in SYMBOLS {
                let ids = ids_in_stream(&db4, s).await;
                if ids.last() != Some(&(total / 2)) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let (status, stdout) = stop(second, "-TERM").await;
    let text = log_of(&dir.path().join("second.log"));
    assert!(status.success(), "{status}\n{stdout}\n{text}");
    assert!(
        text.contains("a previous process left frames in the spool"),
        "{text}"
    );
    for s in SYMBOLS {
        let ids = ids_in_stream(&db4, s).await;
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{s}: in order, each once"
        );
        last.insert(s, ids);
    }
    for (symbol, id) in &spooled {
        assert!(
            last[symbol.as_str()].binary_search(id).is_ok(),
            "{symbol} trade {id} was in the killed process's spool and is not in Redis"
        );
    }
    let inherited = stdout
        .lines()
        .find(|l| l.contains("frames a previous process spooled"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no inherited line:\n{stdout}"));
    assert_eq!(inherited, spooled.len(), "{stdout}");
    assert!(
        spool_files(dir.path()).is_empty(),
        "{:?}",
        spool_files(dir.path())
    );
    let (_, stdout, _) =
        run(tickwire!()
            .arg("--config")
            .arg(&cfg)
            .args(["--redis", &redis.url(), "health"]));
    assert!(!stdout.contains("spool of feed"), "{stdout}");
}
