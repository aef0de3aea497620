//! Gaps filled from the venue's history: the scripted venue drops each
//! connection after a while and trades on while the client is away; its
//! REST server serves the same trades. What `tickwire run` leaves in Redis
//! equals a replay of every trade the venue made, and `gaps:{feed}` says
//! each gap was filled.

use tickwire_testkit::prelude::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fred::prelude::*;
use tickwire_testkit::rest_server::RestServer;
use tickwire_testkit::ws_server::{trade_id_of_qty, SentTrade, TradeFeed, TradeFormat, WsServer};

/// The venue: `symbols` traded in rounds, each connection dropped after
/// `drop_after` trades, `missed` rounds made while the client is away.
fn feed(format: TradeFormat, symbols: &[&str], rest: &RestServer) -> TradeFeed {
    TradeFeed {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        trades: 240,
        every: Duration::from_millis(3),
        resend: 0,
        // As in live_restart.rs: the venue's clock ahead of ours, so the
        // live bar timer never closes a bar before later trades do; the
        // last trade of each symbol opens a bar neither run closes.
        lead: Duration::from_secs(5),
        last_ahead: Duration::from_secs(30),
        first_id: 10_000_000,
        format,
        missed: 12,
        drop_after: Some(150),
        history: Some(rest.sink()),
    }
}

fn config(
    dir: &Path,
    venue: &str,
    ws: &str,
    rest: &str,
    symbols: &[&str],
    channel: &str,
) -> PathBuf {
    let quoted: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    config_file(
        dir,
        "gaps.toml",
        &format!(
            "[live]\nconnect_timeout_ms = 2000\nidle_timeout_ms = 2000\nping_interval_ms = 300\n\
             backoff_initial_ms = 20\nbackoff_max_ms = 100\n\
             [bars]\nintervals = [\"1s\", \"1m\"]\n\
             [indicators]\ninterval = \"1s\"\nrsi_period = 2\natr_period = 2\n\
             [[feeds]]\nname = \"{venue}\"\nvenue = \"{venue}\"\nurl = \"{ws}\"\n\
             rest_url = \"{rest}\"\nsymbols = [{}]\nchannels = [\"{channel}\"]\n",
            quoted.join(", ")
        ),
    )
}

/// Every trade the venue made, in the order made, as a recording `tickwire
/// replay` reads.
fn recording(dir: &Path, feed: &str, made: &[SentTrade]) -> PathBuf {
    let mut body = String::new();
    for t in made {
        body +=
            &serde_json::json!({"recv_ns": t.sent_ns, "feed": feed, "data": t.text}).to_string();
        body.push('\n');
    }
    let path = dir.join("complete.jsonl");
    std::fs::write(&path, body).unwrap();
    path
}

/// DBs 2-6 and the checkpoints; not the feed's connection keys nor its gap
/// records, which a replay has none of.
async fn state(server: &RedisServer) -> Vec<(u8, String, String)> {
    tickwire_testkit::snapshot(server, &[2, 3, 4, 5, 6, 0])
        .await
        .into_iter()
        .filter(|(db, k, _)| *db != 0 || !(k.starts_with("feed:") || k.starts_with("gaps:")))
        .collect()
}

async fn dropped_connections_are_filled(
    format: TradeFormat,
    venue: &str,
    channel: &str,
    symbols: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    let rest = RestServer::start(HashMap::new()).await.unwrap();
    let spec = feed(format, symbols, &rest);
    let total = (spec.trades * symbols.len()) as u64;
    let ws = WsServer::trades(spec.clone()).await.unwrap();
    let cfg = config(
        dir.path(),
        venue,
        &ws.url("/ws"),
        &rest.url(),
        symbols,
        channel,
    );
    let live = redis();
    let db4 = live.client(4).await.unwrap();
    let log = dir.path().join("run.log");
    let child = start_run(tickwire!(), &cfg, &live.url(), &log);
    let done = poll_until(Duration::from_secs(60), || async {
        ws.all_sent(&spec) && ticks_of(&db4, symbols).await >= total
    })
    .await;
    let (status, stdout) = stop(child, "-TERM").await;
    let text = log_of(&log);
    let made = ws.sent_trades();
    let missed = made.iter().filter(|t| !t.live).count() as u64;
    assert!(
        done,
        "{} of {total} trades in Redis ({} made, {missed} while away)\n{text}",
        ticks_of(&db4, symbols).await,
        made.len()
    );
    assert!(status.success(), "SIGTERM: exit 0 (got {status})\n{stdout}");
    assert!(ws.connections() >= 2, "the venue dropped no connection");
    assert!(missed > 0, "nothing was traded while away");
    assert_eq!(made.len() as u64, total);

    // Each stream: every trade once, in the venue's order.
    for symbol in symbols {
        let entries: Vec<(String, HashMap<String, String>)> = db4
            .xrange(format!("ticks:{symbol}"), "-", "+", None)
            .await
            .unwrap();
        let got: Vec<u64> = entries
            .iter()
            .map(|(_, f)| trade_id_of_qty(&f["qty"]).unwrap())
            .collect();
        let want: Vec<u64> = made
            .iter()
            .filter(|t| t.symbol == *symbol)
            .map(|t| t.id)
            .collect();
        assert_eq!(
            got, want,
            "ticks:{symbol}: every trade made, once, in order"
        );
    }

    // The gaps: each filled, their trades the ones made while away.
    let db0 = live.client(0).await.unwrap();
    let gaps: Vec<(String, HashMap<String, String>)> = db0
        .xrange(format!("gaps:{venue}"), "-", "+", None)
        .await
        .unwrap();
    assert!(!gaps.is_empty(), "no gap recorded\n{text}");
    let mut filled = 0;
    for (id, g) in &gaps {
        assert_eq!(g["outcome"], "filled", "gap {id}: {g:?}");
        assert_eq!(g["missing"], "0", "gap {id}: {g:?}");
        let span = g["to_id"].parse::<u64>().unwrap() - g["from_id"].parse::<u64>().unwrap() + 1;
        assert_eq!(g["filled"].parse::<u64>().unwrap(), span, "gap {id}: {g:?}");
        filled += span;
        assert!(symbols.contains(&g["symbol"].as_str()), "{g:?}");
    }
    assert_eq!(
        filled, missed,
        "the gaps' trades are those made while away: {gaps:?}"
    );
    assert!(
        ttl(&db0, &format!("gaps:{venue}")).await > 0,
        "gaps:{venue} has the system DB's TTL"
    );

    // A replay of every trade made, into a fresh Redis.
    let file = recording(dir.path(), venue, &made);
    let reference = redis();
    let (out, replayed, _) = run(tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &reference.url(), "replay", "--max"])
        .arg(&file));
    assert!(out.status.success(), "replay: {replayed}");
    assert_eq!(
        summary_value(&replayed, "ticks written"),
        total,
        "{replayed}"
    );
    let (got, want) = (state(&live).await, state(&reference).await);
    assert!(
        !got.iter().any(|(_, k, _)| k.starts_with("deadletter:")),
        "{got:?}"
    );
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
async fn binance_trades_missed_while_dropped_are_filled_from_historical_trades() {
    dropped_connections_are_filled(
        TradeFormat::BinanceTrade,
        "binance",
        "trade",
        &["BTCUSDT", "ETHUSDT"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_agg_trades_missed_while_dropped_are_filled_from_agg_trades() {
    dropped_connections_are_filled(
        TradeFormat::BinanceAggTrade,
        "binance",
        "aggTrade",
        &["BTCUSDT", "ETHUSDT"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_trades_missed_while_dropped_are_filled_from_history_trades() {
    dropped_connections_are_filled(TradeFormat::Okx, "okx", "trades", &["BTC-USDT", "ETH-USDT"])
        .await;
}
