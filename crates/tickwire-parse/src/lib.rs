//! tickwire-parse owns what comes from outside and how it is read: the
//! venues (one module each under [`venues`]: endpoints, subscription,
//! keepalive, wire types and decoder, registered in [`VENUES`]) and the file
//! formats. One line of a tick file, or one frame of a venue's WebSocket
//! feed, becomes [`Event`]s (ticks, skipped frames, rejected frames). It
//! knows nothing of files on disk, sockets or Redis.
//!
//! - [`venues`]: one module per venue (simd-json for text frames).
//! - [`format`]: the file formats and their detection.
//! - [`LineDecoder`]: the entry point, one per parser thread.

pub mod csv;
pub mod format;
mod normalized;
mod num;
pub mod venues;

use tickwire_core::{Event, InstrumentCache, Rejected};

pub use format::{detect, symbol_from_binance_file_name, DetectError, Format, SourceMeta};
pub use venues::VENUES;

/// Decodes lines of any supported file format into events. Holds the reusable
/// buffers and the instrument cache of one parser thread.
pub struct LineDecoder {
    instruments: InstrumentCache,
    buffers: simd_json::Buffers,
    line: Vec<u8>,
    feeds: venues::FeedDecoders,
    max_raw: usize,
    /// `[ingest] max_clock_skew_ms`, in ns.
    max_skew_ns: i64,
}

/// The default `[ingest] max_clock_skew_ms`.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 60_000;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl LineDecoder {
    /// `max_raw`: bytes of raw text kept with a rejected line.
    pub fn new(max_raw: usize) -> Self {
        Self::with_feeds(max_raw, &[])
    }

    /// A decoder that knows the configured feeds (venue and Dhan symbols of
    /// each feed named in a recording).
    pub fn with_feeds(max_raw: usize, feeds: &[tickwire_core::FeedConfig]) -> Self {
        Self {
            instruments: InstrumentCache::default(),
            buffers: simd_json::Buffers::new(512),
            line: Vec::with_capacity(512),
            feeds: venues::FeedDecoders::new(feeds),
            max_raw,
            max_skew_ns: DEFAULT_MAX_CLOCK_SKEW_MS as i64 * 1_000_000,
        }
    }

    /// How far a trade's exchange time may lie after its receive time (or
    /// the clock) before it is dead-lettered as `implausible_time`.
    pub fn set_max_clock_skew_ms(&mut self, ms: u64) {
        self.max_skew_ns = i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    }

    fn limits(&self) -> (i64, usize) {
        (self.max_skew_ns, self.max_raw)
    }

    /// The ticks from `out[first..]` whose exchange time is implausible
    /// (before 2000, or ahead of their receive time) become rejections of
    /// `feed` with the raw input: they never reach a stream, bar or bucket.
    fn reject_implausible<'r>(
        (max_skew_ns, max_raw): (i64, usize),
        out: &mut [Event],
        first: usize,
        feed: &str,
        raw: &dyn Fn() -> std::borrow::Cow<'r, [u8]>,
        recv_ns: Option<i64>,
    ) {
        let mut now = None;
        for e in out.iter_mut().skip(first) {
            let Event::Tick(t) = e else { continue };
            let now = *now.get_or_insert_with(now_ns);
            if let Err(reason) = t.check_time(max_skew_ns, now) {
                // Dead-lettered at the time it was received, when the input
                // says (a tick's receive time equal to its exchange time
                // means it does not): never at the time it was refused for.
                let received = (t.recv_ts_ns != t.exchange_ts_ns).then_some(t.recv_ts_ns);
                *e = Event::Rejected(Rejected::new(
                    feed,
                    "implausible_time",
                    reason,
                    &raw(),
                    max_raw,
                    recv_ns.or(received),
                ));
            }
        }
    }

    /// A rejection's receive time numbers its dead letter (`{ms}-{seq}`),
    /// and every later dead letter of the stream follows it: one from
    /// before 2000 or ahead of the clock by more than the skew (a bad
    /// recording's `recv_ns`, a file's receive-time column) is dropped, and
    /// the rejection is numbered as a line without one.
    fn plausible_receive_times(max_skew_ns: i64, out: &mut [Event], first: usize) {
        let mut now = None;
        for e in out.iter_mut().skip(first) {
            let Event::Rejected(r) = e else { continue };
            let Some(at) = r.recv_ts_ns else { continue };
            let now = *now.get_or_insert_with(now_ns);
            if at < tickwire_core::tick::EARLIEST_TRADE_NS || at.saturating_sub(now) > max_skew_ns {
                r.recv_ts_ns = None;
            }
        }
    }

    /// Decodes one live frame of `feed`; a bad frame becomes a rejection
    /// under the feed's name. Never panics on input.
    pub fn decode_frame(
        &mut self,
        feed: &str,
        frame: venues::Frame<'_>,
        recv_ns: i64,
        out: &mut Vec<Event>,
    ) {
        let first = out.len();
        let raw = || match frame {
            venues::Frame::Text(t) => std::borrow::Cow::Borrowed(t),
            venues::Frame::Binary(b) => {
                use base64::Engine as _;
                std::borrow::Cow::Owned(
                    base64::engine::general_purpose::STANDARD
                        .encode(b)
                        .into_bytes(),
                )
            }
        };
        let decoded = self
            .feeds
            .decode(feed, None, frame, recv_ns, &mut self.instruments, out);
        Self::reject_implausible(self.limits(), out, first, feed, &raw, Some(recv_ns));
        if let Err(e) = decoded {
            let raw = raw();
            out.push(Event::Rejected(Rejected::new(
                feed,
                e.error_type,
                e.message,
                &raw,
                self.max_raw,
                Some(recv_ns),
            )));
        }
        skip_if_nothing(out, first, feed);
        Self::plausible_receive_times(self.max_skew_ns, out, first);
    }

    /// Decodes one page of `feed`'s venue history, fetched for the gap `key`
    /// names: its ticks of the gap, oldest first, each marked with the gap.
    /// A page that cannot be read is dead-lettered under the feed, as a
    /// frame would be. Implausible times are refused as a frame's are.
    pub fn decode_history(
        &mut self,
        feed: &str,
        key: &tickwire_core::HistoryKey,
        body: &[u8],
        recv_ns: i64,
        out: &mut Vec<Event>,
    ) {
        let first = out.len();
        let decoded =
            self.feeds
                .decode_history(feed, None, key, body, recv_ns, &mut self.instruments, out);
        let raw = || std::borrow::Cow::Borrowed(body);
        Self::reject_implausible(self.limits(), out, first, feed, &raw, Some(recv_ns));
        if let Err(e) = decoded {
            out.truncate(first);
            out.push(Event::Rejected(Rejected::new(
                feed,
                e.error_type,
                e.message,
                body,
                self.max_raw,
                Some(recv_ns),
            )));
        }
    }

    /// Decodes one line (without its line ending) and pushes what it holds to
    /// `out`: at least one tick, quote, rejection or skip ([`items`]), so
    /// that every line read is counted as one of them. Blank lines and header
    /// lines (also a header repeated mid-file) are skipped. Never panics on input.
    pub fn decode(&mut self, meta: &SourceMeta, line: &[u8], out: &mut Vec<Event>) {
        let first = out.len();
        let line = trim_line(line);
        if !line.is_empty() {
            self.decode_line(meta, line, out);
        }
        skip_if_nothing(out, first, meta.format.default_feed());
        if line.is_empty() {
            return;
        }
        if meta.format != Format::Frames {
            // Recorded frames are checked as frames, under their feed.
            let raw = || std::borrow::Cow::Borrowed(line);
            Self::reject_implausible(
                self.limits(),
                out,
                first,
                meta.format.default_feed(),
                &raw,
                None,
            );
        }
        Self::plausible_receive_times(self.max_skew_ns, out, first);
    }

    fn decode_line(&mut self, meta: &SourceMeta, line: &[u8], out: &mut Vec<Event>) {
        match meta.format {
            Format::TicksJson => {
                let event = normalized::decode(
                    line,
                    &mut self.line,
                    &mut self.buffers,
                    &mut self.instruments,
                    self.max_raw,
                );
                out.push(event);
            }
            Format::Frames => self.decode_frame_record(line, out),
            Format::BinanceCsv => {
                if let Some(e) =
                    csv::decode_binance(meta, line, &mut self.instruments, self.max_raw)
                {
                    out.push(e);
                }
            }
            Format::TardisCsv => {
                if let Some(e) = csv::decode_tardis(line, &mut self.instruments, self.max_raw) {
                    out.push(e);
                }
            }
        }
    }

    fn decode_frame_record(&mut self, line: &[u8], out: &mut Vec<Event>) {
        let limits = self.limits();
        self.line.clear();
        self.line.extend_from_slice(line);
        let record = match simd_json::serde::from_slice_with_buffers::<FrameRecord>(
            &mut self.line,
            &mut self.buffers,
        ) {
            Ok(r) => r,
            Err(e) => {
                out.push(Event::Rejected(Rejected::new(
                    RECORDED_FEED,
                    "json",
                    format!("recorded frame line is not valid JSON: {e}"),
                    line,
                    self.max_raw,
                    None,
                )));
                return;
            }
        };
        // The feed a rejection is dead-lettered under: the line's, when the
        // config or tickwire knows it, else the format's, so that a line
        // cannot make `deadletter:{feed}` keys of its choosing.
        let dead_feed = if self.feeds.knows(record.feed) {
            record.feed
        } else {
            RECORDED_FEED
        };
        let reject = |error_type, error: String| {
            Event::Rejected(Rejected::new(
                dead_feed,
                error_type,
                error,
                line,
                self.max_raw,
                Some(record.recv_ns),
            ))
        };
        if let Some(marked) =
            Self::recorded_marker(&mut self.feeds, &mut self.instruments, limits, &record, out)
        {
            if let Err(e) = marked {
                out.push(reject(e.error_type, e.message));
            }
            return;
        }
        let decoded;
        let frame = match record.enc {
            None | Some("text") => venues::Frame::Text(record.data.as_bytes()),
            Some("base64") => {
                use base64::Engine as _;
                match base64::engine::general_purpose::STANDARD.decode(record.data.as_bytes()) {
                    Ok(bytes) => {
                        decoded = bytes;
                        venues::Frame::Binary(&decoded)
                    }
                    Err(e) => {
                        out.push(reject(
                            "encoding",
                            format!("`data` is not valid base64: {e}"),
                        ));
                        return;
                    }
                }
            }
            Some(other) => {
                out.push(reject(
                    "encoding",
                    format!("unknown `enc` {other:?} (expected base64, or none for text)"),
                ));
                return;
            }
        };
        let first = out.len();
        let decoded = self.feeds.decode(
            record.feed,
            record.venue,
            frame,
            record.recv_ns,
            &mut self.instruments,
            out,
        );
        let raw = || std::borrow::Cow::Borrowed(record.data.as_bytes());
        Self::reject_implausible(limits, out, first, record.feed, &raw, Some(record.recv_ns));
        if let Err(e) = decoded {
            // The frame as it arrived (binary: its base64), as the live run
            // dead-lettered it.
            out.push(Event::Rejected(Rejected::new(
                dead_feed,
                e.error_type,
                e.message,
                record.data.as_bytes(),
                self.max_raw,
                Some(record.recv_ns),
            )));
        }
        // Skipped under the frame's feed rather than as `recorded`.
        skip_if_nothing(out, first, dead_feed);
    }

    /// A recording line that is no frame: a page of history (its ticks), a
    /// fill's end or a feed's connect (their events, for the state stage's
    /// gap keeper). `None` for a frame.
    fn recorded_marker(
        feeds: &mut venues::FeedDecoders,
        instruments: &mut InstrumentCache,
        limits: (i64, usize),
        record: &FrameRecord<'_>,
        out: &mut Vec<Event>,
    ) -> Option<Result<(), venues::FrameError>> {
        let feed: std::sync::Arc<str> = record.feed.into();
        if let Some(h) = &record.history {
            let key = tickwire_core::HistoryKey {
                gap: h.gap,
                symbol: h.symbol.into(),
                sequence: match h.seq {
                    "aggregate" => tickwire_core::IdSequence::Aggregate,
                    _ => tickwire_core::IdSequence::Trade,
                },
                from_id: h.from,
                to_id: h.to,
            };
            let first = out.len();
            let decoded = feeds.decode_history(
                record.feed,
                record.venue,
                &key,
                record.data.as_bytes(),
                record.recv_ns,
                instruments,
                out,
            );
            let raw = || std::borrow::Cow::Borrowed(record.data.as_bytes());
            if decoded.is_err() {
                out.truncate(first);
                return Some(decoded);
            }
            Self::reject_implausible(limits, out, first, record.feed, &raw, Some(record.recv_ns));
            skip_if_nothing(out, first, record.feed);
            return Some(Ok(()));
        }
        if let Some(end) = &record.fill_end {
            out.push(Event::FillEnd(tickwire_core::FillEnd {
                feed,
                symbol: end.symbol.into(),
                gap: end.gap,
                complete: end.complete,
                reason: fill_reason(end.reason),
            }));
            out.push(Event::Skipped {
                feed: record.feed.into(),
            });
            return Some(Ok(()));
        }
        if record.status == Some("connected") {
            let exchange = record
                .venue
                .and_then(|v| VENUES.get(v))
                .map_or("", |v| v.name());
            out.push(Event::Feed(tickwire_core::FeedEvent {
                feed,
                exchange,
                status: tickwire_core::FeedStatus::Connected,
                at_ns: record.recv_ns,
                reconnects: 0,
                gap_ns: None,
                reason: None,
            }));
            out.push(Event::Skipped {
                feed: record.feed.into(),
            });
            return Some(Ok(()));
        }
        None
    }

    /// Distinct instruments seen so far.
    pub fn instruments(&self) -> usize {
        self.instruments.len()
    }
}

/// How many of `events` are counted items of the input: ticks, quotes,
/// rejections and skips (a line or frame decodes into at least one; the
/// state stage's events and depth snapshots are not items).
pub fn items(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Tick(_) | Event::Quote(_) | Event::Rejected(_) | Event::Skipped { .. }
            )
        })
        .count()
}

/// A line or frame that held nothing tickwire counts (a blank line, a CSV
/// header, an OKX push with `"data":[]`, an empty Dhan message, a frame of
/// book snapshots only) is a skip of `feed`.
fn skip_if_nothing(out: &mut Vec<Event>, first: usize, feed: &str) {
    if items(&out[first..]) == 0 {
        out.push(Event::Skipped { feed: feed.into() });
    }
}

/// The feed name used for a recorded-frame line whose envelope cannot be read.
pub const RECORDED_FEED: &str = "recorded";

/// One line of a recording: `{"recv_ns":..,"feed":"binance","data":"<frame>"}`,
/// binary frames with `"enc":"base64"`; `"venue"` when the feed's name is not
/// its venue's.
#[derive(serde::Deserialize)]
struct FrameRecord<'a> {
    recv_ns: i64,
    #[serde(borrow)]
    feed: &'a str,
    #[serde(borrow)]
    data: &'a str,
    #[serde(borrow, default)]
    enc: Option<&'a str>,
    #[serde(borrow, default)]
    venue: Option<&'a str>,
    /// A page of the venue's trade history fetched for a gap.
    #[serde(borrow, default)]
    history: Option<RecordedHistory<'a>>,
    /// A gap's fill ended here.
    #[serde(borrow, default)]
    fill_end: Option<RecordedFillEnd<'a>>,
    /// The feed connected here (`connected`).
    #[serde(borrow, default)]
    status: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct RecordedHistory<'a> {
    gap: u64,
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    seq: &'a str,
    from: u64,
    to: u64,
}

#[derive(serde::Deserialize)]
struct RecordedFillEnd<'a> {
    gap: u64,
    #[serde(borrow)]
    symbol: &'a str,
    complete: bool,
    #[serde(borrow)]
    reason: &'a str,
}

/// A fill's end reason as the live run wrote it (the known ones; another
/// is `recorded`).
fn fill_reason(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "",
        "timeout",
        "max_trades",
        "max_age",
        "rest_error",
        "no_api_key",
        "no_history",
        "disabled",
        "max_waiting_bytes",
        "stopped",
    ];
    KNOWN
        .iter()
        .find(|k| **k == reason)
        .copied()
        .unwrap_or("recorded")
}

fn trim_line(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n' | b' ' | b'\t'] = line {
        line = rest;
    }
    // A UTF-8 byte order mark at the start of a file.
    line.strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_meta() -> SourceMeta {
        SourceMeta {
            format: Format::Frames,
            symbol: None,
            exchange: String::new(),
        }
    }

    fn record(feed: &str, data: &str, enc: Option<&str>) -> String {
        let mut v = serde_json::json!({"recv_ns": 1_700_000_000_000_000_123i64, "feed": feed, "data": data});
        if let Some(enc) = enc {
            v["enc"] = enc.into();
        }
        v.to_string()
    }

    #[test]
    fn recorded_frames_decode_through_the_feed_decoder() {
        let mut d = LineDecoder::new(256);
        let mut out = Vec::new();
        let frame = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":5,"p":"42000.5","q":"0.25","T":1699999999999,"m":false,"M":true}}"#;
        d.decode(
            &frames_meta(),
            record("binance-futures", frame, None).as_bytes(),
            &mut out,
        );
        let Event::Tick(t) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(&*t.instrument.exchange, "binance-futures");
        assert_eq!(t.recv_ts_ns, 1_700_000_000_000_000_123);
        assert_eq!(t.price.to_string(), "42000.5");
    }

    #[test]
    fn implausible_exchange_times_are_dead_lettered_and_the_next_trade_lands() {
        let mut d = LineDecoder::new(256);
        let trade = |t: i64, id: u64| {
            format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1609459200000,"s":"BTCUSDT","t":{id},"p":"29000","q":"1","T":{t},"m":false}}}}"#
            )
        };
        // Received 2021-01-01 00:00:00.100 UTC.
        let recv = 1_609_459_200_100_000_000;
        let mut out = Vec::new();
        for (t, id) in [
            (4_102_444_800_000, 1),   // 2100
            (i64::MAX, 2),            // as ms
            (253_402_300_800_000, 3), // year 10000
            (1_609_459_200_000, 4),   // the real one
        ] {
            d.decode_frame(
                "binance",
                venues::Frame::Text(trade(t, id).as_bytes()),
                recv,
                &mut out,
            );
        }
        let kinds: Vec<&str> = out
            .iter()
            .map(|e| match e {
                Event::Rejected(r) => r.error_type,
                Event::Tick(_) => "tick",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "implausible_time",
                "implausible_time",
                "implausible_time",
                "tick"
            ]
        );
        let Event::Rejected(r) = &out[0] else {
            unreachable!()
        };
        assert_eq!(&*r.feed, "binance");
        assert!(r.error.contains("max_clock_skew_ms"), "{}", r.error);
        assert!(r.raw.contains("4102444800000"));
        let Event::Tick(t) = &out[3] else {
            unreachable!()
        };
        assert_eq!(t.trade_id, Some(tickwire_core::TradeId::trade(4)));

        // A tick file without receive times is held to the clock; before 2000 is refused.
        let meta = SourceMeta {
            format: Format::TicksJson,
            symbol: None,
            exchange: String::new(),
        };
        out.clear();
        for ts in [4_102_444_800_000i64, 915_148_800_000, 1_704_067_200_000] {
            let line =
                format!(r#"{{"exchange":"NSE","symbol":"A","ts":{ts},"ltp":1,"qty":1,"id":7}}"#);
            d.decode(&meta, line.as_bytes(), &mut out);
        }
        assert!(
            matches!(&out[0], Event::Rejected(r) if r.error_type == "implausible_time" && &*r.feed == "tickwire")
        );
        assert!(matches!(&out[1], Event::Rejected(r) if r.error.contains("before 2000")));
        assert!(
            matches!(&out[2], Event::Tick(t) if t.trade_id == Some(tickwire_core::TradeId::trade(7)))
        );
        // The skew is configurable.
        d.set_max_clock_skew_ms(0);
        out.clear();
        d.decode_frame(
            "binance",
            venues::Frame::Text(trade(1_609_459_200_101, 5).as_bytes()),
            recv,
            &mut out,
        );
        assert!(matches!(&out[0], Event::Rejected(r) if r.error_type == "implausible_time"));
    }

    #[test]
    fn a_rejection_is_never_timed_by_the_time_it_was_refused_for() {
        let mut d = LineDecoder::new(256);
        let recv_of = |e: &Event| match e {
            Event::Rejected(r) => (r.error_type, r.recv_ts_ns),
            other => panic!("not a rejection: {other:?}"),
        };
        let y2051_ms: i64 = 2_570_785_609_579;
        let mut out = Vec::new();
        // A Binance dump has no receive time: none for its dead letter.
        let binance = SourceMeta {
            format: Format::BinanceCsv,
            symbol: Some("BTCUSDT".into()),
            exchange: "binance".into(),
        };
        d.decode(
            &binance,
            format!("7,42000.1,0.5,21000.05,{y2051_ms},true,true").as_bytes(),
            &mut out,
        );
        assert_eq!(recv_of(&out[0]), ("implausible_time", None));
        // Tardis' local_timestamp is one: the dead letter takes it.
        let tardis = SourceMeta {
            format: Format::TardisCsv,
            symbol: None,
            exchange: String::new(),
        };
        let local_us: i64 = 1_582_329_602_418_379;
        out.clear();
        d.decode(
            &tardis,
            format!(
                "binance-futures,BTCUSDT,{},{local_us},9,buy,9680.1,0.5",
                y2051_ms * 1_000
            )
            .as_bytes(),
            &mut out,
        );
        assert_eq!(
            recv_of(&out[0]),
            ("implausible_time", Some(local_us * 1_000))
        );
        // A receive time as far ahead as the trade vouches for nothing: the
        // trade is refused, and its dead letter has no time.
        out.clear();
        d.decode(
            &tardis,
            format!(
                "binance-futures,BTCUSDT,{},{},9,buy,9680.1,0.5",
                y2051_ms * 1_000,
                y2051_ms * 1_000 + 300
            )
            .as_bytes(),
            &mut out,
        );
        assert_eq!(recv_of(&out[0]), ("implausible_time", None));
        let Event::Rejected(r) = &out[0] else {
            unreachable!()
        };
        assert!(r.error.contains("receive time"), "{}", r.error);
        // A recording whose recv_ns lies in 2051: its trade, and a frame
        // that does not decode, are dead-lettered without that time.
        out.clear();
        let frame = format!(
            r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{y2051_ms},"s":"BTCUSDT","t":1,"p":"29000","q":"1","T":{y2051_ms},"m":false}}}}"#
        );
        for data in [frame.as_str(), "{not json"] {
            let line = serde_json::json!({"recv_ns": y2051_ms * 1_000_000, "feed": "binance", "data": data}).to_string();
            d.decode(&frames_meta(), line.as_bytes(), &mut out);
        }
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| recv_of(e).1.is_none()), "{out:?}");
        // A live frame's receive time is the clock: kept.
        out.clear();
        let now = now_ns();
        d.decode_frame("binance", venues::Frame::Text(b"{not json"), now, &mut out);
        assert_eq!(recv_of(&out[0]).1, Some(now));
    }

    #[test]
    fn bad_records_are_rejected_under_their_feed() {
        let mut d = LineDecoder::new(256);
        let cases = [
            // A feed neither configured nor a venue's: under the format's feed.
            (
                record("okx-nope", "{}", None),
                RECORDED_FEED,
                "unknown_feed",
            ),
            (
                record("evil", "{oops", None).replace(r#""feed""#, r#""venue":"binance","feed""#),
                RECORDED_FEED,
                "json",
            ),
            (
                record("binance", "AAEC", Some("base64")),
                "binance",
                "unexpected_binary",
            ),
            (
                record("binance", "***", Some("base64")),
                "binance",
                "encoding",
            ),
            (record("binance", "{}", Some("gzip")), "binance", "encoding"),
            (record("binance", "{oops", None), "binance", "json"),
            ("not json at all".to_string(), RECORDED_FEED, "json"),
        ];
        for (line, feed, kind) in cases {
            let mut out = Vec::new();
            d.decode(&frames_meta(), line.as_bytes(), &mut out);
            let [Event::Rejected(r)] = out.as_slice() else {
                panic!("{line}: {out:?}")
            };
            assert_eq!((&*r.feed, r.error_type), (feed, kind), "{line}");
            assert!(!r.raw.is_empty());
        }
    }

    #[test]
    fn blank_lines_and_crlf() {
        let mut d = LineDecoder::new(256);
        let mut out = Vec::new();
        let meta = SourceMeta {
            format: Format::TicksJson,
            symbol: None,
            exchange: String::new(),
        };
        d.decode(&meta, b"  \r\n", &mut out);
        d.decode(&meta, b"", &mut out);
        assert!(
            matches!(out.as_slice(), [Event::Skipped { feed: a }, Event::Skipped { feed: b }] if &**a == "tickwire" && &**b == "tickwire"),
            "{out:?}"
        );
        out.clear();
        d.decode(
            &meta,
            b"{\"exchange\":\"NSE\",\"symbol\":\"A\",\"ts\":1704168900123,\"ltp\":1,\"qty\":1}\r",
            &mut out,
        );
        assert!(matches!(out[0], Event::Tick(_)));
    }

    /// Every line and frame is one item or more: what decodes into nothing
    /// else is a skip, so `lines read` adds up.
    #[test]
    fn what_holds_nothing_is_skipped_never_nothing() {
        let mut d = LineDecoder::new(256);
        let tardis = SourceMeta {
            format: Format::TardisCsv,
            symbol: None,
            exchange: String::new(),
        };
        let header = b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount";
        let good =
            b"binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132";
        let mut out = Vec::new();
        // A header at the start and again mid-file (concatenated dumps).
        for line in [&header[..], good, b"", header, b"\r", good] {
            let first = out.len();
            d.decode(&tardis, line, &mut out);
            assert_eq!(
                items(&out[first..]),
                1,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let kinds: Vec<&str> = out
            .iter()
            .map(|e| match e {
                Event::Tick(_) => "tick",
                Event::Skipped { feed } if &**feed == "tardis" => "skipped",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["skipped", "tick", "skipped", "skipped", "skipped", "tick"]
        );

        let frame = |d: &mut LineDecoder, feed: &str, f: venues::Frame<'_>| {
            let mut out = Vec::new();
            d.decode_frame(feed, f, 1_700_000_000_000_000_000, &mut out);
            out
        };
        let skipped_of =
            |out: &[Event], name: &str| matches!(out, [Event::Skipped { feed }] if &**feed == name);
        for text in [
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}"#,
            r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[]}"#,
            // An illiquid instrument: both sides empty.
            r#"{"arg":{"channel":"tickers","instId":"X-USDT"},"data":[{"instId":"X-USDT","bidPx":"","askPx":"","ts":"1597026383085"}]}"#,
        ] {
            let out = frame(&mut d, "okx", venues::Frame::Text(text.as_bytes()));
            assert!(skipped_of(&out, "okx"), "{text}: {out:?}");
        }
        // One side is still a quote.
        let out = frame(
            &mut d,
            "okx",
            venues::Frame::Text(
                br#"{"arg":{"channel":"tickers","instId":"X-USDT"},"data":[{"instId":"X-USDT","bidPx":"1.5","askPx":"","ts":"1597026383085"}]}"#,
            ),
        );
        assert!(
            matches!(out.as_slice(), [Event::Quote(q)] if q.bid.is_some() && q.ask.is_none()),
            "{out:?}"
        );
        for text in [
            r#"{"u":1,"s":"BNBUSDT","b":null,"B":null,"a":null,"A":null}"#,
            r#"{"e":"bookTicker","u":1,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":null,"B":null,"a":null,"A":null}"#,
        ] {
            let out = frame(&mut d, "binance", venues::Frame::Text(text.as_bytes()));
            assert!(skipped_of(&out, "binance"), "{text}: {out:?}");
        }
        let out = frame(&mut d, "dhan", venues::Frame::Binary(b""));
        assert!(skipped_of(&out, "dhan"), "{out:?}");
        // A recorded empty push is skipped under its feed, not as `recorded`.
        let line = serde_json::json!({"recv_ns": 1_700_000_000_000_000_000i64, "feed": "okx",
            "data": r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}"#})
        .to_string();
        let mut out = Vec::new();
        d.decode(&frames_meta(), line.as_bytes(), &mut out);
        assert!(skipped_of(&out, "okx"), "{out:?}");
    }
}
