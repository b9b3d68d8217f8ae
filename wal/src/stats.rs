//! Figures for self-metrics: how full the log is, what went through it, what recovery found.

use serde::Serialize;

use crate::position::Position;

/// A snapshot of the WAL's figures, from [`Wal::stats`](crate::Wal::stats).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalStats {
    /// Bytes appended and not yet committed (record frames included): what counts against
    /// `max_bytes`.
    pub used_bytes: u64,
    /// The bound on `used_bytes`, [`WalOptions::max_bytes`](crate::WalOptions::max_bytes).
    pub max_bytes: u64,
    /// Segment files in the log, the one being appended to included.
    pub segments: u64,
    /// Bytes in the segment files (headers and the committed head of the oldest segment included).
    pub disk_bytes: u64,
    /// First position not yet consumed: where a replay starts.
    pub checkpoint: Position,
    /// Position after the last appended record.
    pub end: Position,
    /// Records appended since open.
    pub appended_records: u64,
    /// Bytes appended since open (frames included).
    pub appended_bytes: u64,
    /// Appends refused with [`AppendError::Full`](crate::AppendError::Full) since open.
    pub rejected_full: u64,
    /// Bytes committed since open.
    pub committed_bytes: u64,
    /// What [`Wal::open`](crate::Wal::open) found and repaired.
    pub recovery: RecoveryReport,
}

/// What [`Wal::open`](crate::Wal::open) found on disk and what it cut away.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Unconsumed records found, to be replayed from the checkpoint.
    pub records: u64,
    /// Bytes of those records (frames included).
    pub bytes: u64,
    /// Segment files that held data (before the new segment was started).
    pub segments: u64,
    /// Total bytes cut off, the sum over `truncations`.
    pub truncated_bytes: u64,
    /// Every cut, in log order. A torn tail from a killed write shows as one
    /// [`Damage::IncompleteFrame`] at the end of the last segment.
    pub truncations: Vec<Truncation>,
    /// The checkpoint file was missing or unreadable while segments existed: the replay
    /// starts at the oldest segment and may deliver records that were consumed before.
    pub checkpoint_lost: bool,
}

/// One cut made by recovery: the segment keeps its bytes before `offset`, the rest is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Truncation {
    /// The segment cut.
    pub segment: u64,
    /// Where the first bad frame starts; the segment now ends here.
    pub offset: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// What was wrong at `offset`.
    pub damage: Damage,
}

/// What recovery found wrong at the point where it cut a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// The segment header is missing or names another segment: the whole file is removed.
    BadSegmentHeader,
    /// A frame runs past the end of the file (or claims an impossible length): a write
    /// that was cut short, the usual torn tail.
    IncompleteFrame,
    /// A whole frame whose checksum does not match: damaged bytes, or garbage after the
    /// last record.
    ChecksumMismatch,
}
