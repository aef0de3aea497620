//! Everything tickwire wrote, read back for comparing two runs.

use std::collections::HashMap;

use fred::prelude::*;
use futures_util::StreamExt;

use crate::RedisServer;

/// Every key of `dbs` (in that order) with its content: hashes, sets and
/// sorted sets sorted, streams with their IDs and sorted fields, strings as
/// they are. The heartbeat is left out: it says when the process last beat,
/// not what it wrote.
pub async fn snapshot(server: &RedisServer, dbs: &[u8]) -> Vec<(u8, String, String)> {
    let mut out = Vec::new();
    for &db in dbs {
        let c = server
            .client(db)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test redis-server: {e}"));
        let mut keys = Vec::new();
        let mut scan = c.scan_buffered("*", Some(1000), None);
        while let Some(k) = scan.next().await {
            if let Some(k) = k.ok().and_then(|k| k.as_str().map(str::to_string)) {
                keys.push(k);
            }
        }
        keys.sort();
        for k in keys.into_iter().filter(|k| k != "tickwire:heartbeat") {
            let content = read(&c, &k).await.unwrap_or_else(|e| format!("error: {e}"));
            out.push((db, k, content));
        }
    }
    out
}

async fn read(c: &Client, k: &str) -> Result<String, fred::error::Error> {
    let kind: String = c.r#type(k).await?;
    Ok(match kind.as_str() {
        "hash" => {
            let mut h: Vec<(String, String)> = c
                .hgetall::<HashMap<String, String>, _>(k)
                .await?
                .into_iter()
                .collect();
            h.sort();
            format!("{h:?}")
        }
        "string" => format!("{:?}", c.get::<String, _>(k).await?),
        "zset" => {
            let z: Vec<String> = c.zrange(k, 0, -1, None, false, None, true).await?;
            format!("{z:?}")
        }
        "set" => {
            let mut m: Vec<String> = c.smembers(k).await?;
            m.sort();
            format!("{m:?}")
        }
        _ => {
            let e: Vec<(String, HashMap<String, String>)> = c.xrange(k, "-", "+", None).await?;
            let e: Vec<(String, Vec<(String, String)>)> = e
                .into_iter()
                .map(|(id, f)| {
                    let mut f: Vec<_> = f.into_iter().collect();
                    f.sort();
                    (id, f)
                })
                .collect();
            format!("{e:?}")
        }
    })
}
