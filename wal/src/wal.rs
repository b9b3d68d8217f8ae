//! The log itself: append, read, wait, commit.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::{AppendError, CommitError, OpenError, ReadError};
use crate::format::{self, FRAME_HEADER_LEN, MAX_RECORD_BYTES, SEGMENT_HEADER_LEN};
use crate::lock::DirLock;
use crate::options::{SyncPolicy, WalOptions};
use crate::position::Position;
use crate::read::{self, Budget, Record, SegmentFile};
use crate::recovery;
use crate::stats::{RecoveryReport, WalStats};

/// A write-ahead log in one directory: many appenders, one consumer that reads in order
/// and commits what it has stored.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`. The methods other than
/// [`wait_for_append`](Wal::wait_for_append) do blocking file I/O: with
/// [`SyncPolicy::Never`] an append is a write into the page cache (microseconds); with
/// [`SyncPolicy::Always`] it waits for the disk, so call it from `spawn_blocking` there.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use tern_wal::{Wal, WalOptions};
///
/// let wal = Wal::open(dir.path(), WalOptions::default())?;
/// wal.append(b"span batch 1")?; // acknowledge the request only after this returned
/// wal.append(b"span batch 2")?;
///
/// // The store writer: read from the checkpoint, store, then commit.
/// let records = wal.read(wal.checkpoint(), 4 << 20)?;
/// assert_eq!(records.len(), 2);
/// // ... insert the records into the store ...
/// wal.commit(records.last().unwrap().next)?;
/// assert_eq!(wal.stats().used_bytes, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    opts: WalOptions,
    /// The segment being appended to. Held across the one write of an append.
    writer: Mutex<Writer>,
    /// What readers need: segment lengths and the checkpoint. Held only to copy or update
    /// a few numbers, never across file I/O.
    shared: Mutex<Shared>,
    /// Serializes commits (one checkpoint file write at a time).
    commit_lock: Mutex<()>,
    /// With [`SyncPolicy::Always`]: the position up to which the log is synced. Held across
    /// `fdatasync`, so appends waiting behind a sync find themselves covered by it.
    synced: Mutex<Position>,
    /// Woken after every append.
    appended: Notify,
    /// Bytes appended and not yet committed. Grows only under `writer`.
    used: AtomicU64,
    /// The active segment may hold a bad tail (a write or sync failed): the next append
    /// starts a new segment, so nothing acknowledged ever follows the damage.
    roll_requested: AtomicBool,
    appended_records: AtomicU64,
    appended_bytes: AtomicU64,
    rejected_full: AtomicU64,
    committed_bytes: AtomicU64,
    recovery: RecoveryReport,
    /// Dropped last: the directory stays locked until every file above is closed.
    _lock: DirLock,
}

struct Writer {
    segment: u64,
    file: Arc<File>,
    len: u64,
}

struct Shared {
    /// Every segment and the length readers may read, the active segment last. The active
    /// segment's length moves only after a whole record was written.
    segments: BTreeMap<u64, u64>,
    /// The active segment's file, for syncing outside the writer lock.
    active_file: Arc<File>,
    /// First unconsumed position, as last committed.
    checkpoint: Position,
}

/// Why a position cannot be located in the log.
enum Misplaced {
    Consumed,
    PastEnd,
}

impl Shared {
    fn active(&self) -> u64 {
        *self
            .segments
            .keys()
            .next_back()
            .expect("segments are never empty")
    }

    fn end(&self) -> Position {
        let (&segment, &len) = self
            .segments
            .iter()
            .next_back()
            .expect("segments are never empty");
        Position::new(segment, len)
    }

    fn first(&self) -> Position {
        let segment = *self
            .segments
            .keys()
            .next()
            .expect("segments are never empty");
        Position::new(segment, SEGMENT_HEADER_LEN)
    }

    /// The place where the next record at or after `position` starts: past the ends of
    /// sealed segments and past gaps, so that equal places compare equal.
    fn locate(&self, position: Position) -> Result<Position, Misplaced> {
        if position.segment() < self.first().segment() {
            return Err(Misplaced::Consumed);
        }
        let active = self.active();
        if position.segment() > active {
            return Err(Misplaced::PastEnd);
        }
        let mut at = Position::new(
            position.segment(),
            position.offset().max(SEGMENT_HEADER_LEN),
        );
        loop {
            match self.segments.get(&at.segment()) {
                Some(&len) if at.offset() > len => return Err(Misplaced::PastEnd),
                Some(&len) if at.offset() < len || at.segment() == active => return Ok(at),
                _ => {
                    let (&next, _) = self
                        .segments
                        .range(at.segment() + 1..)
                        .next()
                        .expect("the active segment follows");
                    at = Position::new(next, SEGMENT_HEADER_LEN);
                }
            }
        }
    }

    /// Record bytes between two located positions, `from <= to`.
    fn bytes_between(&self, from: Position, to: Position) -> u64 {
        self.segments
            .range(from.segment()..=to.segment())
            .map(|(&segment, &len)| {
                let start = if segment == from.segment() {
                    from.offset()
                } else {
                    SEGMENT_HEADER_LEN
                };
                let stop = if segment == to.segment() {
                    to.offset()
                } else {
                    len
                };
                stop - start
            })
            .sum()
    }

    fn settled_checkpoint(&self) -> Position {
        self.locate(self.checkpoint).unwrap_or(self.checkpoint)
    }
}

impl Wal {
    /// Opens the log in `dir` (created if missing) and recovers it: reads the checkpoint,
    /// checks every segment after it, cuts torn or damaged tails and counts what it cut
    /// (see [`RecoveryReport`]), and starts a new segment for appends.
    ///
    /// Fails with [`OpenError::Locked`] if another `Wal` has the directory open.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal, OpenError> {
        let dir = dir.as_ref();
        opts.validate()?;
        fs::create_dir_all(dir).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = DirLock::acquire(dir)?;
        let recovered = recovery::recover(dir, &opts)?;
        let active_file = Arc::new(recovered.active_file);
        let shared = Shared {
            segments: recovered.segments,
            active_file: Arc::clone(&active_file),
            checkpoint: recovered.checkpoint,
        };
        let end = shared.end();
        let used = shared.bytes_between(recovered.checkpoint, end);
        Ok(Wal {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                opts,
                writer: Mutex::new(Writer {
                    segment: end.segment(),
                    file: active_file,
                    len: end.offset(),
                }),
                shared: Mutex::new(shared),
                commit_lock: Mutex::new(()),
                synced: Mutex::new(end),
                appended: Notify::new(),
                used: AtomicU64::new(used),
                roll_requested: AtomicBool::new(false),
                appended_records: AtomicU64::new(0),
                appended_bytes: AtomicU64::new(0),
                rejected_full: AtomicU64::new(0),
                committed_bytes: AtomicU64::new(0),
                recovery: recovered.report,
                _lock: lock,
            }),
        })
    }

    /// Appends one record and returns where it starts.
    ///
    /// When this returns `Ok`, the record is in the log for every later
    /// [`read`](Wal::read), and it survives the process being killed (with
    /// [`SyncPolicy::Always`], power loss too): acknowledge the data now. Concurrent appends
    /// are ordered by a lock held for one vectored write of the frame (length, checksum,
    /// payload); the checksum is computed before it.
    ///
    /// Fails with [`AppendError::Full`] when the unconsumed bytes would pass
    /// [`WalOptions::max_bytes`], writing nothing.
    pub fn append(&self, payload: &[u8]) -> Result<Position, AppendError> {
        let inner = &*self.inner;
        let max_payload = self.max_payload();
        if payload.len() as u64 > max_payload {
            return Err(AppendError::TooLarge {
                len: payload.len(),
                max: max_payload,
            });
        }
        let frame_len = FRAME_HEADER_LEN + payload.len() as u64;
        let header = format::frame_header(payload);

        let (position, end) = {
            let mut writer = inner.writer.lock();
            let used = inner.used.load(Ordering::Acquire);
            if used + frame_len > inner.opts.max_bytes {
                inner.rejected_full.fetch_add(1, Ordering::Relaxed);
                return Err(AppendError::Full {
                    used,
                    max: inner.opts.max_bytes,
                });
            }
            let segment_full = writer.len > SEGMENT_HEADER_LEN
                && writer.len + frame_len > inner.opts.segment_bytes;
            let roll_requested = inner.roll_requested.swap(false, Ordering::AcqRel);
            if segment_full || roll_requested {
                if let Err(error) = self.roll(&mut writer) {
                    inner
                        .roll_requested
                        .fetch_or(roll_requested, Ordering::AcqRel);
                    return Err(error);
                }
            }
            let position = Position::new(writer.segment, writer.len);
            if let Err(source) = write_frame(&writer.file, &header, payload) {
                // Cut a partial frame off again; if even that fails, leave the segment.
                if writer.file.set_len(writer.len).is_err() {
                    inner.roll_requested.store(true, Ordering::Release);
                }
                return Err(self.append_io_error(writer.segment, source));
            }
            writer.len += frame_len;
            inner.used.fetch_add(frame_len, Ordering::AcqRel);
            inner
                .shared
                .lock()
                .segments
                .insert(writer.segment, writer.len);
            (position, Position::new(writer.segment, writer.len))
        };
        inner.appended.notify_waiters();
        inner.appended_records.fetch_add(1, Ordering::Relaxed);
        inner.appended_bytes.fetch_add(frame_len, Ordering::Relaxed);
        if inner.opts.sync == SyncPolicy::Always {
            self.sync_through(end)?;
        }
        Ok(position)
    }

    /// Reads the records at and after `from`, in log order, until about `max_bytes` of
    /// payload: always at least one record if there is any, never a record appended after
    /// the call began. An empty result means `from` is the end of the log; then
    /// [`wait_for_append`](Wal::wait_for_append) for more.
    ///
    /// `from` must be a record boundary this log handed out ([`Wal::checkpoint`],
    /// [`Record::next`], [`Wal::end`], ...). Reads run without any lock held while appends
    /// go on; they see whole records only.
    pub fn read(&self, from: Position, max_bytes: usize) -> Result<Vec<Record>, ReadError> {
        let mut out = Vec::new();
        let mut budget = Budget {
            max: max_bytes,
            taken: 0,
        };
        let mut at = from;
        // Records appended after the call began are left for the next call.
        let stop = self.end();
        loop {
            let (start, end) = {
                let shared = self.inner.shared.lock();
                let start = shared.locate(at).map_err(|misplaced| match misplaced {
                    Misplaced::Consumed => ReadError::Consumed {
                        from: at,
                        first: shared.first(),
                    },
                    Misplaced::PastEnd => ReadError::OutOfRange {
                        from: at,
                        end: shared.end(),
                    },
                })?;
                let end = if start.segment() == stop.segment() {
                    stop.offset()
                } else {
                    shared.segments[&start.segment()]
                };
                (start, end)
            };
            if start >= stop || start.offset() >= end {
                break;
            }
            let path = format::segment_path(&self.inner.dir, start.segment());
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ReadError::Consumed {
                        from: start,
                        first: self.inner.shared.lock().first(),
                    });
                }
                Err(source) => return Err(ReadError::Io { path, source }),
            };
            let segment = SegmentFile {
                file: &file,
                path: &path,
                segment: start.segment(),
            };
            let progress =
                read::read_records(&segment, start.offset(), end, &mut budget, &mut out)?;
            if progress.budget_exhausted {
                break;
            }
            at = Position::new(start.segment(), progress.offset);
        }
        Ok(out)
    }

    /// Resolves once a record exists at or after `after` (typically the `next` of the last
    /// record read, or the position an empty [`read`](Wal::read) was given). Resolves at once
    /// if there already is one, or if `after` is not a position of this log (then `read`
    /// says why). Never misses an append that happens while it is being set up.
    pub async fn wait_for_append(&self, after: Position) {
        loop {
            let notified = self.inner.appended.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.has_record_at_or_after(after) {
                return;
            }
            notified.await;
        }
    }

    /// The first position not yet consumed: where the store writer starts reading after
    /// open, and everything before it is gone or about to be.
    pub fn checkpoint(&self) -> Position {
        self.inner.shared.lock().settled_checkpoint()
    }

    /// The position after the last appended record.
    pub fn end(&self) -> Position {
        self.inner.shared.lock().end()
    }

    /// Marks everything before `upto` as consumed (stored for good): persists the checkpoint
    /// atomically (a temporary file renamed over the old one; synced under
    /// [`SyncPolicy::Always`]), frees the bytes before it from the bound, and deletes the
    /// segments before the one `upto` lies in (so `upto` itself stays readable). `upto` must be a record boundary this log handed out
    /// ([`Record::next`], [`Wal::end`], ...). Committing the current checkpoint again is a
    /// no-op; committing before it fails with [`CommitError::Backwards`].
    pub fn commit(&self, upto: Position) -> Result<(), CommitError> {
        let inner = &*self.inner;
        let _serial = inner.commit_lock.lock();
        let (to, bytes) = {
            let shared = inner.shared.lock();
            let from = shared.settled_checkpoint();
            let to = shared.locate(upto).map_err(|misplaced| match misplaced {
                Misplaced::Consumed => CommitError::Backwards {
                    upto,
                    checkpoint: from,
                },
                Misplaced::PastEnd => CommitError::OutOfRange {
                    upto,
                    end: shared.end(),
                },
            })?;
            if to < from {
                return Err(CommitError::Backwards {
                    upto,
                    checkpoint: from,
                });
            }
            if to == from {
                return Ok(());
            }
            (to, shared.bytes_between(from, to))
        };
        let durable = inner.opts.sync == SyncPolicy::Always;
        format::write_checkpoint(&inner.dir, to, durable).map_err(|source| CommitError::Io {
            path: format::checkpoint_path(&inner.dir),
            source,
        })?;
        let consumed: Vec<u64> = {
            let mut shared = inner.shared.lock();
            shared.checkpoint = to;
            // Delete up to the segment `upto` names, not the one it settles in: a consumer
            // holding `upto` (the end of a sealed segment) can still read from it.
            let consumed: Vec<u64> = shared
                .segments
                .range(..upto.segment())
                .map(|(&id, _)| id)
                .collect();
            for id in &consumed {
                shared.segments.remove(id);
            }
            consumed
        };
        inner.used.fetch_sub(bytes, Ordering::AcqRel);
        inner.committed_bytes.fetch_add(bytes, Ordering::Relaxed);
        for id in consumed {
            let path = format::segment_path(&inner.dir, id);
            if let Err(error) = fs::remove_file(&path) {
                // The checkpoint moved on: the next open removes the file.
                tracing::warn!(path = %path.display(), %error, "wal could not remove a consumed segment");
            }
        }
        Ok(())
    }

    /// A snapshot of the figures for self-metrics.
    pub fn stats(&self) -> WalStats {
        let inner = &*self.inner;
        let (segments, disk_bytes, checkpoint, end) = {
            let shared = inner.shared.lock();
            (
                shared.segments.len() as u64,
                shared.segments.values().sum(),
                shared.settled_checkpoint(),
                shared.end(),
            )
        };
        WalStats {
            used_bytes: inner.used.load(Ordering::Acquire),
            max_bytes: inner.opts.max_bytes,
            segments,
            disk_bytes,
            checkpoint,
            end,
            appended_records: inner.appended_records.load(Ordering::Relaxed),
            appended_bytes: inner.appended_bytes.load(Ordering::Relaxed),
            rejected_full: inner.rejected_full.load(Ordering::Relaxed),
            committed_bytes: inner.committed_bytes.load(Ordering::Relaxed),
            recovery: inner.recovery.clone(),
        }
    }

    /// What [`open`](Wal::open) found on disk and what it cut away.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The largest payload [`append`](Wal::append) takes: [`MAX_RECORD_BYTES`], or less if
    /// `max_bytes` is smaller.
    pub fn max_payload(&self) -> u64 {
        (MAX_RECORD_BYTES as u64).min(self.inner.opts.max_bytes - FRAME_HEADER_LEN)
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.inner.opts
    }

    fn has_record_at_or_after(&self, from: Position) -> bool {
        let shared = self.inner.shared.lock();
        match shared.locate(from) {
            Ok(at) => at < shared.end(),
            Err(_) => true,
        }
    }

    /// Seals the active segment and starts the next one. Called under the writer lock.
    fn roll(&self, writer: &mut Writer) -> Result<(), AppendError> {
        let inner = &*self.inner;
        let durable = inner.opts.sync == SyncPolicy::Always;
        if durable {
            writer
                .file
                .sync_data()
                .map_err(|source| self.append_io_error(writer.segment, source))?;
        }
        let segment = writer.segment + 1;
        let file = format::create_segment(&inner.dir, segment, durable)
            .map_err(|source| self.append_io_error(segment, source))?;
        let file = Arc::new(file);
        {
            let mut shared = inner.shared.lock();
            shared.segments.insert(segment, SEGMENT_HEADER_LEN);
            shared.active_file = Arc::clone(&file);
        }
        *writer = Writer {
            segment,
            file,
            len: SEGMENT_HEADER_LEN,
        };
        Ok(())
    }

    /// Makes the log durable up to `end` with one `fdatasync` shared by every append that
    /// waits meanwhile. A sealed segment was synced when it was sealed.
    fn sync_through(&self, end: Position) -> Result<(), AppendError> {
        let inner = &*self.inner;
        let mut synced = inner.synced.lock();
        if *synced >= end {
            return Ok(());
        }
        let (file, reached) = {
            let shared = inner.shared.lock();
            (Arc::clone(&shared.active_file), shared.end())
        };
        if reached.segment() > end.segment() {
            *synced = end;
            return Ok(());
        }
        if let Err(source) = file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages: never let an
            // acknowledged record follow them in this segment.
            inner.roll_requested.store(true, Ordering::Release);
            return Err(self.append_io_error(end.segment(), source));
        }
        *synced = reached;
        Ok(())
    }

    fn append_io_error(&self, segment: u64, source: io::Error) -> AppendError {
        AppendError::Io {
            path: format::segment_path(&self.inner.dir, segment),
            source,
        }
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// Writes header and payload with as few `writev` calls as the kernel allows (one, unless
/// interrupted or short).
fn write_frame(mut file: &File, header: &[u8], payload: &[u8]) -> io::Result<()> {
    let mut slices = [IoSlice::new(header), IoSlice::new(payload)];
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(segments: &[(u64, u64)]) -> Shared {
        let file = tempfile::tempfile().unwrap();
        Shared {
            segments: segments.iter().copied().collect(),
            active_file: Arc::new(file),
            checkpoint: Position::new(segments[0].0, SEGMENT_HEADER_LEN),
        }
    }

    fn located(shared: &Shared, segment: u64, offset: u64) -> Option<Position> {
        shared.locate(Position::new(segment, offset)).ok()
    }

    #[test]
    fn locate_moves_past_sealed_ends_and_gaps_but_not_past_the_active_end() {
        let s = shared(&[(2, 100), (3, 16), (5, 40)]);
        assert_eq!(located(&s, 2, 50), Some(Position::new(2, 50)));
        assert_eq!(located(&s, 2, 100), Some(Position::new(5, 16)));
        assert_eq!(located(&s, 4, 16), Some(Position::new(5, 16)));
        assert_eq!(located(&s, 5, 40), Some(Position::new(5, 40)));
        assert_eq!(located(&s, 2, 0), Some(Position::new(2, 16)));
    }

    #[test]
    fn locate_refuses_deleted_segments_and_places_past_the_end() {
        let s = shared(&[(2, 100), (5, 40)]);
        assert!(matches!(
            s.locate(Position::new(1, 16)),
            Err(Misplaced::Consumed)
        ));
        assert!(matches!(
            s.locate(Position::new(2, 101)),
            Err(Misplaced::PastEnd)
        ));
        assert!(matches!(
            s.locate(Position::new(5, 41)),
            Err(Misplaced::PastEnd)
        ));
        assert!(matches!(
            s.locate(Position::new(6, 16)),
            Err(Misplaced::PastEnd)
        ));
    }

    #[test]
    fn bytes_between_counts_record_bytes_only() {
        let s = shared(&[(2, 100), (3, 16), (5, 40)]);
        let at = |segment, offset| Position::new(segment, offset);
        assert_eq!(s.bytes_between(at(2, 16), at(2, 100)), 84);
        assert_eq!(s.bytes_between(at(2, 50), at(5, 30)), 50 + 14);
        assert_eq!(s.bytes_between(at(5, 40), at(5, 40)), 0);
    }

    #[test]
    fn requested_roll_starts_a_new_segment_for_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.append(b"kept").unwrap();
        let before = wal.end();
        wal.inner.roll_requested.store(true, Ordering::Release);
        let after_roll = wal.append(b"next").unwrap();
        assert_eq!(
            after_roll,
            Position::new(before.segment() + 1, SEGMENT_HEADER_LEN)
        );
        let records = wal.read(wal.checkpoint(), usize::MAX).unwrap();
        assert_eq!(records.len(), 2);
    }
}
