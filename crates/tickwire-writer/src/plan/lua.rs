//! The Lua indicator engine's outputs: RSI/ATR of closed bars and VWAP of
//! trades, computed by scripts in Redis, one EVALSHA per instrument and
//! script per batch.

use crate::plan::{LaneBatch, PlanCx};
use fred::bytes::BytesMut;
use fred::prelude::*;
use tickwire_core::{Bar, SessionTrade};

use crate::lane::settings::{LaneSettings, LaneState, LuaScripts};
use crate::plan::cmd::*;
use foldhash::{HashSet, HashSetExt};

/// The keys the Lua engine's scripts touch for one instrument.
#[derive(Clone)]
pub(crate) struct LuaKeys {
    pub state: Key,
    pub rsi: Key,
    pub atr: Key,
    pub vwap: Key,
}

/// A closed bar for the Lua engine's RSI/ATR script.
pub(crate) struct LuaBar {
    pub keys: LuaKeys,
    pub bar: Bar,
}

/// A trade for the Lua engine's VWAP script.
pub(crate) struct LuaTrade {
    pub keys: LuaKeys,
    pub trade: SessionTrade,
}

/// The Lua engine's calls, when it is the engine (see [`plan_lua`]).
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    if let Some(lua) = &cx.s.lua {
        plan_lua(
            &batch.lua_bars,
            &batch.lua_trades,
            cx.s,
            cx.state,
            lua,
            &mut cx.buf,
            &mut cx.cmds,
        );
    }
}

/// One EVALSHA per instrument per batch and script, its inputs oldest first.
pub(crate) fn plan_lua(
    lua_bars: &[LuaBar],
    lua_trades: &[LuaTrade],
    s: &LaneSettings,
    state: &LaneState,
    lua: &LuaScripts,
    buf: &mut BytesMut,
    cmds: &mut Vec<Cmd>,
) {
    let ttl = Value::Integer(s.ticks_ttl);
    let mut bars: Vec<(&LuaKeys, Vec<Value>)> = Vec::new();
    for b in lua_bars {
        let i = match bars.iter().position(|(k, _)| k.state == b.keys.state) {
            Some(i) => i,
            None => {
                let head = vec![
                    ttl.clone(),
                    Value::from(lua.rsi_period),
                    Value::from(lua.atr_period),
                ];
                bars.push((&b.keys, head));
                bars.len() - 1
            }
        };
        let args = &mut bars[i].1;
        args.push(int(buf, b.bar.open_ms));
        args.push(dec(buf, b.bar.high));
        args.push(dec(buf, b.bar.low));
        args.push(dec(buf, b.bar.close));
    }
    // The keys the scripts write get their EXPIRE from the lane when due,
    // after the call (a key the script has not made yet answers 0 and is
    // tried again with the next batch).
    let mut expiring: Vec<&Key> = Vec::new();
    for (keys, args) in bars {
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Lua,
            call: Call::Evalsha {
                sha: lua.bar_indicators.sha1().clone(),
                keys: vec![keys.state.clone(), keys.rsi.clone(), keys.atr.clone()],
                args,
            },
        });
        expiring.extend([&keys.state, &keys.rsi, &keys.atr]);
    }
    // Per instrument, its trades in runs of one session, each run's trades
    // packed as doubles (see `vwap.lua`): the script reads them without
    // parsing text, and Redis makes two strings per run instead of five
    // per trade.
    // Per instrument: its keys, its args so far, and its open run (session
    // and packed trades).
    type Open<'a> = Option<(&'a str, BytesMut)>;
    let mut trades: Vec<(&LuaKeys, Vec<Value>, Open)> = Vec::new();
    for t in lua_trades {
        let i = match trades.iter().position(|(k, _, _)| k.state == t.keys.state) {
            Some(i) => i,
            None => {
                trades.push((&t.keys, vec![ttl.clone()], None));
                trades.len() - 1
            }
        };
        let tr = &t.trade;
        let (_, args, open) = &mut trades[i];
        let run = match open {
            Some((session, packed)) if *session == &*tr.session => packed,
            slot => {
                if let Some((session, packed)) = slot.take() {
                    close_vwap_run(args, session, packed);
                }
                &mut slot.insert((&*tr.session, BytesMut::new())).1
            }
        };
        // The inline engine's validity and product (Vwap::update).
        let (p, q) = (tr.price.to_f64(), tr.qty.to_f64());
        let (pq, q) = if p.is_finite() && p > 0.0 && q.is_finite() && q > 0.0 {
            (p * q, q)
        } else {
            (0.0, 0.0)
        };
        // Exact in a double: epoch ms and a per-millisecond count are far
        // below 2^53.
        for v in [tr.ts_ms as f64, tr.seq as f64, pq, q] {
            run.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (keys, mut args, open) in trades {
        if let Some((session, packed)) = open {
            close_vwap_run(&mut args, session, packed);
        }
        cmds.push(Cmd {
            db: s.ticks_db,
            kind: Kind::Lua,
            call: Call::Evalsha {
                sha: lua.vwap.sha1().clone(),
                keys: vec![keys.state.clone(), keys.vwap.clone()],
                args,
            },
        });
        expiring.extend([&keys.state, &keys.vwap]);
    }
    let mut planned: HashSet<&Key> = HashSet::new();
    for key in expiring {
        if planned.insert(key) {
            expire(state, s.ticks_db, key, s.ticks_ttl, cmds);
        }
    }
}

/// A run of trades of one session: `vwap.lua`'s two arguments for it.
pub(crate) fn close_vwap_run(args: &mut Vec<Value>, session: &str, packed: BytesMut) {
    args.push(Value::from(session));
    args.push(Value::Bytes(packed.freeze()));
}
