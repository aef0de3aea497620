//! Planning: a lane's batch becomes commands, one output kind per file.
//!
//! Each kind's writes (what the dispatcher routed to a lane) are planned by
//! its own file into [`Cmd`]s; `output_kinds!` below lists the kinds, once,
//! in the order their commands go out. Nothing here talks to Redis: the transport
//! (`crate::lane`) sends the plan.

pub(crate) mod bars;
pub(crate) mod cmd;
pub(crate) mod dead_letters;
pub(crate) mod gaps;
pub(crate) mod lua;
pub(crate) mod prices;
pub(crate) mod profiles;
pub(crate) mod snapshots;
pub(crate) mod ticks;
pub(crate) mod volume;

use fred::bytes::BytesMut;

use crate::lane::settings::{LaneSettings, LaneState};
use bars::{BarWrite, IndicatorWrite};
use cmd::{Call, Cmd, Kind};
use dead_letters::RejectWrite;
use lua::{LuaBar, LuaTrade};
use prices::QuoteWrite;
use snapshots::SnapshotWrite;
use ticks::{tick_runs, TickWrite};
use volume::VolumeWrite;

/// The output kinds: each line names the kind's writes in a lane's batch
/// and, in the order their commands go out, the planner of its file. The
/// macro makes [`LaneBatch`] (a vector per line), its `len` and `take`, and
/// [`plan_kinds`]. A new output kind is its planning file here (with
/// `plan(&LaneBatch, &mut PlanCx)`), its routing in `dispatch/`, and one
/// line below.
macro_rules! output_kinds {
    ($( $(#[$doc:meta])* $field:ident: $write:ty $(=> $planner:path)? ),* $(,)?) => {
        /// One lane's writes, as the dispatcher routed them, until they go out.
        #[derive(Default)]
        pub(crate) struct LaneBatch {
            $( $(#[$doc])* pub $field: Vec<$write>, )*
        }

        impl LaneBatch {
            pub(crate) fn len(&self) -> usize {
                0 $( + self.$field.len() )*
            }

            /// Takes the batch, leaving an empty one with the room this one
            /// had for each kind: the next batch fills without growing its
            /// vectors (each regrowth copies every write so far). Halving
            /// the room after a small batch (what a lane that fell idle
            /// takes) still cost 1% of a replay in copies when full batches
            /// followed. The room is bounded: a batch goes out at
            /// `batch_size` items, so no vector outgrows twice that.
            pub(crate) fn take(&mut self) -> LaneBatch {
                let next = LaneBatch {
                    $( $field: Vec::with_capacity(self.$field.capacity()), )*
                };
                std::mem::replace(self, next)
            }
        }

        /// Every kind's commands, in the order of [`output_kinds!`].
        fn plan_kinds(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
            $( $( $planner(batch, cx); )? )*
        }
    };
}

output_kinds! {
    /// Ticks to their streams, then the last-price hashes they and the
    /// quotes leave (one pass: quotes fold in between the ticks).
    ticks: TickWrite => prices::plan,
    /// Quotes for the last-price hashes (planned with the ticks).
    quotes: QuoteWrite,
    rejects: RejectWrite => dead_letters::plan,
    /// Gaps in the feeds' trades, to `gaps:{feed}`.
    gaps: gaps::GapWrite => gaps::plan,
    /// Closed and forming bars, then the indicator hashes (one pass: they
    /// share the streams' EXPIREs).
    bars: BarWrite => bars::plan,
    indicators: IndicatorWrite,
    /// The Lua engine's inputs (planned together, when it is the engine).
    lua_bars: LuaBar => lua::plan,
    lua_trades: LuaTrade,
    volumes: VolumeWrite => volume::plan,
    snapshots: SnapshotWrite => snapshots::plan,
    /// Writes of the selected key profiles other than `default`.
    profile: crate::profile::ProfileWrite => profiles::plan,
    /// The state checkpoints of the instruments this batch's outputs belong
    /// to: written with the lane's next batch (or after the last), once
    /// these outputs are acknowledged, so a checkpoint is never ahead of them.
    checkpoints: SnapshotWrite,
}

impl LaneBatch {
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What every planner shares while a batch is planned.
pub(crate) struct PlanCx<'a> {
    pub s: &'a LaneSettings,
    pub state: &'a LaneState,
    /// The batch's tick runs (see [`tick_runs`]).
    pub runs: &'a [Vec<usize>],
    /// Scratch for number texts.
    pub buf: BytesMut,
    pub cmds: Vec<Cmd>,
}

pub(crate) fn plan(batch: &LaneBatch, s: &LaneSettings, state: &LaneState) -> Vec<Cmd> {
    plan_with(batch, &tick_runs(&batch.ticks), s, state)
}

/// The plan of a batch whose tick runs (see [`tick_runs`]) are known: every
/// kind's commands, then the EXPIREs owed from earlier batches.
pub(crate) fn plan_with(
    batch: &LaneBatch,
    runs: &[Vec<usize>],
    s: &LaneSettings,
    state: &LaneState,
) -> Vec<Cmd> {
    let mut cx = PlanCx {
        s,
        state,
        runs,
        buf: BytesMut::with_capacity(256),
        cmds: Vec::with_capacity(batch.ticks.len() + 64 + batch.rejects.len() * 2),
    };
    plan_kinds(batch, &mut cx);
    let mut cmds = cx.cmds;
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
