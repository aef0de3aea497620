//! Throughput benches.
//!
//! - `parse/*`: one line through the decoder, per input format.
//! - `e2e/replay`: synthetic ticks replayed end to end (reader, parser, writer)
//!   into a private redis-server, flushed before every run so each run writes
//!   everything afresh.
//!
//! `cargo bench --bench replay`
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tickwire_core::config::Overrides;
use tickwire_core::{Config, Dec, Event};
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_parse::{Format, LineDecoder, SourceMeta};
use tickwire_testkit::synth::{write_ticks, SynthSpec};
use tickwire_testkit::RedisServer;

// The same allocator as the tickwire binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn meta(format: Format) -> SourceMeta {
    SourceMeta {
        format,
        symbol: Some("BTCUSDT".into()),
        exchange: "binance".into(),
    }
}

fn parse(c: &mut Criterion) {
    let cases: [(&str, Format, String); 3] = [
        (
            "tick_json_line",
            Format::TicksJson,
            r#"{"exchange":"NSE","segment":"NSE_EQ","symbol":"RELIANCE","security_id":"2885","ts":1704080713828,"ltp":2600.05,"qty":36,"vol":36,"bid":2600.00,"ask":2600.10}"#.into(),
        ),
        (
            "binance_trade_frame_record",
            Format::Frames,
            serde_json::json!({"recv_ns": 1704067200500000000i64, "feed": "binance", "data": r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1704067200124,"s":"BTCUSDT","t":100,"p":"42283.58000000","q":"0.00118000","T":1704067200123,"m":false,"M":true}}"#}).to_string(),
        ),
        (
            "binance_csv_line",
            Format::BinanceCsv,
            "3380000001,42283.58,0.00118,49.8946244,1704067200123,false,true".into(),
        ),
    ];
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for (name, format, line) in cases {
        let m = meta(format);
        let mut d = LineDecoder::new(1024);
        let mut out: Vec<Event> = Vec::with_capacity(1024);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || (),
                |_| {
                    if out.len() >= 1024 {
                        out.clear();
                    }
                    d.decode(&m, line.as_bytes(), &mut out);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn e2e(c: &mut Criterion) {
    let server = RedisServer::start().expect("the e2e bench needs redis-server on PATH");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.jsonl");
    let spec = SynthSpec {
        instruments: 20,
        sessions: 1,
        ticks_per_session: 5_000,
        seed: 1,
        start: jiff::civil::date(2024, 1, 2),
    };
    let n = write_ticks(&spec, &mut std::fs::File::create(&file).unwrap()).unwrap();
    let config = Config::defaults(&Overrides {
        redis_url: Some(server.url()),
        prefix: None,
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let flusher = rt.block_on(server.client(0)).unwrap();

    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("replay_100k_ticks_20_instruments", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(async {
                    use fred::prelude::*;
                    let _: () = flusher.flushall(false).await.unwrap();
                });
                let opts = ReplayOptions {
                    feeds: Vec::new(),
                    files: vec![file.clone()],
                    format: None,
                    symbol: None,
                    pace: Pace::Max,
                    max_raw: 1024,
                    chunk_events: 1024,
                    max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
                    close_at_end: false,
                };
                let started = Instant::now();
                let s = rt
                    .block_on(tickwire::replay(
                        &config,
                        opts,
                        tickwire::CancellationToken::new(),
                    ))
                    .unwrap();
                total += started.elapsed();
                assert_eq!(s.writer.ticks_written, n);
            }
            total
        })
    });
    g.finish();
}

/// One trade through the state stage: its 1m bar, the session VWAP, and on
/// every 60th trade a bar close with RSI(14) and ATR(14).
fn state(c: &mut Criterion) {
    use std::sync::Arc as StdArc;
    use tickwire_core::{Instrument, Tick};
    use tickwire_indicators::{StateConfig, StateStage};

    let cfg = StateConfig::default();
    let mut stage = StateStage::new(cfg);
    let inst = StdArc::new(Instrument::new("NSE", "SBIN"));
    let mut ts_ns: i64 = 1_704_080_700_000_000_000;
    let mut price = Dec::from_scaled(61_235, 2);
    let (up, down) = (Dec::from_scaled(5, 2), Dec::from_scaled(-5, 2));
    let qty = Dec::from_int(10);
    let mut out = Vec::with_capacity(16);
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bar_rsi_atr_vwap_per_tick", |b| {
        b.iter(|| {
            ts_ns += 1_000_000_000;
            price += if ts_ns % 3 == 0 { up } else { down };
            let tick = Tick::trade(StdArc::clone(&inst), ts_ns, ts_ns, price, qty);
            stage.process(Event::Tick(tick), &mut out);
            out.clear();
        })
    });
    g.finish();
}

criterion_group!(benches, parse, state, e2e);
criterion_main!(benches);
