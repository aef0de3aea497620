//! Volume and alerts: bucket and session totals, the day's profile and the
//! session indexes the baseline job reads, a bucket's ratio to its
//! baseline and its surge alert.

use crate::plan::{LaneBatch, PlanCx};
use foldhash::{HashMap, HashMapExt};
use fred::bytes::BytesMut;
use fred::prelude::*;
use tickwire_core::VolumeUpdate;

use crate::lane::settings::{LaneSettings, LaneState};
use crate::memo::hash128;
use crate::plan::cmd::*;
use foldhash::{HashSet, HashSetExt};

/// Bucket or session volume, to its hash. A bucket also goes into the day's
/// profile (`profile`, field `HH:MM`); a session into the indexes the baseline
/// job reads (`sessions` sorted set, `symbols` set).
pub(crate) struct VolumeWrite {
    pub key: Key,
    pub update: VolumeUpdate,
    pub profile: Option<(Key, String)>,
    pub sessions: Option<Key>,
    pub symbols: Option<Key>,
    /// A bucket's live ratio to its baseline, and its alert.
    pub ratio: Option<RatioKeys>,
}

/// The keys of a bucket's volume ratio and surge alert.
#[derive(Clone)]
pub(crate) struct RatioKeys {
    /// `volume:baseline:{symbol}:{HH}:{MM}` (its `average`).
    pub baseline: Key,
    /// `indicator:volume_ratio:{symbol}`.
    pub ratio: Key,
    /// `alert:sent:{symbol}:{session}:{HH}:{MM}`.
    pub marker: Key,
    /// The alerts stream.
    pub stream: Key,
}

pub(crate) const VOLUME: Key = Key::from_static_str("volume");
pub(crate) const TRADES: Key = Key::from_static_str("trades");
pub(crate) const FIRST_TS: Key = Key::from_static_str("first_ts");
pub(crate) const LAST_TS: Key = Key::from_static_str("last_ts");

/// The batch's volume hashes (see [`plan_volumes`]).
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    plan_volumes(&batch.volumes, cx.s, cx.state, &mut cx.buf, &mut cx.cmds);
}

/// Bucket and session volume: one HSET of absolute values per key, the latest.
pub(crate) fn plan_volumes(
    volumes: &[VolumeWrite],
    s: &LaneSettings,
    state: &LaneState,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let mut latest: HashMap<&Key, usize> = HashMap::new();
    let mut order: Vec<&Key> = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        if latest.insert(&v.key, i).is_none() {
            order.push(&v.key);
        }
    }
    let bucket_ttl = s.ttl(s.volume_db);
    let mut expire_once: Vec<(&Key, i64)> = Vec::new();
    // Each day profile's fields of this batch, in one HSET.
    let mut profiles: Vec<(&Key, Vec<(Key, Value)>)> = Vec::new();
    let hset = |key: &Key, fields: Vec<(Key, Value)>, cmds: &mut Vec<Cmd>| {
        cmds.push(Cmd {
            db: s.volume_db,
            kind: Kind::Hash,
            call: Call::Hset {
                key: key.clone(),
                fields,
            },
        });
    };
    for key in order {
        let w = &volumes[latest[key]];
        let u = &w.update;
        let volume = dec(buf, u.volume);
        let mut fields = vec![(VOLUME, volume.clone()), (TRADES, int(buf, u.trades))];
        match u.bucket {
            Some(minute) => {
                if let Some(r) = &w.ratio {
                    plan_ratio(r, u, minute, s, state, buf, cmds);
                }
                expire_once.push((key, bucket_ttl));
                if let Some((profile, field)) = &w.profile {
                    let field = (Key::from(field.as_str()), volume);
                    match profiles.iter_mut().find(|(k, _)| *k == profile) {
                        Some((_, fields)) => fields.push(field),
                        None => profiles.push((profile, vec![field])),
                    }
                    expire_once.push((profile, bucket_ttl));
                }
            }
            None => {
                fields.push((FIRST_TS, int(buf, u.first_ts_ms)));
                fields.push((LAST_TS, int(buf, u.last_ts_ms)));
                expire_once.push((key, s.session_ttl));
                // The indexes the baseline job reads: once per symbol and
                // session (each member is there for good once added).
                if let Some(sessions) = &w.sessions {
                    let memo = hash128(
                        s.volume_db,
                        &[b"ZADD", sessions.as_bytes(), u.session.as_bytes()],
                    );
                    if state.memo.index_due(memo) {
                        let score: i64 = u.session.replace('-', "").parse().unwrap_or(0);
                        let args = vec![
                            Value::from(sessions.clone()),
                            Value::Integer(score),
                            Value::from(&*u.session),
                        ];
                        cmds.push(Cmd {
                            db: s.volume_db,
                            kind: Kind::Index(memo),
                            call: Call::Custom { cmd: "ZADD", args },
                        });
                    }
                    expire_once.push((sessions, bucket_ttl));
                }
                if let Some(symbols) = &w.symbols {
                    let memo = hash128(
                        s.volume_db,
                        &[
                            b"SADD",
                            symbols.as_bytes(),
                            u.instrument.symbol.as_bytes(),
                            u.session.as_bytes(),
                        ],
                    );
                    if state.memo.index_due(memo) {
                        let args = vec![
                            Value::from(symbols.clone()),
                            Value::from(&*u.instrument.symbol),
                        ];
                        cmds.push(Cmd {
                            db: s.volume_db,
                            kind: Kind::Index(memo),
                            call: Call::Custom { cmd: "SADD", args },
                        });
                    }
                    expire_once.push((symbols, bucket_ttl));
                }
            }
        }
        hset(key, fields, cmds);
    }
    for (profile, fields) in profiles {
        hset(profile, fields, cmds);
    }
    let mut seen: HashSet<&Key> = HashSet::new();
    for (key, ttl) in expire_once {
        if seen.insert(key) {
            expire(state, s.volume_db, key, ttl, cmds);
        }
    }
}

pub(crate) const RATIO: Key = Key::from_static_str("value");

/// A bucket's volume over its baseline average to the ratio hash, and its
/// alert when it reaches the threshold (once per bucket).
pub(crate) fn plan_ratio(
    r: &RatioKeys,
    u: &VolumeUpdate,
    minute: u16,
    s: &LaneSettings,
    state: &LaneState,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let Some((_, Some(average))) = state.baselines.get(&r.baseline) else {
        return;
    };
    if *average <= 0.0 {
        return;
    }
    let ratio = u.volume.to_f64() / average;
    cmds.push(Cmd {
        db: s.ticks_db,
        kind: Kind::Indicator,
        call: Call::Hset {
            key: r.ratio.clone(),
            fields: vec![
                (RATIO, text(buf, ratio)),
                (TS, int(buf, u.last_ts_ms)),
                (PERIOD, int(buf, 0u32)),
            ],
        },
    });
    expire(state, s.ticks_db, &r.ratio, s.ttl(s.ticks_db), cmds);
    let a = &s.alerts;
    if ratio < a.threshold || state.alerted.contains(a.db, r.marker.as_bytes()) {
        return;
    }
    let bucket = tickwire_core::session::hhmm(minute);
    let args = vec![
        Value::Integer(a.marker_ttl),
        Value::Integer(a.stream_ttl),
        Value::Integer(a.maxlen),
        "symbol".into(),
        Value::from(&*u.instrument.symbol),
        "session".into(),
        Value::from(&*u.session),
        "bucket".into(),
        Value::from(bucket),
        "volume".into(),
        dec(buf, u.volume),
        "baseline".into(),
        text(buf, *average),
        "ratio".into(),
        text(buf, ratio),
        "time".into(),
        int(buf, u.last_ts_ms),
    ];
    cmds.push(Cmd {
        db: a.db,
        kind: Kind::Alert,
        call: Call::Evalsha {
            sha: a.script.sha1().clone(),
            keys: vec![r.marker.clone(), r.stream.clone()],
            args,
        },
    });
}
