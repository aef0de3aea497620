//! A live run whose writer gives up is not left running: it stops its feeds
//! and exits non-zero within seconds, naming Redis.

mod common;

use common::*;

use std::process::Stdio;
use std::time::{Duration, Instant};

use fred::prelude::*;
use tickwire_testkit::ws_server::{TradeFeed, WsServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_whose_writer_gave_up_exits_non_zero_within_seconds() {
    let feed = WsServer::trades(TradeFeed {
        symbols: vec!["BTCUSDT".into()],
        // About 20 s of trades: far longer than the run may last.
        trades: 4_000,
        every: Duration::from_millis(5),
        resend: 0,
        lead: Duration::ZERO,
        last_ahead: Duration::ZERO,
        first_id: 1_000,
    })
    .await
    .unwrap();
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tickwire.toml");
    std::fs::write(
        &cfg,
        format!(
            "[redis]\ncommand_timeout_ms = 300\n[writer]\nmax_retries = 2\n\
             [[feeds]]\nname = \"binance\"\nvenue = \"binance\"\nurl = \"{}\"\n\
             symbols = [\"BTCUSDT\"]\nchannels = [\"trade\"]\n",
            feed.url("/stream")
        ),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let child = tickwire()
        .arg("--config")
        .arg(&cfg)
        .args(["--redis", &server.url(), "run"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let db4 = server.client(4).await.unwrap();
    let t0 = Instant::now();
    while db4.xlen::<u64, _>("ticks:BTCUSDT").await.unwrap() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(15), "no tick landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Redis stops taking writes for longer than the writer retries.
    let _: () = db4
        .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "8000", "WRITE"])
        .await
        .unwrap();
    let paused = Instant::now();
    let mut child = child;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if paused.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the run was still up 20 s after its writer could no longer write");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = paused.elapsed();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "a run whose writer gave up exited 0");
    assert!(
        took < Duration::from_secs(6),
        "the run stopped {took:?} after its writer could no longer write"
    );
    assert!(stderr.contains("Redis"), "{stderr}");
    assert!(
        feed.sent_trades().len() < 4_000,
        "the feed was still sending when the run stopped"
    );
}
