//! Dhan's packets: binary, little-endian, unpadded.
//!
//! Every packet starts with an 8-byte header: response code u8, message
//! length u16, exchange segment u8, security id u32. The bodies (per Dhan's
//! official Python SDK):
//!
//! | code | packet | bytes | body after the header |
//! |---|---|---|---|
//! | 2 | ticker | 16 | LTP f32, LTT u32 |
//! | 4 | quote | 50 | LTP f32, LTQ u16, LTT u32, ATP f32, volume u32, total sell qty u32, total buy qty u32, open, close, high, low f32 |
//! | 5 | OI | 12 | open interest u32 |
//! | 6 | prev close | 16 | prev close f32, prev OI u32 |
//! | 7 | market status | 8 | none |
//! | 8 | full | 162 | as quote with OI, OI high, OI low u32 after TBQ, then 5 depth levels of 20 bytes |
//! | 50 | disconnect | 10 | reason code u16 |
//!
//! Quote and full packets repeat the last trade while only the book changes:
//! a tick is emitted when the day volume grows: its quantity is that growth
//! (set by the state stage, which knows the last volume applied, also from a
//! checkpoint), its LTQ kept beside it, so bars, buckets and session volume
//! add up to the exchange's day volume however many trades one packet
//! covers. The day
//! volume starts again at each trading date of the security's exchange
//! (midnight Asia/Kolkata), so day 2's first trade is one though its volume
//! is below day 1's; a packet of an earlier date than the last is stale. The
//! trading date and the day volume are the trade's identity
//! ([`TradeId::day_volume`]), so a process started after another one, which
//! has not seen the earlier packets, still knows a resent one. A ticker
//! packet is emitted when its price or time changes, with quantity 0 (it does
//! not say how much traded). Full packets also give a 5-level depth snapshot
//! and the best bid/ask of their tick. Instruments are named by the feed's
//! symbol map (`NSE_EQ:1333=RELIANCE`), by security id when it has none.
//!
//! LTT is read as IST wall-clock seconds by default ([`LttBasis`]; the feed's
//! `ltt_basis` says otherwise): UTC epoch ms = (LTT - 19,800) * 1000.

use std::collections::HashMap;

use jiff::civil::Date;
use tickwire_core::session::{default_exchanges, Calendar, SessionClock};
use tickwire_core::{Dec, Depth, DepthLevel, Event, InstrumentCache, Tick, TradeId};

use super::{segment_name, LttBasis};
use crate::venues::FrameError;

/// Total packet size of each response code.
fn packet_len(code: u8) -> Option<usize> {
    Some(match code {
        2 => 16,
        4 => 50,
        5 => 12,
        6 => 16,
        7 => 8,
        8 => 162,
        50 => 10,
        _ => return None,
    })
}

/// Little-endian reads at fixed offsets of a packet whose length was checked.
struct Packet<'a>(&'a [u8]);

impl Packet<'_> {
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.0[at], self.0[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    /// An f32 price as the decimal it was meant to be (2450.05, not
    /// 2450.050048828125); a NaN or infinity reads as 0, which no check passes.
    fn price(&self, at: usize) -> Dec {
        Dec::from_f32(f32::from_bits(self.u32(at))).unwrap_or(Dec::ZERO)
    }
}

/// Decodes Dhan packets, remembering each security's last trade.
pub struct DhanDecoder {
    pub ltt_basis: LttBasis,
    /// Per (segment, security id): the last trade seen.
    last: HashMap<(u8, u32), Last>,
    /// Per (segment, security id): the symbol its keys use.
    names: HashMap<(u8, u32), Box<str>>,
    /// The trading date of each exchange's packets (by its own time zone).
    clocks: Vec<(&'static str, SessionClock)>,
}

/// A security's last trade: what tells a new trade from a repeat.
#[derive(Debug, Clone, Copy, Default)]
struct Last {
    price_bits: u32,
    ltt: u32,
    /// The cumulative volume of `day` so far.
    volume: u32,
    /// The exchange's trading date of the last packet (none yet).
    day: Option<Date>,
}

impl Last {
    /// Takes the packet's trading date: a later day starts the day volume
    /// again from 0 (the exchange resets it overnight); a packet of an
    /// earlier day than the last one is stale and returns false.
    fn on_day(&mut self, day: Date) -> bool {
        match self.day {
            Some(d) if day < d => false,
            Some(d) if day == d => true,
            _ => {
                *self = Last {
                    day: Some(day),
                    ..Last::default()
                };
                true
            }
        }
    }
}

impl Default for DhanDecoder {
    fn default() -> Self {
        Self::new(LttBasis::default())
    }
}

impl DhanDecoder {
    pub fn new(ltt_basis: LttBasis) -> Self {
        // Dhan's exchanges are India's: their days turn at midnight in their
        // own zone (Asia/Kolkata), as the state stage's default calendar says.
        // The built-in exchanges are valid; an empty calendar would only put
        // the day boundary at midnight UTC.
        let calendar = Calendar::from_config(&default_exchanges())
            .unwrap_or_else(|_| Calendar::around_the_clock());
        let clocks = ["NSE", "BSE", "MCX"]
            .into_iter()
            .map(|ex| (ex, SessionClock::new(calendar.venue(ex))))
            .collect();
        Self {
            ltt_basis,
            last: HashMap::new(),
            names: HashMap::new(),
            clocks,
        }
    }

    /// The exchange's trading date at `ts_ns`. Indices (IDX) follow NSE's day.
    fn trading_day(&mut self, exchange: &str, ts_ns: i64) -> Option<Date> {
        let i = self
            .clocks
            .iter()
            .position(|(ex, _)| *ex == exchange)
            .unwrap_or(0);
        let (_, clock) = self.clocks.get_mut(i)?;
        Some(clock.at(ts_ns.div_euclid(1_000_000)).date)
    }

    /// Names a security: its ticks are keyed by `symbol`, not by its id.
    pub fn name(&mut self, segment: u8, security_id: u32, symbol: &str) {
        self.names.insert((segment, security_id), symbol.into());
    }

    /// Decodes one binary message (one or more packets back to back).
    pub fn decode(
        &mut self,
        feed: &str,
        bytes: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        // Every packet is checked before any is decoded, so that a message
        // rejected for a bad packet has changed no per-security state and a
        // re-sent copy decodes in full.
        check_message(bytes)?;
        let first = out.len();
        let mut rest = bytes;
        while !rest.is_empty() {
            let result = self.packet(feed, rest, recv_ns, instruments, out);
            match result {
                Ok(used) => rest = &rest[used..],
                Err(e) => {
                    out.truncate(first);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Decodes the packet at the start of `bytes`; returns its length.
    fn packet(
        &mut self,
        feed: &str,
        bytes: &[u8],
        recv_ns: i64,
        instruments: &mut InstrumentCache,
        out: &mut Vec<Event>,
    ) -> Result<usize, FrameError> {
        let (code, len) = framing(bytes)?;
        let p = Packet(&bytes[..len]);
        let (segment, security) = (bytes[3], p.u32(4));
        let skipped = || Event::Skipped { feed: feed.into() };
        let offset = self.ltt_basis.offset_secs();
        let ltt_ns = |ltt: u32| (i64::from(ltt) - offset) * 1_000_000_000;
        // The trading date of a packet naming a trade (checked: its segment is known).
        let day = match (code, segment_name(segment)) {
            (2, Some((exchange, _))) => self.trading_day(exchange, ltt_ns(p.u32(12))),
            (4 | 8, Some((exchange, _))) => self.trading_day(exchange, ltt_ns(p.u32(14))),
            _ => None,
        };
        let names = &self.names;
        let instrument = |instruments: &mut InstrumentCache| -> Result<_, FrameError> {
            let (exchange, seg) = segment_name(segment).ok_or_else(|| {
                FrameError::new("bad_value", format!("unknown exchange segment {segment}"))
            })?;
            let id = security.to_string();
            let symbol = names.get(&(segment, security)).map_or(&*id, |s| &**s);
            Ok(instruments.get(exchange, symbol, Some(seg), Some(&id)))
        };
        let event = match code {
            2 => {
                let (price_bits, ltt) = (p.u32(8), p.u32(12));
                let last = self.last.entry((segment, security)).or_default();
                let today = day.is_none_or(|d| last.on_day(d));
                if !today || (last.price_bits, last.ltt) == (price_bits, ltt) {
                    skipped()
                } else {
                    (last.price_bits, last.ltt) = (price_bits, ltt);
                    let tick = Tick::trade(
                        instrument(instruments)?,
                        ltt_ns(ltt),
                        recv_ns,
                        p.price(8),
                        Dec::ZERO,
                    );
                    tick.validate()
                        .map_err(|e| FrameError::new("invalid_tick", e))?;
                    Event::Tick(tick)
                }
            }
            4 | 8 => {
                let (price_bits, ltq, ltt, volume) = (p.u32(8), p.u16(12), p.u32(14), p.u32(22));
                let last = self.last.entry((segment, security)).or_default();
                let today = day.is_none_or(|d| last.on_day(d));
                if !today || volume <= last.volume {
                    // The book moved, no new trade (or a repeat, or a packet
                    // of a day already over).
                    skipped()
                } else {
                    *last = Last {
                        price_bits,
                        ltt,
                        volume,
                        day: last.day,
                    };
                    let mut tick = Tick::trade(
                        instrument(instruments)?,
                        ltt_ns(ltt),
                        recv_ns,
                        p.price(8),
                        Dec::from(u32::from(ltq)),
                    );
                    tick.cum_volume = Some(Dec::from(volume));
                    // The state stage makes the quantity the day volume's
                    // growth since the last trade it applied.
                    tick.ltq = Some(Dec::from(u32::from(ltq)));
                    tick.trade_id = last.day.map(|d| TradeId::day_volume(date_key(d), volume));
                    tick.atp = Some(p.price(18).to_f64()).filter(|a| *a > 0.0);
                    if code == 8 {
                        let best = depth_level(&p, 0);
                        tick.bid = best.bid_price.is_positive().then_some(best.bid_price);
                        tick.ask = best.ask_price.is_positive().then_some(best.ask_price);
                    }
                    tick.validate()
                        .map_err(|e| FrameError::new("invalid_tick", e))?;
                    Event::Tick(tick)
                }
            }
            // OI, previous close, market status, disconnect: not ticks.
            _ => skipped(),
        };
        out.push(event);
        if code == 8 {
            out.push(Event::Depth(Depth {
                instrument: instrument(instruments)?,
                exchange_ts_ns: ltt_ns(p.u32(14)),
                recv_ts_ns: recv_ns,
                levels: (0..5).map(|i| depth_level(&p, i)).collect(),
            }));
        }
        Ok(len)
    }
}

/// A trading date as `yyyymmdd`.
fn date_key(d: Date) -> u32 {
    // Dates of trades are after 2000 (older ones are rejected): positive.
    let y = u32::try_from(d.year()).unwrap_or(0);
    y * 10_000 + u32::from(d.month().unsigned_abs()) * 100 + u32::from(d.day().unsigned_abs())
}

/// The framing of a message: each packet's code known, its length present,
/// its segment known where the packet names an instrument.
fn check_message(mut bytes: &[u8]) -> Result<(), FrameError> {
    while !bytes.is_empty() {
        let (code, len) = framing(bytes)?;
        if matches!(code, 2 | 4 | 8) && segment_name(bytes[3]).is_none() {
            return Err(FrameError::new(
                "bad_value",
                format!("unknown exchange segment {}", bytes[3]),
            ));
        }
        bytes = &bytes[len..];
    }
    Ok(())
}

/// The response code and total length of the packet at the start of `bytes`,
/// checked to be all there.
fn framing(bytes: &[u8]) -> Result<(u8, usize), FrameError> {
    if bytes.len() < 8 {
        return Err(FrameError::new(
            "bad_length",
            format!("{} bytes is shorter than the 8-byte header", bytes.len()),
        ));
    }
    let code = bytes[0];
    let Some(len) = packet_len(code) else {
        return Err(FrameError::new(
            "unknown_message",
            format!("unknown response code {code}"),
        ));
    };
    if bytes.len() < len {
        return Err(FrameError::new(
            "bad_length",
            format!(
                "response code {code} needs {len} bytes, got {}",
                bytes.len()
            ),
        ));
    }
    Ok((code, len))
}

/// Depth level `i` (0 = best) of a full packet: 20 bytes each from offset 62:
/// bid qty u32, ask qty u32, bid orders u16, ask orders u16, bid price f32,
/// ask price f32.
fn depth_level(p: &Packet<'_>, i: usize) -> DepthLevel {
    let at = 62 + 20 * i;
    DepthLevel {
        bid_qty: Dec::from(p.u32(at)),
        ask_qty: Dec::from(p.u32(at + 4)),
        bid_orders: u32::from(p.u16(at + 8)),
        ask_orders: u32::from(p.u16(at + 10)),
        bid_price: p.price(at + 12),
        ask_price: p.price(at + 16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(v: f64) -> Dec {
        Dec::from_f64(v).unwrap()
    }

    fn header(code: u8, len: u16, segment: u8, security: u32) -> Vec<u8> {
        let mut b = vec![code];
        b.extend(len.to_le_bytes());
        b.push(segment);
        b.extend(security.to_le_bytes());
        b
    }

    /// A quote packet built from the published layout.
    fn quote(security: u32, ltp: f32, ltq: u16, ltt: u32, volume: u32) -> Vec<u8> {
        let mut b = header(4, 50, 1, security);
        b.extend(ltp.to_le_bytes());
        b.extend(ltq.to_le_bytes());
        b.extend(ltt.to_le_bytes());
        b.extend(2_449.5f32.to_le_bytes()); // ATP
        b.extend(volume.to_le_bytes());
        b.extend(1_000u32.to_le_bytes()); // total sell qty
        b.extend(2_000u32.to_le_bytes()); // total buy qty
        for v in [2_440.0f32, 2_430.0, 2_460.0, 2_420.0] {
            b.extend(v.to_le_bytes()); // open, close, high, low
        }
        assert_eq!(b.len(), 50);
        b
    }

    fn full(security: u32, ltp: f32, ltq: u16, ltt: u32, volume: u32) -> Vec<u8> {
        let q = quote(security, ltp, ltq, ltt, volume);
        let mut b = header(8, 162, 2, security);
        b.extend(&q[8..34]); // LTP .. TBQ
        for oi in [5_000u32, 6_000, 4_000] {
            b.extend(oi.to_le_bytes());
        }
        b.extend(&q[34..50]); // open, close, high, low
        for level in 0..5u32 {
            b.extend((100 + level).to_le_bytes()); // bid qty
            b.extend((200 + level).to_le_bytes()); // ask qty
            b.extend(3u16.to_le_bytes());
            b.extend(4u16.to_le_bytes());
            b.extend((ltp - 0.05 * (level + 1) as f32).to_le_bytes());
            b.extend((ltp + 0.05 * (level + 1) as f32).to_le_bytes());
        }
        assert_eq!(b.len(), 162);
        b
    }

    fn decode(d: &mut DhanDecoder, bytes: &[u8]) -> (Result<(), FrameError>, Vec<Event>) {
        let mut out = Vec::new();
        let r = d.decode("dhan", bytes, 5, &mut InstrumentCache::default(), &mut out);
        (r, out)
    }

    #[test]
    fn quote_packet_becomes_a_trade_once_per_volume_change() {
        let mut d = DhanDecoder::new(LttBasis::Utc);
        let (r, out) = decode(&mut d, &quote(2885, 2450.05, 25, 1_704_080_700, 120_000));
        r.unwrap();
        let [Event::Tick(t)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (&*t.instrument.exchange, t.instrument.segment.as_deref()),
            ("NSE", Some("NSE_EQ"))
        );
        assert_eq!(t.instrument.security_id.as_deref(), Some("2885"));
        assert_eq!(
            (t.price, t.qty, t.cum_volume),
            (dec(2450.05), dec(25.0), Some(dec(120_000.0)))
        );
        // Read as a true epoch (`ltt_basis = "utc"`).
        assert_eq!(t.exchange_ts_ns, 1_704_080_700_000_000_000);
        // The same trade again (only the book moved): skipped.
        let (_, out) = decode(&mut d, &quote(2885, 2450.05, 25, 1_704_080_700, 120_000));
        assert!(matches!(out[0], Event::Skipped { .. }));
    }

    /// 2024-01-01 10:30:00 written as IST wall-clock seconds.
    const IST_10_30: u32 = 1_704_105_000;

    #[test]
    fn ltt_is_ist_wall_clock_by_default_and_lands_in_nse_continuous() {
        let mut d = DhanDecoder::default();
        assert_eq!(d.ltt_basis, LttBasis::IstWallClock);
        let (r, out) = decode(&mut d, &quote(2885, 2450.05, 25, IST_10_30, 120_000));
        r.unwrap();
        let [Event::Tick(t)] = out.as_slice() else {
            panic!("{out:?}")
        };
        // 10:30 IST is 05:00 UTC.
        assert_eq!(t.exchange_ts_ns, 1_704_085_200_000_000_000);
        let calendar = Calendar::from_config(&default_exchanges()).unwrap();
        let mut clock = SessionClock::new(calendar.venue("NSE"));
        let local = clock.at(t.exchange_ts_ns / 1_000_000).clone();
        assert_eq!(
            (&*local.session, local.minute),
            ("2024-01-01", 10 * 60 + 30)
        );
        assert_eq!(
            clock.venue().route(local.minute),
            Some(tickwire_core::Db::ContinuousMarket)
        );
    }

    #[test]
    fn day_volume_starts_again_on_the_next_trading_date() {
        let mut d = DhanDecoder::default();
        let day = 86_400;
        let trade = |d: &mut DhanDecoder, ltt, volume| {
            let (r, out) = decode(d, &quote(2885, 2450.05, 5, ltt, volume));
            r.unwrap();
            matches!(out[0], Event::Tick(_))
        };
        assert!(trade(&mut d, IST_10_30, 120_000));
        assert!(trade(&mut d, IST_10_30 + 60, 120_005));
        // Day 2: the exchange's day volume restarted; far below day 1's.
        assert!(trade(&mut d, IST_10_30 + day, 500), "day 2's first trade");
        assert!(!trade(&mut d, IST_10_30 + day, 500), "a repeat");
        assert!(trade(&mut d, IST_10_30 + day + 1, 505));
        // A late packet of day 1 changes nothing of day 2.
        assert!(!trade(&mut d, IST_10_30 + 120, 120_010), "stale");
        assert!(trade(&mut d, IST_10_30 + day + 2, 510));
        // The date turns at midnight IST (18:30 UTC), not midnight UTC: the
        // last minute of day 2 is still day 2, the first of day 3 is not.
        let midnight = 1_704_067_200 + 3 * day; // 2024-01-04 00:00 IST
        assert!(trade(&mut d, midnight - 60, 90_000));
        assert!(
            !trade(&mut d, midnight - 30, 600),
            "same date, lower volume"
        );
        assert!(trade(&mut d, midnight + 1, 600), "the next date");
    }

    #[test]
    fn a_trade_is_known_by_its_date_and_day_volume_in_any_process() {
        let id = |d: &mut DhanDecoder, ltt, volume| {
            let (r, out) = decode(d, &quote(2885, 2450.05, 5, ltt, volume));
            r.unwrap();
            match &out[0] {
                Event::Tick(t) => t.trade_id,
                _ => None,
            }
        };
        let mut d = DhanDecoder::default();
        let a = id(&mut d, IST_10_30, 120_000).unwrap();
        let b = id(&mut d, IST_10_30, 120_005).unwrap();
        assert_eq!(a, TradeId::day_volume(20_240_101, 120_000));
        assert!(b.value > a.value, "a later trade of the same second");
        // The next trading date starts its volume again, its ids above.
        let c = id(&mut d, IST_10_30 + 86_400, 40).unwrap();
        assert_eq!(c, TradeId::day_volume(20_240_102, 40));
        assert!(c.value > b.value);
        // A new decoder (a new process) gives a resent packet the same id.
        let mut fresh = DhanDecoder::default();
        assert_eq!(id(&mut fresh, IST_10_30, 120_005), Some(b));
    }

    #[test]
    fn full_packets_and_several_packets_in_one_message() {
        let mut d = DhanDecoder::default();
        let mut msg = full(35001, 21700.5, 75, 1_704_100_500, 10_000);
        msg.extend(full(35001, 21701.0, 50, 1_704_100_501, 10_050));
        d.name(2, 35001, "NIFTY24JANFUT");
        let (r, out) = decode(&mut d, &msg);
        r.unwrap();
        // Each full packet: its tick, then its depth snapshot.
        assert_eq!(out.len(), 4, "{out:?}");
        let Event::Tick(t) = &out[2] else { panic!() };
        assert_eq!(
            (t.price, t.qty, t.instrument.segment.as_deref()),
            (dec(21701.0), dec(50.0), Some("NSE_FNO"))
        );
        assert_eq!(&*t.instrument.symbol, "NIFTY24JANFUT");
        assert_eq!(t.instrument.security_id.as_deref(), Some("35001"));
        assert_eq!((t.bid, t.ask), (Some(dec(21700.95)), Some(dec(21701.05))));
        let Event::Depth(depth) = &out[3] else {
            panic!("{:?}", out[3])
        };
        assert_eq!(&*depth.instrument.symbol, "NIFTY24JANFUT");
        assert_eq!(depth.levels.len(), 5);
        let l5 = depth.levels[4];
        assert_eq!(
            (l5.bid_qty, l5.ask_qty, l5.bid_orders, l5.ask_orders),
            (dec(104.0), dec(204.0), 3, 4)
        );
        assert_eq!((l5.bid_price, l5.ask_price), (dec(21700.75), dec(21701.25)));
        // IST wall clock read as UTC: 05:30 earlier.
        assert_eq!(t.exchange_ts_ns, (1_704_100_501 - 19_800) * 1_000_000_000);
    }

    #[test]
    fn ticker_status_and_disconnect() {
        let mut d = DhanDecoder::default();
        let mut ticker = header(2, 16, 1, 3045);
        ticker.extend(612.35f32.to_le_bytes());
        ticker.extend(1_704_080_701u32.to_le_bytes());
        let (r, out) = decode(&mut d, &ticker);
        r.unwrap();
        let [Event::Tick(t)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((t.price, t.qty), (dec(612.35), dec(0.0)));
        let (_, again) = decode(&mut d, &ticker);
        assert!(
            matches!(again[0], Event::Skipped { .. }),
            "unchanged ticker"
        );
        let mut disconnect = header(50, 10, 0, 0);
        disconnect.extend(805u16.to_le_bytes());
        for packet in [header(7, 8, 1, 0), disconnect] {
            let (r, out) = decode(&mut d, &packet);
            r.unwrap();
            assert!(matches!(out[0], Event::Skipped { .. }));
        }
    }

    #[test]
    fn malformed_packets_are_rejected_whole() {
        let mut d = DhanDecoder::default();
        let q = quote(1, 1.0, 1, 1_704_080_700, 1);
        for (bytes, kind) in [
            (&q[..20], "bad_length"),
            (&[1u8, 2, 3][..], "bad_length"),
            (&[99u8, 8, 0, 1, 0, 0, 0, 0][..], "unknown_message"),
        ] {
            let (r, out) = decode(&mut d, bytes);
            assert_eq!(r.unwrap_err().error_type, kind);
            assert!(out.is_empty());
        }
        // A good packet followed by a cut one: nothing of the message is kept.
        let mut msg = quote(7, 10.0, 1, 1_704_080_700, 5);
        msg.extend(&q[..30]);
        let (r, out) = decode(&mut d, &msg);
        assert!(r.is_err() && out.is_empty());
        // The good packet's state was not taken: sent again whole, it is a trade.
        let (r, out) = decode(&mut d, &quote(7, 10.0, 1, 1_704_080_700, 5));
        r.unwrap();
        assert!(matches!(out[0], Event::Tick(_)), "{out:?}");
        let mut bad_segment = quote(8, 10.0, 1, 1_704_080_700, 5);
        bad_segment[3] = 6;
        assert_eq!(
            decode(&mut d, &bad_segment).0.unwrap_err().error_type,
            "bad_value"
        );
    }
}
