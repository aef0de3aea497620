//! What a venue is, as one trait: its endpoints and channels, how a feed of
//! it is checked, subscribed and kept alive, how its frames are decoded and
//! what identifies its trades.
//!
//! The venues themselves live one module each in `tickwire-parse`'s
//! `venues/` (Binance, OKX, Dhan, tickwire's own JSON), registered in one
//! list there. Everything else — config validation, the feed connections,
//! the parser, the metrics — asks a [`FeedVenue`] handle and never names a
//! venue.

use std::fmt;

use crate::error::FieldError;
use crate::event::Event;
use crate::feeds::FeedConfig;
use crate::tick::{Instrument, InstrumentCache};

pub use crate::frame::{Frame, FrameError};

/// What is sent on a quiet socket so that a healthy one answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// A WebSocket ping frame.
    Ping,
    /// A text message the venue answers (OKX: `ping`, answered `pong`).
    Text(&'static str),
}

/// Whether a subscription message starts or ends the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionOp {
    Subscribe,
    Unsubscribe,
}

impl SubscriptionOp {
    /// `subscribe` or `unsubscribe`, as the venues' messages name it.
    pub fn verb(self) -> &'static str {
        match self {
            SubscriptionOp::Subscribe => "subscribe",
            SubscriptionOp::Unsubscribe => "unsubscribe",
        }
    }
}

/// What a venue's trade ids say (see [`crate::TradeId`]): what a resend, a
/// missed trade and a fill from its history can be told by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeIdentity {
    /// Consecutive per instrument within their sequence (Binance `t`, `a`):
    /// a jump is a trade the venue sent and tickwire did not get.
    Consecutive,
    /// Increasing per instrument, not consecutive (OKX `tradeId`).
    Increasing,
    /// Derived from the day's cumulative volume (Dhan): increasing per
    /// instrument and trading date.
    DayVolume,
    /// As the producer sent it (tickwire JSON's optional `id`).
    AsSent,
}

/// One frame decoder of one feed, with its reusable buffers and state.
pub trait FrameDecoder: Send {
    /// Decodes one frame, pushing its events (ticks on the venue's exchange,
    /// quotes, depth, skips) to `out`.
    fn decode(
        &mut self,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError>;

    /// Decodes one page of the venue's trade history (a [`History`] answer)
    /// into the ticks of `key`'s ids, oldest first, each marked with its
    /// gap ([`crate::Tick::fills_gap`]). A venue without history refuses it.
    fn decode_history(
        &mut self,
        _key: &crate::gap::HistoryKey,
        _body: &[u8],
        _recv_ns: i64,
        _instruments: &mut InstrumentCache,
        _out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        Err(FrameError::new(
            "unknown_message",
            "the venue keeps no trade history",
        ))
    }
}

/// Everything tickwire knows of one venue. A new venue is a module that
/// implements this and one line in the registry (`tickwire_parse::VENUES`).
pub trait Venue: Sync {
    /// Its name in config and recordings; also the exchange of its ticks
    /// (Dhan's ticks are on their segment's exchange).
    fn name(&self) -> &'static str;

    /// The public WebSocket endpoint, if it has one (credentials are added
    /// by [`Venue::connect_url`]).
    fn default_url(&self) -> Option<&'static str>;

    /// The channels subscribed when a feed names none.
    fn default_channels(&self) -> &'static [&'static str];

    /// The channels it knows; a feed naming another is refused.
    fn known_channels(&self) -> &'static [&'static str];

    /// Whether a feed must name its instruments (tickwire's own producers
    /// may send every instrument unasked).
    fn needs_symbols(&self) -> bool {
        true
    }

    /// The venue-only `[[feeds]]` fields it takes (Dhan: `ltt_basis`); a
    /// feed of another venue setting one is refused.
    fn feed_options(&self) -> &'static [&'static str] {
        &[]
    }

    /// Its own checks of a feed's entries (the syntax of its instruments,
    /// its options): (the field under `feeds[i].`, what is wrong), every one.
    fn check_feed(&self, _feed: &FeedConfig) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The instruments a feed of it will produce, where its config says;
    /// empty when only the frames will tell (tickwire JSON).
    fn instruments(&self, feed: &FeedConfig) -> Vec<Instrument>;

    /// The URL to dial for a feed whose endpoint is `url` (the configured
    /// or the public one): credentials from the environment added where the
    /// venue needs them. The error says what is missing.
    fn connect_url(&self, _feed: &FeedConfig, url: &str) -> Result<String, String> {
        Ok(url.to_string())
    }

    /// The text messages that start (or end) a feed's streams of `channels`
    /// (the feed's, or the venue's default), sent after every connect.
    fn subscription(
        &self,
        feed: &FeedConfig,
        channels: &[String],
        op: SubscriptionOp,
    ) -> Vec<String>;

    /// What keeps a quiet connection alive.
    fn keepalive(&self) -> Keepalive {
        Keepalive::Ping
    }

    /// What its trade ids say.
    fn trade_identity(&self) -> TradeIdentity;

    /// Its public trade history, where it keeps one by trade id (a gap in
    /// a feed of it is filled from there; otherwise recorded `unfillable`).
    fn history(&self) -> Option<&dyn crate::gap::History> {
        None
    }

    /// Every `error_type` its decoder can reject a frame for
    /// (`tickwire_frames_rejected_total`, exported at 0 from the start).
    fn error_types(&self) -> &'static [&'static str];

    /// A decoder for `feed` (`None`: a recording's feed the config does not
    /// name); `feeds` is every configured feed, for what a decoder learns
    /// from them (Dhan's symbols).
    fn decoder(&self, feed: Option<&FeedConfig>, feeds: &[FeedConfig]) -> Box<dyn FrameDecoder>;
}

/// A handle on a registered venue, copied freely.
#[derive(Clone, Copy)]
pub struct FeedVenue(&'static dyn Venue);

impl FeedVenue {
    pub const fn new(venue: &'static dyn Venue) -> Self {
        Self(venue)
    }

    /// The venue's trade history, for as long as the venue (the process).
    pub fn history(self) -> Option<&'static dyn crate::gap::History> {
        self.0.history()
    }

    /// The channels a feed subscribes: as configured, or the venue's default.
    pub fn channels(self, feed: &FeedConfig) -> Vec<String> {
        if feed.channels.is_empty() {
            self.default_channels()
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            feed.channels.clone()
        }
    }

    /// The messages that subscribe `feed` to its channels.
    pub fn subscribe_messages(self, feed: &FeedConfig) -> Vec<String> {
        self.subscription(feed, &self.channels(feed), SubscriptionOp::Subscribe)
    }
}

impl std::ops::Deref for FeedVenue {
    type Target = dyn Venue;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl fmt::Debug for FeedVenue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The registered venues, found by name.
#[derive(Clone, Copy)]
pub struct Venues(&'static [FeedVenue]);

impl Venues {
    pub const fn new(venues: &'static [FeedVenue]) -> Self {
        Self(venues)
    }

    /// The venue named `name`.
    pub fn get(self, name: &str) -> Option<FeedVenue> {
        self.0.iter().copied().find(|v| v.name() == name)
    }

    /// The venue of a configured feed (validated config: it is known).
    pub fn of(self, feed: &FeedConfig) -> Option<FeedVenue> {
        self.get(&feed.venue)
    }

    pub fn iter(self) -> impl Iterator<Item = FeedVenue> {
        self.0.iter().copied()
    }

    /// Every problem of the `[[feeds]]` tables: names, venues, endpoints,
    /// instruments, options and channels, each venue's own checks included.
    pub fn check_feeds(self, feeds: &[FeedConfig]) -> Vec<FieldError> {
        let mut names = std::collections::HashSet::new();
        feeds
            .iter()
            .enumerate()
            .flat_map(|(i, f)| check_feed(i, f, &mut names, self))
            .collect()
    }

    /// Every name, for the messages that list what is known.
    pub fn names(self) -> Vec<&'static str> {
        self.0.iter().map(|v| v.name()).collect()
    }
}

impl fmt::Debug for Venues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0).finish()
    }
}

/// The problems of `feeds[i]`; `names` holds the names of the feeds before it.
fn check_feed<'a>(
    i: usize,
    f: &'a FeedConfig,
    names: &mut std::collections::HashSet<&'a str>,
    venues: Venues,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let field = |name: &str| format!("feeds[{i}].{name}");
    let name_ok = !f.name.is_empty()
        && f.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        errors.push(FieldError::new(
            field("name"),
            format!("{:?} must be letters, digits, '-', '_' or '.'", f.name),
        ));
    } else if !names.insert(f.name.as_str()) {
        errors.push(FieldError::new(
            field("name"),
            format!("{:?} names two feeds", f.name),
        ));
    }
    let Some(venue) = venues.of(f) else {
        errors.push(FieldError::new(
            field("venue"),
            format!(
                "unknown venue {:?} (known: {})",
                f.venue,
                venues.names().join(", ")
            ),
        ));
        return errors;
    };
    match &f.url {
        Some(url) if !(url.starts_with("ws://") || url.starts_with("wss://")) => {
            errors.push(FieldError::new(
                field("url"),
                format!(
                    "must be ws:// or wss:// (got {:?})",
                    crate::redact::redact_url(url)
                ),
            ))
        }
        None if venue.default_url().is_none() => errors.push(FieldError::new(
            field("url"),
            format!("venue {} has no public endpoint: set url", venue.name()),
        )),
        _ => {}
    }
    match (&f.rest_url, venue.history()) {
        (Some(url), Some(_)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            errors.push(FieldError::new(
                field("rest_url"),
                format!(
                    "must be http:// or https:// (got {:?})",
                    crate::redact::redact_url(url)
                ),
            ))
        }
        (Some(_), None) => errors.push(FieldError::new(
            field("rest_url"),
            format!("venue {} keeps no trade history to ask", venue.name()),
        )),
        _ => {}
    }
    if f.backfill == Some(true) && venue.history().is_none() {
        errors.push(FieldError::new(
            field("backfill"),
            format!(
                "venue {} keeps no trade history: its gaps are recorded, not filled",
                venue.name()
            ),
        ));
    }
    if f.symbols.is_empty() && venue.needs_symbols() {
        errors.push(FieldError::new(
            field("symbols"),
            "must name at least one instrument",
        ));
    }
    // The venue-only fields: refused on another venue's feed.
    for (option, set) in [("ltt_basis", f.ltt_basis.is_some())] {
        if set && !venue.feed_options().contains(&option) {
            let takers: Vec<_> = venues
                .iter()
                .filter(|v| v.feed_options().contains(&option))
                .map(|v| v.name())
                .collect();
            errors.push(FieldError::new(
                field(option),
                format!(
                    "only {} feeds take {option} (this feed's venue is {})",
                    takers.join(" or "),
                    venue.name()
                ),
            ));
        }
    }
    for (sub, message) in venue.check_feed(f) {
        errors.push(FieldError::new(field(&sub), message));
    }
    // A repeated entry would subscribe twice to one stream.
    for (list, entries) in [("symbols", &f.symbols), ("channels", &f.channels)] {
        for (j, e) in entries.iter().enumerate() {
            if let Some(k) = entries[..j].iter().position(|o| o == e) {
                errors.push(FieldError::new(
                    format!("feeds[{i}].{list}[{j}]"),
                    format!("{e:?} repeats {list}[{k}]"),
                ));
            }
        }
    }
    let known = venue.known_channels();
    for (j, c) in f.channels.iter().enumerate() {
        if !known.contains(&c.as_str()) {
            let msg = if known.is_empty() {
                format!("venue {} takes no channels (got {c:?})", venue.name())
            } else {
                format!(
                    "unknown channel {c:?} for {} (known: {})",
                    venue.name(),
                    known.join(", ")
                )
            };
            errors.push(FieldError::new(format!("feeds[{i}].channels[{j}]"), msg));
        }
    }
    errors
}
