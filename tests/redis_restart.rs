//! A Redis restart with AOF changes nothing: the Redis SIGKILLed and started
//! again from its append-only file (`appendfsync always`, so what it
//! acknowledged is on disk), between two processes or while one is writing,
//! leaves every key tickwire writes equal to one uninterrupted run. And the
//! stream entries the writer numbers itself (dead letters, key profiles'
//! tick streams) continue in a new process after those the last one wrote.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use fred::prelude::*;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_testkit::prelude::*;
use tickwire_testkit::RedisServer;

/// Tardis-shaped trades of two instruments with ids: bursts of four trades
/// in one millisecond, a burst every 0.9 s, over 12 minutes.
fn trades() -> Vec<String> {
    let t0 = 1_582_329_600_000_000i64; // µs, 2020-02-22 00:00 UTC
    let mut out = Vec::new();
    for i in 0..1_600i64 {
        for (j, symbol) in ["BTCUSDT", "ETHUSDT"].iter().enumerate() {
            let ts = t0 + (i / 4) * 1_800_000 + j as i64 * 400;
            out.push(format!(
                "binance-futures,{symbol},{ts},{},{},sell,{}.{},0.{:03}",
                ts + 180_000,
                80_000_000 + i,
                9_700 + (i * 5 + j as i64 * 7) % 47,
                i % 10,
                1 + (i * 29) % 997
            ));
        }
    }
    out
}

const HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

fn file(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    write(dir, name, &format!("{HEADER}\n{}\n", lines.join("\n")))
}

fn persistent() -> RedisServer {
    RedisServer::start_persistent()
        .unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"))
}

/// The SHA-1s of the scripts the writer loads under `toml`'s engine.
fn scripts(lua: bool) -> Vec<String> {
    let mut s = vec![fred::util::sha1_hash(tickwire_writer::LUA_VOLUME_ALERT)];
    if lua {
        s.push(fred::util::sha1_hash(tickwire_writer::LUA_BAR_INDICATORS));
        s.push(fred::util::sha1_hash(tickwire_writer::LUA_VWAP));
    }
    s
}

/// SCRIPT EXISTS of each: whether the server's script cache holds it.
async fn cached(server: &RedisServer, shas: &[String]) -> Vec<bool> {
    let c = server.client(0).await.unwrap();
    let v: Vec<i64> = c
        .custom(fred::cmd!("SCRIPT"), {
            let mut a = vec!["EXISTS".to_string()];
            a.extend(shas.iter().cloned());
            a
        })
        .await
        .unwrap();
    v.into_iter().map(|n| n == 1).collect()
}

fn engine(lua: bool) -> &'static str {
    if lua {
        "[indicators]\nengine = \"lua\"\n"
    } else {
        ""
    }
}

/// (a): two processes cut inside a minute (and inside a millisecond's burst),
/// the Redis SIGKILLed and recovered from its AOF between them.
async fn a_recovered_redis_between_two_processes_changes_nothing(lua: bool) {
    let toml = engine(lua);
    let lines = trades();
    let dir = tempfile::tempdir().unwrap();
    let reference = redis();
    replay_open(
        &config(&reference, toml),
        &[file(dir.path(), "all.csv", &lines)],
    )
    .await;

    // Line k of a burst is at 2k (two instruments): 1_203 cuts BTCUSDT's
    // burst of lines 1_200..1_207 after its second trade, mid-minute.
    let cut = 1_203;
    let mut server = persistent();
    let first = replay_open(
        &config(&server, toml),
        &[file(dir.path(), "a.csv", &lines[..cut])],
    )
    .await;
    assert_eq!(first.writer.ticks_written, cut as u64);
    let before = snapshot(&server, &RUN_DBS).await;
    tokio::task::block_in_place(|| server.crash_and_recover()).unwrap();
    // Everything acknowledged came back from the AOF; the script cache did
    // not (it is never persisted).
    assert_eq!(
        snapshot(&server, &RUN_DBS).await,
        before,
        "the AOF reloaded"
    );
    assert!(
        cached(&server, &scripts(lua)).await.iter().all(|c| !c),
        "the script cache is empty after the restart"
    );
    let second = replay_open(
        &config(&server, toml),
        &[file(dir.path(), "b.csv", &lines[cut..])],
    )
    .await;
    assert_eq!(second.writer.ticks_written, (lines.len() - cut) as u64);
    assert_eq!((second.state.resent, second.writer.duplicates), (0, 0));
    assert_same(
        &server,
        &reference,
        &RUN_DBS,
        "a Redis crash between two processes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_recovered_from_aof_between_processes_changes_nothing_inline_engine() {
    a_recovered_redis_between_two_processes_changes_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_recovered_from_aof_between_processes_changes_nothing_lua_engine() {
    a_recovered_redis_between_two_processes_changes_nothing(true).await;
}

fn paced(file: PathBuf) -> ReplayOptions {
    ReplayOptions {
        feeds: Vec::new(),
        files: vec![file],
        format: None,
        symbol: None,
        // 12 minutes of exchange time in about 2.4 s.
        pace: Pace::Speed(300.0),
        max_raw: 1024,
        chunk_events: 16,
        max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
        close_at_end: false,
    }
}

/// (b): the Redis SIGKILLed and recovered from its AOF while a paced replay
/// writes. The run either rides through (and then has written everything,
/// once) or stops with an error; either way a following run of the whole
/// input leaves every key equal to one uninterrupted run.
async fn a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(lua: bool, down: Duration) {
    let toml = engine(lua);
    let lines = trades();
    let n = lines.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let all = file(dir.path(), "all.csv", &lines);
    let reference = redis();
    replay_open(&config(&reference, toml), std::slice::from_ref(&all)).await;

    let mut server = persistent();
    let cfg = config(
        &server,
        &format!("{toml}[redis]\ncommand_timeout_ms = 500\n[writer]\nbatch_size = 50\n"),
    );
    let run = {
        let (cfg, all) = (cfg.clone(), all.clone());
        tokio::spawn(async move { replay_to_end(&cfg, paced(all)).await })
    };
    let db4 = server.client(4).await.unwrap();
    first_ticks_in(&db4, &["BTCUSDT"]).await;
    let landed: u64 = db4.xlen("ticks:BTCUSDT").await.unwrap();
    assert!(
        landed > 0 && landed < n / 2,
        "{landed} ticks before the crash"
    );
    server.crash().unwrap();
    tokio::time::sleep(down).await;
    tokio::task::block_in_place(|| server.recover()).unwrap();
    match run.await.unwrap() {
        Ok(s) => {
            // It rode through: everything read was written exactly once
            // (what the crash cut off was resent; what Redis had applied
            // came back as already there), and it says so.
            assert_eq!(s.ingest.ticks, n);
            assert_eq!(s.writer.write_errors, 0, "{:?}", s.writer);
            assert_eq!(
                s.writer.ticks_written + s.writer.duplicates,
                n,
                "every tick accounted for: {:?}",
                s.writer
            );
            if lua {
                assert!(
                    s.writer.script_reloads > 0,
                    "the Lua engine met NOSCRIPT and loaded its scripts again"
                );
            }
            assert_same(
                &server,
                &reference,
                &RUN_DBS,
                "a run that rode through the crash",
            )
            .await;
        }
        Err(e) => {
            // It stopped: its error says why (the CLI exits non-zero).
            let text = e.to_string();
            assert!(text.contains("Redis"), "{text}");
        }
    }
    // The default command timeout: the short one above is for the crash.
    let again = replay_open(&config(&server, toml), std::slice::from_ref(&all)).await;
    assert_eq!(again.writer.write_errors, 0);
    assert_same(
        &server,
        &reference,
        &RUN_DBS,
        "the whole input after the crash",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_replay_then_the_whole_input_equals_one_run_inline_engine() {
    a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(false, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_down_for_a_while_mid_replay_then_the_whole_input_equals_one_run() {
    // Three command timeouts' worth of outage: writes fail, are retried.
    a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(
        false,
        Duration::from_millis(1_500),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_replay_then_the_whole_input_equals_one_run_lua_engine() {
    a_redis_crash_mid_replay_then_the_whole_input_equals_one_run(true, Duration::ZERO).await;
}

/// A recorded Binance frame received at `recv_ns`.
fn recorded(recv_ns: i64, data: &str) -> String {
    serde_json::json!({"recv_ns": recv_ns, "feed": "binance", "data": data}).to_string()
}

fn binance_trade(id: u64, t_ms: i64) -> String {
    format!(
        r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t_ms},"s":"BTCUSDT","t":{id},"p":"29000.5","q":"0.5","T":{t_ms},"m":false}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_two_processes_in_one_millisecond_are_both_kept() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let recv = 1_609_459_200_100_000_000i64; // 2021-01-01 00:00:00.100 UTC
    let t = 1_609_459_200_050i64;
    // Each process: a trade, then a bad frame received in the same
    // millisecond as the other process's bad frame.
    let first = write(
        dir.path(),
        "a.jsonl",
        &[
            recorded(recv, &binance_trade(1, t)),
            recorded(recv + 10, "{oops"),
        ]
        .join("\n"),
    );
    let second = write(
        dir.path(),
        "b.jsonl",
        &[
            recorded(recv + 20, &binance_trade(2, t + 1)),
            recorded(recv + 30, "{\"not\":\"a trade\"}"),
        ]
        .join("\n"),
    );
    let cfg = config(&server, "");
    let a = replay_open(&cfg, std::slice::from_ref(&first)).await;
    let b = replay_open(&cfg, std::slice::from_ref(&second)).await;
    assert_eq!((a.writer.deadlettered, b.writer.deadlettered), (1, 1));
    assert_eq!(b.writer.deadletter_duplicates, 0);
    let db0 = server.client(0).await.unwrap();
    let dead = xrange(&db0, "deadletter:binance").await;
    let got: Vec<(&str, &str)> = dead
        .iter()
        .map(|e| (e.0.as_str(), field(e, "raw")))
        .collect();
    assert_eq!(
        got,
        [
            ("1609459200100-0", "{oops"),
            ("1609459200100-1", "{\"not\":\"a trade\"}")
        ]
    );
    assert_eq!(field(&dead[1], "recv_ts"), "1609459200100");

    // Both inputs again, in one process: the same dead letters, recognised
    // as already there, and nothing added.
    let again = replay_open(&cfg, &[first, second]).await;
    assert_eq!(
        (
            again.writer.deadlettered,
            again.writer.deadletter_duplicates
        ),
        (0, 2)
    );
    assert_eq!(xrange(&db0, "deadletter:binance").await, dead);

    // Lines of a tick file carry no receive time: the same holds.
    let tick =
        |ts: i64| format!(r#"{{"exchange":"NSE","symbol":"SBIN","ts":{ts},"ltp":612.35,"qty":1}}"#);
    let first = write(
        dir.path(),
        "c.jsonl",
        &format!("{}\n{{bad one\n", tick(1_704_169_800_100)),
    );
    let second = write(
        dir.path(),
        "d.jsonl",
        &format!("{}\n{{bad two\n", tick(1_704_169_800_200)),
    );
    let c = replay_open(&cfg, std::slice::from_ref(&first)).await;
    let d = replay_open(&cfg, std::slice::from_ref(&second)).await;
    assert_eq!((c.writer.deadlettered, d.writer.deadlettered), (1, 1));
    let dead = xrange(&db0, "deadletter:tickwire").await;
    let raws: Vec<&str> = dead.iter().map(|e| field(e, "raw")).collect();
    assert_eq!(raws, ["{bad one", "{bad two"]);
    let again = replay_open(&cfg, &[first, second]).await;
    assert_eq!(
        (
            again.writer.deadlettered,
            again.writer.deadletter_duplicates
        ),
        (0, 2)
    );
    assert_eq!(xrange(&db0, "deadletter:tickwire").await, dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_tick_stream_continues_in_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    let profile = config_file(
        dir.path(),
        "md.toml",
        r#"
namespace = "md:"
[tick_stream]
key = "{exchange}:{symbol}"
type = "stream"
encoding = "fields"
db = 1
ttl = 600
cap = 1000
fields = ["price=ltp", "size=qty", "t=ts"]
"#,
    );
    let with_profile = |server: &RedisServer| {
        let mut c = config(server, "");
        c.profiles =
            tickwire_core::profiles::Profiles::load(&[profile.to_str().unwrap().to_string()])
                .expect("the profile loads");
        c
    };
    // Three trades in one millisecond, with ids, then one later.
    let line = |id: u64, ts: i64, ltp: &str| {
        format!(r#"{{"exchange":"NSE","symbol":"SBIN","ts":{ts},"ltp":{ltp},"qty":1,"id":{id}}}"#)
    };
    let lines = [
        line(1, 1_704_169_800_100, "612.35"),
        line(2, 1_704_169_800_100, "612.4"),
        line(3, 1_704_169_800_100, "612.45"),
        line(4, 1_704_169_801_000, "612.5"),
    ];
    let reference = redis();
    replay_open(
        &with_profile(&reference),
        &[write(dir.path(), "all.jsonl", &lines.join("\n"))],
    )
    .await;
    // Cut inside the millisecond; the second process also gets the first
    // process's last trade again.
    let server = redis();
    let cfg = with_profile(&server);
    replay_open(
        &cfg,
        &[write(dir.path(), "a.jsonl", &lines[..2].join("\n"))],
    )
    .await;
    let b = replay_open(
        &cfg,
        &[write(dir.path(), "b.jsonl", &lines[1..].join("\n"))],
    )
    .await;
    assert_eq!(b.state.resent, 1);
    let (got, want) = (
        xrange(&server.client(1).await.unwrap(), "md:NSE:SBIN").await,
        xrange(&reference.client(1).await.unwrap(), "md:NSE:SBIN").await,
    );
    let ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1704169800100-0",
            "1704169800100-1",
            "1704169800100-2",
            "1704169801000-0"
        ]
    );
    assert_eq!(got, want);
}

/// A recorded Dhan frame (a full packet of NSE_EQ 2885), received 5 ms
/// after its LTT (IST wall-clock seconds) plus `n` ns.
fn dhan_line(n: i64, ltp: f32, ltq: u16, ltt: u32, volume: u32) -> String {
    use base64::Engine as _;
    let data =
        base64::engine::general_purpose::STANDARD.encode(dhan_full(1, 2885, ltp, ltq, ltt, volume));
    let recv_ns = (i64::from(ltt) - 19_800) * 1_000_000_000 + 5_000_000 + n;
    serde_json::json!({"recv_ns": recv_ns, "feed": "nse", "venue": "dhan",
        "enc": "base64", "data": data})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_dhan_packet_is_known_by_its_day_volume_in_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    // 2024-01-02 10:00:00 IST as Dhan sends it; LTT has whole seconds, so
    // several trades share a millisecond.
    let ltt: u32 = 1_704_189_600;
    let packets = [
        (2450.05, 25, ltt, 120_000),
        (2450.5, 10, ltt + 1, 120_010),
        (2450.5, 10, ltt + 1, 120_010), // only the book moved
        (2451.0, 5, ltt + 2, 120_015),
        (2451.5, 7, ltt + 2, 120_022),
        // The second process's own trades: one more in the same second.
        (2451.25, 3, ltt + 2, 120_025),
        (2452.0, 4, ltt + 61, 120_029),
    ];
    let lines: Vec<String> = packets
        .iter()
        .enumerate()
        .map(|(i, &(ltp, ltq, t, v))| dhan_line(i as i64, ltp, ltq, t, v))
        .collect();
    let toml =
        "[[feeds]]\nname = \"nse\"\nvenue = \"dhan\"\nsymbols = [\"NSE_EQ:2885=RELIANCE\"]\n";
    let dbs = [2, 3, 4, 5, 6, 8, 0];
    let body = |part: &[String]| part.join("\n") + "\n";
    let reference = redis();
    replay_open(
        &config(&reference, toml),
        &[write(dir.path(), "all.jsonl", &body(&lines))],
    )
    .await;

    // The first process ends with two trades in one second; the second
    // starts with the last of them again (its place in that millisecond
    // would say the new trade after it is a resend, its day volume says not).
    let server = redis();
    let cfg = config(&server, toml);
    let a = replay_open(&cfg, &[write(dir.path(), "a.jsonl", &body(&lines[..5]))]).await;
    assert_eq!(a.writer.ticks_written, 4);
    let b = replay_open(&cfg, &[write(dir.path(), "b.jsonl", &body(&lines[4..]))]).await;
    assert_eq!((b.state.resent, b.writer.ticks_written), (1, 2));
    assert_eq!(
        snapshot(&server, &dbs).await,
        snapshot(&reference, &dbs).await,
        "every key equal to the single run"
    );
    let db4 = server.client(4).await.unwrap();
    let vols: Vec<String> = xrange(&db4, "ticks:RELIANCE")
        .await
        .iter()
        .map(|e| field(e, "vol").to_string())
        .collect();
    assert_eq!(
        vols,
        ["120000", "120010", "120015", "120022", "120025", "120029"]
    );
    // The whole recording again: every trade a resend, nothing changes.
    let again = replay_open(&cfg, &[write(dir.path(), "again.jsonl", &body(&lines))]).await;
    assert_eq!((again.state.resent, again.writer.ticks_written), (6, 0));
    assert_eq!(
        snapshot(&server, &dbs).await,
        snapshot(&reference, &dbs).await
    );
}

/// A replay of `all` at 50x the recorded pace (12 minutes of exchange
/// time in about 14 s), on a task of its own: long enough to kill Redis
/// under it several times.
fn slow_replay(
    cfg: &tickwire_core::Config,
    all: &Path,
) -> tokio::task::JoinHandle<Result<tickwire::RunSummary, tickwire::AppError>> {
    let (cfg, all) = (cfg.clone(), all.to_path_buf());
    let opts = ReplayOptions {
        pace: Pace::Speed(50.0),
        ..paced(all)
    };
    tokio::spawn(async move { replay_to_end(&cfg, opts).await })
}

/// `server` SIGKILLed, kept down `down`, and started again on its AOF
/// (once it answers PING its AOF is loaded): the ticks of BTCUSDT in Redis
/// before the kill, and how long after the restart writing resumed.
async fn outage(server: &mut RedisServer, down: Duration) -> (u64, Duration) {
    let before: u64 = {
        let db4 = server.client(4).await.unwrap();
        db4.xlen("ticks:BTCUSDT").await.unwrap()
    };
    server.crash().unwrap();
    tokio::time::sleep(down).await;
    tokio::task::block_in_place(|| server.recover()).unwrap();
    let db4 = server.client(4).await.unwrap();
    (before, resumed_after(&db4, before).await)
}

/// Polls until Redis has written more ticks than `before`; how long it took.
async fn resumed_after(client: &Client, before: u64) -> Duration {
    let t0 = std::time::Instant::now();
    wait_until(Duration::from_secs(30), "writing to resume", || async {
        client.xlen::<u64, _>("ticks:BTCUSDT").await.unwrap_or(0) > before
    })
    .await;
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_resumes_within_two_seconds_of_each_redis_restart() {
    // Default reconnect and command timeouts. A 7 s outage is where a
    // reconnect backoff growing to 30 s left the writer idle for about
    // 6 s after Redis was back (measured with that cap: 6.0 s).
    let lines = trades();
    let n = lines.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let all = file(dir.path(), "all.csv", &lines);
    let mut server = persistent();
    let cfg = config(&server, "[writer]\nbatch_size = 50\n");
    let run = slow_replay(&cfg, &all);
    first_ticks_in(&server.client(4).await.unwrap(), &["BTCUSDT"]).await;
    for down in [Duration::from_secs(7), Duration::from_secs(1)] {
        let (before, after) = outage(&mut server, down).await;
        assert!(
            before < n / 2,
            "{before} ticks before the crash: the run is nearly done"
        );
        assert!(
            after < Duration::from_secs(2),
            "writing resumed {after:?} after Redis was back from a {down:?} outage"
        );
    }
    let s = run
        .await
        .unwrap()
        .expect("the replay rides through both outages");
    assert_eq!(s.writer.write_errors, 0, "{:?}", s.writer);
    // The summary's `waited for redis` covers both outages, also the part
    // fred held the lanes' commands through without an attempt failing.
    // Waiting starts when a batch is in flight, not at the kill: a lane
    // between batches when Redis goes down (the pacer holds the next) starts
    // waiting up to a pacing step later, at each outage. On a loaded machine
    // that was 7,470 ms of the 8 s: the bound allows a second per outage.
    assert!(
        s.writer.redis_wait_ms >= 6_000,
        "waited for redis {} ms through 7 s + 1 s down",
        s.writer.redis_wait_ms
    );
    assert_eq!(
        s.writer.ticks_written + s.writer.duplicates,
        n,
        "{:?}",
        s.writer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_resumes_within_two_seconds_of_each_of_three_sigkills_in_a_row() {
    // SIGKILLed three times within a few seconds: started again at once,
    // then after 1 s and 2 s down, each time once a few batches went in.
    // What the kills cut off is resent on the new connections; every tick
    // lands once and every key equals an uninterrupted run.
    let lines = trades();
    let n = lines.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let all = file(dir.path(), "all.csv", &lines);
    let reference = redis();
    replay_open(&config(&reference, ""), std::slice::from_ref(&all)).await;

    let mut server = persistent();
    let cfg = config(&server, "[writer]\nbatch_size = 50\n");
    let run = slow_replay(&cfg, &all);
    first_ticks_in(&server.client(4).await.unwrap(), &["BTCUSDT"]).await;
    let mut resumed = Vec::new();
    for down in [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(2),
    ] {
        assert!(!run.is_finished(), "the replay ended before the kills");
        resumed.push((down, outage(&mut server, down).await.1));
        // A few batches on the new connections before the next kill.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("(outage, writing resumed after Redis answered): {resumed:?}");
    for (down, after) in &resumed {
        assert!(
            *after < Duration::from_secs(2),
            "writing resumed {after:?} after Redis was back from a {down:?} outage"
        );
    }
    let s = run
        .await
        .unwrap()
        .expect("the replay rides through three kills");
    assert_eq!(s.writer.write_errors, 0, "{:?}", s.writer);
    assert_eq!(
        s.writer.ticks_written + s.writer.duplicates,
        n,
        "{:?}",
        s.writer
    );
    assert_same(
        &server,
        &reference,
        &RUN_DBS,
        "a run through three kills in a row",
    )
    .await;
}

/// A redis-server of the test's own: a password (so that fred connects to
/// it while it loads its data set: AUTH is allowed then, PING is not), AOF
/// `always`, and a slow load (`key-load-delay`: 10 ms per key of the RDB
/// base, and replies to clients between keys). Killed on drop.
struct AuthRedis {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl AuthRedis {
    const PASSWORD: &'static str = "s3cret";

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Self::spawn(port, dir.path());
        Self { child, port, dir }
    }

    fn spawn(port: u16, dir: &Path) -> std::process::Child {
        let bin = tickwire_testkit::redis_server::find_redis_server()
            .unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"));
        std::process::Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--requirepass", Self::PASSWORD])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--key-load-delay", "10000"])
            .args(["--loading-process-events-interval-bytes", "1024"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts")
    }

    fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", Self::PASSWORD, self.port)
    }

    /// A client of DB `db`, connected (waiting for the server to listen).
    async fn client(&self, db: u8) -> Client {
        let mut config = fred::prelude::Config::from_url(&self.url()).unwrap();
        config.database = Some(db);
        let t0 = std::time::Instant::now();
        loop {
            let client = Builder::from_config(config.clone()).build().unwrap();
            if client.init().await.is_ok() {
                return client;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server is not up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then started again on its AOF (not waiting for the load).
    fn crash_and_start(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, self.dir.path());
    }
}

impl Drop for AuthRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_loading_its_data_after_a_restart_is_waited_for_not_given_up_on() {
    // Writes meet `-LOADING` for the whole load (3 s or more here). They are
    // not failures: with writer.max_retries = 3 (100 + 200 + 400 ms of
    // backoff) the writer gave up on it before ("gave up after 3 retries:
    // LOADING"); now it waits, and writes within a second of the load's end.
    let lines = trades();
    let n = lines.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let all = file(dir.path(), "all.csv", &lines);
    let mut server = AuthRedis::start();
    // 300 keys of 2 KB in a DB tickwire does not use.
    let filler = server.client(15).await;
    let value = "x".repeat(2_000);
    let p = filler.pipeline();
    for i in 0..300 {
        let _: () = p
            .set(format!("filler:{i}"), value.as_str(), None, None, false)
            .await
            .unwrap();
    }
    let _: Vec<Value> = p.all().await.unwrap();
    let cfg = tickwire_core::Config::from_toml(
        "[writer]\nbatch_size = 50\nmax_retries = 3\n",
        &tickwire_core::config::Overrides {
            redis_url: Some(server.url()),
            ..Default::default()
        },
        tickwire_parse::VENUES,
    )
    .unwrap();
    let run = slow_replay(&cfg, &all);
    first_ticks_in(&server.client(4).await, &["BTCUSDT"]).await;
    // Everything so far into the AOF's RDB base, where the load is slowed
    // per key (commands appended after it are slowed per command: few).
    let _: Value = filler
        .custom(fred::cmd!("BGREWRITEAOF"), Vec::<Value>::new())
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        "the AOF rewrite to end",
        || async {
            let info: String = filler
                .info(Some(fred::types::InfoKind::Persistence))
                .await
                .unwrap();
            info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0")
        },
    )
    .await;
    let before: u64 = server.client(4).await.xlen("ticks:BTCUSDT").await.unwrap();
    assert!(before > 0, "ticks were written before the kill");
    server.crash_and_start();
    // The load: PING answers LOADING until it ends.
    let db4 = server.client(4).await;
    let t0 = std::time::Instant::now();
    loop {
        match db4.ping::<Value>(None).await {
            Err(e) if e.details().starts_with("LOADING") => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(_) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let loading = t0.elapsed();
    assert!(
        loading > Duration::from_secs(2),
        "the load took {loading:?}: too short to show anything"
    );
    let after = resumed_after(&db4, before).await;
    eprintln!("loading took {loading:?}; writing resumed {after:?} after it ended");
    assert!(
        after < Duration::from_secs(2),
        "writing resumed {after:?} after the load ended"
    );
    let s = run
        .await
        .unwrap()
        .expect("the replay waits for the load instead of giving up");
    assert_eq!(s.writer.write_errors, 0, "{:?}", s.writer);
    assert_eq!(
        s.writer.ticks_written + s.writer.duplicates,
        n,
        "{:?}",
        s.writer
    );
    for key in ["ticks:BTCUSDT", "ticks:ETHUSDT"] {
        let len: u64 = db4.xlen(key).await.unwrap();
        assert_eq!(len, n / 2, "{key}: every tick once");
    }
}
