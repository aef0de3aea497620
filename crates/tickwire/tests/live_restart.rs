//! A live run restarted under a venue that resends: the scripted server
//! sends Binance trades stamped with its clock as it sends them and, on
//! every reconnect, first sends again the last frames of the connection
//! before. `tickwire run` is SIGKILLed mid-stream and started again: it
//! applies no trade twice, and what it leaves in Redis equals a replay of
//! the distinct frames.

use tickwire_testkit::prelude::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fred::prelude::*;
use tickwire_testkit::ws_server::{trade_id_of_qty, SentTrade, TradeFeed, WsServer};

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

fn feed() -> TradeFeed {
    TradeFeed {
        symbols: SYMBOLS.map(String::from).to_vec(),
        // About 3 s of trades: a few closed bars of 1 s, RSI and ATR on them.
        trades: 600,
        every: Duration::from_millis(3),
        // About 0.7 s of frames, far more than tickwire holds unacknowledged
        // when it is killed (a few ms): what the first process did not
        // write, the second gets again.
        resend: 500,
        // The venue's clock ahead of ours by more than a restart takes: a
        // live run's bar timer (interval end + bars.close_grace_ms on the
        // wall clock) then never closes a bar before the trades of a later
        // one have, so it cannot close one that a resend still adds a trade
        // to after the restart (which a replay of the same frames would put
        // in it). Inside [ingest] max_clock_skew_ms with last_ahead.
        lead: Duration::from_secs(5),
        // The last trade of each symbol opens a bar that neither run closes
        // (a live run's bar timer is 30 s away, a replay without
        // --close-at-end never does), and closes every earlier one in both.
        last_ahead: Duration::from_secs(30),
        first_id: 10_000_000,
        ..TradeFeed::binance()
    }
}

fn live_config(dir: &Path, url: &str, engine: &str) -> PathBuf {
    config_file(
        dir,
        &format!("{engine}.toml"),
        &format!(
            "[live]\nconnect_timeout_ms = 2000\nidle_timeout_ms = 2000\nping_interval_ms = 300\n\
             backoff_initial_ms = 20\nbackoff_max_ms = 100\n\
             [bars]\nintervals = [\"1s\", \"1m\"]\n\
             [indicators]\nengine = \"{engine}\"\ninterval = \"1s\"\nrsi_period = 2\natr_period = 2\n{}",
            feed_toml("binance", "binance", url, &SYMBOLS, &["trade"])
        ),
    )
}

/// The distinct frames in the order first sent, as a recording `tickwire
/// replay` reads: each received when it was sent (what a live run's
/// implausible-time check compares against).
fn recording(dir: &Path, sent: &[SentTrade]) -> PathBuf {
    let mut body = String::new();
    for t in sent {
        body += &serde_json::json!({
            "recv_ns": t.sent_ns,
            "feed": "binance",
            "data": t.text,
        })
        .to_string();
        body.push('\n');
    }
    let path = dir.join("distinct.jsonl");
    std::fs::write(&path, body).unwrap();
    path
}

/// Everything a run leaves for consumers (DBs 2-6) and tickwire's own
/// checkpoints (DB 0). Left out: the heartbeat (by the snapshot) and the
/// feed keys (`feed:binance:status`, `feed:binance:reconnects`), which say
/// how the live connections went; a replay has no connection.
async fn state(server: &RedisServer) -> Vec<(u8, String, String)> {
    tickwire_testkit::snapshot(server, &[2, 3, 4, 5, 6, 0])
        .await
        .into_iter()
        .filter(|(db, k, _)| *db != 0 || !k.starts_with("feed:"))
        .collect()
}

async fn restarted_under_resends_equals_a_replay_of_the_distinct_frames(engine: &str) {
    let spec = feed();
    let total = (spec.trades * SYMBOLS.len()) as u64;
    let dir = tempfile::tempdir().unwrap();
    let live = redis();
    let db4 = live.client(4).await.unwrap();
    let venue = WsServer::trades(spec.clone()).await.unwrap();
    let cfg = live_config(dir.path(), &venue.url("/stream"), engine);

    // Killed once a third of the trades are in Redis.
    let first = start_run(
        tickwire!(),
        &cfg,
        &live.url(),
        &dir.path().join("first.log"),
    );
    wait_until(
        Duration::from_secs(20),
        "a third of the trades in Redis",
        || async { ticks_of(&db4, &SYMBOLS).await >= total / 3 },
    )
    .await;
    let (status, _) = stop(first, "-KILL").await;
    assert!(!status.success(), "SIGKILL: {status}");
    log_of(&dir.path().join("first.log"));
    let landed = ticks_of(&db4, &SYMBOLS).await;
    assert!(
        !venue.all_sent(&spec) && landed < total,
        "the kill landed after the end of the feed ({landed} of {total} ticks in Redis)"
    );

    // Started again: the venue resends, then goes on to the end.
    let second = start_run(
        tickwire!(),
        &cfg,
        &live.url(),
        &dir.path().join("second.log"),
    );
    assert!(
        poll_until(Duration::from_secs(30), || async {
            venue.all_sent(&spec) && ticks_of(&db4, &SYMBOLS).await >= total
        })
        .await,
        "{} of {total} trades sent: a trade the killed process had not written, \
         further back than the {} frames resent, is lost",
        venue.sent_trades().len(),
        spec.resend
    );
    let (status, stdout) = stop(second, "-TERM").await;
    log_of(&dir.path().join("second.log"));
    assert!(
        status.success(),
        "SIGTERM: drain, flush, exit 0 (got {status})\n{stdout}"
    );
    assert_eq!(venue.connections(), 2, "{:?}", venue.seen());
    assert!(venue.resent_frames() > 0);
    assert_eq!(summary_value(&stdout, "rejected"), 0, "{stdout}");
    let resent = summary_value(&stdout, "resent trades");
    assert!(
        resent > 0,
        "the second process saw trades the first had applied:\n{stdout}"
    );

    let sent = venue.sent_trades();
    assert_eq!(
        sent.len() as u64,
        total,
        "each trade once in the venue's log"
    );
    // Each stream holds every trade of its symbol once, in the venue's order
    // (the quantity says which trade an entry is).
    for symbol in SYMBOLS {
        let entries: Vec<(String, HashMap<String, String>)> = db4
            .xrange(format!("ticks:{symbol}"), "-", "+", None)
            .await
            .unwrap();
        let got: Vec<(u64, String)> = entries
            .iter()
            .map(|(id, f)| {
                let qty = &f["qty"];
                let trade = trade_id_of_qty(qty)
                    .unwrap_or_else(|| panic!("{symbol} entry {id}: qty {qty} names no trade"));
                (trade, f["ts"].clone())
            })
            .collect();
        let want: Vec<(u64, String)> = sent
            .iter()
            .filter(|t| t.symbol == symbol)
            .map(|t| (t.id, t.ts_ms.to_string()))
            .collect();
        let mut ids: Vec<u64> = got.iter().map(|g| g.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), got.len(), "ticks:{symbol} holds a trade twice");
        assert_eq!(
            got, want,
            "ticks:{symbol}: the trades sent, once each, in order"
        );
    }

    // A replay of the distinct frames into a fresh Redis, bars left forming
    // at the end as a live run that stops leaves them.
    let file = recording(dir.path(), &sent);
    let reference = redis();
    let (out, stdout, _) = run(tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &reference.url(), "replay", "--max"])
        .arg(&file));
    assert!(out.status.success(), "replay: {stdout}");
    assert_eq!(summary_value(&stdout, "ticks written"), total, "{stdout}");
    assert_eq!(summary_value(&stdout, "resent trades"), 0, "{stdout}");

    let (got, want) = (state(&live).await, state(&reference).await);
    // Nothing was dead-lettered (equal dead letters would hide it).
    assert!(
        !got.iter().any(|(_, k, _)| k.starts_with("deadletter:")),
        "{got:?}"
    );
    // What is compared holds closed bars and indicators on them, forming
    // bars and the checkpoints.
    for (db, key) in [
        (4, "bars:1s:BTCUSDT"),
        (4, "indicator:rsi:BTCUSDT"),
        (4, "indicator:atr:BTCUSDT"),
        (4, "bars:1m:BTCUSDT:forming"),
        (5, "volume:session:SOLUSDT:{session}"),
        (0, "tickwire:checkpoint:binance:ETHUSDT"),
    ] {
        let (prefix, rest) = key.split_once("{session}").unwrap_or((key, ""));
        assert!(
            want.iter()
                .any(|(d, k, _)| *d == db && k.starts_with(prefix) && k.ends_with(rest)),
            "no {key} in db {db}: {:?}",
            want.iter().map(|k| &k.1).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        got.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        want.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        "the keys"
    );
    for (a, b) in got.iter().zip(&want) {
        assert!(
            tickwire_testkit::equal_within(&a.2, &b.2, 1e-12),
            "db {} key {} differs from the replay\nlive   {:.600}\nreplay {:.600}",
            b.0,
            b.1,
            a.2,
            b.2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_engine_killed_under_resends_equals_a_replay_of_the_distinct_frames() {
    restarted_under_resends_equals_a_replay_of_the_distinct_frames("inline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_engine_killed_under_resends_equals_a_replay_of_the_distinct_frames() {
    restarted_under_resends_equals_a_replay_of_the_distinct_frames("lua").await;
}
