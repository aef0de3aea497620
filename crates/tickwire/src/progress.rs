//! Replay progress on standard error: a bar (files, bytes, ticks/s, ETA) when
//! it is a terminal, a plain line every interval when it is not (logs, CI).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_ingest::IngestProgress;
use tokio_util::sync::CancellationToken;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Off,
    Bar,
    /// A line every this long.
    Lines(Duration),
}

impl ProgressMode {
    /// A bar on a terminal, else lines every `interval_ms` (0: none).
    pub fn for_stderr(interval_ms: u64) -> ProgressMode {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else if interval_ms > 0 {
            ProgressMode::Lines(Duration::from_millis(interval_ms))
        } else {
            ProgressMode::Off
        }
    }
}

/// A running progress display; [`Shown::finish`] clears the bar.
pub struct Shown {
    task: Option<tokio::task::JoinHandle<()>>,
    /// Cancelled when the run is done; the display wakes at once (it never
    /// sleeps out its interval before the summary can print).
    done: CancellationToken,
}

struct Snapshot {
    files: (u64, u64),
    bytes: (u64, u64),
    ticks: u64,
    rate: f64,
    eta: Option<Duration>,
}

fn snapshot(p: &IngestProgress, started: Instant) -> Snapshot {
    let bytes = (
        p.disk_bytes_read.load(Ordering::Relaxed),
        p.disk_bytes_total.load(Ordering::Relaxed),
    );
    let ticks = p.ticks.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let eta = (bytes.0 > 0 && bytes.1 >= bytes.0)
        .then(|| Duration::from_secs_f64(secs * (bytes.1 - bytes.0) as f64 / bytes.0 as f64));
    Snapshot {
        files: (
            p.files_done.load(Ordering::Relaxed),
            p.files_total.load(Ordering::Relaxed),
        ),
        bytes,
        ticks,
        rate: ticks as f64 / secs,
        eta,
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / 1_000_000.0
}

/// Starts showing `progress` as `mode` says.
pub fn show(mode: ProgressMode, progress: Arc<IngestProgress>) -> Shown {
    let done = CancellationToken::new();
    let finished = done.clone();
    let started = Instant::now();
    let task = match mode {
        ProgressMode::Off => None,
        ProgressMode::Lines(every) => Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = finished.cancelled() => return,
                }
                let s = snapshot(&progress, started);
                let eta = s.eta.map_or("?".into(), |d| format!("{} s", d.as_secs()));
                eprintln!(
                    "replay: files {}/{}, {:.1} of {:.1} MB, {} ticks, {:.0} ticks/s, ETA {eta}",
                    s.files.0,
                    s.files.1,
                    mb(s.bytes.0),
                    mb(s.bytes.1),
                    s.ticks,
                    s.rate
                );
            }
        })),
        ProgressMode::Bar => {
            let bar =
                indicatif::ProgressBar::new(progress.disk_bytes_total.load(Ordering::Relaxed));
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
            ) {
                bar.set_style(style);
            }
            Some(tokio::spawn(async move {
                while !finished.is_cancelled() {
                    let s = snapshot(&progress, started);
                    bar.set_length(s.bytes.1);
                    bar.set_position(s.bytes.0);
                    bar.set_message(format!(
                        "files {}/{}, {} ticks, {:.0} ticks/s",
                        s.files.0, s.files.1, s.ticks, s.rate
                    ));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = finished.cancelled() => {}
                    }
                }
                bar.finish_and_clear();
            }))
        }
    };
    Shown { task, done }
}

impl Shown {
    /// Stops the display (the bar is cleared before the summary prints).
    pub async fn finish(mut self) {
        self.done.cancel();
        if let Some(t) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(1), t).await {
                Ok(_) => {}
                Err(_) => tracing::debug!("progress display did not stop in time"),
            }
        }
    }
}

impl Drop for Shown {
    /// A display nobody finished (the run ended another way) stops too.
    fn drop(&mut self) {
        self.done.cancel();
    }
}
