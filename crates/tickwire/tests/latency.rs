//! Tick-to-Redis latency of a live run, read off the histogram an operator
//! scrapes (`tickwire_tick_to_redis_latency_seconds`): a local Binance
//! trade feed at a set rate into `tickwire run`, then the quantiles of the
//! histogram once every tick is in Redis: over the whole run, and over what
//! it gained after the first second (a scrape then and one at the end, as
//! `histogram_quantile(q, rate(...))` reads a window). The first tens of
//! milliseconds of a run are its start (connections' first commands, the
//! first keys' EXPIREs, the state stage's first chunk): in a 10 s run at
//! 50,000 frames/s they are most of the ticks above p99.9.
//!
//! In the suite this runs small (1,000 frames a second for 2 s) and checks
//! what can fail there: every tick lands and is in the histogram once, and
//! the buckets resolve 50 µs to 1 s. The figures are a bench's:
//! `benches/latency.sh` runs it optimized at 1,000 and 50,000 frames a
//! second through `TICKWIRE_LATENCY_RATE` and `TICKWIRE_LATENCY_SECONDS` and
//! prints them.

use tickwire_testkit::prelude::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tickwire_testkit::ws_server::{Flood, WsServer};

const HISTOGRAM: &str = "tickwire_tick_to_redis_latency_seconds";
const SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

/// A Binance feed of [`SYMBOLS`] at `url`, the metrics endpoint on
/// `metrics_port`, the spool in `dir`.
fn live_config(dir: &Path, url: &str, metrics_port: u16) -> PathBuf {
    config_file(
        dir,
        "tickwire.toml",
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [spool]\ndir = \"{}\"\n\
             [streams]\nmaxlen = 100000000\n{}",
            dir.join("spool").display(),
            feed_toml("binance", "binance", url, &SYMBOLS, &["trade"])
        ),
    )
}

/// Histogram `name`'s cumulative buckets, `(upper bound, count)` by bound
/// (summed over its label sets).
fn buckets(m: &HashMap<String, f64>, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut by_le: HashMap<String, f64> = HashMap::new();
    for (k, v) in m {
        let Some(labels) = k.strip_prefix(&prefix) else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|l| l.trim_end_matches('}').strip_prefix("le=\""))
        else {
            continue;
        };
        *by_le
            .entry(le.trim_end_matches('"').to_string())
            .or_default() += v;
    }
    let mut b: Vec<(f64, f64)> = by_le
        .iter()
        .filter_map(|(le, v)| {
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *v))
        })
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    b
}

/// What `to` gained since `from`, bucket by bucket (both cumulative, the
/// same bounds: one histogram scraped twice).
fn window(from: &[(f64, f64)], to: &[(f64, f64)]) -> Vec<(f64, f64)> {
    to.iter()
        .map(|&(le, n)| {
            let before = from.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - before)
        })
        .collect()
}

/// The `q` quantile as Prometheus' `histogram_quantile` gives it: linear
/// within the bucket it falls in (the last finite bound if it falls above).
fn quantile(b: &[(f64, f64)], q: f64) -> f64 {
    let total = b.last().map_or(0.0, |x| x.1);
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, n) in b {
        if n >= rank {
            if le.is_infinite() {
                return below.0;
            }
            let share = if n > below.1 {
                (rank - below.1) / (n - below.1)
            } else {
                0.0
            };
            return below.0 + (le - below.0) * share;
        }
        below = (le, n);
    }
    below.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tick_to_redis_histogram_of_a_live_run_has_every_tick_in_fine_buckets() {
    let rate = env_or("TICKWIRE_LATENCY_RATE", 1_000);
    let seconds = env_or("TICKWIRE_LATENCY_SECONDS", 2);
    // How often the source sends what is due (µs): 2 ms bursts by default,
    // 200 for frames spread out as a venue's are.
    let every_us = env_or("TICKWIRE_LATENCY_EVERY_US", 2_000);
    let total = rate * seconds;
    let dir = tempfile::tempdir().unwrap();
    let redis = redis();
    let db4 = redis.client(4).await.unwrap();
    let (venue, flood) = WsServer::flood(Flood {
        symbols: SYMBOLS.map(String::from).to_vec(),
        rate: rate as u32,
        total: total as usize,
        every: Duration::from_micros(every_us),
        behind: Duration::ZERO,
        away: None,
    })
    .await
    .unwrap();
    let port = free_port();
    let cfg = live_config(dir.path(), &venue.url("/stream"), port);
    let log = dir.path().join("run.log");
    let run = start_run(tickwire!(), &cfg, &redis.url(), &log);

    let deadline = Instant::now() + Duration::from_secs(30 + 2 * seconds);
    let mut sent_all = None;
    // The histogram once the first second's frames are sent (none in a run
    // shorter than two seconds).
    let mut warm = None;
    loop {
        let sent = flood.sent.load(Ordering::Relaxed) as u64;
        if sent >= total && sent_all.is_none() {
            sent_all = Some(Instant::now());
        }
        if warm.is_none() && seconds >= 2 && sent >= rate {
            warm = Some(buckets(&try_scrape(port), HISTOGRAM)).filter(|b| !b.is_empty());
        }
        let landed = ticks_of(&db4, &SYMBOLS).await;
        if landed >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {sent} of {total} sent, {landed} in Redis\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let behind = sent_all.map_or(Duration::ZERO, |t| t.elapsed());
    // The histogram is recorded after the acknowledgement: scrape until it
    // has every tick (a moment after the last XLEN saw them).
    let count =
        |m: &HashMap<String, f64>| m.get(&format!("{HISTOGRAM}_count")).copied().unwrap_or(0.0);
    let every_tick = poll_until(Duration::from_secs(10), || async {
        count(&try_scrape(port)) >= total as f64
    })
    .await;
    let m = try_scrape(port);
    assert!(every_tick, "histogram: {m:?}");
    let (status, stdout) = stop(run, "-TERM").await;
    let text = log_of(&log);
    assert!(status.success(), "{status}\n{stdout}\n{text}");
    assert_eq!(flood.lost.load(Ordering::Relaxed), 0);

    // Every tick once in the histogram, no more.
    assert_eq!(m[&format!("{HISTOGRAM}_count")], total as f64);
    assert_eq!(summary_value(&stdout, "ticks written"), total, "{stdout}");
    let b = buckets(&m, HISTOGRAM);
    let bounds: Vec<f64> = b.iter().map(|x| x.0).collect();
    assert_eq!(bounds.first(), Some(&0.00005), "{bounds:?}");
    assert!(
        bounds.contains(&0.001) && bounds.contains(&0.002),
        "{bounds:?}"
    );
    assert!(bounds.contains(&1.0), "{bounds:?}");
    assert!(
        b.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative buckets: {b:?}"
    );
    let (p50, p99, p999) = (quantile(&b, 0.5), quantile(&b, 0.99), quantile(&b, 0.999));
    let steady = warm
        .map(|w| window(&w, &b))
        .filter(|w| w.last().is_some_and(|x| x.1 > 0.0));
    let mean = m[&format!("{HISTOGRAM}_sum")] / total as f64;
    // Of that, the lanes' writes (every DB's pipeline of a batch, retries
    // included): the rest is the way from the socket to a lane.
    let w = buckets(&m, "tickwire_redis_write_latency_seconds");
    let batches = w.last().map_or(0.0, |x| x.1);
    let steady = steady.map_or(String::new(), |w| {
        format!(
            "after the first second ({:.0} ticks): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; ",
            w.last().map_or(0.0, |x| x.1),
            quantile(&w, 0.5) * 1e3,
            quantile(&w, 0.99) * 1e3,
            quantile(&w, 0.999) * 1e3,
        )
    });
    println!(
        "latency figures: {rate} frames/s for {seconds} s ({total} ticks, one connection, \
         sent every {every_us} us): \
         tick -> Redis acknowledged p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, mean {:.3} ms; \
         {steady}\
         the last tick in Redis {:.0} ms after the last frame was sent; \
         {batches} batches, their writes p50 {:.3} ms, p99 {:.3} ms",
        p50 * 1e3,
        p99 * 1e3,
        p999 * 1e3,
        mean * 1e3,
        behind.as_secs_f64() * 1e3,
        quantile(&w, 0.5) * 1e3,
        quantile(&w, 0.99) * 1e3,
    );
}
