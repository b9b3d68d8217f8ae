//! What reopening does with torn tails, damaged frames, and a lost checkpoint.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use common::{numbers, payload, read_all, segment_file, segment_files, small_segments};
use tern_wal::{Damage, Record, Truncation, Wal};

/// Appends records `0..count` of `len` bytes and returns them as read back.
fn fill(dir: &Path, count: u64, len: usize) -> Vec<Record> {
    let wal = Wal::open(dir, small_segments()).unwrap();
    for n in 0..count {
        wal.append(&payload(n, len)).unwrap();
    }
    read_all(&wal)
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn torn_tail_is_cut_and_reported_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let records = fill(dir.path(), 10, 100);
    let last = records.last().unwrap();
    let path = segment_file(dir.path(), last.position.segment());
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(last.next.offset() - 5).unwrap();
    drop(file);

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(
        wal.recovery().truncations,
        vec![Truncation {
            segment: last.position.segment(),
            offset: last.position.offset(),
            bytes: 108 - 5,
            damage: Damage::IncompleteFrame,
        }]
    );
    assert_eq!(wal.recovery().truncated_bytes, 103);
    assert_eq!(wal.stats().recovery.truncated_bytes, 103);
    assert_eq!(wal.recovery().records, 9);
    assert_eq!(fs::metadata(&path).unwrap().len(), last.position.offset());
    assert_eq!(numbers(&read_all(&wal)), (0..9).collect::<Vec<_>>());

    // The log goes on: a new record follows, and the next open finds nothing to cut.
    wal.append(&payload(9, 100)).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert!(wal.recovery().truncations.is_empty());
    assert_eq!(numbers(&read_all(&wal)), (0..10).collect::<Vec<_>>());
}

#[test]
fn torn_frame_header_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let records = fill(dir.path(), 3, 100);
    let path = segment_file(dir.path(), records[0].position.segment());
    append_bytes(&path, &[7, 0, 0]);

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(wal.recovery().truncated_bytes, 3);
    assert_eq!(
        wal.recovery().truncations[0].damage,
        Damage::IncompleteFrame
    );
    assert_eq!(numbers(&read_all(&wal)), vec![0, 1, 2]);
}

#[test]
fn garbage_after_the_last_record_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let records = fill(dir.path(), 5, 100);
    let path = segment_file(dir.path(), records[4].position.segment());
    // A plausible length and a wrong checksum, then junk.
    let mut garbage = 20u32.to_le_bytes().to_vec();
    garbage.extend((0..96).map(|i| (i * 37) as u8));
    append_bytes(&path, &garbage);

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let cut = &wal.recovery().truncations;
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].offset, records[4].next.offset());
    assert_eq!(cut[0].bytes, 100);
    assert_eq!(cut[0].damage, Damage::ChecksumMismatch);
    assert_eq!(numbers(&read_all(&wal)), (0..5).collect::<Vec<_>>());
}

#[test]
fn zeroed_tail_never_passes_for_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = fill(dir.path(), 5, 100);
    let path = segment_file(dir.path(), records[4].position.segment());
    append_bytes(&path, &[0; 4096]);

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(wal.recovery().truncated_bytes, 4096);
    assert_eq!(numbers(&read_all(&wal)), (0..5).collect::<Vec<_>>());
}

#[test]
fn bad_checksum_in_an_older_segment_cuts_that_segment_and_keeps_the_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let records = fill(dir.path(), 100, 300);
    let segments: Vec<u64> = records.iter().map(|r| r.position.segment()).collect();
    let damaged_segment = segments[segments.len() / 2];
    let in_segment: Vec<&Record> = records
        .iter()
        .filter(|r| r.position.segment() == damaged_segment)
        .collect();
    assert!(in_segment.len() >= 3);
    let victim = in_segment[1];
    let n_victim = u64::from_le_bytes(victim.payload[..8].try_into().unwrap());
    let path = segment_file(dir.path(), damaged_segment);
    let segment_len = fs::metadata(&path).unwrap().len();
    let mut bytes = fs::read(&path).unwrap();
    bytes[victim.position.offset() as usize + 8 + 50] ^= 0xff;
    fs::write(&path, bytes).unwrap();

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(
        wal.recovery().truncations,
        vec![Truncation {
            segment: damaged_segment,
            offset: victim.position.offset(),
            bytes: segment_len - victim.position.offset(),
            damage: Damage::ChecksumMismatch,
        }]
    );
    let lost: Vec<u64> = in_segment[1..]
        .iter()
        .map(|r| u64::from_le_bytes(r.payload[..8].try_into().unwrap()))
        .collect();
    assert_eq!(lost[0], n_victim);
    let expected: Vec<u64> = (0..100).filter(|n| !lost.contains(n)).collect();
    assert_eq!(numbers(&read_all(&wal)), expected);
    assert_eq!(wal.recovery().records, expected.len() as u64);
}

#[test]
fn segment_with_a_damaged_header_is_removed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let records = fill(dir.path(), 40, 300);
    let first_segment = records[0].position.segment();
    let path = segment_file(dir.path(), first_segment);
    let len = fs::metadata(&path).unwrap().len();
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] = b'X';
    fs::write(&path, bytes).unwrap();

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(
        wal.recovery().truncations,
        vec![Truncation {
            segment: first_segment,
            offset: 0,
            bytes: len,
            damage: Damage::BadSegmentHeader,
        }]
    );
    assert!(!path.exists());
    let survivors: Vec<u64> = records
        .iter()
        .filter(|r| r.position.segment() != first_segment)
        .map(|r| u64::from_le_bytes(r.payload[..8].try_into().unwrap()))
        .collect();
    assert_eq!(numbers(&read_all(&wal)), survivors);
}

#[test]
fn unreadable_checkpoint_replays_from_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        for n in 0..20 {
            wal.append(&payload(n, 100)).unwrap();
        }
        wal.commit(read_all(&wal)[9].next).unwrap();
    }
    fs::write(dir.path().join("checkpoint"), b"not a checkpoint").unwrap();

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert!(wal.recovery().checkpoint_lost);
    assert_eq!(numbers(&read_all(&wal)), (0..20).collect::<Vec<_>>());
}

#[test]
fn segments_a_killed_commit_left_behind_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let first_copy = {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        for n in 0..60 {
            wal.append(&payload(n, 300)).unwrap();
        }
        let records = read_all(&wal);
        let first = segment_files(dir.path())[0].clone();
        let copy = (first.clone(), fs::read(&first).unwrap());
        wal.commit(records[49].next).unwrap();
        assert!(!first.exists());
        copy
    };
    // As if the commit was killed after the checkpoint rename, before the deletion.
    fs::write(&first_copy.0, &first_copy.1).unwrap();

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert!(!first_copy.0.exists());
    assert_eq!(numbers(&read_all(&wal)), (50..60).collect::<Vec<_>>());
    assert!(wal.recovery().truncations.is_empty());
}

#[test]
fn leftover_temporary_checkpoint_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 5, 100);
    fs::write(dir.path().join("checkpoint.tmp"), b"half written").unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert!(!dir.path().join("checkpoint.tmp").exists());
    assert!(!wal.recovery().checkpoint_lost);
    assert_eq!(numbers(&read_all(&wal)), (0..5).collect::<Vec<_>>());
}
