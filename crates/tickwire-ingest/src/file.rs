//! Replaying tick files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tickwire_core::Event;
use tickwire_parse::{detect, DetectError, Format, LineDecoder, SourceMeta};
use tokio::sync::mpsc;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the pipeline takes it (`--max`).
    Max,
    /// At the recorded pace times this factor (`--speed X`).
    Speed(f64),
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub files: Vec<PathBuf>,
    /// The configured feeds: the venue and Dhan symbols of feeds named in a
    /// recording (so a replay decodes exactly as the live run did).
    pub feeds: Vec<tickwire_core::FeedConfig>,
    /// Forces a format instead of detecting it per file (`--format`).
    pub format: Option<Format>,
    /// The symbol of Binance trade dumps whose file name does not say (`--symbol`).
    pub symbol: Option<String>,
    pub pace: Pace,
    /// Raw bytes kept with a rejected line.
    pub max_raw: usize,
    /// Events per chunk sent to the writer.
    pub chunk_events: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("--speed must be a positive number (got {0})")]
    BadSpeed(f64),
    #[error("the writer stopped before the input ended")]
    WriterGone,
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// Live counters, readable while the replay runs (progress display).
#[derive(Debug, Default)]
pub struct IngestProgress {
    pub files_total: AtomicU64,
    /// Bytes of the input files on disk (compressed as they are).
    pub disk_bytes_total: AtomicU64,
    /// Of those, read so far.
    pub disk_bytes_read: Arc<AtomicU64>,
    pub files_done: AtomicU64,
    /// Bytes of (decompressed) lines read.
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
    pub ticks: AtomicU64,
    pub quotes: AtomicU64,
    pub rejected: AtomicU64,
    pub skipped: AtomicU64,
    /// Compressed files that ended early (a recording cut by a crash).
    pub truncated: AtomicU64,
}

/// What a finished replay read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub ticks: u64,
    pub quotes: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Compressed files that ended early (replayed up to where they break).
    pub truncated: u64,
    /// True when a stop was requested before the input ended.
    pub stopped_early: bool,
}

/// A running replay: its threads and counters.
pub struct ReplayHandle {
    reader: thread::JoinHandle<Result<(), IngestError>>,
    parser: thread::JoinHandle<Result<(), IngestError>>,
    progress: Arc<IngestProgress>,
    stop: Arc<AtomicBool>,
}

impl ReplayHandle {
    pub fn progress(&self) -> Arc<IngestProgress> {
        Arc::clone(&self.progress)
    }

    /// Waits for both threads (call from a blocking context or `spawn_blocking`).
    pub fn join(self) -> Result<IngestSummary, IngestError> {
        let reader = self
            .reader
            .join()
            .map_err(|_| IngestError::Panicked("reader"))?;
        let parser = self
            .parser
            .join()
            .map_err(|_| IngestError::Panicked("parser"))?;
        // The parser's error (writer gone) explains a reader stop; report it first.
        parser?;
        reader?;
        let p = &self.progress;
        Ok(IngestSummary {
            files: p.files_done.load(Ordering::Relaxed),
            bytes: p.bytes.load(Ordering::Relaxed),
            lines: p.lines.load(Ordering::Relaxed),
            ticks: p.ticks.load(Ordering::Relaxed),
            quotes: p.quotes.load(Ordering::Relaxed),
            rejected: p.rejected.load(Ordering::Relaxed),
            skipped: p.skipped.load(Ordering::Relaxed),
            truncated: p.truncated.load(Ordering::Relaxed),
            stopped_early: self.stop.load(Ordering::Relaxed),
        })
    }
}

/// One opened input, its format told and its first line already read.
struct OpenFile {
    path: PathBuf,
    meta: Arc<SourceMeta>,
    reader: Box<dyn BufRead + Send>,
    first_line: Vec<u8>,
    compressed: bool,
}

/// A block of whole lines from one file.
struct Chunk {
    meta: Arc<SourceMeta>,
    lines: Vec<u8>,
    last_of_file: bool,
}

const CHUNK_BYTES: usize = 64 * 1024;

/// Opens every file (so a missing or unreadable one fails before anything is
/// written), tells each one's format, then starts the reader and parser threads.
/// Setting `stop` makes the reader stop; what was read is still parsed and sent.
pub fn start_replay(
    opts: ReplayOptions,
    tx: mpsc::Sender<Vec<Event>>,
    stop: Arc<AtomicBool>,
) -> Result<ReplayHandle, IngestError> {
    if let Pace::Speed(x) = opts.pace {
        if !(x.is_finite() && x > 0.0) {
            return Err(IngestError::BadSpeed(x));
        }
    }
    let progress = Arc::new(IngestProgress::default());
    let mut files = Vec::with_capacity(opts.files.len());
    for path in &opts.files {
        files.push(open(path, opts.format, opts.symbol.as_deref(), &progress)?);
    }
    progress
        .files_total
        .store(files.len() as u64, Ordering::Relaxed);
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<Chunk>(8);

    let reader = {
        let stop = Arc::clone(&stop);
        let progress = Arc::clone(&progress);
        thread::Builder::new()
            .name("tickwire-reader".into())
            .spawn(move || read_files(files, chunk_tx, &stop, &progress))
            .map_err(|e| IngestError::Read {
                path: PathBuf::from("<thread>"),
                source: e,
            })?
    };
    let parser = {
        let stop = Arc::clone(&stop);
        let progress = Arc::clone(&progress);
        thread::Builder::new()
            .name("tickwire-parser".into())
            .spawn(move || parse_chunks(chunk_rx, tx, &opts, &stop, &progress))
            .map_err(|e| IngestError::Read {
                path: PathBuf::from("<thread>"),
                source: e,
            })?
    };
    Ok(ReplayHandle {
        reader,
        parser,
        progress,
        stop,
    })
}

/// Counts the bytes read from disk (for progress and ETA).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(
    path: &Path,
    forced: Option<Format>,
    symbol: Option<&str>,
    progress: &IngestProgress,
) -> Result<OpenFile, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if let Ok(m) = file.metadata() {
        progress
            .disk_bytes_total
            .fetch_add(m.len(), Ordering::Relaxed);
    }
    let file = Counting {
        inner: file,
        read: Arc::clone(&progress.disk_bytes_read),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let compressed = name.ends_with(".zst");
    let raw: Box<dyn Read + Send> = if compressed {
        Box::new(
            zstd::Decoder::new(file).map_err(|source| IngestError::Open {
                path: path.to_path_buf(),
                source,
            })?,
        )
    } else {
        Box::new(file)
    };
    let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(256 * 1024, raw));
    let mut first_line = Vec::new();
    reader
        .read_until(b'\n', &mut first_line)
        .map_err(|source| IngestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let base = name.strip_suffix(".zst").unwrap_or(name);
    let meta = if first_line.is_empty() {
        // An empty file replays as nothing, whatever its format.
        SourceMeta {
            format: forced.unwrap_or(Format::TicksJson),
            symbol: None,
            exchange: String::new(),
        }
    } else {
        detect(base, &first_line, forced, symbol).map_err(|e| match e {
            DetectError::Unknown { .. } => DetectError::Unknown {
                file: path.display().to_string(),
            },
            DetectError::NoSymbol { .. } => DetectError::NoSymbol {
                file: path.display().to_string(),
            },
        })?
    };
    Ok(OpenFile {
        path: path.to_path_buf(),
        meta: Arc::new(meta),
        reader,
        first_line,
        compressed,
    })
}

fn read_files(
    files: Vec<OpenFile>,
    out: crossbeam_channel::Sender<Chunk>,
    stop: &AtomicBool,
    progress: &IngestProgress,
) -> Result<(), IngestError> {
    for mut f in files {
        let mut lines = std::mem::take(&mut f.first_line);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let n = match f.reader.read_until(b'\n', &mut lines) {
                Ok(n) => n,
                // A recording cut short (the recorder's process died mid-frame):
                // everything before the last complete zstd frame is kept.
                Err(e) if f.compressed => {
                    tracing::warn!(file = %f.path.display(), error = %e, "compressed file ends early; replaying what it holds");
                    progress.truncated.fetch_add(1, Ordering::Relaxed);
                    0
                }
                Err(source) => {
                    return Err(IngestError::Read {
                        path: f.path.clone(),
                        source,
                    })
                }
            };
            let eof = n == 0;
            if lines.len() >= CHUNK_BYTES || eof {
                progress
                    .bytes
                    .fetch_add(lines.len() as u64, Ordering::Relaxed);
                let chunk = Chunk {
                    meta: Arc::clone(&f.meta),
                    lines: std::mem::replace(&mut lines, Vec::with_capacity(CHUNK_BYTES + 1024)),
                    last_of_file: eof,
                };
                if out.send(chunk).is_err() {
                    // The parser is gone; it reports why.
                    return Ok(());
                }
            }
            if eof {
                break;
            }
        }
    }
    Ok(())
}

/// Paces events to their recorded times (scaled), if asked to.
struct Pacer {
    speed: Option<f64>,
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    /// How long to wait before the event at `ts_ns` is due.
    fn wait_for(&mut self, ts_ns: i64) -> Option<Duration> {
        let speed = self.speed?;
        let (t0, start) = *self.origin.get_or_insert((ts_ns, Instant::now()));
        let offset_ns = (ts_ns - t0).max(0) as f64 / speed;
        let due = start + Duration::from_nanos(offset_ns as u64);
        let now = Instant::now();
        (due > now + Duration::from_millis(1)).then(|| due - now)
    }
}

fn event_time(meta: &SourceMeta, e: &Event) -> Option<i64> {
    match e {
        // Recordings are paced by when frames arrived, files by exchange time.
        Event::Tick(t) if meta.format == Format::Frames => Some(t.recv_ts_ns),
        Event::Tick(t) => Some(t.exchange_ts_ns),
        Event::Rejected(r) => r.recv_ts_ns,
        // Skips carry no time; the state stage's events come after this stage.
        _ => None,
    }
}

fn parse_chunks(
    input: crossbeam_channel::Receiver<Chunk>,
    tx: mpsc::Sender<Vec<Event>>,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: &IngestProgress,
) -> Result<(), IngestError> {
    let mut decoder = LineDecoder::with_feeds(opts.max_raw, &opts.feeds);
    let mut metrics = crate::telemetry::EventMetrics::default();
    let chunk_events = opts.chunk_events.max(1);
    let mut out: Vec<Event> = Vec::with_capacity(chunk_events);
    let mut pacer = Pacer {
        speed: match opts.pace {
            Pace::Max => None,
            Pace::Speed(x) => Some(x),
        },
        origin: None,
    };
    let send = |batch: Vec<Event>| -> Result<(), IngestError> {
        let (mut t, mut q, mut r, mut s) = (0, 0, 0, 0);
        for e in &batch {
            match e {
                Event::Tick(_) => t += 1,
                Event::Quote(_) => q += 1,
                Event::Rejected(_) => r += 1,
                Event::Skipped { .. } => s += 1,
                // The state stage's events come after this stage.
                _ => {}
            }
        }
        progress.ticks.fetch_add(t, Ordering::Relaxed);
        progress.quotes.fetch_add(q, Ordering::Relaxed);
        progress.rejected.fetch_add(r, Ordering::Relaxed);
        progress.skipped.fetch_add(s, Ordering::Relaxed);
        tx.blocking_send(batch).map_err(|_| IngestError::WriterGone)
    };
    for chunk in input {
        let mut lines = 0u64;

        for line in chunk.lines.split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            lines += 1;
            let first_new = out.len();
            decoder.decode(&chunk.meta, line, &mut out);
            let n_new = out.len() - first_new;
            if pacer.speed.is_some() && !stop.load(Ordering::Relaxed) {
                let due = out[first_new..]
                    .iter()
                    .find_map(|e| event_time(&chunk.meta, e));
                if let Some(wait) = due.and_then(|ts| pacer.wait_for(ts)) {
                    // Hand over what is due now, then wait in slices so a stop
                    // request ends the wait at once.
                    let held: Vec<Event> = out.drain(..first_new).collect();
                    if !held.is_empty() {
                        send(held)?;
                    }
                    // The metrics say what was read before this wait, not
                    // the line that waits for its time.
                    metrics.flush(chunk.meta.format.default_feed());
                    let until = Instant::now() + wait;
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        thread::sleep((until - now).min(Duration::from_millis(50)));
                    }
                }
            }
            metrics.tally(&out[out.len() - n_new..]);
            if out.len() >= chunk_events {
                send(std::mem::replace(
                    &mut out,
                    Vec::with_capacity(chunk_events),
                ))?;
            }
        }
        progress.lines.fetch_add(lines, Ordering::Relaxed);
        metrics.flush(chunk.meta.format.default_feed());
        if chunk.last_of_file {
            progress.files_done.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !out.is_empty() {
        send(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts(files: Vec<PathBuf>, pace: Pace) -> ReplayOptions {
        ReplayOptions {
            files,
            feeds: Vec::new(),
            format: None,
            symbol: None,
            pace,
            max_raw: 256,
            chunk_events: 3,
        }
    }

    fn tick_line(ms: i64) -> String {
        format!("{{\"exchange\":\"NSE\",\"symbol\":\"A\",\"ts\":{ms},\"ltp\":10.5,\"qty\":1}}\n")
    }

    fn collect(o: ReplayOptions) -> (Result<IngestSummary, IngestError>, Vec<Event>) {
        let (tx, mut rx) = mpsc::channel(4);
        let stop = Arc::new(AtomicBool::new(false));
        let h = match start_replay(o, tx, stop) {
            Ok(h) => h,
            Err(e) => return (Err(e), vec![]),
        };
        let mut events = Vec::new();
        while let Some(batch) = rx.blocking_recv() {
            events.extend(batch);
        }
        (h.join(), events)
    }

    #[test]
    fn plain_and_zstd_files_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        let body: String = (0..10).map(|i| tick_line(1_704_168_900_000 + i)).collect();
        std::fs::write(&plain, &body).unwrap();
        let zst = dir.path().join("b.jsonl.zst");
        let mut enc = zstd::Encoder::new(File::create(&zst).unwrap(), 3).unwrap();
        enc.write_all(body.as_bytes()).unwrap();
        enc.write_all(b"{broken\n").unwrap();
        enc.finish().unwrap();
        let (summary, events) = collect(opts(vec![plain, zst], Pace::Max));
        let s = summary.unwrap();
        assert_eq!((s.files, s.lines, s.ticks, s.rejected), (2, 21, 20, 1));
        assert_eq!(events.len(), 21);
        assert!(matches!(events[20], Event::Rejected(_)));
    }

    #[test]
    fn a_recording_cut_mid_frame_replays_up_to_its_last_whole_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.jsonl.zst");
        let mut bytes = Vec::new();
        // Two complete zstd frames (two recorder flushes), then a third cut short.
        for part in [0..5, 5..10, 10..20] {
            let body: String = part.map(|i| tick_line(1_704_168_900_000 + i)).collect();
            bytes.extend(zstd::encode_all(body.as_bytes(), 3).unwrap());
        }
        bytes.truncate(bytes.len() - 20);
        std::fs::write(&path, bytes).unwrap();
        let (summary, events) = collect(opts(vec![path], Pace::Max));
        let s = summary.unwrap();
        assert_eq!(s.truncated, 1);
        assert!(s.ticks >= 10, "{s:?}");
        assert!(events[..10].iter().all(|e| matches!(e, Event::Tick(_))));
    }

    #[test]
    fn missing_file_is_an_error_before_anything_runs() {
        let (r, events) = collect(opts(
            vec![PathBuf::from("/nonexistent/ticks.jsonl")],
            Pace::Max,
        ));
        assert!(matches!(r, Err(IngestError::Open { .. })), "{r:?}");
        assert!(events.is_empty());
    }

    #[test]
    fn bad_speed_is_rejected() {
        let (r, _) = collect(opts(vec![], Pace::Speed(0.0)));
        assert!(matches!(r, Err(IngestError::BadSpeed(_))));
    }

    #[test]
    fn pacer_scales_recorded_gaps() {
        let mut p = Pacer {
            speed: Some(10.0),
            origin: None,
        };
        assert_eq!(p.wait_for(0), None);
        // One recorded second at 10x is due ~100 ms after the first event.
        let w = p.wait_for(1_000_000_000).unwrap();
        assert!(
            w <= Duration::from_millis(100) && w > Duration::from_millis(50),
            "{w:?}"
        );
        let mut max = Pacer {
            speed: None,
            origin: None,
        };
        assert_eq!(max.wait_for(1_000_000_000), None);
    }
}
