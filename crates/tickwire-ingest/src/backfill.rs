//! The fill task: the trades of a gap fetched from the venue's public
//! history ([`tickwire_core::gap`]), paged backwards from the first live
//! trade after the gap until its first missing id, within `[backfill]`'s
//! bounds; handed to the parser as history frames, oldest page first, then
//! the fill's end.
//!
//! Each venue host gets one request at a time, paced by the venue's
//! request weight ([`History`]); a `429` or `418` waits its `Retry-After`,
//! a `5xx` or a failed connection backs off with jitter, until the fill's
//! `timeout_s` runs out. What was fetched by then is applied; the gap says
//! what is missing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tickwire_core::feeds::BackfillConfig;
use tickwire_core::{FeedConfig, FeedVenue, FillEnd, History, HistoryKey, IdSequence, PageAsk};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_util::sync::CancellationToken;

use crate::frame::{now_ns, FeedMsg, HistoryFrame};

/// A gap the state stage asks to be filled: trades `from_id` to `below - 1`
/// of `symbol` in `sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapAsk {
    pub gap: u64,
    pub feed: Arc<str>,
    /// As the venue names it.
    pub symbol: Box<str>,
    pub sequence: IdSequence,
    pub from_id: u64,
    /// The first live trade after the gap.
    pub below: u64,
}

/// The environment variable an API key for a feed's history comes from:
/// `TICKWIRE_{FEED}_API_KEY` (the feed's name upper-cased, `-` and `.` as `_`).
pub fn api_key_var(feed: &str) -> String {
    let name: String = feed
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("TICKWIRE_{name}_API_KEY")
}

/// A feed whose gaps are filled.
struct Source {
    venue: FeedVenue,
    history: &'static dyn History,
    rest_url: String,
    /// Never logged.
    api_key: Option<String>,
    host: Arc<Host>,
}

/// One venue host: one request in flight, paced.
struct Host {
    /// Held for a request; holds when the next may go.
    next: tokio::sync::Mutex<Instant>,
}

/// The fills of every feed with `backfill` on.
pub struct Backfill {
    client: reqwest::Client,
    config: BackfillConfig,
    sources: HashMap<Arc<str>, Source>,
}

/// Why one request gave no page.
enum Refusal {
    /// Not to be asked again (a `4xx` other than `429`/`418`, an answer that
    /// is not a page).
    Final,
    /// The fill's time ran out.
    Timeout,
}

impl Backfill {
    /// The feeds of `feeds` whose venue keeps a history and whose
    /// `backfill` is not off; none: no task is needed.
    pub fn new(
        feeds: &[FeedConfig],
        config: BackfillConfig,
        venues: tickwire_core::Venues,
    ) -> Option<Backfill> {
        let mut hosts: HashMap<String, Arc<Host>> = HashMap::new();
        let mut sources = HashMap::new();
        for f in feeds {
            let Some(venue) = venues.of(f) else { continue };
            let Some(history) = FeedVenue::history(venue) else {
                continue;
            };
            if f.backfill == Some(false) {
                continue;
            }
            let rest_url = f
                .rest_url
                .clone()
                .unwrap_or_else(|| history.default_rest_url().to_string());
            let host = Arc::clone(hosts.entry(host_of(&rest_url)).or_insert_with(|| {
                Arc::new(Host {
                    next: tokio::sync::Mutex::new(Instant::now()),
                })
            }));
            let api_key = std::env::var(api_key_var(&f.name))
                .ok()
                .filter(|k| !k.is_empty());
            sources.insert(
                Arc::from(f.name.as_str()),
                Source {
                    venue,
                    history,
                    rest_url: rest_url.trim_end_matches('/').to_string(),
                    api_key,
                    host,
                },
            );
        }
        if sources.is_empty() {
            return None;
        }
        // A client that cannot be built (no TLS roots) fills nothing: its
        // gaps are recorded with what is missing.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the REST client: gaps will not be filled"))
            .ok()?;
        Some(Backfill {
            client,
            config,
            sources,
        })
    }

    /// Whether gaps of `feed` are filled (else they are recorded only).
    pub fn fills(&self, feed: &str) -> bool {
        self.sources.contains_key(feed)
    }

    /// Fills each gap asked, each in a task of its own, until `stop` is
    /// cancelled or the asks end; its pages and end go to `frames`.
    pub async fn run(
        self,
        mut asks: mpsc::UnboundedReceiver<GapAsk>,
        frames: mpsc::Sender<FeedMsg>,
        stop: CancellationToken,
    ) {
        let me = Arc::new(self);
        let mut fills = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                ask = asks.recv() => {
                    let Some(ask) = ask else { break };
                    let (me, frames, stop) = (Arc::clone(&me), frames.clone(), stop.clone());
                    fills.spawn(async move {
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = me.fill(ask, &frames) => {}
                        }
                    });
                }
                Some(_) = fills.join_next(), if !fills.is_empty() => {}
            }
        }
        fills.abort_all();
    }

    /// Fetches one gap's trades and hands them on, then its end.
    async fn fill(&self, ask: GapAsk, frames: &mpsc::Sender<FeedMsg>) {
        let (pages, complete, reason) = match self.sources.get(&ask.feed) {
            Some(source) => self.fetch(source, &ask).await,
            None => (Vec::new(), false, "disabled"),
        };
        if let Some(source) = self.sources.get(&ask.feed) {
            // Oldest first: the state stage applies them in id order.
            for (key, data) in pages.into_iter().rev() {
                let frame = HistoryFrame {
                    feed: Arc::clone(&ask.feed),
                    venue: source.venue,
                    recv_ns: now_ns(),
                    key,
                    data,
                };
                if frames.send(FeedMsg::History(frame)).await.is_err() {
                    return;
                }
            }
        }
        let end = FillEnd {
            feed: Arc::clone(&ask.feed),
            symbol: ask.symbol.clone(),
            gap: ask.gap,
            complete,
            reason,
        };
        let _ = frames.send(FeedMsg::FillEnd(end)).await;
    }

    /// The pages of `ask`'s trades, newest first, each with the ids it
    /// gives; whether they reach the gap's first id; why not.
    async fn fetch(
        &self,
        source: &Source,
        ask: &GapAsk,
    ) -> (Vec<(HistoryKey, Bytes)>, bool, &'static str) {
        let deadline = Instant::now() + Duration::from_secs(self.config.timeout_s);
        let oldest_ms = now_ns() / 1_000_000
            - i64::try_from(self.config.max_age_s.saturating_mul(1_000)).unwrap_or(i64::MAX);
        let mut pages = Vec::new();
        let mut below = ask.below;
        let mut fetched = 0u64;
        loop {
            if below <= ask.from_id {
                return (pages, true, "");
            }
            if fetched >= self.config.max_trades {
                return (pages, false, "max_trades");
            }
            let page_ask = PageAsk {
                symbol: &ask.symbol,
                sequence: ask.sequence,
                from_id: ask.from_id,
                below,
                api_key: source.api_key.is_some(),
            };
            let request = match source.history.page(&page_ask) {
                Ok(r) => r,
                Err(reason) => return (pages, false, reason),
            };
            let body = match self.get(source, &ask.feed, &request, deadline).await {
                Ok(body) => body,
                Err(Refusal::Timeout) => return (pages, false, "timeout"),
                Err(Refusal::Final) => return (pages, false, "rest_error"),
            };
            let trades = match source.history.page_trades(&body) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(feed = %ask.feed, error = %e.message, "history answer not read");
                    return (pages, false, "rest_error");
                }
            };
            let mut ids: Vec<(u64, i64)> = trades
                .iter()
                .copied()
                .filter(|(id, _)| (ask.from_id..below).contains(id))
                .collect();
            ids.sort_unstable();
            let reached = trades.iter().any(|(id, _)| *id <= ask.from_id);
            // The newest `max_trades` of the gap at most.
            let room = self.config.max_trades - fetched;
            if ids.len() as u64 > room {
                ids.drain(..ids.len() - room as usize);
            }
            let Some(&(lowest, oldest_ts)) = ids.first() else {
                let why = if reached { "" } else { "no_history" };
                return (pages, reached, why);
            };
            fetched += ids.len() as u64;
            pages.push((
                HistoryKey {
                    gap: ask.gap,
                    symbol: ask.symbol.clone(),
                    sequence: ask.sequence,
                    from_id: lowest,
                    to_id: below - 1,
                },
                body,
            ));
            below = lowest;
            if oldest_ts < oldest_ms && below > ask.from_id {
                return (pages, false, "max_age");
            }
        }
    }

    /// One page: waits its turn at the host, then asks until answered, a
    /// final refusal, or `deadline`.
    async fn get(
        &self,
        source: &Source,
        feed: &str,
        request: &tickwire_core::PageRequest,
        deadline: Instant,
    ) -> Result<Bytes, Refusal> {
        let url = format!("{}{}", source.rest_url, request.path_and_query);
        let mut failures = 0u32;
        loop {
            let mut next = tokio::time::timeout_at(deadline, source.host.next.lock())
                .await
                .map_err(|_| Refusal::Timeout)?;
            if *next > deadline {
                return Err(Refusal::Timeout);
            }
            tokio::time::sleep_until(*next).await;
            let mut get = self.client.get(&url);
            if let (Some(header), Some(key)) = (request.key_header, &source.api_key) {
                get = get.header(header, key);
            }
            let answer = tokio::time::timeout_at(deadline, get.send()).await;
            let now = Instant::now();
            *next = now + pace(source.history, request.weight);
            let answer = match answer {
                Err(_) => {
                    count_request(feed, "timeout");
                    return Err(Refusal::Timeout);
                }
                Ok(Err(e)) => {
                    count_request(feed, "error");
                    tracing::warn!(feed, error = %without_url(&e), "history request failed");
                    failures += 1;
                    *next = now + backoff(failures);
                    continue;
                }
                Ok(Ok(a)) => a,
            };
            let status = answer.status().as_u16();
            count_request(feed, status_class(status));
            match status {
                200 => {
                    if let Some(used) = used_weight(&answer) {
                        let budget = source.history.weight_per_minute();
                        // Near the venue's budget: wait for the next minute.
                        if used.saturating_mul(10) >= u64::from(budget) * 9 {
                            *next = now + Duration::from_secs(60);
                        }
                    }
                    let body = tokio::time::timeout_at(deadline, answer.bytes()).await;
                    return match body {
                        Ok(Ok(b)) => Ok(b),
                        Ok(Err(_)) => {
                            failures += 1;
                            *next = now + backoff(failures);
                            continue;
                        }
                        Err(_) => Err(Refusal::Timeout),
                    };
                }
                429 | 418 => {
                    let wait = retry_after(&answer).unwrap_or(Duration::from_secs(1));
                    tracing::warn!(
                        feed,
                        status,
                        wait_s = wait.as_secs_f64(),
                        "history host asks to wait"
                    );
                    *next = now + wait;
                }
                500..=599 => {
                    failures += 1;
                    *next = now + backoff(failures);
                }
                _ => {
                    tracing::warn!(feed, status, "history request refused");
                    return Err(Refusal::Final);
                }
            }
        }
    }
}

/// The least time between two requests of `weight` to keep within the
/// venue's budget per minute.
fn pace(history: &dyn History, weight: u32) -> Duration {
    let budget = u64::from(history.weight_per_minute().max(1));
    Duration::from_millis(u64::from(weight) * 60_000 / budget)
}

/// 250 ms doubling per failure up to 8 s, each drawn from its upper half.
fn backoff(failures: u32) -> Duration {
    crate::ws::jittered_backoff(250, 8_000, failures.saturating_sub(1))
}

fn retry_after(answer: &reqwest::Response) -> Option<Duration> {
    let v = answer.headers().get("retry-after")?.to_str().ok()?;
    Some(Duration::from_secs(v.trim().parse().ok()?))
}

fn used_weight(answer: &reqwest::Response) -> Option<u64> {
    let v = answer
        .headers()
        .get("x-mbx-used-weight-1m")?
        .to_str()
        .ok()?;
    v.trim().parse().ok()
}

/// `200`, `429`, `418`, `4xx`, `5xx`: the `status` label.
fn status_class(status: u16) -> &'static str {
    match status {
        200 => "200",
        429 => "429",
        418 => "418",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

fn count_request(feed: &str, status: &'static str) {
    metrics::counter!(
        tickwire_core::telemetry::BACKFILL_REQUESTS,
        "feed" => feed.to_string(),
        "status" => status
    )
    .increment(1);
}

/// A request error without its URL (a query may one day carry what should
/// not be logged).
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(at) = e.find(" for url (") {
        e.truncate(at);
    }
    e
}

/// `scheme://host:port` of a URL: requests to one are made one at a time.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_is_read_from_the_feed_s_own_variable() {
        assert_eq!(
            api_key_var("binance-futures"),
            "TICKWIRE_BINANCE_FUTURES_API_KEY"
        );
        assert_eq!(api_key_var("okx.main"), "TICKWIRE_OKX_MAIN_API_KEY");
    }

    #[test]
    fn requests_to_one_host_share_its_turn() {
        assert_eq!(host_of("https://API.binance.com/"), "api.binance.com");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1:8080");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        for failures in 1..10 {
            let d = backoff(failures).as_millis() as u64;
            let cap = 250u64 << (failures - 1).min(5);
            assert!((cap / 2..=cap).contains(&d), "{failures}: {d}");
        }
    }
}
