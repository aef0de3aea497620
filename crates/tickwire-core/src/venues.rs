//! Instruments of different exchanges never share a key silently.
//!
//! `ticks:{symbol}` names no venue: Binance spot and USD-M futures both trade
//! `BTCUSDT`, and with the default templates both would write
//! `ticks:BTCUSDT`. The checks here find the keys two instruments would both
//! write, so that a config whose feeds would mix them is refused at start, and
//! the writer can refuse a tick whose key already belongs to another exchange.

use crate::config::keys::Keys;
use crate::error::FieldError;
use crate::feeds::{FeedConfig, FeedVenue};
use crate::keys::KeyTemplate;
use crate::tick::Instrument;

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
pub fn feed_instruments(feeds: &[FeedConfig]) -> Vec<Instrument> {
    let mut all: Vec<Instrument> = Vec::new();
    for i in feeds.iter().flat_map(instruments_of) {
        if !all.contains(&i) {
            all.push(i);
        }
    }
    all
}

/// The instruments a feed will produce, where its config says (Binance, OKX,
/// Dhan); tickwire's own JSON names its exchange per tick, so it is left to
/// the writer's check.
fn instruments_of(feed: &FeedConfig) -> Vec<Instrument> {
    match feed.venue() {
        Some(v @ (FeedVenue::Binance | FeedVenue::BinanceFutures)) => feed
            .symbols
            .iter()
            .map(|s| Instrument::new(v.name(), &s.trim().to_ascii_uppercase()))
            .collect(),
        Some(v @ FeedVenue::Okx) => feed
            .symbols
            .iter()
            .map(|s| Instrument::new(v.name(), s.trim()))
            .collect(),
        Some(FeedVenue::Dhan) => feed
            .dhan_instruments()
            .into_iter()
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
            .collect(),
        Some(FeedVenue::Tickwire) | None => Vec::new(),
    }
}

/// Every pair of configured feeds whose instruments of different exchanges
/// would share a key: one error per pair and symbol, naming both feeds.
pub fn feed_collisions(feeds: &[FeedConfig], keys: &Keys) -> Vec<FieldError> {
    let listed: Vec<Vec<Instrument>> = feeds.iter().map(instruments_of).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::KeysConfig;

    fn feed(name: &str, venue: &str, symbols: &[&str]) -> FeedConfig {
        FeedConfig {
            name: name.into(),
            venue: venue.into(),
            url: None,
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            channels: Vec::new(),
            ltt_basis: None,
        }
    }

    #[test]
    fn spot_and_futures_of_one_symbol_collide_on_the_default_layout() {
        let keys = KeysConfig::default().compile().unwrap();
        let feeds = [
            feed("spot", "binance", &["btcusdt", "ETHUSDT"]),
            feed("perp", "binance-futures", &["BTCUSDT"]),
            feed("okx", "okx", &["BTC-USDT"]),
        ];
        let errors = feed_collisions(&feeds, &keys);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "feeds[1].symbols");
        let msg = &errors[0].message;
        for needle in [
            "`spot`",
            "`perp`",
            "binance-futures",
            "ticks:BTCUSDT",
            "{exchange}",
        ] {
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }
    }

    #[test]
    fn exchange_templates_keep_venues_apart() {
        let mut config = KeysConfig::default();
        for t in [
            &mut config.tick_stream,
            &mut config.last_price,
            &mut config.bar_stream,
            &mut config.bar_forming,
            &mut config.indicator,
            &mut config.indicator_state,
            &mut config.volume_bucket,
            &mut config.volume_baseline,
            &mut config.volume_session,
            &mut config.volume_profile,
            &mut config.volume_sessions,
            &mut config.depth,
        ] {
            *t = format!("{{exchange}}:{t}");
        }
        let keys = config.compile().unwrap();
        let feeds = [
            feed("spot", "binance", &["BTCUSDT"]),
            feed("perp", "binance-futures", &["BTCUSDT"]),
        ];
        assert!(feed_collisions(&feeds, &keys).is_empty());
        // Only the tick stream left without the exchange: that one is named.
        let mut config2 = config.clone();
        config2.tick_stream = "ticks:{symbol}".into();
        let errors = feed_collisions(&feeds, &config2.compile().unwrap());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("ticks:BTCUSDT"));
        let keys2 = config2.compile().unwrap();
        let spot = Instrument::new("binance", "BTCUSDT");
        let perp = Instrument::new("binance-futures", "BTCUSDT");
        assert_eq!(shared_keys(&keys2, &spot, &perp), ["ticks:BTCUSDT"]);
    }

    #[test]
    fn one_exchange_in_two_feeds_is_no_collision() {
        let keys = KeysConfig::default().compile().unwrap();
        let feeds = [
            feed("trades", "binance", &["BTCUSDT"]),
            feed("quotes", "binance", &["BTCUSDT"]),
            feed("nse", "dhan", &["NSE_EQ:2885=RELIANCE"]),
            feed("bse", "dhan", &["BSE_EQ:500325=RELIANCE"]),
        ];
        let errors = feed_collisions(&feeds, &keys);
        // NSE and BSE RELIANCE are two exchanges on one key.
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("RELIANCE of NSE"));
        assert!(errors[0].message.contains("RELIANCE of BSE"));
    }
}
