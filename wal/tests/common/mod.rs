//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use tern_wal::{Position, Record, SyncPolicy, Wal, WalOptions};

/// Options with 4 KiB segments, so that a few dozen records span several segments.
pub fn small_segments() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
        max_bytes: 64 << 20,
        sync: SyncPolicy::Never,
    }
}

/// A payload of `len` bytes (at least 8) that carries `n` and a pattern derived from it.
pub fn payload(n: u64, len: usize) -> Vec<u8> {
    assert!(len >= 8);
    let mut out = n.to_le_bytes().to_vec();
    out.extend((0..len - 8).map(|i| (n as usize).wrapping_mul(31).wrapping_add(i) as u8));
    out
}

/// The number a [`payload`] carries, after checking its pattern.
pub fn number(payload: &[u8]) -> u64 {
    let n = u64::from_le_bytes(payload[..8].try_into().unwrap());
    assert_eq!(
        payload,
        self::payload(n, payload.len()),
        "payload of record {n} is damaged"
    );
    n
}

/// Every record from the checkpoint to the end, read in batches of 64 KiB.
pub fn read_all(wal: &Wal) -> Vec<Record> {
    read_from(wal, wal.checkpoint())
}

/// Every record from `from` to the end, read in batches of 64 KiB.
pub fn read_from(wal: &Wal, from: Position) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let batch = wal.read(at, 64 << 10).unwrap();
        let Some(last) = batch.last() else {
            return out;
        };
        at = last.next;
        out.extend(batch);
    }
}

/// The numbers carried by `records`, in order.
pub fn numbers(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| number(&r.payload)).collect()
}

/// The segment files in `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    files.sort();
    files
}

/// The file of segment `segment` in `dir`.
pub fn segment_file(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.wal"))
}
