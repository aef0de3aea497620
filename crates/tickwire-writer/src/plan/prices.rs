//! Last-price hashes: per key, the latest value of each field a batch's
//! ticks and quotes gave, in one HSET; planned in one pass with the ticks'
//! stream entries (`ticks.rs`), whose number texts they share.

use fred::prelude::*;

use crate::plan::cmd::{expire, Call, Cmd, Kind, ASK, BID, EXCHANGE, LTP, TS, VOL};
use crate::plan::ticks::{plan_ticks, Span, TickText, TickTexts};
use crate::plan::{LaneBatch, PlanCx};
use foldhash::HashMap;

/// The ticks of a batch to their streams (with their EXPIREs when due), then
/// the last-price hashes: per key, the latest value of each field its ticks
/// and quotes gave (see `prices.rs`), in one HSET.
pub(crate) fn plan(batch: &LaneBatch, cx: &mut PlanCx<'_>) {
    let (s, state) = (cx.s, cx.state);
    let cmds = &mut cx.cmds;
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
    plan_ticks(&batch.ticks, cx.runs, s, &texts, &text_buf, cmds);
    for (db, key) in stream_keys {
        expire(state, db, key, s.ttl(db), cmds);
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
        expire(state, db, key, s.ttl(db), cmds);
    }
}

/// A quote for a last-price hash; `after` is how many of the batch's ticks
/// came before it, so that ticks and quotes fold into the hash in order.
pub(crate) struct QuoteWrite {
    pub price_key: Key,
    pub price_db: u8,
    pub after: usize,
    pub bid: Option<tickwire_core::Dec>,
    pub ask: Option<tickwire_core::Dec>,
}

/// Folds the quotes that came before tick `i` of the batch into the
/// last-price fields, in order.
pub(crate) fn fold_quotes<'a>(
    quotes: &mut std::iter::Peekable<std::slice::Iter<'a, QuoteWrite>>,
    i: usize,
    last: &mut HashMap<(u8, &'a Key), LatestFields>,
    price_order: &mut Vec<(u8, &'a Key)>,
    texts: &mut TickTexts,
) {
    while let Some(q) = quotes.next_if(|q| q.after <= i) {
        let latest = last.entry((q.price_db, &q.price_key)).or_insert_with(|| {
            price_order.push((q.price_db, &q.price_key));
            LatestFields::default()
        });
        if let Some(bid) = q.bid {
            latest.bid = Some(texts.dec(bid));
        }
        if let Some(ask) = q.ask {
            latest.ask = Some(texts.dec(ask));
        }
    }
}

/// The newest value of each last-price field seen in a batch.
#[derive(Default)]
pub(crate) struct LatestFields {
    /// Index of the newest tick (ltp, ts, exchange); none for quotes alone.
    pub(crate) tick: Option<usize>,
    pub(crate) vol: Option<Span>,
    pub(crate) bid: Option<Span>,
    pub(crate) ask: Option<Span>,
}

impl LatestFields {
    pub(crate) fn update(&mut self, i: usize, text: &TickText) {
        self.tick = Some(i);
        for (mine, theirs) in [
            (&mut self.vol, text.vol),
            (&mut self.bid, text.bid),
            (&mut self.ask, text.ask),
        ] {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }
}
