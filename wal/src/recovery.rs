//! What [`Wal::open`](crate::Wal::open) does to a directory before the first append.
//!
//! Rules, in order:
//! 1. A leftover `checkpoint.tmp` (a commit killed before its rename) is removed; the
//!    `checkpoint` file holds the first unconsumed position. If it is missing or damaged
//!    while segments exist, replay starts at the oldest segment (at-least-once, never loss)
//!    and the report says `checkpoint_lost`.
//! 2. Segments wholly before the checkpoint were consumed (a commit killed before deleting
//!    them): they are removed.
//! 3. Every other segment is read through and checked frame by frame. A segment is cut at
//!    its first bad frame (incomplete, impossible length, or checksum mismatch): the frames
//!    before it are kept, the bytes from it to the end of the file are truncated away and
//!    counted. In the last segment that is the torn tail of a killed write. In an older
//!    segment it is damage: the rest of that segment cannot be framed again and is lost,
//!    but later segments are still replayed. A segment whose header is missing or wrong
//!    is removed whole, and so is a segment without records.
//! 4. The checkpoint is moved past segment ends and gaps, clamped into what survived,
//!    and written back; appends go to a new segment after the last one, so recovered
//!    segments are never written again.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::OpenError;
use crate::format::{
    self, frame_crc, is_segment_header, parse_frame_header, FRAME_HEADER_LEN, MAX_RECORD_BYTES,
    SEGMENT_HEADER_LEN,
};
use crate::options::{SyncPolicy, WalOptions};
use crate::position::Position;
use crate::stats::{Damage, RecoveryReport, Truncation};

/// The state of a directory after recovery, ready for appends.
pub struct Recovered {
    /// Every segment and its length in bytes, the new (empty) active segment last.
    pub segments: BTreeMap<u64, u64>,
    /// The new segment that appends go to, opened for appending.
    pub active_file: File,
    /// The first unconsumed position, past segment ends and gaps.
    pub checkpoint: Position,
    /// What was found and cut.
    pub report: RecoveryReport,
}

/// Recovers `dir` (rules in the module docs). The caller holds the directory lock.
pub fn recover(dir: &Path, opts: &WalOptions) -> Result<Recovered, OpenError> {
    let durable = opts.sync == SyncPolicy::Always;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OpenError::Io { path, source }
    };

    let temp = format::checkpoint_temp_path(dir);
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&temp)(e)),
        _ => {}
    }
    let stored = read_checkpoint(dir)?;

    let mut report = RecoveryReport::default();
    let mut segments = BTreeMap::new();
    let ids = list_segments(dir)?;
    report.checkpoint_lost = stored.is_none() && !ids.is_empty();
    let last = ids.last().copied().unwrap_or(0);
    for id in ids {
        let path = format::segment_path(dir, id);
        if stored.is_some_and(|cp| id < cp.segment()) {
            fs::remove_file(&path).map_err(io_err(&path))?;
            continue;
        }
        let count_from = match stored {
            Some(cp) if cp.segment() == id => cp.offset(),
            _ => 0,
        };
        let scan = scan_segment(&path, id, count_from).map_err(io_err(&path))?;
        report.records += scan.records;
        report.bytes += scan.bytes;
        if let Some(damage) = scan.damage {
            let cut = Truncation {
                segment: id,
                offset: scan.valid_len,
                bytes: scan.file_len - scan.valid_len,
                damage,
            };
            tracing::warn!(
                segment = cut.segment,
                offset = cut.offset,
                bytes = cut.bytes,
                damage = ?cut.damage,
                "wal segment cut at damaged frame"
            );
            report.truncated_bytes += cut.bytes;
            report.truncations.push(cut);
            if damage == Damage::BadSegmentHeader {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            truncate(&path, scan.valid_len, durable).map_err(io_err(&path))?;
        }
        if scan.valid_len == SEGMENT_HEADER_LEN {
            // No records (a run that appended nothing): the place is the same as the start
            // of the next segment, so a crash loop does not pile up empty files.
            fs::remove_file(&path).map_err(io_err(&path))?;
            continue;
        }
        report.segments += 1;
        segments.insert(id, scan.valid_len);
    }

    let active = (last + 1).max(stored.map_or(1, |cp| cp.segment() + 1));
    segments.insert(active, SEGMENT_HEADER_LEN);
    let first = *segments
        .keys()
        .next()
        .expect("the active segment is in the map");
    let checkpoint = settle_checkpoint(
        &segments,
        stored.unwrap_or(Position::new(first, SEGMENT_HEADER_LEN)),
    );
    let consumed: Vec<u64> = segments
        .range(..checkpoint.segment())
        .map(|(&id, _)| id)
        .collect();
    for id in consumed {
        segments.remove(&id);
        let path = format::segment_path(dir, id);
        fs::remove_file(&path).map_err(io_err(&path))?;
    }

    format::write_checkpoint(dir, checkpoint, durable)
        .map_err(io_err(&format::checkpoint_path(dir)))?;
    let active_path = format::segment_path(dir, active);
    let active_file = format::create_segment(dir, active, durable).map_err(io_err(&active_path))?;
    if report.records > 0 || report.truncated_bytes > 0 {
        tracing::info!(
            records = report.records,
            bytes = report.bytes,
            truncated_bytes = report.truncated_bytes,
            checkpoint = %checkpoint,
            "wal recovered"
        );
    }
    Ok(Recovered {
        segments,
        active_file,
        checkpoint,
        report,
    })
}

/// Moves `position` onto a place where a record can start: into an existing segment (past
/// gaps), inside its length, and past the ends of segments that are not the last one.
pub fn settle_checkpoint(segments: &BTreeMap<u64, u64>, position: Position) -> Position {
    let mut next = segments.range(position.segment()..);
    let Some((&id, &len)) = next.next() else {
        let (&id, &len) = segments
            .iter()
            .next_back()
            .expect("segments are never empty");
        return Position::new(id, len);
    };
    let mut settled = if id == position.segment() {
        Position::new(id, position.offset().clamp(SEGMENT_HEADER_LEN, len))
    } else {
        Position::new(id, SEGMENT_HEADER_LEN)
    };
    let mut len = len;
    for (&id, &next_len) in next {
        if settled.offset() < len {
            break;
        }
        settled = Position::new(id, SEGMENT_HEADER_LEN);
        len = next_len;
    }
    settled
}

fn read_checkpoint(dir: &Path) -> Result<Option<Position>, OpenError> {
    let path = format::checkpoint_path(dir);
    match fs::read(&path) {
        Ok(bytes) => {
            let decoded = format::decode_checkpoint(&bytes);
            if decoded.is_none() {
                tracing::warn!(path = %path.display(), "wal checkpoint unreadable, replaying from the oldest segment");
            }
            Ok(decoded)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OpenError::Io { path, source }),
    }
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, OpenError> {
    let io_err = |source| OpenError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(format::parse_segment_name)
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn truncate(path: &Path, len: u64, durable: bool) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    if durable {
        file.sync_all()?;
    }
    Ok(())
}

/// What reading a segment through found.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    /// Bytes of header and whole, valid frames from the start: where the segment ends.
    valid_len: u64,
    /// Bytes in the file.
    file_len: u64,
    /// Why the scan stopped before `file_len`.
    damage: Option<Damage>,
    /// Valid records starting at or after the `count_from` offset.
    records: u64,
    /// Their bytes, frames included.
    bytes: u64,
}

/// Reads segment `segment` at `path` through and checks every frame.
fn scan_segment(path: &Path, segment: u64, count_from: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan {
        valid_len: 0,
        file_len,
        damage: None,
        records: 0,
        bytes: 0,
    };
    let mut header = [0; SEGMENT_HEADER_LEN as usize];
    if file_len < SEGMENT_HEADER_LEN || {
        reader.read_exact(&mut header)?;
        !is_segment_header(&header, segment)
    } {
        scan.damage = Some(Damage::BadSegmentHeader);
        return Ok(scan);
    }
    scan.valid_len = SEGMENT_HEADER_LEN;
    let mut payload = Vec::new();
    while scan.valid_len < file_len {
        if file_len - scan.valid_len < FRAME_HEADER_LEN {
            scan.damage = Some(Damage::IncompleteFrame);
            break;
        }
        let mut frame_header = [0; FRAME_HEADER_LEN as usize];
        reader.read_exact(&mut frame_header)?;
        let (len, crc) = parse_frame_header(&frame_header);
        let frame_len = FRAME_HEADER_LEN + u64::from(len);
        if len as usize > MAX_RECORD_BYTES || frame_len > file_len - scan.valid_len {
            scan.damage = Some(Damage::IncompleteFrame);
            break;
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload)?;
        if frame_crc(len, &payload) != crc {
            scan.damage = Some(Damage::ChecksumMismatch);
            break;
        }
        if scan.valid_len >= count_from {
            scan.records += 1;
            scan.bytes += frame_len;
        }
        scan.valid_len += frame_len;
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::format::frame_header;

    fn write_segment(path: &Path, segment: u64, payloads: &[&[u8]]) -> Vec<u64> {
        let mut file = File::create(path).unwrap();
        file.write_all(&format::segment_header(segment)).unwrap();
        let mut offsets = Vec::new();
        let mut offset = SEGMENT_HEADER_LEN;
        for payload in payloads {
            offsets.push(offset);
            file.write_all(&frame_header(payload)).unwrap();
            file.write_all(payload).unwrap();
            offset += FRAME_HEADER_LEN + payload.len() as u64;
        }
        offsets.push(offset);
        offsets
    }

    #[test]
    fn scan_counts_records_from_the_given_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let offsets = write_segment(&path, 3, &[b"a", b"bb", b"ccc"]);
        let scan = scan_segment(&path, 3, offsets[1]).unwrap();
        assert_eq!(
            scan,
            Scan {
                valid_len: offsets[3],
                file_len: offsets[3],
                damage: None,
                records: 2,
                bytes: 2 * FRAME_HEADER_LEN + 5,
            }
        );
    }

    #[test]
    fn scan_stops_at_a_frame_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let offsets = write_segment(&path, 1, &[b"first", b"second"]);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(offsets[2] - 2).unwrap();
        let scan = scan_segment(&path, 1, 0).unwrap();
        assert_eq!(scan.valid_len, offsets[1]);
        assert_eq!(scan.damage, Some(Damage::IncompleteFrame));
        assert_eq!(scan.records, 1);
    }

    #[test]
    fn scan_refuses_a_header_of_another_segment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        write_segment(&path, 1, &[b"x"]);
        let scan = scan_segment(&path, 2, 0).unwrap();
        assert_eq!(scan.damage, Some(Damage::BadSegmentHeader));
        assert_eq!(scan.valid_len, 0);
    }

    #[test]
    fn checkpoint_settles_past_segment_ends_and_gaps() {
        let segments = BTreeMap::from([(2, 100), (3, 16), (5, 40), (6, 16)]);
        let settle = |segment, offset| settle_checkpoint(&segments, Position::new(segment, offset));
        assert_eq!(settle(2, 50), Position::new(2, 50));
        assert_eq!(settle(2, 100), Position::new(5, 16));
        assert_eq!(settle(2, 500), Position::new(5, 16));
        assert_eq!(settle(4, 30), Position::new(5, 16));
        assert_eq!(settle(5, 40), Position::new(6, 16));
        assert_eq!(settle(6, 16), Position::new(6, 16));
        assert_eq!(settle(9, 16), Position::new(6, 16));
        assert_eq!(settle(1, 0), Position::new(2, 16));
    }
}
