//! Binance spot and USD-M futures market streams.
//!
//! Frames arrive either bare or in the combined-stream envelope
//! `{"stream":"btcusdt@trade","data":{..}}`. Numbers are JSON strings, times
//! epoch milliseconds. Trades (`trade`, `aggTrade`) become ticks, `bookTicker`
//! quotes; every other valid message (depth, kline, 24hr tickers,
//! subscription replies) is skipped, not rejected.

use simd_json::prelude::*;
use simd_json::BorrowedValue;
use tickwire_core::{
    Dec, Event, FeedConfig, Frame, FrameDecoder, History, HistoryKey, IdSequence, Instrument,
    InstrumentCache, PageAsk, PageRequest, Quote, SubscriptionOp, Tick, TradeIdentity, Venue,
};

use super::{optional_price, unexpected_binary, FrameError, JsonScratch};
use crate::num::decimal;

/// Binance spot (`binance`) or USD-M futures (`binance-futures`): one wire
/// format, two endpoints, two exchanges.
pub struct Binance {
    name: &'static str,
    url: &'static str,
    history: BinanceHistory,
}

/// Binance spot combined streams.
pub const SPOT: Binance = Binance {
    name: "binance",
    url: "wss://stream.binance.com:9443/stream",
    history: BinanceHistory {
        rest_url: "https://api.binance.com",
        weight_per_minute: 6_000,
        aggregates: Endpoint {
            path: "/api/v3/aggTrades",
            weight: 4,
            limit: 1000,
            key: false,
        },
        trades: Endpoint {
            path: "/api/v3/historicalTrades",
            weight: 25,
            limit: 1000,
            key: false,
        },
    },
};

/// Binance USD-M futures combined streams.
pub const FUTURES: Binance = Binance {
    name: "binance-futures",
    url: "wss://fstream.binance.com/stream",
    history: BinanceHistory {
        rest_url: "https://fapi.binance.com",
        weight_per_minute: 2_400,
        aggregates: Endpoint {
            path: "/fapi/v1/aggTrades",
            weight: 20,
            limit: 1000,
            key: false,
        },
        // Served only with an API key (`X-MBX-APIKEY`).
        trades: Endpoint {
            path: "/fapi/v1/historicalTrades",
            weight: 20,
            limit: 500,
            key: true,
        },
    },
};

/// The trade history of one Binance market, by id (`fromId`, inclusive).
pub struct BinanceHistory {
    rest_url: &'static str,
    /// The IP's request weight per minute (`REQUEST_WEIGHT` in exchangeInfo).
    weight_per_minute: u32,
    /// `aggTrades`, for the aggregate sequence (`a`).
    aggregates: Endpoint,
    /// `historicalTrades`, for the trade sequence (`t`).
    trades: Endpoint,
}

struct Endpoint {
    path: &'static str,
    weight: u32,
    /// The most trades one answer gives.
    limit: u64,
    /// Needs an API key.
    key: bool,
}

impl History for BinanceHistory {
    fn default_rest_url(&self) -> &'static str {
        self.rest_url
    }

    /// `{path}?symbol=BTCUSDT&fromId={id}&limit={n}`: the `n` trades from
    /// `fromId` on, `fromId` as far below `below` as one answer reaches.
    fn page(&self, ask: &PageAsk<'_>) -> Result<PageRequest, &'static str> {
        let e = match ask.sequence {
            IdSequence::Aggregate => &self.aggregates,
            IdSequence::Trade => &self.trades,
        };
        if e.key && !ask.api_key {
            return Err("no_api_key");
        }
        let from = ask.below.saturating_sub(e.limit).max(ask.from_id);
        let limit = ask.below.saturating_sub(from).clamp(1, e.limit);
        Ok(PageRequest {
            path_and_query: format!(
                "{}?symbol={}&fromId={from}&limit={limit}",
                e.path, ask.symbol
            ),
            weight: e.weight,
            key_header: e.key.then_some("X-MBX-APIKEY"),
        })
    }

    fn weight_per_minute(&self) -> u32 {
        self.weight_per_minute
    }

    fn page_trades(&self, body: &[u8]) -> Result<Vec<(u64, i64)>, FrameError> {
        Ok(rest_trades(body)?
            .iter()
            .filter_map(|t| Some((t.id()?, t.time()?)))
            .collect())
    }
}

/// One trade of a history answer: `aggTrades`
/// `{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}`
/// or `historicalTrades`
/// `{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}`.
#[derive(serde::Deserialize)]
struct RestTrade<'a> {
    a: Option<u64>,
    id: Option<u64>,
    #[serde(borrow)]
    p: Option<&'a str>,
    #[serde(borrow)]
    price: Option<&'a str>,
    #[serde(borrow)]
    q: Option<&'a str>,
    #[serde(borrow)]
    qty: Option<&'a str>,
    #[serde(rename = "T")]
    t: Option<i64>,
    time: Option<i64>,
}

impl RestTrade<'_> {
    fn id(&self) -> Option<u64> {
        self.a.or(self.id)
    }

    fn time(&self) -> Option<i64> {
        self.t.or(self.time)
    }
}

/// The trades of a history answer (a JSON array).
fn rest_trades(body: &[u8]) -> Result<Vec<RestTrade<'_>>, FrameError> {
    serde_json::from_slice(body).map_err(|e| {
        FrameError::new(
            "json",
            format!("history answer is not a list of trades: {e}"),
        )
    })
}

/// Binance takes up to 1024 streams a connection; messages stay small.
const STREAMS_PER_MESSAGE: usize = 200;

impl Venue for Binance {
    fn name(&self) -> &'static str {
        self.name
    }

    fn default_url(&self) -> Option<&'static str> {
        Some(self.url)
    }

    fn default_channels(&self) -> &'static [&'static str] {
        &["trade"]
    }

    fn known_channels(&self) -> &'static [&'static str] {
        &["trade", "aggTrade", "bookTicker"]
    }

    fn instruments(&self, feed: &FeedConfig) -> Vec<Instrument> {
        feed.symbols
            .iter()
            .map(|s| Instrument::new(self.name, &s.trim().to_ascii_uppercase()))
            .collect()
    }

    /// `{"method":"SUBSCRIBE","params":["btcusdt@trade",..],"id":1}`.
    fn subscription(
        &self,
        feed: &FeedConfig,
        channels: &[String],
        op: SubscriptionOp,
    ) -> Vec<String> {
        let method = op.verb().to_ascii_uppercase();
        let streams: Vec<String> = feed
            .symbols
            .iter()
            .flat_map(|s| {
                let s = s.to_ascii_lowercase();
                channels.iter().map(move |c| format!("{s}@{c}"))
            })
            .collect();
        streams
            .chunks(STREAMS_PER_MESSAGE)
            .enumerate()
            .map(|(i, chunk)| {
                serde_json::json!({"method": method, "params": chunk, "id": i + 1}).to_string()
            })
            .collect()
    }

    fn trade_identity(&self) -> TradeIdentity {
        TradeIdentity::Consecutive
    }

    fn history(&self) -> Option<&dyn History> {
        Some(&self.history)
    }

    fn error_types(&self) -> &'static [&'static str] {
        &[
            "json",
            "missing_field",
            "bad_number",
            "invalid_tick",
            "unknown_message",
            "unexpected_binary",
            "implausible_time",
        ]
    }

    fn decoder(&self, _feed: Option<&FeedConfig>, _feeds: &[FeedConfig]) -> Box<dyn FrameDecoder> {
        Box::new(BinanceFrames {
            exchange: self.name,
            decoder: BinanceDecoder::default(),
        })
    }
}

/// One feed's decoder: its exchange and buffers.
struct BinanceFrames {
    exchange: &'static str,
    decoder: BinanceDecoder,
}

impl FrameDecoder for BinanceFrames {
    fn decode(
        &mut self,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        match frame {
            Frame::Text(text) => {
                self.decoder
                    .decode(self.exchange, text, recv_ns, instruments, out)
            }
            Frame::Binary(_) => Err(unexpected_binary(self.exchange)),
        }
    }

    fn decode_history(
        &mut self,
        key: &HistoryKey,
        body: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let mut trades = rest_trades(body)?;
        trades.retain(|t| {
            t.id()
                .is_some_and(|id| (key.from_id..=key.to_id).contains(&id))
        });
        trades.sort_by_key(RestTrade::id);
        for t in trades {
            let missing =
                |name: &str| FrameError::new("missing_field", format!("missing `{name}`"));
            let price = t.p.or(t.price).ok_or_else(|| missing("p"))?;
            let qty = t.q.or(t.qty).ok_or_else(|| missing("q"))?;
            let trade = BinanceTrade {
                symbol: &key.symbol,
                id: t.id().unwrap_or_default(),
                aggregate: key.sequence == IdSequence::Aggregate,
                price: decimal(price).ok_or_else(|| {
                    FrameError::new("bad_number", format!("price is not a number: {price:?}"))
                })?,
                qty: decimal(qty).ok_or_else(|| {
                    FrameError::new("bad_number", format!("quantity is not a number: {qty:?}"))
                })?,
                trade_time_ms: t
                    .time()
                    .ok_or_else(|| FrameError::new("missing_field", "missing `T`"))?,
                event_time_ms: 0,
                buyer_is_maker: false,
            };
            let mut tick = trade.to_tick(self.exchange, recv_ns, instruments);
            tick.fills_gap = Some(key.gap);
            tick.validate()
                .map_err(|e| FrameError::new("invalid_tick", e))?;
            out.push(Event::Tick(tick));
        }
        Ok(())
    }
}

/// A `trade` or `aggTrade` event, as Binance sends it.
///
/// `trade` (one taker order against one maker order):
/// ```json
/// {"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}
/// ```
/// `aggTrade` (fills of one taker order at one price; futures aggregate per 100 ms):
/// ```json
/// {"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BinanceTrade<'a> {
    /// `s`, upper case (`BTCUSDT`).
    pub symbol: &'a str,
    /// `t` for trade, `a` for aggTrade.
    pub id: u64,
    /// An aggTrade (its id is of the aggregate sequence).
    pub aggregate: bool,
    /// `p`
    pub price: Dec,
    /// `q`
    pub qty: Dec,
    /// `T`: trade time, epoch ms.
    pub trade_time_ms: i64,
    /// `E`: event time, epoch ms.
    pub event_time_ms: i64,
    /// `m`: the buyer is the maker (the taker sold).
    pub buyer_is_maker: bool,
}

impl<'a> BinanceTrade<'a> {
    /// Reads the fields of a trade or aggTrade event; `id_field` is `t` or `a`.
    fn from_value(v: &'a BorrowedValue<'a>, id_field: &str) -> Result<Self, FrameError> {
        let s = |k: &str| {
            v.get_str(k).ok_or_else(|| {
                FrameError::new("missing_field", format!("missing string field `{k}`"))
            })
        };
        let n = |k: &str| {
            v.get_i64(k).ok_or_else(|| {
                FrameError::new("missing_field", format!("missing integer field `{k}`"))
            })
        };
        let price = s("p")?;
        let qty = s("q")?;
        Ok(Self {
            symbol: s("s")?,
            id: v.get_u64(id_field).ok_or_else(|| {
                FrameError::new(
                    "missing_field",
                    format!("missing integer field `{id_field}`"),
                )
            })?,
            price: decimal(price).ok_or_else(|| {
                FrameError::new("bad_number", format!("`p` is not a number: {price:?}"))
            })?,
            qty: decimal(qty).ok_or_else(|| {
                FrameError::new("bad_number", format!("`q` is not a number: {qty:?}"))
            })?,
            aggregate: id_field == "a",
            trade_time_ms: n("T")?,
            event_time_ms: v.get_i64("E").unwrap_or(0),
            buyer_is_maker: v.get_bool("m").unwrap_or(false),
        })
    }

    /// The normalized tick, on the exchange named by the feed.
    pub fn to_tick(&self, exchange: &str, recv_ns: i64, instruments: &mut InstrumentCache) -> Tick {
        let mut tick = Tick::trade(
            instruments.get(exchange, self.symbol, None, None),
            self.trade_time_ms.saturating_mul(1_000_000),
            recv_ns,
            self.price,
            self.qty,
        );
        tick.trade_id = Some(if self.aggregate {
            tickwire_core::TradeId::aggregate(self.id)
        } else {
            tickwire_core::TradeId::trade(self.id)
        });
        tick
    }
}

/// A `bookTicker` update: best bid and ask, a quote for the last-price hash.
///
/// Spot (no event type or time; the receive time stands in):
/// ```json
/// {"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}
/// ```
/// USD-M futures add `e`, `E` and the transaction time `T`.
fn book_ticker(
    feed: &str,
    v: &BorrowedValue<'_>,
    recv_ns: i64,
    instruments: &mut InstrumentCache,
    out: &mut Vec<Event>,
) -> Result<(), FrameError> {
    let symbol = v
        .get_str("s")
        .ok_or_else(|| FrameError::new("missing_field", "missing string field `s`"))?;
    let side = |k: &str| optional_price(k, v.get_str(k));
    let exchange_ts_ns = v
        .get_i64("T")
        .map_or(recv_ns, |ms| ms.saturating_mul(1_000_000));
    let (bid, ask) = (side("b")?, side("a")?);
    if bid.is_none() && ask.is_none() {
        // Null or zero `b` and `a` (an empty book): nothing to write,
        // skipped rather than an empty HSET that Redis refuses.
        out.push(Event::Skipped { feed: feed.into() });
        return Ok(());
    }
    out.push(Event::Quote(Quote {
        instrument: instruments.get(feed, symbol, None, None),
        exchange_ts_ns,
        recv_ts_ns: recv_ns,
        bid,
        ask,
    }));
    Ok(())
}

/// Decodes Binance frames with one reusable simd-json buffer set.
#[derive(Default)]
pub struct BinanceDecoder {
    json: JsonScratch,
}

impl BinanceDecoder {
    /// Decodes one text frame of `feed` (`binance` or `binance-futures`).
    pub fn decode(
        &mut self,
        feed: &str,
        text: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let root = self.json.object(text)?;
        // Combined streams wrap the event: {"stream":"..","data":{..}}.
        let event = match (root.get("stream"), root.get("data")) {
            (Some(_), Some(data)) => data,
            _ => &root,
        };
        if event.as_object().is_none() {
            return Err(FrameError::new(
                "unknown_message",
                "`data` is not a JSON object",
            ));
        }
        let trade = match event.get_str("e") {
            Some("trade") => BinanceTrade::from_value(event, "t")?,
            Some("aggTrade") => BinanceTrade::from_value(event, "a")?,
            Some("bookTicker") => return book_ticker(feed, event, recv_ns, instruments, out),
            Some(_) => {
                out.push(Event::Skipped { feed: feed.into() });
                return Ok(());
            }
            None => {
                // Spot bookTicker has no `e`: `u`, `s`, `b`, `a` say what it is.
                let book = ["u", "s", "b", "a"].iter().all(|k| event.contains_key(*k));
                if book {
                    return book_ticker(feed, event, recv_ns, instruments, out);
                }
                // Subscription replies carry `id`.
                if event.contains_key("id") {
                    out.push(Event::Skipped { feed: feed.into() });
                    return Ok(());
                }
                return Err(FrameError::new(
                    "unknown_message",
                    "no event type `e` and not a known reply",
                ));
            }
        };
        let tick = trade.to_tick(feed, recv_ns, instruments);
        tick.validate()
            .map_err(|e| FrameError::new("invalid_tick", e))?;
        out.push(Event::Tick(tick));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_core::FeedVenue;

    fn feed(symbols: &[&str], channels: &[&str]) -> FeedConfig {
        crate::venues::test_feed("binance", symbols, channels)
    }

    #[test]
    fn subscriptions_name_each_symbol_and_channel() {
        let b = feed(&["BTCUSDT", "ETHUSDT"], &["trade", "bookTicker"]);
        let streams = r#""params":["btcusdt@trade","btcusdt@bookTicker","ethusdt@trade","ethusdt@bookTicker"]"#;
        assert_eq!(
            FeedVenue::new(&SPOT).subscribe_messages(&b),
            [format!(r#"{{"id":1,"method":"SUBSCRIBE",{streams}}}"#)]
        );
        assert_eq!(
            SPOT.subscription(&b, &b.channels, SubscriptionOp::Unsubscribe),
            [format!(r#"{{"id":1,"method":"UNSUBSCRIBE",{streams}}}"#)]
        );
        // No channels named: the venue's default (trade); 200 streams a message.
        let many: Vec<String> = (0..450).map(|i| format!("S{i}USDT")).collect();
        let many: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let msgs = FeedVenue::new(&FUTURES).subscribe_messages(&feed(&many, &[]));
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].contains(r#""s0usdt@trade""#) && msgs[2].contains(r#""id":3"#));
    }

    fn d(v: f64) -> Dec {
        Dec::from_f64(v).unwrap()
    }

    fn decode(text: &str) -> (Result<(), FrameError>, Vec<Event>) {
        let mut d = BinanceDecoder::default();
        let mut cache = InstrumentCache::default();
        let mut out = Vec::new();
        let r = d.decode("binance", text.as_bytes(), 7, &mut cache, &mut out);
        (r, out)
    }

    fn tick(events: &[Event]) -> &Tick {
        match &events[0] {
            Event::Tick(t) => t,
            other => panic!("expected a tick, got {other:?}"),
        }
    }

    // The sample payloads of Binance's WebSocket stream documentation.
    const DOC_TRADE: &str = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
    const DOC_AGG: &str = r#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#;

    #[test]
    fn documented_trade_and_agg_trade() {
        for doc in [DOC_TRADE, DOC_AGG] {
            let (r, out) = decode(doc);
            r.unwrap();
            let t = tick(&out);
            assert_eq!(&*t.instrument.symbol, "BNBBTC");
            assert_eq!(&*t.instrument.exchange, "binance");
            assert_eq!(t.price.to_string(), "0.001");
            assert_eq!(t.qty.to_string(), "100");
            assert_eq!(t.exchange_ts_ns, 1_672_515_782_136_000_000);
            assert_eq!(t.recv_ts_ns, 7);
        }
    }

    #[test]
    fn combined_stream_envelope() {
        let framed = format!(r#"{{"stream":"bnbbtc@aggTrade","data":{DOC_AGG}}}"#);
        let (r, out) = decode(&framed);
        r.unwrap();
        assert_eq!(tick(&out).price.to_string(), "0.001");
    }

    #[test]
    fn depth_kline_book_ticker_and_replies_are_skipped() {
        for frame in [
            r#"{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","2"]],"a":[]}}"#,
            r#"{"e":"kline","E":1,"s":"X","k":{"t":1}}"#,
            r#"{"result":null,"id":1}"#,
        ] {
            let (r, out) = decode(frame);
            r.unwrap();
            assert!(matches!(out[0], Event::Skipped { .. }), "{frame}");
        }
    }

    #[test]
    fn book_ticker_is_a_quote_spot_and_futures() {
        let (r, out) = decode(
            r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        );
        r.unwrap();
        let [Event::Quote(q)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (&*q.instrument.symbol, q.bid, q.ask),
            ("BNBUSDT", Some(d(25.3519)), Some(d(25.3652)))
        );
        assert_eq!(q.exchange_ts_ns, 7, "spot has no time: the receive time");
        let (r, out) = decode(
            r#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        );
        r.unwrap();
        let [Event::Quote(q)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(q.exchange_ts_ns, 1_568_014_460_891_000_000);
        let (r, _) = decode(r#"{"u":1,"s":"X","b":"abc","a":"1"}"#);
        assert_eq!(r.unwrap_err().error_type, "bad_number");
    }

    /// A zero price is no side (Binance sends `"0.00000000"` for an empty
    /// side): one zero side leaves a one-sided quote, both zero (or one zero,
    /// one null) skip the frame; a negative price is still a bad number.
    #[test]
    fn book_ticker_zero_price_is_no_side() {
        let (r, out) = decode(
            r#"{"u":1,"s":"BNBUSDT","b":"0.00000000","B":"0.00000000","a":"25.36520000","A":"40.66000000"}"#,
        );
        r.unwrap();
        let [Event::Quote(q)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(q.bid, None);
        assert_eq!(q.ask.map(|a| a.to_string()), Some("25.3652".into()));
        let (r, out) = decode(r#"{"u":1,"s":"BNBUSDT","b":"25.1","B":"1","a":"0","A":"0"}"#);
        r.unwrap();
        let [Event::Quote(q)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (q.bid.map(|b| b.to_string()), q.ask),
            (Some("25.1".into()), None)
        );
        for empty in [
            r#"{"u":1,"s":"BNBUSDT","b":"0.00000000","B":"0.00000000","a":"0.00000000","A":"0.00000000"}"#,
            r#"{"u":1,"s":"BNBUSDT","b":null,"B":null,"a":"0.00000000","A":"0"}"#,
        ] {
            let (r, out) = decode(empty);
            r.unwrap();
            assert!(
                matches!(out.as_slice(), [Event::Skipped { .. }]),
                "{empty}: {out:?}"
            );
        }
        let (r, _) = decode(r#"{"u":1,"s":"X","b":"-1","a":"1"}"#);
        assert_eq!(r.unwrap_err().error_type, "bad_number");
    }

    #[test]
    fn malformed_frames_are_errors_with_a_type() {
        let cases = [
            ("{not json", "json"),
            ("[1,2]", "unknown_message"),
            (r#"{"hello":1}"#, "unknown_message"),
            (
                r#"{"e":"trade","s":"X","t":1,"q":"1","T":1}"#,
                "missing_field",
            ),
            (
                r#"{"e":"trade","s":"X","t":1,"p":"abc","q":"1","T":1}"#,
                "bad_number",
            ),
            (
                r#"{"e":"trade","s":"X","t":1,"p":"-1","q":"1","T":1}"#,
                "invalid_tick",
            ),
        ];
        for (frame, kind) in cases {
            let (r, out) = decode(frame);
            assert_eq!(r.unwrap_err().error_type, kind, "{frame}");
            assert!(out.is_empty());
        }
    }
}
