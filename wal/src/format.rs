//! The bytes on disk: segment header, record frames, checkpoint file, file names.
//!
//! All integers are little-endian.
//!
//! ```text
//! segment file  NNNNNNNNNNNNNNNNNNNN.wal (segment number, 20 decimal digits)
//!   header  16 bytes  magic "TERNWAL" (7) | version 1 (1) | segment number u64 (8)
//!   frame*            payload length u32 | crc32 u32 | payload
//!                     crc32 (IEEE, crc32fast) covers the 4 length bytes, then the payload
//!
//! checkpoint    checkpoint (replaced atomically: written to checkpoint.tmp, then renamed)
//!   28 bytes          magic "TERNCKP" (7) | version 1 (1) | segment u64 | offset u64
//!                     | crc32 u32 of the 24 bytes before it
//! ```
//!
//! The checksum covers the length so that a run of zeros (what a file system may show
//! after a crash in a region it had allocated but not written) never passes as a record.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::position::Position;

/// Bytes of the header at the start of every segment file.
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// Bytes in front of every payload: length and checksum.
pub const FRAME_HEADER_LEN: u64 = 8;
/// Largest payload a single record may carry (256 MiB).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

const SEGMENT_MAGIC: &[u8; 7] = b"TERNWAL";
const CHECKPOINT_MAGIC: &[u8; 7] = b"TERNCKP";
const VERSION: u8 = 1;
const CHECKPOINT_LEN: usize = 28;
const SEGMENT_SUFFIX: &str = ".wal";
const CHECKPOINT_FILE: &str = "checkpoint";
const CHECKPOINT_TEMP_FILE: &str = "checkpoint.tmp";

/// The 16 bytes that open segment `segment`.
pub fn segment_header(segment: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut out = [0; SEGMENT_HEADER_LEN as usize];
    out[..7].copy_from_slice(SEGMENT_MAGIC);
    out[7] = VERSION;
    out[8..].copy_from_slice(&segment.to_le_bytes());
    out
}

/// Whether `bytes` is the header of segment `segment`.
pub fn is_segment_header(bytes: &[u8], segment: u64) -> bool {
    bytes == segment_header(segment)
}

/// The checksum stored in a frame: CRC32 of the length bytes, then the payload.
pub fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The 8 bytes in front of `payload`. The caller has checked `payload.len() <= MAX_RECORD_BYTES`.
pub fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER_LEN as usize] {
    let len =
        u32::try_from(payload.len()).expect("payload length checked against MAX_RECORD_BYTES");
    let mut out = [0; FRAME_HEADER_LEN as usize];
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..].copy_from_slice(&frame_crc(len, payload).to_le_bytes());
    out
}

/// Splits a frame header into (payload length, checksum).
pub fn parse_frame_header(bytes: &[u8; FRAME_HEADER_LEN as usize]) -> (u32, u32) {
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(bytes[4..].try_into().expect("4 bytes"));
    (len, crc)
}

/// The path of segment `segment` in `dir`.
pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}{SEGMENT_SUFFIX}"))
}

/// The segment number a file name stands for, if it names a segment.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path of the checkpoint file in `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

/// The path of the temporary checkpoint file in `dir`.
pub fn checkpoint_temp_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_TEMP_FILE)
}

/// The 28 bytes of a checkpoint file.
pub fn encode_checkpoint(position: Position) -> [u8; CHECKPOINT_LEN] {
    let mut out = [0; CHECKPOINT_LEN];
    out[..7].copy_from_slice(CHECKPOINT_MAGIC);
    out[7] = VERSION;
    out[8..24].copy_from_slice(&position.to_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The position a checkpoint file holds, or `None` if the bytes are not a valid checkpoint.
pub fn decode_checkpoint(bytes: &[u8]) -> Option<Position> {
    if bytes.len() != CHECKPOINT_LEN || &bytes[..7] != CHECKPOINT_MAGIC || bytes[7] != VERSION {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[24..].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..24]) != crc {
        return None;
    }
    Some(Position::from_bytes(
        bytes[8..24].try_into().expect("16 bytes"),
    ))
}

/// Replaces the checkpoint file atomically: write a temporary file, then rename it over the
/// old one. With `durable`, the temporary file is synced before the rename and the directory
/// after it, so that the new checkpoint survives power loss.
pub fn write_checkpoint(dir: &Path, position: Position, durable: bool) -> io::Result<()> {
    let temp = checkpoint_temp_path(dir);
    let mut file = File::create(&temp)?;
    file.write_all(&encode_checkpoint(position))?;
    if durable {
        file.sync_data()?;
    }
    drop(file);
    fs::rename(&temp, checkpoint_path(dir))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Creates segment `segment` with its header, opened for appending and reading.
///
/// A leftover file of that number (from a failed roll) is replaced. With `durable`, the
/// header and the directory entry are synced.
pub fn create_segment(dir: &Path, segment: u64, durable: bool) -> io::Result<File> {
    // Append mode: every write lands at the end of the file, also after a failed write was
    // cut back with `set_len`.
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(segment_path(dir, segment))?;
    file.set_len(0)?;
    file.write_all(&segment_header(segment))?;
    if durable {
        file.sync_data()?;
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Makes the directory entries of `dir` (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_holds_length_and_a_checksum_over_length_and_payload() {
        let header = frame_header(b"hello");
        let (len, crc) = parse_frame_header(&header);
        assert_eq!(len, 5);
        assert_eq!(crc, frame_crc(5, b"hello"));
        assert_ne!(crc, crc32fast::hash(b"hello"));
    }

    #[test]
    fn zeroed_frame_header_never_passes_for_an_empty_record() {
        let (len, crc) = parse_frame_header(&[0; 8]);
        assert_eq!(len, 0);
        assert_ne!(crc, frame_crc(0, b""));
    }

    #[test]
    fn segment_names_round_trip_and_strangers_are_ignored() {
        let path = segment_path(Path::new("/x"), 42);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000000042.wal");
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(parse_segment_name("checkpoint"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.wal"), None);
    }

    #[test]
    fn segment_header_names_its_segment() {
        let header = segment_header(7);
        assert!(is_segment_header(&header, 7));
        assert!(!is_segment_header(&header, 8));
        assert!(!is_segment_header(&header[..15], 7));
    }

    #[test]
    fn checkpoints_round_trip_and_damage_is_refused() {
        let position = Position::new(9, 1234);
        let mut bytes = encode_checkpoint(position);
        assert_eq!(decode_checkpoint(&bytes), Some(position));
        bytes[10] ^= 1;
        assert_eq!(decode_checkpoint(&bytes), None);
        assert_eq!(decode_checkpoint(&bytes[..27]), None);
    }

    #[test]
    fn checkpoint_file_is_replaced_without_leaving_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), Position::new(1, 16), true).unwrap();
        write_checkpoint(dir.path(), Position::new(2, 40), false).unwrap();
        let bytes = fs::read(checkpoint_path(dir.path())).unwrap();
        assert_eq!(decode_checkpoint(&bytes), Some(Position::new(2, 40)));
        assert!(!checkpoint_temp_path(dir.path()).exists());
    }
}
