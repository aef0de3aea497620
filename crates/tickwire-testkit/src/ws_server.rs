//! A scripted WebSocket server on 127.0.0.1 for feed tests: each accepted
//! connection plays its own list of [`Step`]s (send frames, ping, drop, stall,
//! hold) and everything the client sent is logged, so a test can see the
//! subscriptions again after a reconnect and the pongs to its pings.
//!
//! [`WsServer::trades`] starts one in the other mode: a live Binance trade
//! feed ([`TradeFeed`]) that stamps trades with the wall clock as it sends
//! them and, as venues' replays do, first resends the last frames of the
//! previous connection on every new one. [`WsServer::flood`] sends trades
//! as fast as asked ([`Flood`]), to load a live run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// One action of a scripted connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// Read (and log) until the client sends a text message (its subscription).
    ExpectText,
    Text(String),
    Binary(Vec<u8>),
    /// A WebSocket ping; the client's pong is logged when it arrives.
    Ping,
    /// Read (and log) for this long, sending nothing.
    Wait(Duration),
    /// Neither read nor write for this long (a stalled peer), then drop.
    Stall(Duration),
    /// Close the TCP connection without a close frame.
    Drop,
    /// A WebSocket close frame, then drop.
    Close,
    /// Read (and log) until the client goes away.
    Hold,
}

/// What the server saw, per connection index (0 = first accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Connected(usize),
    Text(usize, String),
    Ping(usize),
    Pong(usize),
    Gone(usize),
}

/// A running server; stops accepting when dropped.
pub struct WsServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    /// What a trade feed sent (empty for a scripted server).
    feed: Arc<Mutex<FeedLog>>,
    accept: tokio::task::JoinHandle<()>,
}

/// A live Binance `@trade` feed for [`WsServer::trades`]. Each connection
/// reads the client's subscription, answers it, resends the last `resend`
/// frames the previous connection sent (the same frames, ids and times
/// unchanged), then goes on with new trades until `trades` of each symbol
/// have been sent, and holds the connection open.
///
/// New trades go out in rounds, one every `every`: a round is a burst of
/// one to three trades of one symbol (symbols in turn) stamped with the
/// same exchange time, the wall clock's millisecond at sending plus `lead`
/// (never before that symbol's last trade), so several trades often share
/// a millisecond. Ids rise by one per symbol from `first_id`; the quantity's
/// eight decimals are the id, so every entry of a tick stream says which
/// trade it is ([`trade_id_of_qty`]).
#[derive(Debug, Clone)]
pub struct TradeFeed {
    /// Upper case, as Binance's `s` (`BTCUSDT`).
    pub symbols: Vec<String>,
    /// Trades per symbol.
    pub trades: usize,
    pub every: Duration,
    pub resend: usize,
    /// How far the venue's clock runs ahead of the wall clock.
    pub lead: Duration,
    /// The last trade of each symbol is stamped this much later again.
    pub last_ahead: Duration,
    /// Below 10^8 less `trades` (the quantity's decimals).
    pub first_id: u64,
    /// The venue's wire format.
    pub format: TradeFormat,
    /// Rounds of trades the venue makes while the client is away: before
    /// each connection after the first goes on, this many rounds are made
    /// and not sent (a dropped connection's or a stopped process's gap).
    pub missed: usize,
    /// The server drops each connection after sending this many new
    /// trades on it (none: never), as a venue's connection breaks.
    pub drop_after: Option<usize>,
    /// Where every trade made also goes: the venue's trade history a
    /// [`crate::rest_server::RestServer`] serves.
    pub history: Option<crate::rest_server::HistorySink>,
    /// Every this many new trades, one is made and not sent, on a
    /// connection that stays up (a frame the venue never delivered).
    pub unsent_every: Option<usize>,
}

/// How a [`TradeFeed`] writes its trades and answers a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeFormat {
    /// Binance `@trade` events (`t` ids).
    BinanceTrade,
    /// Binance `@aggTrade` events (`a` ids; one trade each).
    BinanceAggTrade,
    /// OKX `trades` pushes (`tradeId`).
    Okx,
}

impl TradeFeed {
    /// The fields a Binance `@trade` feed without gaps leaves as they are
    /// (for `..TradeFeed::binance()`); `symbols` empty and `trades` 0.
    pub fn binance() -> TradeFeed {
        TradeFeed {
            symbols: Vec::new(),
            trades: 0,
            every: Duration::from_millis(5),
            resend: 0,
            lead: Duration::ZERO,
            last_ahead: Duration::ZERO,
            first_id: 1_000,
            format: TradeFormat::BinanceTrade,
            missed: 0,
            drop_after: None,
            history: None,
            unsent_every: None,
        }
    }
}

/// One trade a [`TradeFeed`] made: sent (once however often it went out),
/// or made while the client was away (`live` false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTrade {
    /// Sent on a connection (false: made while none was up).
    pub live: bool,
    pub symbol: String,
    /// The symbol's place in the feed's list, and the feed's first id.
    symbol_index: usize,
    first_id: u64,
    pub id: u64,
    /// The exchange time `T`, epoch ms.
    pub ts_ms: i64,
    /// When it first went out, epoch ns.
    pub sent_ns: i64,
    /// The frame, as sent.
    pub text: String,
}

#[derive(Debug, Default)]
struct FeedLog {
    /// Every distinct trade sent, in the order first sent.
    sent: Vec<SentTrade>,
    /// Per connection, the indices into `sent` of what it sent (resends too).
    per_connection: Vec<Vec<usize>>,
    /// Frames sent again by a later connection.
    resent: usize,
    /// Per symbol: trades sent, last exchange time.
    progress: Vec<(usize, i64)>,
    /// Rounds played: whose turn it is, and the burst size.
    rounds: u64,
}

impl FeedLog {
    fn finished(&self, feed: &TradeFeed) -> bool {
        feed.symbols.len() == self.progress.len()
            && self.progress.iter().all(|(n, _)| *n >= feed.trades)
    }
}

/// The trade id a [`TradeFeed`] put in a quantity (as tickwire writes it
/// back: trailing zeros of the decimals may be gone).
pub fn trade_id_of_qty(qty: &str) -> Option<u64> {
    let (_, decimals) = qty.split_once('.')?;
    if decimals.is_empty() || decimals.len() > 8 || !decimals.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    format!("{decimals:0<8}").parse().ok()
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

enum Mode {
    Scripted(Vec<Vec<Step>>, bool),
    Trades(Arc<TradeFeed>),
    Flood(Arc<Flood>, Arc<FloodLog>),
}

/// A fast live Binance `@trade` feed for [`WsServer::flood`]: after the
/// subscription, `total` trades at `rate` frames a second, the ones due
/// sent together `every` so often (symbols in turn,
/// ids rising by one per symbol from 1, the quantity's eight decimals the
/// id, stamped with the wall clock), a WebSocket ping every second (the
/// client's pongs are counted), then it holds the connection. A later
/// connection goes on where the last one stopped.
#[derive(Debug, Clone)]
pub struct Flood {
    pub symbols: Vec<String>,
    pub rate: u32,
    pub total: usize,
    /// How often the frames due go out, flushed together: 2 ms gives bursts
    /// of 100 at 50,000 frames a second, 200 µs (about 300 µs once the
    /// sleeping thread wakes) bursts of about 15, a feed's frames spread out.
    pub every: Duration,
    /// How far the venue's clock runs behind the wall clock (its trades are
    /// stamped this much before they are sent): a test can put the end of
    /// an exchange minute where it likes.
    pub behind: Duration,
    /// A venue that trades on while no connection is up, and drops them.
    pub away: Option<FloodAway>,
}

/// A [`Flood`] venue's trading while the client is away: trade `k` is due
/// `k / rate` after the first connection, whether a connection is up or
/// not, and stamped then; a connection sends what is due from its start on
/// (what came due while none was up goes only to the history). Every trade
/// goes to `history`; each connection is dropped after `drop_every`.
#[derive(Debug, Clone)]
pub struct FloodAway {
    pub history: crate::rest_server::HistorySink,
    pub drop_every: Option<Duration>,
}

/// What a [`Flood`] did so far.
#[derive(Debug, Default)]
pub struct FloodLog {
    /// Frames sent, all connections.
    pub sent: AtomicUsize,
    /// Pongs the client sent back to the server's pings.
    pub pongs: AtomicUsize,
    /// Connections lost (the client went away) before everything was sent.
    pub lost: AtomicUsize,
    /// With [`FloodAway`]: trades made while no connection was up, and
    /// when the first connection came (the venue's clock starts then).
    pub missed: AtomicUsize,
    pub start: std::sync::OnceLock<(std::time::Instant, i64)>,
}

impl WsServer {
    /// Starts a server whose connection `i` plays `scripts[i]` (the last
    /// script again for any later connection). With `answer_text_ping`, a
    /// text `ping` is answered with the text `pong` (OKX's keepalive).
    pub async fn start(
        scripts: Vec<Vec<Step>>,
        answer_text_ping: bool,
    ) -> std::io::Result<WsServer> {
        Self::listen(Mode::Scripted(scripts, answer_text_ping)).await
    }

    /// Starts a fast trade feed (see [`Flood`]); its log says how far it got.
    pub async fn flood(feed: Flood) -> std::io::Result<(WsServer, Arc<FloodLog>)> {
        let log = Arc::new(FloodLog::default());
        let server = Self::listen(Mode::Flood(Arc::new(feed), Arc::clone(&log))).await?;
        Ok((server, log))
    }

    /// Starts a live trade feed (see [`TradeFeed`]).
    pub async fn trades(feed: TradeFeed) -> std::io::Result<WsServer> {
        Self::listen(Mode::Trades(Arc::new(feed))).await
    }

    async fn listen(mode: Mode) -> std::io::Result<WsServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let feed = Arc::new(Mutex::new(FeedLog::default()));
        let accept = {
            let log = Arc::clone(&log);
            let feed = Arc::clone(&feed);
            let mode = Arc::new(mode);
            tokio::spawn(async move {
                let mut n = 0usize;
                while let Ok((tcp, _)) = listener.accept().await {
                    let log = Arc::clone(&log);
                    let feed = Arc::clone(&feed);
                    let mode = Arc::clone(&mode);
                    let i = n;
                    n += 1;
                    // Frames go out as they are sent. With Nagle's algorithm
                    // on, a flood's small frames waited for the client's
                    // acknowledgement of the last: they reached tickwire in
                    // clumps of ~200 every ~5 ms, and a clump's first frame
                    // waited for the whole clump to be read, parsed and
                    // written (most of the bench's p50 at 50,000 frames/s).
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(async move {
                        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                            return;
                        };
                        push(&log, Seen::Connected(i));
                        match &*mode {
                            Mode::Scripted(scripts, answer) => {
                                let script = scripts
                                    .get(i)
                                    .or(scripts.last())
                                    .cloned()
                                    .unwrap_or_default();
                                play(i, ws, script, *answer, &log).await;
                            }
                            Mode::Trades(spec) => trade_feed(i, ws, spec, &feed, &log).await,
                            Mode::Flood(spec, flood) => {
                                flood_feed(
                                    i,
                                    ws,
                                    Arc::clone(spec),
                                    Arc::clone(flood),
                                    Arc::clone(&log),
                                )
                                .await
                            }
                        }
                        push(&log, Seen::Gone(i));
                    });
                }
            })
        };
        Ok(WsServer {
            addr,
            log,
            feed,
            accept,
        })
    }

    /// `ws://127.0.0.1:port/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| matches!(s, Seen::Connected(_)))
            .count()
    }

    /// The text messages connection `i` sent.
    pub fn texts(&self, i: usize) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Text(j, t) if j == i => Some(t),
                _ => None,
            })
            .collect()
    }
}

impl WsServer {
    /// A trade feed's distinct trades, in the order first sent.
    pub fn sent_trades(&self) -> Vec<SentTrade> {
        self.feed.lock().map(|f| f.sent.clone()).unwrap_or_default()
    }

    /// Frames a trade feed sent again on a later connection.
    pub fn resent_frames(&self) -> usize {
        self.feed.lock().map(|f| f.resent).unwrap_or(0)
    }

    /// Whether a trade feed has sent every trade of every symbol.
    pub fn all_sent(&self, feed: &TradeFeed) -> bool {
        self.feed.lock().is_ok_and(|f| f.finished(feed))
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn push(log: &Mutex<Vec<Seen>>, s: Seen) {
    if let Ok(mut l) = log.lock() {
        l.push(s);
    }
}

type ServerWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn play(i: usize, mut ws: ServerWs, script: Vec<Step>, answer: bool, log: &Mutex<Vec<Seen>>) {
    for step in script {
        let ok = match step {
            Step::ExpectText => read(i, &mut ws, answer, log, None, true).await,
            Step::Text(t) => ws.send(Message::text(t)).await.is_ok(),
            Step::Binary(b) => ws.send(Message::binary(b)).await.is_ok(),
            Step::Ping => ws
                .send(Message::Ping(Bytes::from_static(b"srv")))
                .await
                .is_ok(),
            Step::Wait(d) => read(i, &mut ws, answer, log, Some(d), false).await,
            Step::Stall(d) => {
                tokio::time::sleep(d).await;
                false
            }
            Step::Drop => false,
            Step::Close => {
                let _ = ws.close(None).await;
                false
            }
            Step::Hold => read(i, &mut ws, answer, log, None, false).await,
        };
        if !ok {
            return;
        }
    }
}

/// Reads and logs until `until` passes, a text arrives (`stop_at_text`) or
/// the client goes away (false).
async fn read(
    i: usize,
    ws: &mut ServerWs,
    answer: bool,
    log: &Mutex<Vec<Seen>>,
    until: Option<Duration>,
    stop_at_text: bool,
) -> bool {
    let deadline = until.map(|d| tokio::time::Instant::now() + d);
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, ws.next()).await {
                Ok(m) => m,
                Err(_) => return true,
            },
            None => ws.next().await,
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                let text = t.as_str().to_string();
                push(log, Seen::Text(i, text.clone()));
                if answer && text == "ping" && ws.send(Message::text("pong")).await.is_err() {
                    return false;
                }
                if stop_at_text && text != "ping" {
                    return true;
                }
            }
            Some(Ok(Message::Ping(_))) => push(log, Seen::Ping(i)),
            Some(Ok(Message::Pong(_))) => push(log, Seen::Pong(i)),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
            Some(Ok(_)) => {}
        }
    }
}

/// Locks the feed log; a test thread that panicked holding it has failed
/// the test already, so its state is as good as any.
fn lock(feed: &Mutex<FeedLog>) -> std::sync::MutexGuard<'_, FeedLog> {
    feed.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`Flood`] trade frame: trade `k` (from 0) of the whole feed.
pub fn flood_frame(spec: &Flood, k: usize, t_ms: i64) -> (String, u64) {
    let n = spec.symbols.len().max(1);
    let symbol = spec.symbols.get(k % n).map_or("BTCUSDT", String::as_str);
    let id = (k / n) as u64 + 1;
    // A walk between 100.00 and 101.00, so bars and indicators move.
    let cents = 10_000 + (id * 37) % 101;
    let text = format!(
        r#"{{"stream":"{}@trade","data":{{"e":"trade","E":{t_ms},"s":"{symbol}","t":{id},"p":"{}.{:02}","q":"0.{id:08}","T":{t_ms},"m":false,"M":true}}}}"#,
        symbol.to_ascii_lowercase(),
        cents / 100,
        cents % 100
    );
    (text, id)
}

/// One connection of a [`Flood`]: the frames go out from a thread of its own,
/// which can wait less than the runtime's 1 ms timer between sends, while a
/// task reads the client's pongs.
async fn flood_feed(
    i: usize,
    mut ws: ServerWs,
    spec: Arc<Flood>,
    flood: Arc<FloodLog>,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    if !read(i, &mut ws, false, &log, None, true).await
        || ws
            .send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .is_err()
    {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    // Until the client goes (also once everything is sent: it may go when
    // it likes).
    let reader = {
        let (flood, log) = (Arc::clone(&flood), Arc::clone(&log));
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Pong(_) => {
                        push(&log, Seen::Pong(i));
                        flood.pongs.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Ping(_) => push(&log, Seen::Ping(i)),
                    Message::Text(t) => push(&log, Seen::Text(i, t.as_str().to_string())),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        })
    };
    let handle = tokio::runtime::Handle::current();
    let dropping = spec.away.as_ref().and_then(|a| a.drop_every);
    let sender = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let first = flood.sent.load(Ordering::Relaxed);
        let mut pinged = started;
        if let Some(away) = &spec.away {
            // What came due while no connection was up: made, not sent.
            let (t0, t0_ms) = *flood.start.get_or_init(|| (started, now_ns() / 1_000_000));
            // The last trade of each symbol goes out live: a gap shows at
            // the live trade after it, and there would be none.
            let last_live = spec.total.saturating_sub(spec.symbols.len().max(1));
            let due = ((t0.elapsed().as_secs_f64() * f64::from(spec.rate)) as usize).min(last_live);
            for k in first..due {
                let (_, trade) = flood_trade(&spec, k, t0_ms);
                away.history.add(&trade.0, trade.1);
                flood.missed.fetch_add(1, Ordering::Relaxed);
            }
            flood.sent.store(due.max(first), Ordering::Relaxed);
        }
        loop {
            let sent = flood.sent.load(Ordering::Relaxed);
            if sent >= spec.total {
                break;
            }
            if dropping.is_some_and(|d| started.elapsed() >= d) {
                // The connection breaks, as a venue's does.
                return (sink, true);
            }
            let due = match (&spec.away, flood.start.get()) {
                (Some(_), Some((t0, _))) => {
                    (t0.elapsed().as_secs_f64() * f64::from(spec.rate)) as usize
                }
                _ => first + (started.elapsed().as_secs_f64() * f64::from(spec.rate)) as usize,
            };
            let due = due.min(spec.total);
            let ping = pinged.elapsed() >= Duration::from_secs(1);
            if ping {
                pinged = std::time::Instant::now();
            }
            // The runtime's workers drive the socket; this thread waits.
            let behind = i64::try_from(spec.behind.as_millis()).unwrap_or(0);
            let written = handle.block_on(async {
                let t_ms = now_ns() / 1_000_000 - behind;
                for k in sent..due {
                    let text = match (&spec.away, flood.start.get()) {
                        (Some(away), Some((_, t0_ms))) => {
                            let (text, trade) = flood_trade(&spec, k, *t0_ms);
                            away.history.add(&trade.0, trade.1);
                            text
                        }
                        _ => flood_frame(&spec, k, t_ms).0,
                    };
                    sink.feed(Message::text(text)).await?;
                    flood.sent.fetch_add(1, Ordering::Relaxed);
                }
                if ping {
                    sink.feed(Message::Ping(Bytes::from_static(b"srv"))).await?;
                }
                sink.flush().await
            });
            if written.is_err() {
                flood.lost.fetch_add(1, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(spec.every);
        }
        (sink, false)
    });
    // The sink is held until the client goes, as the connection is (or,
    // dropping, until the drop is due).
    let sink = tokio::task::spawn_blocking(move || sender.join()).await;
    if matches!(sink, Ok(Ok((_, true)))) {
        reader.abort();
    }
    let _ = reader.await;
    drop(sink);
}

/// A [`FloodAway`] venue's trade `k`: its frame, stamped when it is due
/// (`t0_ms` plus `k / rate`), and its symbol and history entry.
fn flood_trade(
    spec: &Flood,
    k: usize,
    t0_ms: i64,
) -> (String, (String, crate::rest_server::HistTrade)) {
    let due_ms = t0_ms + (k as f64 * 1000.0 / f64::from(spec.rate.max(1))) as i64;
    let t_ms = due_ms - i64::try_from(spec.behind.as_millis()).unwrap_or(0);
    let (text, id) = flood_frame(spec, k, t_ms);
    let n = spec.symbols.len().max(1);
    let symbol = spec.symbols.get(k % n).cloned().unwrap_or_default();
    let cents = 10_000 + (id * 37) % 101;
    let trade = crate::rest_server::HistTrade {
        id,
        price: format!("{}.{:02}", cents / 100, cents % 100),
        qty: format!("0.{id:08}"),
        ts_ms: t_ms,
        buyer_maker: false,
    };
    (text, (symbol, trade))
}

/// One connection of a [`TradeFeed`]: subscription, resend, the trades
/// made while the client was away (not sent), new trades, then a hold (or
/// a drop after `drop_after`).
async fn trade_feed(
    i: usize,
    mut ws: ServerWs,
    spec: &TradeFeed,
    feed: &Mutex<FeedLog>,
    log: &Mutex<Vec<Seen>>,
) {
    let reply = match spec.format {
        TradeFormat::Okx => r#"{"event":"subscribe","arg":{"channel":"trades"},"connId":"t"}"#,
        _ => r#"{"result":null,"id":1}"#,
    };
    if !read(i, &mut ws, false, log, None, true).await
        || ws.send(Message::text(reply)).await.is_err()
    {
        return;
    }
    let resend: Vec<(usize, String)> = {
        let mut f = lock(feed);
        while f.per_connection.len() <= i {
            f.per_connection.push(Vec::new());
        }
        let previous = i
            .checked_sub(1)
            .map(|p| f.per_connection[p].clone())
            .unwrap_or_default();
        let from = previous.len().saturating_sub(spec.resend);
        previous[from..]
            .iter()
            .map(|&k| (k, f.sent[k].text.clone()))
            .collect()
    };
    for (k, text) in resend {
        if ws.send(Message::text(text)).await.is_err() {
            return;
        }
        let mut f = lock(feed);
        f.resent += 1;
        f.per_connection[i].push(k);
    }
    if i > 0 {
        // What the venue traded while the client was away.
        let mut f = lock(feed);
        for _ in 0..spec.missed {
            if f.finished(spec) {
                break;
            }
            let burst = next_burst(spec, &mut f);
            // A symbol's last trade goes out live: a gap is seen at the
            // live trade after it, and there would be none.
            if burst.iter().any(|p| p.is_last(spec)) {
                break;
            }
            let now = now_ns();
            let burst_ms = burst.first().map_or(0, |p| burst_time(spec, &f, p, now));
            for trade in burst {
                if let Some(mut trade) = trade.stamp(spec, burst_ms, now) {
                    trade.live = false;
                    made(spec, &mut f, trade);
                }
            }
        }
    }
    let mut sent_here = 0usize;
    loop {
        if spec.drop_after.is_some_and(|n| sent_here >= n) {
            // The connection breaks, as a venue's does.
            return;
        }
        let burst = {
            let mut f = lock(feed);
            if f.finished(spec) {
                break;
            }
            next_burst(spec, &mut f)
        };
        // Stamped as they go out, one millisecond for the burst. A frame that
        // does not go out was never sent (its id is skipped, as a venue's
        // ids may be).
        let sent_ns = now_ns();
        let burst_ms = burst
            .first()
            .map_or(0, |p| burst_time(spec, &lock(feed), p, sent_ns));
        for trade in burst {
            let Some(mut trade) = trade.stamp(spec, burst_ms, sent_ns) else {
                continue;
            };
            let made_here = sent_here + 1;
            let last = trade.id + 1 - spec.first_id == spec.trades as u64;
            if !last
                && spec
                    .unsent_every
                    .is_some_and(|n| made_here.is_multiple_of(n))
            {
                // Made, never delivered.
                sent_here += 1;
                trade.live = false;
                made(spec, &mut lock(feed), trade);
                continue;
            }
            if ws.send(Message::text(trade.text.clone())).await.is_err() {
                return;
            }
            sent_here += 1;
            let mut f = lock(feed);
            made(spec, &mut f, trade);
            let k = f.sent.len() - 1;
            f.per_connection[i].push(k);
        }
        if !read(i, &mut ws, false, log, Some(spec.every), false).await {
            return;
        }
    }
    read(i, &mut ws, false, log, None, false).await;
}

/// A burst's exchange time: the wall clock's millisecond plus the lead,
/// never before its symbol's last trade.
fn burst_time(spec: &TradeFeed, f: &FeedLog, p: &Pending, now_ns: i64) -> i64 {
    let last = f.progress[p.symbol].1;
    let lead = i64::try_from(spec.lead.as_millis()).unwrap_or(0);
    (now_ns / 1_000_000 + lead).max(last)
}

/// Logs a trade made (sent or not) and adds it to the venue's history.
fn made(spec: &TradeFeed, f: &mut FeedLog, trade: SentTrade) {
    if let Some(s) = spec.symbols.iter().position(|s| *s == trade.symbol) {
        f.progress[s].0 += 1;
        f.progress[s].1 = trade.ts_ms;
    }
    if let Some(history) = &spec.history {
        history.add(&trade.symbol, trade.hist());
    }
    f.sent.push(trade);
}

impl SentTrade {
    /// The trade as the venue's REST history serves it.
    pub fn hist(&self) -> crate::rest_server::HistTrade {
        let (price, qty) = trade_numbers(self.id, self.symbol_index, self.first_id);
        crate::rest_server::HistTrade {
            id: self.id,
            price,
            qty,
            ts_ms: self.ts_ms,
            buyer_maker: self.id.is_multiple_of(2),
        }
    }
}

/// A trade to be sent: its symbol's index and id.
struct Pending {
    symbol: usize,
    id: u64,
}

/// The next round's trades: a burst of one to three of the next symbol.
fn next_burst(spec: &TradeFeed, f: &mut FeedLog) -> Vec<Pending> {
    while f.progress.len() < spec.symbols.len() {
        f.progress.push((0, 0));
    }
    let mut out = Vec::new();
    for _ in 0..spec.symbols.len() {
        let round = f.rounds;
        f.rounds += 1;
        let symbol = (round % spec.symbols.len() as u64) as usize;
        let (sent, _) = f.progress[symbol];
        if sent >= spec.trades {
            continue;
        }
        // A fixed pattern of 1, 3, 1, 2, 2, 1, 3 trades in one millisecond.
        let burst = [1, 3, 1, 2, 2, 1, 3][(round / spec.symbols.len() as u64 % 7) as usize];
        for n in 0..burst.min(spec.trades - sent) {
            out.push(Pending {
                symbol,
                id: spec.first_id + (sent + n) as u64,
            });
        }
        break;
    }
    out
}

impl Pending {
    /// Whether it is its symbol's last trade.
    fn is_last(&self, spec: &TradeFeed) -> bool {
        self.id + 1 - spec.first_id == spec.trades as u64
    }

    /// The frame, stamped `ts_ms` (the last of its symbol later still).
    fn stamp(self, spec: &TradeFeed, mut ts_ms: i64, sent_ns: i64) -> Option<SentTrade> {
        let symbol = spec.symbols.get(self.symbol)?;
        let n = self.id - spec.first_id;
        if n + 1 == spec.trades as u64 {
            ts_ms += i64::try_from(spec.last_ahead.as_millis()).unwrap_or(0);
        }
        let (price, qty) = trade_numbers(self.id, self.symbol, spec.first_id);
        let maker = self.id.is_multiple_of(2);
        let text = match spec.format {
            TradeFormat::BinanceTrade => format!(
                r#"{{"stream":"{}@trade","data":{{"e":"trade","E":{},"s":"{symbol}","t":{},"p":"{price}","q":"{qty}","T":{ts_ms},"m":{maker},"M":true}}}}"#,
                symbol.to_ascii_lowercase(),
                ts_ms + 1,
                self.id,
            ),
            TradeFormat::BinanceAggTrade => format!(
                r#"{{"stream":"{}@aggTrade","data":{{"e":"aggTrade","E":{},"s":"{symbol}","a":{id},"p":"{price}","q":"{qty}","f":{id},"l":{id},"T":{ts_ms},"m":{maker},"M":true}}}}"#,
                symbol.to_ascii_lowercase(),
                ts_ms + 1,
                id = self.id,
            ),
            TradeFormat::Okx => format!(
                r#"{{"arg":{{"channel":"trades","instId":"{symbol}"}},"data":[{{"instId":"{symbol}","tradeId":"{}","px":"{price}","sz":"{qty}","side":"{}","ts":"{ts_ms}","count":"1"}}]}}"#,
                self.id,
                if maker { "sell" } else { "buy" },
            ),
        };
        Some(SentTrade {
            live: true,
            symbol: symbol.clone(),
            symbol_index: self.symbol,
            first_id: spec.first_id,
            id: self.id,
            ts_ms,
            sent_ns,
            text,
        })
    }
}

/// A trade's price and quantity: a walk around 100 (4 + symbol decimals),
/// quantities 1.x to 7.x whose eight decimals are the id.
fn trade_numbers(id: u64, symbol: usize, first_id: u64) -> (String, String) {
    let n = id - first_id;
    let cents = 10_000 + (n * 37 + symbol as u64 * 11) % 101;
    (
        format!("{}.{:02}", cents / 100, cents % 100),
        format!("{}.{:08}", 1 + id % 7, id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type Client = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn subscribed(server: &WsServer) -> Client {
        let (mut ws, _) = tokio_tungstenite::connect_async(server.url("/stream"))
            .await
            .unwrap();
        ws.send(Message::text(r#"{"method":"SUBSCRIBE","id":1}"#))
            .await
            .unwrap();
        let reply = next_text(&mut ws).await;
        assert_eq!(reply.as_deref(), Some(r#"{"result":null,"id":1}"#));
        ws
    }

    async fn next_text(ws: &mut Client) -> Option<String> {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(t) = m {
                return Some(t.as_str().to_string());
            }
        }
    }

    #[test]
    fn the_quantity_names_the_trade() {
        assert_eq!(trade_id_of_qty("3.10000042"), Some(10_000_042));
        assert_eq!(trade_id_of_qty("3.1000004"), Some(10_000_040));
        assert_eq!(trade_id_of_qty("3"), None);
        assert_eq!(trade_id_of_qty("3.123456789"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_connection_gets_the_last_frames_again_then_the_rest() {
        let spec = TradeFeed {
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            trades: 40,
            every: Duration::from_millis(1),
            resend: 5,
            lead: Duration::ZERO,
            last_ahead: Duration::from_secs(30),
            first_id: 1_000,
            ..TradeFeed::binance()
        };
        let server = WsServer::trades(spec.clone()).await.unwrap();
        let mut first = subscribed(&server).await;
        for _ in 0..10 {
            next_text(&mut first).await.unwrap();
        }
        drop(first);
        // The server learns of the drop when a send fails.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !server.seen().contains(&Seen::Gone(0)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                server.seen()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = server.sent_trades().len();
        assert!(
            (10..80).contains(&before),
            "{before} sent on the first connection"
        );

        let mut second = subscribed(&server).await;
        let mut got = Vec::new();
        while !(server.all_sent(&spec) && got.len() == 5 + 80 - before) {
            got.push(next_text(&mut second).await.unwrap());
        }
        let sent = server.sent_trades();
        let texts: Vec<&str> = sent.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(got, texts[before - 5..], "the last 5 again, then the rest");
        assert_eq!(server.resent_frames(), 5);
        assert_eq!(server.connections(), 2);

        for symbol in &spec.symbols {
            let of: Vec<&SentTrade> = sent.iter().filter(|t| t.symbol == *symbol).collect();
            let ids: Vec<u64> = of.iter().map(|t| t.id).collect();
            assert_eq!(ids, (1_000..1_040).collect::<Vec<_>>(), "{symbol}");
            assert!(of.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
            assert!(
                of.windows(2).any(|w| w[0].ts_ms == w[1].ts_ms),
                "{symbol}: trades sharing a millisecond"
            );
            let (last, before_last) = (of[39], of[38]);
            assert!(last.ts_ms - before_last.ts_ms >= 30_000);
            assert!(last.text.contains(&format!(r#""T":{}"#, last.ts_ms)));
            assert!((last.ts_ms - last.sent_ns / 1_000_000 - 30_000).abs() < 1_000);
        }
    }
}
