//! Ticks to their streams: one `lua/tick_append.lua` call per run of one
//! stream's ticks of one shape, the numbers' texts made once per tick.

use fred::bytes::Bytes;
use fred::bytes_utils::Str;
use fred::prelude::*;
use tickwire_core::Tick;

use crate::lane::settings::LaneSettings;
use crate::plan::cmd::{Call, Cmd, Kind};
use crate::plan::cmd::{ASK, BID, LTQ, VOL};
use crate::plan::cmd::{LTP, QTY, TS};
use foldhash::{HashMap, HashMapExt};

/// One tick with its stream ID and keys.
pub(crate) struct TickWrite {
    pub stream_key: Key,
    pub price_key: Key,
    /// The DB of the tick's phase, and of its last-price hash.
    pub db: u8,
    pub price_db: u8,
    pub id: (u64, u64),
    pub tick: Tick,
}

/// Where one value's text lies in a batch's text buffer ([`TickTexts`]).
#[derive(Clone, Copy, Default)]
pub(crate) struct Span(pub(crate) u32, pub(crate) u32);

/// The text of a batch's tick and quote numbers, written once into one
/// buffer and handed to fred as slices of it: no allocation, split or
/// reference count per value while the batch is planned.
#[derive(Default)]
pub(crate) struct TickTexts {
    pub(crate) buf: Vec<u8>,
}

impl TickTexts {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, text: &[u8]) -> Span {
        let start = self.buf.len();
        self.buf.extend_from_slice(text);
        self.since(start)
    }

    /// The span of what was written from `start` on.
    pub(crate) fn since(&self, start: usize) -> Span {
        // A batch's texts are a few hundred kB at most.
        Span(
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(self.buf.len()).unwrap_or(u32::MAX),
        )
    }

    pub(crate) fn dec(&mut self, v: tickwire_core::Dec) -> Span {
        let mut text = [0; tickwire_core::num::TEXT_LEN];
        self.push(v.text_bytes(&mut text))
    }

    pub(crate) fn int(&mut self, v: impl itoa::Integer) -> Span {
        self.push(itoa::Buffer::new().format(v).as_bytes())
    }

    /// The buffer, frozen once every text is in it.
    pub(crate) fn freeze(self) -> Frozen {
        Frozen(Bytes::from(self.buf))
    }
}

/// [`TickTexts`] after the last text was written.
pub(crate) struct Frozen(pub(crate) Bytes);

impl Frozen {
    pub(crate) fn get(&self, s: Span) -> &[u8] {
        self.0.get(s.0 as usize..s.1 as usize).unwrap_or_default()
    }

    /// A value for fred: a slice sharing the buffer.
    pub(crate) fn bytes(&self, s: Span) -> Bytes {
        self.0.slice(s.0 as usize..s.1 as usize)
    }

    /// A stream entry ID (ASCII digits and a dash, so valid UTF-8).
    pub(crate) fn id(&self, s: Span) -> Str {
        Str::from_inner(self.bytes(s)).unwrap_or_else(|_| Str::from("0-1"))
    }
}

/// Where one tick's numbers lie in the batch's [`TickTexts`].
pub(crate) struct TickText {
    pub(crate) id: Span,
    pub(crate) price: Span,
    pub(crate) qty: Span,
    pub(crate) ts: Span,
    pub(crate) vol: Option<Span>,
    pub(crate) bid: Option<Span>,
    pub(crate) ask: Option<Span>,
    pub(crate) ltq: Option<Span>,
}

impl TickText {
    pub(crate) fn new(texts: &mut TickTexts, w: &TickWrite) -> Self {
        let t = &w.tick;
        let mut ints = itoa::Buffer::new();
        let start = texts.buf.len();
        texts.buf.extend_from_slice(ints.format(w.id.0).as_bytes());
        texts.buf.push(b'-');
        texts.buf.extend_from_slice(ints.format(w.id.1).as_bytes());
        let id = texts.since(start);
        TickText {
            id,
            price: texts.dec(t.price),
            qty: texts.dec(t.qty),
            ts: texts.int(t.exchange_ts_ms()),
            vol: t.cum_volume.map(|v| texts.dec(v)),
            bid: t.bid.map(|v| texts.dec(v)),
            ask: t.ask.map(|v| texts.dec(v)),
            ltq: t.ltq.map(|v| texts.dec(v)),
        }
    }

    /// The optional fields the tick has, in entry order: vol, bid, ask, ltq.
    pub(crate) fn extras(&self) -> impl Iterator<Item = (Key, Span)> {
        [
            (VOL, self.vol),
            (BID, self.bid),
            (ASK, self.ask),
            (LTQ, self.ltq),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }
}

/// The fields a tick's stream entry has beyond ltp, qty and ts: a bit each
/// for vol, bid, ask and ltq.
pub(crate) fn tick_shape(t: &Tick) -> u8 {
    u8::from(t.cum_volume.is_some())
        | u8::from(t.bid.is_some()) << 1
        | u8::from(t.ask.is_some()) << 2
        | u8::from(t.ltq.is_some()) << 3
}

/// The batch's ticks as runs, each of one stream and one shape (the same
/// fields), in order: each run is one command. A stream's runs follow each
/// other in the plan as its ticks do in the batch, so its entries keep their
/// order. A deterministic function of the batch: a retry plans the same runs.
pub(crate) fn tick_runs(ticks: &[TickWrite]) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    // The open run of each stream and its shape.
    let mut open: HashMap<(u8, &Key), (usize, u8)> = HashMap::new();
    for (i, w) in ticks.iter().enumerate() {
        let shape = tick_shape(&w.tick);
        match open.get_mut(&(w.db, &w.stream_key)) {
            Some((r, sh)) if *sh == shape => runs[*r].push(i),
            Some(slot) => {
                *slot = (runs.len(), shape);
                runs.push(vec![i]);
            }
            None => {
                open.insert((w.db, &w.stream_key), (runs.len(), shape));
                runs.push(vec![i]);
            }
        }
    }
    runs
}

/// The tick stream entries: a run of one stream's ticks is one call of
/// `lua/tick_append.lua` carrying every entry (Redis runs the XADDs inside
/// the script; for tickwire's client one command of many arguments costs a
/// fraction of many commands); a run of one tick is a plain XADD. Both are
/// idempotent by the entries' explicit IDs.
pub(crate) fn plan_ticks(
    ticks: &[TickWrite],
    runs: &[Vec<usize>],
    s: &LaneSettings,
    texts: &[TickText],
    text_buf: &Frozen,
    cmds: &mut Vec<Cmd>,
) {
    for (r, run) in runs.iter().enumerate() {
        let w = &ticks[run[0]];
        let kind = Kind::Ticks(r);
        if let [only] = run[..] {
            let text = &texts[only];
            let mut fields = Vec::with_capacity(6);
            fields.push((LTP, Value::Bytes(text_buf.bytes(text.price))));
            fields.push((QTY, Value::Bytes(text_buf.bytes(text.qty))));
            fields.push((TS, Value::Bytes(text_buf.bytes(text.ts))));
            fields.extend(
                text.extras()
                    .map(|(k, v)| (k, Value::Bytes(text_buf.bytes(v)))),
            );
            cmds.push(Cmd {
                db: w.db,
                kind,
                call: Call::Xadd {
                    key: w.stream_key.clone(),
                    id: text_buf.id(text.id),
                    cap: s.maxlen,
                    fields,
                },
            });
            continue;
        }
        let mut names = vec![LTP, QTY, TS];
        names.extend(texts[run[0]].extras().map(|(k, _)| k));
        let width = 1 + names.len();
        let mut args = Vec::with_capacity(3 + names.len());
        args.push(Value::Integer(s.maxlen));
        args.push(Value::Integer(names.len() as i64));
        args.extend(names.into_iter().map(|k| Value::Bytes(k.into_bytes())));
        // The entries as one MessagePack array of strings (the script's
        // last argument): one bulk string for fred to encode, not `width`
        // per tick.
        let mut packed = Vec::with_capacity(5 + run.len() * width * 12);
        pack_array_len(&mut packed, run.len() * width);
        for &i in run {
            let t = &texts[i];
            for span in [t.id, t.price, t.qty, t.ts] {
                pack_str(&mut packed, text_buf.get(span));
            }
            // The run's ticks all have the same optional fields (its shape).
            for (_, v) in t.extras() {
                pack_str(&mut packed, text_buf.get(v));
            }
        }
        args.push(Value::Bytes(packed.into()));
        cmds.push(Cmd {
            db: w.db,
            kind,
            call: Call::Evalsha {
                sha: s.tick_script.sha1().clone(),
                keys: vec![w.stream_key.clone()],
                args,
            },
        });
    }
}

/// A MessagePack array header of `len` elements.
pub(crate) fn pack_array_len(out: &mut Vec<u8>, len: usize) {
    // A batch holds far fewer than 2^32 entries (its size is configured in
    // thousands); writing into a Vec cannot fail.
    let _ = rmp::encode::write_array_len(out, u32::try_from(len).unwrap_or(u32::MAX));
}

/// `text` as a MessagePack string.
pub(crate) fn pack_str(out: &mut Vec<u8>, text: &[u8]) {
    // A tick's value is a few dozen bytes at most; writing into a Vec
    // cannot fail.
    let _ = rmp::encode::write_str_len(out, u32::try_from(text.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(text);
}
