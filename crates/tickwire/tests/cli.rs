//! The command line as a user runs it: exit codes, what it prints, what lands.

use tickwire_testkit::prelude::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sample_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        "{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080700100,\"ltp\":612.35,\"qty\":10}\n",
    )
    .unwrap();
    p
}

#[test]
fn bad_config_is_rejected_naming_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "bad.toml", "[redis]\npool_size = 0\nurll = \"redis://x\"\n[databases]\nprices = 99\n[writer]\nflush_interval_ms = \"soon\"\n");
    let input = sample_file(dir.path(), "t.jsonl");
    let (out, _, stderr) = run(tickwire!()
        .arg("--config")
        .arg(&cfg)
        .arg("replay")
        .arg(&input));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for field in [
        "redis.pool_size",
        "redis.urll",
        "databases.prices",
        "writer.flush_interval_ms",
    ] {
        assert!(
            stderr.contains(&format!("`{field}`")),
            "{field} not named in:\n{stderr}"
        );
    }
    assert!(stderr.contains("4 problems"), "{stderr}");
}

#[test]
fn shipped_config_file_is_valid_and_equals_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tickwire.toml");
    let overrides = tickwire_core::config::Overrides::default();
    let loaded = tickwire_core::Config::load(&path, &overrides, tickwire_parse::VENUES)
        .expect("config/tickwire.toml is valid");
    assert_eq!(loaded, tickwire_core::Config::defaults(&overrides).unwrap());
}

#[test]
fn missing_files_are_clear_errors_not_panics() {
    let (out, _, stderr) = run(tickwire!().args([
        "--config",
        "/nonexistent/tickwire.toml",
        "replay",
        "x.jsonl",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot read config file /nonexistent/tickwire.toml"),
        "{stderr}"
    );

    let (out, _, stderr) = run(tickwire!().args([
        "--redis",
        "redis://127.0.0.1:1",
        "replay",
        "/nonexistent/ticks.jsonl",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot open /nonexistent/ticks.jsonl"),
        "{stderr}"
    );
}

#[test]
fn unreachable_redis_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_file(dir.path(), "t.jsonl");
    let started = Instant::now();
    // A startup waits for Redis; three attempts, then it says so.
    let cfg = config_file(
        dir.path(),
        "tickwire.toml",
        "[redis]\nreconnect_max_attempts = 3\n",
    );
    let (out, _, stderr) = run(tickwire!()
        .args(["--redis", "redis://:s3cret@127.0.0.1:1", "--config"])
        .arg(&cfg)
        .arg("replay")
        .arg(&input));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot connect to Redis at redis://:***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("gave up after 3 attempts") && stderr.contains("waiting for Redis"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_replay_started_before_redis_waits_for_it_and_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_file(dir.path(), "t.jsonl");
    let mut server = tickwire_testkit::RedisServer::start_persistent().unwrap();
    server.crash().unwrap();
    let child = tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    server.recover().unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting for Redis"), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 1, "{stdout}");
}

#[test]
fn replay_takes_the_url_from_the_environment_and_prefixes_keys() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let input = sample_file(dir.path(), "t.jsonl");
    let (out, stdout, stderr) = run(tickwire!()
        .env("TICKWIRE_REDIS_URL", server.url())
        .args(["--prefix", "bt:", "replay", "--max"])
        .arg(&input));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let len: u64 = rt.block_on(async {
        use fred::prelude::*;
        let c = server.client(4).await.unwrap();
        c.xlen("bt:ticks:SBIN").await.unwrap()
    });
    assert_eq!(len, 1);
}

#[test]
fn synth_reproduces_the_bundled_sample_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("again.jsonl");
    let (m, d, n, seed, start) = tickwire::demo::SAMPLE_SPEC;
    let (out, _, stderr) = run(tickwire!()
        .args([
            "synth",
            "--instruments",
            &m.to_string(),
            "--sessions",
            &d.to_string(),
        ])
        .args([
            "--ticks-per-session",
            &n.to_string(),
            "--seed",
            &seed.to_string(),
            "--start",
            start,
        ])
        .arg("--out")
        .arg(&out_path));
    assert!(out.status.success(), "{stderr}");
    let fresh = std::fs::read(&out_path).unwrap();
    let bundled = zstd::decode_all(tickwire::demo::SAMPLE).unwrap();
    assert_eq!(fresh.len(), bundled.len());
    assert!(
        fresh == bundled,
        "the bundled sample is what tickwire synth generates"
    );
    assert_eq!(String::from_utf8(fresh).unwrap().lines().count(), m * d * n);
}

#[test]
fn demo_starts_its_own_redis_replays_the_sample_and_shows_it() {
    let (out, stdout, stderr) = run(tickwire!().arg("demo"));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks read"), 2400);
    assert_eq!(summary_value(&stdout, "ticks written"), 2400);
    let bars = summary_value(&stdout, "bars written");
    assert!(bars > 0, "{stdout}");
    // Per instrument: a tick stream, a 1m bar stream, the forming bar, RSI, ATR, VWAP.
    let db4 = format!(
        "36 keys: 24 hash, 12 stream; {} stream entries; 0 without TTL",
        2400 + bars
    );
    assert!(stdout.contains(&db4), "{stdout}");
    assert!(
        stdout.contains("6 keys: 6 hash; 0 stream entries; 0 without TTL"),
        "{stdout}"
    );
    for symbol in [
        "RELIANCE",
        "TCS",
        "HDFCBANK",
        "INFY",
        "BANKNIFTY-FUT",
        "NIFTY-FUT",
    ] {
        assert!(
            stdout.contains(&format!("price:{symbol} ")),
            "{symbol} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("redis-server stopped"));
}

/// One synthetic session of three instruments (6,000 ticks over 6 h 15 min).
/// Entries in the tick streams of [`trading_day`]'s instruments (DB 4).
fn ticks_in_redis(server: &RedisServer) -> u64 {
    ["RELIANCE", "TCS", "HDFCBANK"]
        .iter()
        .map(|s| {
            redis_cli(server, 4, &["XLEN", &format!("ticks:{s}")])
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum()
}

fn trading_day(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("day.jsonl");
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 3,
        sessions: 1,
        ticks_per_session: 2_000,
        seed: 3,
        start: jiff::civil::date(2024, 1, 2),
    };
    tickwire_testkit::synth::write_ticks(&spec, &mut std::fs::File::create(&file).unwrap())
        .unwrap();
    file
}

#[test]
fn sigterm_stops_reading_drains_flushes_and_exits_zero() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = trading_day(dir.path());
    // At 100x a 6 h 15 min session takes ~4 minutes: it is still running when stopped.
    let child = tickwire!()
        .args(["--redis", &server.url(), "replay", "--speed", "100"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "the first ticks in Redis", || {
        ticks_in_redis(&server) > 0
    });
    let (code, stdout, _) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("stopped early"), "{stdout}");
    let read = summary_value(&stdout, "ticks read");
    let written = summary_value(&stdout, "ticks written");
    assert!(read > 0 && read < 6_000, "stopped part-way: {read}");
    assert_eq!(read, written, "everything read was written");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let in_redis: u64 = rt.block_on(async {
        use fred::prelude::*;
        let c = server.client(4).await.unwrap();
        let mut n = 0;
        for s in ["RELIANCE", "TCS", "HDFCBANK"] {
            n += c.xlen::<u64, _>(format!("ticks:{s}")).await.unwrap();
        }
        n
    });
    assert_eq!(in_redis, written);
}

#[test]
fn demo_without_redis_server_names_the_package_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(tickwire!()
        .arg("demo")
        .env("PATH", empty.path())
        .env_remove("TICKWIRE_REDIS_SERVER"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("redis-server was not found"), "{stderr}");
    assert!(stderr.contains("apt-get install redis-server"), "{stderr}");
}

#[test]
fn baseline_command_reports_what_it_wrote() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("week.jsonl");
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 2,
        sessions: 3,
        ticks_per_session: 300,
        seed: 2,
        start: jiff::civil::date(2024, 1, 1),
    };
    tickwire_testkit::synth::write_ticks(&spec, &mut std::fs::File::create(&file).unwrap())
        .unwrap();
    let cfg = config_file(
        dir.path(),
        "keep.toml",
        "[ttl.override]\ncumulative_volume = 2592000\n",
    );
    let url = server.url();
    let (out, _, stderr) = run(tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &url, "replay"])
        .arg(&file));
    assert!(out.status.success(), "{stderr}");
    let (out, stdout, stderr) = run(tickwire!().arg("--config").arg(&cfg).args([
        "--redis",
        &url,
        "baseline",
        "--lookback",
        "2",
        "--date",
        "2024-01-02",
    ]));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with("baseline: 2 symbols, 4 sessions read, "),
        "{stdout}"
    );
    let (out, _, stderr) = run(tickwire!().args(["--redis", &url, "baseline", "--lookback", "0"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("--lookback must be at least 1"), "{stderr}");
}

#[test]
fn record_then_replay_then_run_from_the_command_line() {
    use tickwire_testkit::ws_server::{Step, WsServer};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trades = |id: u64, ts: i64| {
        Step::Text(format!(
            r#"{{"arg":{{"channel":"trades","instId":"ETH-USDT"}},"data":[{{"instId":"ETH-USDT","tradeId":"{id}","px":"2300.5","sz":"1.5","side":"sell","ts":"{ts}"}}]}}"#
        ))
    };
    let script = vec![
        Step::ExpectText,
        trades(1, 1_704_067_200_000),
        trades(2, 1_704_067_200_500),
        trades(3, 1_704_067_201_000),
        Step::Hold,
    ];
    let ws = rt.block_on(WsServer::start(vec![script], true)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "feeds.toml",
        &format!(
            "[[feeds]]\nname = \"okx\"\nvenue = \"okx\"\nurl = \"{}\"\nsymbols = [\"ETH-USDT\"]\n",
            ws.url("/ws/v5/public")
        ),
    );
    let rec = dir.path().join("rec");
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["record", "--out"])
        .arg(&rec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        Duration::from_secs(15),
        "the recorder's subscription",
        || !ws.texts(0).is_empty(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("recorded 3 frames"), "{stdout}");
    let files: Vec<_> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".frames.jsonl.zst"));

    let server = redis();
    let (out, stdout, stderr) = run(tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "replay"])
        .args(&files));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 3, "{stdout}");

    // `run`, with Dhan credentials in the environment: they reach the URL
    // (the server sees them) but never the log.
    let dhan = rt
        .block_on(WsServer::start(
            vec![vec![Step::ExpectText, Step::Hold]],
            false,
        ))
        .unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[[feeds]]\nname = \"dhan\"\nvenue = \"dhan\"\nurl = \"{}\"\nsymbols = [\"NSE_EQ:1333\"]\n",
            dhan.url("/?version=2&authType=2")
        ),
    )
    .unwrap();
    let child = tickwire!()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "run"])
        .env("DHAN_ACCESS_TOKEN", "SECRET-TOKEN-123")
        .env("DHAN_CLIENT_ID", "CLIENT-987")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(15), "the run's subscription", || {
        !dhan.texts(0).is_empty()
    });
    let (code, stdout, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("run finished"), "{stdout}");
    assert!(
        stderr.contains("token=***"),
        "the URL is logged, redacted: {stderr}"
    );
    for secret in ["SECRET-TOKEN-123", "CLIENT-987"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{secret} leaked: {stderr}"
        );
    }
}

#[test]
fn profiles_are_chosen_with_the_profile_flag() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(dir.path(), "one.jsonl");
    let (out, stdout, stderr) = run(tickwire!()
        .args([
            "--redis",
            &server.url(),
            "--profile",
            "tradingboost",
            "replay",
        ])
        .arg(&file));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks read"), 1);
    assert_eq!(
        redis_cli(&server, 0, &["GET", "price:NSE:SBIN"]),
        r#"{"price":612.35,"timestamp":1704080700100}"#
    );
    let (out, _, stderr) = run(tickwire!()
        .args(["--redis", &server.url(), "--profile", "nope", "replay"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("unknown profile \"nope\"") && stderr.contains("dhanscalper"),
        "{stderr}"
    );
}

#[test]
fn a_second_sigterm_abandons_a_drain_that_redis_holds_up() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let file = trading_day(dir.path());
    let mut child = tickwire!()
        .args(["--redis", &server.url(), "replay", "--speed", "100"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "the first ticks in Redis", || {
        ticks_in_redis(&server) > 0
    });
    // Redis takes no writes for longer than the test: the drain cannot end.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use fred::prelude::*;
        let c = server.client(0).await.unwrap();
        let _: () = c
            .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "20000", "WRITE"])
            .await
            .unwrap();
    });
    let term = |pid: u32| {
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    term(child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first SIGTERM drains"
    );
    term(child.id());
    let Some(status) = wait_exit(&mut child, Duration::from_secs(5)) else {
        let _ = child.kill();
        panic!("still draining 5 s after the second SIGTERM");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the drain is abandoned"), "{stderr}");
}
