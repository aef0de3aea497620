//! Gaps: each gap in a feed's trades to its feed's `gaps:{feed}` stream
//! (system DB, its TTL), at an ID after the stream's last.

use fred::bytes_utils::Str;
use fred::prelude::*;
use tickwire_core::Gap;

use crate::plan::cmd::{expire, Call, Cmd, Kind};
use crate::plan::{LaneBatch, PlanCx};

/// One gap with its stream key and ID.
pub(crate) struct GapWrite {
    pub key: Key,
    pub id: (u64, u64),
    pub gap: Gap,
}

/// A gap's entry: `symbol`, `from_id`, `to_id`, `from_ts`, `to_ts` (epoch
/// ms), `filled`, `missing`, `outcome`, `reason`.
pub(crate) fn gap_fields(g: &Gap) -> Vec<(Key, Value)> {
    let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    vec![
        (
            Key::from_static_str("symbol"),
            Value::from(&*g.instrument.symbol),
        ),
        (Key::from_static_str("from_id"), int(g.from_id)),
        (Key::from_static_str("to_id"), int(g.to_id)),
        (
            Key::from_static_str("from_ts"),
            Value::Integer(g.from_ts_ms),
        ),
        (Key::from_static_str("to_ts"), Value::Integer(g.to_ts_ms)),
        (Key::from_static_str("filled"), int(g.filled)),
        (Key::from_static_str("missing"), int(g.missing)),
        (
            Key::from_static_str("outcome"),
            Value::from(g.outcome.as_str()),
        ),
        (Key::from_static_str("reason"), Value::from(g.reason)),
    ]
}

/// One XADD per gap, at its ID; each stream's EXPIRE when due.
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    let (s, state) = (cx.s, cx.state);
    let mut keys: Vec<&Key> = Vec::new();
    for g in &batch.gaps {
        cx.cmds.push(Cmd {
            db: s.system_db,
            kind: Kind::Gap,
            call: Call::Xadd {
                key: g.key.clone(),
                id: Str::from(format!("{}-{}", g.id.0, g.id.1)),
                cap: s.deadletter_maxlen,
                fields: gap_fields(&g.gap),
            },
        });
        if !keys.contains(&&g.key) {
            keys.push(&g.key);
        }
    }
    for key in keys {
        expire(state, s.system_db, key, s.system_ttl, &mut cx.cmds);
    }
}
