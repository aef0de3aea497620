//! Gaps in a feed's trades and their fills from the venue's history.
//!
//! A gap is a run of an instrument's trades that tickwire did not get live:
//! made while a connection was down or the process stopped, or a frame the
//! venue never delivered (a jump in consecutive ids). The state stage finds
//! it (the last id it applied, the first live id after it), holds the
//! instrument's live trades, and asks the fill task for the trades between;
//! the fill task pages the venue's public history ([`History`]) and hands
//! the pages on as history frames ([`HistoryKey`]), then a [`FillEnd`]. The
//! state stage applies the filled trades (they carry their gap in
//! [`crate::Tick::fills_gap`]), lets the held live trades go, and hands on
//! one [`Gap`] record for `gaps:{feed}`.

use std::sync::Arc;

use crate::frame::FrameError;
use crate::tick::{IdSequence, Instrument};

/// What a history frame holds trades of: the gap it fills and the trades
/// it may give (ids `from_id..=to_id`; others in the page are not used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryKey {
    /// The gap: the id of the first live trade after it (with the feed and
    /// symbol, the same in the live run and in a replay of its recording).
    pub gap: u64,
    /// As the venue names it (`BTCUSDT`, `BTC-USDT`).
    pub symbol: Box<str>,
    pub sequence: IdSequence,
    pub from_id: u64,
    pub to_id: u64,
}

/// One page asked of a venue's history: the newest trades of `symbol` with
/// ids at least `from_id` and below `below`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAsk<'a> {
    pub symbol: &'a str,
    pub sequence: IdSequence,
    pub from_id: u64,
    pub below: u64,
    /// Whether an API key is configured for the feed (sent as the venue's
    /// header, never in the query).
    pub api_key: bool,
}

/// The request for one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Path and query, appended to the feed's `rest_url`.
    pub path_and_query: String,
    /// The venue's request weight (Binance), 1 where it counts requests.
    pub weight: u32,
    /// The header the API key goes in, when the endpoint needs one.
    pub key_header: Option<&'static str>,
}

/// A venue's public trade history, by trade id.
pub trait History: Sync {
    /// The public REST endpoint a feed of the venue asks by default.
    fn default_rest_url(&self) -> &'static str;

    /// The request for the page `ask` describes; `Err` (a reason, such as
    /// `no_api_key`) when the venue cannot serve it.
    fn page(&self, ask: &PageAsk<'_>) -> Result<PageRequest, &'static str>;

    /// The request weight the venue allows a client per minute: requests
    /// are spaced so that the fills stay within it.
    fn weight_per_minute(&self) -> u32;

    /// The ids and exchange times (epoch ms) of a page's trades, in any order.
    fn page_trades(&self, body: &[u8]) -> Result<Vec<(u64, i64)>, FrameError>;
}

/// What a fill did, from the fill task to the state stage.
#[derive(Debug, Clone, PartialEq)]
pub struct FillEnd {
    pub feed: Arc<str>,
    /// As the venue names it.
    pub symbol: Box<str>,
    /// The gap: the id of the first live trade after it.
    pub gap: u64,
    /// The fill went down to the gap's first id (every trade the venue
    /// still has of it was handed on).
    pub complete: bool,
    /// Why it stopped short (`timeout`, `max_trades`, `max_age`,
    /// `rest_error`, `no_api_key`, `disabled`), empty when complete.
    pub reason: &'static str,
}

/// How a gap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapOutcome {
    /// Every missing trade was fetched and applied.
    Filled,
    /// Some were; `missing` says how many were not.
    Partial,
    /// The venue keeps no trade history (or not for this feed).
    Unfillable,
    /// The feed's `backfill` is off.
    Disabled,
}

impl GapOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            GapOutcome::Filled => "filled",
            GapOutcome::Partial => "partial",
            GapOutcome::Unfillable => "unfillable",
            GapOutcome::Disabled => "disabled",
        }
    }
}

/// One gap, as recorded in `gaps:{feed}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub feed: Arc<str>,
    pub instrument: Arc<Instrument>,
    /// The missing trades' ids, both ends included (by id: OKX's ids rise by
    /// one per trade in practice, so `to_id - from_id + 1` is its count).
    pub from_id: u64,
    pub to_id: u64,
    /// The last trade before the gap and the first after it, exchange time, epoch ms.
    pub from_ts_ms: i64,
    pub to_ts_ms: i64,
    /// Trades of the gap applied from the venue's history.
    pub filled: u64,
    /// Trades of the gap that were not.
    pub missing: u64,
    pub outcome: GapOutcome,
    /// Why it is not `filled` (see [`FillEnd::reason`]); empty when it is.
    pub reason: &'static str,
}
