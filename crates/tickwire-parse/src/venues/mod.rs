//! The venues tickwire reads, one module each: its wire format's types
//! (documented with a sample payload), its decoder into the normalized
//! [`Tick`](tickwire_core::Tick), its endpoints, subscription and keepalive,
//! all behind [`Venue`](tickwire_core::Venue). A new venue is a module here
//! and one line in [`VENUES`].

pub mod binance;
pub mod dhan;
pub mod okx;
pub mod tickwire;

use std::collections::HashMap;

use tickwire_core::{Dec, Event, FeedConfig, FeedVenue, FrameDecoder, InstrumentCache, Venues};
pub use tickwire_core::{Frame, FrameError};

/// Every venue tickwire can connect to and replay, by its config name.
pub static VENUES: Venues = Venues::new(&[
    FeedVenue::new(&binance::SPOT),
    FeedVenue::new(&binance::FUTURES),
    FeedVenue::new(&okx::Okx),
    FeedVenue::new(&dhan::Dhan),
    FeedVenue::new(&tickwire::Tickwire),
]);

/// What a text-only venue's decoder says of a binary frame.
pub(crate) fn unexpected_binary(exchange: &str) -> FrameError {
    FrameError::new(
        "unexpected_binary",
        format!("{exchange} sends text frames; got a binary frame"),
    )
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

/// The decoders of one parser thread: each configured feed's own, and one
/// per venue for a recording's feed the config does not name.
pub struct FeedDecoders {
    /// Each configured feed's venue and decoder, by feed name.
    own: HashMap<String, (FeedVenue, Box<dyn FrameDecoder>)>,
    /// Per venue name: the decoder of frames of feeds the config does not
    /// name (a recording's).
    other: HashMap<&'static str, Box<dyn FrameDecoder>>,
}

impl Default for FeedDecoders {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl FeedDecoders {
    /// Decoders that know the configured feeds: a recording names its feed,
    /// and the feed's venue and what its decoder learns (Dhan's symbols) come
    /// from here.
    pub fn new(feeds: &[FeedConfig]) -> Self {
        let own = feeds
            .iter()
            .filter_map(|f| {
                let venue = VENUES.of(f)?;
                Some((f.name.clone(), (venue, venue.decoder(Some(f), feeds))))
            })
            .collect();
        let other = VENUES
            .iter()
            .map(|v| (v.name(), v.decoder(None, feeds)))
            .collect();
        Self { own, other }
    }

    /// Whether `feed` is a configured feed's name or a venue's: only such a
    /// name may name a recorded line's dead-letter stream.
    pub fn knows(&self, feed: &str) -> bool {
        self.own.contains_key(feed) || VENUES.get(feed).is_some()
    }

    /// Decodes one frame of `feed`, pushing its events to `out`. Ticks are on
    /// the venue's exchange (`binance-futures`, `okx`; Dhan: the segment's).
    /// The venue is as named (`venue`, from a recording line), else as
    /// configured, else the feed's own name when that is a venue's; a
    /// configured feed's frames of its own venue go to its own decoder (a
    /// live frame: one lookup).
    pub fn decode(
        &mut self,
        feed: &str,
        venue: Option<&str>,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        self.with_decoder(feed, venue, |d| d.decode(frame, recv_ns, instruments, out))
    }

    /// Decodes one page of `feed`'s venue history for the gap `key` names
    /// ([`FrameDecoder::decode_history`]), the decoder found as for a frame.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_history(
        &mut self,
        feed: &str,
        venue: Option<&str>,
        key: &tickwire_core::HistoryKey,
        body: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        self.with_decoder(feed, venue, |d| {
            d.decode_history(key, body, recv_ns, instruments, out)
        })
    }

    /// Runs `f` on the decoder of `feed` (see [`FeedDecoders::decode`]).
    fn with_decoder(
        &mut self,
        feed: &str,
        venue: Option<&str>,
        f: impl FnOnce(&mut dyn FrameDecoder) -> Result<(), FrameError>,
    ) -> Result<(), FrameError> {
        if let Some((own, d)) = self.own.get_mut(feed) {
            if venue.is_none_or(|n| n == own.name()) {
                return f(d.as_mut());
            }
        }
        let named = venue.unwrap_or(feed);
        // Every registered venue has a decoder here (built in `new`).
        let Some(d) = self.other.get_mut(named) else {
            return Err(FrameError::new(
                "unknown_feed",
                format!(
                    "no decoder for feed {feed:?} (venue {named:?}; known: {})",
                    VENUES.names().join(", ")
                ),
            ));
        };
        f(d.as_mut())
    }
}

/// A feed of `venue` as a test writes it (no url: the venue's own).
#[cfg(test)]
pub(crate) fn test_feed(venue: &str, symbols: &[&str], channels: &[&str]) -> FeedConfig {
    FeedConfig {
        name: "f".into(),
        venue: venue.into(),
        url: None,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        channels: channels.iter().map(|s| s.to_string()).collect(),
        ltt_basis: None,
        rest_url: None,
        backfill: None,
    }
}
