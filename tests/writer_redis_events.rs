//! What the writer does around Redis events it does not cause: a Redis
//! that holds every command for a while when the writer starts (SCRIPT
//! LOAD is retried like a write), and time spent waiting for Redis.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fred::prelude::*;
use tickwire_testkit::RedisServer;

/// SCRIPT EXISTS of each: whether the server's script cache holds it.
async fn cached(server: &RedisServer, shas: &[String]) -> Vec<bool> {
    let c = server.client(0).await.unwrap();
    let mut args = vec!["EXISTS".to_string()];
    args.extend(shas.iter().cloned());
    let v: Vec<i64> = c.custom(fred::cmd!("SCRIPT"), args).await.unwrap();
    v.into_iter().map(|n| n == 1).collect()
}

/// The Lua engine's start loads its scripts while Redis holds every
/// command for 1.5 s (three 500 ms command timeouts): the SCRIPT LOAD that
/// times out is sent again, the writer starts and the scripts are in
/// Redis' cache, instead of a failed start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_load_at_start_is_retried_through_a_paused_redis() {
    let server = redis();
    let cfg = config(
        &server,
        "[redis]\ncommand_timeout_ms = 500\n[indicators]\nengine = \"lua\"\n",
    );
    let shas: Vec<String> = [
        tickwire_writer::LUA_VOLUME_ALERT,
        tickwire_writer::LUA_BAR_INDICATORS,
        tickwire_writer::LUA_VWAP,
    ]
    .iter()
    .map(|s| fred::util::sha1_hash(s))
    .collect();
    let pools = std::sync::Arc::new(
        tickwire_writer::RedisPools::connect(&cfg.redis, tickwire_writer::writer_dbs(&cfg))
            .await
            .unwrap(),
    );
    let admin = server.client(0).await.unwrap();
    let _: Value = admin
        .custom(fred::cmd!("CLIENT"), vec!["PAUSE", "1500", "ALL"])
        .await
        .unwrap();
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    let stats = tickwire_writer::run(&cfg, pools, rx)
        .await
        .expect("the start rides out the pause");
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "the scripts were loaded after the pause, {:?} in",
        started.elapsed()
    );
    assert_eq!(stats.write_errors, 0);
    assert_eq!(cached(&server, &shas).await, [true, true, true]);
}
