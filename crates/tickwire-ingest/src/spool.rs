//! A live feed's disk spool: where its frames go once its in-memory backlog
//! is full (Redis down, or slower than the feeds), and where they come back
//! from, in arrival order, when the pipeline catches up.
//!
//! Each feed has its own directory `{spool.dir}/{feed}/`, held by one process
//! at a time (a lock file). Frames are appended to segment files
//! (`{seq}.seg`); a new segment starts after `spool.segment_bytes`. Appends
//! reach the kernel at once (so a killed process loses nothing it spooled) and
//! the disk at least every second (`sync_data`). A segment read to its end is
//! renamed `{seq}.done` and kept a while: its last frames may still be on their
//! way to Redis. A process that starts finds what the last one left: `.done`
//! segments first, then `.seg` ones, in order. Frames read twice are resends
//! that trade identity recognises; nothing spooled is skipped.
//!
//! A record is `len: u32 LE | crc32: u32 LE | binary: u8 | recv_ns: i64 LE |
//! data`, the checksum over everything after it. A record cut short at the end
//! of a segment (the process died while writing it) ends that segment.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_core::feeds::{SpoolConfig, SPOOL_DONE_EXT, SPOOL_SEGMENT_EXT};
use tickwire_core::FeedVenue;
use tokio_tungstenite::tungstenite::Bytes;

use crate::frame::RawFrame;

/// The first bytes of every segment file.
const MAGIC: &[u8; 8] = b"TWSPOOL1";
/// Bytes of a record's header.
const HEADER: usize = 17;
/// How long a segment read to its end is kept (its frames may still be in
/// flight to Redis when the process dies).
const KEEP_DONE: Duration = Duration::from_secs(10);
/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "spool {0} is in use by another tickwire process (two processes cannot share a feed's \
         spool: give them different [spool] dir or feed names)"
    )]
    Locked(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Bytes all feeds' spools of this process hold (for `spool.max_bytes`).
#[derive(Debug, Default)]
pub struct SpoolBudget {
    bytes: AtomicU64,
}

/// A segment on disk, not yet read to its end.
#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Bytes in the file (magic included); grows while it is being written.
    len: u64,
}

/// The segment being read: where, and a window of its bytes.
#[derive(Debug)]
struct Cursor {
    file: File,
    /// File offset of the next record.
    offset: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
}

/// The segment being written.
#[derive(Debug)]
struct Writer {
    seq: u64,
    file: BufWriter<File>,
    len: u64,
    /// Written since the last sync.
    dirty: bool,
}

/// One feed's spool (see the module docs).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    feed: Arc<str>,
    venue: FeedVenue,
    _lock: File,
    max_bytes: u64,
    segment_bytes: u64,
    budget: Arc<SpoolBudget>,
    /// Segments not yet read to their end, oldest first (the last one may be
    /// the one being written).
    segments: VecDeque<Segment>,
    cursor: Option<Cursor>,
    writer: Option<Writer>,
    /// Segments read to their end, kept until they are surely handed on.
    done: VecDeque<(PathBuf, u64, Instant)>,
    next_seq: u64,
    /// Bytes of frames not yet read (headers included).
    unread: u64,
    /// Bytes the files hold (kept `.done` segments included).
    held: u64,
    /// Receive time of the oldest frame not yet read, as far as known.
    oldest_recv_ns: Option<i64>,
    last_sync: Instant,
    /// A sync running on a blocking thread.
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Bytes of records cut short or failing their checksum (logged).
    pub lost_bytes: u64,
    /// Segments below this were left by an earlier process.
    first_own_seq: u64,
    /// Frames taken that an earlier process had spooled (read by it, not by
    /// this one).
    pub inherited_frames: u64,
}

/// A feed's spool as the feed task holds it: opened (and locked) at start
/// only when an earlier process left frames in it, else on the first frame
/// the backlog cannot hold, so a run that never falls behind touches no disk
/// (and two runs that never spool do not contend for a directory).
#[derive(Debug)]
pub struct SpoolSlot {
    cfg: SpoolConfig,
    feed: Arc<str>,
    venue: FeedVenue,
    budget: Arc<SpoolBudget>,
    spool: Option<Spool>,
    /// The last failed attempt to open it (tried again after a while).
    failed_at: Option<Instant>,
}

impl SpoolSlot {
    /// The slot of feed `feed`; opens the spool now if it holds frames an
    /// earlier process left (an error then fails the start: another process
    /// holds it, or it cannot be read).
    pub fn new(
        cfg: &SpoolConfig,
        feed: Arc<str>,
        venue: FeedVenue,
        budget: Arc<SpoolBudget>,
    ) -> Result<SpoolSlot, SpoolError> {
        let dir = feed_dir(cfg, &feed);
        let left = std::fs::read_dir(&dir)
            .map(|d| d.flatten().any(|e| segment_name(&e.path()).is_some()))
            .unwrap_or(false);
        let spool = if left {
            Some(Spool::open(
                cfg,
                Arc::clone(&feed),
                venue,
                Arc::clone(&budget),
            )?)
        } else {
            None
        };
        Ok(SpoolSlot {
            cfg: cfg.clone(),
            feed,
            venue,
            budget,
            spool,
            failed_at: None,
        })
    }

    /// The spool, if open.
    pub fn get(&mut self) -> Option<&mut Spool> {
        self.spool.as_mut()
    }

    /// The spool, if open (to look at).
    pub fn peek(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    /// The spool, opened now if need be; `None` (logged) when it cannot be,
    /// tried again at most every 5 s.
    pub fn open(&mut self) -> Option<&mut Spool> {
        if self.spool.is_none()
            && self
                .failed_at
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(5))
        {
            match Spool::open(
                &self.cfg,
                Arc::clone(&self.feed),
                self.venue,
                Arc::clone(&self.budget),
            ) {
                Ok(s) => {
                    tracing::warn!(
                        feed = %self.feed,
                        dir = %s.dir.display(),
                        "the feed's backlog is full: spooling frames to disk"
                    );
                    self.spool = Some(s);
                }
                Err(e) => {
                    tracing::error!(feed = %self.feed, error = %e, "cannot open the spool");
                    self.failed_at = Some(Instant::now());
                }
            }
        }
        self.spool.as_mut()
    }

    /// Gives up the spool (it could not be read): what is in it stays on disk.
    pub fn close(&mut self) {
        self.spool = None;
        self.failed_at = Some(Instant::now());
    }

    /// The spool, taken out (at the end of the feed).
    pub fn take(self) -> Option<Spool> {
        self.spool
    }
}

/// A file name's sequence number and kind (`.seg` or `.done`), if it is a
/// segment.
fn segment_name(path: &Path) -> Option<(u64, bool)> {
    let ext = path.extension()?.to_str()?;
    let done = match ext {
        SPOOL_SEGMENT_EXT => false,
        SPOOL_DONE_EXT => true,
        _ => return None,
    };
    Some((path.file_stem()?.to_str()?.parse().ok()?, done))
}

fn segment_path(dir: &Path, seq: u64, ext: &str) -> PathBuf {
    dir.join(format!("{seq:016}.{ext}"))
}

/// A feed's directory inside the spool dir (its name, made safe for a path).
pub fn feed_dir(cfg: &SpoolConfig, feed: &str) -> PathBuf {
    let safe: String = feed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cfg.dir.join(safe)
}

impl Spool {
    /// Opens (creating it if needed) and locks feed `feed`'s spool; takes up
    /// what a previous process left in it.
    pub fn open(
        cfg: &SpoolConfig,
        feed: Arc<str>,
        venue: FeedVenue,
        budget: Arc<SpoolBudget>,
    ) -> Result<Spool, SpoolError> {
        let dir = feed_dir(cfg, &feed);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if let Some((seq, done)) = segment_name(&path) {
                let len = std::fs::metadata(&path).map_err(io(&path))?.len();
                found.push((seq, done, path, len));
            }
        }
        // What the last process had read but perhaps not written comes first
        // (`.done`, older), then what it had not read.
        found.sort_by_key(|(seq, done, _, _)| (!*done, *seq));
        let next_seq = found.iter().map(|(seq, ..)| seq + 1).max().unwrap_or(1);
        let mut spool = Spool {
            dir,
            feed,
            venue,
            _lock: lock,
            max_bytes: cfg.max_bytes,
            segment_bytes: cfg.segment_bytes,
            budget,
            segments: VecDeque::new(),
            cursor: None,
            writer: None,
            done: VecDeque::new(),
            next_seq,
            unread: 0,
            held: 0,
            oldest_recv_ns: None,
            last_sync: Instant::now(),
            syncing: None,
            lost_bytes: 0,
            first_own_seq: next_seq,
            inherited_frames: 0,
        };
        for (seq, _, path, len) in found {
            spool.unread += len.saturating_sub(MAGIC.len() as u64);
            spool.held += len;
            spool.budget.bytes.fetch_add(len, Ordering::Relaxed);
            spool.segments.push_back(Segment { seq, path, len });
        }
        if !spool.segments.is_empty() {
            tracing::warn!(
                feed = %spool.feed,
                dir = %spool.dir.display(),
                segments = spool.segments.len(),
                bytes = spool.unread,
                "a previous process left frames in the spool: handing them on first"
            );
        }
        Ok(spool)
    }

    /// Whether frames wait in the spool.
    pub fn is_empty(&self) -> bool {
        self.unread == 0
    }

    /// Bytes of frames waiting (headers included).
    pub fn unread_bytes(&self) -> u64 {
        self.unread
    }

    /// The age of the oldest waiting frame at `now_ns`, if any waits.
    pub fn oldest_age_ns(&self, now_ns: i64) -> Option<i64> {
        if self.is_empty() {
            return None;
        }
        self.oldest_recv_ns.map(|t| now_ns.saturating_sub(t).max(0))
    }

    /// Appends `frame`. `Ok(false)` when `spool.max_bytes` leaves no room
    /// for it: the caller drops it (and counts it).
    pub fn append(&mut self, frame: &RawFrame) -> Result<bool, SpoolError> {
        let record = (HEADER + frame.data.len()) as u64;
        let budget = self.budget.bytes.load(Ordering::Relaxed);
        if budget.saturating_add(record) > self.max_bytes {
            return Ok(false);
        }
        if self
            .writer
            .as_ref()
            .is_none_or(|w| w.len >= self.segment_bytes)
        {
            self.rotate()?;
        }
        let Some(w) = self.writer.as_mut() else {
            // rotate() leaves a writer or returns the error.
            return Ok(false);
        };
        let mut header = [0u8; HEADER];
        let binary = u8::from(frame.binary);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[binary]);
        crc.update(&frame.recv_ns.to_le_bytes());
        crc.update(&frame.data);
        header[0..4].copy_from_slice(&(frame.data.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        header[8] = binary;
        header[9..17].copy_from_slice(&frame.recv_ns.to_le_bytes());
        let path = segment_path(&self.dir, w.seq, SPOOL_SEGMENT_EXT);
        w.file.write_all(&header).map_err(io(&path))?;
        w.file.write_all(&frame.data).map_err(io(&path))?;
        // One write(2) a record: in the kernel's hands at once, so a process
        // killed now has lost nothing it spooled.
        w.file.flush().map_err(io(&path))?;
        w.len += record;
        w.dirty = true;
        if let Some(seg) = self.segments.back_mut().filter(|s| s.seq == w.seq) {
            seg.len = w.len;
        }
        if self.unread == 0 {
            self.oldest_recv_ns = Some(frame.recv_ns);
        }
        self.unread += record;
        self.held += record;
        self.budget.bytes.fetch_add(record, Ordering::Relaxed);
        Ok(true)
    }

    /// Ends the segment being written (if any) and starts a new one.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        self.seal(true)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = segment_path(&self.dir, seq, SPOOL_SEGMENT_EXT);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut file = BufWriter::with_capacity(256 << 10, file);
        file.write_all(MAGIC).map_err(io(&path))?;
        let len = MAGIC.len() as u64;
        self.held += len;
        self.budget.bytes.fetch_add(len, Ordering::Relaxed);
        self.segments.push_back(Segment { seq, path, len });
        self.writer = Some(Writer {
            seq,
            file,
            len,
            dirty: true,
        });
        Ok(())
    }

    /// Writes out the segment being written and stops writing it; with
    /// `sync`, what was written since the last sync goes to disk on a
    /// blocking thread (the feed keeps reading meanwhile).
    fn seal(&mut self, sync: bool) -> Result<(), SpoolError> {
        if let Some(mut w) = self.writer.take() {
            let path = segment_path(&self.dir, w.seq, SPOOL_SEGMENT_EXT);
            w.file.flush().map_err(io(&path))?;
            if sync && w.dirty {
                let file = w.file.get_ref().try_clone().map_err(io(&path))?;
                let feed = Arc::clone(&self.feed);
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = file.sync_data() {
                        tracing::error!(%feed, error = %e, "spool sync failed");
                    }
                });
            }
        }
        Ok(())
    }

    /// Takes up to `max_frames` frames (and about `max_bytes` bytes), oldest
    /// first. Empty when nothing waits.
    pub fn take(
        &mut self,
        max_frames: usize,
        max_bytes: usize,
    ) -> Result<Vec<RawFrame>, SpoolError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        if let Some(w) = self.writer.as_mut() {
            // What is read must be in the file first.
            let path = segment_path(&self.dir, w.seq, SPOOL_SEGMENT_EXT);
            w.file.flush().map_err(io(&path))?;
        }
        while out.len() < max_frames && bytes < max_bytes {
            let Some(seg) = self.segments.front() else {
                break;
            };
            let writing = self.writer.as_ref().is_some_and(|w| w.seq == seg.seq);
            if self.cursor.is_none() {
                let file = File::open(&seg.path).map_err(io(&seg.path))?;
                let mut magic = [0u8; 8];
                let ok = file.read_exact_at(&mut magic, 0).is_ok() && &magic == MAGIC;
                if !ok && !writing {
                    tracing::error!(
                        feed = %self.feed,
                        path = %seg.path.display(),
                        "not a spool segment (bad magic): set aside as .bad"
                    );
                    let bad = seg.path.with_extension("bad");
                    let _ = std::fs::rename(&seg.path, &bad);
                    self.lost_bytes += seg.len;
                    self.forget_front();
                    continue;
                }
                self.cursor = Some(Cursor {
                    file,
                    offset: MAGIC.len() as u64,
                    buf: Vec::new(),
                    buf_at: MAGIC.len() as u64,
                });
            }
            let (len, path, inherited) = (seg.len, seg.path.clone(), seg.seq < self.first_own_seq);
            let Some(cursor) = self.cursor.as_mut() else {
                break;
            };
            match read_record(cursor, len, &path)? {
                Some((binary, recv_ns, data)) => {
                    let record = (HEADER + data.len()) as u64;
                    self.unread = self.unread.saturating_sub(record);
                    bytes += data.len();
                    self.oldest_recv_ns = Some(recv_ns);
                    self.inherited_frames += u64::from(inherited);
                    out.push(RawFrame {
                        feed: Arc::clone(&self.feed),
                        venue: self.venue,
                        recv_ns,
                        binary,
                        data,
                    });
                }
                None if writing => {
                    // Read up to what is written (the segment written is the
                    // last one): the spool is empty now.
                    self.unread = 0;
                    self.finish_front()?;
                    break;
                }
                None => {
                    let rest = len.saturating_sub(cursor.offset);
                    if rest > 0 {
                        // Cut short (the process died writing it) or corrupt.
                        tracing::warn!(
                            feed = %self.feed,
                            path = %path.display(),
                            bytes = rest,
                            "a spool segment ends in a record cut short or damaged: its rest is skipped"
                        );
                        self.lost_bytes += rest;
                        self.unread = self.unread.saturating_sub(rest);
                    }
                    self.finish_front()?;
                }
            }
        }
        Ok(out)
    }

    /// The front segment was read to its end: keep it as `.done` for a while.
    fn finish_front(&mut self) -> Result<(), SpoolError> {
        self.cursor = None;
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        if self.writer.as_ref().is_some_and(|w| w.seq == seg.seq) {
            // Everything in it was read: nothing of it needs the disk.
            self.seal(false)?;
        }
        let done = segment_path(&self.dir, seg.seq, SPOOL_DONE_EXT);
        if seg.path != done {
            std::fs::rename(&seg.path, &done).map_err(io(&seg.path))?;
        }
        self.done.push_back((done, seg.len, Instant::now()));
        Ok(())
    }

    /// Drops the front segment from the books (it was set aside).
    fn forget_front(&mut self) {
        self.cursor = None;
        if let Some(seg) = self.segments.pop_front() {
            let unread = seg.len.saturating_sub(MAGIC.len() as u64);
            self.unread = self.unread.saturating_sub(unread);
            self.release(seg.len);
        }
    }

    fn release(&mut self, bytes: u64) {
        self.held = self.held.saturating_sub(bytes);
        let _ = self
            .budget
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    /// Housekeeping, called often (every few ms while frames wait): appends
    /// reach the kernel; once a second what was written is synced to disk (on
    /// a blocking thread: the feed keeps reading); `.done` segments past
    /// their keeping time are deleted (all but the newest while frames
    /// still wait).
    pub fn tick(&mut self) -> Result<(), SpoolError> {
        if let Some(w) = self.writer.as_mut() {
            let path = segment_path(&self.dir, w.seq, SPOOL_SEGMENT_EXT);
            w.file.flush().map_err(io(&path))?;
            let idle = self.syncing.as_ref().is_none_or(|h| h.is_finished());
            if w.dirty && idle && self.last_sync.elapsed() >= Duration::from_millis(900) {
                if let Some(h) = self.syncing.take() {
                    // Finished, so one poll gives its outcome.
                    if let Some(Ok(Err(e))) = futures_util::FutureExt::now_or_never(h) {
                        tracing::error!(feed = %self.feed, error = %e, "spool sync failed");
                    }
                }
                let file = w.file.get_ref().try_clone().map_err(io(&path))?;
                self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
                self.last_sync = Instant::now();
                w.dirty = false;
            }
        }
        while let Some((path, len, at)) = self.done.front() {
            let expired = at.elapsed() >= KEEP_DONE;
            if !(expired || self.done.len() > 1) {
                break;
            }
            let (path, len) = (path.clone(), *len);
            std::fs::remove_file(&path).map_err(io(&path))?;
            self.done.pop_front();
            self.release(len);
        }
        Ok(())
    }

    /// Everything read was handed on and written (a clean end): the kept
    /// `.done` segments can go.
    pub fn forget_done(&mut self) -> Result<(), SpoolError> {
        while let Some((path, len, _)) = self.done.pop_front() {
            std::fs::remove_file(&path).map_err(io(&path))?;
            self.release(len);
        }
        Ok(())
    }

    /// Bytes the spool's files hold.
    pub fn held_bytes(&self) -> u64 {
        self.held
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // What was spooled reaches the disk before the lock goes.
        if let Some(mut w) = self.writer.take() {
            let synced = w.file.flush().and_then(|()| w.file.get_ref().sync_data());
            if let Err(e) = synced {
                tracing::error!(feed = %self.feed, error = %e, "spool could not be synced at exit");
            }
        }
    }
}

/// Reads the record at the cursor from a segment of `len` bytes; `None` when
/// no whole, sound record is there.
fn read_record(
    c: &mut Cursor,
    len: u64,
    path: &Path,
) -> Result<Option<(bool, i64, Bytes)>, SpoolError> {
    let Some(header) = window(c, HEADER, len, path)? else {
        return Ok(None);
    };
    let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let binary = header[8] != 0;
    let mut recv = [0u8; 8];
    recv.copy_from_slice(&header[9..17]);
    let recv_ns = i64::from_le_bytes(recv);
    if size as u64 > tickwire_core::feeds::MAX_FRAME_BYTES {
        return Ok(None);
    }
    let Some(record) = window(c, HEADER + size, len, path)? else {
        return Ok(None);
    };
    let data = &record[HEADER..];
    let mut h = crc32fast::Hasher::new();
    h.update(&record[8..HEADER]);
    h.update(data);
    if h.finalize() != crc {
        return Ok(None);
    }
    let data = Bytes::copy_from_slice(data);
    c.offset += (HEADER + size) as u64;
    Ok(Some((binary, recv_ns, data)))
}

/// `n` bytes at the cursor's offset, read into its window when needed.
fn window<'a>(
    c: &'a mut Cursor,
    n: usize,
    len: u64,
    path: &Path,
) -> Result<Option<&'a [u8]>, SpoolError> {
    if c.offset + n as u64 > len {
        return Ok(None);
    }
    let start = (c.offset - c.buf_at) as usize;
    if c.offset < c.buf_at || start + n > c.buf.len() {
        let want = n.max(READ_CHUNK).min((len - c.offset) as usize);
        c.buf.resize(want, 0);
        c.file
            .read_exact_at(&mut c.buf, c.offset)
            .map_err(io(path))?;
        c.buf_at = c.offset;
    }
    let start = (c.offset - c.buf_at) as usize;
    Ok(Some(&c.buf[start..start + n]))
}

/// What waits in the spool directory `cfg.dir` (for `tickwire health`, which
/// may run beside a process or after one died): per feed directory, the
/// bytes and number of `.seg` segments not yet read.
pub fn pending(cfg: &SpoolConfig) -> Vec<(String, u64, usize)> {
    let mut out = Vec::new();
    let Ok(feeds) = std::fs::read_dir(&cfg.dir) else {
        return out;
    };
    for feed in feeds.flatten() {
        let Ok(files) = std::fs::read_dir(feed.path()) else {
            continue;
        };
        let (mut bytes, mut n) = (0, 0);
        for f in files.flatten() {
            if segment_name(&f.path()).is_some_and(|(_, done)| !done) {
                let len = f.metadata().map_or(0, |m| m.len());
                bytes += len.saturating_sub(MAGIC.len() as u64);
                n += 1;
            }
        }
        if bytes > 0 {
            out.push((feed.file_name().to_string_lossy().into_owned(), bytes, n));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue(name: &str) -> tickwire_core::FeedVenue {
        tickwire_parse::VENUES
            .get(name)
            .expect("a registered venue")
    }

    fn cfg(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: 64 << 10,
        }
    }

    fn frame(i: usize) -> RawFrame {
        RawFrame {
            feed: "bn".into(),
            venue: venue("binance"),
            recv_ns: 1_700_000_000_000_000_000 + i as i64,
            binary: i.is_multiple_of(7),
            data: Bytes::from(format!(
                "{{\"frame\":{i},\"pad\":\"{}\"}}",
                "x".repeat(i % 300)
            )),
        }
    }

    fn open(c: &SpoolConfig) -> Spool {
        Spool::open(c, "bn".into(), venue("binance"), Arc::default()).unwrap()
    }

    fn take_all(s: &mut Spool) -> Vec<RawFrame> {
        let mut all = Vec::new();
        loop {
            let got = s.take(100, 1 << 20).unwrap();
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    fn same(a: &RawFrame, b: &RawFrame) -> bool {
        a.recv_ns == b.recv_ns && a.binary == b.binary && a.data == b.data
    }

    fn files(dir: &Path, ext: &str) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == ext))
            })
            .count()
    }

    #[tokio::test]
    async fn frames_come_back_in_order_across_segments_while_more_are_written() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(tmp.path(), 1 << 30);
        let mut s = open(&c);
        assert!(s.is_empty());
        let frames: Vec<RawFrame> = (0..3000).map(frame).collect();
        let mut back = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            assert!(s.append(f).unwrap());
            // Read while writing, as the feed does.
            if i % 500 == 499 {
                back.extend(s.take(300, 1 << 20).unwrap());
            }
        }
        let dir = feed_dir(&c, "bn");
        assert!(files(&dir, "seg") > 3, "several segments");
        assert!(s
            .oldest_age_ns(1_700_000_000_000_000_000 + 10_000)
            .is_some());
        back.extend(take_all(&mut s));
        assert_eq!(back.len(), frames.len());
        assert!(back.iter().zip(&frames).all(|(a, b)| same(a, b)));
        assert!(s.is_empty());
        assert_eq!(s.unread_bytes(), 0);
        assert_eq!(files(&dir, "seg"), 0, "every segment read to its end");
        // Only the newest `.done` is kept while the run goes on.
        s.tick().unwrap();
        assert_eq!(files(&dir, "done"), 1);
        s.forget_done().unwrap();
        assert_eq!(files(&dir, "done"), 0);
        assert_eq!(s.held_bytes(), 0);
        // Spooling again after empty starts a fresh segment.
        assert!(s.append(&frames[5]).unwrap());
        assert!(same(&take_all(&mut s)[0], &frames[5]));
    }

    #[tokio::test]
    async fn a_new_process_hands_on_what_the_last_one_left_first_and_knows_them_as_inherited() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(tmp.path(), 1 << 30);
        let frames: Vec<RawFrame> = (0..1000).map(frame).collect();
        {
            let mut s = open(&c);
            for f in &frames {
                s.append(f).unwrap();
            }
            // 200 handed on before it "died": they stay until known written.
            assert_eq!(s.take(200, 1 << 30).unwrap().len(), 200);
        }
        let mut s = open(&c);
        assert!(!s.is_empty());
        let got = take_all(&mut s);
        // Read again from the start of the segment it was in: nothing skipped.
        assert!(got.len() >= 800 && got.len() <= 1000, "{}", got.len());
        let first = frames.len() - got.len();
        assert!(got.iter().zip(&frames[first..]).all(|(a, b)| same(a, b)));
        assert_eq!(s.inherited_frames, got.len() as u64);
        assert_eq!(pending(&c), Vec::new());
    }

    #[tokio::test]
    async fn a_record_cut_short_ends_its_segment_and_a_damaged_one_is_not_handed_on() {
        let tmp = tempfile::tempdir().unwrap();
        let c = SpoolConfig {
            segment_bytes: 1 << 30,
            ..cfg(tmp.path(), 1 << 30)
        };
        let frames: Vec<RawFrame> = (0..50).map(frame).collect();
        {
            let mut s = open(&c);
            for f in &frames {
                s.append(f).unwrap();
            }
        }
        let dir = feed_dir(&c, "bn");
        let seg = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        assert_eq!(pending(&c), vec![("bn".to_string(), len - 8, 1)]);
        // The process died in the middle of writing the last record.
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 5).unwrap();
        drop(f);
        let mut s = open(&c);
        let got = take_all(&mut s);
        assert_eq!(got.len(), 49);
        assert!(got.iter().zip(&frames).all(|(a, b)| same(a, b)));
        assert!(s.lost_bytes > 0);
        assert!(s.is_empty());
        s.forget_done().unwrap();
        drop(s);
        // A flipped byte inside a record: it and what follows in the segment
        // are not handed on as if sound.
        let mut s = open(&c);
        for f in &frames {
            s.append(f).unwrap();
        }
        drop(s);
        let seg = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let mut s = open(&c);
        let got = take_all(&mut s);
        let good = got.iter().zip(&frames).filter(|(a, b)| same(a, b)).count();
        assert_eq!(good, got.len(), "only sound records come back, in order");
        assert!(got.len() < 50 && got.len() > 10, "{}", got.len());
    }

    #[tokio::test]
    async fn max_bytes_is_shared_by_the_feeds_and_a_spool_has_one_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(tmp.path(), 4096);
        let budget = Arc::new(SpoolBudget::default());
        let mut a = Spool::open(&c, "a".into(), venue("binance"), Arc::clone(&budget)).unwrap();
        let mut b = Spool::open(&c, "b".into(), venue("okx"), Arc::clone(&budget)).unwrap();
        let f = frame(100);
        let (mut kept, mut refused) = (0, 0);
        for i in 0..40 {
            let s = if i % 2 == 0 { &mut a } else { &mut b };
            if s.append(&f).unwrap() {
                kept += 1;
            } else {
                refused += 1;
            }
        }
        assert!(kept > 0 && refused > 0);
        assert!(budget.bytes.load(Ordering::Relaxed) <= 4096);
        match Spool::open(&c, "a".into(), venue("binance"), Arc::default()) {
            Err(SpoolError::Locked(dir)) => assert!(dir.ends_with("a")),
            other => panic!("a second owner: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slot_touches_no_disk_until_a_frame_must_be_spooled() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(&tmp.path().join("spool"), 1 << 30);
        let mut slot = SpoolSlot::new(&c, "bn".into(), venue("binance"), Arc::default()).unwrap();
        assert!(slot.get().is_none());
        assert!(!c.dir.exists(), "nothing created before it is needed");
        assert!(slot.open().unwrap().append(&frame(1)).unwrap());
        drop(slot);
        // What it left is opened (and locked) at once by the next one.
        let mut next = SpoolSlot::new(&c, "bn".into(), venue("binance"), Arc::default()).unwrap();
        let spool = next.get().expect("opened at start: frames were left");
        assert!(same(&take_all(spool)[0], &frame(1)));
        assert!(matches!(
            SpoolSlot::new(&c, "bn".into(), venue("binance"), Arc::default()),
            Err(SpoolError::Locked(_))
        ));
    }
}
