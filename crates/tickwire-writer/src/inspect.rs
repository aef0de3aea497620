//! Reading back what is in Redis: keys per DB by type, stream lengths, hashes.
//! Used by `tickwire demo` to show what it wrote (and by the health command).

use std::collections::BTreeMap;

use fred::prelude::*;
use futures_util::StreamExt;

/// What one logical DB holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbReport {
    pub keys: u64,
    /// Keys by Redis type (`stream`, `hash`, ...).
    pub by_type: BTreeMap<String, u64>,
    /// Entries over all streams.
    pub stream_entries: u64,
    /// Keys with no expiry.
    pub without_ttl: u64,
}

/// Walks the DB with SCAN (never KEYS) and sums it up.
pub async fn db_report(client: &Client) -> Result<DbReport, Error> {
    let mut report = DbReport::default();
    let mut keys = client.scan_buffered("*", Some(1_000), None);
    let mut all = Vec::new();
    while let Some(key) = keys.next().await {
        all.push(key?);
    }
    for chunk in all.chunks(500) {
        let p = client.pipeline();
        for k in chunk {
            let _: () = p.r#type(k.clone()).await?;
            let _: () = p.ttl(k.clone()).await?;
        }
        let replies: Vec<Value> = p.all().await?;
        for (k, pair) in chunk.iter().zip(replies.chunks(2)) {
            let kind = pair[0].as_string().unwrap_or_default();
            if pair[1].as_i64() == Some(-1) {
                report.without_ttl += 1;
            }
            if kind == "stream" {
                let n: u64 = client.xlen(k.clone()).await?;
                report.stream_entries += n;
            }
            *report.by_type.entry(kind).or_default() += 1;
            report.keys += 1;
        }
    }
    Ok(report)
}
