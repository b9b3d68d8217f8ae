//! What each WAL operation can fail with: one enum per operation.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::position::Position;

/// Why [`Wal::open`](crate::Wal::open) failed.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The options cannot work (say, segments smaller than their headers).
    #[error("invalid wal options: {0}")]
    InvalidOptions(&'static str),
    /// Another `Wal` (in this process or another) has the directory open.
    #[error("wal directory {dir} is in use by another wal")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// Creating, reading, repairing or writing a file of the WAL failed.
    #[error("wal i/o on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error of the operating system.
        source: io::Error,
    },
}

/// Why [`Wal::append`](crate::Wal::append) failed. In every case the append is not
/// acknowledged: do not acknowledge the data to its sender.
#[derive(Debug, Error)]
pub enum AppendError {
    /// The record would take the unconsumed bytes past `max_bytes`. Nothing was written;
    /// the same append succeeds once enough is committed. Answer 429 / RESOURCE_EXHAUSTED.
    #[error("wal is full: {used} of {max} bytes unconsumed")]
    Full {
        /// Bytes appended and not yet committed.
        used: u64,
        /// The bound, [`WalOptions::max_bytes`](crate::WalOptions::max_bytes).
        max: u64,
    },
    /// The record can never fit: larger than `max_bytes` or [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
    /// Nothing was written. Answer 413 / INVALID_ARGUMENT rather than asking for a retry.
    #[error("record of {len} bytes exceeds the largest the wal takes, {max} bytes")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The largest payload this WAL accepts.
        max: u64,
    },
    /// Writing or syncing failed (a full disk, an I/O error). A partly written record is cut
    /// off again; with [`SyncPolicy::Always`](crate::SyncPolicy::Always) the record may be in
    /// the log without being durable, and a later replay may deliver it.
    #[error("wal i/o on {path}: {source}")]
    Io {
        /// The segment file or directory.
        path: PathBuf,
        /// The error of the operating system.
        source: io::Error,
    },
}

/// Why [`Wal::read`](crate::Wal::read) failed.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The records at `from` were committed and their segment deleted.
    #[error("position {from} was consumed; the log now starts at {first}")]
    Consumed {
        /// The position asked for.
        from: Position,
        /// The first position still in the log.
        first: Position,
    },
    /// `from` lies past the end of the log.
    #[error("position {from} lies past the end of the log, {end}")]
    OutOfRange {
        /// The position asked for.
        from: Position,
        /// The end of the log.
        end: Position,
    },
    /// A record that was valid when it was written or recovered no longer is: the file was
    /// changed underneath the WAL, or the disk returns damaged data.
    #[error("corrupt record at {position} in {path}")]
    Corrupt {
        /// Where the damaged record starts.
        position: Position,
        /// The segment file.
        path: PathBuf,
    },
    /// Reading a segment file failed.
    #[error("wal i/o on {path}: {source}")]
    Io {
        /// The segment file.
        path: PathBuf,
        /// The error of the operating system.
        source: io::Error,
    },
}

/// Why [`Wal::commit`](crate::Wal::commit) failed. The checkpoint did not move.
#[derive(Debug, Error)]
pub enum CommitError {
    /// `upto` lies before the current checkpoint: it was committed already.
    #[error("cannot commit back to {upto}; the checkpoint is at {checkpoint}")]
    Backwards {
        /// The position asked for.
        upto: Position,
        /// The current checkpoint.
        checkpoint: Position,
    },
    /// `upto` lies past the end of the log.
    #[error("cannot commit {upto}, past the end of the log, {end}")]
    OutOfRange {
        /// The position asked for.
        upto: Position,
        /// The end of the log.
        end: Position,
    },
    /// Writing the checkpoint file failed.
    #[error("wal i/o on {path}: {source}")]
    Io {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// The error of the operating system.
        source: io::Error,
    },
}
