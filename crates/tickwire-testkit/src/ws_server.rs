//! A scripted WebSocket server on 127.0.0.1 for feed tests: each accepted
//! connection plays its own list of [`Step`]s (send frames, ping, drop, stall,
//! hold) and everything the client sent is logged, so a test can see the
//! subscriptions again after a reconnect and the pongs to its pings.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    accept: tokio::task::JoinHandle<()>,
}

impl WsServer {
    /// Starts a server whose connection `i` plays `scripts[i]` (the last
    /// script again for any later connection). With `answer_text_ping`, a
    /// text `ping` is answered with the text `pong` (OKX's keepalive).
    pub async fn start(
        scripts: Vec<Vec<Step>>,
        answer_text_ping: bool,
    ) -> std::io::Result<WsServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut n = 0usize;
                while let Ok((tcp, _)) = listener.accept().await {
                    let script = scripts
                        .get(n)
                        .or(scripts.last())
                        .cloned()
                        .unwrap_or_default();
                    let log = Arc::clone(&log);
                    let i = n;
                    n += 1;
                    tokio::spawn(async move {
                        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                            return;
                        };
                        push(&log, Seen::Connected(i));
                        play(i, ws, script, answer_text_ping, &log).await;
                        push(&log, Seen::Gone(i));
                    });
                }
            })
        };
        Ok(WsServer { addr, log, accept })
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
