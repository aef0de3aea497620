//! Dhan HQ v2 live market feed: NSE, BSE and MCX instruments by segment and
//! security id, binary packets ([`packets`]), credentials from the
//! environment.

pub mod packets;

pub use packets::DhanDecoder;
use tickwire_core::{
    Event, FeedConfig, Frame, FrameDecoder, Instrument, InstrumentCache, SubscriptionOp,
    TradeIdentity, Venue,
};

use super::FrameError;

/// Environment variables holding Dhan's credentials (never logged).
pub const DHAN_TOKEN_ENV: &str = "DHAN_ACCESS_TOKEN";
pub const DHAN_CLIENT_ENV: &str = "DHAN_CLIENT_ID";

/// Dhan's exchange segments: header code, exchange, segment name.
const SEGMENTS: [(u8, &str, &str); 8] = [
    (0, "IDX", "IDX_I"),
    (1, "NSE", "NSE_EQ"),
    (2, "NSE", "NSE_FNO"),
    (3, "NSE", "NSE_CURRENCY"),
    (4, "BSE", "BSE_EQ"),
    (5, "MCX", "MCX_COMM"),
    (7, "BSE", "BSE_CURRENCY"),
    (8, "BSE", "BSE_FNO"),
];

/// The exchange and segment name of a header's segment code.
pub fn segment_name(code: u8) -> Option<(&'static str, &'static str)> {
    SEGMENTS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, exchange, segment)| (*exchange, *segment))
}

/// Instruments a subscription message carries at most.
const INSTRUMENTS_PER_MESSAGE: usize = 100;

/// Dhan HQ's live market feed.
pub struct Dhan;

impl Venue for Dhan {
    fn name(&self) -> &'static str {
        "dhan"
    }

    fn default_url(&self) -> Option<&'static str> {
        Some("wss://api-feed.dhan.co?version=2&authType=2")
    }

    fn default_channels(&self) -> &'static [&'static str] {
        &["full"]
    }

    fn known_channels(&self) -> &'static [&'static str] {
        &["ticker", "quote", "full"]
    }

    fn feed_options(&self) -> &'static [&'static str] {
        &["ltt_basis"]
    }

    /// `ltt_basis` a known basis; every symbol a `SEGMENT:SECURITY_ID[=SYMBOL]`.
    fn check_feed(&self, feed: &FeedConfig) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if let Some(basis) = &feed.ltt_basis {
            if LttBasis::from_name(basis).is_none() {
                let known: Vec<_> = LttBasis::ALL.iter().map(|b| b.name()).collect();
                errors.push((
                    "ltt_basis".to_string(),
                    format!("unknown ltt_basis {basis:?} (known: {})", known.join(", ")),
                ));
            }
        }
        for (j, s) in feed.symbols.iter().enumerate() {
            if let Err(e) = DhanInstrument::parse(s) {
                errors.push((format!("symbols[{j}]"), e));
            }
        }
        errors
    }

    fn instruments(&self, feed: &FeedConfig) -> Vec<Instrument> {
        entries(feed)
            .map(|d| {
                // IDX_I, NSE_EQ, BSE_FNO, MCX_COMM: the exchange leads the segment.
                let exchange = d.segment.split('_').next().unwrap_or(&d.segment);
                Instrument {
                    exchange: exchange.into(),
                    segment: Some(d.segment.as_str().into()),
                    symbol: d.symbol.as_str().into(),
                    security_id: Some(d.security_id.to_string().into()),
                }
            })
            .collect()
    }

    /// Dhan's credentials come from the environment when its public endpoint
    /// is used, and are added to a custom URL when they are set.
    fn connect_url(&self, feed: &FeedConfig, url: &str) -> Result<String, String> {
        let var = |name| std::env::var(name).ok().filter(|s| !s.is_empty());
        match (var(DHAN_TOKEN_ENV), var(DHAN_CLIENT_ENV)) {
            (Some(token), Some(client)) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Ok(format!("{url}{sep}token={token}&clientId={client}"))
            }
            _ if feed.url.is_none() => Err(format!(
                "set {DHAN_TOKEN_ENV} and {DHAN_CLIENT_ENV} for Dhan's live feed"
            )),
            _ => Ok(url.to_string()),
        }
    }

    /// `{"RequestCode":15,"InstrumentCount":n,"InstrumentList":[..]}` per
    /// channel and hundred instruments; the unsubscribe codes are the
    /// subscribe codes plus one (as Dhan's Python SDK sends them).
    fn subscription(
        &self,
        feed: &FeedConfig,
        channels: &[String],
        op: SubscriptionOp,
    ) -> Vec<String> {
        let listed: Vec<serde_json::Value> = entries(feed)
            .map(|i| {
                serde_json::json!({
                    "ExchangeSegment": i.segment,
                    "SecurityId": i.security_id.to_string(),
                })
            })
            .collect();
        let step = match op {
            SubscriptionOp::Subscribe => 0,
            SubscriptionOp::Unsubscribe => 1,
        };
        channels
            .iter()
            .filter_map(|c| match c.as_str() {
                "ticker" => Some(15),
                "quote" => Some(17),
                "full" => Some(21),
                _ => None,
            })
            .flat_map(|code| {
                listed
                    .chunks(INSTRUMENTS_PER_MESSAGE)
                    .map(move |chunk| {
                        serde_json::json!({
                            "RequestCode": code + step,
                            "InstrumentCount": chunk.len(),
                            "InstrumentList": chunk,
                        })
                        .to_string()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn trade_identity(&self) -> TradeIdentity {
        TradeIdentity::DayVolume
    }

    fn error_types(&self) -> &'static [&'static str] {
        &[
            "bad_length",
            "bad_value",
            "invalid_tick",
            "unknown_message",
            "unexpected_text",
            "implausible_time",
        ]
    }

    /// A configured feed's decoder reads LTT on its basis and names its own
    /// instruments; a recording's unnamed feed reads on the default basis
    /// and knows every configured Dhan feed's names.
    fn decoder(&self, feed: Option<&FeedConfig>, feeds: &[FeedConfig]) -> Box<dyn FrameDecoder> {
        let mut decoder = DhanDecoder::new(feed.map(ltt_basis).unwrap_or_default());
        let named: Vec<&FeedConfig> = match feed {
            Some(f) => vec![f],
            None => feeds.iter().filter(|f| f.venue == self.name()).collect(),
        };
        for i in named.into_iter().flat_map(entries) {
            decoder.name(i.segment_code(), i.security_id, &i.symbol);
        }
        Box::new(DhanFrames(decoder))
    }
}

/// One feed's decoder.
struct DhanFrames(DhanDecoder);

impl FrameDecoder for DhanFrames {
    fn decode(
        &mut self,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        match frame {
            Frame::Binary(bytes) => self.0.decode("dhan", bytes, recv_ns, instruments, out),
            Frame::Text(_) => Err(FrameError::new(
                "unexpected_text",
                "the Dhan feed sends binary packets; got a text frame",
            )),
        }
    }
}

/// A Dhan feed's instruments (validated config: every entry parses).
fn entries(feed: &FeedConfig) -> impl Iterator<Item = DhanInstrument> + '_ {
    feed.symbols
        .iter()
        .filter_map(|s| DhanInstrument::parse(s).ok())
}

/// The LTT basis of a Dhan feed: as configured, else IST wall clock.
pub fn ltt_basis(feed: &FeedConfig) -> LttBasis {
    feed.ltt_basis
        .as_deref()
        .and_then(LttBasis::from_name)
        .unwrap_or_default()
}

/// What Dhan's LTT (last trade time, seconds) counts from.
///
/// Dhan's documentation calls it epoch seconds, but its values are the Indian
/// wall clock: Dhan's official Python SDK (dhanhq 2.3.0, `marketfeed.py`)
/// shows LTT by formatting it as a UTC time of day to print the market's
/// clock, and a third-party client found the value 19,800 s (05:30) ahead of
/// UTC. Read as a true epoch, every NSE trade after 10:00 IST would land
/// after 15:30 IST, outside the continuous phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LttBasis {
    /// IST wall-clock seconds: UTC epoch ms = (LTT - 19,800) * 1000.
    #[default]
    IstWallClock,
    /// A true UTC epoch: UTC epoch ms = LTT * 1000.
    Utc,
}

impl LttBasis {
    pub const ALL: [LttBasis; 2] = [LttBasis::IstWallClock, LttBasis::Utc];

    /// The name `ltt_basis` takes.
    pub fn name(self) -> &'static str {
        match self {
            LttBasis::IstWallClock => "ist",
            LttBasis::Utc => "utc",
        }
    }

    pub fn from_name(name: &str) -> Option<LttBasis> {
        LttBasis::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Seconds to subtract from an LTT to get UTC epoch seconds.
    pub fn offset_secs(self) -> i64 {
        match self {
            LttBasis::IstWallClock => 19_800,
            LttBasis::Utc => 0,
        }
    }
}

/// One Dhan subscription entry: `NSE_EQ:1333` or `NSE_EQ:1333=RELIANCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhanInstrument {
    pub segment: String,
    pub security_id: u32,
    /// The symbol its keys use; the security id when the entry names none.
    pub symbol: String,
}

impl DhanInstrument {
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (instrument, symbol) = match entry.split_once('=') {
            Some((i, s)) => (i, Some(s.trim())),
            None => (entry, None),
        };
        let Some((segment, id)) = instrument.split_once(':') else {
            return Err(format!(
                "{entry:?} is not SEGMENT:SECURITY_ID[=SYMBOL] (like NSE_EQ:1333=RELIANCE)"
            ));
        };
        if !SEGMENTS.iter().any(|(_, _, s)| *s == segment) {
            let known: Vec<_> = SEGMENTS.iter().map(|(_, _, s)| *s).collect();
            return Err(format!(
                "{entry:?}: unknown segment {segment:?} (known: {})",
                known.join(", ")
            ));
        }
        let security_id: u32 = id
            .trim()
            .parse()
            .map_err(|_| format!("{entry:?}: security id {id:?} is not a number"))?;
        if symbol.is_some_and(str::is_empty) {
            return Err(format!("{entry:?}: empty symbol after `=`"));
        }
        Ok(Self {
            segment: segment.to_string(),
            security_id,
            symbol: symbol.map_or_else(|| security_id.to_string(), str::to_string),
        })
    }

    /// The header code of the segment (parsed: it is known).
    pub fn segment_code(&self) -> u8 {
        SEGMENTS
            .iter()
            .find(|(_, _, s)| *s == self.segment)
            .map_or(u8::MAX, |(c, _, _)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(symbols: &[&str], channels: &[&str]) -> FeedConfig {
        crate::venues::test_feed("dhan", symbols, channels)
    }

    #[test]
    fn entries() {
        let i = DhanInstrument::parse("NSE_EQ:1333=RELIANCE").unwrap();
        assert_eq!(
            (i.segment.as_str(), i.security_id, i.symbol.as_str()),
            ("NSE_EQ", 1333, "RELIANCE")
        );
        assert_eq!(i.segment_code(), 1);
        assert_eq!(DhanInstrument::parse("NSE_FNO:42").unwrap().symbol, "42");
        for bad in ["1333", "NSE:1333", "NSE_EQ:x", "NSE_EQ:1="] {
            assert!(DhanInstrument::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subscriptions_per_channel_and_hundred_instruments() {
        let channels = ["quote".to_string()];
        let d = feed(&["NSE_EQ:1333=RELIANCE", "NSE_FNO:35001"], &["quote"]);
        let expected = |code: u32| {
            format!(
                r#"{{"InstrumentCount":2,"InstrumentList":[{{"ExchangeSegment":"NSE_EQ","SecurityId":"1333"}},{{"ExchangeSegment":"NSE_FNO","SecurityId":"35001"}}],"RequestCode":{code}}}"#
            )
        };
        assert_eq!(
            Dhan.subscription(&d, &channels, SubscriptionOp::Subscribe),
            [expected(17)]
        );
        assert_eq!(
            Dhan.subscription(&d, &channels, SubscriptionOp::Unsubscribe),
            [expected(18)]
        );
        let many: Vec<String> = (0..250).map(|i| format!("NSE_EQ:{i}")).collect();
        let many: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let d = feed(&many, &["full"]);
        let msgs = Dhan.subscription(&d, &["full".into()], SubscriptionOp::Subscribe);
        assert_eq!(msgs.len(), 3, "100 instruments a message");
        assert!(msgs[2].contains(r#""InstrumentCount":50"#));
    }
}
