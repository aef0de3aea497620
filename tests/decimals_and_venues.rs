//! Prices and quantities stay the exact decimals they arrive as, and
//! instruments of two exchanges never share a key silently.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use fred::prelude::*;
use tickwire_core::config::Overrides;
use tickwire_core::Config;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::prelude::*;

/// Integer thousandths (or cents) as the shortest decimal text: 19069, 3 -> "19.069".
fn shortest(units: i64, scale: u32) -> String {
    let p = 10i64.pow(scale);
    let (int, frac) = (units / p, units % p);
    let mut frac = format!("{frac:0width$}", width = scale as usize);
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// A Binance futures-shaped trade dump: 3-decimal quantities, 2-decimal
/// prices, written with the dump's trailing zeros. Returns the file's trades
/// as (ms, price cents, qty thousandths).
fn trade_dump(dir: &std::path::Path) -> (PathBuf, Vec<(i64, i64, i64)>) {
    let start = 1_704_067_200_000i64; // 2024-01-01 00:00 UTC
    let mut x: u64 = 42;
    let mut next = |m: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) % m
    };
    let mut body = String::new();
    let mut trades = Vec::new();
    let mut cents = 4_228_358i64;
    for i in 0..900i64 {
        let ts = start + i * 700 + next(300) as i64;
        cents += next(21) as i64 - 10;
        let qty = 1 + next(20_000) as i64; // 0.001 .. 20.000
        trades.push((ts, cents, qty));
        body += &format!(
            "{},{}.{:02}000000,{}.{:03}00000,0,{ts},false,true\n",
            3_000_000 + i,
            cents / 100,
            cents % 100,
            qty / 1000,
            qty % 1000
        );
    }
    (write(dir, "BTCUSDT-trades-2024-01-01.csv", &body), trades)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_volumes_and_prices_are_exact_decimal_sums() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let (file, trades) = trade_dump(dir.path());
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(s.writer.ticks_written, trades.len() as u64);

    // Expected bars per minute in integer units.
    #[derive(Default)]
    struct B {
        o: i64,
        h: i64,
        l: i64,
        c: i64,
        v: i64,
        n: u64,
        float_v: f64,
    }
    let mut bars: BTreeMap<i64, B> = BTreeMap::new();
    for &(ts, p, q) in &trades {
        let b = bars.entry(ts - ts % 60_000).or_insert(B {
            o: p,
            h: p,
            l: p,
            ..B::default()
        });
        b.h = b.h.max(p);
        b.l = b.l.min(p);
        b.c = p;
        b.v += q;
        b.n += 1;
        b.float_v += q as f64 / 1000.0;
    }
    // The test means something: summed as f64, some bar prints float noise.
    assert!(
        bars.values()
            .any(|b| b.float_v.to_string() != shortest(b.v, 3)),
        "no bar whose f64 volume would print noise"
    );

    let db4 = server.client(4).await.unwrap();
    let mut written: BTreeMap<i64, std::collections::HashMap<String, String>> =
        xrange(&db4, "bars:1m:BTCUSDT")
            .await
            .into_iter()
            .map(|(_, f)| (f["ts"].parse().unwrap(), f))
            .collect();
    let forming = hgetall(&db4, "bars:1m:BTCUSDT:forming").await;
    if !forming.is_empty() {
        written.insert(forming["ts"].parse().unwrap(), forming);
    }
    assert_eq!(written.len(), bars.len());
    for (open, b) in &bars {
        let w = &written[open];
        let got: Vec<&str> = ["o", "h", "l", "c", "v", "n"]
            .iter()
            .map(|f| w[*f].as_str())
            .collect();
        let want = [
            shortest(b.o, 2),
            shortest(b.h, 2),
            shortest(b.l, 2),
            shortest(b.c, 2),
            shortest(b.v, 3),
            b.n.to_string(),
        ];
        assert_eq!(got, want, "bar {open}");
    }

    // Buckets and the session total: the exact sums too.
    let db5 = server.client(5).await.unwrap();
    for (open, b) in &bars {
        let minute = (open / 60_000) % 1440;
        let key = format!(
            "volume:bucket:BTCUSDT:2024-01-01:{:02}:{:02}",
            minute / 60,
            minute % 60
        );
        assert_eq!(
            hgetall(&db5, &key).await["volume"],
            shortest(b.v, 3),
            "{key}"
        );
    }
    let total: i64 = trades.iter().map(|t| t.2).sum();
    let session = hgetall(&db5, "volume:session:BTCUSDT:2024-01-01").await;
    assert_eq!(session["volume"], shortest(total, 3));
    assert_eq!(session["trades"], trades.len().to_string());

    // Ticks and the last price: the dump's text less its trailing zeros.
    let ticks = xrange(&db4, "ticks:BTCUSDT").await;
    for (e, t) in ticks.iter().zip(&trades) {
        assert_eq!(
            (field(e, "ltp"), field(e, "qty")),
            (shortest(t.1, 2).as_str(), shortest(t.2, 3).as_str())
        );
    }
    let last = trades.last().unwrap();
    let price = hgetall(&server.client(2).await.unwrap(), "price:BTCUSDT").await;
    assert_eq!(price["ltp"], shortest(last.1, 2));
}

fn opts(config: &Config, files: Vec<PathBuf>) -> ReplayOptions {
    ReplayOptions {
        feeds: config.feeds.clone(),
        files,
        format: None,
        symbol: None,
        pace: Pace::Max,
        max_raw: config.streams.deadletter_raw_bytes,
        chunk_events: 64,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        close_at_end: false,
    }
}

const FUTURES: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
    binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132\n\
    binance-futures,BTCUSDT,1582329602111999,1582329602418420,42377945,sell,9681.5,0.412\n";
/// Binance spot trades of the same milliseconds.
const SPOT: &str = "1,9684.1,0.5,0,1582329602111,false,true\n\
    2,9684.2,0.25,0,1582329602112,false,true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_after_futures_in_a_later_run_is_refused_naming_both() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let futures = write(dir.path(), "futures.csv", FUTURES);
    let spot = write(dir.path(), "BTCUSDT-trades-2020-02-22.csv", SPOT);
    let config = config(&server, "");
    replay(&config, &[futures]).await;
    let err = replay_to_end(&config, opts(&config, vec![spot]))
        .await
        .expect_err("a spot tick on a futures key must be refused");
    let msg = format!("{err:#}");
    for needle in [
        "binance-futures",
        "BTCUSDT of binance ",
        "price:BTCUSDT",
        "{exchange}",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    // Nothing of the spot file landed.
    let db4 = server.client(4).await.unwrap();
    let len: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    assert_eq!(len, 2);
    let price = hgetall(&server.client(2).await.unwrap(), "price:BTCUSDT").await;
    assert_eq!(
        (price["exchange"].as_str(), price["ltp"].as_str()),
        ("binance-futures", "9681.5")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_exchanges_in_one_run_are_refused_and_exchange_templates_separate_them() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let futures = write(dir.path(), "futures.csv", FUTURES);
    let spot = write(dir.path(), "BTCUSDT-trades-2020-02-22.csv", SPOT);
    let config = config(&server, "");
    let err = replay_to_end(&config, opts(&config, vec![futures.clone(), spot.clone()]))
        .await
        .expect_err("two exchanges on one key in one run must be refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("BTCUSDT of binance-futures and BTCUSDT of binance "),
        "{msg}"
    );

    // With the {exchange} templates both land side by side.
    let server = redis();
    let toml = r#"
        [keys]
        tick_stream = "ticks:{exchange}:{symbol}"
        last_price = "price:{exchange}:{symbol}"
        bar_stream = "bars:{interval}:{exchange}:{symbol}"
        bar_forming = "bars:{interval}:{exchange}:{symbol}:forming"
        indicator = "indicator:{name}:{exchange}:{symbol}"
        indicator_state = "indicator:state:{exchange}:{symbol}"
        volume_bucket = "volume:bucket:{exchange}:{symbol}:{session}:{HH}:{MM}"
        volume_baseline = "volume:baseline:{exchange}:{symbol}:{HH}:{MM}"
        volume_session = "volume:session:{exchange}:{symbol}:{session}"
        volume_profile = "volume:profile:{exchange}:{symbol}:{session}"
        volume_sessions = "volume:sessions:{exchange}:{symbol}"
        depth = "depth:{exchange}:{symbol}"
    "#;
    let config = common::config(&server, toml);
    let s = replay(&config, &[futures, spot]).await;
    assert_eq!(s.writer.ticks_written, 4);
    let db4 = server.client(4).await.unwrap();
    for key in ["ticks:binance-futures:BTCUSDT", "ticks:binance:BTCUSDT"] {
        assert_eq!(xrange(&db4, key).await.len(), 2, "{key}");
    }
}

#[test]
fn two_feeds_that_would_share_a_key_are_refused_at_start() {
    let toml = r#"
        [[feeds]]
        name = "spot"
        venue = "binance"
        symbols = ["BTCUSDT", "ETHUSDT"]

        [[feeds]]
        name = "perp"
        venue = "binance-futures"
        symbols = ["btcusdt"]
    "#;
    let err = Config::from_toml(toml, &Overrides::default(), tickwire_parse::VENUES)
        .expect_err("spot and futures BTCUSDT on ticks:{symbol} must be refused");
    let msg = err.to_string();
    for needle in [
        "feeds[1].symbols",
        "`spot`",
        "`perp`",
        "ticks:BTCUSDT",
        "{exchange}",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    assert!(!msg.contains("ETHUSDT"), "{msg}");
}
