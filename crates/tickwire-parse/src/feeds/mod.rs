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
