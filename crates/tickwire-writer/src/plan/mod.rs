//! Planning: a lane's batch becomes commands, one output kind per file.
//!
//! Each kind's writes (what the dispatcher routed to a lane) are planned by
//! its own file into [`Cmd`]s; [`plan_with`] lists the kinds in the order
//! their commands go out. Nothing here talks to Redis: the transport
//! (`crate::lane`) sends the plan.

pub(crate) mod bars;
pub(crate) mod cmd;
pub(crate) mod dead_letters;
pub(crate) mod lua;
pub(crate) mod prices;
pub(crate) mod profiles;
pub(crate) mod snapshots;
pub(crate) mod ticks;
pub(crate) mod volume;

use fred::bytes::BytesMut;
use fred::prelude::*;

use crate::lane::settings::{LaneSettings, LaneState};
use bars::{plan_bars_and_indicators, BarWrite, IndicatorWrite};
use cmd::{expire, Call, Cmd, Kind, ASK, BID, EXCHANGE, LTP, TS, VOL};
use dead_letters::{plan_dead_letters, RejectWrite};
use lua::{plan_lua, LuaBar, LuaTrade};
use prices::{fold_quotes, LatestFields, QuoteWrite};
use profiles::plan_profiles;
use snapshots::{plan_snapshots, SnapshotWrite};
use ticks::{plan_ticks, tick_runs, TickText, TickTexts, TickWrite};
use volume::{plan_volumes, VolumeWrite};

#[derive(Default)]
pub(crate) struct LaneBatch {
    pub ticks: Vec<TickWrite>,
    pub snapshots: Vec<SnapshotWrite>,
    /// Writes of the selected key profiles other than `default`.
    pub profile: Vec<crate::profile::ProfileWrite>,
    pub quotes: Vec<QuoteWrite>,
    pub rejects: Vec<RejectWrite>,
    pub bars: Vec<BarWrite>,
    pub indicators: Vec<IndicatorWrite>,
    pub lua_bars: Vec<LuaBar>,
    pub lua_trades: Vec<LuaTrade>,
    pub volumes: Vec<VolumeWrite>,
    /// The state checkpoints of the instruments this batch's outputs belong
    /// to: written with the lane's next batch (or after the last), once
    /// these outputs are acknowledged, so a checkpoint is never ahead of them.
    pub checkpoints: Vec<SnapshotWrite>,
}

impl LaneBatch {
    pub(crate) fn len(&self) -> usize {
        self.ticks.len()
            + self.snapshots.len()
            + self.profile.len()
            + self.quotes.len()
            + self.rejects.len()
            + self.bars.len()
            + self.indicators.len()
            + self.lua_bars.len()
            + self.lua_trades.len()
            + self.volumes.len()
            + self.checkpoints.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the batch, leaving an empty one with the room this one had for
    /// each kind: the next batch fills without growing its vectors (each
    /// regrowth copies every tick so far). Halving the room after a small
    /// batch (what a lane that fell idle takes) still cost 1% of a replay
    /// in copies when full batches followed. The room is bounded: a batch
    /// goes out at `batch_size` items, so no vector outgrows twice that.
    pub(crate) fn take(&mut self) -> LaneBatch {
        fn room<T>(v: &Vec<T>) -> Vec<T> {
            Vec::with_capacity(v.capacity())
        }
        let next = LaneBatch {
            ticks: room(&self.ticks),
            bars: room(&self.bars),
            indicators: room(&self.indicators),
            volumes: room(&self.volumes),
            checkpoints: room(&self.checkpoints),
            ..LaneBatch::default()
        };
        std::mem::replace(self, next)
    }
}

pub(crate) fn plan(batch: &LaneBatch, s: &LaneSettings, state: &LaneState) -> Vec<Cmd> {
    plan_with(batch, &tick_runs(&batch.ticks), s, state)
}

/// The plan of a batch whose tick runs (see [`tick_runs`]) are known.
pub(crate) fn plan_with(
    batch: &LaneBatch,
    runs: &[Vec<usize>],
    s: &LaneSettings,
    state: &LaneState,
) -> Vec<Cmd> {
    let mut cmds = Vec::with_capacity(batch.ticks.len() + 64 + batch.rejects.len() * 2);
    let mut buf = BytesMut::with_capacity(256);
    let mut text_buf = TickTexts::with_capacity(batch.ticks.len() * 48 + batch.quotes.len() * 24);
    let mut texts = Vec::with_capacity(batch.ticks.len());
    let mut stream_keys: Vec<(u8, &Key)> = Vec::new();
    let mut seen: foldhash::HashSet<(u8, &Key)> = foldhash::HashSet::default();
    // Per price key, the latest value of each field in this batch: the same
    // hash as one HSET per tick would leave, whatever the batch boundaries
    // (a tick without bid/ask keeps the bid/ask an earlier tick gave).
    let mut last: foldhash::HashMap<(u8, &Key), LatestFields> = foldhash::HashMap::default();
    let mut price_order: Vec<(u8, &Key)> = Vec::new();
    let mut quotes = batch.quotes.iter().peekable();
    for (i, w) in batch.ticks.iter().enumerate() {
        fold_quotes(&mut quotes, i, &mut last, &mut price_order, &mut text_buf);
        let text = TickText::new(&mut text_buf, w);
        let latest = last.entry((w.price_db, &w.price_key)).or_insert_with(|| {
            price_order.push((w.price_db, &w.price_key));
            LatestFields::default()
        });
        latest.update(i, &text);
        texts.push(text);
        if seen.insert((w.db, &w.stream_key)) {
            stream_keys.push((w.db, &w.stream_key));
        }
    }
    fold_quotes(
        &mut quotes,
        usize::MAX,
        &mut last,
        &mut price_order,
        &mut text_buf,
    );
    let text_buf = text_buf.freeze();
    plan_ticks(&batch.ticks, runs, s, &texts, &text_buf, &mut cmds);
    for (db, key) in stream_keys {
        expire(state, db, key, s.ttl(db), &mut cmds);
    }
    for (db, key) in price_order {
        let latest = &last[&(db, key)];
        let mut fields = Vec::with_capacity(7);
        if let Some(i) = latest.tick {
            fields.push((LTP, Value::Bytes(text_buf.bytes(texts[i].price))));
            fields.push((TS, Value::Bytes(text_buf.bytes(texts[i].ts))));
            fields.push((
                EXCHANGE,
                Value::from(&*batch.ticks[i].tick.instrument.exchange),
            ));
        }
        for (k, v) in [(VOL, latest.vol), (BID, latest.bid), (ASK, latest.ask)] {
            if let Some(v) = v {
                fields.push((k, Value::Bytes(text_buf.bytes(v))));
            }
        }
        if fields.is_empty() {
            // Only quotes without bid or ask: an HSET of no fields is an
            // error in Redis, and there is nothing to write.
            continue;
        }
        cmds.push(Cmd {
            db,
            kind: Kind::Hash,
            call: Call::Hset {
                key: key.clone(),
                fields,
            },
        });
        expire(state, db, key, s.ttl(db), &mut cmds);
    }
    plan_dead_letters(&batch.rejects, s, state, &mut cmds);
    plan_bars_and_indicators(
        &batch.bars,
        &batch.indicators,
        s,
        state,
        &mut buf,
        &mut cmds,
    );
    if let Some(lua) = &s.lua {
        plan_lua(
            &batch.lua_bars,
            &batch.lua_trades,
            s,
            state,
            lua,
            &mut buf,
            &mut cmds,
        );
    }
    plan_volumes(&batch.volumes, s, state, &mut buf, &mut cmds);
    plan_snapshots(&batch.snapshots, s, state, &mut cmds);
    plan_profiles(&batch.profile, s.profile_script.as_ref(), &mut cmds);
    for ((db, key), secs) in &state.owed {
        cmds.push(Cmd {
            db: *db,
            kind: Kind::Expire,
            call: Call::Expire {
                key: key.clone(),
                secs: *secs,
            },
        });
    }
    cmds
}
