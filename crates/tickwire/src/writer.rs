//! The writer stage: a task writing what the state stage hands on, with
//! the heartbeat beside it.

use std::sync::Arc;

use tickwire_core::{Config, Event};
use tickwire_writer::{RedisPools, WriterFailure, WriterStats};
use tokio::sync::mpsc;

use crate::supervisor::Supervisor;

/// The writer's task with the heartbeat beside it.
pub(crate) struct WriterTask {
    task: tokio::task::JoinHandle<Result<WriterStats, WriterFailure>>,
    heartbeat: Option<tickwire_writer::heartbeat::Heartbeat>,
}

impl WriterTask {
    /// Writes what `rx` brings; `tick_latency` for live runs and paced
    /// replays. A writer that fails (it gave up on Redis, or panicked)
    /// stops the run through `supervisor`.
    pub(crate) fn start(
        config: &Config,
        pools: &Arc<RedisPools>,
        rx: mpsc::Receiver<Vec<Event>>,
        tick_latency: bool,
        supervisor: &Supervisor,
    ) -> WriterTask {
        let progress = Arc::new(tickwire_writer::WriterProgress::default());
        let heartbeat = crate::ops::start_heartbeat(config, pools, &progress);
        let config = config.clone();
        let pools = Arc::clone(pools);
        let opts = tickwire_writer::WriterOptions {
            progress,
            tick_latency,
        };
        let failed = supervisor.on_failure("writer");
        let task = tokio::spawn(async move {
            let written = tickwire_writer::run_with(&config, pools, rx, opts).await;
            if written.is_ok() {
                failed.disarm();
            }
            written
        });
        WriterTask { task, heartbeat }
    }

    /// Whether the writer has stopped on its own (it gave up, or failed).
    pub(crate) fn stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the writer (its input closed), then beats a last time.
    pub(crate) async fn finish(
        self,
    ) -> Result<Result<WriterStats, WriterFailure>, tokio::task::JoinError> {
        let written = self.task.await;
        if let Some(h) = self.heartbeat {
            h.stop().await;
        }
        written
    }

    /// [`WriterTask::finish`], but a writer that failed gets no last beat:
    /// its heartbeat stops the moment it is seen to have failed, and expires.
    pub(crate) async fn finish_or_abort(
        mut self,
    ) -> Result<Result<WriterStats, WriterFailure>, tokio::task::JoinError> {
        let heartbeat = self.heartbeat.take();
        let written = self.task.await;
        if let Some(h) = heartbeat {
            match &written {
                Ok(Ok(_)) => h.stop().await,
                _ => h.abort().await,
            }
        }
        written
    }

    /// Stops the heartbeat now, without a last beat (a stage failed: the
    /// run is no longer healthy, whatever it still drains).
    pub(crate) async fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort().await;
        }
    }
}
