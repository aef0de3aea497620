//! Venue frame decoders. Each venue module holds the venue-native message
//! structs (documented with a sample payload) and their conversion into the
//! normalized [`Tick`](tickwire_core::Tick).

pub mod binance;
pub mod dhan;
pub mod okx;

use tickwire_core::{Event, InstrumentCache};

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

/// A quote side sent as text (`"25.3519"`): absent stays absent, anything but
/// a positive number is an error naming the field.
pub(crate) fn optional_price(key: &str, text: Option<&str>) -> Result<Option<f64>, FrameError> {
    match text {
        None => Ok(None),
        Some(text) => crate::num::decimal(text)
            .filter(|p| *p > 0.0)
            .map(Some)
            .ok_or_else(|| {
                FrameError::new("bad_number", format!("`{key}` is not a price: {text:?}"))
            }),
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

/// The venues tickwire can decode, by feed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    /// `binance` (spot) and `binance-futures` (USD-M): same trade messages.
    Binance,
    /// `okx`: OKX v5 public channels.
    Okx,
    /// `dhan`: Dhan's binary live market feed.
    Dhan,
}

impl Venue {
    /// The decoder for a feed name as it appears in recordings and config.
    pub fn of_feed(feed: &str) -> Option<Venue> {
        match feed {
            "binance" | "binance-futures" => Some(Venue::Binance),
            "okx" => Some(Venue::Okx),
            "dhan" => Some(Venue::Dhan),
            _ => None,
        }
    }
}

/// The decoders of one parser thread, each with its reusable buffers.
#[derive(Default)]
pub struct FeedDecoders {
    binance: binance::BinanceDecoder,
    okx: okx::OkxDecoder,
    dhan: dhan::DhanDecoder,
}

impl FeedDecoders {
    /// Decodes one frame of `feed`, pushing its events to `out`.
    pub fn decode(
        &mut self,
        feed: &str,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        match Venue::of_feed(feed) {
            Some(Venue::Binance) => match frame {
                Frame::Text(text) => self.binance.decode(feed, text, recv_ns, instruments, out),
                Frame::Binary(_) => Err(FrameError::new(
                    "unexpected_binary",
                    "binance sends text frames; got a binary frame",
                )),
            },
            Some(Venue::Okx) => match frame {
                Frame::Text(text) => self.okx.decode(feed, text, recv_ns, instruments, out),
                Frame::Binary(_) => Err(FrameError::new(
                    "unexpected_binary",
                    "okx sends text frames; got a binary frame",
                )),
            },
            Some(Venue::Dhan) => match frame {
                Frame::Binary(bytes) => self.dhan.decode(feed, bytes, recv_ns, instruments, out),
                Frame::Text(_) => Err(FrameError::new(
                    "unexpected_text",
                    "the Dhan feed sends binary packets; got a text frame",
                )),
            },
            None => Err(FrameError::new(
                "unknown_feed",
                format!(
                    "no decoder for feed {feed:?} (known: binance, binance-futures, okx, dhan)"
                ),
            )),
        }
    }
}
