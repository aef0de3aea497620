//! Instruments of different exchanges never share a key silently.
//!
//! `ticks:{symbol}` names no venue: Binance spot and USD-M futures both trade
//! `BTCUSDT`, and with the default templates both would write
//! `ticks:BTCUSDT`. The checks here find the keys two instruments would both
//! write, so that a config whose feeds would mix them is refused at start, and
//! the writer can refuse a tick whose key already belongs to another exchange.

use crate::config::keys::Keys;
use crate::error::FieldError;
use crate::feeds::FeedConfig;
use crate::keys::KeyTemplate;
use crate::tick::Instrument;
use crate::venue::Venues;

/// The templates of keys that belong to one instrument, by config name.
fn instrument_templates(keys: &Keys) -> [(&'static str, &KeyTemplate); 13] {
    [
        ("tick_stream", &keys.tick_stream),
        ("last_price", &keys.last_price),
        ("bar_stream", &keys.bar_stream),
        ("bar_forming", &keys.bar_forming),
        ("indicator", &keys.indicator),
        ("indicator_state", &keys.indicator_state),
        ("volume_bucket", &keys.volume_bucket),
        ("volume_baseline", &keys.volume_baseline),
        ("volume_session", &keys.volume_session),
        ("volume_profile", &keys.volume_profile),
        ("volume_sessions", &keys.volume_sessions),
        ("depth", &keys.depth),
        ("checkpoint", &keys.checkpoint),
    ]
}

/// `inst`'s key of `template`, with a fixed value for every placeholder that
/// does not name the instrument (interval, session, bucket, ...), so two
/// instruments render alike exactly when their keys can coincide.
fn render(template: &KeyTemplate, prefix: &str, inst: &Instrument) -> String {
    template.render(prefix, |n| match n {
        "symbol" => Some(&inst.symbol),
        "exchange" => Some(&inst.exchange),
        "segment" => Some(inst.segment.as_deref().unwrap_or("")),
        "security_id" => Some(inst.security_id.as_deref().unwrap_or("")),
        "interval" => Some("1m"),
        "name" => Some("rsi"),
        "session" => Some("2024-01-01"),
        "HH" => Some("09"),
        "MM" => Some("15"),
        _ => None,
    })
}

/// The keys (as `a` renders them, one per template) that instruments `a` and
/// `b` of different exchanges would both write; empty when they are of one
/// exchange (names compare in any case, as the calendar's do) or the
/// templates keep them apart.
pub fn shared_keys(keys: &Keys, a: &Instrument, b: &Instrument) -> Vec<String> {
    if a.exchange.eq_ignore_ascii_case(&b.exchange) {
        return Vec::new();
    }
    instrument_templates(keys)
        .into_iter()
        .map(|(_, t)| {
            (
                render(t, keys.base_prefix(), a),
                render(t, keys.base_prefix(), b),
            )
        })
        .filter(|(ka, kb)| ka == kb)
        .map(|(ka, _)| ka)
        .collect()
}

/// What a refused pair says: both exchanges, the keys, the way out.
pub fn collision_message(a: &Instrument, b: &Instrument, shared: &[String]) -> String {
    let shown: Vec<&str> = shared.iter().take(3).map(String::as_str).collect();
    let more = shared.len().saturating_sub(shown.len());
    format!(
        "{} of {} and {} of {} would share {}{}: put {{exchange}} in the key templates \
         (for example keys.tick_stream = \"ticks:{{exchange}}:{{symbol}}\", \
         keys.last_price = \"price:{{exchange}}:{{symbol}}\"), or give the other \
         exchange its own --prefix",
        a.symbol,
        a.exchange,
        b.symbol,
        b.exchange,
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// The instruments `feeds` will produce, where their config says (Binance,
/// OKX, Dhan), each once.
pub fn feed_instruments(feeds: &[FeedConfig], venues: Venues) -> Vec<Instrument> {
    let mut all: Vec<Instrument> = Vec::new();
    for i in feeds.iter().flat_map(|f| instruments_of(f, venues)) {
        if !all.contains(&i) {
            all.push(i);
        }
    }
    all
}

/// The instruments a feed will produce, where its config says; tickwire's
/// own JSON names its exchange per tick, so it is left to the writer's check.
fn instruments_of(feed: &FeedConfig, venues: Venues) -> Vec<Instrument> {
    venues
        .of(feed)
        .map_or_else(Vec::new, |v| v.instruments(feed))
}

/// Every pair of configured feeds whose instruments of different exchanges
/// would share a key: one error per pair and symbol, naming both feeds.
pub fn feed_collisions(feeds: &[FeedConfig], keys: &Keys, venues: Venues) -> Vec<FieldError> {
    let listed: Vec<Vec<Instrument>> = feeds.iter().map(|f| instruments_of(f, venues)).collect();
    let mut errors = Vec::new();
    for (j, later) in listed.iter().enumerate() {
        for (i, earlier) in listed.iter().enumerate().take(j) {
            for b in later {
                for a in earlier.iter().filter(|a| a.symbol == b.symbol) {
                    let shared = shared_keys(keys, a, b);
                    if shared.is_empty() {
                        continue;
                    }
                    errors.push(FieldError::new(
                        format!("feeds[{j}].symbols"),
                        format!(
                            "feed `{}` and feed `{}`: {}",
                            feeds[i].name,
                            feeds[j].name,
                            collision_message(a, b, &shared)
                        ),
                    ));
                }
            }
        }
    }
    errors
}
