//! tickwire's own feed: normalized tick JSON (the `--format ticks` line
//! format, see `normalized`), one tick per text frame, from in-house
//! producers. It has no public endpoint and no channels; a feed that names
//! symbols asks for them with `{"op":"subscribe","symbols":[..]}`.

use tickwire_core::{
    Event, FeedConfig, Frame, FrameDecoder, Instrument, InstrumentCache, SubscriptionOp,
    TradeIdentity, Venue,
};

use super::{unexpected_binary, FrameError};

/// tickwire's normalized tick JSON over WebSocket.
pub struct Tickwire;

impl Venue for Tickwire {
    fn name(&self) -> &'static str {
        "tickwire"
    }

    fn default_url(&self) -> Option<&'static str> {
        None
    }

    fn default_channels(&self) -> &'static [&'static str] {
        &[]
    }

    fn known_channels(&self) -> &'static [&'static str] {
        &[]
    }

    /// A producer may send every instrument it has, unasked.
    fn needs_symbols(&self) -> bool {
        false
    }

    /// Each tick names its exchange: only the frames tell.
    fn instruments(&self, _feed: &FeedConfig) -> Vec<Instrument> {
        Vec::new()
    }

    fn subscription(
        &self,
        feed: &FeedConfig,
        _channels: &[String],
        op: SubscriptionOp,
    ) -> Vec<String> {
        if feed.symbols.is_empty() {
            return Vec::new();
        }
        vec![serde_json::json!({"op": op.verb(), "symbols": feed.symbols}).to_string()]
    }

    fn trade_identity(&self) -> TradeIdentity {
        TradeIdentity::AsSent
    }

    fn error_types(&self) -> &'static [&'static str] {
        &["json", "bad_value", "invalid_tick", "unexpected_binary"]
    }

    fn decoder(&self, _feed: Option<&FeedConfig>, _feeds: &[FeedConfig]) -> Box<dyn FrameDecoder> {
        Box::new(TickwireFrames::default())
    }
}

/// One feed's decoder, with its reusable buffers.
#[derive(Default)]
struct TickwireFrames {
    scratch: Vec<u8>,
    buffers: Option<simd_json::Buffers>,
}

impl FrameDecoder for TickwireFrames {
    fn decode(
        &mut self,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let Frame::Text(text) = frame else {
            return Err(unexpected_binary("tickwire"));
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_feed_asks_for_its_symbols_and_an_open_one_for_nothing() {
        let mut feed = crate::venues::test_feed("tickwire", &["AAA"], &[]);
        assert_eq!(
            Tickwire.subscription(&feed, &[], SubscriptionOp::Subscribe),
            [r#"{"op":"subscribe","symbols":["AAA"]}"#]
        );
        assert_eq!(
            Tickwire.subscription(&feed, &[], SubscriptionOp::Unsubscribe),
            [r#"{"op":"unsubscribe","symbols":["AAA"]}"#]
        );
        feed.symbols.clear();
        assert!(Tickwire
            .subscription(&feed, &[], SubscriptionOp::Subscribe)
            .is_empty());
    }
}
