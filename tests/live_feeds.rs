//! Live feeds against a scripted WebSocket server on 127.0.0.1: reconnects,
//! resubscription, idle timeouts, pings both ways, malformed frames, a slow
//! Redis, and record -> replay equal to the live run. Frames follow each
//! venue's documented message format; Dhan packets are built from its
//! published byte layout.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use fred::prelude::*;
use tickwire_testkit::prelude::*;
use tickwire_testkit::ws_server::{Seen, Step, WsServer};

const LIVE: &str = "
[live]
connect_timeout_ms = 2000
idle_timeout_ms = 600
ping_interval_ms = 200
backoff_initial_ms = 50
backoff_max_ms = 200
";

fn text(s: &str) -> Step {
    Step::Text(s.to_string())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A Binance combined-stream trade (the `trade` event of the API docs).
fn binance_trade(id: u64, price: &str, qty: &str, t_ms: i64) -> String {
    binance_trade_of("BTCUSDT", id, price, qty, t_ms)
}

async fn xlen(c: &Client, key: &str) -> u64 {
    c.xlen(key).await.unwrap()
}

async fn get(c: &Client, key: &str) -> Option<String> {
    c.get(key).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_feed_rides_through_a_drop_a_stall_and_garbage() {
    let t0 = 1_704_067_200_000i64; // 2024-01-01 00:00 UTC
    let book = r#"{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT","b":"42000.00","B":"1.50","a":"42000.20","A":"2.00"}}"#;
    let server = WsServer::start(
        vec![
            vec![
                Step::ExpectText,
                text(r#"{"result":null,"id":1}"#),
                text(&binance_trade(1, "42000.10", "0.015", t0 + 100)),
                text(&binance_trade(2, "42000.30", "0.200", t0 + 250)),
                Step::Ping,
                Step::Wait(ms(150)),
                text("{oops"),
                Step::Wait(ms(50)),
                Step::Drop,
            ],
            vec![
                Step::ExpectText,
                text(&binance_trade(3, "41999.90", "1.000", t0 + 900)),
                Step::Binary(vec![1, 2, 3]),
                // Silent past the idle timeout: the client must give up on it.
                Step::Stall(ms(2_500)),
            ],
            vec![
                Step::ExpectText,
                text(&binance_trade(4, "42001.00", "0.500", t0 + 1_500)),
                text(book),
                Step::Hold,
            ],
        ],
        false,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}{}",
        feed_toml(
            "bn",
            "binance",
            &server.url("/stream"),
            &["BTCUSDT"],
            &["trade", "bookTicker"]
        )
    );
    let config = config(&redis, &toml);
    let run = LiveRun::start(&config, None);
    let db4 = redis.client(4).await.unwrap();
    let db2 = redis.client(2).await.unwrap();
    let db0 = redis.client(0).await.unwrap();
    wait_until(
        Duration::from_secs(15),
        "4 ticks and the book in Redis",
        || async {
            xlen(&db4, "ticks:BTCUSDT").await == 4
                && hgetall(&db2, "price:BTCUSDT").await.contains_key("bid")
        },
    )
    .await;
    assert_eq!(
        get(&db0, "feed:bn:status").await.as_deref(),
        Some("connected")
    );
    // Quiet but healthy: tickwire pings it and the server's pongs keep it up.
    tokio::time::sleep(ms(900)).await;
    let summary = run.finish().await;

    // Three connections, each subscribed again to everything.
    assert_eq!(server.connections(), 3, "{:?}", server.seen());
    for i in 0..3 {
        let texts = server.texts(i);
        assert_eq!(
            texts.first().map(String::as_str),
            Some(
                r#"{"id":1,"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@bookTicker"]}"#
            ),
            "connection {i}"
        );
    }
    let seen = server.seen();
    assert!(
        seen.contains(&Seen::Pong(0)),
        "the server's ping was answered: {seen:?}"
    );
    assert!(
        seen.contains(&Seen::Ping(2)),
        "tickwire pinged the quiet socket: {seen:?}"
    );

    let ticks = xrange(&db4, "ticks:BTCUSDT").await;
    let ids: Vec<&str> = ticks.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1704067200100-0",
            "1704067200250-0",
            "1704067200900-0",
            "1704067201500-0"
        ]
    );
    assert_eq!(field(&ticks[2], "ltp"), "41999.9");
    let price = hgetall(&db2, "price:BTCUSDT").await;
    assert_eq!(
        (
            price["ltp"].as_str(),
            price["bid"].as_str(),
            price["ask"].as_str()
        ),
        ("42001", "42000", "42000.2")
    );
    let dead = xrange(&db0, "deadletter:bn").await;
    let errors: Vec<&str> = dead.iter().map(|e| field(e, "error")).collect();
    assert_eq!(dead.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("json: "), "{errors:?}");
    assert!(errors[1].starts_with("unexpected_binary: "), "{errors:?}");
    assert_eq!(field(&dead[0], "raw"), "{oops");
    assert_eq!(
        field(&dead[1], "raw"),
        "AQID",
        "binary frames dead-lettered as base64"
    );

    // The drop and the idle timeout: two reconnects, said in Redis and the summary.
    let feed = &summary.feeds[0];
    assert_eq!((feed.reconnects, feed.idle_timeouts), (2, 1), "{feed:?}");
    assert!(feed.pings_sent >= 2, "{feed:?}");
    assert_eq!(
        get(&db0, "feed:bn:status").await.as_deref(),
        Some("disconnected")
    );
    assert_eq!(get(&db0, "feed:bn:reconnects").await.as_deref(), Some("2"));
    assert_ttl(&db0, "feed:bn:status").await;
    assert_eq!((summary.ingest.ticks, summary.writer.ticks_written), (4, 4));
    assert_eq!(summary.ingest.rejected, 2);
    let text = summary.render();
    assert!(text.starts_with("run finished"), "{text}");
    assert!(text.contains("bn"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_keepalive_is_the_text_ping_and_quotes_update_only_the_price_hash() {
    let trades = |id: u64, px: &str, ts: i64| {
        format!(
            r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"{id}","px":"{px}","sz":"0.25","side":"buy","ts":"{ts}","count":"1"}}]}}"#
        )
    };
    let tickers = r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"42010.5","lastSz":"0.1","askPx":"42010.6","askSz":"1.2","bidPx":"42010.4","bidSz":"0.8","open24h":"41000","high24h":"42500","low24h":"40800","sodUtc0":"41500","sodUtc8":"41600","volCcy24h":"1000000","vol24h":"24","ts":"1704067201000"}]}"#;
    let server = WsServer::start(
        vec![vec![
            Step::ExpectText,
            text(r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}"#),
            text(&trades(501, "42010.5", 1_704_067_200_500)),
            text(tickers),
            // Quiet for 5 idle-pings' worth: the text pings and pongs keep it up.
            Step::Wait(ms(1_300)),
            text(&trades(502, "42011", 1_704_067_202_000)),
            Step::Hold,
        ]],
        true,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}{}",
        feed_toml(
            "okx-main",
            "okx",
            &server.url("/ws/v5/public"),
            &["BTC-USDT"],
            &["trades", "tickers"]
        )
    );
    let config = config(&redis, &toml);
    let run = LiveRun::start(&config, None);
    let db4 = redis.client(4).await.unwrap();
    wait_until(Duration::from_secs(15), "both OKX trades", || async {
        xlen(&db4, "ticks:BTC-USDT").await == 2
    })
    .await;
    let summary = run.finish().await;
    assert_eq!(server.connections(), 1, "{:?}", server.seen());
    let texts = server.texts(0);
    let sub: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(
        sub,
        serde_json::json!({"op": "subscribe", "args": [
            {"channel": "trades", "instId": "BTC-USDT"},
            {"channel": "tickers", "instId": "BTC-USDT"}
        ]})
    );
    let pings = texts.iter().filter(|t| *t == "ping").count();
    assert!(pings >= 3, "text pings sent: {texts:?}");
    assert_eq!(summary.feeds[0].reconnects, 0);
    let db2 = redis.client(2).await.unwrap();
    let price = hgetall(&db2, "price:BTC-USDT").await;
    assert_eq!(
        (
            price["ltp"].as_str(),
            price["bid"].as_str(),
            price["ask"].as_str()
        ),
        ("42011", "42010.4", "42010.6")
    );
    // The tickers push is a quote: two ticks in the stream, not three.
    assert_eq!(summary.ingest.quotes, 1);
    // The pongs and the subscribe reply are skipped, never dead-lettered.
    assert_eq!(summary.ingest.rejected, 0);
    assert!(summary.ingest.skipped >= 4, "{:?}", summary.ingest);
}

/// 2024-01-02 10:00:00 IST, in NSE's continuous session, as Dhan sends it:
/// IST wall-clock seconds (04:30 UTC is 1_704_169_800).
const LTT: u32 = 1_704_189_600;

/// A Dhan connection dropped: the next packet's day volume grew by more
/// than its last trade. Dhan keeps no trade history, so the gap is recorded
/// `unfillable` (its ids the day volumes before and after, its times the
/// trades'), and the trade after it carries the whole growth: the session's
/// volume is the exchange's day volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dhan_gap_is_recorded_unfillable_and_its_volume_lands_in_the_next_trade() {
    let server = WsServer::start(
        vec![
            vec![
                Step::ExpectText,
                Step::Binary(dhan_full(1, 2885, 2450.05, 25, LTT, 120_000)),
                Step::Binary(dhan_full(1, 2885, 2451.0, 10, LTT + 1, 120_010)),
                Step::Drop,
            ],
            vec![
                Step::ExpectText,
                // 50 traded since: the packet's own trade was 5.
                Step::Binary(dhan_full(1, 2885, 2452.0, 5, LTT + 5, 120_060)),
                Step::Hold,
            ],
        ],
        false,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}{}",
        feed_toml(
            "dhan",
            "dhan",
            &server.url("/"),
            &["NSE_EQ:2885=RELIANCE"],
            &["full"]
        )
    );
    let config = config(&redis, &toml);
    let run = LiveRun::start(&config, None);
    let db4 = redis.client(4).await.unwrap();
    wait_until(Duration::from_secs(15), "three Dhan trades", || async {
        xlen(&db4, "ticks:RELIANCE").await == 3
    })
    .await;
    let summary = run.finish().await;
    assert_eq!(summary.state.gaps, 1, "{summary:?}");
    let ticks = xrange(&db4, "ticks:RELIANCE").await;
    let qty: Vec<(&str, &str)> = ticks
        .iter()
        .map(|t| (field(t, "qty"), field(t, "ltq")))
        .collect();
    assert_eq!(qty, [("120000", "25"), ("10", "10"), ("50", "5")]);
    let db0 = redis.client(0).await.unwrap();
    let gaps = xrange(&db0, "gaps:dhan").await;
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = &gaps[0];
    // LTT + 1 and LTT + 5 as IST wall clock: UTC epoch ms.
    let ms = |ltt: u32| ((i64::from(ltt) - 19_800) * 1000).to_string();
    assert_eq!(
        [
            field(g, "symbol"),
            field(g, "outcome"),
            field(g, "reason"),
            field(g, "from_id"),
            field(g, "to_id"),
            field(g, "filled"),
            field(g, "missing"),
        ],
        [
            "RELIANCE",
            "unfillable",
            "no_history",
            "120010",
            "120060",
            "0",
            "0"
        ]
    );
    assert_eq!(
        (field(g, "from_ts"), field(g, "to_ts")),
        (ms(LTT + 1).as_str(), ms(LTT + 5).as_str())
    );
    let db5 = redis.client(5).await.unwrap();
    let session = hgetall(&db5, "volume:session:RELIANCE:2024-01-02").await;
    assert_eq!(session["volume"], "120060");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhan_binary_feed_names_symbols_and_keeps_depth_in_the_microstructure_db() {
    let server = WsServer::start(
        vec![vec![
            Step::ExpectText,
            Step::Binary(dhan_full(1, 2885, 2450.05, 25, LTT, 120_000)),
            // Two packets in one message; the first only moved the book.
            Step::Binary(
                [
                    dhan_full(1, 2885, 2450.05, 25, LTT, 120_000),
                    dhan_full(1, 2885, 2451.0, 10, LTT + 1, 120_010),
                ]
                .concat(),
            ),
            Step::Binary(vec![8, 162, 0]),
            Step::Hold,
        ]],
        false,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}{}",
        feed_toml(
            "dhan",
            "dhan",
            &server.url("/"),
            &["NSE_EQ:2885=RELIANCE"],
            &["full"]
        )
    );
    let config = config(&redis, &toml);
    let run = LiveRun::start(&config, None);
    let db4 = redis.client(4).await.unwrap();
    let db8 = redis.client(8).await.unwrap();
    wait_until(
        Duration::from_secs(15),
        "two Dhan trades and the depth",
        || async {
            xlen(&db4, "ticks:RELIANCE").await == 2
                && hgetall(&db8, "depth:RELIANCE")
                    .await
                    .get("ts")
                    .map(String::as_str)
                    == Some("1704169801000")
        },
    )
    .await;
    let summary = run.finish().await;
    let sub: serde_json::Value = serde_json::from_str(&server.texts(0)[0]).unwrap();
    assert_eq!(
        sub,
        serde_json::json!({"RequestCode": 21, "InstrumentCount": 1,
            "InstrumentList": [{"ExchangeSegment": "NSE_EQ", "SecurityId": "2885"}]})
    );
    let ticks = xrange(&db4, "ticks:RELIANCE").await;
    assert_eq!(ticks[1].0, "1704169801000-0");
    assert_eq!(
        (
            field(&ticks[1], "ltp"),
            field(&ticks[1], "qty"),
            field(&ticks[1], "vol")
        ),
        ("2451", "10", "120010")
    );
    assert_eq!(
        (field(&ticks[1], "bid"), field(&ticks[1], "ask")),
        ("2450.95", "2451.05")
    );
    let depth = hgetall(&db8, "depth:RELIANCE").await;
    assert_eq!(depth.len(), 2 + 5 * 6, "{depth:?}");
    assert_eq!(
        (
            depth["bid1"].as_str(),
            depth["ask1"].as_str(),
            depth["bid5"].as_str(),
            depth["bid5_qty"].as_str(),
            depth["ask5_orders"].as_str()
        ),
        ("2450.95", "2451.05", "2450.75", "500", "6")
    );
    assert_ttl(&db8, "depth:RELIANCE").await;
    let db0 = redis.client(0).await.unwrap();
    let dead = xrange(&db0, "deadletter:dhan").await;
    assert_eq!(dead.len(), 1);
    assert!(
        field(&dead[0], "error").starts_with("bad_length"),
        "{dead:?}"
    );
    assert_eq!(summary.ingest.ticks, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replays_to_the_state_of_the_live_run() {
    let t0 = 1_704_067_200_000i64;
    let mut bn = vec![Step::ExpectText, text(r#"{"result":null,"id":1}"#)];
    // 3 minutes of trades (bars and indicators close), a bad frame, a drop.
    for i in 0..180 {
        let price = format!("{:.2}", 42_000.0 + ((i * 37) % 101) as f64 - 50.0);
        bn.push(text(&binance_trade(
            i,
            &price,
            "0.1",
            t0 + i as i64 * 1_000,
        )));
        if i == 90 {
            bn.push(text("{not json"));
            bn.push(Step::Wait(ms(20)));
            bn.push(Step::Drop);
        }
    }
    let (first, second) = bn.split_at(bn.iter().position(|s| matches!(s, Step::Drop)).unwrap() + 1);
    let mut second = second.to_vec();
    second.insert(0, Step::ExpectText);
    second.push(Step::Hold);
    let binance = WsServer::start(vec![first.to_vec(), second], false)
        .await
        .unwrap();
    let mut dh = vec![Step::ExpectText];
    for i in 0..20u32 {
        dh.push(Step::Binary(dhan_full(
            1,
            2885,
            2450.0 + i as f32 * 0.05,
            5,
            LTT + i * 7,
            1_000 + i * 5,
        )));
    }
    dh.push(Step::Hold);
    let dhan = WsServer::start(vec![dh], false).await.unwrap();
    let own = WsServer::start(
        vec![vec![
            Step::ExpectText,
            // On BSE: an exchange's clock in a live run is its latest tick's
            // time, and these old trades would move NSE's ahead of RELIANCE's
            // packets still on their way, closing RELIANCE's bars by the
            // clock (which a replay, whose input is its only clock, does not).
            text(r#"{"exchange":"BSE","symbol":"SBIN","ts":1704169805123,"ltp":612.35,"qty":25,"vol":125000}"#),
            text(r#"{"exchange":"BSE","symbol":"SBIN","ts":1704169806000,"ltp":612.4,"qty":5}"#),
            text(r#"{"exchange":"BSE","symbol":"SBIN","ltp":1}"#),
            Step::Hold,
        ]],
        false,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}{}{}{}",
        feed_toml(
            "spot",
            "binance",
            &binance.url("/stream"),
            &["BTCUSDT"],
            &["trade"]
        ),
        feed_toml(
            "nse",
            "dhan",
            &dhan.url("/"),
            &["NSE_EQ:2885=RELIANCE"],
            &[]
        ),
        feed_toml("inhouse", "tickwire", &own.url("/ticks"), &["SBIN"], &[]),
    );
    let config = config(&redis, &toml);
    let dir = tempfile::tempdir().unwrap();
    let run = LiveRun::start(&config, Some(dir.path().to_path_buf()));
    let db4 = redis.client(4).await.unwrap();
    wait_until(Duration::from_secs(20), "every feed's ticks", || async {
        xlen(&db4, "ticks:BTCUSDT").await == 180
            && xlen(&db4, "ticks:RELIANCE").await == 20
            && xlen(&db4, "ticks:SBIN").await == 2
    })
    .await;
    let live = run.finish().await;
    assert_eq!(live.feeds.iter().map(|f| f.reconnects).sum::<u64>(), 1);
    let recorded = live.record.clone().expect("the run recorded");
    assert!(!recorded.files.is_empty());
    assert_eq!(recorded.frames, live.ingest.lines, "every frame recorded");

    let dbs = [0u8, 2, 3, 4, 5, 8];
    // Feed status keys say how the connections went; a replay has none.
    let without_status = |snap: Vec<(u8, String, String)>| -> Vec<(u8, String, String)> {
        snap.into_iter()
            .filter(|(_, k, _)| !k.starts_with("feed:"))
            .collect()
    };
    let from_live = without_status(snapshot(&redis, &dbs).await);
    assert!(from_live
        .iter()
        .any(|(db, k, _)| *db == 4 && k == "bars:1m:BTCUSDT"));
    assert!(from_live
        .iter()
        .any(|(db, k, _)| *db == 8 && k == "depth:RELIANCE"));
    assert!(from_live
        .iter()
        .any(|(db, k, _)| *db == 0 && k == "deadletter:inhouse"));
    let c = redis.client(0).await.unwrap();
    let _: () = c.flushall(false).await.unwrap();

    let replayed = replay_open(&config, &recorded.files).await;
    let from_replay = without_status(snapshot(&redis, &dbs).await);
    assert_eq!(replayed.ingest.ticks, live.ingest.ticks);
    let names = |s: &[(u8, String, String)]| -> Vec<(u8, String)> {
        s.iter().map(|(db, k, _)| (*db, k.clone())).collect()
    };
    assert_eq!(names(&from_replay), names(&from_live));
    for (a, b) in from_live.iter().zip(&from_replay) {
        assert_eq!(a, b, "db {} key {}", a.0, a.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_does_not_time_out_the_feed() {
    let t0 = 1_704_067_200_000i64;
    let n = 20_000usize;
    let mut script = vec![Step::ExpectText, Step::Wait(ms(600))];
    for i in 0..n {
        script.push(text(&binance_trade(
            i as u64,
            "42000.5",
            "0.01",
            t0 + i as i64,
        )));
        if i % 5_000 == 0 {
            script.push(Step::Ping);
        }
    }
    // Redis stays paused well past the feed's idle timeout.
    script.push(Step::Wait(ms(2_000)));
    script.push(Step::Hold);
    let server = WsServer::start(vec![script], false).await.unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}
[writer]
channel_capacity = 1
batch_size = 500
{}",
        feed_toml(
            "bn",
            "binance",
            &server.url("/stream"),
            &["BTCUSDT"],
            &["trade"]
        )
    );
    let config = config(&redis, &toml);
    let run = LiveRun::start(&config, None);
    wait_until(Duration::from_secs(10), "the subscription", || async {
        server.connections() == 1 && !server.texts(0).is_empty()
    })
    .await;
    let c = redis.client(0).await.unwrap();
    let _: () = c
        .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "2000", "WRITE"])
        .await
        .unwrap();
    let db4 = redis.client(4).await.unwrap();
    wait_until(
        Duration::from_secs(30),
        "every tick after Redis resumes",
        || async { xlen(&db4, "ticks:BTCUSDT").await == n as u64 },
    )
    .await;
    let summary = run.finish().await;
    let feed = &summary.feeds[0];
    assert_eq!(server.connections(), 1, "{:?}", server.seen());
    assert_eq!(
        (feed.reconnects, feed.idle_timeouts, feed.dropped),
        (0, 0, 0),
        "{feed:?}"
    );
    let pongs = server
        .seen()
        .iter()
        .filter(|s| matches!(s, Seen::Pong(0)))
        .count();
    assert_eq!(
        pongs, 4,
        "every server ping answered while Redis was paused"
    );
    // The feed kept reading while everything after it was full: the frames
    // waited in its backlog (counted) instead of blocking the socket.
    assert!(feed.backpressure > 0 && feed.max_backlog > 0, "{feed:?}");
    assert_eq!(summary.writer.ticks_written, n as u64);
}

/// A Binance combined-stream trade of `symbol` (upper case).
fn binance_trade_of(symbol: &str, id: u64, price: &str, qty: &str, t_ms: i64) -> String {
    format!(
        r#"{{"stream":"{}@trade","data":{{"e":"trade","E":{},"s":"{symbol}","t":{id},"p":"{price}","q":"{qty}","T":{t_ms},"m":false,"M":true}}}}"#,
        symbol.to_ascii_lowercase(),
        t_ms + 1
    )
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_instruments_minute_bar_closes_within_the_grace_after_the_minute() {
    // Trades stamped now, in the minute that ends at `end` (at least 5 s
    // away, so they are in Redis before it even on a loaded machine): ETH trades twice and falls
    // quiet; BTC trades again after the minute. The test waits for a real
    // minute to end (up to a minute).
    // The trades are stamped now: a stamp ahead of the wall clock would run
    // the instrument's clock ahead and close its bar early by the wall clock
    // (on time by the exchange's), so too close to a minute's end the test
    // waits for the next minute to begin rather than stamp into it.
    let mut now = wall_ms();
    let left = 60_000 - now.rem_euclid(60_000);
    if left < 5_000 {
        tokio::time::sleep(ms(left.unsigned_abs() + 50)).await;
        now = wall_ms();
    }
    let end = now - now.rem_euclid(60_000) + 60_000;
    let t = now;
    let grace = 300;
    let after_end = Duration::from_millis((end + 400 - now).unsigned_abs());
    let server = WsServer::start(
        vec![vec![
            Step::ExpectText,
            text(r#"{"result":null,"id":1}"#),
            text(&binance_trade_of("ETHUSDT", 7, "2300.5", "0.4", t)),
            text(&binance_trade_of("BTCUSDT", 70, "42000.1", "0.01", t)),
            text(&binance_trade_of("ETHUSDT", 8, "2301", "0.6", t + 1)),
            Step::Wait(after_end),
            text(&binance_trade_of("BTCUSDT", 71, "42001", "0.02", end + 400)),
            Step::Hold,
        ]],
        false,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = format!(
        "{LIVE}[bars]\nclose_grace_ms = {grace}\n{}",
        feed_toml(
            "bn",
            "binance",
            &server.url("/stream"),
            &["BTCUSDT", "ETHUSDT"],
            &["trade"]
        )
    );
    let config = config(&redis, &toml);
    let run = LiveRun::start(&config, None);
    let db4 = redis.client(4).await.unwrap();
    wait_until(
        Duration::from_secs(10),
        "ETH's two trades forming a bar",
        || async {
            hgetall(&db4, "bars:1m:ETHUSDT:forming")
                .await
                .get("n")
                .is_some_and(|n| n == "2")
        },
    )
    .await;
    assert!(
        wall_ms() < end,
        "the trades landed before their minute ended"
    );
    assert_eq!(xlen(&db4, "bars:1m:ETHUSDT").await, 0, "not closed early");
    // Both were quiet at the minute's end: each closes on its own timer, in
    // its own lane's pipeline, so one may land a few ms after the other.
    let (mut eth_closed, mut btc_closed) = (None, None);
    while eth_closed.is_none() || btc_closed.is_none() {
        let at = wall_ms();
        if eth_closed.is_none() && xlen(&db4, "bars:1m:ETHUSDT").await == 1 {
            eth_closed = Some(at);
        }
        if btc_closed.is_none() && xlen(&db4, "bars:1m:BTCUSDT").await == 1 {
            btc_closed = Some(at);
        }
        assert!(
            wall_ms() < end + 10_000,
            "the bars did not close by 10 s after their minute (ETH {eth_closed:?}, BTC {btc_closed:?})"
        );
        tokio::time::sleep(ms(10)).await;
    }
    for (symbol, closed_at) in [("ETH", eth_closed), ("BTC", btc_closed)] {
        let closed_at = closed_at.unwrap_or(i64::MAX);
        assert!(
            closed_at >= end + grace,
            "{symbol} closed {} ms after the minute, before its grace",
            closed_at - end
        );
        assert!(
            closed_at <= end + grace + 1_000,
            "{symbol} closed {} ms after the minute, later than grace + 1 s",
            closed_at - end
        );
    }
    // ETH's closed bar is no longer its forming bar: the hash went with the
    // close (right after it, by the same lane), within the grace and a
    // second of the minute.
    wait_until(
        Duration::from_secs(1),
        "ETH's forming hash gone after its close",
        || async { hgetall(&db4, "bars:1m:ETHUSDT:forming").await.is_empty() },
    )
    .await;
    assert!(wall_ms() <= end + grace + 1_000);
    let bars = xrange(&db4, "bars:1m:ETHUSDT").await;
    assert_eq!(bars[0].0, format!("{}-0", end - 60_000));
    assert_eq!(
        (
            field(&bars[0], "o"),
            field(&bars[0], "c"),
            field(&bars[0], "v"),
            field(&bars[0], "n")
        ),
        ("2300.5", "2301", "1", "2")
    );
    // BTC's next trade opens the new minute.
    wait_until(
        Duration::from_secs(5),
        "BTC's next trade forming the new minute",
        || async {
            hgetall(&db4, "bars:1m:BTCUSDT:forming")
                .await
                .get("ts")
                .is_some_and(|ts| *ts == end.to_string())
        },
    )
    .await;
    let summary = run.finish().await;
    assert_eq!(summary.writer.ticks_written, 4);
    // Stopping left BTC's new minute forming, not closed.
    assert_eq!(xlen(&db4, "bars:1m:BTCUSDT").await, 1);
    assert_eq!(
        hgetall(&db4, "bars:1m:BTCUSDT:forming")
            .await
            .get("n")
            .map(String::as_str),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_after_a_pause_closes_the_bar_the_pause_left_forming() {
    // The first run gets trades of two minutes ago (a feed catching up: the
    // exchange's clock runs from their time, so they are still forming when
    // it stops); the second run gets no trade at all, yet closes the bar at
    // start from the checkpoint of its configured symbol.
    let now = wall_ms();
    let t = now - now.rem_euclid(60_000) - 120_000;
    let first = WsServer::start(
        vec![vec![
            Step::ExpectText,
            text(r#"{"result":null,"id":1}"#),
            text(&binance_trade_of("ETHUSDT", 1, "2300", "0.5", t + 1_000)),
            text(&binance_trade_of("ETHUSDT", 2, "2301", "0.25", t + 2_000)),
            Step::Hold,
        ]],
        false,
    )
    .await
    .unwrap();
    let redis = redis();
    let toml = |url: &str| {
        format!(
            "{LIVE}{}",
            feed_toml("bn", "binance", url, &["ETHUSDT"], &["trade"])
        )
    };
    let run = LiveRun::start(&config(&redis, &toml(&first.url("/stream"))), None);
    let db4 = redis.client(4).await.unwrap();
    wait_until(
        Duration::from_secs(10),
        "two trades forming a bar",
        || async {
            hgetall(&db4, "bars:1m:ETHUSDT:forming")
                .await
                .get("n")
                .is_some_and(|n| n == "2")
        },
    )
    .await;
    run.finish().await;
    assert_eq!(
        xlen(&db4, "bars:1m:ETHUSDT").await,
        0,
        "stopping closed nothing"
    );

    let quiet = WsServer::start(vec![vec![Step::ExpectText, Step::Hold]], false)
        .await
        .unwrap();
    let run = LiveRun::start(&config(&redis, &toml(&quiet.url("/stream"))), None);
    wait_until(
        Duration::from_secs(10),
        "the paused bar closed by the second run",
        || async { xlen(&db4, "bars:1m:ETHUSDT").await == 1 },
    )
    .await;
    let summary = run.finish().await;
    assert_eq!(summary.ingest.ticks, 0);
    let bars = xrange(&db4, "bars:1m:ETHUSDT").await;
    assert_eq!(bars[0].0, format!("{t}-0"));
    assert_eq!(
        (
            field(&bars[0], "n"),
            field(&bars[0], "v"),
            field(&bars[0], "c")
        ),
        ("2", "0.75", "2301")
    );
    // The closed bar is not left as the forming one, and a third run (a
    // restart across the close) brings nothing back.
    assert!(hgetall(&db4, "bars:1m:ETHUSDT:forming").await.is_empty());
    let run = LiveRun::start(&config(&redis, &toml(&quiet.url("/stream"))), None);
    tokio::time::sleep(ms(1_500)).await;
    run.finish().await;
    assert!(hgetall(&db4, "bars:1m:ETHUSDT:forming").await.is_empty());
    assert_eq!(xlen(&db4, "bars:1m:ETHUSDT").await, 1);
}

/// Every key of DBs 2 to 5 with its content, the feed status keys aside.
async fn outputs(redis: &tickwire_testkit::RedisServer) -> Vec<(u8, String, String)> {
    snapshot(redis, &[2, 3, 4, 5])
        .await
        .into_iter()
        .filter(|(_, k, _)| !k.starts_with("feed:"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_whose_redis_stalls_across_a_minute_closes_every_bar_as_its_recording_does() {
    use tickwire_testkit::ws_server::Flood;
    const SYMBOLS: [&str; 4] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"];
    // The suite's size; benches/stall_bars.sh runs 5,000 frames/s and 15 s.
    let rate = env_or("TICKWIRE_STALL_RATE", 2_000) as u32;
    let stall_ms = env_or("TICKWIRE_STALL_S", 4) * 1_000;
    for engine in ["inline", "lua"] {
        // The venue's clock runs behind the wall clock so that one of its
        // minutes ends 3 s into the flood; Redis stops taking writes 1.5 s
        // before that, for 4 s: the minute's last trades are received in
        // time and wait (in the parser's channel, the feed's backlog) behind
        // the stalled writer while the wall clock passes the minute's end
        // and its grace.
        let start = wall_ms() + 300;
        let boundary_at = start + 3_000;
        let boundary = boundary_at - boundary_at.rem_euclid(60_000);
        let behind = Duration::from_millis((boundary_at - boundary).unsigned_abs());
        let total = rate as usize * (5 + stall_ms as usize / 1_000);
        let (venue, flood) = WsServer::flood(Flood {
            symbols: SYMBOLS.map(String::from).to_vec(),
            rate,
            total,
            every: ms(2),
            behind,
            away: None,
        })
        .await
        .unwrap();
        let redis = redis();
        let toml = format!(
            "{LIVE}[bars]\nclose_grace_ms = 200\n[indicators]\nengine = \"{engine}\"\n\
             [writer]\nbatch_size = 100\nchannel_capacity = 2\n{}",
            feed_toml(
                "bn",
                "binance",
                &venue.url("/stream"),
                &["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"],
                &["trade"]
            )
        );
        let config = config(&redis, &toml);
        let dir = tempfile::tempdir().unwrap();
        let run = LiveRun::start(&config, Some(dir.path().to_path_buf()));
        let admin = redis.client(0).await.unwrap();
        let pause_at = boundary_at - 1_500;
        tokio::time::sleep(ms((pause_at - wall_ms()).max(0).unsigned_abs())).await;
        let _: Value = admin
            .custom(
                fred::cmd!("CLIENT"),
                vec!["PAUSE".to_string(), stall_ms.to_string(), "WRITE".into()],
            )
            .await
            .unwrap();
        let db4 = redis.client(4).await.unwrap();
        // How long after the last frame was sent every trade was in Redis.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40 + 3 * stall_ms / 1_000);
        let mut sent_all = None;
        while ticks_of(&db4, &SYMBOLS).await < total as u64 {
            if sent_all.is_none() && flood.sent.load(Ordering::Relaxed) >= total {
                sent_all = Some(tokio::time::Instant::now());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{engine}: not every trade landed"
            );
            tokio::time::sleep(ms(20)).await;
        }
        let caught_up = sent_all.map_or(Duration::ZERO, |t| t.elapsed());
        let live = run.finish().await;
        // A stall past the command timeout has batches sent again: what the
        // first attempt had applied is found there (a duplicate), not lost.
        assert_eq!(
            live.writer.ticks_written + live.writer.duplicates,
            total as u64,
            "{engine}"
        );
        assert_eq!(live.writer.ticks_failed, 0, "{engine}");
        let recorded = live.record.clone().expect("the run recorded");
        let from_live = outputs(&redis).await;
        // Every symbol's minute closed, the next one forming.
        for s in SYMBOLS {
            let bars = xrange(&db4, &format!("bars:1m:{s}")).await;
            assert_eq!(
                bars.last().map(|b| b.0.clone()),
                Some(format!("{}-0", boundary - 60_000)),
                "{engine} {s}"
            );
            let forming = hgetall(&db4, &format!("bars:1m:{s}:forming")).await;
            assert_eq!(
                forming.get("ts"),
                Some(&boundary.to_string()),
                "{engine} {s}"
            );
        }

        let _: () = admin.flushall(false).await.unwrap();
        let replayed = replay_open(&config, &recorded.files).await;
        assert_eq!(replayed.ingest.ticks, total as u64);
        let from_replay = outputs(&redis).await;
        let names = |s: &[(u8, String, String)]| -> Vec<(u8, String)> {
            s.iter().map(|(db, k, _)| (*db, k.clone())).collect()
        };
        assert_eq!(names(&from_live), names(&from_replay), "{engine}");
        for (a, b) in from_live.iter().zip(&from_replay) {
            assert_eq!(
                a, b,
                "{engine}: db {} key {} differs from the replay",
                a.0, a.1
            );
        }
        let mut in_minute = Vec::new();
        for s in SYMBOLS {
            let bars = xrange(&db4, &format!("bars:1m:{s}")).await;
            in_minute.push(
                bars.last()
                    .map(|b| field(b, "n").to_string())
                    .unwrap_or_default(),
            );
        }
        let feed = &live.feeds[0];
        println!(
            "stall figures ({engine}): {rate} frames/s, Redis paused {} s across the minute; \
             trades in the closed minute per symbol {in_minute:?}, equal to the replay's; \
             frames behind the parser at most {} (backpressure {}, spooled {}); every trade \
             in Redis {:.1} s after the last was sent",
            stall_ms / 1_000,
            feed.max_backlog,
            feed.backpressure,
            feed.spooled,
            caught_up.as_secs_f64()
        );
    }
}
