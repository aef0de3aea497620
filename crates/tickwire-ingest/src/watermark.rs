//! How far a live run has applied what its feeds received: the receive
//! time before which every frame read from a socket has been taken by the
//! parser (and, on the parser thread, applied by the state stage). The bar
//! timer closes nothing past it, so a minute whose trades still wait in a
//! feed's backlog, its disk spool or the parser's channel (Redis stalled,
//! the pipeline behind) is not closed before they are in it: the live bars
//! are those a replay of the recording builds.
//!
//! Each feed counts the frames it accepted (read from its socket and kept,
//! or handed on from a spool an earlier process left) and says whether its
//! spool holds frames; the parser counts the frames it took per feed and
//! the receive time of the last. A feed with frames accepted and not taken,
//! or a spool not empty, holds the watermark at the receive time of its
//! last frame taken (its next one was received at or after it); a feed
//! with nothing waiting holds it nowhere, and with no feed waiting it is
//! the clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// One feed's side: what it accepted, whether its spool holds frames.
#[derive(Debug)]
pub struct FeedFlow {
    name: Arc<str>,
    accepted: AtomicU64,
    spool_waiting: AtomicBool,
}

impl FeedFlow {
    pub fn new(name: Arc<str>) -> Self {
        Self {
            name,
            accepted: AtomicU64::new(0),
            spool_waiting: AtomicBool::new(false),
        }
    }

    /// The feed's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// `n` frames join the pipeline: one being read from the socket (counted
    /// before its receive time is taken, so that a parser that does not see
    /// it yet reads the clock before it was received), or frames of a spool
    /// an earlier process left, before they are handed on.
    pub fn accept(&self, n: u64) {
        self.accepted.fetch_add(n, Ordering::SeqCst);
    }

    /// Accepted frames that will never reach the parser (dropped, or left
    /// in a spool that cannot be read).
    pub fn lost(&self, n: u64) {
        self.accepted.fetch_sub(n, Ordering::SeqCst);
    }

    /// Whether the feed's spool holds frames (also a previous process's).
    pub fn set_spool_waiting(&self, waiting: bool) {
        self.spool_waiting.store(waiting, Ordering::SeqCst);
    }
}

/// Every feed's flow, shared by the feed tasks and the parser.
#[derive(Debug, Default)]
pub struct Flows(pub Vec<Arc<FeedFlow>>);

/// The parser's side: per feed (in [`Flows`] order), frames taken and the
/// receive time of the last.
#[derive(Debug)]
pub struct Taken {
    flows: Arc<Flows>,
    taken: Vec<(u64, Option<i64>)>,
}

impl Taken {
    pub fn new(flows: Arc<Flows>) -> Self {
        let taken = vec![(0, None); flows.0.len()];
        Self { flows, taken }
    }

    /// The parser took a frame of `feed` received at `recv_ns`.
    pub fn took(&mut self, feed: &Arc<str>, recv_ns: i64) {
        let at = self
            .flows
            .0
            .iter()
            .position(|f| Arc::ptr_eq(&f.name, feed))
            .or_else(|| self.flows.0.iter().position(|f| f.name == *feed));
        if let Some(t) = at.and_then(|i| self.taken.get_mut(i)) {
            t.0 += 1;
            t.1 = Some(recv_ns);
        }
    }

    /// The receive time (epoch ns) before which every frame the feeds read
    /// has been taken, `now_ns` being the clock read before this call.
    /// `i64::MIN` while a feed has frames waiting and none taken yet.
    pub fn watermark(&self, now_ns: i64) -> i64 {
        let mut mark = now_ns;
        for (flow, (taken, last)) in self.flows.0.iter().zip(&self.taken) {
            let waiting = flow.spool_waiting.load(Ordering::SeqCst)
                || flow.accepted.load(Ordering::SeqCst) > *taken;
            if waiting {
                mark = mark.min(last.unwrap_or(i64::MIN));
            }
        }
        mark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_with_frames_waiting_holds_the_mark_at_its_last_frame_taken() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let fa = Arc::new(FeedFlow::new(Arc::clone(&a)));
        let fb = Arc::new(FeedFlow::new(Arc::clone(&b)));
        let mut t = Taken::new(Arc::new(Flows(vec![Arc::clone(&fa), Arc::clone(&fb)])));
        assert_eq!(t.watermark(1_000), 1_000, "nothing read: the clock");
        fa.accept(1);
        fa.accept(1);
        assert_eq!(t.watermark(1_000), i64::MIN, "waiting, none taken");
        t.took(&a, 100);
        assert_eq!(t.watermark(1_000), 100);
        // Another handle of the same name counts too.
        t.took(&"a".into(), 200);
        assert_eq!(t.watermark(1_000), 1_000, "all taken: the clock");
        // A dropped frame never comes: it holds nothing.
        fb.accept(1);
        fb.lost(1);
        assert_eq!(t.watermark(1_000), 1_000);
        // A spool an earlier process left holds the mark from the start.
        fb.set_spool_waiting(true);
        assert_eq!(t.watermark(1_000), i64::MIN);
        fb.accept(1);
        fb.set_spool_waiting(false);
        t.took(&b, 50);
        assert_eq!(t.watermark(1_000), 1_000);
    }
}
