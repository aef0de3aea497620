//! A restart changes nothing: the same input given to one process, or cut
//! into several processes one after the other (inside a millisecond, inside
//! a minute, overlapping), leaves every key tickwire writes equal.

mod common;

use common::*;
use tickwire_testkit::prelude::*;
use tickwire_testkit::RedisServer;

/// Tardis-shaped trades of two instruments with ids: three trades in each
/// millisecond, a trade every 1.5 s, over 40 minutes.
fn trades() -> Vec<String> {
    let t0 = 1_582_329_600_000_000i64; // µs, 2020-02-22 00:00 UTC
    let mut out = Vec::new();
    for i in 0..1_600i64 {
        for (j, symbol) in ["BTCUSDT", "ETHUSDT"].iter().enumerate() {
            let ts = t0 + (i / 3) * 1_500_000 + j as i64 * 700;
            out.push(format!(
                "binance-futures,{symbol},{ts},{},{},buy,{}.{},0.{:03}",
                ts + 250_000,
                50_000_000 + i,
                9_600 + (i * 7 + j as i64 * 3) % 53,
                i % 10,
                1 + (i * 13) % 997
            ));
        }
    }
    out
}

const HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

fn file(dir: &std::path::Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    write(dir, name, &format!("{HEADER}\n{}\n", lines.join("\n")))
}

/// Replays each file in its own process-like run, one after the other.
async fn runs(server: &RedisServer, toml: &str, files: &[std::path::PathBuf]) {
    for f in files {
        replay_open(&config(server, toml), std::slice::from_ref(f)).await;
    }
}

async fn restarts_change_nothing(toml: &str) {
    let lines = trades();
    let dir = tempfile::tempdir().unwrap();
    let reference = redis();
    runs(&reference, toml, &[file(dir.path(), "all.csv", &lines)]).await;

    // Cut inside a millisecond (the 3 trades of one ms are lines k, k+2, k+4).
    let cut = 1_203;
    let server = redis();
    let parts = [
        file(dir.path(), "a.csv", &lines[..cut]),
        file(dir.path(), "b.csv", &lines[cut..]),
    ];
    runs(&server, toml, &parts).await;
    assert_same(&server, &reference, &RUN_DBS, "cut inside a millisecond").await;

    // Three processes, cut inside minutes, the later ones overlapping the
    // earlier ones' input.
    let server = redis();
    let parts = [
        file(dir.path(), "c.csv", &lines[..777]),
        file(dir.path(), "d.csv", &lines[500..2_345]),
        file(dir.path(), "e.csv", &lines[2_000..]),
    ];
    runs(&server, toml, &parts).await;
    assert_same(&server, &reference, &RUN_DBS, "overlapping cuts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_changes_nothing_inline_engine() {
    restarts_change_nothing("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_changes_nothing_lua_engine() {
    restarts_change_nothing("[indicators]\nengine = \"lua\"\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_without_ids_continue_by_their_place_in_the_millisecond() {
    use tickwire_testkit::synth::{write_ticks, SynthSpec};
    let spec = SynthSpec {
        instruments: 2,
        sessions: 1,
        ticks_per_session: 1_500,
        seed: 3,
        start: jiff::civil::date(2024, 1, 1),
    };
    let mut data = Vec::new();
    write_ticks(&spec, &mut data).unwrap();
    let text = String::from_utf8(data).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let dir = tempfile::tempdir().unwrap();
    let whole = |name: &str, part: &[String]| write(dir.path(), name, &(part.join("\n") + "\n"));

    let reference = redis();
    runs(&reference, "", &[whole("all.jsonl", &lines)]).await;
    let server = redis();
    let cut = lines.len() / 2 + 1;
    runs(
        &server,
        "",
        &[
            whole("a.jsonl", &lines[..cut]),
            whole("b.jsonl", &lines[cut..]),
        ],
    )
    .await;
    assert_same(&server, &reference, &RUN_DBS, "id-less ticks cut in two").await;
    // And the whole file again after both: nothing new.
    let s = replay_open(&config(&server, ""), &[whole("again.jsonl", &lines)]).await;
    assert_eq!(s.writer.ticks_written, 0);
    assert_eq!(s.state.resent, lines.len() as u64);
    assert_same(&server, &reference, &RUN_DBS, "a third run of everything").await;
}
