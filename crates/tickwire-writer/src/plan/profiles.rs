//! Key profiles other than `default`: one `lua/profile_write.lua` call per
//! profile key and batch.

use crate::plan::{LaneBatch, PlanCx};
use foldhash::{HashMap, HashMapExt};
use fred::prelude::*;
use fred::types::scripts::Script;

use crate::plan::cmd::*;
use crate::profile::ProfileWrite;

/// The batch's key-profile writes (see [`plan_profiles`]).
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    plan_profiles(&batch.profile, cx.s.profile_script.as_ref(), &mut cx.cmds);
}

/// One EVALSHA of `profile_write.lua` per profile key: the batch's latest
/// value (lists: every entry, oldest first).
pub(crate) fn plan_profiles(
    profile: &[ProfileWrite],
    script: Option<&Script>,
    cmds: &mut Vec<Cmd>,
) {
    use crate::profile::ProfileValue;
    use tickwire_core::profiles::RedisType;
    let Some(script) = script else {
        return;
    };
    let mut by_key: HashMap<(u8, &Key), Vec<usize>> = HashMap::new();
    let mut order: Vec<(u8, &Key)> = Vec::new();
    for (i, w) in profile.iter().enumerate() {
        let slot = by_key.entry((w.db, &w.key)).or_insert_with(|| {
            order.push((w.db, &w.key));
            Vec::new()
        });
        match w.value {
            // Only the latest hash or string value counts.
            ProfileValue::Fields(_) | ProfileValue::Text(_) => {
                slot.clear();
                slot.push(i);
            }
            ProfileValue::Entry(..) | ProfileValue::StreamEntry(..) => slot.push(i),
        }
    }
    for id in order {
        let writes = &by_key[&id];
        let Some(&last) = writes.last() else { continue };
        let w = &profile[last];
        let kind = match w.redis_type {
            RedisType::Hash => "hash",
            RedisType::String => "string",
            RedisType::List => "list",
            RedisType::Stream => "stream",
        };
        let mut args: Vec<Value> = vec![
            Value::from(kind),
            Value::Integer(w.ttl),
            Value::Integer(w.cap),
            w.publish
                .as_ref()
                .map_or(Value::from(""), |k| Value::Bytes(k.clone().into_bytes())),
            Value::from(w.order_field.as_str()),
        ];
        for &i in writes {
            match &profile[i].value {
                ProfileValue::Fields(fields) => {
                    for (k, v) in fields {
                        args.push(Value::from(k.as_str()));
                        args.push(Value::from(v.as_str()));
                    }
                }
                ProfileValue::Text(t) => args.push(Value::from(t.as_str())),
                ProfileValue::Entry(order, json) => {
                    args.push(Value::Integer(*order));
                    args.push(Value::from(json.as_str()));
                }
                ProfileValue::StreamEntry(id, fields) => {
                    args.push(Value::from(id.as_str()));
                    args.push(Value::Integer(fields.len() as i64));
                    for (k, v) in fields {
                        args.push(Value::from(k.as_str()));
                        args.push(Value::from(v.as_str()));
                    }
                }
            }
        }
        cmds.push(Cmd {
            db: w.db,
            kind: Kind::Profile,
            call: Call::Evalsha {
                sha: script.sha1().clone(),
                keys: vec![w.key.clone()],
                args,
            },
        });
    }
}
