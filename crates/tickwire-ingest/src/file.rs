//! Replaying tick files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tickwire_core::Event;
use tickwire_parse::{detect, DetectError, Format, LineDecoder, SourceMeta};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// `[ingest] max_clock_skew_ms`: trades stamped further ahead are dead-lettered.
    pub max_clock_skew_ms: u64,
    /// `--close-at-end`: close the bars still forming when the input ends.
    pub close_at_end: bool,
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
    #[error("{}: {message}", path.display())]
    Container { path: PathBuf, message: String },
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
    /// Items beyond the first of lines (or frames) that held several (an
    /// OKX push of three trades adds two): `lines + extra` is exactly
    /// `ticks + quotes + rejected + skipped`.
    pub extra: AtomicU64,
    /// Compressed files that ended early (a recording cut by a crash).
    pub truncated: AtomicU64,
    /// Files that held nothing (warned about, replayed as nothing).
    pub empty: AtomicU64,
    /// Trades of gaps from a venue's history (live): not items of the
    /// frames read, so outside the identity above.
    pub history_trades: AtomicU64,
    /// History pages that could not be read (dead-lettered).
    pub history_rejected: AtomicU64,
}

impl IngestProgress {
    /// The counts so far, as a summary (`stopped_early`: the reading was
    /// stopped before the input ended).
    pub fn summary(&self, stopped_early: bool) -> IngestSummary {
        IngestSummary {
            files: self.files_done.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            lines: self.lines.load(Ordering::Relaxed),
            ticks: self.ticks.load(Ordering::Relaxed),
            quotes: self.quotes.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            extra: self.extra.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            empty: self.empty.load(Ordering::Relaxed),
            stopped_early,
        }
    }
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
    /// Items beyond the first of lines that held several (see
    /// [`IngestProgress::extra`]).
    pub extra: u64,
    /// Compressed files that ended early (replayed up to where they break).
    pub truncated: u64,
    /// Files that held nothing.
    pub empty: u64,
    /// True when a stop was requested before the input ended.
    pub stopped_early: bool,
}

/// A running replay: its threads and counters.
pub struct ReplayHandle {
    reader: thread::JoinHandle<Result<(), IngestError>>,
    parser: thread::JoinHandle<Result<(), IngestError>>,
    progress: Arc<IngestProgress>,
    stop: CancellationToken,
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
        Ok(self.progress.summary(self.stop.is_cancelled()))
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
/// Cancelling `stop` makes the reader stop (and a paced wait end at once);
/// what was read is still parsed and sent.
pub fn start_replay(
    opts: ReplayOptions,
    tx: mpsc::Sender<Vec<Event>>,
    stop: CancellationToken,
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

    let thread_error = |e| IngestError::Read {
        path: PathBuf::from("<thread>"),
        source: e,
    };
    // A paced replay's parser waits for each line's time on a timer of its
    // own, ended at once by `stop`.
    let pacer_clock = match opts.pace {
        Pace::Speed(_) => Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(thread_error)?,
        ),
        Pace::Max => None,
    };
    let reader = {
        let stop = stop.clone();
        let progress = Arc::clone(&progress);
        thread::Builder::new()
            .name("tickwire-reader".into())
            .spawn(move || read_files(files, chunk_tx, &stop, &progress))
            .map_err(thread_error)?
    };
    let parser = {
        let stop = Pacing {
            stop: stop.clone(),
            clock: pacer_clock,
        };
        let progress = Arc::clone(&progress);
        thread::Builder::new()
            .name("tickwire-parser".into())
            .spawn(move || parse_chunks(chunk_rx, tx, &opts, &stop, &progress))
            .map_err(thread_error)?
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

/// How a file's bytes are packed: told by its name, checked against (or,
/// for a plain name, taken from) its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Plain,
    Zstd,
    Gzip,
    Zip,
}

impl Container {
    fn name(self) -> &'static str {
        match self {
            Container::Plain => "plain",
            Container::Zstd => "zstd",
            Container::Gzip => "gzip",
            Container::Zip => "zip",
        }
    }

    /// The container a file name says, and the name without its suffix.
    fn by_name(name: &str) -> (Container, &str) {
        for (suffix, c) in [
            (".zst", Container::Zstd),
            (".gz", Container::Gzip),
            (".zip", Container::Zip),
        ] {
            let cut = name.len().checked_sub(suffix.len());
            if let Some(cut) = cut.filter(|&c| name.is_char_boundary(c)) {
                if name[cut..].eq_ignore_ascii_case(suffix) {
                    return (c, &name[..cut]);
                }
            }
        }
        (Container::Plain, name)
    }

    /// The container the first bytes of a file show (`None`: none known).
    fn by_magic(head: &[u8]) -> Option<Container> {
        match head {
            [0x28, 0xB5, 0x2F, 0xFD, ..] => Some(Container::Zstd),
            // A zstd skippable frame (magic 0x184D2A5?).
            [b, 0x2A, 0x4D, 0x18, ..] if b & 0xF0 == 0x50 => Some(Container::Zstd),
            [0x1F, 0x8B, ..] => Some(Container::Gzip),
            // A local file header, an empty archive's end record, a spanned archive.
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] | [b'P', b'K', 7, 8, ..] => {
                Some(Container::Zip)
            }
            _ => None,
        }
    }
}

/// What the first bytes of a file look like, for an error message.
fn looks_like(head: &[u8]) -> String {
    match Container::by_magic(head) {
        Some(c) => c.name().to_string(),
        None if std::str::from_utf8(head).is_ok_and(|t| {
            t.chars()
                .all(|c| !c.is_control() || c.is_ascii_whitespace())
        }) =>
        {
            "text".to_string()
        }
        None => {
            let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("neither: it starts with {}", hex.join(" "))
        }
    }
}

fn open(
    path: &Path,
    forced: Option<Format>,
    symbol: Option<&str>,
    progress: &IngestProgress,
) -> Result<OpenFile, IngestError> {
    let open_err = |source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    };
    let read_err = |source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let container_err = |message: String| IngestError::Container {
        path: path.to_path_buf(),
        message,
    };
    let mut file = File::open(path).map_err(open_err)?;
    let disk_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    progress
        .disk_bytes_total
        .fetch_add(disk_len, Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (named, base) = Container::by_name(name);
    let mut head = [0u8; 4];
    let head_len = read_head(&mut file, &mut head).map_err(read_err)?;
    let head = &head[..head_len];
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let container = if head.is_empty() {
        // An empty file replays as nothing, whatever its name says.
        Container::Plain
    } else {
        match (named, Container::by_magic(head)) {
            (Container::Plain, magic) => magic.unwrap_or(Container::Plain),
            (named, Some(magic)) if magic == named => named,
            (named, _) => {
                return Err(container_err(format!(
                    "not a {} file (looks like {})",
                    named.name(),
                    looks_like(head)
                )))
            }
        }
    };
    let counting = |file: File| Counting {
        inner: file,
        read: Arc::clone(&progress.disk_bytes_read),
    };
    // The name the format and a Binance dump's symbol are told from: the
    // file's without its compression suffix, or the zip entry's.
    let mut inner_name = base.to_string();
    let raw: Box<dyn Read + Send> = match container {
        Container::Plain => Box::new(counting(file)),
        Container::Zstd => Box::new(zstd::Decoder::new(counting(file)).map_err(open_err)?),
        Container::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counting(file))),
        Container::Zip => {
            let entry = zip_entry(file).map_err(container_err)?;
            // The directory read to find the entry counts as read.
            progress
                .disk_bytes_read
                .fetch_add(disk_len.saturating_sub(entry.len), Ordering::Relaxed);
            inner_name = entry.name.clone();
            let mut file = entry.file;
            file.seek(SeekFrom::Start(entry.start)).map_err(read_err)?;
            let data = counting(file).take(entry.len);
            let inflated: Box<dyn Read + Send> = if entry.deflated {
                Box::new(flate2::read::DeflateDecoder::new(data))
            } else {
                Box::new(data)
            };
            Box::new(CrcChecked {
                inner: flate2::CrcReader::new(inflated),
                expected: entry.crc32,
                entry: entry.name,
            })
        }
    };
    let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(256 * 1024, raw));
    let mut first_line = Vec::new();
    reader
        .read_until(b'\n', &mut first_line)
        .map_err(|e| match container {
            Container::Plain => read_err(e),
            c => container_err(format!("cannot read it as {}: {e}", c.name())),
        })?;
    let meta = if first_line.is_empty() {
        // An empty file replays as nothing, whatever its format.
        tracing::warn!(file = %path.display(), "file is empty; nothing to replay from it");
        progress.empty.fetch_add(1, Ordering::Relaxed);
        SourceMeta {
            format: forced.unwrap_or(Format::TicksJson),
            symbol: None,
            exchange: String::new(),
        }
    } else {
        detect(&inner_name, &first_line, forced, symbol).map_err(|e| match e {
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
        compressed: container != Container::Plain,
    })
}

/// Reads up to `head.len()` bytes from the start of a file.
fn read_head(file: &mut File, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The one file inside a zip: where its bytes are and how they are packed.
struct ZipEntry {
    file: File,
    /// The entry's file name (without any folder).
    name: String,
    start: u64,
    len: u64,
    deflated: bool,
    crc32: u32,
}

/// Finds the single file of a zip archive (Binance's dumps hold one CSV);
/// anything else is an error saying what the archive holds.
fn zip_entry(file: File) -> Result<ZipEntry, String> {
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip archive: {e}"))?;
    let files: Vec<usize> = (0..archive.len())
        .filter(|&i| archive.by_index_raw(i).is_ok_and(|f| !f.is_dir()))
        .collect();
    let [index] = files[..] else {
        let names: Vec<String> = files
            .iter()
            .filter_map(|&i| archive.by_index_raw(i).ok().map(|f| f.name().to_string()))
            .collect();
        return Err(if names.is_empty() {
            "the zip archive holds no file; expected exactly one (like BTCUSDT-trades-2024-01-01.csv)"
                .to_string()
        } else {
            format!(
                "the zip archive holds {} files ({}); expected exactly one: unpack it and replay the files",
                names.len(),
                names.join(", ")
            )
        });
    };
    let entry = archive
        .by_index_raw(index)
        .map_err(|e| format!("cannot read the zip entry: {e}"))?;
    let full_name = entry.name().to_string();
    let name = full_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(&full_name)
        .to_string();
    if entry.encrypted() {
        return Err(format!("zip entry {full_name} is encrypted"));
    }
    // Compared with the constants: without zip's compression features
    // deflate is `Unsupported(8)` to it, and flate2 inflates it here.
    let deflated = match entry.compression() {
        m if m == zip::CompressionMethod::DEFLATE => true,
        m if m == zip::CompressionMethod::STORE => false,
        other => {
            return Err(format!(
                "zip entry {full_name} is compressed with {other}; only deflate and stored entries are read"
            ))
        }
    };
    let (start, len, crc32) = (entry.data_start(), entry.compressed_size(), entry.crc32());
    drop(entry);
    Ok(ZipEntry {
        file: archive.into_inner(),
        name,
        start,
        len,
        deflated,
        crc32,
    })
}

/// A zip entry's bytes, checked against the archive's CRC-32 at their end.
struct CrcChecked<R> {
    inner: flate2::CrcReader<R>,
    expected: u32,
    entry: String,
}

impl<R: Read> Read for CrcChecked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.crc().sum() != self.expected {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "zip entry {} fails its CRC-32 check (damaged or cut short)",
                    self.entry
                ),
            ));
        }
        Ok(n)
    }
}

fn read_files(
    files: Vec<OpenFile>,
    out: crossbeam_channel::Sender<Chunk>,
    stop: &CancellationToken,
    progress: &IngestProgress,
) -> Result<(), IngestError> {
    for mut f in files {
        let mut lines = std::mem::take(&mut f.first_line);
        loop {
            if stop.is_cancelled() {
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

/// The stop a paced replay's parser waits on, with the timer it waits by.
struct Pacing {
    stop: CancellationToken,
    /// A current-thread runtime for the timer (paced replays only).
    clock: Option<tokio::runtime::Runtime>,
}

impl Pacing {
    /// Waits `wait`, or until stopped.
    fn wait(&self, wait: Duration) {
        if let Some(clock) = &self.clock {
            // The timer is made inside the clock's context.
            let _ =
                clock.block_on(async { tokio::time::timeout(wait, self.stop.cancelled()).await });
        }
    }
}

fn parse_chunks(
    input: crossbeam_channel::Receiver<Chunk>,
    tx: mpsc::Sender<Vec<Event>>,
    opts: &ReplayOptions,
    stop: &Pacing,
    progress: &IngestProgress,
) -> Result<(), IngestError> {
    let mut decoder = LineDecoder::with_feeds(opts.max_raw, &opts.feeds);
    decoder.set_max_clock_skew_ms(opts.max_clock_skew_ms);
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
    // Lines are counted with their items, as they are handed on: a replay
    // the writer stops has read exactly the lines whose items it handed on,
    // and `lines + extra = ticks + quotes + rejected + skipped` holds then too.
    let (mut lines, mut extra) = (0u64, 0u64);
    let send = |batch: Vec<Event>, lines: &mut u64, extra: &mut u64| -> Result<(), IngestError> {
        progress
            .lines
            .fetch_add(std::mem::take(lines), Ordering::Relaxed);
        progress
            .extra
            .fetch_add(std::mem::take(extra), Ordering::Relaxed);
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
        // Whole lines, each ending in `\n` but perhaps a file's last: the
        // piece after the last `\n` is a line only when it holds something.
        // A blank line in between is a line read (and skipped).
        let body = chunk.lines.strip_suffix(b"\n").unwrap_or(&chunk.lines);
        let pieces = (!chunk.lines.is_empty()).then(|| body.split(|b| *b == b'\n'));
        for line in pieces.into_iter().flatten() {
            let first_new = out.len();
            decoder.decode(&chunk.meta, line, &mut out);
            let n_new = out.len() - first_new;
            if pacer.speed.is_some() && !stop.stop.is_cancelled() {
                let due = out[first_new..]
                    .iter()
                    .find_map(|e| event_time(&chunk.meta, e));
                if let Some(wait) = due.and_then(|ts| pacer.wait_for(ts)) {
                    // Hand over what is due now, then wait; a stop ends the
                    // wait at once.
                    let held: Vec<Event> = out.drain(..first_new).collect();
                    if !held.is_empty() {
                        send(held, &mut lines, &mut extra)?;
                    }
                    // The metrics say what was read before this wait, not
                    // the line that waits for its time.
                    metrics.flush(chunk.meta.format.default_feed());
                    stop.wait(wait);
                }
                // Released now: a paced replay's tick-to-Redis latency is
                // measured from here, as a live run's is from the socket
                // read (the receive time only feeds latency and the live
                // bar timer once a line is decoded and checked).
                let released = crate::frame::now_ns();
                let start = out.len() - n_new;
                for e in &mut out[start..] {
                    if let Event::Tick(t) = e {
                        t.recv_ts_ns = released;
                    }
                }
            }
            // The decoder gives each line at least one item.
            lines += 1;
            extra += (tickwire_parse::items(&out[out.len() - n_new..]) as u64).saturating_sub(1);
            metrics.tally(&out[out.len() - n_new..]);
            if out.len() >= chunk_events {
                send(
                    std::mem::replace(&mut out, Vec::with_capacity(chunk_events)),
                    &mut lines,
                    &mut extra,
                )?;
            }
        }
        metrics.flush(chunk.meta.format.default_feed());
        if chunk.last_of_file {
            progress.files_done.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !out.is_empty() {
        send(out, &mut lines, &mut extra)?;
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
            max_clock_skew_ms: tickwire_parse::DEFAULT_MAX_CLOCK_SKEW_MS,
            close_at_end: false,
        }
    }

    fn tick_line(ms: i64) -> String {
        format!("{{\"exchange\":\"NSE\",\"symbol\":\"A\",\"ts\":{ms},\"ltp\":10.5,\"qty\":1}}\n")
    }

    fn collect(o: ReplayOptions) -> (Result<IngestSummary, IngestError>, Vec<Event>) {
        let (tx, mut rx) = mpsc::channel(4);
        let h = match start_replay(o, tx, CancellationToken::new()) {
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

    /// A zip archive built from the PKZIP layout (local headers, central
    /// directory, end record), each entry deflated or stored.
    fn zip_archive(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, body) in entries {
            let data = if deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(body).unwrap();
                e.finish().unwrap()
            } else {
                body.to_vec()
            };
            let mut crc = flate2::Crc::new();
            crc.update(body);
            let method: u16 = if deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            let mut common = Vec::new();
            for v in [20u16, 0, method, 0, 33] {
                common.extend(v.to_le_bytes()); // version, flags, method, time, date
            }
            for v in [crc.sum(), data.len() as u32, body.len() as u32] {
                common.extend(v.to_le_bytes());
            }
            common.extend((name.len() as u16).to_le_bytes());
            common.extend(0u16.to_le_bytes()); // extra field length
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend(&common);
            out.extend(name.as_bytes());
            out.extend(&data);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend(20u16.to_le_bytes()); // made by
            central.extend(&common);
            // Comment length, disk number, internal (u16) and external (u32) attributes.
            central.extend([0u8; 10]);
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]); // disk numbers
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn gzip(body: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    const DUMP: &str = "1,42000.1,0.5,21000.05,1704067200000,true,true\n\
                        2,42000.2,0.25,10500.05,1704067200001,false,true\n";

    fn ticks(events: &[Event]) -> Vec<(String, i64, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Tick(t) => Some((
                    format!("{}:{}", t.instrument.exchange, t.instrument.symbol),
                    t.exchange_ts_ns,
                    format!("{:?}", (t.price, t.qty)),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn gzip_and_zip_dumps_read_like_the_plain_csv() {
        let dir = tempfile::tempdir().unwrap();
        let name = "BTCUSDT-trades-2024-01-01";
        let plain = dir.path().join(format!("{name}.csv"));
        std::fs::write(&plain, DUMP).unwrap();
        let (_, expected) = collect(opts(vec![plain], Pace::Max));
        assert_eq!(ticks(&expected).len(), 2);
        let entry = format!("{name}.csv");
        let inputs: [(&str, Vec<u8>); 5] = [
            (".csv.gz", gzip(DUMP.as_bytes())),
            (".zip", zip_archive(&[(&entry, DUMP.as_bytes())], true)),
            (".zip", zip_archive(&[(&entry, DUMP.as_bytes())], false)),
            // Told by its first bytes when its name does not say.
            (".csv", gzip(DUMP.as_bytes())),
            // Several gzip members back to back (`cat a.gz b.gz`).
            (
                ".csv.gz",
                [gzip(&DUMP.as_bytes()[..47]), gzip(&DUMP.as_bytes()[47..])].concat(),
            ),
        ];
        for (i, (suffix, bytes)) in inputs.into_iter().enumerate() {
            // The zip's own name says nothing: the symbol is its entry's.
            let file_name = if suffix == ".zip" {
                format!("download-{i}.zip")
            } else {
                format!("{name}{suffix}")
            };
            let path = dir.path().join(&file_name);
            std::fs::write(&path, bytes).unwrap();
            let (summary, events) = collect(opts(vec![path], Pace::Max));
            let s = summary.unwrap_or_else(|e| panic!("{file_name}: {e}"));
            assert_eq!((s.files, s.rejected, s.truncated), (1, 0, 0), "{file_name}");
            assert_eq!(ticks(&events), ticks(&expected), "{file_name}");
        }
    }

    fn open_error(name: &str, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        match collect(opts(vec![path.clone()], Pace::Max)).0 {
            Ok(s) => panic!("{name} replayed: {s:?}"),
            Err(e) => {
                let text = e.to_string();
                assert!(text.starts_with(&path.display().to_string()), "{text}");
                text
            }
        }
    }

    #[test]
    fn a_file_whose_name_lies_about_its_packing_is_a_clear_error() {
        let gz = gzip(DUMP.as_bytes());
        let zip = zip_archive(&[("a.csv", DUMP.as_bytes())], true);
        let zst = zstd::encode_all(DUMP.as_bytes(), 3).unwrap();
        for (name, bytes, says) in [
            ("t.csv.zst", &gz, "not a zstd file (looks like gzip)"),
            ("t.csv.zst", &zip, "not a zstd file (looks like zip)"),
            ("t.csv.gz", &zst, "not a gzip file (looks like zstd)"),
            ("t.zip", &gz, "not a zip file (looks like gzip)"),
            (
                "t.csv.zst",
                &DUMP.as_bytes().to_vec(),
                "not a zstd file (looks like text)",
            ),
            (
                "t.csv.gz",
                &vec![0u8, 1, 2, 3, 4],
                "not a gzip file (looks like neither: it starts with 00 01 02 03)",
            ),
        ] {
            let text = open_error(name, bytes);
            assert!(text.ends_with(says), "{name}: {text}");
        }
    }

    #[test]
    fn a_zip_must_hold_exactly_one_file() {
        let text = open_error("none.zip", &zip_archive(&[], true));
        assert!(
            text.contains("holds no file; expected exactly one"),
            "{text}"
        );
        let two = zip_archive(&[("a.csv", b"1"), ("b.csv", b"2")], true);
        let text = open_error("two.zip", &two);
        assert!(
            text.contains("holds 2 files (a.csv, b.csv); expected exactly one"),
            "{text}"
        );
        // A damaged entry fails its CRC check, not silently.
        let mut bad = zip_archive(&[("BTCUSDT-trades-2024-01-01.csv", DUMP.as_bytes())], false);
        let at = 30 + "BTCUSDT-trades-2024-01-01.csv".len() + 3;
        bad[at] = b'9';
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.zip");
        std::fs::write(&path, bad).unwrap();
        let (summary, _) = collect(opts(vec![path], Pace::Max));
        assert_eq!(summary.unwrap().truncated, 1, "counted as a file cut short");
    }

    #[test]
    fn empty_files_are_counted_not_errors() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = [
            ("empty.jsonl", Vec::new()),
            ("empty.jsonl.zst", Vec::new()),
            ("empty-content.csv.gz", gzip(b"")),
            ("ticks.jsonl", tick_line(1_704_168_900_000).into_bytes()),
        ]
        .into_iter()
        .map(|(name, bytes)| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
        let (summary, events) = collect(opts(files, Pace::Max));
        let s = summary.unwrap();
        assert_eq!((s.files, s.empty, s.ticks), (4, 3, 1), "{s:?}");
        assert_eq!(events.len(), 1);
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
