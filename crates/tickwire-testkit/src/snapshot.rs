//! Everything tickwire wrote, read back for comparing two runs.

use std::collections::HashMap;

use fred::prelude::*;
use futures_util::StreamExt;

use crate::RedisServer;

/// Every key of `dbs` (in that order) with its content: hashes, sets and
/// sorted sets sorted, streams with their IDs and sorted fields, strings and
/// lists as they are. The heartbeat is left out: it says when the process last beat,
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

/// The DBs a run leaves something in: the outputs (2 to 6), then its own
/// checkpoints (0).
pub const RUN_DBS: [u8; 6] = [2, 3, 4, 5, 6, 0];

/// Asserts that `got` holds what `want` holds in `dbs` (as [`snapshot()`]
/// reads them): the same keys, each with the same content. `what` names the
/// case in the failure.
pub async fn assert_same(got: &RedisServer, want: &RedisServer, dbs: &[u8], what: &str) {
    let (g, w) = (snapshot(got, dbs).await, snapshot(want, dbs).await);
    assert_eq!(
        g.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        w.iter().map(|k| (k.0, &k.1)).collect::<Vec<_>>(),
        "{what}: the keys"
    );
    for (a, b) in g.iter().zip(&w) {
        assert!(
            a == b,
            "{what}: db {} key {} differs\n got {:.400}\nwant {:.400}",
            b.0,
            b.1,
            a.2,
            b.2
        );
    }
}

/// Every key of a cluster (SCAN on every primary) with its content, as
/// [`snapshot()`] reads it, sorted by key; heartbeats left out.
pub async fn snapshot_cluster(cluster: &crate::RedisCluster) -> Vec<(String, String)> {
    let c = cluster
        .client()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"));
    let mut keys = Vec::new();
    let mut scan = c.scan_cluster_buffered("*", Some(1000), None);
    while let Some(k) = scan.next().await {
        match k {
            Ok(k) => keys.extend(k.as_str().map(str::to_string)),
            Err(e) => panic!("SCAN on the cluster failed: {e}"),
        }
    }
    drop(scan);
    keys.sort();
    let mut out = Vec::new();
    for k in keys
        .into_iter()
        .filter(|k| !k.contains("tickwire:heartbeat"))
    {
        let content = read(&c, &k).await.unwrap_or_else(|e| format!("error: {e}"));
        out.push((k, content));
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
        "list" => {
            let l: Vec<String> = c.lrange(k, 0, -1).await?;
            format!("{l:?}")
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

/// Whether two contents read by [`snapshot()`] are equal, numbers with a
/// fraction or an exponent to `rel` relative (what float arithmetic in
/// another order may change); everything else, integers included (times,
/// counts, stream IDs), exactly.
pub fn equal_within(a: &str, b: &str, rel: f64) -> bool {
    let (ta, tb) = (tokens(a), tokens(b));
    ta.len() == tb.len()
        && ta.iter().zip(&tb).all(|(x, y)| match (x, y) {
            (Token::Float(x), Token::Float(y)) => {
                x == y || (x - y).abs() <= rel * x.abs().max(y.abs())
            }
            _ => x == y,
        })
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Text(&'a str),
    Float(f64),
}

/// `s` cut into numbers with a fraction or exponent and the text between.
fn tokens(s: &str) -> Vec<Token<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut text) = (0, 0);
    while i < b.len() {
        let starts =
            b[i].is_ascii_digit() || (b[i] == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        let after_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if starts && !after_word {
            let end = i
                + 1
                + b[i + 1..]
                    .iter()
                    .take_while(|c| {
                        c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+')
                    })
                    .count();
            let run = &s[i..end];
            if run.contains(['.', 'e', 'E']) {
                if let Ok(v) = run.parse::<f64>() {
                    out.push(Token::Text(&s[text..i]));
                    out.push(Token::Float(v));
                    text = end;
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out.push(Token::Text(&s[text..]));
    out
}

#[cfg(test)]
mod tests {
    use super::equal_within;

    #[test]
    fn floats_are_equal_within_the_tolerance_and_nothing_else_is() {
        let a = r#"[("value", "61.25000000000001"), ("ts", "1704067200000")]"#;
        assert!(equal_within(a, a, 0.0));
        assert!(equal_within(
            a,
            r#"[("value", "61.25"), ("ts", "1704067200000")]"#,
            1e-12
        ));
        assert!(!equal_within(
            a,
            r#"[("value", "61.2501"), ("ts", "1704067200000")]"#,
            1e-12
        ));
        // Integers (times, counts, IDs) exactly, however large.
        assert!(!equal_within(
            r#"("ts", "1704067200000")"#,
            r#"("ts", "1704067200001")"#,
            1e-3
        ));
        assert!(!equal_within("1704067200100-0", "1704067200100-1", 1.0));
        assert!(!equal_within("2024-01-01", "2024-01-02", 1.0));
        assert!(equal_within("x1.5e3", "x1.5e3", 0.0));
        assert!(!equal_within("[1.5, 2.5]", "[1.5]", 1.0));
    }
}
