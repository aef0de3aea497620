//! Venue frame decoders. Each venue module holds the venue-native message
//! structs (documented with a sample payload) and their conversion into the
//! normalized [`Tick`](tickwire_core::Tick).

pub mod binance;
pub mod dhan;
pub mod okx;

use std::collections::HashMap;

use tickwire_core::{Dec, Event, FeedConfig, FeedVenue, InstrumentCache};

/// One WebSocket frame's payload.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// Why a frame was rejected: a low-cardinality class and a readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub error_type: &'static str,
    pub message: String,
}

impl FrameError {
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
}

/// A quote side sent as text (`"25.3519"`): absent stays absent, and so does
/// a zero price (`"0.00000000"`, `"0"`: venues send it for a side with no
/// order, as an empty book); anything else but a positive number is an error
/// naming the field.
pub(crate) fn optional_price(key: &str, text: Option<&str>) -> Result<Option<Dec>, FrameError> {
    let Some(text) = text else {
        return Ok(None);
    };
    match crate::num::decimal(text) {
        Some(p) if p.is_positive() => Ok(Some(p)),
        Some(p) if p.is_zero() => Ok(None),
        _ => Err(FrameError::new(
            "bad_number",
            format!("`{key}` is not a price: {text:?}"),
        )),
    }
}

/// Reusable simd-json buffers for one decoder's text frames.
pub struct JsonScratch {
    buf: Vec<u8>,
    buffers: simd_json::Buffers,
}

impl Default for JsonScratch {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(1024),
            buffers: simd_json::Buffers::new(1024),
        }
    }
}

impl JsonScratch {
    /// Parses a text frame that must be a JSON object. simd-json rewrites its
    /// input, so it parses a copy: the caller's bytes stay as received.
    pub fn object(&mut self, text: &[u8]) -> Result<simd_json::BorrowedValue<'_>, FrameError> {
        use simd_json::prelude::*;
        self.buf.clear();
        self.buf.extend_from_slice(text);
        let root = simd_json::to_borrowed_value_with_buffers(&mut self.buf, &mut self.buffers)
            .map_err(|e| FrameError::new("json", format!("frame is not valid JSON: {e}")))?;
        if root.as_object().is_none() {
            return Err(FrameError::new(
                "unknown_message",
                "frame is not a JSON object",
            ));
        }
        Ok(root)
    }
}

/// The decoders of one parser thread, each with its reusable buffers, and
/// what the configured feeds say about themselves (venue, Dhan symbol map).
#[derive(Default)]
pub struct FeedDecoders {
    binance: binance::BinanceDecoder,
    okx: okx::OkxDecoder,
    /// Each configured Dhan feed's decoder (its LTT basis, its state).
    dhan: HashMap<String, dhan::DhanDecoder>,
    /// Dhan frames of a feed the config does not name (a recording's).
    dhan_other: dhan::DhanDecoder,
    tickwire: TickwireFrames,
    /// Venue of each configured feed, by feed name.
    venues: HashMap<String, FeedVenue>,
}

/// tickwire's normalized tick JSON, one tick per text frame.
#[derive(Default)]
struct TickwireFrames {
    scratch: Vec<u8>,
    buffers: Option<simd_json::Buffers>,
}

impl FeedDecoders {
    /// Decoders that know the configured feeds: a recording names its feed,
    /// and the feed's venue and Dhan symbols come from here.
    pub fn new(feeds: &[FeedConfig]) -> Self {
        let mut d = FeedDecoders::default();
        for f in feeds {
            let Some(venue) = f.venue() else { continue };
            d.venues.insert(f.name.clone(), venue);
            if venue == FeedVenue::Dhan {
                let mut own = dhan::DhanDecoder::new(f.ltt_basis());
                for i in f.dhan_instruments() {
                    own.name(i.segment_code(), i.security_id, &i.symbol);
                    d.dhan_other
                        .name(i.segment_code(), i.security_id, &i.symbol);
                }
                d.dhan.insert(f.name.clone(), own);
            }
        }
        d
    }

    /// Whether `feed` is a configured feed's name or a venue's: only such a
    /// name may name a recorded line's dead-letter stream.
    pub fn knows(&self, feed: &str) -> bool {
        self.venues.contains_key(feed) || FeedVenue::from_name(feed).is_some()
    }

    /// The venue of `feed`: as named (`venue`, from a recording line), else as
    /// configured, else the feed's own name when that is a venue's.
    pub fn venue_of(&self, feed: &str, venue: Option<&str>) -> Option<FeedVenue> {
        match venue {
            Some(v) => FeedVenue::from_name(v),
            None => self
                .venues
                .get(feed)
                .copied()
                .or_else(|| FeedVenue::from_name(feed)),
        }
    }

    /// Decodes one frame of `feed`, pushing its events to `out`. Ticks are on
    /// the venue's exchange (`binance-futures`, `okx`; Dhan: the segment's).
    pub fn decode(
        &mut self,
        feed: &str,
        venue: Option<&str>,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let Some(v) = self.venue_of(feed, venue) else {
            let known: Vec<_> = FeedVenue::ALL.iter().map(|v| v.name()).collect();
            return Err(FrameError::new(
                "unknown_feed",
                format!(
                    "no decoder for feed {feed:?} (venue {:?}; known: {})",
                    venue.unwrap_or(feed),
                    known.join(", ")
                ),
            ));
        };
        let exchange = v.name();
        match (v, frame) {
            (FeedVenue::Binance | FeedVenue::BinanceFutures, Frame::Text(text)) => self
                .binance
                .decode(exchange, text, recv_ns, instruments, out),
            (FeedVenue::Okx, Frame::Text(text)) => {
                self.okx.decode(exchange, text, recv_ns, instruments, out)
            }
            (FeedVenue::Dhan, Frame::Binary(bytes)) => {
                let decoder = match self.dhan.get_mut(feed) {
                    Some(d) => d,
                    None => &mut self.dhan_other,
                };
                decoder.decode(exchange, bytes, recv_ns, instruments, out)
            }
            (FeedVenue::Tickwire, Frame::Text(text)) => {
                self.tickwire.decode(text, recv_ns, instruments, out)
            }
            (FeedVenue::Dhan, Frame::Text(_)) => Err(FrameError::new(
                "unexpected_text",
                "the Dhan feed sends binary packets; got a text frame",
            )),
            (_, Frame::Binary(_)) => Err(FrameError::new(
                "unexpected_binary",
                format!("{exchange} sends text frames; got a binary frame"),
            )),
        }
    }
}

impl TickwireFrames {
    fn decode(
        &mut self,
        text: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let buffers = self
            .buffers
            .get_or_insert_with(|| simd_json::Buffers::new(512));
        match crate::normalized::decode(text, &mut self.scratch, buffers, instruments, 0) {
            Event::Tick(mut tick) => {
                if tick.recv_ts_ns == tick.exchange_ts_ns {
                    // The producer did not say when it received it: we just did.
                    tick.recv_ts_ns = recv_ns;
                }
                out.push(Event::Tick(tick));
                Ok(())
            }
            Event::Rejected(r) => Err(FrameError::new(r.error_type, r.error)),
            other => {
                out.push(other);
                Ok(())
            }
        }
    }
}
