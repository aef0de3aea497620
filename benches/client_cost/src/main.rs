//! How much CPU a Redis client spends per pipelined command, measured the way
//! tickwire's figures are: this process's user + system time from
//! /proc/self/stat over N HSETs of a `price:{symbol}` hash's six fields, in
//! pipelines of P, over 10,000 keys. fred is driven as tickwire's lanes drive
//! it (a `Pipeline`, `try_all`, a PING queued behind it so the socket is
//! flushed once); the `redis` crate with its own pipeline on a multiplexed
//! connection.
//!
//!   client-cost URL fred|redis [N] [P]

use std::time::Instant;

use fred::bytes::Bytes;
use fred::prelude::*;

/// This process's CPU seconds so far (utime + stime).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The fields of one price hash (as tickwire writes them).
fn price_fields(i: usize) -> Vec<(String, String)> {
    vec![
        ("ltp".into(), format!("{}.05", 2600 + i % 50)),
        ("ts".into(), (1_704_080_713_828u64 + i as u64).to_string()),
        ("vol".into(), (i * 3).to_string()),
        ("bid".into(), "2600.00".into()),
        ("ask".into(), "2600.10".into()),
        ("exchange".into(), "NSE".into()),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or("redis://127.0.0.1:6379".into());
    let which = args.get(2).cloned().unwrap_or("fred".into());
    let n: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let p: usize = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(500);
    let keys: Vec<String> = (0..10_000).map(|i| format!("price:SYN{i:05}")).collect();
    let data: Vec<Vec<(String, String)>> = (0..p).map(price_fields).collect();
    let (cpu0, t0);
    match which.as_str() {
        "fred" => {
            let client = Client::new(Config::from_url(&url)?, None, None, None);
            client.init().await?;
            // Keys and values made once, as tickwire's lanes hold them
            // (cloning one is a reference count).
            let keys: Vec<Key> = keys.iter().map(|k| Key::from(k.as_str())).collect();
            let data: Vec<Vec<(Key, Value)>> = data
                .iter()
                .map(|f| {
                    f.iter()
                        .map(|(k, v)| {
                            (
                                Key::from(k.as_str()),
                                Value::Bytes(Bytes::copy_from_slice(v.as_bytes())),
                            )
                        })
                        .collect()
                })
                .collect();
            cpu0 = cpu_seconds();
            t0 = Instant::now();
            for b in 0..n / p {
                let pipeline = client.pipeline();
                for (j, fields) in data.iter().enumerate() {
                    let key = keys[(b * p + j) % keys.len()].clone();
                    pipeline.hset::<(), _, _>(key, fields.clone()).await?;
                }
                let (replies, _) =
                    tokio::join!(pipeline.try_all::<Value>(), client.ping::<Value>(None));
                if let Some(Err(e)) = replies.into_iter().find(Result::is_err) {
                    return Err(e.into());
                }
            }
        }
        "redis" => {
            let client = redis::Client::open(url.as_str())?;
            let mut con = client.get_multiplexed_async_connection().await?;
            cpu0 = cpu_seconds();
            t0 = Instant::now();
            for b in 0..n / p {
                let mut pipe = redis::pipe();
                for (j, fields) in data.iter().enumerate() {
                    let mut cmd = redis::cmd("HSET");
                    cmd.arg(&keys[(b * p + j) % keys.len()]);
                    for (k, v) in fields {
                        cmd.arg(k).arg(v);
                    }
                    pipe.add_command(cmd);
                }
                let replies: Vec<redis::Value> = pipe.query_async(&mut con).await?;
                if replies.len() != p {
                    return Err(format!("{} replies to {p} commands", replies.len()).into());
                }
            }
        }
        other => return Err(format!("unknown client {other} (fred or redis)").into()),
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let sent = (n / p * p) as f64;
    println!(
        "{which:5}: {sent} HSETs of 6 fields in pipelines of {p}: client CPU {:.2} us per command, wall {:.2} us per command",
        cpu * 1e6 / sent,
        wall * 1e6 / sent
    );
    Ok(())
}
