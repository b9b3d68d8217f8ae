//! Reading whole records out of one segment file, without any lock held.

use std::fs::File;
use std::io;
use std::path::Path;

use bytes::Bytes;

use crate::error::ReadError;
use crate::format::{frame_crc, parse_frame_header, FRAME_HEADER_LEN};
use crate::position::Position;

/// Smallest read from a segment file: small budgets still read records in bulk.
const MIN_CHUNK: u64 = 64 << 10;

/// A record read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Where the record starts.
    pub position: Position,
    /// Where the record after it starts: commit up to here once this record is stored.
    pub next: Position,
    /// The bytes given to [`Wal::append`](crate::Wal::append).
    pub payload: Bytes,
}

/// How far [`read_records`] got.
pub struct Progress {
    /// Offset in the segment after the last record read.
    pub offset: u64,
    /// The payload budget ran out before `end`.
    pub budget_exhausted: bool,
}

/// A segment being read: its file, and its path and number for positions and errors.
pub struct SegmentFile<'a> {
    /// The open segment file.
    pub file: &'a File,
    /// Its path.
    pub path: &'a Path,
    /// Its segment number.
    pub segment: u64,
}

/// The payload budget of one [`Wal::read`](crate::Wal::read) call.
pub struct Budget {
    /// Payload bytes the call may return (at least one record regardless).
    pub max: usize,
    /// Payload bytes taken so far.
    pub taken: usize,
}

impl Budget {
    fn admits(&self, len: usize, out: &[Record]) -> bool {
        out.is_empty() || self.taken.saturating_add(len) <= self.max
    }
}

/// Reads the records of `segment` from `start` up to `end` (both record boundaries known to
/// hold whole, recovered or acknowledged records) into `out`, while `budget` lasts.
pub fn read_records(
    segment: &SegmentFile<'_>,
    start: u64,
    end: u64,
    budget: &mut Budget,
    out: &mut Vec<Record>,
) -> Result<Progress, ReadError> {
    let mut offset = start;
    while offset < end {
        if !out.is_empty() && budget.taken >= budget.max {
            return Ok(Progress {
                offset,
                budget_exhausted: true,
            });
        }
        let remaining = budget.max.saturating_sub(budget.taken) as u64;
        let want = (end - offset).min(remaining.saturating_add(FRAME_HEADER_LEN).max(MIN_CHUNK));
        let chunk = read_at(segment, offset, want)?;
        let mut at = 0;
        while chunk.len() - at >= FRAME_HEADER_LEN as usize {
            let (len, crc) = parse_frame_header(chunk[at..at + 8].try_into().expect("8 bytes"));
            let frame_end = at + FRAME_HEADER_LEN as usize + len as usize;
            if frame_end > chunk.len() {
                break;
            }
            if !budget.admits(len as usize, out) {
                return Ok(Progress {
                    offset: offset + at as u64,
                    budget_exhausted: true,
                });
            }
            let payload = chunk.slice(at + FRAME_HEADER_LEN as usize..frame_end);
            let position = Position::new(segment.segment, offset + at as u64);
            if frame_crc(len, &payload) != crc {
                return Err(corrupt(segment, position));
            }
            out.push(Record {
                position,
                next: Position::new(segment.segment, offset + frame_end as u64),
                payload,
            });
            budget.taken += len as usize;
            at = frame_end;
        }
        if at == 0 {
            // The frame at `offset` is larger than the chunk: read it on its own.
            let position = Position::new(segment.segment, offset);
            if end - offset < FRAME_HEADER_LEN {
                return Err(corrupt(segment, position));
            }
            let (len, crc) = parse_frame_header(chunk[..8].try_into().expect("8 bytes"));
            let frame_len = FRAME_HEADER_LEN + u64::from(len);
            if frame_len > end - offset {
                return Err(corrupt(segment, position));
            }
            if !budget.admits(len as usize, out) {
                return Ok(Progress {
                    offset,
                    budget_exhausted: true,
                });
            }
            let payload = read_at(segment, offset + FRAME_HEADER_LEN, u64::from(len))?;
            if frame_crc(len, &payload) != crc {
                return Err(corrupt(segment, position));
            }
            out.push(Record {
                position,
                next: Position::new(segment.segment, offset + frame_len),
                payload,
            });
            budget.taken += len as usize;
            at = frame_len as usize;
        }
        offset += at as u64;
    }
    Ok(Progress {
        offset,
        budget_exhausted: false,
    })
}

fn corrupt(segment: &SegmentFile<'_>, position: Position) -> ReadError {
    ReadError::Corrupt {
        position,
        path: segment.path.to_path_buf(),
    }
}

fn read_at(segment: &SegmentFile<'_>, offset: u64, len: u64) -> Result<Bytes, ReadError> {
    let mut buf = vec![0; len as usize];
    read_exact_at(segment.file, &mut buf, offset).map_err(|source| ReadError::Io {
        path: segment.path.to_path_buf(),
        source,
    })?;
    Ok(Bytes::from(buf))
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}
