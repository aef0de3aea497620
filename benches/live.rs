//! Live feed benches, against a local WebSocket server and a private
//! redis-server:
//!
//! - `live/one_connection`: 20,000 Binance trade frames on one connection,
//!   timed from the subscription to the last tick in Redis (WebSocket read,
//!   parse, state, writer).
//! - `live/replay_of_same_frames`: the same frames as a recording through
//!   `replay --max`, for the ratio of the two.
//! - `live/reconnect`: from a dropped connection to the new subscription
//!   (default `[live]` backoff: the first retry waits 125-250 ms).
//!
//! `cargo bench --bench live`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fred::prelude::*;
use tickwire_core::config::Overrides;
use tickwire_core::Config;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::ws_server::{Step, WsServer};
use tickwire_testkit::RedisServer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FRAMES: usize = 20_000;

fn frame(i: usize) -> String {
    let t = 1_704_067_200_000i64 + i as i64;
    format!(
        r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t},"s":"BTCUSDT","t":{i},"p":"42000.{}","q":"0.01","T":{t},"m":false,"M":true}}}}"#,
        i % 100
    )
}

fn config(server: &RedisServer, url: &str, prefix: &str) -> Config {
    let toml = format!(
        "[[feeds]]\nname = \"bn\"\nvenue = \"binance\"\nurl = \"{url}\"\nsymbols = [\"BTCUSDT\"]\n"
    );
    Config::from_toml(
        &toml,
        &Overrides {
            redis_url: Some(server.url()),
            prefix: Some(prefix.into()),
            ..Default::default()
        },
        tickwire_parse::VENUES,
    )
    .expect("bench config is valid")
}

fn live(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let redis = RedisServer::start().expect("the bench needs redis-server");
    let db4 = rt.block_on(redis.client(4)).expect("client");
    let mut g = c.benchmark_group("live");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(FRAMES as u64));
    let mut run_no = 0usize;
    g.bench_function("one_connection", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run_no += 1;
                total += rt.block_on(one_run(&redis, &db4, run_no));
            }
            total
        })
    });
    // The same frames from a recording, replayed as fast as possible.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("frames.jsonl");
    let body: String = (0..FRAMES)
        .map(|i| {
            serde_json::json!({"recv_ns": 1_704_067_200_000_000_000i64 + i as i64, "feed": "bn", "venue": "binance", "data": frame(i)})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&file, body).expect("write frames");
    g.bench_function("replay_of_same_frames", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run_no += 1;
                let config = config(&redis, "ws://127.0.0.1:1/", &format!("r{run_no}:"));
                let opts = ReplayOptions {
                    feeds: config.feeds.clone(),
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
                    .expect("replay");
                total += started.elapsed();
                assert_eq!(s.writer.ticks_written, FRAMES as u64);
            }
            total
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("reconnect", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run_no += 1;
                total += rt.block_on(reconnect(&redis, &db4, run_no));
            }
            total
        })
    });
    g.finish();
}

async fn wait_xlen(db4: &Client, key: &str, n: u64) {
    loop {
        let len: u64 = db4.xlen(key).await.expect("xlen");
        if len >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One run: the time from the subscription to the last tick in Redis.
async fn one_run(redis: &RedisServer, db4: &Client, n: usize) -> Duration {
    let mut script = vec![Step::ExpectText];
    script.extend((0..FRAMES).map(|i| Step::Text(frame(i))));
    script.push(Step::Hold);
    let ws = WsServer::start(vec![script], false)
        .await
        .expect("ws server");
    let prefix = format!("l{n}:");
    let config = config(redis, &ws.url("/stream"), &prefix);
    let stop = tickwire::CancellationToken::new();
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move { tickwire::run::run(&config, None, stop).await })
    };
    while ws.texts(0).is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    wait_xlen(db4, &format!("{prefix}ticks:BTCUSDT"), FRAMES as u64).await;
    let took = started.elapsed();
    stop.cancel();
    let _ = task.await;
    took
}

/// One drop: the time from the loss to the new subscription, as the feed measured it.
async fn reconnect(redis: &RedisServer, db4: &Client, n: usize) -> Duration {
    let ws = WsServer::start(
        vec![
            vec![Step::ExpectText, Step::Text(frame(0)), Step::Drop],
            vec![Step::ExpectText, Step::Text(frame(1)), Step::Hold],
        ],
        false,
    )
    .await
    .expect("ws server");
    let prefix = format!("c{n}:");
    let config = config(redis, &ws.url("/stream"), &prefix);
    let stop = tickwire::CancellationToken::new();
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move { tickwire::run::run(&config, None, stop).await })
    };
    wait_xlen(db4, &format!("{prefix}ticks:BTCUSDT"), 2).await;
    stop.cancel();
    let summary = task.await.expect("task").expect("run");
    Duration::from_micros(summary.feeds[0].last_reconnect_us)
}

criterion_group!(benches, live);
criterion_main!(benches);
