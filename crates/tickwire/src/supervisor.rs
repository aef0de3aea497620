//! How a run stops: one cancellation token per run, cancelled by the first
//! Ctrl-C/SIGTERM or by the first stage that fails; every stage ends on it
//! (sources stop reading, the rest drain as their input closes). A second
//! signal abandons the drain.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// Ctrl-C and SIGTERM, heard for as long as this lives: the first cancels
/// [`Signals::stop`] (stop reading, drain, flush), the second
/// [`Signals::abandoned`] (the drain is given up).
pub struct Signals {
    stop: CancellationToken,
    abandon: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Signals {
    /// Starts listening (inside a Tokio runtime).
    pub fn listen() -> Signals {
        let stop = CancellationToken::new();
        let abandon = CancellationToken::new();
        let task = tokio::spawn(listen(stop.clone(), abandon.clone()));
        Signals {
            stop,
            abandon,
            task,
        }
    }

    /// Cancelled by the first signal.
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `work` to its end, unless a second signal abandons it first
    /// (None: `work` is dropped where it stood, its tasks and threads left
    /// for the process's exit).
    pub async fn unless_abandoned<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::select! {
            out = work => Some(out),
            () = self.abandon.cancelled() => None,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const STOPPING: &str = "tickwire: stopping: draining and flushing what was read (again to abandon)";

const ABANDONED: &str = "tickwire: second signal: the drain is abandoned; what was read and not \
     yet written to Redis is not in it (replay the input again: nothing is applied twice)";

async fn listen(stop: CancellationToken, abandon: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        for token in [&stop, &abandon] {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("{}", if token == &stop { STOPPING } else { ABANDONED });
            token.cancel();
        }
    }
    #[cfg(not(unix))]
    {
        for token in [&stop, &abandon] {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("{}", if token == &stop { STOPPING } else { ABANDONED });
            token.cancel();
        }
    }
}

/// One run's stop: the token every stage ends on, and which stage failed
/// first. A failure cancels the token only for this run (a child of the
/// signal's token).
#[derive(Clone)]
pub struct Supervisor {
    token: CancellationToken,
    failed: Arc<OnceLock<&'static str>>,
}

impl Supervisor {
    /// A run stopped by `stop` (the signal) or by its first failure.
    pub fn new(stop: &CancellationToken) -> Supervisor {
        Supervisor {
            token: stop.child_token(),
            failed: Arc::default(),
        }
    }

    /// What the stages end on.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// `stage` failed: the run stops. The first stage to fail before the
    /// run was stopped is the one [`Supervisor::stopped`] names.
    pub fn fail(&self, stage: &'static str) {
        if !self.token.is_cancelled() {
            let _ = self.failed.set(stage);
        }
        self.token.cancel();
    }

    /// A guard that fails `stage` when dropped armed: a stage's task or
    /// thread that ends without disarming it (an error, a panic) fails.
    pub fn on_failure(&self, stage: &'static str) -> FailOnDrop {
        FailOnDrop {
            supervisor: Some(self.clone()),
            stage,
        }
    }

    /// Waits until the run is stopped: the stage that failed, or None when
    /// a signal stopped it.
    pub async fn stopped(&self) -> Option<&'static str> {
        self.token.cancelled().await;
        self.failed.get().copied()
    }
}

/// See [`Supervisor::on_failure`].
pub struct FailOnDrop {
    supervisor: Option<Supervisor>,
    stage: &'static str,
}

impl FailOnDrop {
    /// The stage ended well.
    pub fn disarm(mut self) {
        self.supervisor = None;
    }
}

impl Drop for FailOnDrop {
    fn drop(&mut self) {
        if let Some(s) = self.supervisor.take() {
            s.fail(self.stage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_stops_the_run_and_is_named() {
        let signal = CancellationToken::new();
        let sup = Supervisor::new(&signal);
        let guard = sup.on_failure("writer");
        sup.fail("state stage");
        drop(guard);
        assert_eq!(sup.stopped().await, Some("state stage"));
        assert!(
            !signal.is_cancelled(),
            "a failure stops the run, not the signal"
        );
    }

    #[tokio::test]
    async fn a_signal_stops_the_run_with_no_stage_named() {
        let signal = CancellationToken::new();
        let sup = Supervisor::new(&signal);
        signal.cancel();
        sup.fail("writer");
        sup.on_failure("parser").disarm();
        assert_eq!(sup.stopped().await, None);
    }
}
