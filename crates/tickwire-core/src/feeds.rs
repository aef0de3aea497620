//! Live feed configuration: the `[[feeds]]` tables, the connection policy
//! (`[live]`) and the recorder (`[record]`).

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// The venues tickwire can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedVenue {
    /// Binance spot combined streams.
    Binance,
    /// Binance USD-M futures combined streams.
    BinanceFutures,
    /// OKX v5 public channels.
    Okx,
    /// Dhan HQ v2 binary live market feed.
    Dhan,
    /// tickwire's normalized tick JSON, one tick per text frame.
    Tickwire,
}

impl FeedVenue {
    pub const ALL: [FeedVenue; 5] = [
        FeedVenue::Binance,
        FeedVenue::BinanceFutures,
        FeedVenue::Okx,
        FeedVenue::Dhan,
        FeedVenue::Tickwire,
    ];

    /// The name in config and in recordings; also the exchange name of its ticks.
    pub fn name(self) -> &'static str {
        match self {
            FeedVenue::Binance => "binance",
            FeedVenue::BinanceFutures => "binance-futures",
            FeedVenue::Okx => "okx",
            FeedVenue::Dhan => "dhan",
            FeedVenue::Tickwire => "tickwire",
        }
    }

    pub fn from_name(name: &str) -> Option<FeedVenue> {
        FeedVenue::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The venue's public endpoint (Dhan's needs the credentials appended;
    /// tickwire's own has none: its producers are in-house).
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            FeedVenue::Binance => Some("wss://stream.binance.com:9443/stream"),
            FeedVenue::BinanceFutures => Some("wss://fstream.binance.com/stream"),
            FeedVenue::Okx => Some("wss://ws.okx.com:8443/ws/v5/public"),
            FeedVenue::Dhan => Some("wss://api-feed.dhan.co?version=2&authType=2"),
            FeedVenue::Tickwire => None,
        }
    }

    /// The channels subscribed when a feed names none.
    pub fn default_channels(self) -> &'static [&'static str] {
        match self {
            FeedVenue::Binance | FeedVenue::BinanceFutures => &["trade"],
            FeedVenue::Okx => &["trades"],
            FeedVenue::Dhan => &["full"],
            FeedVenue::Tickwire => &[],
        }
    }

    /// The channels a venue knows.
    pub fn known_channels(self) -> &'static [&'static str] {
        match self {
            FeedVenue::Binance | FeedVenue::BinanceFutures => &["trade", "aggTrade", "bookTicker"],
            FeedVenue::Okx => &["trades", "tickers"],
            FeedVenue::Dhan => &["ticker", "quote", "full"],
            FeedVenue::Tickwire => &[],
        }
    }
}

/// One `[[feeds]]` table: a WebSocket connection and what it subscribes to.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Names the feed in `feed:{feed}:status`, `deadletter:{feed}` and recordings.
    pub name: String,
    /// binance, binance-futures, okx, dhan, tickwire.
    pub venue: String,
    /// The endpoint; the venue's public one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Binance `BTCUSDT`, OKX `BTC-USDT`, Dhan `NSE_EQ:1333` or
    /// `NSE_EQ:1333=RELIANCE` (segment, security id, the symbol its keys use).
    #[serde(default)]
    pub symbols: Vec<String>,
    /// The venue's channels (Binance trade/aggTrade/bookTicker, OKX
    /// trades/tickers, Dhan ticker/quote/full); the venue's default when empty.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Dhan only: what the packets' LTT counts from, `ist` (the default: the
    /// Indian wall clock written as if it were UTC) or `utc` (a true epoch).
    /// A replay of a recording decodes with the basis of the feed of the
    /// same name, so it must match the live feed that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ltt_basis: Option<String>,
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

impl FeedConfig {
    /// The venue (validated config: it parses).
    pub fn venue(&self) -> Option<FeedVenue> {
        FeedVenue::from_name(&self.venue)
    }

    /// The LTT basis of a Dhan feed: as configured, else IST wall clock.
    pub fn ltt_basis(&self) -> LttBasis {
        self.ltt_basis
            .as_deref()
            .and_then(LttBasis::from_name)
            .unwrap_or_default()
    }

    /// The channels to subscribe: as configured, or the venue's default.
    pub fn channels(&self) -> Vec<String> {
        match (self.channels.is_empty(), self.venue()) {
            (false, _) => self.channels.clone(),
            (true, Some(v)) => v.default_channels().iter().map(|c| c.to_string()).collect(),
            (true, None) => Vec::new(),
        }
    }

    /// Dhan instruments: (segment name, security id, symbol for the keys).
    pub fn dhan_instruments(&self) -> Vec<DhanInstrument> {
        self.symbols
            .iter()
            .filter_map(|s| DhanInstrument::parse(s).ok())
            .collect()
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

/// Dhan's exchange segments, by header code.
pub const DHAN_SEGMENTS: [(u8, &str); 8] = [
    (0, "IDX_I"),
    (1, "NSE_EQ"),
    (2, "NSE_FNO"),
    (3, "NSE_CURRENCY"),
    (4, "BSE_EQ"),
    (5, "MCX_COMM"),
    (7, "BSE_CURRENCY"),
    (8, "BSE_FNO"),
];

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
        if !DHAN_SEGMENTS.iter().any(|(_, s)| *s == segment) {
            let known: Vec<_> = DHAN_SEGMENTS.iter().map(|(_, s)| *s).collect();
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
        DHAN_SEGMENTS
            .iter()
            .find(|(_, s)| *s == self.segment)
            .map_or(u8::MAX, |(c, _)| *c)
    }
}

/// `[live]`: how feed connections are kept up.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// TCP + TLS + WebSocket handshake must finish within this.
    pub connect_timeout_ms: u64,
    /// After this long without any frame (data, ping or pong) the connection
    /// is taken for dead and replaced.
    pub idle_timeout_ms: u64,
    /// After this long without a frame, send a ping (OKX: the text `ping`;
    /// others: a WebSocket ping) so a quiet but healthy socket answers.
    pub ping_interval_ms: u64,
    /// First reconnect delay; doubles per failed attempt up to the cap, each
    /// delay drawn at random from its upper half (jitter).
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Frames a feed holds while the parser is behind, before it drops
    /// (and counts) the excess. The socket is read all the while.
    pub max_backlog_frames: usize,
    /// Bytes of frame data a feed holds the same way, at most (a frame can be
    /// 16 MiB, so a frame count alone does not bound memory). At least 16 MiB.
    pub max_backlog_bytes: u64,
}

/// The largest WebSocket message a feed accepts; `live.max_backlog_bytes`
/// must hold one.
pub const MAX_FRAME_BYTES: u64 = 16 << 20;

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            idle_timeout_ms: 45_000,
            ping_interval_ms: 15_000,
            backoff_initial_ms: 250,
            backoff_max_ms: 30_000,
            max_backlog_frames: 1_000_000,
            max_backlog_bytes: 256 << 20,
        }
    }
}

/// `[spool]`: where a live feed's frames go once its in-memory backlog is
/// full (Redis down or slower than the feeds), to be handed on in arrival
/// order when the pipeline catches up, by this process or the next.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// One subdirectory per feed (`{dir}/{feed}/`), created when needed. A
    /// relative path is taken from the working directory.
    pub dir: std::path::PathBuf,
    /// Bytes all feeds' spools may hold together; beyond it frames are
    /// dropped (counted). 0 turns the spool off: a full backlog drops.
    pub max_bytes: u64,
    /// A new segment file is started after this many bytes; a segment is
    /// deleted once everything in it has been handed on.
    pub segment_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: "spool".into(),
            max_bytes: 8 << 30,
            segment_bytes: 64 << 20,
        }
    }
}

impl SpoolConfig {
    /// Whether frames are spooled at all.
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }
}

/// A spool segment's file extension while frames in it wait.
pub const SPOOL_SEGMENT_EXT: &str = "seg";
/// A spool segment read to its end, kept a while in case its last frames
/// never reached Redis.
pub const SPOOL_DONE_EXT: &str = "done";

/// The `[spool]` fields that are out of range, every one.
pub fn validate_spool(spool: &SpoolConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spool.dir.as_os_str().is_empty() {
        errors.push(FieldError::new("spool.dir", "must not be empty"));
    }
    if !(64 << 10..=1 << 30).contains(&spool.segment_bytes) {
        errors.push(FieldError::new(
            "spool.segment_bytes",
            format!(
                "must be between 65536 (64 KiB) and 1073741824 (1 GiB) (got {})",
                spool.segment_bytes
            ),
        ));
    }
    errors
}

/// `[record]`: raw frame recordings (`tickwire record`, `run --record DIR`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// Start a new file when the current one has this many bytes (uncompressed).
    pub rotate_bytes: u64,
    /// Also start a new file at each full UTC hour.
    pub rotate_hourly: bool,
    /// Frames are compressed and on disk at most this long after arrival.
    pub flush_ms: u64,
    /// zstd level, 1-19.
    pub zstd_level: i32,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            rotate_bytes: 1 << 30,
            rotate_hourly: true,
            flush_ms: 1_000,
            zstd_level: 3,
        }
    }
}

/// Every problem of the feed, live and record sections.
pub(crate) fn validate(
    feeds: &[FeedConfig],
    live: &LiveConfig,
    record: &RecordConfig,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, f) in feeds.iter().enumerate() {
        errors.extend(validate_feed(i, f, &mut names));
    }
    errors.extend(validate_live_and_record(live, record));
    errors
}

/// The problems of `feeds[i]`; `names` holds the names of the feeds before it.
fn validate_feed<'a>(
    i: usize,
    f: &'a FeedConfig,
    names: &mut std::collections::HashSet<&'a str>,
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
    let Some(venue) = f.venue() else {
        let known: Vec<_> = FeedVenue::ALL.iter().map(|v| v.name()).collect();
        errors.push(FieldError::new(
            field("venue"),
            format!("unknown venue {:?} (known: {})", f.venue, known.join(", ")),
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
    if f.symbols.is_empty() && venue != FeedVenue::Tickwire {
        errors.push(FieldError::new(
            field("symbols"),
            "must name at least one instrument",
        ));
    }
    if let Some(basis) = &f.ltt_basis {
        if venue != FeedVenue::Dhan {
            errors.push(FieldError::new(
                field("ltt_basis"),
                format!(
                    "only Dhan feeds take ltt_basis (this feed's venue is {})",
                    venue.name()
                ),
            ));
        } else if LttBasis::from_name(basis).is_none() {
            let known: Vec<_> = LttBasis::ALL.iter().map(|b| b.name()).collect();
            errors.push(FieldError::new(
                field("ltt_basis"),
                format!("unknown ltt_basis {basis:?} (known: {})", known.join(", ")),
            ));
        }
    }
    if venue == FeedVenue::Dhan {
        for (j, s) in f.symbols.iter().enumerate() {
            if let Err(e) = DhanInstrument::parse(s) {
                errors.push(FieldError::new(format!("feeds[{i}].symbols[{j}]"), e));
            }
        }
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

/// `[live]` and `[record]`: timeouts, backoff, backlog and file settings.
fn validate_live_and_record(live: &LiveConfig, record: &RecordConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, field: &str, msg: String| {
        if !ok {
            errors.push(FieldError::new(field, msg));
        }
    };
    for (field, v) in [
        ("live.connect_timeout_ms", live.connect_timeout_ms),
        ("live.idle_timeout_ms", live.idle_timeout_ms),
        ("live.ping_interval_ms", live.ping_interval_ms),
        ("live.backoff_initial_ms", live.backoff_initial_ms),
        ("live.backoff_max_ms", live.backoff_max_ms),
        ("record.flush_ms", record.flush_ms),
    ] {
        check(v > 0, field, "must be greater than 0".into());
    }
    check(
        live.ping_interval_ms < live.idle_timeout_ms,
        "live.ping_interval_ms",
        format!(
            "must be shorter than live.idle_timeout_ms ({} >= {})",
            live.ping_interval_ms, live.idle_timeout_ms
        ),
    );
    check(
        live.backoff_initial_ms <= live.backoff_max_ms,
        "live.backoff_initial_ms",
        format!(
            "must not exceed live.backoff_max_ms ({} > {})",
            live.backoff_initial_ms, live.backoff_max_ms
        ),
    );
    check(
        live.max_backlog_frames > 0,
        "live.max_backlog_frames",
        "must be greater than 0".into(),
    );
    check(
        live.max_backlog_bytes >= MAX_FRAME_BYTES,
        "live.max_backlog_bytes",
        format!(
            "must be at least {MAX_FRAME_BYTES} (16 MiB, the largest frame; got {})",
            live.max_backlog_bytes
        ),
    );
    check(
        record.rotate_bytes >= 1024,
        "record.rotate_bytes",
        format!("must be at least 1024 (got {})", record.rotate_bytes),
    );
    check(
        (1..=19).contains(&record.zstd_level),
        "record.zstd_level",
        format!("must be between 1 and 19 (got {})", record.zstd_level),
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhan_entries() {
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
    fn the_backlog_bounds_are_validated() {
        let live = LiveConfig {
            max_backlog_frames: 0,
            max_backlog_bytes: 1 << 20,
            ..LiveConfig::default()
        };
        let errors: Vec<String> = validate(&[], &live, &RecordConfig::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("live.max_backlog_frames"), "{errors:?}");
        assert!(
            errors[1].contains("live.max_backlog_bytes") && errors[1].contains("16 MiB"),
            "{errors:?}"
        );
    }
}
