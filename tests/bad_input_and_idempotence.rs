//! Malformed input is counted and dead-lettered while good lines land; a
//! second replay of the same files leaves Redis as the first left it.

mod common;

use common::*;

fn mixed_file(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        dir,
        "mixed.jsonl",
        concat!(
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700100,"ltp":612.35,"qty":10}"#,
            "\n",
            "{this is not json\n",
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700200,"ltp":-1,"qty":10}"#,
            "\n",
            r#"{"exchange":"NSE","symbol":"SBIN","ts":1704080700300,"ltp":612.5,"qty":3}"#,
            "\n",
            r#"{"exchange":"NSE","ts":1704080700400,"ltp":612.5,"qty":3}"#,
            "\n",
            r#"{"exchange":"NSE","symbol":"INFY","ts":1704080700500,"ltp":1500.05,"qty":7}"#,
            "\n",
        ),
    )
}

#[tokio::test]
async fn malformed_lines_are_dead_lettered_and_counted_while_good_lines_land() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let s = replay(&config(&server, ""), &[mixed_file(dir.path())]).await;
    assert_eq!(
        (s.ingest.lines, s.ingest.ticks, s.ingest.rejected),
        (6, 3, 3)
    );
    assert_eq!((s.writer.ticks_written, s.writer.deadlettered), (3, 3));

    let db4 = server.client(4).await.unwrap();
    assert_eq!(xrange(&db4, "ticks:SBIN").await.len(), 2);
    assert_eq!(xrange(&db4, "ticks:INFY").await.len(), 1);

    let db0 = server.client(0).await.unwrap();
    let dead = xrange(&db0, "deadletter:tickwire").await;
    assert_eq!(dead.len(), 3);
    assert!(
        field(&dead[0], "error").starts_with("json:"),
        "{:?}",
        dead[0]
    );
    assert_eq!(field(&dead[0], "raw"), "{this is not json");
    assert!(
        field(&dead[1], "error").starts_with("invalid_tick: price"),
        "{:?}",
        dead[1]
    );
    assert!(
        field(&dead[2], "error").contains("symbol"),
        "names the missing field: {:?}",
        dead[2]
    );
    assert_ttl(&db0, "deadletter:tickwire").await;
}

#[tokio::test]
async fn raw_text_in_dead_letters_is_truncated() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{{\"junk\":\"{}\"\n", "x".repeat(5_000));
    let file = write(dir.path(), "long.jsonl", &long);
    let cfg = config(&server, "[streams]\ndeadletter_raw_bytes = 100\n");
    replay(&cfg, &[file]).await;
    let dead = xrange(&server.client(0).await.unwrap(), "deadletter:tickwire").await;
    let raw = field(&dead[0], "raw");
    assert!(raw.starts_with("{\"junk\":\"xxx"));
    assert_eq!(raw.chars().count(), 101, "100 bytes and an ellipsis");
}

#[tokio::test]
async fn replaying_twice_leaves_redis_exactly_as_after_the_first_run() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample.jsonl");
    let spec = tickwire_testkit::synth::SynthSpec {
        instruments: 4,
        sessions: 2,
        ticks_per_session: 300,
        seed: 9,
        start: jiff::civil::date(2024, 1, 4),
    };
    let mut f = std::fs::File::create(&sample).unwrap();
    tickwire_testkit::synth::write_ticks(&spec, &mut f).unwrap();
    let files = [sample, mixed_file(dir.path())];
    let cfg = config(&server, "");

    let first = replay(&cfg, &files).await;
    assert_eq!(first.writer.ticks_written, 4 * 2 * 300 + 3);
    assert_eq!(first.writer.duplicates, 0);
    let before = snapshot(&server, &[0, 2, 3, 4, 5]).await;

    let second = replay(&cfg, &files).await;
    assert_eq!(second.writer.ticks_written, 0);
    // The checkpoint knows every tick already applied: each is a resend
    // (by its place in its millisecond, these ticks have no venue id).
    assert_eq!(second.state.resent, first.writer.ticks_written);
    assert_eq!(second.writer.duplicates, 0);
    assert_eq!(second.writer.deadlettered, 0);
    assert_eq!(second.writer.deadletter_duplicates, 3);
    let after = snapshot(&server, &[0, 2, 3, 4, 5]).await;
    assert_eq!(after.len(), before.len(), "same keys");
    for (b, a) in before.iter().zip(&after) {
        assert!(
            a == b,
            "{} {} changed:\nbefore {:.600}\nafter  {:.600}",
            b.0,
            b.1,
            b.2,
            a.2
        );
    }
}
