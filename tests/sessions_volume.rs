//! Exchange phases route ticks to their DB; time-bucketed and session volume
//! land as absolute values, in the exchange's local time.

mod common;

use std::collections::HashMap;

use common::*;
use tickwire_testkit::prelude::*;

fn line(exchange: &str, symbol: &str, ts: i64, ltp: f64, qty: f64) -> String {
    format!("{{\"exchange\":\"{exchange}\",\"symbol\":\"{symbol}\",\"ts\":{ts},\"ltp\":{ltp},\"qty\":{qty}}}\n")
}

// 2024-01-01 in IST (UTC+05:30).
const IST_0900: i64 = 1_704_079_800_000;
const MIN: i64 = 60_000;

#[tokio::test]
async fn pre_open_ticks_go_to_db_3_continuous_to_db_4_the_rest_is_dropped() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let body = [
        line("NSE", "SBIN", IST_0900 + 2 * MIN, 610.0, 5.0), // 09:02 pre-open
        line("nse", "SBIN", IST_0900 + 7 * MIN + 59_000, 611.0, 7.0), // 09:07:59 pre-open (any case)
        line("NSE", "SBIN", IST_0900 + 8 * MIN, 611.5, 1.0), // 09:08 between phases: dropped
        line("NSE", "SBIN", IST_0900 + 15 * MIN, 612.0, 10.0), // 09:15 continuous
        line("NSE", "SBIN", IST_0900 + 390 * MIN, 613.0, 1.0), // 15:30 closed: dropped
    ]
    .concat();
    let file = write(dir.path(), "day.jsonl", &body);
    let s = replay(&config(&server, ""), &[file]).await;
    assert_eq!(s.state.dropped_outside, 2);
    assert_eq!(s.writer.ticks_written, 3);

    let db3 = server.client(3).await.unwrap();
    let pre = xrange(&db3, "ticks:SBIN").await;
    assert_eq!(
        pre.iter().map(|e| field(e, "ltp")).collect::<Vec<_>>(),
        ["610", "611"]
    );
    assert_eq!(
        hgetall(&db3, "price:SBIN").await["ltp"],
        "611",
        "the pre-open last print"
    );
    assert_ttl(&db3, "ticks:SBIN").await;
    let db4 = server.client(4).await.unwrap();
    let cont = xrange(&db4, "ticks:SBIN").await;
    assert_eq!(
        cont.iter().map(|e| field(e, "ltp")).collect::<Vec<_>>(),
        ["612"]
    );
    assert_eq!(
        hgetall(&server.client(2).await.unwrap(), "price:SBIN").await["ltp"],
        "612"
    );
    // Pre-open prints make no bars: only the 09:15 minute has one.
    assert_eq!(xrange(&db4, "bars:1m:SBIN").await.len(), 1);
}

#[tokio::test]
async fn outside_ticks_can_be_routed_to_a_named_db() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "late.jsonl",
        &line("NSE", "SBIN", IST_0900 + 400 * MIN, 613.0, 1.0),
    );
    let cfg = config(
        &server,
        "[exchanges.NSE]\ntimezone = \"Asia/Kolkata\"\noutside = \"patterns\"\n\
         phases = [{ name = \"continuous\", start = \"09:15\", end = \"15:30\", db = \"continuous_market\" }]\n",
    );
    let s = replay(&cfg, &[file]).await;
    assert_eq!(s.state.dropped_outside, 0);
    assert_eq!(
        xrange(&server.client(10).await.unwrap(), "ticks:SBIN")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn buckets_and_session_totals_are_absolute_and_survive_a_second_replay() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 3,
        sessions: 2,
        ticks_per_session: 800,
        seed: 21,
        start: jiff::civil::date(2024, 1, 1),
    };
    let path = dir.path().join("two-days.jsonl");
    let mut text = Vec::new();
    tickwire_testkit::synth::write_ticks(&spec, &mut text).unwrap();
    std::fs::write(&path, &text).unwrap();

    // Expected, computed here from the file: per (symbol, session, HH:MM).
    let tz = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
    let mut buckets: HashMap<String, (f64, u64)> = HashMap::new();
    let mut sessions: HashMap<String, (f64, u64, i64, i64)> = HashMap::new();
    for l in String::from_utf8(text).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let (sym, ts, qty) = (
            v["symbol"].as_str().unwrap(),
            v["ts"].as_i64().unwrap(),
            v["qty"].as_f64().unwrap(),
        );
        let local = jiff::Timestamp::from_millisecond(ts)
            .unwrap()
            .to_zoned(tz.clone());
        let key = format!(
            "volume:bucket:{sym}:{}:{:02}:{:02}",
            local.date(),
            local.hour(),
            local.minute()
        );
        let b = buckets.entry(key).or_default();
        b.0 += qty;
        b.1 += 1;
        let s = sessions
            .entry(format!("volume:session:{sym}:{}", local.date()))
            .or_insert((0.0, 0, ts, ts));
        s.0 += qty;
        s.1 += 1;
        s.3 = ts;
    }

    let cfg = config(&server, "[writer]\nbatch_size = 97\n");
    replay(&cfg, std::slice::from_ref(&path)).await;
    let db5 = server.client(5).await.unwrap();
    let check = |label: &'static str| {
        let (db5, buckets, sessions) = (&db5, &buckets, &sessions);
        async move {
            let all: Vec<String> = keys(db5)
                .await
                .into_iter()
                .filter(|k| k.starts_with("volume:bucket:") || k.starts_with("volume:session:"))
                .collect();
            assert_eq!(
                all.len(),
                buckets.len() + sessions.len(),
                "{label}: one hash per bucket and session"
            );
            for (k, (vol, trades)) in buckets {
                let h = hgetall(db5, k).await;
                assert_eq!(h["volume"].parse::<f64>().unwrap(), *vol, "{label} {k}");
                assert_eq!(h["trades"], trades.to_string(), "{label} {k}");
            }
            for (k, (vol, trades, first, last)) in sessions {
                let h = hgetall(db5, k).await;
                assert_eq!(h["volume"].parse::<f64>().unwrap(), *vol, "{label} {k}");
                assert_eq!(h["trades"], trades.to_string());
                assert_eq!(
                    (h["first_ts"].as_str(), h["last_ts"].as_str()),
                    (first.to_string().as_str(), last.to_string().as_str())
                );
                let t = ttl(db5, k).await;
                assert!(
                    t > 86_000 && t <= 86_400,
                    "session totals expire in 24 h: {t}"
                );
            }
        }
    };
    check("first replay").await;
    assert_ttl(&db5, buckets.keys().next().unwrap()).await;
    replay(&cfg, &[path]).await;
    check("second replay").await;
}

#[tokio::test]
async fn daylight_saving_and_midnight_utc_boundaries() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // CME on Chicago time: 08:30 local is 14:30 UTC in winter (CST) and 13:30 UTC
    // after the switch to CDT on 2024-03-10. Binance, not named, turns its day
    // at 00:00 UTC.
    let body = [
        line("CME", "ES", 1_709_908_200_000, 5_100.0, 2.0), // 2024-03-08 08:30 CST
        line("CME", "ES", 1_710_163_800_000, 5_120.0, 3.0), // 2024-03-11 08:30 CDT
        line("BINANCE", "BTCUSDT", 1_704_153_599_999, 42_000.0, 0.5), // 2024-01-01 23:59:59.999 UTC
        line("BINANCE", "BTCUSDT", 1_704_153_600_000, 42_001.0, 0.25), // 2024-01-02 00:00 UTC
    ]
    .concat();
    let file = write(dir.path(), "boundaries.jsonl", &body);
    let cfg = config(&server, "[exchanges.cme]\ntimezone = \"America/Chicago\"\n");
    replay(&cfg, &[file]).await;
    let db5 = server.client(5).await.unwrap();
    let all = keys(&db5).await;
    // The day profiles and indexes the baseline job reads sit beside them.
    assert!(
        all.contains(&"volume:profile:ES:2024-03-11".to_string()),
        "{all:?}"
    );
    assert!(
        all.contains(&"volume:sessions:ES".to_string())
            && all.contains(&"volume:symbols".to_string())
    );
    assert_eq!(
        all.into_iter()
            .filter(|k| k.starts_with("volume:bucket:") || k.starts_with("volume:session:"))
            .collect::<Vec<_>>(),
        [
            "volume:bucket:BTCUSDT:2024-01-01:23:59",
            "volume:bucket:BTCUSDT:2024-01-02:00:00",
            "volume:bucket:ES:2024-03-08:08:30",
            "volume:bucket:ES:2024-03-11:08:30",
            "volume:session:BTCUSDT:2024-01-01",
            "volume:session:BTCUSDT:2024-01-02",
            "volume:session:ES:2024-03-08",
            "volume:session:ES:2024-03-11",
        ]
    );
    assert_eq!(
        hgetall(&db5, "volume:bucket:ES:2024-03-11:08:30").await["volume"],
        "3"
    );
}

#[tokio::test]
async fn five_minute_buckets_start_on_the_local_clock() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let body = [
        line("NSE", "SBIN", IST_0900 + 16 * MIN, 612.0, 1.0),
        line("NSE", "SBIN", IST_0900 + 19 * MIN + 59_000, 612.0, 2.0),
        line("NSE", "SBIN", IST_0900 + 20 * MIN, 612.0, 4.0),
    ]
    .concat();
    let file = write(dir.path(), "t.jsonl", &body);
    replay(&config(&server, "[volume]\nbucket = \"5m\"\n"), &[file]).await;
    let db5 = server.client(5).await.unwrap();
    assert_eq!(
        hgetall(&db5, "volume:bucket:SBIN:2024-01-01:09:15").await["volume"],
        "3"
    );
    assert_eq!(
        hgetall(&db5, "volume:bucket:SBIN:2024-01-01:09:20").await["volume"],
        "4"
    );
}

/// Replays 5 synthetic sessions of 3 instruments, then checks `baseline`
/// against averages computed here from the file.
#[tokio::test]
async fn baseline_averages_each_bucket_over_the_last_sessions() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 3,
        sessions: 5,
        ticks_per_session: 400,
        seed: 8,
        start: jiff::civil::date(2024, 1, 1),
    };
    let path = dir.path().join("week.jsonl");
    let mut text = Vec::new();
    tickwire_testkit::synth::write_ticks(&spec, &mut text).unwrap();
    std::fs::write(&path, &text).unwrap();
    // Baselines need the buckets of past sessions: keep them for 30 days.
    let cfg = config(&server, "[ttl.override]\ncumulative_volume = 2592000\n");
    replay(&cfg, &[path]).await;

    // (symbol, HH:MM) -> session -> volume, from the file.
    let tz = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
    let mut vol: HashMap<(String, String), HashMap<String, f64>> = HashMap::new();
    let mut sessions: Vec<String> = Vec::new();
    for l in String::from_utf8(text).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let local = jiff::Timestamp::from_millisecond(v["ts"].as_i64().unwrap())
            .unwrap()
            .to_zoned(tz.clone());
        let session = local.date().to_string();
        if !sessions.contains(&session) {
            sessions.push(session.clone());
        }
        let bucket = format!("{:02}:{:02}", local.hour(), local.minute());
        *vol.entry((v["symbol"].as_str().unwrap().to_string(), bucket))
            .or_default()
            .entry(session)
            .or_default() += v["qty"].as_f64().unwrap();
    }
    let expect = |last: &[String], per_session: &HashMap<String, f64>| {
        let xs: Vec<f64> = last
            .iter()
            .map(|s| per_session.get(s).copied().unwrap_or(0.0))
            .collect();
        let avg = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - avg).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        (avg, sd)
    };
    let db5 = server.client(5).await.unwrap();
    for (lookback, date, last) in [
        (3usize, None, &sessions[2..5]),
        (2, Some(sessions[3].clone()), &sessions[2..4]),
    ] {
        let opts = tickwire_writer::baseline::BaselineOptions { lookback, date };
        let pools = tickwire_writer::RedisPools::connect(&cfg.redis, [5])
            .await
            .unwrap();
        let s = tickwire_writer::baseline::compute(&cfg, &pools, &opts)
            .await
            .unwrap();
        assert_eq!((s.symbols, s.sessions), (3, 3 * last.len() as u64));
        let mut checked = 0;
        for ((symbol, bucket), per_session) in &vol {
            if !last.iter().any(|s| per_session.contains_key(s)) {
                continue; // no volume in the window: no baseline from this run
            }
            let key = format!("volume:baseline:{symbol}:{bucket}");
            let h = hgetall(&db5, &key).await;
            let (avg, sd) = expect(last, per_session);
            assert!(
                (h["average"].parse::<f64>().unwrap() - avg).abs() < 1e-9,
                "{key} {h:?} vs {avg}"
            );
            assert!(
                (h["stddev"].parse::<f64>().unwrap() - sd).abs() < 1e-9,
                "{key} {h:?} vs {sd}"
            );
            assert_eq!(h["samples"], last.len().to_string());
            checked += 1;
        }
        assert!(checked > 100, "{checked}");
        // A re-run is idempotent.
        let again = tickwire_writer::baseline::compute(&cfg, &pools, &opts)
            .await
            .unwrap();
        assert_eq!(again, s);
    }
}

/// A surge in two buckets of a live session appends exactly one alert per
/// bucket, however many updates cross the threshold, and a second replay
/// appends none.
#[tokio::test]
async fn a_volume_surge_appends_exactly_one_alert_per_bucket() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // History: five sessions, then their baselines.
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 1,
        sessions: 5,
        ticks_per_session: 3_000,
        seed: 4,
        start: jiff::civil::date(2024, 1, 1),
    };
    let history = dir.path().join("history.jsonl");
    tickwire_testkit::synth::write_ticks(&spec, &mut std::fs::File::create(&history).unwrap())
        .unwrap();
    let cfg = config(
        &server,
        "[ttl.override]\ncumulative_volume = 2592000\n[writer]\nbatch_size = 1\n",
    );
    replay(&cfg, &[history]).await;
    let pools = tickwire_writer::RedisPools::connect(&cfg.redis, [5])
        .await
        .unwrap();
    let opts = tickwire_writer::baseline::BaselineOptions {
        lookback: 5,
        date: None,
    };
    tickwire_writer::baseline::compute(&cfg, &pools, &opts)
        .await
        .unwrap();
    let db5 = server.client(5).await.unwrap();
    let avg = |b: &'static str| {
        let db5 = &db5;
        async move {
            hgetall(db5, &format!("volume:baseline:RELIANCE:{b}")).await["average"]
                .parse::<f64>()
                .unwrap()
        }
    };
    let (avg_30, avg_31, avg_32) = (avg("09:30").await, avg("09:31").await, avg("09:32").await);

    // Live, Monday 2024-01-08: 09:30 normal, 09:31 and 09:32 surge in 20 trades each.
    let t0930 = 1_704_686_400_000; // 09:30 IST
    let mut body = line(
        "NSE",
        "RELIANCE",
        t0930 + 1_000,
        2_600.0,
        (avg_30 / 2.0).floor().max(1.0),
    );
    for minute in [1, 2] {
        for k in 0..20 {
            body += &line(
                "NSE",
                "RELIANCE",
                t0930 + minute * MIN + k * 1_000,
                2_601.0,
                (avg_31 + avg_32).ceil(),
            );
        }
    }
    let live = write(dir.path(), "live.jsonl", &body);
    // One trade per batch: every trade of a surge crosses the threshold again.
    let live_cfg = config(
        &server,
        "[ttl.override]\ncumulative_volume = 2592000\n[writer]\nbatch_size = 1\n",
    );
    for _ in 0..2 {
        replay(&live_cfg, std::slice::from_ref(&live)).await;
    }

    let db6 = server.client(6).await.unwrap();
    let alerts = xrange(&db6, "alerts:volume_surge").await;
    let buckets: Vec<&str> = alerts.iter().map(|a| field(a, "bucket")).collect();
    assert_eq!(
        buckets,
        ["09:31", "09:32"],
        "one alert per surging bucket, none for 09:30"
    );
    for a in &alerts {
        assert_eq!(
            (field(a, "symbol"), field(a, "session")),
            ("RELIANCE", "2024-01-08")
        );
        let ratio: f64 = field(a, "ratio").parse().unwrap();
        let volume: f64 = field(a, "volume").parse().unwrap();
        let baseline: f64 = field(a, "baseline").parse().unwrap();
        assert!(
            ratio >= 3.0 && (ratio - volume / baseline).abs() < 1e-9,
            "{a:?}"
        );
    }
    assert_ttl(&db6, "alerts:volume_surge").await;
    // The live ratio: 09:32's whole volume over its baseline.
    let ratio = hgetall(
        &server.client(4).await.unwrap(),
        "indicator:volume_ratio:RELIANCE",
    )
    .await;
    let want = 20.0 * (avg_31 + avg_32).ceil() / avg_32;
    assert!(
        (ratio["value"].parse::<f64>().unwrap() - want).abs() < 1e-9,
        "{ratio:?} vs {want}"
    );
}

/// A Dhan quote packet (code 4, 50 bytes) from the published layout.
fn dhan_quote(security: u32, ltp: f32, ltq: u16, ltt: u32, volume: u32) -> Vec<u8> {
    let mut b = vec![4u8];
    b.extend(50u16.to_le_bytes());
    b.push(1); // NSE_EQ
    b.extend(security.to_le_bytes());
    b.extend(ltp.to_le_bytes());
    b.extend(ltq.to_le_bytes());
    b.extend(ltt.to_le_bytes());
    b.extend((ltp - 0.5).to_le_bytes()); // ATP
    b.extend(volume.to_le_bytes());
    b.extend(1_000u32.to_le_bytes()); // total sell qty
    b.extend(2_000u32.to_le_bytes()); // total buy qty
    for v in [2_440.0f32, 2_430.0, 2_460.0, 2_420.0] {
        b.extend(v.to_le_bytes()); // open, close, high, low
    }
    assert_eq!(b.len(), 50);
    b
}

/// Two trading days of a recorded Dhan feed: day 2's cumulative volume starts
/// again far below day 1's, and its trades still land; the LTT is read as IST
/// wall clock (the default), so 10:30 IST is in the continuous phase. Each
/// trade's quantity is the day volume's growth since the last one applied
/// (the packet's LTQ kept as `ltq`): one packet covering three trades adds
/// all three, so the session's volume is the exchange's day volume; a later
/// process goes on from the checkpointed volume.
#[tokio::test]
async fn a_two_day_dhan_recording_lands_both_days_trades() {
    use base64::Engine as _;
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // 2024-01-01 10:30:00 as IST wall-clock seconds (05:00 UTC).
    let day1: u32 = 1_704_105_000;
    let day2 = day1 + 86_400;
    let packets = [
        (day1, 2450.05, 25, 120_000),
        // Three trades of 10 since the last packet: the day volume grew 30.
        (day1 + 1, 2450.5, 10, 120_030),
        (day1 + 60, 2451.0, 5, 120_035),
        // The next morning: the exchange's day volume restarted.
        (day2, 2460.0, 40, 40),
        (day2, 2460.0, 40, 40), // the book moved, no trade
        (day2 + 2, 2461.25, 15, 55),
    ];
    let lines: String = packets
        .iter()
        .enumerate()
        .map(|(i, &(ltt, ltp, ltq, vol))| {
            let recv_ns = (i64::from(ltt) - 19_800) * 1_000_000_000 + 5_000_000;
            let data = base64::engine::general_purpose::STANDARD
                .encode(dhan_quote(2885, ltp, ltq, ltt, vol));
            format!(
                "{}\n",
                serde_json::json!({"recv_ns": recv_ns + i as i64, "feed": "nse", "venue": "dhan",
                    "enc": "base64", "data": data})
            )
        })
        .collect();
    let file = write(dir.path(), "nse-dhan.jsonl", &lines);
    let cfg = config(
        &server,
        "[[feeds]]\nname = \"nse\"\nvenue = \"dhan\"\nsymbols = [\"NSE_EQ:2885=RELIANCE\"]\n",
    );
    let s = replay(&cfg, &[file]).await;
    assert_eq!(
        (s.ingest.ticks, s.ingest.skipped, s.state.dropped_outside),
        (5, 1, 0)
    );
    assert_eq!(s.writer.ticks_written, 5);

    let db4 = server.client(4).await.unwrap();
    let ticks = xrange(&db4, "ticks:RELIANCE").await;
    let got: Vec<(&str, &str, &str, &str, &str)> = ticks
        .iter()
        .map(|e| {
            (
                e.0.as_str(),
                field(e, "ltp"),
                field(e, "qty"),
                field(e, "vol"),
                field(e, "ltq"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // The first trade seen of the day carries the day so far.
            ("1704085200000-0", "2450.05", "120000", "120000", "25"),
            ("1704085201000-0", "2450.5", "30", "120030", "10"),
            ("1704085260000-0", "2451", "5", "120035", "5"),
            ("1704171600000-0", "2460", "40", "40", "40"),
            ("1704171602000-0", "2461.25", "15", "55", "15"),
        ]
    );
    let db5 = server.client(5).await.unwrap();
    let volume = |key: &'static str| {
        let db5 = &db5;
        async move {
            let h = hgetall(db5, key).await;
            (h["volume"].clone(), h["trades"].clone())
        }
    };
    assert_eq!(
        volume("volume:session:RELIANCE:2024-01-01").await,
        ("120035".to_string(), "3".to_string())
    );
    assert_eq!(
        volume("volume:session:RELIANCE:2024-01-02").await,
        ("55".to_string(), "2".to_string())
    );
    assert_eq!(
        volume("volume:bucket:RELIANCE:2024-01-01:10:30").await,
        ("120030".to_string(), "2".to_string())
    );
    assert_eq!(
        volume("volume:bucket:RELIANCE:2024-01-01:10:31").await,
        ("5".to_string(), "1".to_string())
    );
    assert_eq!(
        volume("volume:bucket:RELIANCE:2024-01-02:10:30").await,
        ("55".to_string(), "2".to_string())
    );

    // A later process (its own decoder, which has seen no packet): the next
    // packet's growth is counted from the checkpointed day volume, 55.
    let data =
        base64::engine::general_purpose::STANDARD.encode(dhan_quote(2885, 2462.0, 5, day2 + 3, 70));
    let recv_ns = (i64::from(day2 + 3) - 19_800) * 1_000_000_000 + 5_000_000;
    let line = serde_json::json!({"recv_ns": recv_ns, "feed": "nse", "venue": "dhan",
        "enc": "base64", "data": data});
    let later = write(dir.path(), "nse-dhan-2.jsonl", &format!("{line}\n"));
    replay(&cfg, &[later]).await;
    let ticks = xrange(&db4, "ticks:RELIANCE").await;
    let last = ticks.last().unwrap();
    assert_eq!((field(last, "qty"), field(last, "ltq")), ("15", "5"));
    assert_eq!(
        volume("volume:session:RELIANCE:2024-01-02").await,
        ("70".to_string(), "3".to_string())
    );
}

/// A Dhan feed configured with `ltt_basis = "utc"` reads LTT as a true epoch:
/// the same packet value lands 05:30 later than under the IST default.
#[tokio::test]
async fn a_dhan_feed_can_read_ltt_as_utc() {
    use base64::Engine as _;
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    // 2024-01-01 05:00:00 UTC = 10:30 IST, as a true epoch.
    let ltt: u32 = 1_704_085_200;
    let data =
        base64::engine::general_purpose::STANDARD.encode(dhan_quote(2885, 2450.05, 25, ltt, 100));
    let line = serde_json::json!({"recv_ns": 1_704_085_200_005_000_000i64, "feed": "utc-feed",
        "venue": "dhan", "enc": "base64", "data": data});
    let file = write(dir.path(), "utc.jsonl", &format!("{line}\n"));
    let cfg = config(
        &server,
        "[[feeds]]\nname = \"utc-feed\"\nvenue = \"dhan\"\nltt_basis = \"utc\"\n\
         symbols = [\"NSE_EQ:2885=RELIANCE\"]\n",
    );
    let s = replay(&cfg, &[file]).await;
    assert_eq!((s.ingest.ticks, s.state.dropped_outside), (1, 0));
    let ticks = xrange(&server.client(4).await.unwrap(), "ticks:RELIANCE").await;
    assert_eq!(ticks[0].0, "1704085200000-0");
}
