//! Least privilege: an ACL user holding exactly the line of
//! docs/operating.md ("Least privilege") for a use does that use with Redis refusing nothing (its ACL LOG stays empty), and a
//! user without `xadd` stops the replay with one error naming NOPERM and XADD.

use tickwire_testkit::prelude::*;

use std::path::{Path, PathBuf};

use fred::prelude::*;

/// The ACL lines of docs/operating.md, "Least privilege" (keep them equal).
const REPLAY_INLINE: &str = "-@all +select +ping +info +client|id +get +set +hget +hset +expire \
     +xadd +xtrim +xrange +xrevrange +zadd +sadd +script|load +evalsha ~* resetchannels";
/// The Lua engine: the inline line and what the scripts call.
const LUA_EXTRA: &str = "+hmget";
/// Profiles writing lists; `+publish` with the channels of their `publish`.
const PROFILE_EXTRA: &str = "+lindex +lpush +ltrim +publish &updates:*";
const HEALTH: &str = "-@all +select +ping +info +client|id +dbsize +scan +ttl +xlen \
     +xinfo|groups +hgetall ~* resetchannels";
const BASELINE: &str = "-@all +select +ping +info +client|id +smembers +zrange +hgetall +hset \
     +expire ~* resetchannels";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample-nse.jsonl.zst")
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// `ACL SETUSER <user> reset on >pw <rules>`, as the admin (default user).
fn set_user(server: &RedisServer, user: &str, rules: &str) {
    block_on(async {
        let admin = server.client(0).await.unwrap();
        let mut args: Vec<String> = ["SETUSER", user, "reset", "on", ">pw"]
            .map(String::from)
            .to_vec();
        args.extend(rules.split_whitespace().map(String::from));
        let _: String = admin.custom(fred::cmd!("ACL"), args).await.unwrap();
    });
}

/// What Redis refused since the last call (ACL LOG entries), then resets it.
fn refusals(server: &RedisServer) -> Vec<String> {
    block_on(async {
        let admin = server.client(0).await.unwrap();
        let log: Vec<Vec<Value>> = admin.custom(fred::cmd!("ACL"), vec!["LOG"]).await.unwrap();
        let _: String = admin
            .custom(fred::cmd!("ACL"), vec!["LOG", "RESET"])
            .await
            .unwrap();
        log.into_iter()
            .map(|entry| {
                // A flat map: ... "object" <command> ...
                let pos = entry
                    .iter()
                    .position(|v| v.as_str().as_deref() == Some("object"));
                pos.and_then(|p| entry.get(p + 1))
                    .and_then(|v| v.as_string())
                    .unwrap_or_default()
            })
            .collect()
    })
}

fn xlen(server: &RedisServer, db: u8, key: &str) -> u64 {
    block_on(async {
        let c = server.client(db).await.unwrap();
        c.xlen(key).await.unwrap()
    })
}

fn as_user(user: &str, server: &RedisServer) -> std::process::Command {
    let mut c = tickwire!();
    c.env(
        "TICKWIRE_REDIS_URL",
        format!("redis://{user}:pw@127.0.0.1:{}", server.port()),
    );
    c
}

#[test]
fn users_with_exactly_the_documented_lines_replay_check_health_and_average_baselines() {
    let server = redis();
    refusals(&server);

    set_user(&server, "tw", REPLAY_INLINE);
    // --close-at-end: the forming hashes of the closed bars go (EXPIRE 0).
    let (out, stdout, stderr) = run(as_user("tw", &server)
        .args(["replay", "--max", "--close-at-end"])
        .arg(sample()));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 2400);
    assert_eq!(summary_value(&stdout, "write errors"), 0);
    assert_eq!(xlen(&server, 4, "ticks:INFY"), 400, "the keys are written");
    assert_eq!(refusals(&server), Vec::<String>::new(), "inline: {stderr}");

    set_user(&server, "twh", HEALTH);
    let (out, stdout, stderr) = run(as_user("twh", &server).arg("health"));
    // The replay's heartbeat is still there: healthy.
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(refusals(&server), Vec::<String>::new(), "health: {stderr}");

    // One command short: refused, and said to be, not "unreachable".
    set_user(&server, "twh", &format!("{HEALTH} -dbsize"));
    let (out, stdout, stderr) = run(as_user("twh", &server).arg("health"));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("refused a check") && said.contains("'dbsize'"),
        "{said}"
    );
    assert!(!said.contains("unreachable:"), "{said}");
    refusals(&server);

    set_user(&server, "twb", BASELINE);
    let (out, stdout, stderr) = run(as_user("twb", &server).arg("baseline"));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("buckets written"), "{stdout}");
    assert_eq!(
        refusals(&server),
        Vec::<String>::new(),
        "baseline: {stderr}"
    );
}

#[test]
fn the_lua_engine_and_a_publishing_profile_need_only_their_documented_extras() {
    let server = redis();
    refusals(&server);
    let dir = tempfile::tempdir().unwrap();
    let lua = config_file(dir.path(), "lua.toml", "[indicators]\nengine = \"lua\"\n");

    set_user(&server, "twl", &format!("{REPLAY_INLINE} {LUA_EXTRA}"));
    let (out, stdout, stderr) = run(as_user("twl", &server)
        .arg("--config")
        .arg(&lua)
        .args(["replay", "--max", "--close-at-end"])
        .arg(sample()));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 2400);
    assert_eq!(summary_value(&stdout, "write errors"), 0);
    assert_eq!(refusals(&server), Vec::<String>::new(), "lua: {stderr}");

    // trading-system publishes every write on updates:{symbol}; dhanscalper
    // keeps lists of bars.
    set_user(&server, "twp", &format!("{REPLAY_INLINE} {PROFILE_EXTRA}"));
    let (out, stdout, stderr) = run(as_user("twp", &server)
        .args(["--profile", "trading-system", "--profile", "dhanscalper"])
        .args(["replay", "--max"])
        .arg(sample()));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_value(&stdout, "write errors"), 0);
    assert_eq!(
        refusals(&server),
        Vec::<String>::new(),
        "profiles: {stderr}"
    );
}

#[test]
fn a_user_without_xadd_stops_the_replay_naming_noperm_and_xadd_once() {
    let server = redis();
    refusals(&server);
    set_user(&server, "tw", &format!("{REPLAY_INLINE} -xadd"));
    let (out, stdout, stderr) = run(as_user("tw", &server)
        .args(["replay", "--max"])
        .arg(sample()));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("NOPERM").count(),
        1,
        "named once, not per command:\n{stderr}"
    );
    assert!(
        stderr.contains("refused XADD") && stderr.contains("'xadd'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("redis://tw:***@127.0.0.1") && !stderr.contains(":pw@"),
        "the URL named, its password hidden: {stderr}"
    );
    assert!(stderr.contains("ACL line"), "{stderr}");
    assert_eq!(xlen(&server, 4, "ticks:INFY"), 0);
}
