//! Key profiles against a private redis-server, read back with a plain client
//! the way the old consumers read them (HGETALL, LRANGE 0 99, GET + JSON).

mod common;

use std::time::Duration;

use common::*;
use fred::prelude::*;
use tickwire_core::profiles::Profiles;
use tickwire_core::Config;
use tickwire_testkit::ws_server::{Step, WsServer};

fn with_profiles(mut config: Config, names: &[&str]) -> Config {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    config.profiles = Profiles::load(&names).expect("built-in profiles load");
    config
}

/// 130 minutes of one NSE instrument from 09:15 IST, 3 trades a minute.
fn session_file(dir: &std::path::Path) -> (std::path::PathBuf, Vec<(i64, f64, f64)>) {
    let open = 1_704_167_100_000i64; // 2024-01-02 09:15 IST
    let mut body = String::new();
    let mut trades = Vec::new();
    for m in 0..130i64 {
        for k in 0..3i64 {
            let ts = open + m * 60_000 + k * 15_000;
            let price = 2_450.0 + ((m * 7 + k * 3) % 23) as f64 * 0.05;
            let qty = (1 + (m + k) % 5) as f64;
            trades.push((ts, price, qty));
            body += &format!(
                "{{\"exchange\":\"NSE\",\"segment\":\"NSE_EQ\",\"symbol\":\"RELIANCE\",\"security_id\":\"2885\",\"ts\":{ts},\"ltp\":{price},\"qty\":{qty},\"vol\":{}}}\n",
                1000 + m * 10 + k
            );
        }
    }
    (write(dir, "reliance.jsonl", &body), trades)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhanscalper_layout_alone() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let (file, trades) = session_file(dir.path());
    let config = with_profiles(config(&server, ""), &["dhanscalper"]);
    let first = replay(&config, std::slice::from_ref(&file)).await;
    assert_eq!(first.ingest.ticks, 390);
    let db0 = server.client(0).await.unwrap();

    // The last tick, as DhanScalper's consumers HGETALL it.
    let tick = hgetall(&db0, "dhan_scalper:v1:ticks:NSE_EQ:2885").await;
    let last = trades.last().unwrap();
    assert_eq!(tick["ltp"], last.1.to_string());
    assert_eq!(tick["ts"], last.0.to_string());
    assert_eq!(tick["vol"], "2292");
    assert_eq!(
        (tick["segment"].as_str(), tick["security_id"].as_str()),
        ("NSE_EQ", "2885")
    );
    // No ATP in the input: the session VWAP stands in for it.
    let (pq, q) = trades
        .iter()
        .fold((0.0, 0.0), |(pq, q), t| (pq + t.1 * t.2, q + t.2));
    let atp: f64 = tick["atp"].parse().unwrap();
    assert!((atp - pq / q).abs() <= 1e-9 * atp, "{atp} vs {}", pq / q);
    assert_eq!(tick.len(), 6, "{tick:?}");
    let t = ttl(&db0, "dhan_scalper:v1:ticks:NSE_EQ:2885").await;
    assert!((290..=300).contains(&t), "ticks TTL {t}");

    // The last 100 closed 1-minute bars, newest first, as JSON.
    let key = "dhan_scalper:v1:bars:NSE_EQ:2885:1";
    let bars: Vec<String> = db0.lrange(key, 0, 99).await.unwrap();
    let len: u64 = db0.llen(key).await.unwrap();
    assert_eq!((bars.len(), len), (100, 100), "capped at 100");
    let newest: serde_json::Value = serde_json::from_str(&bars[0]).unwrap();
    let minute_open = 1_704_167_100_000i64 + 129 * 60_000;
    let in_minute: Vec<_> = trades
        .iter()
        .filter(|t| t.0 >= minute_open && t.0 < minute_open + 60_000)
        .collect();
    assert_eq!(newest["ts"], minute_open);
    assert_eq!(newest["o"].as_f64(), Some(in_minute[0].1));
    assert_eq!(newest["c"].as_f64(), Some(in_minute[2].1));
    assert_eq!(
        newest["h"].as_f64(),
        in_minute.iter().map(|t| t.1).reduce(f64::max)
    );
    assert_eq!(
        newest["v"].as_f64(),
        Some(in_minute.iter().map(|t| t.2).sum())
    );
    let keys_of_bar: Vec<&String> = newest.as_object().unwrap().keys().collect();
    assert_eq!(keys_of_bar.len(), 6, "o/h/l/c/v/ts: {newest}");
    let oldest: serde_json::Value = serde_json::from_str(&bars[99]).unwrap();
    assert_eq!(oldest["ts"], minute_open - 99 * 60_000);
    let t = ttl(&db0, key).await;
    assert!((86_300..=86_400).contains(&t), "bars TTL {t}");

    // Its heartbeat hash, 300 s.
    let hb = hgetall(&db0, "dhan_scalper:v1:hb").await;
    assert_eq!(hb["pid"], std::process::id().to_string());
    assert!(hb.contains_key("ts"), "{hb:?}");
    let t = ttl(&db0, "dhan_scalper:v1:hb").await;
    assert!((290..=300).contains(&t), "hb TTL {t}");

    // Only what the profile names: no default layout anywhere.
    assert_eq!(
        keys(&db0).await,
        [
            "dhan_scalper:v1:bars:NSE_EQ:2885:1",
            "dhan_scalper:v1:hb",
            "dhan_scalper:v1:ticks:NSE_EQ:2885",
            // tickwire's own state, whatever the layout.
            "tickwire:checkpoint:NSE:RELIANCE"
        ]
    );
    for db in [2u8, 3, 4, 5, 6, 8] {
        assert!(
            keys(&server.client(db).await.unwrap()).await.is_empty(),
            "db {db}"
        );
    }

    // A second replay adds nothing to the list.
    replay(&config, &[file]).await;
    let again: Vec<String> = db0.lrange(key, 0, 99).await.unwrap();
    assert_eq!(again, bars);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tradingboost_beside_the_default_layout() {
    let trade = |id: u64, px: &str| {
        Step::Text(format!(
            r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"{id}","px":"{px}","sz":"0.5","side":"buy","ts":"{}"}}]}}"#,
            1_704_067_200_000 + id
        ))
    };
    let ws = WsServer::start(
        vec![vec![
            Step::ExpectText,
            trade(1, "42000.5"),
            trade(2, "42001"),
            Step::Hold,
        ]],
        true,
    )
    .await
    .unwrap();
    let server = redis();
    let toml = format!(
        "[[feeds]]\nname = \"okx-spot\"\nvenue = \"okx\"\nurl = \"{}\"\nsymbols = [\"BTC-USDT\"]\n",
        ws.url("/ws/v5/public")
    );
    let config = with_profiles(config(&server, &toml), &["default", "tradingboost"]);
    let stop = tickwire::CancellationToken::new();
    let run = {
        let (config, stop) = (config.clone(), stop.clone());
        tokio::spawn(async move { tickwire::run::run(&config, None, stop).await })
    };
    let db0 = server.client(0).await.unwrap();
    let mut price = serde_json::Value::Null;
    for _ in 0..500 {
        let v: Option<String> = db0.get("price:okx:BTC-USDT").await.unwrap();
        if let Some(v) = v {
            price = serde_json::from_str(&v).unwrap();
            if price["timestamp"] == 1_704_067_200_002i64 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // GET + JSON parse, as TradingBoost reads it.
    assert_eq!(
        price,
        // The exact decimal in its shortest form: 42001, not 42001.0.
        serde_json::json!({"price": 42001, "timestamp": 1_704_067_200_002i64})
    );
    let t = ttl(&db0, "price:okx:BTC-USDT").await;
    assert!((50..=60).contains(&t), "price TTL {t}");
    let status: Option<String> = db0.get("websocket:tickwire:okx:status").await.unwrap();
    assert_eq!(status.as_deref(), Some("connected"));
    stop.cancel();
    run.await.unwrap().unwrap();
    let status: Option<String> = db0.get("websocket:tickwire:okx:status").await.unwrap();
    assert_eq!(
        status.as_deref(),
        Some("disconnected"),
        "the mirror follows the feed"
    );
    // The default layout is written too.
    let db4 = server.client(4).await.unwrap();
    assert_eq!(xrange(&db4, "ticks:BTC-USDT").await.len(), 2);
    let default_status: Option<String> = db0.get("feed:okx-spot:status").await.unwrap();
    assert_eq!(default_status.as_deref(), Some("disconnected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_system_prices_indicators_and_updates() {
    use tickwire_testkit::synth::{write_ticks, SynthSpec};
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // The series of the TA-Lib fixture.
    let spec = SynthSpec {
        instruments: 3,
        sessions: 2,
        ticks_per_session: 3_000,
        seed: 5,
        start: jiff::civil::date(2024, 1, 1),
    };
    let mut data = Vec::new();
    write_ticks(&spec, &mut data).unwrap();
    let file = write(
        dir.path(),
        "week.jsonl",
        std::str::from_utf8(&data).unwrap(),
    );
    // The day of RELIANCE's last trade, from the file.
    let lines: Vec<serde_json::Value> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .filter(|v: &serde_json::Value| v["symbol"] == "RELIANCE")
        .collect();
    let ist_day = |ms: i64| (ms + 19_800_000).div_euclid(86_400_000);
    let last = lines.last().unwrap();
    let last_ts = last["ts"].as_i64().unwrap();
    let day: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| ist_day(v["ts"].as_i64().unwrap()) == ist_day(last_ts))
        .collect();
    let px = |v: &serde_json::Value| v["ltp"].as_f64().unwrap();
    let high = day.iter().map(|v| px(v)).fold(f64::MIN, f64::max);
    let low = day.iter().map(|v| px(v)).fold(f64::MAX, f64::min);
    // The day's volume as the exact decimal sum, as JSON reads its text.
    let volume = day.iter().fold(tickwire_core::Dec::ZERO, |sum, v| {
        sum + tickwire_core::Dec::from_f64(v["qty"].as_f64().unwrap()).unwrap()
    });
    let volume: serde_json::Value = serde_json::from_str(&volume.to_string()).unwrap();

    // A consumer subscribed to the updates before the run.
    let subscriber = server.client(0).await.unwrap();
    let mut messages = subscriber.message_rx();
    let _: () = subscriber.subscribe("updates:RELIANCE").await.unwrap();
    let config = with_profiles(config(&server, ""), &["trading-system"]);
    replay(&config, &[file]).await;

    let db2 = server.client(2).await.unwrap();
    let raw: String = db2.get("stocks:price:RELIANCE").await.unwrap();
    let price: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let ts_iso = jiff::Timestamp::from_millisecond(last_ts)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    assert_eq!(
        price,
        serde_json::json!({
            "price": {"last": px(last), "open": px(day[0]), "high": high, "low": low, "volume": volume},
            "timestamp": ts_iso,
        })
    );
    let t = ttl(&db2, "stocks:price:RELIANCE").await;
    assert!((57_000..=57_600).contains(&t), "price TTL {t}");
    // Every price write was published; the last message is what GET returns.
    let mut got = Vec::new();
    let mut lagged = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), messages.recv()).await {
            Ok(Ok(m)) => {
                assert_eq!(m.channel, "updates:RELIANCE");
                got.push(m.value.convert::<String>().unwrap());
            }
            // The client's buffer is small; what matters is the last message.
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => lagged += n,
            _ => break,
        }
    }
    assert!(!got.is_empty(), "no update published ({lagged} lagged)");
    assert_eq!(got.last(), Some(&raw));

    // The indicators of the last closed 1m bar, equal to TA-Lib's.
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/talib/fixture.json")).unwrap();
    let f = &fixture["symbols"]["RELIANCE"];
    let last_of = |name: &str| f[name].as_array().unwrap().last().unwrap().clone();
    let (rsi, macd, bb) = (last_of("rsi"), last_of("macd"), last_of("bbands"));
    let db4 = server.client(4).await.unwrap();
    let raw: String = db4.get("stocks:indicators:RELIANCE").await.unwrap();
    let ind: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let mut names: Vec<&String> = ind.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bollinger_lower",
            "bollinger_upper",
            "bollinger_width",
            "macd",
            "macd_signal",
            "rsi_14",
            "timestamp"
        ]
    );
    let close = |what: &str, got: &serde_json::Value, want: f64| {
        let got = got.as_f64().unwrap();
        assert!(
            ((got - want) / want).abs() <= 1e-9,
            "{what}: {got} vs {want}"
        );
    };
    let n = |v: &serde_json::Value, i: usize| v[i].as_f64().unwrap();
    close("rsi_14", &ind["rsi_14"], n(&rsi, 1));
    close("macd", &ind["macd"], n(&macd, 1));
    close("macd_signal", &ind["macd_signal"], n(&macd, 2));
    close("bollinger_upper", &ind["bollinger_upper"], n(&bb, 1));
    close("bollinger_lower", &ind["bollinger_lower"], n(&bb, 3));
    // The schema's width is in price: upper - lower (152.50 - 148.50 = 4.0).
    close(
        "bollinger_width",
        &ind["bollinger_width"],
        n(&bb, 1) - n(&bb, 3),
    );
    let bar_open = bb[0].as_i64().unwrap();
    assert_eq!(
        ind["timestamp"],
        jiff::Timestamp::from_millisecond(bar_open)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    );
    // Only what the profile names.
    let k4 = keys(&db4).await;
    assert!(
        k4.iter().all(|k| k.starts_with("stocks:indicators:")),
        "{k4:?}"
    );
    assert_eq!(k4.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefixed_backtest_publishes_on_the_prefixed_channel() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = session_file(dir.path());
    // One subscriber for every channel: what a live consumer would hear too.
    let subscriber = server.client(0).await.unwrap();
    let mut messages = subscriber.message_rx();
    let _: () = subscriber.psubscribe("*").await.unwrap();
    let mut config = with_profiles(config(&server, ""), &["trading-system"]);
    config.keys.prefix = "bt:".into();
    replay(&config, &[file]).await;

    let db2 = server.client(2).await.unwrap();
    let raw: String = db2.get("bt:stocks:price:RELIANCE").await.unwrap();
    let mut channels = std::collections::BTreeSet::new();
    let mut last = None;
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), messages.recv()).await {
        channels.insert(m.channel.to_string());
        last = Some(m.value.convert::<String>().unwrap());
    }
    assert_eq!(
        channels.into_iter().collect::<Vec<_>>(),
        ["bt:updates:RELIANCE"],
        "a backtest must not publish on the live channel"
    );
    assert_eq!(last, Some(raw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_file_with_its_own_tick_stream() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("md.toml");
    std::fs::write(
        &profile,
        r#"
namespace = "md:"
[tick_stream]
key = "{exchange}:{symbol}"
type = "stream"
encoding = "fields"
db = 1
ttl = 600
cap = 1000
fields = ["price=ltp", "size=qty", "t=ts"]
"#,
    )
    .unwrap();
    let body = "{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704169800100,\"ltp\":612.35,\"qty\":10}\n\
                {\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704169800100,\"ltp\":612.4,\"qty\":5}\n\
                {\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704169801000,\"ltp\":612.5,\"qty\":1}\n";
    let file = write(dir.path(), "sbin.jsonl", body);
    let config = with_profiles(config(&server, ""), &[profile.to_str().unwrap()]);
    replay(&config, std::slice::from_ref(&file)).await;
    replay(&config, &[file]).await;
    let db1 = server.client(1).await.unwrap();
    let entries = xrange(&db1, "md:NSE:SBIN").await;
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    // The default layout's IDs, and a second replay adds nothing.
    assert_eq!(
        ids,
        ["1704169800100-0", "1704169800100-1", "1704169801000-0"]
    );
    assert_eq!(
        (
            field(&entries[1], "price"),
            field(&entries[1], "size"),
            field(&entries[1], "t")
        ),
        ("612.4", "5", "1704169800100")
    );
    assert_eq!(entries[1].1.len(), 3);
    let t = ttl(&db1, "md:NSE:SBIN").await;
    assert!((590..=600).contains(&t), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_write_the_profiles_byte_for_byte_alike() {
    // The profiles take the session VWAP (dhanscalper's `atp`) and the
    // indicator set from the state stage, whichever engine writes the
    // default layout's indicator hashes.
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = session_file(dir.path());
    let names = ["default", "dhanscalper", "trading-system"];
    let inline = redis();
    replay(
        &with_profiles(config(&inline, ""), &names),
        std::slice::from_ref(&file),
    )
    .await;
    let lua = redis();
    replay(
        &with_profiles(config(&lua, "[indicators]\nengine = \"lua\"\n"), &names),
        std::slice::from_ref(&file),
    )
    .await;
    let tick = hgetall(
        &lua.client(0).await.unwrap(),
        "dhan_scalper:v1:ticks:NSE_EQ:2885",
    )
    .await;
    assert!(
        tick.contains_key("atp"),
        "the Lua engine's ticks carry the VWAP: {tick:?}"
    );
    // The Lua engine's own state, the checkpoints (whose indicator state
    // the Lua engine keeps in Redis) and the heartbeats aside.
    let compared = |snap: Vec<(u8, String, String)>| -> Vec<(u8, String, String)> {
        snap.into_iter()
            .filter(|(_, k, _)| {
                !k.starts_with("indicator:state:")
                    && !k.starts_with("tickwire:checkpoint:")
                    && !k.ends_with(":hb")
            })
            .collect()
    };
    let dbs = [0u8, 2, 4];
    let (a, b) = (
        compared(snapshot(&inline, &dbs).await),
        compared(snapshot(&lua, &dbs).await),
    );
    let names = |s: &[(u8, String, String)]| -> Vec<(u8, String)> {
        s.iter().map(|(db, k, _)| (*db, k.clone())).collect()
    };
    assert_eq!(names(&a), names(&b));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x == y,
            "db {} {}: inline {:.300} lua {:.300}",
            x.0,
            x.1,
            x.2,
            y.2
        );
    }
}
