//! Last-price hashes: per key, the latest value of each field a batch's
//! ticks and quotes gave, in one HSET.

use fred::prelude::*;

use crate::plan::ticks::{Span, TickText, TickTexts};
use foldhash::HashMap;

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
