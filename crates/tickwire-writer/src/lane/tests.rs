use std::sync::Arc;

use fred::prelude::*;
use fred::types::scripts::Script;

use super::errors::is_noperm;
use super::send::{settle, Outcome, Settled};
use super::settings::{AlertSettings, LaneSettings, LaneState, Refusals};
use crate::plan::cmd::{Call, Cmd};
use crate::plan::prices::QuoteWrite;
use crate::plan::profiles::plan_profiles;
use crate::plan::{plan, LaneBatch};
use crate::profile::{ProfileValue, ProfileWrite};
use crate::stats::WriterStats;
use tickwire_core::profiles::RedisType;

fn write(key: &str, redis_type: RedisType, value: ProfileValue) -> ProfileWrite {
    ProfileWrite {
        db: 0,
        key: Key::from(key),
        redis_type,
        ttl: 60,
        cap: 100,
        publish: None,
        order_field: "ts".into(),
        value,
    }
}

/// A quote that names neither side writes nothing: no HSET of no
/// fields (which Redis refuses, a write error per quote), no EXPIRE.
#[test]
fn a_quote_without_bid_and_ask_plans_no_empty_hset() {
    let settings = settings();
    let quote = |key: &str, bid: Option<f64>| QuoteWrite {
        price_key: Key::from(key),
        price_db: 0,
        after: 0,
        bid: bid.and_then(tickwire_core::Dec::from_f64),
        ask: None,
    };
    let mut batch = LaneBatch::default();
    batch.quotes.push(quote("price:empty", None));
    batch.quotes.push(quote("price:bid", Some(1.5)));
    let cmds = plan(&batch, &settings, &LaneState::default());
    let hsets: Vec<(&Key, usize)> = cmds
        .iter()
        .filter_map(|c| match &c.call {
            Call::Hset { key, fields } => Some((key, fields.len())),
            _ => None,
        })
        .collect();
    assert_eq!(hsets, [(&Key::from("price:bid"), 1)]);
    assert!(!cmds
        .iter()
        .any(|c| matches!(&c.call, Call::Expire { key, .. } if *key == Key::from("price:empty"))));
}

fn expires(cmds: &[Cmd]) -> Vec<Key> {
    cmds.iter()
        .filter_map(|c| match &c.call {
            Call::Expire { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// A key's EXPIRE goes with its first write, not with every batch; a
/// new connection generation (reconnect, restart) sends it again, and
/// an EXPIRE owed after a batch that was out during one is planned.
#[test]
fn a_key_is_expired_once_then_again_after_a_reconnect_or_when_owed() {
    let settings = settings();
    let mut batch = LaneBatch::default();
    batch.quotes.push(QuoteWrite {
        price_key: Key::from("price:a"),
        price_db: 2,
        after: 0,
        bid: tickwire_core::Dec::from_f64(1.5),
        ask: None,
    });
    let mut state = LaneState::default();
    state.memo.begin(0);
    assert_eq!(
        expires(&plan(&batch, &settings, &state)),
        [Key::from("price:a")]
    );
    state.memo.ttl_was_set(2, b"price:a");
    // The same plan again (a retry of the batch, or the next batch).
    let cmds = plan(&batch, &settings, &state);
    assert!(expires(&cmds).is_empty());
    assert_eq!(cmds.len(), 1, "the HSET alone");
    state.memo.begin(0);
    assert!(expires(&plan(&batch, &settings, &state)).is_empty());
    state.memo.begin(1);
    assert_eq!(
        expires(&plan(&batch, &settings, &state)),
        [Key::from("price:a")]
    );
    state.memo.ttl_was_set(2, b"price:a");
    state.owed.insert((4, Key::from("ticks:b")), 60);
    assert_eq!(
        expires(&plan(&batch, &settings, &state)),
        [Key::from("ticks:b")]
    );
}

fn settings() -> LaneSettings {
    LaneSettings {
        ticks_db: 0,
        system_db: 0,
        ticks_ttl: 60,
        system_ttl: 60,
        maxlen: 100,
        deadletter_maxlen: 100,
        max_retries: 1,
        lua: None,
        ttl_by_db: [60; 16],
        volume_db: 0,
        session_ttl: 60,
        alerts: AlertSettings {
            script: Script::from_lua(crate::LUA_VOLUME_ALERT),
            threshold: 2.0,
            db: 0,
            maxlen: 100,
            stream_ttl: 60,
            marker_ttl: 60,
        },
        progress: Arc::default(),
        tick_script: Script::from_lua(crate::LUA_TICK_APPEND),
        profile_script: None,
        tick_latency: false,
        refusals: Arc::default(),
    }
}

const NAMES: [&str; 4] = ["XADD", "XADD", "XADD", "HSET"];

/// An EXPIRE that finds no key (the write before it refused) is not a
/// key Redis took; refusals are counted per command, logged per kind.
#[test]
fn an_expire_of_a_missing_key_is_absent_and_refusals_are_counted_by_kind() {
    let mut stats = WriterStats::default();
    let names = ["XADD", "EXPIRE", "HSET", "EXPIRE", "HSET"];
    let mut outcomes = vec![Outcome::Pending; 5];
    let oom = || {
        Err(Error::new(
            ErrorKind::Unknown,
            "OOM command not allowed when used memory > 'maxmemory'.",
        ))
    };
    let refusals = Refusals::default();
    let replies = vec![
        oom(),
        Ok(Value::Integer(0)),
        oom(),
        Ok(Value::Integer(1)),
        oom(),
    ];
    assert!(matches!(
        settle(
            0,
            &[0, 1, 2, 3, 4],
            &names,
            replies,
            &mut outcomes,
            &mut vec![None; 8],
            &mut stats,
            &refusals
        ),
        Settled::Done
    ));
    assert_eq!(
        outcomes,
        [
            Outcome::Failed,
            Outcome::Absent,
            Outcome::Failed,
            Outcome::Applied,
            Outcome::Failed
        ]
    );
    assert_eq!(stats.write_errors, 3);
    let seen = refusals.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("OOM".to_string(), "XADD", 1),
            ("OOM".to_string(), "HSET", 2)
        ]
    );
}

#[test]
fn a_pipeline_that_failed_as_a_whole_is_sent_again_whole() {
    let mut stats = WriterStats::default();
    let mut outcomes = vec![Outcome::Pending; 4];
    // fred's answer for a pipeline it gave up on: one error for all.
    let gave_up = Error::new(ErrorKind::Unknown, "Too many failed write attempts.");
    let e = settle(
        2,
        &[0, 2, 3],
        &NAMES,
        vec![Err(gave_up)],
        &mut outcomes,
        &mut vec![None; 8],
        &mut stats,
        &Refusals::default(),
    );
    assert!(matches!(e, Settled::Transient(_)), "to be retried");
    assert_eq!(outcomes, vec![Outcome::Pending; 4], "none taken as done");
    assert_eq!(stats.write_errors, 0);
    // Replies for each command: each its own outcome.
    let replies = vec![
        Ok(Value::Null),
        Err(Error::new(
            ErrorKind::Unknown,
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )),
        Err(Error::new(ErrorKind::InvalidArgument, "WRONGTYPE")),
    ];
    assert!(matches!(
        settle(
            2,
            &[0, 2, 3],
            &NAMES,
            replies,
            &mut outcomes,
            &mut vec![None; 8],
            &mut stats,
            &Refusals::default()
        ),
        Settled::Done
    ));
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Pending,
            Outcome::AlreadyThere,
            Outcome::Failed
        ]
    );
    assert_eq!(stats.write_errors, 1);
    // A lone command fred gave up on is sent again too.
    let mut one = vec![Outcome::Pending];
    let gave_up = Error::new(ErrorKind::Unknown, "Too many failed write attempts.");
    assert!(matches!(
        settle(
            2,
            &[0],
            &NAMES,
            vec![Err(gave_up)],
            &mut one,
            &mut vec![None; 8],
            &mut stats,
            &Refusals::default()
        ),
        Settled::Transient(_)
    ));
    assert_eq!(one, [Outcome::Pending]);
}

#[test]
fn a_command_the_acl_refuses_stops_the_batch_naming_it_not_counted() {
    let mut stats = WriterStats::default();
    let mut outcomes = vec![Outcome::Pending; 3];
    let noperm = || {
        Err(Error::new(
            ErrorKind::Unknown,
            "NOPERM User tw has no permissions to run the 'xadd' command",
        ))
    };
    let replies = vec![Ok(Value::Null), noperm(), noperm()];
    match settle(
        0,
        &[0, 1, 2],
        &NAMES,
        replies,
        &mut outcomes,
        &mut vec![None; 8],
        &mut stats,
        &Refusals::default(),
    ) {
        Settled::NoPerm(i, e) => {
            assert_eq!(i, 1, "the first refused command");
            assert!(e.details().contains("'xadd'"));
        }
        _ => panic!("NOPERM is final"),
    }
    assert_eq!(stats.write_errors, 0, "not one write error per command");
    // A command a script calls, refused (Redis 7.0's words), is one too.
    assert!(is_noperm(&Error::new(
        ErrorKind::Unknown,
        "ERR The user executing the script can't run this command or subcommand script: \
         2a08c2, on @user_script:38.",
    )));
    assert!(!is_noperm(&Error::new(ErrorKind::Unknown, "WRONGTYPE")));
}

#[test]
fn a_profile_costs_one_command_per_key_per_batch() {
    let mut batch = LaneBatch::default();
    for i in 0..500 {
        batch.profile.push(write(
            "price:a",
            RedisType::String,
            ProfileValue::Text(format!("{{\"price\":{i}}}")),
        ));
        batch.profile.push(write(
            "ticks:b",
            RedisType::Hash,
            ProfileValue::Fields(vec![("ltp".into(), i.to_string())]),
        ));
        if i % 100 == 0 {
            batch.profile.push(write(
                "bars:b",
                RedisType::List,
                ProfileValue::Entry(i, format!("{{\"ts\":{i}}}")),
            ));
        }
    }
    let script = Script::from_lua(crate::LUA_PROFILE_WRITE);
    let mut cmds = Vec::new();
    plan_profiles(&batch.profile, Some(&script), &mut cmds);
    assert_eq!(cmds.len(), 3, "one EVALSHA per key");
    let args = |i: usize| match &cmds[i].call {
        Call::Evalsha { args, .. } => args.clone(),
        _ => panic!("not an EVALSHA"),
    };
    // The string and the hash: only the batch's latest value.
    assert_eq!(args(0).last(), Some(&Value::from("{\"price\":499}")));
    assert_eq!(args(1)[5..], [Value::from("ltp"), Value::from("499")]);
    // The list: every entry, oldest first.
    assert_eq!(args(2).len(), 5 + 2 * 5);
    assert_eq!(args(2)[5], Value::Integer(0));
}
