//! OKX v5 public channels.
//!
//! Pushes are `{"arg":{"channel":..,"instId":..},"data":[..]}` with every value
//! a string. `trades` become ticks (one per element); `tickers` (quote-only
//! updates) and the replies to subscriptions and to the text `ping` are valid
//! frames tickwire does not turn into ticks, so they are skipped. An `error`
//! event is rejected, so it shows in the dead letters.

use simd_json::prelude::*;
use simd_json::BorrowedValue;
use tickwire_core::{
    Dec, Event, FeedConfig, Frame, FrameDecoder, History, HistoryKey, Instrument, InstrumentCache,
    Keepalive, PageAsk, PageRequest, Quote, SubscriptionOp, Tick, TradeIdentity, Venue,
};

use super::{optional_price, unexpected_binary, FrameError, JsonScratch};
use crate::num::decimal;

/// OKX v5 public channels.
pub struct Okx;

/// Arguments (channel and instrument pairs) a message carries at most.
const ARGS_PER_MESSAGE: usize = 100;

impl Venue for Okx {
    fn name(&self) -> &'static str {
        "okx"
    }

    fn default_url(&self) -> Option<&'static str> {
        Some("wss://ws.okx.com:8443/ws/v5/public")
    }

    fn default_channels(&self) -> &'static [&'static str] {
        &["trades"]
    }

    fn known_channels(&self) -> &'static [&'static str] {
        &["trades", "tickers"]
    }

    fn instruments(&self, feed: &FeedConfig) -> Vec<Instrument> {
        feed.symbols
            .iter()
            .map(|s| Instrument::new(self.name(), s.trim()))
            .collect()
    }

    /// `{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"},..]}`.
    fn subscription(
        &self,
        feed: &FeedConfig,
        channels: &[String],
        op: SubscriptionOp,
    ) -> Vec<String> {
        let args: Vec<serde_json::Value> = channels
            .iter()
            .flat_map(|c| {
                feed.symbols
                    .iter()
                    .map(move |s| serde_json::json!({"channel": c, "instId": s}))
            })
            .collect();
        args.chunks(ARGS_PER_MESSAGE)
            .map(|chunk| serde_json::json!({"op": op.verb(), "args": chunk}).to_string())
            .collect()
    }

    /// OKX wants the text `ping`; it answers the text `pong`.
    fn keepalive(&self) -> Keepalive {
        Keepalive::Text("ping")
    }

    fn trade_identity(&self) -> TradeIdentity {
        TradeIdentity::Increasing
    }

    fn error_types(&self) -> &'static [&'static str] {
        &[
            "json",
            "missing_field",
            "bad_number",
            "bad_value",
            "invalid_tick",
            "unknown_message",
            "venue_error",
            "unexpected_binary",
            "implausible_time",
        ]
    }

    fn decoder(&self, _feed: Option<&FeedConfig>, _feeds: &[FeedConfig]) -> Box<dyn FrameDecoder> {
        Box::new(OkxFrames(OkxDecoder::default()))
    }

    fn history(&self) -> Option<&dyn History> {
        Some(&OkxHistory)
    }
}

/// OKX's trade history by trade id (`GET /api/v5/market/history-trades`,
/// 20 requests per 2 s): paged backwards with `after` (older than that
/// id), newest first, 100 a page.
struct OkxHistory;

/// Trades one history answer gives at most.
const HISTORY_LIMIT: u64 = 100;

impl History for OkxHistory {
    fn default_rest_url(&self) -> &'static str {
        "https://www.okx.com"
    }

    fn page(&self, ask: &PageAsk<'_>) -> Result<PageRequest, &'static str> {
        let limit = ask
            .below
            .saturating_sub(ask.from_id)
            .clamp(1, HISTORY_LIMIT);
        Ok(PageRequest {
            path_and_query: format!(
                "/api/v5/market/history-trades?instId={}&type=1&after={}&limit={limit}",
                ask.symbol, ask.below
            ),
            weight: 1,
            key_header: None,
        })
    }

    /// 20 requests per 2 s.
    fn weight_per_minute(&self) -> u32 {
        600
    }

    fn page_trades(&self, body: &[u8]) -> Result<Vec<(u64, i64)>, FrameError> {
        let mut json = JsonScratch::default();
        let root = json.object(body)?;
        Ok(history_data(&root)?
            .iter()
            .filter_map(|t| {
                let t = OkxTrade::from_value(t).ok()?;
                Some((t.trade_id?, t.ts_ms))
            })
            .collect())
    }
}

/// The trades of a history answer
/// (`{"code":"0","msg":"","data":[{"instId":"BTC-USDT","side":"sell","sz":"0.00001","px":"29963.2","tradeId":"242720720","ts":"1654161646974"}]}`);
/// a code other than `0` is the venue's refusal.
fn history_data<'v>(root: &'v BorrowedValue<'v>) -> Result<&'v Vec<BorrowedValue<'v>>, FrameError> {
    match root.get_str("code") {
        Some("0") => {}
        code => {
            return Err(FrameError::new(
                "venue_error",
                format!(
                    "OKX error {}: {}",
                    code.unwrap_or("?"),
                    root.get_str("msg").unwrap_or("")
                ),
            ))
        }
    }
    root.get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| FrameError::new("missing_field", "no `data` array"))
}

/// One feed's decoder.
struct OkxFrames(OkxDecoder);

impl FrameDecoder for OkxFrames {
    fn decode(
        &mut self,
        frame: Frame<'_>,
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        match frame {
            Frame::Text(text) => self.0.decode("okx", text, recv_ns, instruments, out),
            Frame::Binary(_) => Err(unexpected_binary("okx")),
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
        let root = self.0.json.object(body)?;
        let mut ticks = Vec::new();
        for element in history_data(&root)? {
            let trade = OkxTrade::from_value(element)?;
            let Some(id) = trade.trade_id else {
                return Err(FrameError::new(
                    "missing_field",
                    "a trade without `tradeId`",
                ));
            };
            if !(key.from_id..=key.to_id).contains(&id) || trade.inst_id != &*key.symbol {
                continue;
            }
            let mut tick = trade.to_tick(recv_ns, instruments);
            tick.fills_gap = Some(key.gap);
            tick.validate()
                .map_err(|e| FrameError::new("invalid_tick", e))?;
            ticks.push((id, tick));
        }
        // Newest first as OKX answers: applied oldest first.
        ticks.sort_by_key(|(id, _)| *id);
        out.extend(ticks.into_iter().map(|(_, t)| Event::Tick(t)));
        Ok(())
    }
}

/// One element of a `trades` push, as OKX sends it:
/// ```json
/// {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3"}]}
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OkxTrade<'a> {
    /// `instId` (`BTC-USDT`, `BTC-USDT-SWAP`).
    pub inst_id: &'a str,
    /// `px`
    pub price: Dec,
    /// `sz`
    pub size: Dec,
    /// `ts`: trade time, epoch ms.
    pub ts_ms: i64,
    /// `side`: the taker's side.
    pub side: &'a str,
    /// `tradeId`, when it is digits (it increases per instrument).
    pub trade_id: Option<u64>,
}

impl<'a> OkxTrade<'a> {
    fn from_value(v: &'a BorrowedValue<'a>) -> Result<Self, FrameError> {
        let s = |k: &str| {
            v.get_str(k).ok_or_else(|| {
                FrameError::new("missing_field", format!("missing string field `{k}`"))
            })
        };
        let num = |k: &str| -> Result<Dec, FrameError> {
            let text = s(k)?;
            decimal(text).ok_or_else(|| {
                FrameError::new("bad_number", format!("`{k}` is not a number: {text:?}"))
            })
        };
        let ts = s("ts")?;
        Ok(Self {
            inst_id: s("instId")?,
            price: num("px")?,
            size: num("sz")?,
            ts_ms: ts.parse().map_err(|_| {
                FrameError::new("bad_value", format!("`ts` is not epoch ms: {ts:?}"))
            })?,
            side: v.get_str("side").unwrap_or(""),
            trade_id: v.get_str("tradeId").and_then(|t| t.parse().ok()),
        })
    }

    pub fn to_tick(&self, recv_ns: i64, instruments: &mut InstrumentCache) -> Tick {
        let mut tick = Tick::trade(
            instruments.get("okx", self.inst_id, None, None),
            self.ts_ms.saturating_mul(1_000_000),
            recv_ns,
            self.price,
            self.size,
        );
        tick.trade_id = self.trade_id.map(tickwire_core::TradeId::trade);
        tick
    }
}

/// One element of a `tickers` push: its best bid and ask as a quote.
/// ```json
/// {"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11","bidPx":"8888.88","bidSz":"5","open24h":"9000","high24h":"10000","low24h":"8888.88","volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222","ts":"1597026383085"}]}
/// ```
fn ticker_quote(
    v: &BorrowedValue<'_>,
    recv_ns: i64,
    instruments: &mut InstrumentCache,
) -> Result<Quote, FrameError> {
    let inst = v
        .get_str("instId")
        .ok_or_else(|| FrameError::new("missing_field", "missing string field `instId`"))?;
    // OKX sends "" (or "0") when a side is empty: no side.
    let side = |k: &str| optional_price(k, v.get_str(k).filter(|t| !t.is_empty()));
    let ts = v.get_str("ts").and_then(|t| t.parse::<i64>().ok());
    Ok(Quote {
        instrument: instruments.get("okx", inst, None, None),
        exchange_ts_ns: ts.map_or(recv_ns, |ms| ms.saturating_mul(1_000_000)),
        recv_ts_ns: recv_ns,
        bid: side("bidPx")?,
        ask: side("askPx")?,
    })
}

/// Decodes OKX frames with one reusable simd-json buffer set.
#[derive(Default)]
pub struct OkxDecoder {
    json: JsonScratch,
}

impl OkxDecoder {
    pub fn decode(
        &mut self,
        feed: &str,
        text: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let skipped = || Event::Skipped { feed: feed.into() };
        if text == b"pong" {
            out.push(skipped());
            return Ok(());
        }
        let root = self.json.object(text)?;
        if let Some(event) = root.get_str("event") {
            return match event {
                "error" => Err(FrameError::new(
                    "venue_error",
                    format!(
                        "OKX error {}: {}",
                        root.get_str("code").unwrap_or("?"),
                        root.get_str("msg").unwrap_or("")
                    ),
                )),
                _ => {
                    out.push(skipped());
                    Ok(())
                }
            };
        }
        let channel = root.get("arg").and_then(|a| a.get_str("channel"));
        let Some(data) = root.get("data").and_then(|d| d.as_array()) else {
            return Err(FrameError::new(
                "unknown_message",
                "no `event` and no `data` array",
            ));
        };
        match channel {
            Some("trades") | Some("trades-all") => {
                let first = out.len();
                for element in data {
                    let tick = OkxTrade::from_value(element)
                        .map(|t| t.to_tick(recv_ns, instruments))
                        .and_then(|t| {
                            t.validate()
                                .map(|()| t)
                                .map_err(|e| FrameError::new("invalid_tick", e))
                        });
                    match tick {
                        Ok(t) => out.push(Event::Tick(t)),
                        Err(e) => {
                            // One bad element rejects the frame, none of it half-applied.
                            out.truncate(first);
                            return Err(e);
                        }
                    }
                }
                Ok(())
            }
            Some("tickers") => {
                let first = out.len();
                for element in data {
                    match ticker_quote(element, recv_ns, instruments) {
                        // An illiquid instrument (`"bidPx":""` or `"0"`, both sides):
                        // nothing to write, skipped rather than an empty HSET.
                        Ok(q) if q.bid.is_none() && q.ask.is_none() => out.push(skipped()),
                        Ok(q) => out.push(Event::Quote(q)),
                        Err(e) => {
                            out.truncate(first);
                            return Err(e);
                        }
                    }
                }
                Ok(())
            }
            Some(_) => {
                out.push(skipped());
                Ok(())
            }
            None => Err(FrameError::new("missing_field", "missing `arg.channel`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_core::FeedVenue;

    fn feed(symbols: &[&str], channels: &[&str]) -> FeedConfig {
        crate::venues::test_feed("okx", symbols, channels)
    }

    #[test]
    fn subscriptions_default_to_trades() {
        let o = feed(&["BTC-USDT"], &[]);
        assert_eq!(
            FeedVenue::new(&Okx).subscribe_messages(&o),
            [r#"{"args":[{"channel":"trades","instId":"BTC-USDT"}],"op":"subscribe"}"#]
        );
        assert_eq!(
            Okx.subscription(&o, &["tickers".into()], SubscriptionOp::Unsubscribe),
            [r#"{"args":[{"channel":"tickers","instId":"BTC-USDT"}],"op":"unsubscribe"}"#]
        );
        assert_eq!(Okx.keepalive(), Keepalive::Text("ping"));
    }

    fn d(v: f64) -> Dec {
        Dec::from_f64(v).unwrap()
    }

    fn decode(text: &str) -> (Result<(), FrameError>, Vec<Event>) {
        let mut d = OkxDecoder::default();
        let mut out = Vec::new();
        let r = d.decode(
            "okx",
            text.as_bytes(),
            9,
            &mut InstrumentCache::default(),
            &mut out,
        );
        (r, out)
    }

    // The `trades` push example of OKX's v5 WebSocket documentation.
    const DOC_TRADES: &str = r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3"}]}"#;

    #[test]
    fn documented_trade_push() {
        let (r, out) = decode(DOC_TRADES);
        r.unwrap();
        let [Event::Tick(t)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (&*t.instrument.exchange, &*t.instrument.symbol),
            ("okx", "BTC-USDT")
        );
        assert_eq!(
            (t.price.to_string(), t.qty.to_string()),
            ("42219.9".into(), "0.12060306".into())
        );
        assert_eq!(t.exchange_ts_ns, 1_630_048_897_897_000_000);
    }

    #[test]
    fn several_trades_in_one_push_and_a_bad_one_rejects_the_frame() {
        let two = r#"{"arg":{"channel":"trades","instId":"ETH-USDT"},"data":[{"instId":"ETH-USDT","px":"2000","sz":"1","side":"sell","ts":"1630048897000"},{"instId":"ETH-USDT","px":"2001","sz":"2","side":"buy","ts":"1630048897001"}]}"#;
        let (r, out) = decode(two);
        r.unwrap();
        assert_eq!(out.len(), 2);
        let bad = r#"{"arg":{"channel":"trades","instId":"ETH-USDT"},"data":[{"instId":"ETH-USDT","px":"2000","sz":"1","ts":"1"},{"instId":"ETH-USDT","px":"x","sz":"2","ts":"2"}]}"#;
        let (r, out) = decode(bad);
        assert_eq!(r.unwrap_err().error_type, "bad_number");
        assert!(out.is_empty());
    }

    #[test]
    fn documented_tickers_push_is_a_quote() {
        let (r, out) = decode(
            r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11","bidPx":"8888.88","bidSz":"5","open24h":"9000","high24h":"10000","low24h":"8888.88","volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222","ts":"1597026383085"}]}"#,
        );
        r.unwrap();
        let [Event::Quote(q)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (q.bid, q.ask, q.exchange_ts_ns),
            (
                Some(d(8888.88)),
                Some(d(9999.99)),
                1_597_026_383_085_000_000
            )
        );
    }

    /// `"bidPx":"0"` is no bid, as `""` is: a one-sided quote, or a skip
    /// when neither side has a price; never a rejected frame.
    #[test]
    fn tickers_zero_or_empty_side_is_no_side() {
        let push = |bid: &str, ask: &str| {
            format!(
                r#"{{"arg":{{"channel":"tickers","instId":"X-USDT"}},"data":[{{"instType":"SPOT","instId":"X-USDT","last":"1","lastSz":"0","askPx":"{ask}","askSz":"0","bidPx":"{bid}","bidSz":"0","ts":"1597026383085"}}]}}"#
            )
        };
        let (r, out) = decode(&push("0", "1.5"));
        r.unwrap();
        let [Event::Quote(q)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((q.bid, q.ask), (None, Some(d(1.5))));
        for (bid, ask) in [("0", "0"), ("", "0"), ("0.0", "")] {
            let (r, out) = decode(&push(bid, ask));
            r.unwrap();
            assert!(
                matches!(out.as_slice(), [Event::Skipped { .. }]),
                "{bid:?}/{ask:?}: {out:?}"
            );
        }
        let (r, _) = decode(&push("-1", "1"));
        assert_eq!(r.unwrap_err().error_type, "bad_number");
    }

    #[test]
    fn replies_and_pong_are_skipped_errors_rejected() {
        for frame in [
            r#"{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],"ts":"1"}]}"#,
            r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}"#,
            "pong",
        ] {
            let (r, out) = decode(frame);
            r.unwrap();
            assert!(matches!(out[0], Event::Skipped { .. }), "{frame}");
        }
        let (r, _) = decode(
            r#"{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}"#,
        );
        assert_eq!(r.unwrap_err().error_type, "venue_error");
        let (r, _) = decode("{oops");
        assert_eq!(r.unwrap_err().error_type, "json");
    }
}
