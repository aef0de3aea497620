//! A scripted venue REST server on 127.0.0.1: the public trade-history
//! endpoints tickwire fills a gap from, over plain HTTP/1.1 (keep-alive),
//! serving a trade list the test gives, with faults on cue.
//!
//! - Binance spot `GET /api/v3/aggTrades` and `GET /api/v3/historicalTrades`;
//!   USD-M futures `GET /fapi/v1/aggTrades` and `GET /fapi/v1/historicalTrades`
//!   (the latter only with an `X-MBX-APIKEY` header). `fromId` is inclusive;
//!   without it the newest trades come. Every answer carries the weight used
//!   so far in `X-MBX-USED-WEIGHT-1M`. An aggregate trade here is one trade:
//!   `a` = `f` = `l` = the trade's id.
//! - OKX `GET /api/v5/market/history-trades` by trade id (`type` 1, the
//!   default): `after` = older than, `before` = newer than, newest first,
//!   `limit` at most 100.
//!
//! [`Fault`]s queued with [`RestServer::fault`] answer the next requests in
//! turn instead (`429`/`418` with `Retry-After`, `503`, or a slow answer);
//! every request is logged ([`RestServer::requests`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One trade of the history, as the venue numbers and stamps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistTrade {
    pub id: u64,
    /// As the venue writes it (`"42219.9"`).
    pub price: String,
    pub qty: String,
    /// Exchange time, epoch ms.
    pub ts_ms: i64,
    /// The buyer was the maker (the taker sold).
    pub buyer_maker: bool,
}

/// An answer given instead of the next request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429` with `Retry-After` (seconds).
    TooManyRequests { retry_after_s: u64 },
    /// Binance's `418` (banned for a while) with `Retry-After`.
    Banned { retry_after_s: u64 },
    /// `503`.
    Unavailable,
    /// The right answer, after this long.
    Slow(Duration),
}

/// A request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    /// The query's parameters, in order.
    pub query: Vec<(String, String)>,
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Request {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct State {
    /// Per symbol (Binance `BTCUSDT`, OKX `BTC-USDT`), ascending ids.
    trades: HashMap<String, Vec<HistTrade>>,
    faults: VecDeque<Fault>,
    log: Vec<Request>,
    /// Binance request weight used in the current minute, and which minute
    /// (since the epoch) that is: the count starts again each minute, as
    /// Binance's `X-MBX-USED-WEIGHT-1M` does.
    weight: u64,
    minute: u64,
}

/// A running server; stops accepting when dropped.
pub struct RestServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for RestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RestServer {
    /// Serves `trades` (per symbol; sorted here by id) on a free port.
    pub async fn start(trades: HashMap<String, Vec<HistTrade>>) -> std::io::Result<RestServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut trades = trades;
        for list in trades.values_mut() {
            list.sort_by_key(|t| t.id);
        }
        let state = Arc::new(Mutex::new(State {
            trades,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Ok(RestServer {
            addr,
            state,
            accept,
        })
    }

    /// `http://127.0.0.1:{port}`: a feed's `rest_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a fault: it answers the next request not yet faulted.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    /// A handle that adds trades to the history as the venue makes them
    /// (a [`crate::ws_server::TradeFeed`]'s `history`).
    pub fn sink(&self) -> HistorySink {
        HistorySink(Arc::clone(&self.state))
    }

    /// Adds trades to a symbol's history (the venue traded on).
    pub fn extend(&self, symbol: &str, trades: impl IntoIterator<Item = HistTrade>) {
        let mut state = self.lock();
        let list = state.trades.entry(symbol.to_string()).or_default();
        list.extend(trades);
        list.sort_by_key(|t| t.id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds trades to a [`RestServer`]'s history.
#[derive(Clone)]
pub struct HistorySink(Arc<Mutex<State>>);

impl std::fmt::Debug for HistorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistorySink")
    }
}

impl HistorySink {
    /// Adds one trade of `symbol` (ids rise: it goes last).
    pub fn add(&self, symbol: &str, trade: HistTrade) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = state.trades.entry(symbol.to_string()).or_default();
        list.push(trade);
        if list.len() > 1 && list[list.len() - 2].id > list[list.len() - 1].id {
            list.sort_by_key(|t| t.id);
        }
    }
}

/// One connection: requests answered in turn until the client closes it.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let head = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                break head;
            }
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let (status, headers, body, delay) = answer(&head, &state);
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            418 => "I'm a teapot",
            429 => "Too Many Requests",
            _ => "Service Unavailable",
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        if stream.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

type Answer = (u16, Vec<(&'static str, String)>, String, Option<Duration>);

/// The answer to one request head (request line and headers).
fn answer(head: &str, state: &Mutex<State>) -> Answer {
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/");
    let has_key = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("x-mbx-apikey") && !v.trim().is_empty()
        })
    });
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut request = Request {
        path: path.to_string(),
        query,
        status: 200,
        at: std::time::Instant::now(),
    };
    let (status, mut headers, body, delay) = match state.faults.pop_front() {
        Some(Fault::TooManyRequests { retry_after_s }) => fault(429, retry_after_s),
        Some(Fault::Banned { retry_after_s }) => fault(418, retry_after_s),
        Some(Fault::Unavailable) => (503, Vec::new(), String::new(), None),
        Some(Fault::Slow(d)) => {
            let (s, h, b, _) = route(&request, has_key, &mut state);
            (s, h, b, Some(d))
        }
        None => route(&request, has_key, &mut state),
    };
    if path.starts_with("/api/v3/") || path.starts_with("/fapi/") {
        headers.push(("X-MBX-USED-WEIGHT-1M", state.weight.to_string()));
    }
    request.status = status;
    state.log.push(request);
    (status, headers, body, delay)
}

fn fault(status: u16, retry_after_s: u64) -> Answer {
    let body = serde_json::json!({"code": -1003, "msg": "Too many requests."}).to_string();
    (
        status,
        vec![("Retry-After", retry_after_s.to_string())],
        body,
        None,
    )
}

fn route(request: &Request, has_key: bool, state: &mut State) -> Answer {
    let binance = |weight, max, default, agg| (weight, max, default, agg);
    let endpoint = match request.path.as_str() {
        "/api/v3/aggTrades" => binance(4, 1000, 500, true),
        "/api/v3/historicalTrades" => binance(25, 1000, 500, false),
        "/fapi/v1/aggTrades" => binance(20, 1000, 500, true),
        "/fapi/v1/historicalTrades" if !has_key => {
            let body = serde_json::json!({"code": -2014, "msg": "API-key format invalid."});
            return (401, Vec::new(), body.to_string(), None);
        }
        "/fapi/v1/historicalTrades" => binance(20, 500, 100, false),
        "/api/v5/market/history-trades" => return okx(request, state),
        _ => return (404, Vec::new(), String::new(), None),
    };
    let (weight, max, default, agg) = endpoint;
    let minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    if minute != state.minute {
        (state.minute, state.weight) = (minute, 0);
    }
    state.weight += weight;
    let bad = |code: i64, msg: &str| {
        let body = serde_json::json!({"code": code, "msg": msg}).to_string();
        (400, Vec::new(), body, None)
    };
    let Some(list) = request.param("symbol").and_then(|s| state.trades.get(s)) else {
        return bad(-1121, "Invalid symbol.");
    };
    let limit = match request.param("limit").map(str::parse::<usize>) {
        None => default,
        Some(Ok(l)) if (1..=max).contains(&l) => l,
        Some(_) => return bad(-1130, "Data sent for parameter 'limit' is not valid."),
    };
    let page: Vec<&HistTrade> = match request.param("fromId").map(str::parse::<u64>) {
        None => list.iter().rev().take(limit).rev().collect(),
        Some(Ok(from)) => list.iter().filter(|t| t.id >= from).take(limit).collect(),
        Some(Err(_)) => return bad(-1100, "Illegal characters found in parameter 'fromId'."),
    };
    let body: Vec<serde_json::Value> = page
        .into_iter()
        .map(|t| {
            if agg {
                serde_json::json!({"a": t.id, "p": t.price, "q": t.qty, "f": t.id, "l": t.id,
                    "T": t.ts_ms, "m": t.buyer_maker, "M": true})
            } else {
                serde_json::json!({"id": t.id, "price": t.price, "qty": t.qty,
                    "time": t.ts_ms, "isBuyerMaker": t.buyer_maker, "isBestMatch": true})
            }
        })
        .collect();
    (
        200,
        Vec::new(),
        serde_json::Value::from(body).to_string(),
        None,
    )
}

/// OKX's history-trades by trade id: newest first, between `before` and
/// `after` (both exclusive), at most `limit` (100). A lone `before` gives
/// the newest trades above it (how OKX pages forward is not relied on:
/// clients page backwards with `after`).
fn okx(request: &Request, state: &State) -> Answer {
    let reply = |code: &str, msg: &str, data: Vec<serde_json::Value>| {
        let body = serde_json::json!({"code": code, "msg": msg, "data": data}).to_string();
        (200, Vec::new(), body, None)
    };
    let Some((inst, list)) = request
        .param("instId")
        .and_then(|i| state.trades.get(i).map(|l| (i, l)))
    else {
        return reply("51001", "Instrument ID does not exist.", Vec::new());
    };
    let id = |name| request.param(name).map(str::parse::<u64>);
    let limit = match request.param("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return reply("51000", "Parameter limit error", Vec::new()),
    };
    let (after, before) = match (id("after"), id("before")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            return reply("51000", "Parameter after error", Vec::new())
        }
        (a, b) => (
            a.map_or(u64::MAX, |r| r.unwrap_or(u64::MAX)),
            b.map_or(0, |r| r.unwrap_or(0)),
        ),
    };
    let page: Vec<&HistTrade> = list
        .iter()
        .rev()
        .filter(|t| t.id < after && t.id > before)
        .take(limit)
        .collect();
    let data = page
        .into_iter()
        .map(|t| {
            serde_json::json!({"instId": inst, "tradeId": t.id.to_string(), "px": t.price,
                "sz": t.qty, "side": if t.buyer_maker { "sell" } else { "buy" },
                "ts": t.ts_ms.to_string()})
        })
        .collect();
    reply("0", "", data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trades(n: u64) -> Vec<HistTrade> {
        (1..=n)
            .map(|id| HistTrade {
                id,
                price: format!("100.{id}"),
                qty: "0.5".into(),
                ts_ms: 1_700_000_000_000 + id as i64,
                buyer_maker: id % 2 == 0,
            })
            .collect()
    }

    /// One GET over its own connection: status, headers, body.
    async fn get(server: &RestServer, target: &str, key: bool) -> (u16, String, String) {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let key = if key { "X-MBX-APIKEY: k\r\n" } else { "" };
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n{key}\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if body.len() >= len {
                    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                    return (status, head.to_string(), body.to_string());
                }
            }
        }
    }

    fn ids(body: &str, field: &str) -> Vec<u64> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let list = v.get("data").unwrap_or(&v).as_array().unwrap().clone();
        list.iter()
            .map(|t| match &t[field] {
                serde_json::Value::String(s) => s.parse().unwrap(),
                n => n.as_u64().unwrap(),
            })
            .collect()
    }

    #[tokio::test]
    async fn binance_pages_from_an_id_and_counts_its_weight() {
        let server = RestServer::start(HashMap::from([("BTCUSDT".into(), trades(2500))]))
            .await
            .unwrap();
        let (status, head, body) = get(
            &server,
            "/api/v3/aggTrades?symbol=BTCUSDT&fromId=1200&limit=1000",
            false,
        )
        .await;
        assert_eq!(status, 200);
        let got = ids(&body, "a");
        assert_eq!((got.len(), got[0], got[999]), (1000, 1200, 2199));
        assert!(head.contains("X-MBX-USED-WEIGHT-1M: 4"), "{head}");
        // The end of the history: a short page.
        let (_, head, body) = get(
            &server,
            "/api/v3/historicalTrades?symbol=BTCUSDT&fromId=2400",
            false,
        )
        .await;
        assert_eq!(ids(&body, "id"), (2400..=2500).collect::<Vec<_>>());
        assert!(head.contains("X-MBX-USED-WEIGHT-1M: 29"), "{head}");
        // No fromId: the newest.
        let (_, _, body) = get(&server, "/fapi/v1/aggTrades?symbol=BTCUSDT&limit=3", false).await;
        assert_eq!(ids(&body, "a"), [2498, 2499, 2500]);
        // Futures' historicalTrades wants a key; its limit is at most 500.
        let (status, _, _) = get(&server, "/fapi/v1/historicalTrades?symbol=BTCUSDT", false).await;
        assert_eq!(status, 401);
        let (status, _, _) = get(
            &server,
            "/fapi/v1/historicalTrades?symbol=BTCUSDT&limit=501",
            true,
        )
        .await;
        assert_eq!(status, 400);
        let (status, _, body) = get(
            &server,
            "/fapi/v1/historicalTrades?symbol=BTCUSDT&fromId=7",
            true,
        )
        .await;
        assert_eq!((status, ids(&body, "id").len()), (200, 100));
        let (status, _, _) = get(&server, "/api/v3/aggTrades?symbol=ETHUSDT", false).await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn okx_pages_by_trade_id_newest_first() {
        let server = RestServer::start(HashMap::from([("BTC-USDT".into(), trades(250))]))
            .await
            .unwrap();
        let path = "/api/v5/market/history-trades?instId=BTC-USDT&type=1";
        let (_, _, body) = get(&server, path, false).await;
        let newest = ids(&body, "tradeId");
        assert_eq!((newest.len(), newest[0], newest[99]), (100, 250, 151));
        let (_, _, body) = get(&server, &format!("{path}&after=151&limit=2"), false).await;
        assert_eq!(ids(&body, "tradeId"), [150, 149]);
        let (_, _, body) = get(&server, &format!("{path}&after=10&before=6"), false).await;
        assert_eq!(ids(&body, "tradeId"), [9, 8, 7]);
        let (_, _, body) = get(&server, &format!("{path}&before=247"), false).await;
        assert_eq!(ids(&body, "tradeId"), [250, 249, 248]);
        let (_, _, body) = get(&server, &format!("{path}&limit=101"), false).await;
        assert!(body.contains("\"51000\""), "{body}");
        // The venue trades on: the newest page moves up.
        server.extend("BTC-USDT", trades(252).into_iter().skip(250));
        let (_, _, body) = get(&server, &format!("{path}&limit=2"), false).await;
        assert_eq!(ids(&body, "tradeId"), [252, 251]);
    }

    #[tokio::test(start_paused = true)]
    async fn faults_answer_the_next_requests_in_turn() {
        let server = RestServer::start(HashMap::from([("BTCUSDT".into(), trades(5))]))
            .await
            .unwrap();
        server.fault(Fault::TooManyRequests { retry_after_s: 2 });
        server.fault(Fault::Unavailable);
        server.fault(Fault::Slow(Duration::from_millis(50)));
        let path = "/api/v3/aggTrades?symbol=BTCUSDT&fromId=1";
        let (status, head, _) = get(&server, path, false).await;
        assert_eq!(status, 429);
        assert!(head.contains("Retry-After: 2"), "{head}");
        assert_eq!(get(&server, path, false).await.0, 503);
        let t = tokio::time::Instant::now();
        let (status, _, body) = get(&server, path, false).await;
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!((status, ids(&body, "a")), (200, vec![1, 2, 3, 4, 5]));
        let log = server.requests();
        assert_eq!(
            log.iter().map(|r| r.status).collect::<Vec<_>>(),
            [429, 503, 200]
        );
        assert_eq!(log[2].param("fromId"), Some("1"));
    }
}
