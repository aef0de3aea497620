//! One live WebSocket feed: connect, subscribe, read, and ride through drops.
//!
//! The read loop never waits on the stages after it: frames go to the parser
//! with `try_send`, and while its channel is full they queue in the feed's own
//! backlog (counted) so the socket keeps being read and tungstenite keeps
//! answering the server's pings. A silent socket is pinged, then replaced after
//! the idle timeout; every loss is followed by a reconnect with exponential,
//! jittered, capped backoff and a fresh subscription to everything.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tickwire_core::feeds::LiveConfig;
use tickwire_core::{FeedConfig, FeedEvent, FeedStatus, FeedVenue, Keepalive};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_util::sync::CancellationToken;

use crate::frame::{now_ns, FeedMsg, RawFrame};
use crate::spool::{Spool, SpoolSlot};
use crate::watermark::FeedFlow;

/// A feed's counters, readable while it runs.
#[derive(Debug, Default)]
pub struct FeedCounters {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    /// Connections replaced because nothing arrived within the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Pings tickwire sent on a quiet socket.
    pub pings_sent: AtomicU64,
    /// Times a frame found the parser's channel full and waited in the backlog.
    pub backpressure: AtomicU64,
    /// The most frames the backlog held at once.
    pub max_backlog: AtomicU64,
    /// Frames dropped: the backlog was at `max_backlog_frames` or
    /// `max_backlog_bytes` and the spool off, full (`spool.max_bytes`) or
    /// failing.
    pub dropped: AtomicU64,
    /// Frames that went to the disk spool (the backlog was full, or older
    /// frames waited there).
    pub spooled: AtomicU64,
    /// Spooled frames handed on again.
    pub unspooled: AtomicU64,
    /// Of those, frames an earlier process had read and spooled.
    pub inherited: AtomicU64,
    /// The most bytes the spool held at once.
    pub max_spool_bytes: AtomicU64,
    /// The most frame bytes the backlog held at once.
    pub max_backlog_bytes: AtomicU64,
    /// Last reconnect: microseconds from the loss to the new subscription.
    pub last_reconnect_us: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The venue cannot be dialled as configured (Dhan without its
    /// credentials in the environment).
    #[error("feed {feed}: {reason}")]
    Connect { feed: String, reason: String },
    #[error("feed {feed}: bad url {url}: {reason}")]
    Url {
        feed: String,
        url: String,
        reason: String,
    },
}

/// Everything one feed task needs.
#[derive(Debug, Clone)]
pub struct FeedPlan {
    pub name: Arc<str>,
    pub venue: FeedVenue,
    /// The URL to dial (credentials included where the venue needs them).
    pub url: String,
    /// The URL as it may be logged.
    pub url_redacted: String,
    /// Text messages sent after each connect.
    pub subscribe: Vec<String>,
}

impl FeedPlan {
    /// The connection plan of a configured feed (validated config): the
    /// venue's endpoint unless one is configured, with what the venue adds
    /// to it (credentials), and its subscription.
    pub fn of(feed: &FeedConfig) -> Result<FeedPlan, FeedError> {
        let venue = tickwire_parse::VENUES
            .of(feed)
            .ok_or_else(|| FeedError::Url {
                feed: feed.name.clone(),
                url: String::new(),
                reason: format!("unknown venue {:?}", feed.venue),
            })?;
        let base = match (&feed.url, venue.default_url()) {
            (Some(u), _) => u.as_str(),
            (None, Some(u)) => u,
            (None, None) => {
                return Err(FeedError::Url {
                    feed: feed.name.clone(),
                    url: String::new(),
                    reason: "no url and no public endpoint".into(),
                })
            }
        };
        let url = venue
            .connect_url(feed, base)
            .map_err(|reason| FeedError::Connect {
                feed: feed.name.clone(),
                reason,
            })?;
        Ok(FeedPlan {
            name: feed.name.as_str().into(),
            venue,
            url_redacted: redact_query(&url),
            url,
            subscribe: venue.subscribe_messages(feed),
        })
    }
}

/// The URL with the values of credential-like query parameters replaced by
/// `***` (and any password in it, as for Redis URLs).
pub fn redact_query(url: &str) -> String {
    let url = tickwire_core::config::redact_url(url);
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "token",
        "clientid",
        "key",
        "secret",
        "password",
        "signature",
        "auth",
    ]
    .iter()
    .any(|s| n.contains(s))
        && n != "authtype"
}

/// Why a connection ended (low-cardinality, for the status event and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    ConnectFailed,
    SubscribeFailed,
    Closed,
    Eof,
    ReadError,
    Idle,
    Stopped,
    ParserGone,
}

impl Loss {
    fn as_str(self) -> &'static str {
        match self {
            Loss::ConnectFailed => "connect_failed",
            Loss::SubscribeFailed => "subscribe_failed",
            Loss::Closed => "closed",
            Loss::Eof => "eof",
            Loss::ReadError => "read_error",
            Loss::Idle => "idle_timeout",
            Loss::Stopped => "stopped",
            Loss::ParserGone => "parser_gone",
        }
    }
}

/// Delay before reconnect attempt `attempt` (0-based): the capped exponential
/// step, drawn at random from its upper half.
pub fn backoff_delay(live: &LiveConfig, attempt: u32) -> Duration {
    jittered_backoff(live.backoff_initial_ms, live.backoff_max_ms, attempt)
}

/// Attempt `attempt` (0-based) of a backoff doubling from `initial_ms` up
/// to `max_ms`, drawn at random from the step's upper half (a feed's
/// reconnects, a fill's retries).
pub fn jittered_backoff(initial_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let step = initial_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(max_ms);
    let half = step / 2;
    let jitter = if half == 0 {
        0
    } else {
        rand::random_range(0..=half)
    };
    Duration::from_millis(step - half + jitter)
}

/// A feed's Prometheus handles (labelled with its name once).
struct FeedMetrics {
    frames: metrics::Counter,
    reconnects: metrics::Counter,
    up: metrics::Gauge,
    backlog: metrics::Gauge,
    backlog_bytes: metrics::Gauge,
    backpressure: metrics::Counter,
    dropped: metrics::Counter,
    spooled: metrics::Counter,
    spool_bytes: metrics::Gauge,
    spool_age: metrics::Gauge,
}

impl FeedMetrics {
    fn new(feed: &str) -> Self {
        use tickwire_core::telemetry as t;
        let l = || [("feed", feed.to_string())];
        Self {
            frames: metrics::counter!(t::FRAMES_RECEIVED, &l()),
            reconnects: metrics::counter!(t::FEED_RECONNECTS, &l()),
            up: metrics::gauge!(t::FEED_UP, &l()),
            backlog: metrics::gauge!(t::FEED_BACKLOG, &l()),
            backlog_bytes: metrics::gauge!(t::FEED_BACKLOG_BYTES, &l()),
            backpressure: metrics::counter!(t::FEED_BACKPRESSURE, &l()),
            dropped: metrics::counter!(t::FEED_DROPPED, &l()),
            spooled: metrics::counter!(t::SPOOLED_FRAMES, &l()),
            spool_bytes: metrics::gauge!(t::SPOOL_BYTES, &l()),
            spool_age: metrics::gauge!(t::SPOOL_OLDEST_AGE, &l()),
        }
    }
}

/// Bytes a message holds in the backlog (a status event: none to speak of).
fn msg_bytes(msg: &FeedMsg) -> u64 {
    match msg {
        FeedMsg::Frame(f) => f.data.len() as u64,
        FeedMsg::History(h) => h.data.len() as u64,
        FeedMsg::Status(_) | FeedMsg::FillEnd(_) => 0,
    }
}

/// The feed's messages to the parser, with a backlog for when it is behind,
/// bounded by frame count (`max_backlog_frames`) and by bytes
/// (`max_backlog_bytes`), and behind it the disk spool: once the backlog is
/// full, frames go to the spool, and while the spool holds any, every new
/// frame goes behind them there (arrival order is kept); the backlog is
/// refilled from the spool as the parser takes. Status events are never
/// dropped nor spooled (they say what the feed does now).
struct Outbox {
    tx: mpsc::Sender<FeedMsg>,
    backlog: VecDeque<FeedMsg>,
    /// Frame bytes in `backlog`.
    backlog_bytes: u64,
    max: usize,
    max_bytes: u64,
    spool: Option<SpoolSlot>,
    /// When a drop was last logged (once a minute at most).
    drop_logged: Option<Instant>,
    /// Drops since then.
    drops_unlogged: u64,
    counters: Arc<FeedCounters>,
    metrics: FeedMetrics,
    /// What the feed accepted, for the parser's watermark; its name.
    flow: Arc<FeedFlow>,
    /// Frames of this process in the spool (those of an earlier one are
    /// counted as accepted when handed on).
    own_spooled: u64,
}

/// Frames (and bytes) moved from the spool into the backlog at a time.
const UNSPOOL_FRAMES: usize = 4096;
const UNSPOOL_BYTES: usize = 4 << 20;

impl Outbox {
    fn new(
        tx: mpsc::Sender<FeedMsg>,
        live: &LiveConfig,
        spool: Option<SpoolSlot>,
        counters: Arc<FeedCounters>,
        metrics: FeedMetrics,
        flow: Arc<FeedFlow>,
    ) -> Self {
        Self {
            tx,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            max: live.max_backlog_frames,
            max_bytes: live.max_backlog_bytes,
            spool,
            drop_logged: None,
            drops_unlogged: 0,
            counters,
            metrics,
            flow,
            own_spooled: 0,
        }
    }

    fn queue(&mut self, msg: FeedMsg) {
        self.counters.backpressure.fetch_add(1, Ordering::Relaxed);
        self.metrics.backpressure.increment(1);
        self.backlog_bytes += msg_bytes(&msg);
        self.backlog.push_back(msg);
    }

    fn pop(&mut self) -> Option<FeedMsg> {
        let msg = self.backlog.pop_front()?;
        self.backlog_bytes -= msg_bytes(&msg);
        Some(msg)
    }

    fn unpop(&mut self, msg: FeedMsg) {
        self.backlog_bytes += msg_bytes(&msg);
        self.backlog.push_front(msg);
    }

    fn show_backlog(&self) {
        self.flow.set_spool_waiting(self.spooling());
        self.metrics.backlog.set(self.backlog.len() as f64);
        self.metrics.backlog_bytes.set(self.backlog_bytes as f64);
        if let Some(spool) = self.spool.as_ref().and_then(SpoolSlot::peek) {
            self.metrics.spool_bytes.set(spool.unread_bytes() as f64);
            let age = spool.oldest_age_ns(now_ns()).unwrap_or(0);
            self.metrics.spool_age.set(age as f64 / 1e9);
        }
    }

    /// Whether frames wait in the spool (new ones must go behind them).
    fn spooling(&self) -> bool {
        self.spool
            .as_ref()
            .and_then(SpoolSlot::peek)
            .is_some_and(|s| !s.is_empty())
    }

    /// A frame that cannot be kept: counted, and logged once a minute.
    fn drop_frame(&mut self, why: &'static str) {
        self.flow.lost(1);
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        self.metrics.dropped.increment(1);
        self.drops_unlogged += 1;
        if self
            .drop_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            tracing::error!(
                feed = %self.flow.name(),
                dropped = self.drops_unlogged,
                total = self.counters.dropped.load(Ordering::Relaxed),
                why,
                "frames dropped (logged at most once a minute)"
            );
            self.drop_logged = Some(Instant::now());
            self.drops_unlogged = 0;
        }
    }

    /// Keeps a frame the backlog has no room for: in the spool if there is one.
    fn overflow(&mut self, frame: RawFrame) {
        let Some(slot) = self.spool.as_mut() else {
            self.drop_frame("the backlog is full and [spool] is off (max_bytes = 0)");
            return;
        };
        let Some(spool) = slot.open() else {
            self.drop_frame("the spool cannot be opened");
            return;
        };
        match spool.append(&frame) {
            Ok(true) => {
                self.own_spooled += 1;
                self.counters.spooled.fetch_add(1, Ordering::Relaxed);
                self.metrics.spooled.increment(1);
                self.counters
                    .max_spool_bytes
                    .fetch_max(spool.held_bytes(), Ordering::Relaxed);
            }
            Ok(false) => self.drop_frame("the spool is at spool.max_bytes"),
            Err(e) => {
                tracing::error!(feed = %self.flow.name(), error = %e, "cannot spool a frame");
                self.drop_frame("the spool cannot be written");
            }
        }
    }

    /// Hands `msg` on without waiting; false when the parser is gone.
    fn push(&mut self, msg: FeedMsg) -> bool {
        if !self.flush() {
            return false;
        }
        let spooling = self.spooling();
        match msg {
            msg if self.backlog.is_empty() && !spooling => match self.tx.try_send(msg) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(msg)) => self.queue(msg),
            },
            FeedMsg::Frame(f)
                if spooling
                    || self.backlog.len() >= self.max
                    || self.backlog_bytes + f.data.len() as u64 > self.max_bytes =>
            {
                self.overflow(f)
            }
            msg => self.queue(msg),
        }
        self.counters
            .max_backlog
            .fetch_max(self.backlog.len() as u64, Ordering::Relaxed);
        self.counters
            .max_backlog_bytes
            .fetch_max(self.backlog_bytes, Ordering::Relaxed);
        self.show_backlog();
        true
    }

    /// Refills an empty backlog from the spool; false when nothing came.
    fn unspool(&mut self) -> bool {
        let Some(slot) = self.spool.as_mut() else {
            return false;
        };
        let Some(spool) = slot.get() else {
            return false;
        };
        if spool.is_empty() {
            return false;
        }
        let room = self.max.clamp(1, UNSPOOL_FRAMES);
        let bytes = (self.max_bytes as usize).clamp(1, UNSPOOL_BYTES);
        let inherited = spool.inherited_frames;
        match spool.take(room, bytes) {
            Ok(frames) => {
                let n = frames.len() as u64;
                let inherited = spool.inherited_frames - inherited;
                // An earlier process's frames are accepted now, before the
                // parser can take them; this one's were when read.
                self.flow.accept(inherited);
                self.own_spooled = self.own_spooled.saturating_sub(n - inherited);
                self.counters
                    .inherited
                    .fetch_add(inherited, Ordering::Relaxed);
                for f in frames {
                    self.backlog_bytes += f.data.len() as u64;
                    self.backlog.push_back(FeedMsg::Frame(f));
                }
                self.counters.unspooled.fetch_add(n, Ordering::Relaxed);
                n > 0
            }
            Err(e) => {
                // The spool cannot be read: what is in it stays on disk for
                // the next process (`tickwire health` reports it).
                tracing::error!(
                    feed = %self.flow.name(),
                    error = %e,
                    "cannot read the spool: its frames stay on disk for the next process"
                );
                if let Some(slot) = self.spool.as_mut() {
                    slot.close();
                }
                // What this process spooled will not reach the parser now.
                self.flow.lost(std::mem::take(&mut self.own_spooled));
                false
            }
        }
    }

    /// Moves what the channel takes now from the backlog (and the spool
    /// behind it); false when the parser is gone.
    fn flush(&mut self) -> bool {
        if let Some(spool) = self.spool.as_mut().and_then(SpoolSlot::get) {
            if let Err(e) = spool.tick() {
                tracing::error!(feed = %self.flow.name(), error = %e, "spool upkeep failed");
            }
        }
        loop {
            while let Some(msg) = self.pop() {
                match self.tx.try_send(msg) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(msg)) => {
                        self.unpop(msg);
                        self.show_backlog();
                        return true;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            if !self.unspool() {
                break;
            }
        }
        self.show_backlog();
        true
    }

    /// Whether anything waits to be handed on (backlog or spool).
    fn waiting(&self) -> bool {
        !self.backlog.is_empty() || self.spooling()
    }

    /// Waits until the backlog and the spool are empty (used when the feed
    /// stops). What is still spooled if the process is stopped meanwhile
    /// stays on disk for the next one.
    async fn drain(&mut self) {
        loop {
            while let Some(msg) = self.pop() {
                if self.tx.send(msg).await.is_err() {
                    return;
                }
            }
            if !self.unspool() {
                break;
            }
            if let Some(spool) = self.spool.as_mut().and_then(SpoolSlot::get) {
                if let Err(e) = spool.tick() {
                    tracing::error!(feed = %self.flow.name(), error = %e, "spool upkeep failed");
                }
            }
        }
        self.show_backlog();
    }

    /// Sleeps `delay` (or until `stop`), handing on what waits meanwhile.
    /// False when stopped.
    async fn sleep(&mut self, delay: Duration, stop: &CancellationToken) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            let step = if self.waiting() {
                (tokio::time::Instant::now() + Duration::from_millis(5)).min(until)
            } else {
                until
            };
            tokio::select! {
                _ = tokio::time::sleep_until(step) => {}
                _ = stop.cancelled() => return false,
            }
            self.flush();
            if tokio::time::Instant::now() >= until {
                return true;
            }
        }
    }
}

/// Runs one feed until `stop` is cancelled: connects, subscribes, reads, and
/// reconnects on every loss. Status changes go downstream as events.
/// Gives back the feed's spool at the end (its kept segments are deleted
/// once the caller knows everything handed on was written).
pub async fn run_feed(
    plan: FeedPlan,
    live: LiveConfig,
    spool: Option<SpoolSlot>,
    tx: mpsc::Sender<FeedMsg>,
    counters: Arc<FeedCounters>,
    flow: Arc<FeedFlow>,
    stop: CancellationToken,
) -> Option<Spool> {
    let mut out = Outbox::new(
        tx,
        &live,
        spool,
        Arc::clone(&counters),
        FeedMetrics::new(&plan.name),
        flow,
    );
    feed_loop(&plan, &live, &mut out, &counters, &stop).await;
    out.spool.take().and_then(SpoolSlot::take)
}

async fn feed_loop(
    plan: &FeedPlan,
    live: &LiveConfig,
    out: &mut Outbox,
    counters: &Arc<FeedCounters>,
    stop: &CancellationToken,
) {
    let status = |status, reconnects, gap_ns, reason| {
        FeedMsg::Status(FeedEvent {
            feed: Arc::clone(&plan.name),
            exchange: plan.venue.name(),
            status,
            at_ns: now_ns(),
            reconnects,
            gap_ns,
            reason,
        })
    };
    let mut attempt: u32 = 0;
    // When the last connection was lost (for the reconnect time and gap).
    let mut lost: Option<(Instant, i64)> = None;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(tickwire_core::feeds::MAX_FRAME_BYTES as usize));
    loop {
        if stop.is_cancelled() {
            break;
        }
        if lost.is_some() {
            let delay = backoff_delay(live, attempt);
            attempt = attempt.saturating_add(1);
            if !out.sleep(delay, stop).await {
                break;
            }
        }
        tracing::info!(feed = %plan.name, url = %plan.url_redacted, "connecting");
        let connect =
            tokio_tungstenite::connect_async_with_config(plan.url.as_str(), Some(ws_config), true);
        let ws = tokio::select! {
            r = tokio::time::timeout(Duration::from_millis(live.connect_timeout_ms), connect) => r,
            _ = stop.cancelled() => break,
        };
        let failure = match ws {
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(e)) => Err(redact_query(&e.to_string())),
            Err(_) => Err("timed out".to_string()),
        };
        let mut ws = match failure {
            Ok(ws) => ws,
            Err(error) => {
                tracing::warn!(feed = %plan.name, url = %plan.url_redacted, %error, "connect failed");
                if !lost_now(&mut lost, out, counters, &status, Loss::ConnectFailed) {
                    return;
                }
                continue;
            }
        };
        let mut subscribed = true;
        for msg in &plan.subscribe {
            if let Err(e) = ws.send(Message::text(msg.as_str())).await {
                tracing::warn!(feed = %plan.name, error = %e, "subscribe failed");
                subscribed = false;
                break;
            }
        }
        if !subscribed {
            if !lost_now(&mut lost, out, counters, &status, Loss::SubscribeFailed) {
                return;
            }
            continue;
        }
        counters.connects.fetch_add(1, Ordering::Relaxed);
        let reconnects = counters.reconnects.load(Ordering::Relaxed);
        let gap_ns = lost.map(|(at, at_ns)| {
            counters
                .last_reconnect_us
                .store(at.elapsed().as_micros() as u64, Ordering::Relaxed);
            now_ns() - at_ns
        });
        tracing::info!(
            feed = %plan.name,
            reconnects,
            gap_ms = gap_ns.map(|ns| ns / 1_000_000),
            "connected and subscribed"
        );
        out.metrics.up.set(1.0);
        if !out.push(status(FeedStatus::Connected, reconnects, gap_ns, None)) {
            return;
        }
        let (loss, got_data) = read_loop(plan, live, &mut ws, out, counters, stop).await;
        if got_data {
            attempt = 0;
        }
        if loss == Loss::Stopped || loss == Loss::ParserGone {
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            break;
        }
        tracing::warn!(feed = %plan.name, reason = loss.as_str(), "connection lost; reconnecting");
        if !lost_now(&mut lost, out, counters, &status, loss) {
            return;
        }
    }
    let reconnects = counters.reconnects.load(Ordering::Relaxed);
    out.push(status(
        FeedStatus::Disconnected,
        reconnects,
        None,
        Some("stopped"),
    ));
    out.drain().await;
}

/// Records a loss: counts the reconnect and tells downstream. False when
/// the parser is gone.
fn lost_now(
    lost: &mut Option<(Instant, i64)>,
    out: &mut Outbox,
    counters: &FeedCounters,
    status: &impl Fn(FeedStatus, u64, Option<i64>, Option<&'static str>) -> FeedMsg,
    loss: Loss,
) -> bool {
    // A failed attempt during a reconnect keeps the gap's start.
    if lost.is_none() || !matches!(loss, Loss::ConnectFailed | Loss::SubscribeFailed) {
        *lost = Some((Instant::now(), now_ns()));
    }
    if loss == Loss::Idle {
        counters.idle_timeouts.fetch_add(1, Ordering::Relaxed);
    }
    let n = counters.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
    out.metrics.reconnects.increment(1);
    out.metrics.up.set(0.0);
    out.push(status(
        FeedStatus::Reconnecting,
        n,
        None,
        Some(loss.as_str()),
    ))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads one connection until it is lost or the feed stops. Returns why, and
/// whether any data frame arrived.
async fn read_loop(
    plan: &FeedPlan,
    live: &LiveConfig,
    ws: &mut Ws,
    out: &mut Outbox,
    counters: &FeedCounters,
    stop: &CancellationToken,
) -> (Loss, bool) {
    let idle = Duration::from_millis(live.idle_timeout_ms);
    let ping_every = Duration::from_millis(live.ping_interval_ms);
    let mut last_frame = tokio::time::Instant::now();
    let mut pinged = false;
    let mut got_data = false;
    // While frames wait in the backlog, retry handing them on this often.
    let retry = Duration::from_millis(5);
    loop {
        let ping_at = last_frame + ping_every;
        let dead_at = last_frame + idle;
        let next_tick = if !out.waiting() {
            if pinged {
                dead_at
            } else {
                ping_at
            }
        } else {
            (tokio::time::Instant::now() + retry).min(if pinged { dead_at } else { ping_at })
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => return (Loss::Stopped, got_data),
            msg = ws.next() => {
                let now = tokio::time::Instant::now();
                let msg = match msg {
                    None => return (Loss::Eof, got_data),
                    Some(Err(e)) => {
                        tracing::warn!(feed = %plan.name, error = %e, "read failed");
                        return (Loss::ReadError, got_data);
                    }
                    Some(Ok(m)) => m,
                };
                last_frame = now;
                pinged = false;
                let (binary, data) = match msg {
                    Message::Text(t) => (false, Bytes::from(t)),
                    Message::Binary(b) => (true, b),
                    // Answered by tungstenite on the next read or write.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                    Message::Close(frame) => {
                        tracing::info!(feed = %plan.name, close = ?frame, "server closed the connection");
                        return (Loss::Closed, got_data);
                    }
                };
                got_data = true;
                // Counted for the watermark before its receive time is read.
                out.flow.accept(1);
                counters.frames.fetch_add(1, Ordering::Relaxed);
                out.metrics.frames.increment(1);
                counters.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                let frame = RawFrame {
                    feed: Arc::clone(&plan.name),
                    venue: plan.venue,
                    recv_ns: now_ns(),
                    binary,
                    data,
                };
                if !out.push(FeedMsg::Frame(frame)) {
                    return (Loss::ParserGone, got_data);
                }
            }
            _ = tokio::time::sleep_until(next_tick) => {
                if !out.flush() {
                    return (Loss::ParserGone, got_data);
                }
                let now = tokio::time::Instant::now();
                if now >= dead_at {
                    tracing::warn!(feed = %plan.name, idle_ms = live.idle_timeout_ms, "no frame within the idle timeout");
                    return (Loss::Idle, got_data);
                }
                if !pinged && now >= ping_at {
                    pinged = true;
                    counters.pings_sent.fetch_add(1, Ordering::Relaxed);
                    let ping = match plan.venue.keepalive() {
                        Keepalive::Text(text) => Message::text(text),
                        Keepalive::Ping => Message::Ping(Bytes::new()),
                    };
                    if let Err(e) = ws.send(ping).await {
                        tracing::warn!(feed = %plan.name, error = %e, "ping failed");
                        return (Loss::ReadError, got_data);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn okx() -> FeedVenue {
        tickwire_parse::VENUES
            .get("okx")
            .expect("okx is registered")
    }

    #[test]
    fn credentials_never_show_in_the_logged_url() {
        let u = redact_query(
            "wss://api-feed.dhan.co?version=2&authType=2&token=eyJhbGci.secret&clientId=1100001234",
        );
        assert_eq!(
            u,
            "wss://api-feed.dhan.co?version=2&authType=2&token=***&clientId=***"
        );
        assert_eq!(
            redact_query("wss://u:pw@host/x?a=1"),
            "wss://u:***@host/x?a=1"
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let live = LiveConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            ..LiveConfig::default()
        };
        for _ in 0..50 {
            let d0 = backoff_delay(&live, 0).as_millis();
            assert!((50..=100).contains(&d0), "{d0}");
            let d3 = backoff_delay(&live, 3).as_millis();
            assert!((400..=800).contains(&d3), "{d3}");
            let d9 = backoff_delay(&live, 30).as_millis();
            assert!((500..=1_000).contains(&d9), "{d9}");
        }
    }

    fn raw(n: usize) -> FeedMsg {
        FeedMsg::Frame(RawFrame {
            feed: "f".into(),
            venue: okx(),
            recv_ns: 0,
            binary: false,
            data: Bytes::from(vec![b'x'; n]),
        })
    }

    fn status() -> FeedMsg {
        FeedMsg::Status(FeedEvent {
            feed: "f".into(),
            exchange: "okx",
            status: FeedStatus::Connected,
            at_ns: 0,
            reconnects: 0,
            gap_ns: None,
            reason: None,
        })
    }

    #[test]
    fn the_backlog_is_bounded_by_bytes_as_well_as_frames() {
        // A parser channel of one, already full: everything else waits.
        let (tx, mut rx) = mpsc::channel(1);
        let live = LiveConfig {
            max_backlog_frames: 100,
            max_backlog_bytes: 1_000,
            ..LiveConfig::default()
        };
        let counters = Arc::new(FeedCounters::default());
        let mut out = Outbox::new(
            tx,
            &live,
            None,
            Arc::clone(&counters),
            FeedMetrics::new("f"),
            Arc::new(FeedFlow::new("f".into())),
        );
        assert!(out.push(raw(10)));
        // 400 + 400 fit in 1000 bytes; the next 400 do not, though 97 more
        // frames would; a status event always does.
        for _ in 0..3 {
            assert!(out.push(raw(400)));
        }
        assert!(out.push(status()));
        assert_eq!(out.backlog.len(), 3);
        assert_eq!(out.backlog_bytes, 800);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(counters.max_backlog_bytes.load(Ordering::Relaxed), 800);
        // A small frame still fits beside them.
        assert!(out.push(raw(100)));
        assert_eq!(out.backlog_bytes, 900);
        // The parser takes them all in order; the bytes go back to 0.
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(msg_bytes(&rx.try_recv().unwrap()));
            out.flush();
        }
        assert_eq!(got, [10, 400, 400, 0, 100]);
        assert_eq!((out.backlog.len(), out.backlog_bytes), (0, 0));

        // And by frame count, whatever their size.
        let (tx, _rx) = mpsc::channel(1);
        let live = LiveConfig {
            max_backlog_frames: 2,
            ..LiveConfig::default()
        };
        let counters = Arc::new(FeedCounters::default());
        let mut out = Outbox::new(
            tx,
            &live,
            None,
            Arc::clone(&counters),
            FeedMetrics::new("f"),
            Arc::new(FeedFlow::new("f".into())),
        );
        for _ in 0..5 {
            assert!(out.push(raw(1)));
        }
        assert_eq!(out.backlog.len(), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 2);
    }
}
