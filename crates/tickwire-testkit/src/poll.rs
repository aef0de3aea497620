//! Waiting for a condition instead of sleeping a guessed time: poll it until
//! it holds, with a deadline generous enough for a loaded machine, and fail
//! the test naming what never happened.

use std::future::Future;
use std::time::Duration;

/// How often a condition is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `check` every [`POLL_EVERY`] until it holds: `true`, or `false` once
/// `within` passed without it. On tokio's clock, so paused time advances it.
pub async fn poll_until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`poll_until`], failing the test when `within` passes: `what` says what
/// was waited for.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        poll_until(within, check).await,
        "timed out after {within:?} waiting for: {what}"
    );
}

/// [`wait_until`] for a test without a runtime: `check` blocks, the thread
/// sleeps between polls.
pub fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(POLL_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    // The waits below run on paused time: the deadlines are minutes long,
    // yet the tests take no time, and the polls are counted exactly.

    #[tokio::test(start_paused = true)]
    async fn holds_as_soon_as_the_condition_does() {
        let polls = AtomicU32::new(0);
        let t0 = tokio::time::Instant::now();
        wait_until(Duration::from_secs(600), "the fifth poll", || async {
            polls.fetch_add(1, Ordering::Relaxed) == 4
        })
        .await;
        assert_eq!(polls.load(Ordering::Relaxed), 5);
        assert_eq!(t0.elapsed(), 4 * POLL_EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        let t0 = tokio::time::Instant::now();
        assert!(!poll_until(Duration::from_secs(300), || async { false }).await);
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(300) && waited < Duration::from_secs(300) + POLL_EVERY,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting for: nothing")]
    async fn a_timeout_fails_the_test_naming_what_was_awaited() {
        wait_until(Duration::from_secs(60), "nothing", || async { false }).await;
    }

    #[test]
    fn blocking_waits_poll_too() {
        let mut n = 0;
        wait_for(Duration::from_secs(60), "the third poll", || {
            n += 1;
            n == 3
        });
        assert_eq!(n, 3);
    }
}
