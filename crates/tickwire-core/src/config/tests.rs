use super::*;

/// These tests name no feed, so no venue need be known.
const NO_VENUES: Venues = Venues::new(&[]);

fn fields(e: ConfigError) -> Vec<String> {
    e.fields().iter().map(|f| f.field.clone()).collect()
}

#[test]
fn empty_file_is_the_defaults() {
    let c = Config::defaults(&Overrides::default()).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.databases.get(Db::ContinuousMarket), 4);
    assert_eq!(c.ttl.secs(Db::Prices), 57_600);
}

#[test]
fn every_bad_field_is_named_at_once() {
    let text = r#"
        bogus_top = 1
        [redis]
        url = "http://nope"
        pool_size = "two"
        [databases]
        prices = 22
        colour = "red"
        [ttl]
        default = 0
        [ttl.override]
        pricez = 10
        [writer]
        batch_size = 0
        [keys]
        tick_stream = "ticks:{sym}"
        [bars]
        intervals = ["1m", "5m", "60s"]
        [indicators]
        interval = "1m"
        [alerts]
        volume_ratio_threshold = nan
        maxlen = 0
        [exchanges.NSE]
        timezone = "Asia/Kolkata"
        phases = [
            { name = "pre_open", start = "09:00", end = "09:08", db = "premarket" },
            { name = "continuous", start = "09:05", end = "15:30", db = "continuous_market" },
        ]
    "#;
    let err = Config::from_toml(text, &Overrides::default(), NO_VENUES).unwrap_err();
    let overlap = err
        .fields()
        .iter()
        .find(|f| f.field == "exchanges.NSE.phases[1]")
        .map(|f| f.message.clone())
        .unwrap_or_default();
    assert!(
        overlap.contains("exchange NSE")
            && overlap.contains("\"pre_open\"")
            && overlap.contains("\"continuous\""),
        "{overlap}"
    );
    let mut got = fields(err);
    got.sort();
    assert_eq!(
        got,
        vec![
            "alerts.maxlen",
            "alerts.volume_ratio_threshold",
            "bars.intervals[2]",
            "bogus_top",
            "databases.colour",
            "databases.prices",
            "exchanges.NSE.phases[1]",
            "keys.tick_stream",
            "redis.pool_size",
            "redis.url",
            "ttl.default",
            "ttl.override.pricez",
            "writer.batch_size",
        ]
    );
}

#[test]
fn overrides_win_and_are_validated() {
    let o = Overrides {
        redis_url: Some("redis://10.0.0.1:7000".into()),
        prefix: Some("bt:".into()),
        ..Default::default()
    };
    let c = Config::from_toml("[redis]\nurl = \"redis://x:1\"\n", &o, NO_VENUES).unwrap();
    assert_eq!(c.redis.url, "redis://10.0.0.1:7000");
    assert_eq!(c.keys.prefix, "bt:");
    let bad = Overrides {
        redis_url: Some("nonsense".into()),
        prefix: None,
        ..Default::default()
    };
    assert_eq!(
        fields(Config::from_toml("", &bad, NO_VENUES).unwrap_err()),
        vec!["redis.url"]
    );
}

#[test]
fn ttl_override_applies_per_db() {
    let c = Config::from_toml(
        "[ttl.override]\nprices = 60\n",
        &Overrides::default(),
        NO_VENUES,
    )
    .unwrap();
    assert_eq!(c.ttl.secs(Db::Prices), 60);
    assert_eq!(c.ttl.secs(Db::System), 57_600);
}

#[test]
fn syntax_errors_are_reported() {
    assert!(matches!(
        Config::from_toml("[redis\n", &Overrides::default(), NO_VENUES),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_url("redis://:s3cret@h:6379/2"),
        "redis://:***@h:6379/2"
    );
    assert_eq!(
        redact_url("redis://u:s3cret@h:6379"),
        "redis://u:***@h:6379"
    );
    assert_eq!(redact_url("redis://tok@h:6379"), "redis://***@h:6379");
    assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
}

#[test]
fn redis_tls_names_every_bad_field_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not checked here").unwrap();
    // A plaintext URL, a missing CA, a certificate without its key and an
    // unknown key: all four named in one report.
    let text = format!(
        "[redis]\nurl = \"redis://h:6379\"\n[redis.tls]\nca_file = {:?}\ncert_file = {:?}\ncolour = 1\n",
        dir.path().join("missing.pem"),
        ca,
    );
    let err = Config::from_toml(&text, &Overrides::default(), NO_VENUES).unwrap_err();
    let mut got = fields(err);
    got.sort();
    assert_eq!(
        got,
        vec![
            "redis.tls",
            "redis.tls.ca_file",
            "redis.tls.colour",
            "redis.tls.key_file"
        ]
    );
    // A key without its certificate names the certificate.
    let text = format!("[redis]\nurl = \"rediss://h:6379\"\n[redis.tls]\nkey_file = {ca:?}\n");
    let err = Config::from_toml(&text, &Overrides::default(), NO_VENUES).unwrap_err();
    assert_eq!(fields(err), vec!["redis.tls.cert_file"]);
    // A complete section over rediss:// loads.
    let text = format!(
        "[redis]\nurl = \"rediss://h:6379\"\n[redis.tls]\nca_file = {ca:?}\ncert_file = {ca:?}\nkey_file = {ca:?}\nserver_name = \"redis.internal\"\n"
    );
    let c = Config::from_toml(&text, &Overrides::default(), NO_VENUES).unwrap();
    let tls = c.redis.tls.expect("[redis.tls]");
    assert_eq!(tls.ca_file.as_deref(), Some(ca.as_path()));
    assert_eq!(tls.server_name.as_deref(), Some("redis.internal"));
}

fn placed(toml: &str, profiles: &[&str]) -> Result<Config, ConfigError> {
    Config::from_toml(
        toml,
        &Overrides {
            redis_url: Some("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001".into()),
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            prefix: Some("bt:".into()),
        },
        NO_VENUES,
    )
}

#[test]
fn cluster_keys_carry_their_namespace_and_the_symbol_as_hash_tag() {
    let c = placed("", &[]).unwrap();
    let keys = c.key_templates().clone();
    let inst = |n: &str| match n {
        "symbol" => Some("BTCUSDT"),
        "exchange" => Some("binance"),
        "session" => Some("2024-03-05"),
        "HH" => Some("10"),
        "MM" => Some("03"),
        _ => None,
    };
    let ticks = keys
        .tick_stream
        .render(keys.prefix_of(Db::ContinuousMarket), inst);
    assert_eq!(ticks, "bt:continuous_market:ticks:{BTCUSDT}");
    let pre = keys.tick_stream.render(keys.prefix_of(Db::Premarket), inst);
    assert_eq!(pre, "bt:premarket:ticks:{BTCUSDT}");
    let price = keys.last_price.render(keys.prefix_of(Db::Prices), inst);
    assert_eq!(price, "bt:prices:price:{BTCUSDT}");
    let bucket = keys
        .volume_bucket
        .render(keys.prefix_of(Db::CumulativeVolume), inst);
    assert_eq!(
        bucket,
        "bt:cumulative_volume:volume:bucket:{BTCUSDT}:2024-03-05:10:03"
    );
    let hb = keys.heartbeat.render(keys.prefix_of(Db::System), |_| None);
    assert_eq!(hb, "bt:system:tickwire:heartbeat");
    let feed = keys
        .feed_status
        .render_one(keys.prefix_of(Db::System), "feed", "binance");
    assert_eq!(feed, "bt:system:feed:{binance}:status");
    let alerts = keys
        .volume_alerts
        .render(keys.prefix_of(Db::Alerts), |_| None);
    assert_eq!(alerts, "bt:alerts:alerts:volume_surge");
    let marker = keys
        .volume_alert_marker
        .render(keys.prefix_of(Db::Alerts), inst);
    assert_eq!(
        marker, "bt:alerts:{bt:alerts:alerts:volume_surge}:alert:sent:BTCUSDT:2024-03-05:10:03",
        "the alert script's two keys share the stream's slot"
    );
    // One Redis: the same templates as written.
    let one = Config::from_toml("", &Overrides::default(), NO_VENUES).unwrap();
    let keys = one.key_templates().clone();
    assert_eq!(
        keys.tick_stream.render(keys.prefix_of(Db::Premarket), inst),
        "ticks:BTCUSDT"
    );
}

#[test]
fn an_instance_names_the_process_keys() {
    let c = Config::from_toml(
        "[process]\ninstance = \"a-1\"\n",
        &Overrides::default(),
        NO_VENUES,
    )
    .unwrap();
    let keys = c.key_templates().clone();
    let p = keys.prefix_of(Db::System);
    assert_eq!(keys.heartbeat.render(p, |_| None), "tickwire:heartbeat:a-1");
    assert_eq!(
        keys.feed_status.render_one(p, "feed", "okx"),
        "feed:okx:status:a-1"
    );
    assert_eq!(
        keys.deadletter.render_one(p, "feed", "okx"),
        "deadletter:okx:a-1"
    );
    let c = placed("[process]\ninstance = \"a-1\"\n", &[]).unwrap();
    let keys = c.key_templates().clone();
    let p = keys.prefix_of(Db::System);
    assert_eq!(
        keys.heartbeat.render(p, |_| None),
        "bt:system:tickwire:heartbeat:{a-1}"
    );
    assert_eq!(
        keys.feed_status.render_one(p, "feed", "okx"),
        "bt:system:feed:{okx}:status:{a-1}"
    );
    let bad = Config::from_toml(
        "[process]\ninstance = \"a b\"\n",
        &Overrides::default(),
        NO_VENUES,
    );
    let Err(ConfigError::Invalid(errors)) = bad else {
        panic!("a blank in the instance is refused")
    };
    assert!(
        errors.iter().any(|e| e.field == "process.instance"),
        "{errors:?}"
    );
}

#[test]
fn a_cluster_refuses_braces_in_the_prefix_and_profile_keys_naming_no_instrument() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("flat.toml");
    std::fs::write(
        &profile,
        "[last_price]\nkey = \"ltp\"\ntype = \"hash\"\nencoding = \"fields\"\n\
         db = 2\nttl = 60\nfields = [\"ltp\"]\n",
    )
    .unwrap();
    let Err(ConfigError::Invalid(errors)) = placed("", &[profile.to_str().unwrap()]) else {
        panic!("a flat profile key is refused on a cluster")
    };
    assert!(
        errors
            .iter()
            .any(|e| e.field.contains("last_price.key") && e.message.contains("{symbol}")),
        "{errors:?}"
    );
    let Err(ConfigError::Invalid(errors)) = Config::from_toml(
        "[redis]\ncluster = true\n[keys]\nprefix = \"{bt}:\"\n",
        &Overrides::default(),
        NO_VENUES,
    ) else {
        panic!("braces in the prefix are refused on a cluster")
    };
    assert!(
        errors.iter().any(|e| e.field == "keys.prefix"),
        "{errors:?}"
    );
    // Dhan's layout names its instruments by security id: that is the tag.
    let c = placed("", &["dhanscalper"]).unwrap();
    let ticks = c.profiles.others[0].last_price.as_ref().unwrap();
    assert_eq!(
        ticks.key.render("", |n| match n {
            "segment" => Some("NSE_EQ"),
            "security_id" => Some("2885"),
            _ => None,
        }),
        "ticks:NSE_EQ:{2885}"
    );
}

#[test]
fn problems_come_in_the_order_of_the_sections() {
    let text =
        "[keys]\ntick_stream = \"t:{sym}\"\n[metrics]\nlisten = \"x\"\n[alerts]\nmaxlen = 0\n";
    let err = Config::from_toml(text, &Overrides::default(), NO_VENUES).unwrap_err();
    assert_eq!(
        fields(err),
        ["alerts.maxlen", "keys.tick_stream", "metrics.listen"]
    );
}
