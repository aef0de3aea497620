//! Every line or frame read is counted once, as a tick, a quote, a
//! rejection or a skip: `lines read = ticks + quotes + rejected + skipped`,
//! in the summary and in the metrics, for a fuzzed mix (blank lines, CSV
//! headers also mid-file, OKX pushes with `"data":[]`, empty Dhan messages,
//! quotes without bid and ask, good ticks, garbage) replayed from files and
//! sent by a live feed, with no write errors.

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use fred::prelude::*;
use tickwire_testkit::ws_server::{Step, WsServer};

/// A small deterministic generator (xorshift64*): the same mix every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What a fuzzed input should count as.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expect {
    lines: u64,
    ticks: u64,
    quotes: u64,
    rejected: u64,
    skipped: u64,
}

impl Expect {
    fn add(&mut self, other: Expect) {
        self.lines += other.lines;
        self.ticks += other.ticks;
        self.quotes += other.quotes;
        self.rejected += other.rejected;
        self.skipped += other.skipped;
    }
}

const TARDIS_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

/// A Tardis trades CSV of `n` lines: header first, then a fuzzed mix.
fn tardis_file(rng: &mut Rng, n: usize) -> (Vec<u8>, Expect) {
    let mut body = Vec::new();
    let mut e = Expect::default();
    let line = |body: &mut Vec<u8>, text: &[u8]| {
        body.extend_from_slice(text);
        body.push(b'\n');
    };
    line(&mut body, TARDIS_HEADER.as_bytes());
    e.lines += 1;
    e.skipped += 1;
    let mut ts_us = 1_582_329_602_111_000i64;
    let mut id = 42_377_944u64;
    for _ in 1..n {
        e.lines += 1;
        match rng.below(10) {
            0 => {
                line(&mut body, b"");
                e.skipped += 1;
            }
            1 => {
                // Spaces, or a CRLF blank line.
                line(
                    &mut body,
                    [&b"   "[..], b"\r", b"\t "][rng.below(3) as usize],
                );
                e.skipped += 1;
            }
            2 => {
                // Dumps concatenated: the header again mid-file.
                line(&mut body, TARDIS_HEADER.as_bytes());
                e.skipped += 1;
            }
            3 => {
                let garbage: [&[u8]; 4] = [
                    b"binance-futures,BTCUSDT,x,1,1,buy,1,1",
                    b"hello",
                    b"\xff\xfe,\x00,,,,,,",
                    b"binance-futures,BTCUSDT,1582329602111000,1582329602418379,1,buy,abc,1",
                ];
                line(&mut body, garbage[rng.below(4) as usize]);
                e.rejected += 1;
            }
            _ => {
                ts_us += 1_000 + rng.below(50_000) as i64;
                id += 1;
                let text = format!(
                    "binance-futures,BTCUSDT,{ts_us},{},{id},{},{}.{},0.{}",
                    ts_us + 300,
                    ["buy", "sell"][rng.below(2) as usize],
                    9_000 + rng.below(900),
                    rng.below(10),
                    1 + rng.below(999)
                );
                line(&mut body, text.as_bytes());
                e.ticks += 1;
            }
        }
    }
    (body, e)
}

/// OKX frames as a live feed sends them: `n` of a fuzzed mix, then a last
/// trade (so that its arrival in Redis means every frame before it was read).
fn okx_frames(rng: &mut Rng, n: usize, t0_ms: i64) -> (Vec<String>, Expect) {
    let mut frames = Vec::new();
    let mut e = Expect::default();
    let mut trade_id = 130_639_474u64;
    let mut ts = t0_ms;
    let trade = |ts: i64, trade_id: u64, px: u64| {
        format!(
            r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"{trade_id}","px":"{px}.5","sz":"0.25","side":"buy","ts":"{ts}","count":"1"}}]}}"#
        )
    };
    for _ in 0..n {
        e.lines += 1;
        ts += 1 + rng.below(20) as i64;
        let ticker = |bid: &str, ask: &str| {
            format!(
                r#"{{"arg":{{"channel":"tickers","instId":"BTC-USDT"}},"data":[{{"instType":"SPOT","instId":"BTC-USDT","last":"42010.5","askPx":"{ask}","askSz":"1","bidPx":"{bid}","bidSz":"1","ts":"{ts}"}}]}}"#
            )
        };
        let frame = match rng.below(10) {
            0 => {
                e.skipped += 1;
                r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}"#.to_string()
            }
            1 => {
                // An illiquid instrument: no bid, no ask.
                e.skipped += 1;
                ticker("", "")
            }
            2 => {
                e.quotes += 1;
                ticker("42010.4", ["42010.6", ""][rng.below(2) as usize])
            }
            3 => {
                e.skipped += 1;
                r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}"#.to_string()
            }
            4 => {
                e.rejected += 1;
                [
                    "{not json",
                    "",
                    r#"{"arg":{"channel":"trades"},"data":[{"px":"x"}]}"#,
                ][rng.below(3) as usize]
                    .to_string()
            }
            _ => {
                e.ticks += 1;
                trade_id += 1;
                trade(ts, trade_id, 42_000 + rng.below(20))
            }
        };
        frames.push(frame);
    }
    e.lines += 1;
    e.ticks += 1;
    frames.push(trade(ts + 1, trade_id + 1, 42_001));
    (frames, e)
}

/// A recording (`tickwire record` lines) of OKX frames, Binance bookTickers
/// with and without sides, empty Dhan messages, blank lines, and OKX pushes
/// of three trades (the items beyond one per line: the third value).
fn recording(rng: &mut Rng, n: usize) -> (String, Expect, u64) {
    let t0_ms = 1_704_067_200_000i64;
    let (okx, mut e) = okx_frames(rng, n, t0_ms);
    let mut extra = 0;
    let mut eth_id = 7_000u64;
    let mut body = String::new();
    let mut recv_ns = t0_ms * 1_000_000;
    let record = |body: &mut String, recv_ns: i64, feed: &str, data: &str, enc: Option<&str>| {
        let mut v = serde_json::json!({"recv_ns": recv_ns, "feed": feed, "data": data});
        if let Some(enc) = enc {
            v["enc"] = enc.into();
        }
        body.push_str(&v.to_string());
        body.push('\n');
    };
    for frame in okx {
        recv_ns += 30_000_000;
        record(&mut body, recv_ns, "okx", &frame, None);
        match rng.below(8) {
            0 => {
                body.push('\n');
                e.lines += 1;
                e.skipped += 1;
            }
            1 => {
                // An empty Dhan message.
                record(&mut body, recv_ns, "dhan", "", Some("base64"));
                e.lines += 1;
                e.skipped += 1;
            }
            2 => {
                let null = r#"{"u":1,"s":"BNBUSDT","b":null,"B":null,"a":null,"A":null}"#;
                record(&mut body, recv_ns, "binance", null, None);
                e.lines += 1;
                e.skipped += 1;
            }
            3 => {
                let book =
                    r#"{"u":2,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}"#;
                record(&mut body, recv_ns, "binance", book, None);
                e.lines += 1;
                e.quotes += 1;
            }
            5 => {
                let ts = recv_ns / 1_000_000 - 5;
                let trades: Vec<String> = (0..3)
                    .map(|k| {
                        eth_id += 1;
                        format!(
                            r#"{{"instId":"ETH-USDT","tradeId":"{eth_id}","px":"2000.{k}","sz":"1","side":"sell","ts":"{ts}"}}"#
                        )
                    })
                    .collect();
                let push = format!(
                    r#"{{"arg":{{"channel":"trades","instId":"ETH-USDT"}},"data":[{}]}}"#,
                    trades.join(",")
                );
                record(&mut body, recv_ns, "okx", &push, None);
                e.lines += 1;
                e.ticks += 3;
                extra += 2;
            }
            4 => {
                // A Dhan message that is not base64.
                record(&mut body, recv_ns, "dhan", "***", Some("base64"));
                e.lines += 1;
                e.rejected += 1;
            }
            _ => {}
        }
    }
    // The base64 of no bytes is "": make sure the encoding agrees.
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(b""), "");
    (body, e, extra)
}

/// The metrics endpoint of this test process, started once.
fn metrics_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let m = tickwire_core::config::MetricsConfig {
            enabled: true,
            listen: format!("127.0.0.1:{port}"),
        };
        // Installed outside any test's runtime: the exporter then runs on
        // a thread of its own and outlives the test that started it.
        let served = std::thread::spawn(move || tickwire::ops::start_metrics(&m))
            .join()
            .unwrap();
        assert!(served, "metrics served");
        port
    })
}

/// `GET /metrics` of this test binary's exporter.
fn scrape() -> HashMap<String, f64> {
    tickwire_testkit::metrics::scrape(metrics_port())
}

/// The sum of `name`'s samples whose `feed` label is one of `feeds`.
fn sum(m: &HashMap<String, f64>, name: &str, feeds: &[&str]) -> u64 {
    m.iter()
        .filter(|(k, _)| {
            k.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with('{')
                    && feeds
                        .iter()
                        .any(|f| rest.contains(&format!("feed=\"{f}\"")))
            })
        })
        .map(|(_, v)| *v as u64)
        .sum()
}

/// The four counts of the metrics of `feeds`, and the frames.
fn metric_counts(feeds: &[&str]) -> Expect {
    let m = scrape();
    Expect {
        lines: sum(&m, "tickwire_frames_received_total", feeds),
        ticks: sum(&m, "tickwire_ticks_received_total", feeds),
        quotes: sum(&m, "tickwire_quotes_received_total", feeds),
        rejected: sum(&m, "tickwire_frames_rejected_total", feeds),
        skipped: sum(&m, "tickwire_frames_skipped_total", feeds),
    }
}

fn no_write_errors() -> bool {
    !scrape()
        .iter()
        .any(|(k, v)| k.starts_with("tickwire_redis_write_errors_total") && *v > 0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuzzed_replay_counts_every_line_once_and_writes_without_errors() {
    metrics_port();
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (csv, csv_expect) = tardis_file(&mut rng, 3_000);
    let csv_path = dir.path().join("trades.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let (rec, rec_expect, extra) = recording(&mut rng, 1_500);
    let rec_path = write(dir.path(), "frames.jsonl.zst", &rec);
    assert!(csv_expect.skipped > 300 && csv_expect.rejected > 200);
    assert!(rec_expect.skipped > 300 && rec_expect.quotes > 100);
    let mut expect = csv_expect;
    expect.add(rec_expect);

    let config = config(&server, "");
    let s = replay(&config, &[csv_path, rec_path]).await;
    let i = &s.ingest;
    let got = Expect {
        lines: i.lines,
        ticks: i.ticks,
        quotes: i.quotes,
        rejected: i.rejected,
        skipped: i.skipped,
    };
    assert_eq!(got, expect, "{}", s.render());
    // Lines that held several items add what is beyond one per line.
    assert!(extra > 100);
    assert_eq!(i.extra, extra, "{}", s.render());
    assert_eq!(
        i.lines + i.extra,
        i.ticks + i.quotes + i.rejected + i.skipped
    );
    assert_eq!(s.writer.write_errors, 0, "{}", s.render());
    assert!(s.missing().is_empty(), "{}", s.render());
    assert_eq!(s.writer.ticks_written, expect.ticks, "{}", s.render());
    assert_eq!(s.writer.deadlettered, expect.rejected, "{}", s.render());

    // What is in Redis: every good tick once.
    let db4 = server.client(4).await.unwrap();
    let tardis: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    let okx: u64 = db4.xlen("ticks:BTC-USDT").await.unwrap();
    assert_eq!(tardis, csv_expect.ticks);
    let eth: u64 = db4.xlen("ticks:ETH-USDT").await.unwrap();
    assert_eq!(okx + eth, rec_expect.ticks);

    // The metrics say the same: a replayed line is a frame of its format's
    // feed; rejections are labelled by the feed they name.
    let m = metric_counts(&["tardis", "recorded", "okx", "binance", "dhan"]);
    assert_eq!(m, expect, "metrics");
    assert!(no_write_errors());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuzzed_live_feed_counts_every_frame_once_and_writes_without_errors() {
    metrics_port();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    // Trades of now: plausible against the receive clock.
    let now_ms = jiff::Timestamp::now().as_millisecond() - 60_000;
    let (frames, expect) = okx_frames(&mut rng, 2_000, now_ms);
    let mut script = vec![Step::ExpectText];
    script.extend(frames.into_iter().map(Step::Text));
    script.push(Step::Hold);
    let ws = WsServer::start(vec![script], false).await.unwrap();
    let server = redis();
    let toml = format!(
        "[live]\nconnect_timeout_ms = 2000\nidle_timeout_ms = 10000\nping_interval_ms = 2000\n\
         [[feeds]]\nname = \"okx-fuzz\"\nvenue = \"okx\"\nurl = \"{}\"\n\
         symbols = [\"BTC-USDT\"]\nchannels = [\"trades\", \"tickers\"]\n",
        ws.url("/ws/v5/public")
    );
    let config = config(&server, &toml);
    let stop = tickwire::CancellationToken::new();
    let task = {
        let (config, stop) = (config.clone(), stop.clone());
        tokio::spawn(async move { tickwire::run::run(&config, None, stop).await })
    };
    let db4 = server.client(4).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n: u64 = db4.xlen("ticks:BTC-USDT").await.unwrap();
        if n == expect.ticks {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} of {} ticks after 30 s",
            expect.ticks
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let s = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("stops")
        .unwrap()
        .expect("run succeeds");
    assert_eq!(ws.connections(), 1, "no reconnect in this test");
    let i = &s.ingest;
    let got = Expect {
        lines: i.lines,
        ticks: i.ticks,
        quotes: i.quotes,
        rejected: i.rejected,
        skipped: i.skipped,
    };
    assert_eq!(got, expect, "{}", s.render());
    assert_eq!(s.frames_dropped(), 0);
    assert_eq!(s.writer.write_errors, 0, "{}", s.render());
    assert!(s.missing().is_empty(), "{}", s.render());
    let shown = s.render();
    assert!(
        shown.contains("frames read") && shown.contains("feeds") && !shown.contains("files read"),
        "a live run shows feeds and frames:\n{shown}"
    );
    let m = metric_counts(&["okx-fuzz"]);
    assert_eq!(m, expect, "metrics");
    assert!(no_write_errors());
}
