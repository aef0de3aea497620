//! Bars and indicator values: closed bars to their streams, forming bars
//! and indicator values to their hashes, a forming hash deleted once its
//! bar closed.

use crate::plan::{LaneBatch, PlanCx};
use fred::bytes::BytesMut;
use fred::prelude::*;
use tickwire_core::{BarUpdate, IndicatorUpdate};

use crate::lane::settings::{LaneSettings, LaneState};
use crate::plan::cmd::*;
use foldhash::{HashMap, HashMapExt};
use fred::bytes_utils::Str;

/// A closed bar (to its stream) or a forming one (to the hash beside it),
/// or (`None`) the news that none is forming: the hash goes.
pub(crate) struct BarWrite {
    pub key: Key,
    pub update: Option<BarUpdate>,
}

/// An indicator value, to `indicator:{name}:{symbol}`.
pub(crate) struct IndicatorWrite {
    pub key: Key,
    pub update: IndicatorUpdate,
}

pub(crate) fn bar_fields(buf: &mut BytesMut, b: &tickwire_core::Bar) -> Vec<(Key, Value)> {
    let values = [
        Value::Bytes(dec_bytes(buf, b.open)),
        Value::Bytes(dec_bytes(buf, b.high)),
        Value::Bytes(dec_bytes(buf, b.low)),
        Value::Bytes(dec_bytes(buf, b.close)),
        Value::Bytes(dec_bytes(buf, b.volume)),
        Value::Bytes(int_bytes(buf, b.trades)),
        Value::Bytes(int_bytes(buf, b.open_ms)),
    ];
    BAR_FIELDS.into_iter().zip(values).collect()
}

/// The batch's bars and indicator values (see [`plan_bars_and_indicators`]).
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    plan_bars_and_indicators(
        &batch.bars,
        &batch.indicators,
        cx.s,
        cx.state,
        &mut cx.buf,
        &mut cx.cmds,
    );
}

/// Closed bars: XADD with the bar's open time as ID. Forming bars and
/// indicator values: one HSET per key with its latest state.
pub(crate) fn plan_bars_and_indicators(
    bars: &[BarWrite],
    indicators: &[IndicatorWrite],
    s: &LaneSettings,
    state: &LaneState,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let mut keys: Vec<&Key> = Vec::new();
    let mut latest: HashMap<&Key, usize> = HashMap::new();
    let mut order: Vec<&Key> = Vec::new();
    for (i, w) in bars.iter().enumerate() {
        match &w.update {
            Some(u) if u.closed => {
                if !keys.contains(&&w.key) {
                    keys.push(&w.key);
                }
                let b = &u.bar;
                cmds.push(Cmd {
                    db: s.ticks_db,
                    kind: Kind::Bar,
                    call: Call::Xadd {
                        key: w.key.clone(),
                        id: Str::from(format!("{}-0", b.open_ms)),
                        cap: s.maxlen,
                        fields: bar_fields(buf, b),
                    },
                });
            }
            // The forming hash says what the batch's last news of it says.
            _ => {
                if latest.insert(&w.key, i).is_none() {
                    order.push(&w.key);
                }
            }
        }
    }
    for key in order {
        match &bars[latest[key]].update {
            Some(u) => {
                keys.push(key);
                cmds.push(Cmd {
                    db: s.ticks_db,
                    kind: Kind::Hash,
                    call: Call::Hset {
                        key: key.clone(),
                        fields: bar_fields(buf, &u.bar),
                    },
                });
            }
            None => cmds.push(Cmd {
                db: s.ticks_db,
                kind: Kind::Delete,
                call: Call::Del { key: key.clone() },
            }),
        }
    }
    let mut latest: HashMap<&Key, usize> = HashMap::new();
    let mut order: Vec<&Key> = Vec::new();
    for (i, w) in indicators.iter().enumerate() {
        if latest.insert(&w.key, i).is_none() {
            order.push(&w.key);
            keys.push(&w.key);
        }
    }
    for key in order {
        let u = &indicators[latest[key]].update;
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Indicator,
            call: Call::Hset {
                key: key.clone(),
                fields: vec![
                    (VALUE, text(buf, u.value)),
                    (TS, int(buf, u.ts_ms)),
                    (PERIOD, int(buf, u.period)),
                ],
            },
        });
    }
    for key in keys {
        expire(state, s.ticks_db, key, s.ticks_ttl, cmds);
    }
}
