//! Cluster routing of a plan: which primaries a batch touched, for WAIT.

use fred::prelude::*;

use crate::plan::cmd::Call;

/// The primaries to WAIT on, (`host:port`, a slot, replicas wanted), and the
/// primary of each command, (command, index into the primaries).
pub(crate) type WaitPlan = (Vec<(String, u16, i64)>, Vec<(usize, usize)>);

/// Cluster: the primaries a pipeline of commands `idx` writes to that have
/// replicas to wait for, each with a slot it holds (its WAIT goes there) and
/// the replicas wanted; and the primary of each of those commands:
/// (command, index into the primaries).
pub(crate) fn plan_waits(
    wait: &crate::pools::ReplicaWait,
    client: &Client,
    idx: &[usize],
    calls: &[Option<Call>],
) -> WaitPlan {
    let mut primaries: Vec<(String, u16, i64)> = Vec::new();
    let mut primary_of = Vec::new();
    // Primaries without a replica: not waited on.
    let mut unwaited: Vec<String> = Vec::new();
    let Some(routing) = fred::interfaces::ClusterInterface::cached_cluster_state(client) else {
        return (primaries, primary_of);
    };
    for &i in idx {
        let Some(slot) = calls[i].as_ref().and_then(call_slot) else {
            continue;
        };
        let Some(server) = routing.get_server(slot).map(|s| s.to_string()) else {
            continue;
        };
        if unwaited.contains(&server) {
            continue;
        }
        let p = match primaries.iter().position(|(s, _, _)| *s == server) {
            Some(p) => p,
            None => {
                let wanted = wait.wanted(&server);
                if wanted == 0 {
                    unwaited.push(server);
                    continue;
                }
                primaries.push((server, slot, wanted));
                primaries.len() - 1
            }
        };
        primary_of.push((i, p));
    }
    (primaries, primary_of)
}

/// The cluster slot a call's (first) key is in.
pub(crate) fn call_slot(call: &Call) -> Option<u16> {
    let key: &[u8] = match call {
        Call::Xadd { key, .. }
        | Call::Hset { key, .. }
        | Call::Expire { key, .. }
        | Call::Del { key }
        | Call::SetEx { key, .. } => key.as_bytes(),
        Call::Evalsha { keys, .. } => keys.first()?.as_bytes(),
        Call::Custom { args, .. } => match args.first()? {
            Value::Bytes(b) => b,
            Value::String(s) => s.as_bytes(),
            _ => return None,
        },
    };
    Some(fred::util::redis_keyslot(key))
}
