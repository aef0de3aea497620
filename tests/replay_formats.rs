//! Each input format replayed into a private redis-server lands the right
//! stream entries (count, IDs, fields) and last-price hashes, with TTLs.

mod common;

use common::*;
use fred::prelude::*;
use tickwire_testkit::prelude::*;

#[tokio::test]
async fn tick_json_lines_land_with_deterministic_ids_and_last_prices() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // Two ticks of SBIN in one millisecond (seq 0, 1); a clock step back (clamped
    // to the last ID); one TCS tick with bid/ask; SBIN ends at 613.
    let file = write(
        dir.path(),
        "ticks.jsonl",
        concat!(
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":"3045","ts":1704080700100,"ltp":612.35,"qty":10,"vol":10}"#,
            "\n",
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":"3045","ts":1704080700100,"ltp":612.4,"qty":5,"vol":15}"#,
            "\n",
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"TCS","ts":1704080700200,"ltp":3800.05,"qty":1,"bid":3800,"ask":3800.1}"#,
            "\n",
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":"3045","ts":1704080700050,"ltp":612.45,"qty":1,"vol":16}"#,
            "\n",
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"SBIN","security_id":"3045","ts":1704080701000,"ltp":613,"qty":2,"vol":18}"#,
            "\n",
        ),
    );
    let cfg = config(&server, "");
    let s = replay(&cfg, &[file]).await;
    assert_eq!(
        (s.ingest.ticks, s.writer.ticks_written, s.writer.duplicates),
        (5, 5, 0)
    );

    let db4 = server.client(4).await.unwrap();
    let sbin = xrange(&db4, "ticks:SBIN").await;
    let ids: Vec<&str> = sbin.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1704080700100-0",
            "1704080700100-1",
            "1704080700100-2",
            "1704080701000-0"
        ]
    );
    assert_eq!(field(&sbin[0], "ltp"), "612.35");
    assert_eq!(field(&sbin[0], "qty"), "10");
    assert_eq!(field(&sbin[0], "ts"), "1704080700100");
    assert_eq!(field(&sbin[0], "vol"), "10");
    assert!(!sbin[0].1.contains_key("bid"), "no bid was given");
    // The stepped-back tick keeps its own exchange time in `ts`.
    assert_eq!(field(&sbin[2], "ts"), "1704080700050");
    let tcs = xrange(&db4, "ticks:TCS").await;
    assert_eq!(tcs.len(), 1);
    assert_eq!(
        (field(&tcs[0], "bid"), field(&tcs[0], "ask")),
        ("3800", "3800.1")
    );
    assert_ttl(&db4, "ticks:SBIN").await;
    assert_ttl(&db4, "ticks:TCS").await;

    let db2 = server.client(2).await.unwrap();
    let price = hgetall(&db2, "price:SBIN").await;
    assert_eq!(price["ltp"], "613");
    assert_eq!(price["ts"], "1704080701000");
    assert_eq!(price["vol"], "18");
    assert_eq!(price["exchange"], "NSE");
    let tcs_price = hgetall(&db2, "price:TCS").await;
    assert_eq!(
        (tcs_price["bid"].as_str(), tcs_price["ask"].as_str()),
        ("3800", "3800.1")
    );
    assert_ttl(&db2, "price:SBIN").await;
    // Nothing was written to the wrong DB (the system DB holds the
    // heartbeat and the instruments' checkpoints).
    assert_eq!(
        keys(&server.client(0).await.unwrap()).await,
        [
            "tickwire:checkpoint:NSE:SBIN",
            "tickwire:checkpoint:NSE:TCS",
            "tickwire:heartbeat"
        ]
    );
    assert_eq!(keys(&db2).await, ["price:SBIN", "price:TCS"]);
    // Ticks, and what the state stage made of them: a bar of each minute and
    // the session VWAP (too few bars for RSI and ATR); the last bars closed
    // at the end, so nothing is forming.
    assert_eq!(
        keys(&db4).await,
        [
            "bars:1m:SBIN",
            "bars:1m:TCS",
            "indicator:vwap:SBIN",
            "indicator:vwap:TCS",
            "ticks:SBIN",
            "ticks:TCS"
        ]
    );
    // All four SBIN ticks fall in one minute: one bar, closed when the input ends.
    assert_eq!(xrange(&db4, "bars:1m:SBIN").await.len(), 1);
    let vwap = hgetall(&db4, "indicator:vwap:SBIN").await;
    let expected = (612.35 * 10.0 + 612.4 * 5.0 + 612.45 * 1.0 + 613.0 * 2.0) / 18.0;
    assert!(
        (vwap["value"].parse::<f64>().unwrap() - expected).abs() < 1e-9,
        "{vwap:?}"
    );
}

#[tokio::test]
async fn recorded_binance_frames_land_trades_and_skip_other_streams() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let frame = |data: &str| {
        serde_json::json!({"recv_ns": 1_704_067_200_500_000_000i64, "feed": "binance", "data": data}).to_string()
    };
    let lines = [
        frame(
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1704067200124,"s":"BTCUSDT","t":100,"p":"42283.58000000","q":"0.00118000","T":1704067200123,"m":false,"M":true}}"#,
        ),
        frame(
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1704067200130,"s":"BTCUSDT","a":7,"p":"42283.60000000","q":"0.50000000","f":101,"l":103,"T":1704067200129,"m":true,"M":true}}"#,
        ),
        frame(
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1704067200131,"s":"BTCUSDT","U":1,"u":2,"b":[["42283.5","1"]],"a":[]}}"#,
        ),
        frame(
            r#"{"e":"aggTrade","E":1704067200140,"s":"ETHUSDT","a":9,"p":"2281.5","q":"1.25","f":1,"l":1,"T":1704067200139,"m":false}"#,
        ),
        frame(r#"{"result":null,"id":1}"#),
    ];
    let file = write(dir.path(), "capture.jsonl.zst", &(lines.join("\n") + "\n"));
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(
        (s.ingest.ticks, s.ingest.skipped, s.ingest.rejected),
        (3, 2, 0)
    );
    assert_eq!(s.writer.ticks_written, 3);

    let db4 = server.client(4).await.unwrap();
    let btc = xrange(&db4, "ticks:BTCUSDT").await;
    let ids: Vec<&str> = btc.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, ["1704067200123-0", "1704067200129-0"]);
    assert_eq!(
        (field(&btc[0], "ltp"), field(&btc[0], "qty")),
        ("42283.58", "0.00118")
    );
    assert_eq!(
        (field(&btc[1], "ltp"), field(&btc[1], "qty")),
        ("42283.6", "0.5")
    );
    assert_eq!(xrange(&db4, "ticks:ETHUSDT").await.len(), 1);
    let db2 = server.client(2).await.unwrap();
    let p = hgetall(&db2, "price:BTCUSDT").await;
    assert_eq!(
        (p["ltp"].as_str(), p["exchange"].as_str()),
        ("42283.6", "binance")
    );
    assert_ttl(&db2, "price:ETHUSDT").await;
    assert!(
        keys(&server.client(0).await.unwrap()).await
            == [
                "tickwire:checkpoint:binance:BTCUSDT",
                "tickwire:checkpoint:binance:ETHUSDT",
                "tickwire:heartbeat"
            ],
        "skips are not dead letters"
    );
}

#[tokio::test]
async fn binance_trade_dump_csv_with_ms_and_us_times_and_zstd() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "BTCUSDT-trades-2024-01-01.csv.zst",
        "3380000001,42283.58,0.00118,49.8946244,1704067200123,false,true\n\
         3380000002,42283.59,0.01000,422.8359,1704067200123456,true,true\n\
         3380000003,42283.10,0.20000,8456.62,1704067201000,true,true\n",
    );
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(s.writer.ticks_written, 3);
    let db4 = server.client(4).await.unwrap();
    let e = xrange(&db4, "ticks:BTCUSDT").await;
    let ids: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
    // The µs time lands in the same millisecond as the first trade.
    assert_eq!(
        ids,
        ["1704067200123-0", "1704067200123-1", "1704067201000-0"]
    );
    assert_eq!(field(&e[2], "ltp"), "42283.1");
    assert_eq!(field(&e[2], "qty"), "0.2");
    let p = hgetall(&server.client(2).await.unwrap(), "price:BTCUSDT").await;
    assert_eq!(
        (p["ltp"].as_str(), p["ts"].as_str()),
        ("42283.1", "1704067201000")
    );

    // A dump whose name does not say the symbol takes --symbol.
    let other = write(
        dir.path(),
        "dump.csv",
        "1,2281.5,1.5,3422.25,1704067202000,false,true\n",
    );
    let s = replay_with(&config(&server, ""), &[other], Some("ethusdt")).await;
    assert_eq!(s.writer.ticks_written, 1);
    assert_eq!(xrange(&db4, "ticks:ETHUSDT").await.len(), 1);
}

/// A zip archive of one deflated file, built from the PKZIP layout (local
/// header, central directory, end record) as Binance's dumps are.
fn zip_one(name: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    let data = e.finish().unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(body);
    let mut common = Vec::new();
    for v in [20u16, 0, 8, 0, 33] {
        common.extend(v.to_le_bytes()); // version, flags, deflate, time, date
    }
    for v in [crc.sum(), data.len() as u32, body.len() as u32] {
        common.extend(v.to_le_bytes());
    }
    common.extend((name.len() as u16).to_le_bytes());
    common.extend(0u16.to_le_bytes());
    let mut out = 0x0403_4b50u32.to_le_bytes().to_vec();
    out.extend(&common);
    out.extend(name.as_bytes());
    out.extend(&data);
    let cd_offset = out.len() as u32;
    let mut central = 0x0201_4b50u32.to_le_bytes().to_vec();
    central.extend(20u16.to_le_bytes());
    central.extend(&common);
    central.extend([0u8; 10]); // comment length, disk, attributes
    central.extend(0u32.to_le_bytes()); // the local header's offset
    central.extend(name.as_bytes());
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// Binance's public dumps as downloaded: a `.zip` holding one CSV, and the
/// same CSV gzipped, replay into exactly the Redis state of the plain CSV.
#[tokio::test]
async fn binance_dumps_as_zip_and_gz_replay_like_the_plain_csv() {
    use std::io::Write;
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let csv: String = (0..150)
        .map(|i| {
            format!(
                "{},{}.{:02},0.0{},1.0,{},{},true\n",
                3_380_000_000u64 + i,
                42_000 + (i * 7) % 13,
                i % 100,
                1 + i % 9,
                1_704_067_200_000u64 + i * 1_700,
                i % 2 == 0
            )
        })
        .collect();
    let name = "BTCUSDT-trades-2024-01-01.csv";
    let plain = write(dir.path(), name, &csv);
    // The zip's own name need not say the symbol: its entry's does.
    let zip = dir.path().join("download.zip");
    std::fs::write(&zip, zip_one(name, csv.as_bytes())).unwrap();
    let gz = dir.path().join(format!("{name}.gz"));
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(csv.as_bytes()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();

    let cfg = config(&server, "");
    let dbs = [0u8, 2, 3, 4, 5];
    let flush = || async {
        let c = server.client(0).await.unwrap();
        let _: () = c.flushall(false).await.unwrap();
    };
    let s = replay(&cfg, &[plain]).await;
    assert_eq!((s.writer.ticks_written, s.ingest.rejected), (150, 0));
    let expected = snapshot(&server, &dbs).await;
    assert!(
        expected
            .iter()
            .any(|(db, k, _)| *db == 4 && k == "ticks:BTCUSDT"),
        "{expected:?}"
    );
    for input in [zip, gz] {
        flush().await;
        let s = replay(&cfg, std::slice::from_ref(&input)).await;
        assert_eq!(
            (s.writer.ticks_written, s.ingest.rejected),
            (150, 0),
            "{input:?}"
        );
        let got = snapshot(&server, &dbs).await;
        assert_eq!(got.len(), expected.len(), "{input:?}");
        for (a, b) in expected.iter().zip(&got) {
            assert_eq!(a, b, "{input:?}: db {} key {}", a.0, a.1);
        }
    }
}

/// A recorded line's `feed` names its dead-letter stream only when the config
/// or tickwire knows that feed: an input cannot make keys of its choosing.
#[tokio::test]
async fn a_recorded_line_of_an_unknown_feed_is_dead_lettered_under_the_format() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let line = |feed: &str, data: &str| {
        serde_json::json!({"recv_ns": 1_704_067_200_500_000_000i64, "feed": feed, "venue": "binance", "data": data})
            .to_string()
    };
    let lines = [
        line("evil", "{not json"),
        line(
            "evil",
            r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"42000.5","q":"0.1","T":1704067200123,"m":false}"#,
        ),
        line("spot", "{not json either"),
        line("binance", "{nor this"),
    ];
    let file = write(dir.path(), "rec.jsonl", &(lines.join("\n") + "\n"));
    let cfg = config(
        &server,
        "[[feeds]]\nname = \"spot\"\nvenue = \"binance\"\nsymbols = [\"BTCUSDT\"]\n",
    );
    let s = replay(&cfg, &[file]).await;
    assert_eq!((s.ingest.ticks, s.ingest.rejected), (1, 3));
    let db0 = server.client(0).await.unwrap();
    assert_eq!(
        keys(&db0).await,
        [
            "deadletter:binance",
            "deadletter:recorded",
            "deadletter:spot",
            "tickwire:checkpoint:binance:BTCUSDT",
            "tickwire:heartbeat"
        ]
    );
    let dead = xrange(&db0, "deadletter:recorded").await;
    assert_eq!(dead.len(), 1);
    assert!(field(&dead[0], "raw").contains("{not json"), "{dead:?}");
    // The frame of the unknown feed that did decode is a trade as any other.
    assert_eq!(
        xrange(&server.client(4).await.unwrap(), "ticks:BTCUSDT")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn tardis_trades_csv() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "trades.csv",
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
         binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132\n\
         binance-futures,BTCUSDT,1582329602111999,1582329602418420,42377945,sell,9681.5,0.412\n\
         binance-futures,ETHUSDT,1582329603000000,1582329603100000,1,buy,265.1,2\n",
    );
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(
        (s.ingest.lines, s.ingest.ticks, s.writer.ticks_written),
        (4, 3, 3)
    );
    let db4 = server.client(4).await.unwrap();
    let e = xrange(&db4, "ticks:BTCUSDT").await;
    let ids: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, ["1582329602111-0", "1582329602111-1"]);
    assert_eq!(
        (field(&e[1], "ltp"), field(&e[1], "qty")),
        ("9681.5", "0.412")
    );
    let p = hgetall(&server.client(2).await.unwrap(), "price:ETHUSDT").await;
    assert_eq!(
        (p["ltp"].as_str(), p["exchange"].as_str()),
        ("265.1", "binance-futures")
    );
}

#[tokio::test]
async fn prefix_and_custom_templates_and_dbs_apply_to_every_key() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.jsonl",
        "{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080700100,\"ltp\":612.35,\"qty\":10}\n{broken\n",
    );
    let cfg = config(
        &server,
        "[keys]\nprefix = \"bt:\"\ntick_stream = \"t:{exchange}:{symbol}\"\n\
         [databases]\ncontinuous_market = 7\nprices = 9\nsystem = 1\n\
         [ttl]\ndefault = 3600\n[ttl.override]\nprices = 60\n",
    );
    let s = replay(&cfg, &[file]).await;
    assert_eq!((s.writer.ticks_written, s.writer.deadlettered), (1, 1));
    let db7 = server.client(7).await.unwrap();
    assert_eq!(
        keys(&db7).await,
        ["bt:bars:1m:SBIN", "bt:indicator:vwap:SBIN", "bt:t:NSE:SBIN"]
    );
    let t = ttl(&db7, "bt:t:NSE:SBIN").await;
    assert!(t > 3500 && t <= 3600, "{t}");
    let db9 = server.client(9).await.unwrap();
    assert_eq!(keys(&db9).await, ["bt:price:SBIN"]);
    let t = ttl(&db9, "bt:price:SBIN").await;
    assert!(t > 0 && t <= 60, "{t}");
    assert_eq!(
        keys(&server.client(1).await.unwrap()).await,
        [
            "bt:deadletter:tickwire",
            "bt:tickwire:checkpoint:NSE:SBIN",
            "bt:tickwire:heartbeat"
        ]
    );
    for db in [0, 2, 4] {
        assert!(
            keys(&server.client(db).await.unwrap()).await.is_empty(),
            "db {db} untouched"
        );
    }
}

#[tokio::test]
async fn last_price_hash_does_not_depend_on_batch_boundaries() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // The last tick carries no bid/ask/vol: the hash keeps those of the tick before.
    let file = write(
        dir.path(),
        "t.jsonl",
        concat!(
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700100,"ltp":612.35,"qty":10,"vol":10,"bid":612.3,"ask":612.4}"#,
            "\n",
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700200,"ltp":612.45,"qty":5,"vol":15,"bid":612.4,"ask":612.5}"#,
            "\n",
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700300,"ltp":612.5,"qty":1}"#,
            "\n",
        ),
    );
    for (prefix, batch) in [("one:", 1), ("all:", 1000)] {
        let cfg = config(
            &server,
            &format!("[keys]\nprefix = \"{prefix}\"\n[writer]\nbatch_size = {batch}\n"),
        );
        assert_eq!(
            replay(&cfg, std::slice::from_ref(&file))
                .await
                .writer
                .ticks_written,
            3
        );
    }
    let db2 = server.client(2).await.unwrap();
    let one = hgetall(&db2, "one:price:SBIN").await;
    assert_eq!(one, hgetall(&db2, "all:price:SBIN").await);
    assert_eq!(
        (
            one["ltp"].as_str(),
            one["vol"].as_str(),
            one["bid"].as_str()
        ),
        ("612.5", "15", "612.4")
    );
}

#[tokio::test]
async fn recorded_okx_and_dhan_frames_land_their_trades() {
    use base64::Engine as _;
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let okx = |data: &str| {
        serde_json::json!({"recv_ns": 1_704_080_700_500_000_000i64, "feed": "okx", "data": data})
            .to_string()
    };
    // A Dhan quote packet for NSE_EQ 2885, built from the published layout.
    let mut packet = vec![4u8];
    packet.extend(50u16.to_le_bytes());
    packet.push(1);
    packet.extend(2885u32.to_le_bytes());
    packet.extend(2450.05f32.to_le_bytes());
    packet.extend(25u16.to_le_bytes());
    packet.extend(1_704_100_500u32.to_le_bytes()); // 2024-01-01 09:15 IST wall clock
    packet.extend(2449.5f32.to_le_bytes());
    packet.extend(120_000u32.to_le_bytes());
    packet.extend([0u8; 24]);
    let dhan = serde_json::json!({
        "recv_ns": 1_704_080_700_600_000_000i64,
        "feed": "dhan",
        "enc": "base64",
        "data": base64::engine::general_purpose::STANDARD.encode(&packet),
    })
    .to_string();
    let lines = [
        okx(r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}"#),
        okx(
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1704080700123"}]}"#,
        ),
        okx("pong"),
        dhan,
    ];
    let file = write(dir.path(), "mixed-venues.jsonl", &(lines.join("\n") + "\n"));
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(
        (s.ingest.ticks, s.ingest.skipped, s.ingest.rejected),
        (2, 2, 0)
    );
    let db4 = server.client(4).await.unwrap();
    let okx_ticks = xrange(&db4, "ticks:BTC-USDT").await;
    assert_eq!(
        (okx_ticks[0].0.as_str(), field(&okx_ticks[0], "ltp")),
        ("1704080700123-0", "42219.9")
    );
    // Dhan names instruments by security id until a symbol map is configured.
    let dhan_ticks = xrange(&db4, "ticks:2885").await;
    // Its quantity is the day volume's growth since the last trade applied:
    // the first of the day carries all of it; the packet's LTQ is kept.
    assert_eq!(
        (
            field(&dhan_ticks[0], "ltp"),
            field(&dhan_ticks[0], "qty"),
            field(&dhan_ticks[0], "vol"),
            field(&dhan_ticks[0], "ltq")
        ),
        ("2450.05", "120000", "120000", "25")
    );
}

#[tokio::test]
async fn quotes_set_bid_and_ask_in_order_and_never_append_to_the_stream() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let frame = |feed: &str, data: &str| {
        serde_json::json!({"recv_ns": 1_704_067_200_500_000_000i64, "feed": feed, "data": data})
            .to_string()
    };
    let lines = [
        frame(
            "binance",
            r#"{"u":1,"s":"BTCUSDT","b":"42000.1","B":"1","a":"42000.2","A":"1"}"#,
        ),
        frame(
            "binance",
            r#"{"e":"trade","E":1704067200124,"s":"BTCUSDT","t":100,"p":"42000.15","q":"0.5","T":1704067200123,"m":false}"#,
        ),
        frame(
            "binance",
            r#"{"u":2,"s":"BTCUSDT","b":"42000.3","B":"1","a":"42000.4","A":"1"}"#,
        ),
        frame(
            "okx",
            r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","last":"42001","askPx":"42001.5","bidPx":"42000.5","ts":"1704067200200"}]}"#,
        ),
    ];
    let file = write(dir.path(), "quotes.jsonl", &(lines.join("\n") + "\n"));
    for (prefix, batch) in [("one:", 1), ("all:", 1000)] {
        let cfg = config(
            &server,
            &format!("[keys]\nprefix = \"{prefix}\"\n[writer]\nbatch_size = {batch}\n"),
        );
        let s = replay(&cfg, std::slice::from_ref(&file)).await;
        assert_eq!((s.ingest.ticks, s.ingest.quotes), (1, 3));
    }
    let db2 = server.client(2).await.unwrap();
    let db4 = server.client(4).await.unwrap();
    for prefix in ["one:", "all:"] {
        assert_eq!(
            xrange(&db4, &format!("{prefix}ticks:BTCUSDT")).await.len(),
            1,
            "quotes are not ticks"
        );
        let p = hgetall(&db2, &format!("{prefix}price:BTCUSDT")).await;
        assert_eq!(
            (p["ltp"].as_str(), p["bid"].as_str(), p["ask"].as_str()),
            ("42000.15", "42000.3", "42000.4"),
            "the trade's price and the latest quote"
        );
        let okx = hgetall(&db2, &format!("{prefix}price:BTC-USDT")).await;
        assert_eq!(
            (okx["bid"].as_str(), okx["ask"].as_str()),
            ("42000.5", "42001.5")
        );
        assert!(
            !okx.contains_key("ltp"),
            "a quote alone sets no last price: {okx:?}"
        );
        assert_ttl(&db2, &format!("{prefix}price:BTC-USDT")).await;
        assert!(
            keys(&db4).await.iter().all(|k| !k.contains("BTC-USDT")),
            "no stream, bar or volume from quotes"
        );
    }
}
