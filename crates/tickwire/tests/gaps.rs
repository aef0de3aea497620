//! Gaps filled from the venue's history: the scripted venue trades on
//! while the client is away (a dropped connection, a killed process) or
//! leaves a frame out, and its REST server serves every trade it made.
//! What `tickwire run` leaves in Redis equals a replay of every trade the
//! venue made (or of those applied, where a fill could not get them all),
//! and `gaps:{feed}` says what each gap was.

use tickwire_testkit::prelude::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fred::prelude::*;
use tickwire_testkit::rest_server::{Fault, RestServer};
use tickwire_testkit::ws_server::{trade_id_of_qty, SentTrade, TradeFeed, TradeFormat, WsServer};

const BINANCE: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

/// The venue: `symbols` traded in rounds, trades made while the client is
/// away going to the REST history as well.
fn feed(format: TradeFormat, symbols: &[&str], rest: &RestServer) -> TradeFeed {
    TradeFeed {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        trades: 240,
        every: Duration::from_millis(3),
        resend: 0,
        // As in live_restart.rs: the venue's clock ahead of ours, so the
        // live bar timer never closes a bar before later trades do; the
        // last trade of each symbol opens a bar neither run closes.
        lead: Duration::from_secs(5),
        last_ahead: Duration::from_secs(30),
        first_id: 10_000_000,
        format,
        missed: 12,
        drop_after: None,
        history: Some(rest.sink()),
        unsent_every: None,
    }
}

/// A run's config: one feed of `venue` named after it, its REST history
/// at `rest`; `extra` TOML before the feed. The bar timer's grace is a
/// minute: the last trade of each symbol opens a bar that a replay leaves
/// forming, and the timer would close it about a second after that trade
/// came (its clock runs from the trade's time), while a fill still runs
/// for another symbol.
fn config(dir: &Path, venue: &str, ws: &str, rest: &str, symbols: &[&str], extra: &str) -> PathBuf {
    let channel = match venue {
        "okx" => "trades",
        _ if ws.ends_with("agg") => "aggTrade",
        _ => "trade",
    };
    let quoted: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    config_file(
        dir,
        "gaps.toml",
        &format!(
            "[live]\nconnect_timeout_ms = 2000\nidle_timeout_ms = 2000\nping_interval_ms = 300\n\
             backoff_initial_ms = 20\nbackoff_max_ms = 100\n\
             [bars]\nintervals = [\"1s\", \"1m\"]\nclose_grace_ms = 60000\n\
             [indicators]\ninterval = \"1s\"\nrsi_period = 2\natr_period = 2\n{extra}\n\
             [[feeds]]\nname = \"{venue}\"\nvenue = \"{venue}\"\nurl = \"{ws}\"\n\
             rest_url = \"{rest}\"\nsymbols = [{}]\nchannels = [\"{channel}\"]\n",
            quoted.join(", ")
        ),
    )
}

/// `trades` as a recording `tickwire replay` reads, in the order given.
fn recording(dir: &Path, feed: &str, trades: &[&SentTrade]) -> PathBuf {
    let mut body = String::new();
    for t in trades {
        body +=
            &serde_json::json!({"recv_ns": t.sent_ns, "feed": feed, "data": t.text}).to_string();
        body.push('\n');
    }
    let path = dir.join("reference.jsonl");
    std::fs::write(&path, body).unwrap();
    path
}

/// DBs 2-6 and the checkpoints; not the feed's connection keys nor its gap
/// records, which a replay has none of.
async fn state(server: &RedisServer) -> Vec<(u8, String, String)> {
    tickwire_testkit::snapshot(server, &[2, 3, 4, 5, 6, 0])
        .await
        .into_iter()
        .filter(|(db, k, _)| *db != 0 || !(k.starts_with("feed:") || k.starts_with("gaps:")))
        .collect()
}

/// The ids in `ticks:{symbol}`, in stream order.
async fn stream_ids(db4: &Client, symbol: &str) -> Vec<u64> {
    let entries: Vec<(String, HashMap<String, String>)> = db4
        .xrange(format!("ticks:{symbol}"), "-", "+", None)
        .await
        .unwrap();
    entries
        .iter()
        .map(|(_, f)| trade_id_of_qty(&f["qty"]).unwrap())
        .collect()
}

/// The closed 1 s bars of each Binance symbol.
async fn closed_1s_bars(server: &RedisServer) -> Vec<Vec<(String, HashMap<String, String>)>> {
    let c = server.client(4).await.unwrap();
    let mut all = Vec::new();
    for sym in BINANCE {
        all.push(
            c.xrange(format!("bars:1s:{sym}"), "-", "+", None)
                .await
                .unwrap(),
        );
    }
    all
}

/// The entries of `gaps:{feed}`.
async fn gaps_of(live: &RedisServer, feed: &str) -> Vec<HashMap<String, String>> {
    let db0 = live.client(0).await.unwrap();
    let entries: Vec<(String, HashMap<String, String>)> = db0
        .xrange(format!("gaps:{feed}"), "-", "+", None)
        .await
        .unwrap();
    entries.into_iter().map(|(_, g)| g).collect()
}

fn num(g: &HashMap<String, String>, field: &str) -> u64 {
    g[field]
        .parse()
        .unwrap_or_else(|_| panic!("{field} of {g:?}"))
}

/// Asserts that every stream holds exactly the `want` trades of its symbol,
/// in order, and that the live state equals a replay of `want`.
async fn assert_applied(
    live: &RedisServer,
    cfg: &Path,
    dir: &Path,
    feed: &str,
    symbols: &[&str],
    want: &[&SentTrade],
) {
    let db4 = live.client(4).await.unwrap();
    for symbol in symbols {
        let wanted: Vec<u64> = want
            .iter()
            .filter(|t| t.symbol == *symbol)
            .map(|t| t.id)
            .collect();
        assert_eq!(
            stream_ids(&db4, symbol).await,
            wanted,
            "ticks:{symbol}: the trades, once, in order"
        );
    }
    let file = recording(dir, feed, want);
    let reference = redis();
    let (out, replayed, _) = run(tickwire!()
        .arg("--config")
        .arg(cfg)
        .args(["--redis", &reference.url(), "replay", "--max"])
        .arg(&file));
    assert!(out.status.success(), "replay: {replayed}");
    assert_eq!(
        summary_value(&replayed, "ticks written"),
        want.len() as u64,
        "{replayed}"
    );
    let (got, wanted) = (state(live).await, state(&reference).await);
    assert!(
        !got.iter().any(|(_, k, _)| k.starts_with("deadletter:")),
        "{got:?}"
    );
    assert_eq!(
        got.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        wanted.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        "the keys"
    );
    for (a, b) in got.iter().zip(&wanted) {
        assert!(
            tickwire_testkit::equal_within(&a.2, &b.2, 1e-12),
            "db {} key {} differs from the replay\nlive   {:.600}\nreplay {:.600}",
            b.0,
            b.1,
            a.2,
            b.2
        );
    }
}

/// A venue, its REST history, a Redis and a config, for one test.
struct Setup {
    dir: tempfile::TempDir,
    rest: RestServer,
    spec: TradeFeed,
    ws: WsServer,
    live: RedisServer,
    cfg: PathBuf,
    venue: &'static str,
    symbols: Vec<&'static str>,
    metrics: u16,
}

impl Setup {
    async fn new(
        format: TradeFormat,
        symbols: &[&'static str],
        change: impl FnOnce(&mut TradeFeed),
        extra: &str,
    ) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let rest = RestServer::start(HashMap::new()).await.unwrap();
        let mut spec = feed(format, symbols, &rest);
        change(&mut spec);
        let ws = WsServer::trades(spec.clone()).await.unwrap();
        let venue = if format == TradeFormat::Okx {
            "okx"
        } else {
            "binance"
        };
        let path = if format == TradeFormat::BinanceAggTrade {
            "/agg"
        } else {
            "/ws"
        };
        let metrics = free_port();
        // `extra` first: a line of it before any table is `[indicators]`'s.
        let extra = format!("{extra}\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n");
        let cfg = config(
            dir.path(),
            venue,
            &ws.url(path),
            &rest.url(),
            symbols,
            &extra,
        );
        Setup {
            dir,
            rest,
            spec,
            ws,
            live: redis(),
            cfg,
            venue,
            symbols: symbols.to_vec(),
            metrics,
        }
    }

    fn start(&self, name: &str) -> std::process::Child {
        start_run(
            tickwire!(),
            &self.cfg,
            &self.live.url(),
            &self.dir.path().join(name),
        )
    }

    fn log(&self, name: &str) -> String {
        log_of(&self.dir.path().join(name))
    }

    /// Waits until the venue sent everything and `n` ticks are in Redis.
    async fn until_written(&self, n: u64) -> bool {
        let db4 = self.live.client(4).await.unwrap();
        poll_until(Duration::from_secs(60), || async {
            self.ws.all_sent(&self.spec) && ticks_of(&db4, &self.symbols).await >= n
        })
        .await
    }

    /// `tickwire health --json` of the run's Redis.
    fn health(&self) -> (Option<i32>, serde_json::Value) {
        health_json(
            tickwire!()
                .arg("--config")
                .arg(&self.cfg)
                .args(["--redis", &self.live.url()]),
        )
    }

    fn made(&self) -> Vec<SentTrade> {
        self.ws.sent_trades()
    }
}

async fn dropped_connections_are_filled(
    format: TradeFormat,
    symbols: &[&'static str],
    extra: &str,
) {
    let s = Setup::new(format, symbols, |f| f.drop_after = Some(150), extra).await;
    let total = (s.spec.trades * symbols.len()) as u64;
    let child = s.start("run.log");
    let done = s.until_written(total).await;
    let m = try_scrape(s.metrics);
    let (status, stdout) = stop(child, "-TERM").await;
    let text = s.log("run.log");
    let made = s.made();
    let missed = made.iter().filter(|t| !t.live).count() as u64;
    assert!(
        done,
        "not every trade in Redis ({} made, {missed} while away)\n{text}",
        made.len()
    );
    assert!(status.success(), "SIGTERM: exit 0 (got {status})\n{stdout}");
    assert!(s.ws.connections() >= 2, "the venue dropped no connection");
    assert!(missed > 0, "nothing was traded while away");
    assert_eq!(made.len() as u64, total);

    // Each gap filled; their trades those made while away.
    let gaps = gaps_of(&s.live, s.venue).await;
    assert!(!gaps.is_empty(), "no gap recorded\n{text}");
    let mut filled = 0;
    for g in &gaps {
        assert_eq!(
            (g["outcome"].as_str(), num(g, "missing")),
            ("filled", 0),
            "{g:?}"
        );
        let span = num(g, "to_id") - num(g, "from_id") + 1;
        assert_eq!(num(g, "filled"), span, "{g:?}");
        assert!(num(g, "from_ts") <= num(g, "to_ts"), "{g:?}");
        assert!(symbols.contains(&g["symbol"].as_str()), "{g:?}");
        filled += span;
    }
    assert_eq!(
        filled, missed,
        "the gaps' trades are those made while away: {gaps:?}"
    );
    let db0 = s.live.client(0).await.unwrap();
    assert!(
        ttl(&db0, &format!("gaps:{}", s.venue)).await > 0,
        "gaps:{{feed}} has the system DB's TTL"
    );
    assert_eq!(
        summary_value(&stdout, "gaps"),
        gaps.len() as u64,
        "{stdout}"
    );
    assert_eq!(
        summary_value(&stdout, "gap trades filled"),
        missed,
        "{stdout}"
    );
    let metric = |name: &str| {
        m.get(&format!(
            "{name}{{feed=\"{}\",outcome=\"applied\"}}",
            s.venue
        ))
        .copied()
    };
    assert_eq!(
        metric("tickwire_backfill_trades_total"),
        Some(missed as f64),
        "{m:?}"
    );
    // Every gap filled: none for health to mention.
    let (_, v) = s.health();
    assert_eq!(v["gaps"][s.venue]["gaps"], gaps.len(), "{v:#}");
    assert_eq!(v["gaps"][s.venue]["missing"], 0, "{v:#}");
    assert!(
        !v["problems"].to_string().contains("gaps of the last hour"),
        "{v:#}"
    );
    let all: Vec<&SentTrade> = made.iter().collect();
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, symbols, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_trades_missed_while_dropped_are_filled_from_historical_trades() {
    dropped_connections_are_filled(TradeFormat::BinanceTrade, &BINANCE, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_agg_trades_missed_while_dropped_are_filled_from_agg_trades() {
    dropped_connections_are_filled(TradeFormat::BinanceAggTrade, &BINANCE, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_trades_missed_while_dropped_are_filled_from_history_trades() {
    dropped_connections_are_filled(TradeFormat::Okx, &["BTC-USDT", "ETH-USDT"], "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lua_engine_the_filled_trades_reach_its_scripts_as_live_ones_do() {
    dropped_connections_are_filled(TradeFormat::BinanceAggTrade, &BINANCE, "engine = \"lua\"\n")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_started_3_s_later_the_trades_made_meanwhile_are_filled() {
    let s = Setup::new(TradeFormat::BinanceTrade, &BINANCE, |f| f.missed = 40, "").await;
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let db4 = s.live.client(4).await.unwrap();
    let first = s.start("first.log");
    wait_until(
        Duration::from_secs(20),
        "a third of the trades in Redis",
        || async { ticks_of(&db4, &BINANCE).await >= total / 3 },
    )
    .await;
    let (status, _) = stop(first, "-KILL").await;
    assert!(!status.success(), "SIGKILL: {status}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = s.start("second.log");
    let done = s.until_written(total).await;
    let (status, stdout) = stop(second, "-TERM").await;
    let text = s.log("second.log");
    assert!(done, "not every trade in Redis\n{text}");
    assert!(status.success(), "{stdout}");
    let made = s.made();
    let missed = made.iter().filter(|t| !t.live).count() as u64;
    assert!(missed > 0);
    let gaps = gaps_of(&s.live, s.venue).await;
    // One gap per symbol: from the killed process's checkpoint to the
    // second connection's first trade; it holds the trades made while no
    // process ran, and those the killed one read but had not checkpointed.
    assert_eq!(gaps.len(), BINANCE.len(), "{gaps:?}\n{text}");
    let filled: u64 = gaps.iter().map(|g| num(g, "filled")).sum();
    assert!(gaps.iter().all(|g| g["outcome"] == "filled"), "{gaps:?}");
    assert!(
        filled >= missed,
        "{filled} filled, {missed} made while away: {gaps:?}"
    );
    let all: Vec<&SentTrade> = made.iter().collect();
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &BINANCE, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_the_venue_never_sent_is_filled_without_a_drop() {
    let s = Setup::new(
        TradeFormat::BinanceTrade,
        &BINANCE,
        |f| f.unsent_every = Some(37),
        "",
    )
    .await;
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let child = s.start("run.log");
    let done = s.until_written(total).await;
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(done, "{}\n{stdout}", s.log("run.log"));
    assert!(status.success(), "{stdout}");
    assert_eq!(s.ws.connections(), 1, "no drop");
    let made = s.made();
    let unsent = made.iter().filter(|t| !t.live).count();
    let gaps = gaps_of(&s.live, s.venue).await;
    assert_eq!(gaps.len(), unsent, "one gap per frame left out: {gaps:?}");
    for g in &gaps {
        assert_eq!(
            (num(g, "from_id"), num(g, "filled"), num(g, "missing")),
            (num(g, "to_id"), 1, 0),
            "{g:?}"
        );
    }
    // One request at a time to the host, each `historicalTrades` (weight 25
    // of 6,000 a minute) at least 250 ms after the one before.
    let asked = s.rest.requests();
    assert!(asked.len() >= 2, "{asked:?}");
    for w in asked.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(245),
            "{gap:?} between {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    let all: Vec<&SentTrade> = made.iter().collect();
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &BINANCE, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_that_answers_429_then_418_is_waited_for_then_fills() {
    let s = Setup::new(
        TradeFormat::BinanceAggTrade,
        &BINANCE,
        |f| f.drop_after = Some(200),
        "",
    )
    .await;
    s.rest.fault(Fault::TooManyRequests { retry_after_s: 1 });
    s.rest.fault(Fault::Banned { retry_after_s: 1 });
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let child = s.start("run.log");
    let done = s.until_written(total).await;
    let m = try_scrape(s.metrics);
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(done, "{}", s.log("run.log"));
    assert!(status.success(), "{stdout}");
    let requests = s.rest.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], &[429, 418, 200], "{requests:?}");
    // Each waited its Retry-After before the next.
    for w in requests[..3].windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_millis(990),
            "{requests:?}"
        );
    }
    for status in ["429", "418"] {
        let name =
            format!("tickwire_backfill_requests_total{{feed=\"binance\",status=\"{status}\"}}");
        assert_eq!(m.get(&name), Some(&1.0), "{m:?}");
    }
    let gaps = gaps_of(&s.live, s.venue).await;
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| g["outcome"] == "filled"),
        "{gaps:?}"
    );
    let made = s.made();
    let all: Vec<&SentTrade> = made.iter().collect();
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &BINANCE, &all).await;
}

/// The trades a run applied when some of the gaps' were not fetched: all
/// but those the gap records say are missing (the oldest of each gap).
fn applied_but_missing<'a>(
    made: &'a [SentTrade],
    gaps: &[HashMap<String, String>],
) -> Vec<&'a SentTrade> {
    made.iter()
        .filter(|t| {
            !gaps.iter().any(|g| {
                g["symbol"] == t.symbol
                    && t.id >= num(g, "from_id")
                    && t.id < num(g, "from_id") + num(g, "missing")
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_history_down_live_trades_go_on_after_timeout_s_and_the_gap_is_partial() {
    let s = Setup::new(
        TradeFormat::BinanceTrade,
        &BINANCE,
        |f| f.drop_after = Some(300),
        "[backfill]\ntimeout_s = 2\n",
    )
    .await;
    for _ in 0..1000 {
        s.rest.fault(Fault::Unavailable);
    }
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let child = s.start("run.log");
    let db4 = s.live.client(4).await.unwrap();
    let made_now = || s.made();
    let done = poll_until(Duration::from_secs(60), || async {
        let made = made_now();
        let missed = made.iter().filter(|t| !t.live).count() as u64;
        s.ws.all_sent(&s.spec) && ticks_of(&db4, &BINANCE).await >= total - missed
    })
    .await;
    let m = try_scrape(s.metrics);
    let (status, stdout) = stop(child, "-TERM").await;
    let text = s.log("run.log");
    assert!(done, "{text}");
    assert!(status.success(), "{stdout}");
    let made = s.made();
    let missed = made.iter().filter(|t| !t.live).count() as u64;
    let gaps = gaps_of(&s.live, s.venue).await;
    assert!(!gaps.is_empty(), "{text}");
    for g in &gaps {
        let span = num(g, "to_id") - num(g, "from_id") + 1;
        assert_eq!(
            (
                g["outcome"].as_str(),
                g["reason"].as_str(),
                num(g, "filled"),
                num(g, "missing")
            ),
            ("partial", "timeout", 0, span),
            "{g:?}"
        );
    }
    let missing: u64 = gaps.iter().map(|g| num(g, "missing")).sum();
    assert_eq!(missing, missed, "{gaps:?}");
    assert_eq!(
        summary_value(&stdout, "gap trades missing"),
        missed,
        "{stdout}"
    );
    assert_eq!(
        m.get("tickwire_gap_missing_trades_total{feed=\"binance\"}"),
        Some(&(missed as f64)),
        "{m:?}"
    );
    assert!(
        m.get("tickwire_backfill_requests_total{feed=\"binance\",status=\"5xx\"}")
            .is_some_and(|n| *n >= 2.0),
        "{m:?}"
    );
    // Health: degraded while a gap of the last hour misses trades.
    let (code, v) = s.health();
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["gaps"]["binance"]["missing"], missed, "{v:#}");
    let line = format!("feed binance: {missed} trades missing in gaps of the last hour");
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with(&line)),
        "{v:#}"
    );
    let want = applied_but_missing(&made, &gaps);
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &BINANCE, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_larger_than_max_trades_gets_its_newest_and_records_the_rest() {
    let s = Setup::new(
        TradeFormat::BinanceAggTrade,
        &BINANCE,
        |f| {
            f.drop_after = Some(300);
            f.missed = 30;
        },
        "[backfill]\nmax_trades = 5\n",
    )
    .await;
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let child = s.start("run.log");
    let db4 = s.live.client(4).await.unwrap();
    let done = poll_until(Duration::from_secs(60), || async {
        let made = s.made();
        s.ws.all_sent(&s.spec) && {
            let gaps = gaps_of(&s.live, s.venue).await;
            let missing: u64 = gaps.iter().map(|g| num(g, "missing")).sum();
            ticks_of(&db4, &BINANCE).await + missing >= made.len() as u64
        }
    })
    .await;
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(done, "{}", s.log("run.log"));
    assert!(status.success(), "{stdout}");
    let made = s.made();
    assert_eq!(made.len() as u64, total);
    let gaps = gaps_of(&s.live, s.venue).await;
    assert!(!gaps.is_empty());
    for g in &gaps {
        let span = num(g, "to_id") - num(g, "from_id") + 1;
        assert!(span > 5, "each gap larger than max_trades: {g:?}");
        assert_eq!(
            (
                g["outcome"].as_str(),
                g["reason"].as_str(),
                num(g, "filled"),
                num(g, "missing")
            ),
            ("partial", "max_trades", 5, span - 5),
            "{g:?}"
        );
    }
    let want = applied_but_missing(&made, &gaps);
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &BINANCE, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bar_whose_second_ends_during_a_fill_closes_only_after_it() {
    // The venue's clock is ours and the bar timer closes a 1 s bar 200 ms
    // after its end; the history answers its first page after 2 s. A bar
    // the drop left forming would close by the timer during the fill,
    // without the trades the fill brings (a replay puts them in it).
    let s = Setup::new(
        TradeFormat::BinanceTrade,
        &BINANCE,
        |f| {
            f.drop_after = Some(200);
            f.lead = Duration::ZERO;
            f.last_ahead = Duration::ZERO;
        },
        "",
    )
    .await;
    let cfg = std::fs::read_to_string(&s.cfg)
        .unwrap()
        .replace("close_grace_ms = 60000", "close_grace_ms = 200");
    std::fs::write(&s.cfg, cfg).unwrap();
    s.rest.fault(Fault::Slow(Duration::from_secs(2)));
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let child = s.start("run.log");
    let done = s.until_written(total).await;
    // Every bar closed by the timer, the last ones too.
    let db4 = s.live.client(4).await.unwrap();
    let closed_all = poll_until(Duration::from_secs(10), || async {
        let mut forming = 0;
        for sym in BINANCE {
            let n: u64 = db4.exists(format!("bars:1s:{sym}:forming")).await.unwrap();
            forming += n;
        }
        forming == 0
    })
    .await;
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(done && closed_all, "{}\n{stdout}", s.log("run.log"));
    assert!(status.success(), "{stdout}");
    let gaps = gaps_of(&s.live, s.venue).await;
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| g["outcome"] == "filled"),
        "{gaps:?}"
    );
    // The closed 1 s bars equal those of a replay of every trade made that
    // closes the last bars at its end.
    let made = s.made();
    let all: Vec<&SentTrade> = made.iter().collect();
    let file = recording(s.dir.path(), s.venue, &all);
    let reference = redis();
    let (out, replayed, _) = run(tickwire!()
        .arg("--config")
        .arg(&s.cfg)
        .args([
            "--redis",
            &reference.url(),
            "replay",
            "--max",
            "--close-at-end",
        ])
        .arg(&file));
    assert!(out.status.success(), "replay: {replayed}");
    let (got, want) = (
        closed_1s_bars(&s.live).await,
        closed_1s_bars(&reference).await,
    );
    assert!(want.iter().all(|b| b.len() >= 2), "{want:?}");
    assert_eq!(
        got,
        want,
        "the 1 s bars of the live run and of the replay; gaps {gaps:?}\n{}",
        s.log("run.log")
    );
}

/// `name` from the environment, or `default`.
fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `took_ms` of every `gap closed` line of `log`.
fn catch_up_ms(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("gap closed"))
        .filter_map(|l| {
            l.split("took_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// A fast feed dropped every few seconds and the process SIGKILLed once:
/// every trade the venue made is in Redis once, in order. In the suite it
/// runs small (2,000 frames a second for 6 s, a drop every 2 s, killed at
/// 3 s for 1 s); `benches/gaps.sh` runs it optimized at the size
/// (20,000 frames a second for 60 s, a drop every 10 s) and prints the time
/// from the first trade after each gap to the gap's trades applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_feed_dropped_and_killed_keeps_every_trade_once() {
    use tickwire_testkit::ws_server::{Flood, FloodAway};
    let rate = env_num("TICKWIRE_GAPS_RATE", 2_000) as u32;
    let seconds = env_num("TICKWIRE_GAPS_SECONDS", 6);
    let drop_s = env_num("TICKWIRE_GAPS_DROP_S", 2);
    let down_s = env_num("TICKWIRE_GAPS_DOWN_S", 1);
    let total = rate as usize * seconds as usize;
    let dir = tempfile::tempdir().unwrap();
    let rest = RestServer::start(HashMap::new()).await.unwrap();
    let (ws, flood) = WsServer::flood(Flood {
        symbols: BINANCE.map(String::from).to_vec(),
        rate,
        total,
        every: Duration::from_millis(2),
        behind: Duration::ZERO,
        away: Some(FloodAway {
            history: rest.sink(),
            drop_every: Some(Duration::from_secs(drop_s)),
        }),
    })
    .await
    .unwrap();
    let cfg = config_file(
        dir.path(),
        "bench.toml",
        &format!(
            "[log]\nlevel = \"info\"\n[streams]\nmaxlen = 100000000\n\
             [spool]\ndir = \"{}\"\n\
             [backfill]\ntimeout_s = 300\nmax_waiting_bytes = 4294967296\n\
             [[feeds]]\nname = \"binance\"\nvenue = \"binance\"\nurl = \"{}\"\n\
             rest_url = \"{}\"\nsymbols = [\"BTCUSDT\", \"ETHUSDT\"]\nchannels = [\"trade\"]\n",
            dir.path().join("spool").display(),
            ws.url("/ws"),
            rest.url()
        ),
    );
    let live = redis();
    let db4 = live.client(4).await.unwrap();
    let log = |n: &str| dir.path().join(n);
    let first = start_run(tickwire!(), &cfg, &live.url(), &log("first.log"));
    tokio::time::sleep(Duration::from_secs(seconds / 2)).await;
    let (status, _) = stop(first, "-KILL").await;
    assert!(!status.success());
    tokio::time::sleep(Duration::from_secs(down_s)).await;
    let second = start_run(tickwire!(), &cfg, &live.url(), &log("second.log"));
    let done = poll_until(Duration::from_secs(seconds * 3 + 60), || async {
        flood.sent.load(std::sync::atomic::Ordering::Relaxed) >= total
            && ticks_of(&db4, &BINANCE).await >= total as u64
    })
    .await;
    let (status, stdout) = stop(second, "-TERM").await;
    let logs = log_of(&log("first.log")) + &log_of(&log("second.log"));
    assert!(
        done,
        "{} of {total} in Redis\n{stdout}",
        ticks_of(&db4, &BINANCE).await
    );
    assert!(status.success(), "{stdout}");
    // Every trade once, in order: the ids of each stream are 1..=n.
    for symbol in BINANCE {
        let mut next = 1u64;
        let mut from = "-".to_string();
        loop {
            let page: Vec<(String, HashMap<String, String>)> = db4
                .xrange(format!("ticks:{symbol}"), from.as_str(), "+", Some(50_000))
                .await
                .unwrap();
            let Some((last, _)) = page.last() else { break };
            from = format!("({last}");
            for (id, f) in &page {
                let trade = trade_id_of_qty(&f["qty"]).unwrap();
                assert_eq!(trade, next, "ticks:{symbol} entry {id}");
                next += 1;
            }
        }
        assert_eq!(next - 1, (total / BINANCE.len()) as u64, "ticks:{symbol}");
    }
    let gaps = gaps_of(&live, "binance").await;
    assert!(gaps.iter().all(|g| g["outcome"] == "filled"), "{gaps:?}");
    let filled: u64 = gaps.iter().map(|g| num(g, "filled")).sum();
    let missed = flood.missed.load(std::sync::atomic::Ordering::Relaxed) as u64;
    assert!(
        filled >= missed,
        "{filled} filled, {missed} made while away"
    );
    let mut took = catch_up_ms(&logs);
    took.sort_unstable();
    assert_eq!(took.len(), gaps.len(), "a time per gap\n{logs}");
    let p50 = took.get(took.len() / 2).copied().unwrap_or(0);
    let max = took.last().copied().unwrap_or(0);
    println!(
        "gaps figures: {rate} frames/s for {seconds} s, a drop every {drop_s} s, killed once for \
         {down_s} s: {total} trades, {missed} made while away, {} gaps, {filled} trades filled; \
         first trade after a gap to its trades applied: p50 {p50} ms, max {max} ms",
        gaps.len()
    );
}

/// A live run through drops, recorded (`run --record`): the recording holds
/// the fetched pages and the fills' ends where they came, and a replay of it
/// into a fresh Redis gives the live run's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_of_a_run_with_fills_replays_to_its_state() {
    let s = Setup::new(
        TradeFormat::BinanceAggTrade,
        &BINANCE,
        |f| f.drop_after = Some(150),
        "",
    )
    .await;
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let rec = s.dir.path().join("rec");
    let child = tickwire!()
        .arg("--config")
        .arg(&s.cfg)
        .args(["--redis", &s.live.url(), "run", "--record"])
        .arg(&rec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(s.dir.path().join("run.log")).unwrap())
        .spawn()
        .unwrap();
    let done = s.until_written(total).await;
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(done, "{}", s.log("run.log"));
    assert!(status.success(), "{stdout}");
    let gaps = gaps_of(&s.live, s.venue).await;
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| g["outcome"] == "filled"),
        "{gaps:?}"
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let reference = redis();
    let (out, replayed, _) = run(tickwire!()
        .arg("--config")
        .arg(&s.cfg)
        .args(["--redis", &reference.url(), "replay", "--max"])
        .args(&files));
    assert!(out.status.success(), "replay: {replayed}");
    assert_eq!(
        summary_value(&replayed, "gaps"),
        gaps.len() as u64,
        "{replayed}"
    );
    // The replay's gap records are the live run's.
    assert_eq!(gaps_of(&reference, s.venue).await, gaps);
    let (got, want) = (state(&s.live).await, state(&reference).await);
    assert_eq!(
        got.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        want.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        "the keys"
    );
    for (a, b) in got.iter().zip(&want) {
        assert!(
            tickwire_testkit::equal_within(&a.2, &b.2, 1e-12),
            "db {} key {} differs from the replay of the recording\nlive   {:.600}\nreplay {:.600}",
            b.0,
            b.1,
            a.2,
            b.2
        );
    }
}

/// Binance USD-M futures serve `historicalTrades` only with an API key:
/// without one (no `TICKWIRE_{FEED}_API_KEY`) a `trade` feed's gaps are
/// recorded `unfillable` and its live trades go on; with one, sent in the
/// `X-MBX-APIKEY` header, they are filled. An `aggTrade` feed's come from
/// `/fapi/v1/aggTrades`, which needs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_futures_trade_gaps_are_filled_with_an_api_key_and_unfillable_without() {
    for (format, key) in [
        (TradeFormat::BinanceTrade, None),
        (TradeFormat::BinanceTrade, Some("test-key")),
        (TradeFormat::BinanceAggTrade, None),
    ] {
        let agg = format == TradeFormat::BinanceAggTrade;
        let s = Setup::new(format, &BINANCE, |f| f.drop_after = Some(300), "").await;
        let cfg = std::fs::read_to_string(&s.cfg)
            .unwrap()
            .replace("venue = \"binance\"", "venue = \"binance-futures\"");
        std::fs::write(&s.cfg, cfg).unwrap();
        let mut c = tickwire!();
        if let Some(k) = key {
            c.env("TICKWIRE_BINANCE_API_KEY", k);
        }
        let child = start_run(c, &s.cfg, &s.live.url(), &s.dir.path().join("run.log"));
        let db4 = s.live.client(4).await.unwrap();
        let done = poll_until(Duration::from_secs(60), || async {
            let made = s.made();
            let away = made.iter().filter(|t| !t.live).count() as u64;
            let want = if key.is_some() || agg {
                made.len() as u64
            } else {
                made.len() as u64 - away
            };
            s.ws.all_sent(&s.spec) && ticks_of(&db4, &BINANCE).await >= want
        })
        .await;
        let (status, stdout) = stop(child, "-TERM").await;
        let text = s.log("run.log");
        assert!(done, "key {key:?}\n{text}");
        assert!(status.success(), "{stdout}");
        assert!(!text.contains("test-key"), "the key is never logged");
        let gaps = gaps_of(&s.live, s.venue).await;
        assert!(!gaps.is_empty(), "{text}");
        for g in &gaps {
            let span = num(g, "to_id") - num(g, "from_id") + 1;
            let want = match (key, agg) {
                (None, false) => ("unfillable", "no_api_key", 0, span),
                _ => ("filled", "", span, 0),
            };
            assert_eq!(
                (
                    g["outcome"].as_str(),
                    g["reason"].as_str(),
                    num(g, "filled"),
                    num(g, "missing")
                ),
                want,
                "{g:?}"
            );
        }
        let asked: Vec<_> = s
            .rest
            .requests()
            .into_iter()
            .map(|r| (r.path, r.status))
            .collect();
        let path = if agg {
            "/fapi/v1/aggTrades"
        } else {
            "/fapi/v1/historicalTrades"
        };
        match (key, agg) {
            (None, false) => assert!(
                asked.is_empty(),
                "nothing is asked without a key: {asked:?}"
            ),
            _ => assert!(
                !asked.is_empty() && asked.iter().all(|(p, st)| p == path && *st == 200),
                "{asked:?}"
            ),
        }
    }
}

/// History older than `max_age_s` is not asked for: the venue trades on
/// 3 s while `tickwire run` is stopped (each trade stamped when it was made);
/// with `max_age_s = 1` the next process fills the newest pages, back to
/// the first trade older than a second before it asked, and records the
/// older ones missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_max_age_is_not_asked_for() {
    use tickwire_testkit::ws_server::{Flood, FloodAway};
    let (rate, seconds) = (4_000u32, 8u64);
    let total = rate as usize * seconds as usize;
    let dir = tempfile::tempdir().unwrap();
    let rest = RestServer::start(HashMap::new()).await.unwrap();
    let (ws, flood) = WsServer::flood(Flood {
        symbols: BINANCE.map(String::from).to_vec(),
        rate,
        total,
        every: Duration::from_millis(2),
        behind: Duration::ZERO,
        away: Some(FloodAway {
            history: rest.sink(),
            drop_every: None,
        }),
    })
    .await
    .unwrap();
    let cfg = config_file(
        dir.path(),
        "max_age.toml",
        &format!(
            "[backfill]\nmax_age_s = 1\n\
             [[feeds]]\nname = \"binance\"\nvenue = \"binance\"\nurl = \"{}\"\n\
             rest_url = \"{}\"\nsymbols = [\"BTCUSDT\", \"ETHUSDT\"]\nchannels = [\"trade\"]\n",
            ws.url("/ws"),
            rest.url()
        ),
    );
    let live = redis();
    let db4 = live.client(4).await.unwrap();
    let first = start_run(
        tickwire!(),
        &cfg,
        &live.url(),
        &dir.path().join("first.log"),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = stop(first, "-TERM").await;
    assert!(status.success());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = start_run(
        tickwire!(),
        &cfg,
        &live.url(),
        &dir.path().join("second.log"),
    );
    let done = poll_until(Duration::from_secs(60), || async {
        let gaps = gaps_of(&live, "binance").await;
        let missing: u64 = gaps.iter().map(|g| num(g, "missing")).sum();
        flood.sent.load(std::sync::atomic::Ordering::Relaxed) >= total
            && gaps.len() == BINANCE.len()
            && ticks_of(&db4, &BINANCE).await + missing >= total as u64
    })
    .await;
    let (status, stdout) = stop(second, "-TERM").await;
    assert!(done, "{}\n{stdout}", log_of(&dir.path().join("second.log")));
    assert!(status.success(), "{stdout}");
    let gaps = gaps_of(&live, "binance").await;
    for g in &gaps {
        let span = num(g, "to_id") - num(g, "from_id") + 1;
        // 3 s at 2,000 trades a second per symbol; about a second of them,
        // whole pages of 1,000, filled.
        assert!(span > 5_000, "{g:?}");
        assert_eq!(
            (g["outcome"].as_str(), g["reason"].as_str()),
            ("partial", "max_age"),
            "{g:?}"
        );
        let filled = num(g, "filled");
        assert!(
            filled >= 1_000 && filled.is_multiple_of(1_000) && filled < span,
            "{g:?}"
        );
        assert_eq!(num(g, "missing"), span - filled, "{g:?}");
    }
    // What is in Redis: every trade but the gaps' oldest, in order.
    for symbol in BINANCE {
        let g = gaps.iter().find(|g| g["symbol"] == symbol).unwrap();
        let (lost_from, lost_to) = (num(g, "from_id"), num(g, "from_id") + num(g, "missing"));
        let want: Vec<u64> = (1..=(total / BINANCE.len()) as u64)
            .filter(|id| !(lost_from..lost_to).contains(id))
            .collect();
        assert_eq!(stream_ids(&db4, symbol).await, want, "ticks:{symbol}");
    }
}

/// Live trades wait for a fill in at most `max_waiting_bytes` per
/// instrument: the history answers after 3 s, ETHUSDT's waiting trades pass
/// the bound first, the fill is given up (its gap `partial`, reason
/// `max_waiting_bytes`, every trade of it missing) and they go on; the pages
/// that come later are counted late and applied to nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_trades_wait_for_a_fill_within_max_waiting_bytes() {
    let s = Setup::new(
        TradeFormat::BinanceTrade,
        &["ETHUSDT"],
        |f| {
            f.trades = 1_200;
            f.drop_after = Some(150);
            f.missed = 5;
            f.every = Duration::from_millis(1);
        },
        "[backfill]\nmax_waiting_bytes = 65536\n",
    )
    .await;
    s.rest.fault(Fault::Slow(Duration::from_secs(3)));
    let child = s.start("run.log");
    let db4 = s.live.client(4).await.unwrap();
    let done = poll_until(Duration::from_secs(60), || async {
        let gaps = gaps_of(&s.live, s.venue).await;
        let missing: u64 = gaps.iter().map(|g| num(g, "missing")).sum();
        s.ws.all_sent(&s.spec)
            && !gaps.is_empty()
            && ticks_of(&db4, &["ETHUSDT"]).await + missing >= s.made().len() as u64
    })
    .await;
    // The slow page arrives, late.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let m = try_scrape(s.metrics);
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(done, "{}", s.log("run.log"));
    assert!(status.success(), "{stdout}");
    let gaps = gaps_of(&s.live, s.venue).await;
    let first = &gaps[0];
    let span = num(first, "to_id") - num(first, "from_id") + 1;
    assert_eq!(
        (
            first["outcome"].as_str(),
            first["reason"].as_str(),
            num(first, "filled"),
            num(first, "missing")
        ),
        ("partial", "max_waiting_bytes", 0, span),
        "{gaps:?}"
    );
    // The first gap's page came after it closed (and so may a later gap's).
    let late = m.get("tickwire_backfill_trades_total{feed=\"binance\",outcome=\"late\"}");
    assert!(late.is_some_and(|l| *l >= span as f64), "{m:?}");
    let made = s.made();
    let want = applied_but_missing(&made, &gaps);
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &["ETHUSDT"], &want).await;
}

/// While one instrument's gap is filled, the others flow: the venue leaves
/// out one frame (of one symbol) and the history answers 2 s later; the
/// other symbol's trades reach Redis meanwhile, the gapped one's wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_instruments_flow_while_one_is_filled() {
    let s = Setup::new(
        TradeFormat::BinanceTrade,
        &BINANCE,
        |f| {
            f.trades = 100;
            f.every = Duration::from_millis(20);
            f.unsent_every = Some(120);
        },
        "",
    )
    .await;
    s.rest.fault(Fault::Slow(Duration::from_secs(2)));
    let total = (s.spec.trades * BINANCE.len()) as u64;
    let child = s.start("run.log");
    let db4 = s.live.client(4).await.unwrap();
    // Each symbol's stream length every 100 ms until everything is in.
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let n = (
            ticks_of(&db4, &["BTCUSDT"]).await,
            ticks_of(&db4, &["ETHUSDT"]).await,
        );
        seen.push(n);
        if s.ws.all_sent(&s.spec) && n.0 + n.1 >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, stdout) = stop(child, "-TERM").await;
    assert!(status.success(), "{stdout}");
    let gaps = gaps_of(&s.live, s.venue).await;
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let held = if gaps[0]["symbol"] == "BTCUSDT" { 0 } else { 1 };
    // A second (10 samples) in which the held symbol's stream stood still
    // and the other's grew.
    let flowed = seen.windows(10).any(|w| {
        let (a, b) = (w[0], w[9]);
        let (held_a, held_b, other_a, other_b) = if held == 0 {
            (a.0, b.0, a.1, b.1)
        } else {
            (a.1, b.1, a.0, b.0)
        };
        held_a == held_b && other_b >= other_a + 10
    });
    assert!(flowed, "{seen:?}");
    let made = s.made();
    let all: Vec<&SentTrade> = made.iter().collect();
    assert_applied(&s.live, &s.cfg, s.dir.path(), s.venue, &BINANCE, &all).await;
}
