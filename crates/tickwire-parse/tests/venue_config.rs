//! The venues' part of config validation: each `[[feeds]]` table checked
//! against its venue's module (channels, instruments, options), and the
//! instruments of different exchanges kept off one key.

use tickwire_core::collisions::{feed_collisions, shared_keys};
use tickwire_core::config::{ConfigError, KeysConfig, Overrides};
use tickwire_core::{Config, FeedConfig, Instrument};
use tickwire_parse::venues::dhan::{ltt_basis, LttBasis};
use tickwire_parse::VENUES;

fn fields(e: ConfigError) -> Vec<String> {
    e.fields().iter().map(|f| f.field.clone()).collect()
}

#[test]
fn every_bad_feed_field_is_named_at_once() {
    let text = r#"
        [live]
        idle_timeout_ms = 100
        ping_interval_ms = 500
        [record]
        zstd_level = 40
        [[feeds]]
        name = "a"
        venue = "binance"
        symbols = ["BTCUSDT"]
        channels = ["trade", "depth"]
        colour = "red"
        ltt_basis = "ist"
        [[feeds]]
        name = "a"
        venue = "kraken"
        [[feeds]]
        name = "d"
        venue = "dhan"
        url = "http://x"
        symbols = ["NSE_EQ:1333", "BSE:1", "NSE_EQ:x"]
        ltt_basis = "gmt"
        [[feeds]]
        name = "own"
        venue = "tickwire"
        [[feeds]]
        name = "ok"
        venue = "okx"
        symbols = ["BTC-USDT", "ETH-USDT", "BTC-USDT"]
        channels = ["tickers"]
    "#;
    let err = Config::from_toml(text, &Overrides::default(), VENUES).unwrap_err();
    let mut got = fields(err);
    got.sort();
    assert_eq!(
        got,
        vec![
            "feeds[0].channels[1]",
            "feeds[0].colour",
            "feeds[0].ltt_basis",
            "feeds[1].name",
            "feeds[1].venue",
            "feeds[2].ltt_basis",
            "feeds[2].symbols[1]",
            "feeds[2].symbols[2]",
            "feeds[2].url",
            "feeds[3].url",
            "feeds[4].symbols[2]",
            "live.ping_interval_ms",
            "record.zstd_level",
        ]
    );
}

#[test]
fn dhan_ltt_basis_defaults_to_ist_wall_clock() {
    let text = r#"
        [[feeds]]
        name = "a"
        venue = "dhan"
        symbols = ["NSE_EQ:1333"]
        [[feeds]]
        name = "b"
        venue = "dhan"
        symbols = ["NSE_EQ:1333"]
        ltt_basis = "utc"
    "#;
    let c = Config::from_toml(text, &Overrides::default(), VENUES).unwrap();
    assert_eq!(ltt_basis(&c.feeds[0]), LttBasis::IstWallClock);
    assert_eq!(ltt_basis(&c.feeds[1]), LttBasis::Utc);
    let err = Config::from_toml(
        &text.replace("\"utc\"", "\"UTC+5\""),
        &Overrides::default(),
        VENUES,
    )
    .unwrap_err();
    assert_eq!(err.fields().len(), 1);
    assert_eq!(err.fields()[0].field, "feeds[1].ltt_basis");
    assert!(
        err.fields()[0].message.contains("\"UTC+5\"")
            && err.fields()[0].message.contains("ist, utc"),
        "{}",
        err.fields()[0].message
    );
}

fn feed(name: &str, venue: &str, symbols: &[&str]) -> FeedConfig {
    FeedConfig {
        name: name.into(),
        venue: venue.into(),
        url: None,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        channels: Vec::new(),
        ltt_basis: None,
        rest_url: None,
        backfill: None,
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
    let errors = feed_collisions(&feeds, &keys, VENUES);
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
    assert!(feed_collisions(&feeds, &keys, VENUES).is_empty());
    // Only the tick stream left without the exchange: that one is named.
    let mut config2 = config.clone();
    config2.tick_stream = "ticks:{symbol}".into();
    let errors = feed_collisions(&feeds, &config2.compile().unwrap(), VENUES);
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
    let errors = feed_collisions(&feeds, &keys, VENUES);
    // NSE and BSE RELIANCE are two exchanges on one key.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("RELIANCE of NSE"));
    assert!(errors[0].message.contains("RELIANCE of BSE"));
}

#[test]
fn every_bad_backfill_field_is_named_at_once() {
    let text = r#"
        [backfill]
        max_trades = 0
        max_age_s = 0
        timeout_s = 7200
        max_waiting_bytes = 10
        [[feeds]]
        name = "b"
        venue = "binance"
        symbols = ["BTCUSDT"]
        rest_url = "ftp://api.binance.com"
        [[feeds]]
        name = "d"
        venue = "dhan"
        symbols = ["NSE_EQ:1333"]
        rest_url = "https://api.dhan.co"
        backfill = true
        [[feeds]]
        name = "o"
        venue = "okx"
        symbols = ["BTC-USDT"]
        rest_url = "https://proxy.example:8443"
        backfill = false
    "#;
    let err = Config::from_toml(text, &Overrides::default(), VENUES).unwrap_err();
    let text_of = err.to_string();
    let mut got = fields(err);
    got.sort();
    assert_eq!(
        got,
        vec![
            "backfill.max_age_s",
            "backfill.max_trades",
            "backfill.max_waiting_bytes",
            "backfill.timeout_s",
            "feeds[0].rest_url",
            "feeds[1].backfill",
            "feeds[1].rest_url",
        ],
        "{text_of}"
    );
    assert!(text_of.contains("keeps no trade history"), "{text_of}");
    // The defaults, and a feed's own endpoint and switch, are taken.
    let ok = Config::from_toml(
        "[[feeds]]\nname = \"o\"\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\n\
         rest_url = \"http://127.0.0.1:1\"\nbackfill = false\n",
        &Overrides::default(),
        VENUES,
    )
    .unwrap();
    assert_eq!(ok.backfill.max_trades, 100_000);
    assert_eq!(ok.feeds[0].backfill, Some(false));
}
