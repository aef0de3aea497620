//! Bars and indicators against TA-Lib: the committed fixture
//! (tests/fixtures/talib, made by make_fixture.py with TA-Lib 0.8) over the
//! synthetic series `tickwire synth --instruments 3 --sessions 2
//! --ticks-per-session 3000 --seed 5 --start 2024-01-01`.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value as Json;
use tickwire_core::Event;
use tickwire_indicators::{StateConfig, StateStage};
use tickwire_parse::{Format, LineDecoder, SourceMeta};
use tickwire_testkit::synth::{write_ticks, SynthSpec};

const FIXTURE: &str = include_str!("fixtures/talib/fixture.json");

fn spec() -> SynthSpec {
    SynthSpec {
        instruments: 3,
        sessions: 2,
        ticks_per_session: 3_000,
        seed: 5,
        start: jiff::civil::date(2024, 1, 1),
    }
}

fn ticks() -> Vec<u8> {
    let mut out = Vec::new();
    write_ticks(&spec(), &mut out).unwrap();
    out
}

fn fixture() -> Json {
    serde_json::from_str(FIXTURE).unwrap()
}

/// `[[open_ms, value], ...]` of one series of one symbol.
fn series(f: &Json, symbol: &str, name: &str) -> Vec<(i64, f64)> {
    f["symbols"][symbol][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

fn assert_close(what: &str, got: f64, want: f64) {
    let rel = ((got - want) / want).abs();
    assert!(
        rel <= 1e-9,
        "{what}: {got} vs TA-Lib {want} (relative {rel:e})"
    );
}

fn state_config() -> StateConfig {
    StateConfig {
        close_at_end: true,
        ..StateConfig::default()
    }
}

#[derive(Default)]
struct Seen {
    bars: Vec<[f64; 7]>,
    rsi: Vec<(i64, f64)>,
    atr: Vec<(i64, f64)>,
    /// VWAP after the last trade of each bar, by bar open.
    vwap: BTreeMap<i64, f64>,
}

#[test]
fn inline_engine_matches_the_ta_lib_fixture() {
    let f = fixture();
    let meta = SourceMeta {
        format: Format::TicksJson,
        symbol: None,
        exchange: String::new(),
    };
    let mut decoder = LineDecoder::new(256);
    let mut stage = StateStage::new(state_config());
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let record = |events: Vec<Event>, seen: &mut BTreeMap<String, Seen>| {
        for e in events {
            match e {
                Event::Bar(b) if b.closed => {
                    let x = b.bar;
                    let row = [
                        x.open_ms as f64,
                        x.open.to_f64(),
                        x.high.to_f64(),
                        x.low.to_f64(),
                        x.close.to_f64(),
                        x.volume.to_f64(),
                        x.trades as f64,
                    ];
                    seen.entry(b.instrument.symbol.to_string())
                        .or_default()
                        .bars
                        .push(row);
                }
                Event::Indicator(i) => {
                    let s = seen.entry(i.instrument.symbol.to_string()).or_default();
                    match i.name {
                        "rsi" => s.rsi.push((i.ts_ms, i.value)),
                        "atr" => s.atr.push((i.ts_ms, i.value)),
                        "vwap" => {
                            s.vwap.insert(i.ts_ms - i.ts_ms.rem_euclid(60_000), i.value);
                        }
                        other => panic!("unexpected indicator {other}"),
                    }
                }
                _ => {}
            }
        }
    };
    for line in ticks().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut parsed = Vec::new();
        decoder.decode(&meta, line, &mut parsed);
        let mut out = Vec::new();
        for e in parsed {
            stage.process(e, &mut out);
        }
        // Hand on the VWAP after every trade, to see it bar by bar.
        stage.emit_dirty(&mut out);
        record(out, &mut seen);
    }
    let mut out = Vec::new();
    stage.finish(&mut out);
    record(out, &mut seen);

    let symbols = f["symbols"].as_object().unwrap();
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        symbols.keys().collect::<Vec<_>>()
    );
    for (symbol, want) in symbols {
        let got = &seen[symbol];
        let bars: Vec<[f64; 7]> = want["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let v: Vec<f64> = b
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                [v[0], v[1], v[2], v[3], v[4], v[5], v[6]]
            })
            .collect();
        assert_eq!(got.bars, bars, "{symbol} bars");
        for (name, got_series) in [("rsi", &got.rsi), ("atr", &got.atr)] {
            let want_series = series(&f, symbol, name);
            assert_eq!(
                got_series.len(),
                want_series.len(),
                "{symbol} {name}: values after warm-up"
            );
            for ((gt, gv), (wt, wv)) in got_series.iter().zip(&want_series) {
                assert_eq!(gt, wt, "{symbol} {name} bar");
                assert_close(&format!("{symbol} {name} at {wt}"), *gv, *wv);
            }
        }
        let want_vwap = series(&f, symbol, "vwap");
        assert_eq!(got.vwap.len(), want_vwap.len());
        for ((gt, gv), (wt, wv)) in got.vwap.iter().zip(&want_vwap) {
            assert_eq!(gt, wt);
            assert_close(&format!("{symbol} vwap at {wt}"), *gv, *wv);
        }
    }
}

#[tokio::test]
async fn replayed_bars_and_indicator_hashes_in_redis_match_the_fixture() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.jsonl");
    std::fs::write(&file, ticks()).unwrap();
    let s = replay(&config(&server, ""), &[file]).await;
    let f = fixture();
    let symbols = f["symbols"].as_object().unwrap();
    let total_bars: usize = symbols
        .values()
        .map(|v| v["bars"].as_array().unwrap().len())
        .sum();
    assert_eq!(s.writer.bars_written as usize, total_bars);

    let db4 = server.client(4).await.unwrap();
    for (symbol, want) in symbols {
        let entries = xrange(&db4, &format!("bars:1m:{symbol}")).await;
        let bars = want["bars"].as_array().unwrap();
        assert_eq!(entries.len(), bars.len(), "{symbol}");
        for (e, b) in entries.iter().zip(bars) {
            let b: Vec<f64> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(e.0, format!("{}-0", b[0] as i64), "bar ID is its open time");
            for (k, name) in ["ts", "o", "h", "l", "c", "v", "n"].iter().enumerate() {
                let v: f64 = field(e, name).parse().unwrap();
                assert_eq!(v, b[k], "{symbol} bar {} field {name}", e.0);
            }
        }
        assert_ttl(&db4, &format!("bars:1m:{symbol}")).await;
        for (name, period) in [("rsi", "14"), ("atr", "14"), ("vwap", "0")] {
            let key = format!("indicator:{name}:{symbol}");
            let h = hgetall(&db4, &key).await;
            let (ts, value) = *series(&f, symbol, name).last().unwrap();
            assert_close(&key, h["value"].parse().unwrap(), value);
            assert_eq!(h["period"], period, "{key}");
            if name != "vwap" {
                assert_eq!(
                    h["ts"],
                    ts.to_string(),
                    "{key} is as of the last closed bar"
                );
            }
            assert_ttl(&db4, &key).await;
        }
    }
    // A second replay adds no bar and changes no indicator: every trade is
    // known to the checkpoints as applied.
    let again = replay(&config(&server, ""), &[dir.path().join("ticks.jsonl")]).await;
    assert_eq!(
        (again.writer.bars_written, again.writer.bar_duplicates),
        (0, 0)
    );
    assert_eq!(again.state.resent, again.ingest.ticks);
    assert!(total_bars > 0);
}

#[tokio::test]
async fn replay_at_recorded_pace_gives_the_same_bars_and_indicators_as_max() {
    use tickwire_ingest::{Pace, ReplayOptions};

    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.jsonl");
    std::fs::write(&file, ticks()).unwrap();
    // Two trading days in about half a second, against as fast as possible:
    // different chunking and batching, the same exchange times.
    for (prefix, pace) in [("max:", Pace::Max), ("paced:", Pace::Speed(200_000.0))] {
        let cfg = config(&server, &format!("[keys]\nprefix = \"{prefix}\"\n"));
        let opts = ReplayOptions {
            feeds: Vec::new(),
            files: vec![file.clone()],
            format: None,
            symbol: None,
            pace,
            max_raw: 256,
            chunk_events: 16,
            max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
            close_at_end: true,
        };
        tickwire::replay(&cfg, opts, tickwire::CancellationToken::new())
            .await
            .unwrap();
    }
    let db4 = server.client(4).await.unwrap();
    let all = keys(&db4).await;
    let max: Vec<&String> = all.iter().filter(|k| k.starts_with("max:")).collect();
    assert_eq!(max.len() * 2, all.len());
    for k in max {
        let other = k.replacen("max:", "paced:", 1);
        if k.contains(":forming") || k.contains("indicator:") {
            assert_eq!(hgetall(&db4, k).await, hgetall(&db4, &other).await, "{k}");
        } else {
            assert_eq!(xrange(&db4, k).await, xrange(&db4, &other).await, "{k}");
        }
    }
}

/// Every key of DB 4 but the Lua engine's own state, with its content: a
/// stream as its entries, a hash as its fields, text as Redis holds it (one
/// value has one text, whichever engine wrote it).
async fn db4_content(server: &tickwire_testkit::RedisServer) -> BTreeMap<String, String> {
    let db4 = server.client(4).await.unwrap();
    let mut out = BTreeMap::new();
    for k in keys(&db4).await {
        if k.starts_with("indicator:state:") {
            continue;
        }
        let kind: String = fred::prelude::KeysInterface::r#type(&db4, k.as_str())
            .await
            .unwrap();
        let content = if kind == "hash" {
            let h: BTreeMap<String, String> = hgetall(&db4, &k).await.into_iter().collect();
            format!("{h:?}")
        } else {
            let entries: Vec<(String, BTreeMap<String, String>)> = xrange(&db4, &k)
                .await
                .into_iter()
                .map(|(id, f)| (id, f.into_iter().collect()))
                .collect();
            format!("{entries:?}")
        };
        out.insert(k, content);
    }
    out
}

fn lua_opts(
    file: std::path::PathBuf,
    pace: tickwire_ingest::Pace,
) -> tickwire_ingest::ReplayOptions {
    tickwire_ingest::ReplayOptions {
        feeds: Vec::new(),
        files: vec![file],
        format: None,
        symbol: None,
        pace,
        max_raw: 256,
        chunk_events: 64,
        max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
        close_at_end: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_engine_writes_exactly_what_the_inline_engine_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.jsonl");
    std::fs::write(&file, ticks()).unwrap();
    let inline = redis();
    let lua = redis();
    replay(&config(&inline, ""), std::slice::from_ref(&file)).await;
    let cfg = config(&lua, "[indicators]\nengine = \"lua\"\n");
    let s = tickwire::replay(
        &cfg,
        lua_opts(file.clone(), tickwire_ingest::Pace::Max),
        tickwire::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(s.writer.lua_calls > 0);
    let (a, b) = (db4_content(&inline).await, db4_content(&lua).await);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert_eq!(v, &b[k], "{k} differs between the engines");
    }
    // And both are TA-Lib's values.
    let f = fixture();
    let db4 = lua.client(4).await.unwrap();
    for symbol in f["symbols"].as_object().unwrap().keys() {
        for name in ["rsi", "atr", "vwap"] {
            let (_, want) = *series(&f, symbol, name).last().unwrap();
            let h = hgetall(&db4, &format!("indicator:{name}:{symbol}")).await;
            assert_close(
                &format!("lua {name} {symbol}"),
                h["value"].parse().unwrap(),
                want,
            );
            // The scripts write these keys; the writer sets their TTLs.
            assert_ttl(&db4, &format!("indicator:{name}:{symbol}")).await;
        }
        assert_ttl(&db4, &format!("indicator:state:{symbol}")).await;
    }
    // A second replay applies nothing: the scripts skip what they have seen.
    let again = tickwire::replay(
        &cfg,
        lua_opts(file, tickwire_ingest::Pace::Max),
        tickwire::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(again.writer.bars_written, 0);
    assert_eq!(db4_content(&lua).await, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_flush_mid_replay_changes_nothing_in_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.jsonl");
    std::fs::write(&file, ticks()).unwrap();
    let reference = redis();
    replay(&config(&reference, ""), std::slice::from_ref(&file)).await;

    let lua = redis();
    let cfg = config(
        &lua,
        "[indicators]\nengine = \"lua\"\n[writer]\nbatch_size = 200\n",
    );
    // Two trading days in about two seconds; the scripts vanish twice on the way.
    let run = {
        let cfg = cfg.clone();
        let file = file.clone();
        tokio::spawn(async move {
            tickwire::replay(
                &cfg,
                lua_opts(file, tickwire_ingest::Pace::Speed(50_000.0)),
                tickwire::CancellationToken::new(),
            )
            .await
        })
    };
    use fred::prelude::ClientLike;
    let admin = lua.client(0).await.unwrap();
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let _: fred::prelude::Value = admin
            .custom(fred::cmd!("SCRIPT"), vec!["FLUSH"])
            .await
            .unwrap();
    }
    let s = run.await.unwrap().unwrap();
    assert!(
        s.writer.script_reloads >= 1,
        "the flush was noticed: {:?}",
        s.writer.script_reloads
    );
    assert_eq!(s.writer.write_errors, 0);
    let (a, b) = (db4_content(&reference).await, db4_content(&lua).await);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert_eq!(v, &b[k], "{k} differs after SCRIPT FLUSH");
    }
}

#[tokio::test]
async fn several_intervals_at_once_aggregate_the_same_trades() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticks.jsonl");
    std::fs::write(&file, ticks()).unwrap();
    let cfg = config(&server, "[bars]\nintervals = [\"1m\", \"5m\"]\n");
    replay(&cfg, &[file]).await;
    let db4 = server.client(4).await.unwrap();
    let num = |e: &(String, std::collections::HashMap<String, String>), f: &str| {
        field(e, f).parse::<f64>().unwrap()
    };
    for symbol in ["RELIANCE", "TCS", "HDFCBANK"] {
        let ones = xrange(&db4, &format!("bars:1m:{symbol}")).await;
        let fives = xrange(&db4, &format!("bars:5m:{symbol}")).await;
        assert!(!fives.is_empty());
        let mut i = 0;
        for five in &fives {
            let open = num(five, "ts");
            let group: Vec<_> = ones[i..]
                .iter()
                .take_while(|b| num(b, "ts") < open + 300_000.0)
                .collect();
            i += group.len();
            assert!(
                !group.is_empty() && num(group[0], "ts") >= open,
                "{symbol} {}",
                five.0
            );
            assert_eq!(num(five, "o"), num(group[0], "o"));
            assert_eq!(num(five, "c"), num(group[group.len() - 1], "c"));
            assert_eq!(
                num(five, "h"),
                group.iter().map(|b| num(b, "h")).fold(f64::MIN, f64::max)
            );
            assert_eq!(
                num(five, "l"),
                group.iter().map(|b| num(b, "l")).fold(f64::MAX, f64::min)
            );
            assert_eq!(
                num(five, "n"),
                group.iter().map(|b| num(b, "n")).sum::<f64>()
            );
            let v: f64 = group.iter().map(|b| num(b, "v")).sum();
            assert!((num(five, "v") - v).abs() < 1e-9);
        }
        assert_eq!(i, ones.len(), "every 1m bar falls in a 5m bar");
    }
}

/// `[[open_ms, a, b, c], ...]` of a three-valued series (MACD, BBANDS).
fn series3(f: &Json, symbol: &str, name: &str) -> Vec<(i64, [f64; 3])> {
    f["symbols"][symbol][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let v = |i: usize| p[i].as_f64().unwrap();
            (p[0].as_i64().unwrap(), [v(1), v(2), v(3)])
        })
        .collect()
}

/// Within 1e-9 relative, or 1e-12 absolute where the value is about zero
/// (MACD lines cross zero; a relative error there means nothing).
fn assert_close_or_tiny(what: &str, got: f64, want: f64) {
    if want.abs() < 1e-3 {
        assert!(
            (got - want).abs() <= 1e-12,
            "{what}: {got} vs TA-Lib {want}"
        );
    } else {
        assert_close(what, got, want);
    }
}

#[test]
fn macd_and_bollinger_of_the_indicator_set_match_the_ta_lib_fixture() {
    let f = fixture();
    let meta = SourceMeta {
        format: Format::TicksJson,
        symbol: None,
        exchange: String::new(),
    };
    let mut decoder = LineDecoder::new(256);
    let mut cfg = state_config();
    cfg.extended = true;
    let mut stage = StateStage::new(cfg);
    let mut sets: BTreeMap<String, Vec<tickwire_core::IndicatorSet>> = BTreeMap::new();
    let mut take = |events: Vec<Event>| {
        for e in events {
            if let Event::IndicatorSet(s) = e {
                sets.entry(s.instrument.symbol.to_string())
                    .or_default()
                    .push(s);
            }
        }
    };
    let data = ticks();
    for line in data.split(|b| *b == b'\n') {
        let mut parsed = Vec::new();
        decoder.decode(&meta, line, &mut parsed);
        let mut out = Vec::new();
        for e in parsed {
            stage.process(e, &mut out);
        }
        take(out);
    }
    let mut out = Vec::new();
    stage.finish(&mut out);
    take(out);
    for symbol in ["HDFCBANK", "RELIANCE", "TCS"] {
        let got = &sets[symbol];
        let macd: Vec<_> = got
            .iter()
            .filter_map(|s| Some((s.ts_ms, [s.macd?, s.macd_signal?, s.macd_hist?])))
            .collect();
        let want = series3(&f, symbol, "macd");
        assert_eq!(macd.len(), want.len(), "{symbol}: MACD values");
        for ((t, g), (wt, w)) in macd.iter().zip(&want) {
            assert_eq!(t, wt);
            for k in 0..3 {
                assert_close_or_tiny(&format!("{symbol} macd[{k}] at {t}"), g[k], w[k]);
            }
        }
        let bb: Vec<_> = got
            .iter()
            .filter_map(|s| Some((s.ts_ms, [s.bb_upper?, s.bb_middle?, s.bb_lower?])))
            .collect();
        let want = series3(&f, symbol, "bbands");
        assert_eq!(bb.len(), want.len(), "{symbol}: Bollinger values");
        for ((t, g), (wt, w)) in bb.iter().zip(&want) {
            assert_eq!(t, wt);
            for k in 0..3 {
                assert_close(&format!("{symbol} bbands[{k}] at {t}"), g[k], w[k]);
            }
        }
        // RSI 14 of the set is the same Wilder RSI as the hash's.
        let rsi: Vec<_> = got.iter().filter_map(|s| Some((s.ts_ms, s.rsi?))).collect();
        let want = series(&f, symbol, "rsi");
        assert_eq!(rsi.len(), want.len());
        for ((t, g), (wt, w)) in rsi.iter().zip(&want) {
            assert_eq!(t, wt);
            assert_close(&format!("{symbol} rsi at {t}"), *g, *w);
        }
    }
}

/// The Lua engine's `fmt` (the same block in both indicator scripts), run
/// in Redis on `values`: the text each becomes.
async fn lua_fmt(client: &fred::prelude::Client, values: &[f64]) -> Vec<String> {
    use fred::prelude::LuaInterface;
    let block = |src: &str| -> String {
        let from = src.find("-- fmt begin").expect("a fmt block");
        let to = src.find("-- fmt end").expect("the end of the fmt block");
        src[from..to].to_string()
    };
    let bars = block(tickwire_writer::LUA_BAR_INDICATORS);
    assert_eq!(
        bars,
        block(tickwire_writer::LUA_VWAP),
        "both scripts print numbers alike"
    );
    let script = format!(
        "{bars}\nlocal out = {{}}\nfor i = 1, #ARGV do out[i] = fmt(struct.unpack('<d', ARGV[i])) end\nreturn out"
    );
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(2_000) {
        let args: Vec<fred::types::Value> = chunk
            .iter()
            .map(|v| fred::types::Value::Bytes(fred::bytes::Bytes::from(v.to_le_bytes().to_vec())))
            .collect();
        let got: Vec<String> = client.eval(script.as_str(), (), args).await.unwrap();
        out.extend(got);
    }
    out
}

#[tokio::test]
async fn the_lua_engine_writes_a_number_as_the_inline_engine_does() {
    // The inline engine writes a float with Rust's Display: the shortest
    // digits that read back, no exponent. Doubles of every kind: random
    // bits, every power of two (where the gap below is half the gap above),
    // integers around 1e15 and 2^53, few-digit decimals, tiny and huge.
    let mut values: Vec<f64> = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while values.len() < 30_000 {
        let v = f64::from_bits(next());
        if v.is_finite() {
            values.push(v);
        }
    }
    for k in -1074..=1023 {
        let p = 2f64.powi(k);
        values.extend([p, -p, p * 1.5]);
    }
    for i in 0..2_000u64 {
        let r = next();
        values.push(1e15 + (r % 10_000) as f64 - 5_000.0);
        values.push(9_007_199_254_740_992.0 + (r % 64) as f64 * 2.0);
        values.push((r % 100_000) as f64 / 10f64.powi((i % 12) as i32));
        values.push((r % 1_000_000_007) as f64 * 1e-13);
        values.push((r % 1_000_000_007) as f64 * 1e9);
        values.push(f64::from(u32::try_from(r % 1_000).unwrap()) / 7.0);
        // Exactly halfway between two 17-digit texts (spacing 0.25, 0.125).
        values.push((1u64 << 50) as f64 + (r % 1_000_000) as f64 + 0.25 * (r % 4) as f64);
        values.push((1u64 << 49) as f64 + (r % 1_000_000) as f64 + 0.125 * (r % 8) as f64);
    }
    values.extend([
        0.0,
        -0.0,
        1.3275169386783574e-06,
        1e15,
        1e16,
        1e-5,
        50.0,
        100.0,
    ]);
    let server = redis();
    let client = server.client(0).await.unwrap();
    let got = lua_fmt(&client, &values).await;
    assert_eq!(got.len(), values.len());
    let wrong: Vec<String> = values
        .iter()
        .zip(&got)
        .filter(|(v, t)| format!("{v}") != **t)
        .take(10)
        .map(|(v, t)| format!("{v:e}: Rust {v}, Lua {t}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} differ, first: {wrong:#?}",
        wrong.len()
    );
}

/// Trades of a penny coin (ATR and VWAP under 1e-4) and of a coin priced
/// above 1e16 (ATR and VWAP above 1e15), 40 minutes of them.
fn extreme_ticks() -> String {
    let t0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC
    let mut lines = String::new();
    for m in 0..40i64 {
        for k in 0..5i64 {
            let ts = t0 + m * 60_000 + k * 9_000;
            let step = (m * 7 + k * 3) % 11 - 5;
            let tiny = format!("0.0000{}", 12_340 + step * 3 + k);
            let huge = format!(
                "{}",
                31_234_567_890_123_456i64 + step * 512_345_678_901_234 + k * 97
            );
            for (symbol, price) in [("PENNY", tiny), ("WHALE", huge)] {
                lines.push_str(&format!(
                    "{{\"exchange\":\"binance\",\"symbol\":\"{symbol}\",\"ts\":{ts},\"ltp\":{price},\"qty\":{}}}\n",
                    1 + (m + k) % 4
                ));
            }
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_write_one_text_for_tiny_and_huge_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "extreme.jsonl", &extreme_ticks());
    let inline = redis();
    let lua = redis();
    replay(&config(&inline, ""), std::slice::from_ref(&file)).await;
    replay(
        &config(&lua, "[indicators]\nengine = \"lua\"\n"),
        std::slice::from_ref(&file),
    )
    .await;
    let (a, b) = (db4_content(&inline).await, db4_content(&lua).await);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert_eq!(v, &b[k], "{k} differs between the engines");
    }
    // The values are of the sizes meant: tiny and huge, in plain notation.
    let db4 = inline.client(4).await.unwrap();
    let value = |h: std::collections::HashMap<String, String>| h["value"].clone();
    let penny_atr = value(hgetall(&db4, "indicator:atr:PENNY").await);
    let whale_atr = value(hgetall(&db4, "indicator:atr:WHALE").await);
    let penny_vwap = value(hgetall(&db4, "indicator:vwap:PENNY").await);
    let whale_vwap = value(hgetall(&db4, "indicator:vwap:WHALE").await);
    for (text, small) in [
        (&penny_atr, true),
        (&penny_vwap, true),
        (&whale_atr, false),
        (&whale_vwap, false),
    ] {
        let v: f64 = text.parse().unwrap();
        assert!(if small { v < 1e-4 } else { v > 1e15 }, "{text}");
        assert!(!text.contains('e'), "{text} is in plain notation");
    }
}
