//! What a run wrote, read back key by key (for the whole of it, see
//! [`snapshot`](crate::snapshot())).

use std::collections::HashMap;

use fred::prelude::*;
use futures_util::StreamExt;

/// A stream's entries: ID and fields.
pub type Entries = Vec<(String, HashMap<String, String>)>;

pub async fn xrange(client: &Client, key: &str) -> Entries {
    client.xrange(key, "-", "+", None).await.expect("XRANGE")
}

pub async fn hgetall(client: &Client, key: &str) -> HashMap<String, String> {
    client.hgetall(key).await.expect("HGETALL")
}

pub async fn ttl(client: &Client, key: &str) -> i64 {
    client.ttl(key).await.expect("TTL")
}

/// Every key of the client's DB, sorted, found with SCAN.
pub async fn keys(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    let mut scan = client.scan_buffered("*", Some(1000), None);
    while let Some(k) = scan.next().await {
        let k = k.expect("SCAN");
        out.push(k.as_str().expect("a text key").to_string());
    }
    out.sort();
    out
}

/// Asserts the key expires within the default 16 h TTL.
pub async fn assert_ttl(client: &Client, key: &str) {
    let t = ttl(client, key).await;
    assert!(t > 57_000 && t <= 57_600, "{key} has TTL {t}");
}

/// Field `f` of a stream entry (the test fails without it).
pub fn field<'a>(e: &'a (String, HashMap<String, String>), f: &str) -> &'a str {
    e.1.get(f)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("entry {} has no {f}: {:?}", e.0, e.1))
}

/// INFO commandstats: calls per command (upper case).
pub async fn command_calls(client: &Client) -> HashMap<String, u64> {
    let info: String = client
        .custom(fred::cmd!("INFO"), vec!["commandstats"])
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_uppercase(), calls))
        })
        .collect()
}

/// Entries in the tick streams (`ticks:{symbol}`) of `symbols`, in `db4`'s
/// DB; a stream not made yet counts 0.
pub async fn ticks_of(db4: &Client, symbols: &[&str]) -> u64 {
    let mut n = 0;
    for s in symbols {
        let len: u64 = db4.xlen(format!("ticks:{s}")).await.unwrap_or(0);
        n += len;
    }
    n
}

/// Waits (30 s at most) until a run is under way: the first ticks of
/// `symbols` are in their streams in `db4`.
pub async fn first_ticks_in(db4: &Client, symbols: &[&str]) {
    crate::poll::wait_until(
        std::time::Duration::from_secs(30),
        "the first ticks in Redis",
        || async { ticks_of(db4, symbols).await > 0 },
    )
    .await;
}
