//! The vocabulary of a plan: a command for one DB ([`Cmd`]), what it writes
//! ([`Kind`]) and how it is sent ([`Call`]); the field names and number
//! texts every output kind uses, and the EXPIRE a key is owed.

use std::fmt::Write as _;

use fred::bytes::{Bytes, BytesMut};
use fred::bytes_utils::Str;
use fred::prelude::*;

use crate::lane::settings::LaneState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Profile,
    /// The stream entries of run `.0` of the batch's ticks (see [`tick_runs`]).
    Ticks(usize),
    DeadLetter,
    /// A gap's entry in `gaps:{feed}`.
    Gap,
    Bar,
    Hash,
    Indicator,
    Lua,
    Alert,
    Expire,
    /// A forming-bar hash deleted: its TTL is forgotten once applied, so
    /// the hash made again by the next bar gets its EXPIRE.
    Delete,
    /// A SET ... EX: the key is counted by its reply (it sets its own TTL).
    SetEx,
    /// A volume index write (ZADD, SADD), remembered by this hash of its key
    /// and member once applied: sent once per symbol and session.
    Index(u128),
}

pub(crate) enum Call {
    Xadd {
        key: Key,
        id: Str,
        cap: i64,
        fields: Vec<(Key, Value)>,
    },
    Hset {
        key: Key,
        fields: Vec<(Key, Value)>,
    },
    Expire {
        key: Key,
        secs: i64,
    },
    /// The key goes: `EXPIRE key 0`, which Redis documents as deleting it
    /// (replicated as a DEL), so the ACL line that lets tickwire write its
    /// keys needs nothing more.
    Del {
        key: Key,
    },
    Evalsha {
        sha: Str,
        keys: Vec<Key>,
        args: Vec<Value>,
    },
    /// SET key value EX secs. Typed, not custom: fred flushes the socket
    /// after every custom command (and EVALSHA), a write syscall each.
    SetEx {
        key: Key,
        value: Value,
        secs: i64,
    },
    /// A command fred's pipeline has no typed call for, or one simpler as is.
    Custom {
        cmd: &'static str,
        args: Vec<Value>,
    },
}

pub(crate) const LTP: Key = Key::from_static_str("ltp");
pub(crate) const QTY: Key = Key::from_static_str("qty");
pub(crate) const TS: Key = Key::from_static_str("ts");
pub(crate) const VOL: Key = Key::from_static_str("vol");
pub(crate) const LTQ: Key = Key::from_static_str("ltq");
pub(crate) const BID: Key = Key::from_static_str("bid");
pub(crate) const ASK: Key = Key::from_static_str("ask");
pub(crate) const EXCHANGE: Key = Key::from_static_str("exchange");
pub(crate) const ERROR: Key = Key::from_static_str("error");
pub(crate) const RAW: Key = Key::from_static_str("raw");
pub(crate) const RECV_TS: Key = Key::from_static_str("recv_ts");
pub(crate) const BAR_FIELDS: [Key; 7] = [
    Key::from_static_str("o"),
    Key::from_static_str("h"),
    Key::from_static_str("l"),
    Key::from_static_str("c"),
    Key::from_static_str("v"),
    Key::from_static_str("n"),
    Key::from_static_str("ts"),
];
pub(crate) const VALUE: Key = Key::from_static_str("value");
pub(crate) const PERIOD: Key = Key::from_static_str("period");

/// A float's text (its `Display`, as every float tickwire writes), a
/// slice of the batch's buffer.
pub(crate) fn text(buf: &mut BytesMut, v: f64) -> Value {
    // Writing to a BytesMut cannot fail.
    let _ = write!(buf, "{v}");
    Value::Bytes(buf.split().freeze())
}

/// A decimal's text as a value: [`dec_bytes`], not `core::fmt`.
pub(crate) fn dec(buf: &mut BytesMut, v: tickwire_core::Dec) -> Value {
    Value::Bytes(dec_bytes(buf, v))
}

/// An integer's text as a value: [`int_bytes`], not `core::fmt`.
pub(crate) fn int(buf: &mut BytesMut, v: impl itoa::Integer) -> Value {
    Value::Bytes(int_bytes(buf, v))
}

/// A decimal's shortest text, a slice of the batch's buffer.
pub(crate) fn dec_bytes(buf: &mut BytesMut, v: tickwire_core::Dec) -> Bytes {
    let mut text = [0; tickwire_core::num::TEXT_LEN];
    buf.extend_from_slice(v.text_bytes(&mut text));
    buf.split().freeze()
}

/// An integer's text, a slice of the batch's buffer.
pub(crate) fn int_bytes(buf: &mut BytesMut, v: impl itoa::Integer) -> Bytes {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    buf.split().freeze()
}

pub(crate) struct Cmd {
    pub(crate) db: u8,
    pub(crate) kind: Kind,
    pub(crate) call: Call,
}

/// An EXPIRE of `key`, when it is due: the key's first write of this lane
/// (or since the lane forgot, after a reconnect or Redis restart), or its
/// refresh interval has passed (see [`crate::memo::refresh_interval`]).
pub(crate) fn expire(state: &LaneState, db: u8, key: &Key, secs: i64, cmds: &mut Vec<Cmd>) {
    // An owed EXPIRE of the same key goes out anyway.
    if !state.memo.ttl_due(db, key.as_bytes(), secs)
        || (!state.owed.is_empty() && state.owed.contains_key(&(db, key.clone())))
    {
        return;
    }
    cmds.push(Cmd {
        db,
        kind: Kind::Expire,
        call: Call::Expire {
            key: key.clone(),
            secs,
        },
    });
}
