//! Dead letters: each rejected frame to its feed's dead-letter stream.

use crate::plan::{LaneBatch, PlanCx};
use fred::bytes_utils::Str;
use fred::prelude::*;
use tickwire_core::Rejected;

use crate::lane::settings::{LaneSettings, LaneState};
use crate::plan::cmd::{expire, Call, Cmd, Kind, ERROR, RAW, RECV_TS};

/// One rejected frame with its dead-letter stream ID and key.
pub(crate) struct RejectWrite {
    pub key: Key,
    pub id: (u64, u64),
    pub rejected: Rejected,
}

/// A dead letter's entry: `error` (`{error_type}: {error}`), `raw` and, when
/// the input says, `recv_ts` (epoch ms).
pub(crate) fn dead_letter_fields(j: &Rejected) -> Vec<(Key, Value)> {
    let mut fields = vec![
        (ERROR, Value::from(format!("{}: {}", j.error_type, j.error))),
        (RAW, Value::from(j.raw.as_str())),
    ];
    if let Some(ns) = j.recv_ts_ns {
        fields.push((RECV_TS, Value::Integer(ns.div_euclid(1_000_000))));
    }
    fields
}

/// Whether a dead-letter entry read back (`fields`) is the one `j` writes.
pub(crate) fn is_dead_letter_of(
    fields: &std::collections::HashMap<String, String>,
    j: &Rejected,
) -> bool {
    let mine = dead_letter_fields(j);
    fields.len() == mine.len()
        && mine.iter().all(|(k, v)| {
            let theirs = std::str::from_utf8(k.as_bytes())
                .ok()
                .and_then(|k| fields.get(k));
            match (theirs, v) {
                (Some(t), Value::String(s)) => t == &**s,
                (Some(t), Value::Integer(i)) => t.parse() == Ok(*i),
                _ => false,
            }
        })
}

/// The batch's dead letters (see [`plan_dead_letters`]).
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    plan_dead_letters(&batch.rejects, cx.s, cx.state, &mut cx.cmds);
}

/// One XADD per dead letter, at its ID; each stream's EXPIRE when due.
pub(crate) fn plan_dead_letters(
    rejects: &[RejectWrite],
    s: &LaneSettings,
    state: &LaneState,
    cmds: &mut Vec<Cmd>,
) {
    let mut dl_keys: Vec<&Key> = Vec::new();
    for r in rejects {
        let fields = dead_letter_fields(&r.rejected);
        cmds.push(Cmd {
            db: s.system_db,
            kind: Kind::DeadLetter,
            call: Call::Xadd {
                key: r.key.clone(),
                id: Str::from(format!("{}-{}", r.id.0, r.id.1)),
                cap: s.deadletter_maxlen,
                fields,
            },
        });
        if !dl_keys.contains(&&r.key) {
            dl_keys.push(&r.key);
        }
    }
    for key in dl_keys {
        expire(state, s.system_db, key, s.system_ttl, cmds);
    }
}
