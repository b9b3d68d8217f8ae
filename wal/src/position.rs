//! A place in the log: which segment, and the byte offset inside it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A place in the log: a segment number and a byte offset inside that segment's file.
///
/// Positions are boundaries between records. They order the log: a record at a smaller
/// position was appended before one at a larger position. The end of a sealed segment and
/// the start of the next segment are the same place in the log; the WAL treats them as
/// equal wherever it accepts a position.
///
/// Positions come from the WAL ([`Wal::append`](crate::Wal::append), [`Record::next`](crate::Record),
/// [`Wal::checkpoint`](crate::Wal::checkpoint), [`Wal::end`](crate::Wal::end)); they
/// serialize (16 bytes on disk in the checkpoint file, or with serde) so that a consumer
/// can report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    segment: u64,
    offset: u64,
}

impl Position {
    pub(crate) const fn new(segment: u64, offset: u64) -> Self {
        Self { segment, offset }
    }

    /// The segment number (the segment file is named after it).
    pub const fn segment(self) -> u64 {
        self.segment
    }

    /// The byte offset inside the segment file, counting the segment header.
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// Encodes the position as 16 little-endian bytes (segment, then offset).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.segment.to_le_bytes());
        out[8..].copy_from_slice(&self.offset.to_le_bytes());
        out
    }

    /// Decodes a position written by [`Position::to_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let (segment, offset) = bytes.split_at(8);
        Self {
            segment: u64::from_le_bytes(segment.try_into().expect("8 bytes")),
            offset: u64::from_le_bytes(offset.try_into().expect("8 bytes")),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_segment_then_offset() {
        assert!(Position::new(1, 900) < Position::new(2, 16));
        assert!(Position::new(2, 16) < Position::new(2, 17));
    }

    #[test]
    fn positions_round_trip_through_bytes() {
        let position = Position::new(0x0102_0304_0506_0708, 42);
        assert_eq!(Position::from_bytes(position.to_bytes()), position);
    }

    #[test]
    fn positions_display_as_segment_colon_offset() {
        assert_eq!(Position::new(3, 128).to_string(), "3:128");
    }
}
