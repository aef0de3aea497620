//! The recorder: every raw frame with its receive time, as JSON lines that
//! `tickwire replay` reads (`{"recv_ns":..,"feed":..,"venue":..,"data":..}`,
//! binary frames base64 with `"enc":"base64"`), zstd-compressed.
//!
//! Each flush (every `flush_ms`, default 1 s) closes a complete zstd frame, so
//! a crash loses at most the frames of the last interval: everything before
//! it decodes. Files rotate by size and at each full UTC hour.
//!
//! The queue to the recorder thread is bounded ([`QUEUE_BYTES`] of frame data,
//! [`QUEUE_FRAMES`] frames): a disk that cannot keep up makes it drop frames,
//! never grow without end. A recorder that fails (disk full, directory gone)
//! says so at once in an error log line and through [`Recorder::failure`],
//! on which the run stops; every frame not recorded, for either reason, is
//! counted (`tickwire_record_dropped_frames_total` and the summary), and the
//! run ends with a non-zero exit after its summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tickwire_core::feeds::RecordConfig;

use crate::frame::RawFrame;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot create recording directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write recording {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the recorder thread: {0}")]
    Thread(std::io::Error),
    #[error("the recorder thread panicked")]
    Panicked,
}

/// Frame data (bytes) waiting for the recorder thread at most; past it,
/// frames are dropped and counted. 256 MiB: many seconds of every feed, and
/// a bound on what a stalled disk costs in memory.
pub const QUEUE_BYTES: u64 = 256 << 20;
/// Frames waiting for the recorder thread at most.
pub const QUEUE_FRAMES: usize = 1 << 20;

/// What a recorder wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub frames: u64,
    /// Uncompressed JSON-lines bytes.
    pub bytes: u64,
    pub files: Vec<PathBuf>,
    /// Frames not recorded because the queue to the recorder was full.
    pub dropped: u64,
    /// Frames not recorded because the recorder had failed.
    pub lost: u64,
    /// Why the recorder failed, if it did (the run exits non-zero).
    pub error: Option<String>,
}

/// What the recorder thread writes: a frame, or a line made already (a page
/// of a venue's history, a fill's end, a feed's connect).
enum Item {
    Frame(RawFrame),
    Line { recv_ns: i64, line: String },
}

impl Item {
    fn len(&self) -> u64 {
        match self {
            Item::Frame(f) => f.data.len() as u64,
            Item::Line { line, .. } => line.len() as u64,
        }
    }
}

/// Hands frames to the recorder thread (never blocks the caller).
pub struct Recorder {
    tx: Option<crossbeam_channel::Sender<Item>>,
    thread: Option<thread::JoinHandle<RecordSummary>>,
    /// Frame bytes queued for the thread.
    queued: Arc<AtomicU64>,
    max_bytes: u64,
    dropped: u64,
    metric: metrics::Counter,
    /// Set by the recorder thread when it fails (why), at once.
    failed: Arc<OnceLock<String>>,
    /// Cancelled by the recorder thread right after it sets `failed`.
    failed_signal: tokio_util::sync::CancellationToken,
}

impl Recorder {
    /// Creates `dir` if needed and starts the recorder thread.
    pub fn create(dir: &Path, cfg: RecordConfig) -> Result<Recorder, RecordError> {
        Self::with_bounds(dir, cfg, QUEUE_BYTES, QUEUE_FRAMES)
    }

    /// [`Recorder::create`] with the queue bounded at `max_bytes` of frame data
    /// and `max_frames` frames.
    pub fn with_bounds(
        dir: &Path,
        cfg: RecordConfig,
        max_bytes: u64,
        max_frames: usize,
    ) -> Result<Recorder, RecordError> {
        std::fs::create_dir_all(dir).map_err(|source| RecordError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        // Bounded, and written with try_send: the recorder never slows the
        // parser, and a disk that cannot keep up costs dropped (counted)
        // frames, not unbounded memory.
        let (tx, rx) = crossbeam_channel::bounded::<Item>(max_frames.max(1));
        let dir = dir.to_path_buf();
        let queued = Arc::new(AtomicU64::new(0));
        let metric = metrics::counter!(tickwire_core::telemetry::RECORD_DROPPED);
        let failed = Arc::new(OnceLock::new());
        let failed_signal = tokio_util::sync::CancellationToken::new();
        let thread = {
            let (queued, metric) = (Arc::clone(&queued), metric.clone());
            let failed = Arc::clone(&failed);
            let signal = failed_signal.clone();
            thread::Builder::new()
                .name("tickwire-recorder".into())
                .spawn(move || {
                    let mut summary = RecordSummary::default();
                    if let Err(e) = record_loop(&rx, &dir, &cfg, &queued, &mut summary) {
                        tracing::error!(
                            error = %e,
                            "the recorder failed: frames are no longer recorded (the run stops, non-zero)"
                        );
                        summary.error = Some(e.to_string());
                        // Seen by whoever supervises the run: it stops at once.
                        let _ = failed.set(e.to_string());
                        signal.cancel();
                        // Count every frame that still comes, until the feeds stop.
                        for f in rx.iter() {
                            queued.fetch_sub(f.len(), Ordering::Relaxed);
                            summary.lost += 1;
                            metric.increment(1);
                        }
                    }
                    summary
                })
                .map_err(RecordError::Thread)?
        };
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
            queued,
            max_bytes,
            dropped: 0,
            metric,
            failed,
            failed_signal,
        })
    }

    /// Why the recorder failed, once it has: readable from any thread while
    /// it runs (the run stops on it rather than reading on unrecorded).
    pub fn failure(&self) -> Arc<OnceLock<String>> {
        Arc::clone(&self.failed)
    }

    /// Cancelled the moment the recorder fails (after [`Recorder::failure`]
    /// holds why): a supervisor awaits it rather than polling.
    pub fn failed_signal(&self) -> tokio_util::sync::CancellationToken {
        self.failed_signal.clone()
    }

    /// Queues `frame` for the recorder; drops (and counts) it when the queue
    /// is at its bound.
    pub fn write(&mut self, frame: &RawFrame) {
        self.queue(Item::Frame(frame.clone()));
    }

    /// Queues one line made already ([`history_line`], [`marker_line`]),
    /// as [`Recorder::write`] queues a frame.
    pub fn write_line(&mut self, recv_ns: i64, line: String) {
        self.queue(Item::Line { recv_ns, line });
    }

    fn queue(&mut self, item: Item) {
        let Some(tx) = &self.tx else { return };
        let len = item.len();
        let queued = self.queued.fetch_add(len, Ordering::Relaxed);
        let sent = queued + len <= self.max_bytes && tx.try_send(item).is_ok();
        if !sent {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            if self.dropped == 0 {
                tracing::warn!(
                    queued_bytes = queued,
                    "the recorder is behind: frames are dropped from the recording (counted)"
                );
            }
            self.dropped += 1;
            self.metric.increment(1);
        }
    }

    /// Writes what is queued, closes the file and returns the totals.
    pub fn finish(mut self) -> Result<RecordSummary, RecordError> {
        self.tx = None;
        let mut summary = match self.thread.take() {
            Some(t) => t.join().map_err(|_| RecordError::Panicked)?,
            None => RecordSummary::default(),
        };
        summary.dropped += self.dropped;
        Ok(summary)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One open recording file.
struct Open {
    path: PathBuf,
    /// `None` between zstd frames.
    encoder: Option<zstd::Encoder<'static, BufWriter<File>>>,
    sink: Option<BufWriter<File>>,
    bytes: u64,
    hour: i64,
    dirty: bool,
}

impl Open {
    fn encoder(
        &mut self,
        level: i32,
    ) -> std::io::Result<&mut zstd::Encoder<'static, BufWriter<File>>> {
        if self.encoder.is_none() {
            let sink = match self.sink.take() {
                Some(s) => s,
                None => BufWriter::new(File::options().append(true).open(&self.path)?),
            };
            self.encoder = Some(zstd::Encoder::new(sink, level)?);
        }
        // Set just above when it was missing.
        self.encoder
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no encoder"))
    }

    /// Ends the current zstd frame and puts it on disk.
    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(enc) = self.encoder.take() {
            let mut sink = enc.finish()?;
            sink.flush()?;
            sink.get_ref().sync_data()?;
            self.sink = Some(sink);
        }
        self.dirty = false;
        Ok(())
    }
}

fn record_loop(
    rx: &crossbeam_channel::Receiver<Item>,
    dir: &Path,
    cfg: &RecordConfig,
    queued: &AtomicU64,
    summary: &mut RecordSummary,
) -> Result<(), RecordError> {
    let mut open: Option<Open> = None;
    let flush_every = Duration::from_millis(cfg.flush_ms);
    let mut last_flush = Instant::now();
    let mut line = String::with_capacity(1024);
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Write { path, source }
    };
    loop {
        let wait = flush_every.saturating_sub(last_flush.elapsed());
        let frame = match rx.recv_timeout(wait) {
            Ok(f) => Some(f),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        if let Some(f) = frame {
            queued.fetch_sub(f.len(), Ordering::Relaxed);
            // Lost until written: the frame that hits an error is not recorded.
            summary.lost += 1;
            let recv_ns = match &f {
                Item::Frame(f) => f.recv_ns,
                Item::Line { recv_ns, .. } => *recv_ns,
            };
            let hour = recv_ns.div_euclid(3_600_000_000_000);
            let rotate = match &open {
                None => true,
                Some(o) => o.bytes >= cfg.rotate_bytes || (cfg.rotate_hourly && o.hour != hour),
            };
            if rotate {
                if let Some(mut o) = open.take() {
                    o.flush().map_err(err(&o.path))?;
                }
                let path = next_path(dir, recv_ns, summary.files.len());
                File::create(&path).map_err(err(&path))?;
                summary.files.push(path.clone());
                open = Some(Open {
                    path,
                    encoder: None,
                    sink: None,
                    bytes: 0,
                    hour,
                    dirty: false,
                });
            }
            // Present: opened just above when it was missing.
            let Some(o) = open.as_mut() else { continue };
            let is_frame = matches!(f, Item::Frame(_));
            match f {
                Item::Frame(f) => frame_line(&f, &mut line),
                Item::Line { line: l, .. } => line = l,
            }
            o.encoder(cfg.zstd_level)
                .and_then(|e| e.write_all(line.as_bytes()))
                .map_err(err(&o.path))?;
            o.bytes += line.len() as u64;
            o.dirty = true;
            summary.lost -= 1;
            // A connect, a page of history or a fill's end is no frame read.
            summary.frames += u64::from(is_frame);
            summary.bytes += line.len() as u64;
        }
        if last_flush.elapsed() >= flush_every {
            if let Some(o) = open.as_mut().filter(|o| o.dirty) {
                o.flush().map_err(err(&o.path))?;
            }
            last_flush = Instant::now();
        }
    }
    if let Some(mut o) = open.take() {
        o.flush().map_err(err(&o.path))?;
    }
    Ok(())
}

/// `tickwire-20261123T091500Z-0001.frames.jsonl.zst`: sorts by time, so a
/// glob of the directory replays in order.
fn next_path(dir: &Path, recv_ns: i64, n: usize) -> PathBuf {
    let ts = jiff::Timestamp::from_nanosecond(i128::from(recv_ns))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%dT%H%M%SZ");
    dir.join(format!("tickwire-{ts}-{:04}.frames.jsonl.zst", n + 1))
}

/// A page of a venue's trade history as a recording line: the frame line's
/// envelope with `"history"` (the gap, symbol, id sequence and the ids it
/// gives) and the answer as `data`. `replay` decodes it as the live run did.
pub fn history_line(h: &crate::frame::HistoryFrame) -> String {
    let v = serde_json::json!({
        "recv_ns": h.recv_ns,
        "feed": &*h.feed,
        "venue": h.venue.name(),
        "history": {
            "gap": h.key.gap,
            "symbol": &*h.key.symbol,
            "seq": match h.key.sequence {
                tickwire_core::IdSequence::Trade => "trade",
                tickwire_core::IdSequence::Aggregate => "aggregate",
            },
            "from": h.key.from_id,
            "to": h.key.to_id,
        },
        "data": String::from_utf8_lossy(&h.data),
    });
    format!("{v}\n")
}

/// A feed's connect as a recording line (`"status":"connected"`).
pub fn connect_line(s: &tickwire_core::FeedEvent) -> String {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), "connected".into());
    marker_line(s.at_ns, &s.feed, s.exchange, m)
}

/// A fill's end as a recording line (`"fill_end"`), received at `now_ns`;
/// `feeds` names the feed's venue.
pub fn fill_end_line(
    now_ns: i64,
    end: &tickwire_core::FillEnd,
    feeds: &[tickwire_core::FeedConfig],
) -> String {
    let venue = feeds
        .iter()
        .find(|f| f.name == *end.feed)
        .map_or("", |f| f.venue.as_str());
    let mut m = serde_json::Map::new();
    m.insert(
        "fill_end".into(),
        serde_json::json!({"gap": end.gap, "symbol": &*end.symbol,
            "complete": end.complete, "reason": end.reason}),
    );
    marker_line(now_ns, &end.feed, venue, m)
}

/// A recording line of something that happened between frames and that a
/// replay must see where it happened: `{"recv_ns":..,"feed":..,"venue":..,
/// "data":"",..fields}` (a fill's end, a feed's connect).
pub fn marker_line(
    recv_ns: i64,
    feed: &str,
    venue: &str,
    fields: serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut v = serde_json::json!({"recv_ns": recv_ns, "feed": feed, "venue": venue, "data": ""});
    if let Some(o) = v.as_object_mut() {
        o.extend(fields);
    }
    format!("{v}\n")
}

/// One recording line, with its newline.
pub fn frame_line(f: &RawFrame, out: &mut String) {
    out.clear();
    let (data, enc) = if f.binary {
        (
            base64::engine::general_purpose::STANDARD.encode(&f.data),
            Some("base64"),
        )
    } else {
        (String::from_utf8_lossy(&f.data).into_owned(), None)
    };
    let mut v = serde_json::json!({
        "recv_ns": f.recv_ns,
        "feed": &*f.feed,
        "venue": f.venue.name(),
        "data": data,
    });
    if let Some(enc) = enc {
        v["enc"] = enc.into();
    }
    out.push_str(&v.to_string());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue(name: &str) -> tickwire_core::FeedVenue {
        tickwire_parse::VENUES
            .get(name)
            .expect("a registered venue")
    }
    use std::io::Read;
    use tokio_tungstenite::tungstenite::Bytes;

    fn frame(recv_ns: i64, binary: bool, data: &[u8]) -> RawFrame {
        RawFrame {
            feed: "f1".into(),
            venue: if binary { venue("dhan") } else { venue("okx") },
            recv_ns,
            binary,
            data: Bytes::copy_from_slice(data),
        }
    }

    fn read_all(path: &Path) -> String {
        let mut s = String::new();
        zstd::Decoder::new(File::open(path).unwrap())
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn lines_round_trip_text_and_binary() {
        let mut line = String::new();
        frame_line(&frame(5, false, br#"{"a":"x\"y"}"#), &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["data"], r#"{"a":"x\"y"}"#);
        assert_eq!(
            (v["feed"].as_str(), v["venue"].as_str()),
            (Some("f1"), Some("okx"))
        );
        frame_line(&frame(5, true, &[0, 1, 255]), &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (v["data"].as_str(), v["enc"].as_str()),
            (Some("AAH/"), Some("base64"))
        );
    }

    #[test]
    fn rotates_by_size_and_hour_and_flushes_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RecordConfig {
            rotate_bytes: 1024,
            rotate_hourly: true,
            flush_ms: 50,
            zstd_level: 3,
        };
        let mut r = Recorder::create(dir.path(), cfg).unwrap();
        let hour = 3_600_000_000_000i64;
        let t0 = 1_763_000_000 * 1_000_000_000i64 / hour * hour;
        r.write(&frame(t0, false, b"first"));
        // Flushed within flush_ms while the recorder is still running: a
        // crash now would keep this frame. Its thread flushes on the wall
        // clock: polled, with a deadline far above flush_ms.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let first = loop {
            let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(files.len() <= 1, "{files:?}");
            // Before the flush there may be no file, or no whole block in it.
            if let Some(Ok(f)) = files.first() {
                let mut bytes = Vec::new();
                if let Ok(mut d) = zstd::Decoder::new(File::open(f.path()).unwrap()) {
                    let _ = d.read_to_end(&mut bytes);
                }
                if String::from_utf8_lossy(&bytes).contains("first") {
                    break f.path();
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not flushed within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(read_all(&first).contains("first"));
        // 30 lines of ~100 bytes: past 1024 bytes, a new file.
        for i in 0..30 {
            r.write(&frame(t0 + i, false, &[b'x'; 40]));
        }
        // The next hour: a new file.
        r.write(&frame(t0 + hour, false, b"next hour"));
        let s = r.finish().unwrap();
        assert_eq!(s.frames, 32);
        assert!(s.files.len() >= 3, "{:?}", s.files);
        let last = read_all(s.files.last().unwrap());
        assert!(last.contains("next hour") && !last.contains("first"));
        let total: usize = s.files.iter().map(|p| read_all(p).lines().count()).sum();
        assert_eq!(total, 32);
    }

    #[test]
    fn a_full_queue_drops_and_counts_frames_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        // At most 1000 bytes of frame data queued: a 2000-byte frame never fits.
        let mut r = Recorder::with_bounds(dir.path(), RecordConfig::default(), 1_000, 16).unwrap();
        let t0 = 1_763_000_000 * 1_000_000_000i64;
        r.write(&frame(t0, false, b"small"));
        r.write(&frame(t0 + 1, false, &[b'x'; 2_000]));
        r.write(&frame(t0 + 2, false, b"after"));
        let s = r.finish().unwrap();
        assert_eq!((s.frames, s.dropped, s.lost), (2, 1, 0));
        assert_eq!(s.error, None);
        let text = read_all(&s.files[0]);
        assert!(text.contains("small") && text.contains("after"), "{text}");
        assert!(!text.contains("xxxx"));
    }

    #[test]
    fn a_failed_recorder_says_why_and_counts_every_frame_it_did_not_record() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rec");
        let mut r = Recorder::create(&out, RecordConfig::default()).unwrap();
        // The directory goes away before the first file is made: it cannot be created.
        std::fs::remove_dir_all(&out).unwrap();
        let t0 = 1_763_000_000 * 1_000_000_000i64;
        for i in 0..50 {
            r.write(&frame(t0 + i, false, b"lost"));
        }
        let s = r.finish().unwrap();
        let error = s.error.clone().expect("the failure is reported");
        assert!(error.contains("cannot write recording"), "{error}");
        assert_eq!(s.frames, 0);
        // Every frame is counted: the one that hit the error and those behind it.
        assert_eq!(s.lost + s.dropped, 50, "{s:?}");
    }
}
