//! Appending, reading back, committing, reopening, and the bound.

mod common;

use common::{number, numbers, payload, read_all, read_from, segment_files, small_segments};
use tern_wal::{
    AppendError, CommitError, OpenError, Position, ReadError, SyncPolicy, Wal, WalOptions,
};

#[test]
fn records_read_back_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let mut positions = Vec::new();
    for n in 0..200 {
        positions.push(
            wal.append(&payload(n, 100 + (n as usize * 7) % 200))
                .unwrap(),
        );
    }
    assert!(wal.stats().segments > 5, "{:?}", wal.stats());

    let records = read_all(&wal);
    assert_eq!(numbers(&records), (0..200).collect::<Vec<_>>());
    for (record, appended_at) in records.iter().zip(&positions) {
        assert_eq!(record.position, *appended_at);
        assert!(record.position < record.next);
    }
    for pair in records.windows(2) {
        let same_segment = pair[0].next == pair[1].position;
        let next_segment = pair[0].next.segment() < pair[1].position.segment();
        assert!(same_segment || next_segment, "{pair:?}");
    }
    assert_eq!(records.last().unwrap().next, wal.end());
}

#[test]
fn read_stops_near_the_budget_but_returns_at_least_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    wal.append(&payload(0, 10_000)).unwrap();
    for n in 1..=50 {
        wal.append(&payload(n, 100)).unwrap();
    }

    let first = wal.read(wal.checkpoint(), 1).unwrap();
    assert_eq!(numbers(&first), vec![0]);

    let batch = wal.read(first[0].next, 1_000).unwrap();
    assert_eq!(numbers(&batch), (1..=10).collect::<Vec<_>>());

    let rest = wal.read(batch.last().unwrap().next, usize::MAX).unwrap();
    assert_eq!(numbers(&rest), (11..=50).collect::<Vec<_>>());
    assert!(wal.read(wal.end(), usize::MAX).unwrap().is_empty());
}

#[test]
fn empty_payloads_are_records_too() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    wal.append(b"").unwrap();
    wal.append(b"x").unwrap();
    let records = read_all(&wal);
    assert_eq!(records.len(), 2);
    assert!(records[0].payload.is_empty());
    assert_eq!(&records[1].payload[..], b"x");
}

#[test]
fn commit_frees_the_bytes_and_deletes_wholly_consumed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    for n in 0..100 {
        wal.append(&payload(n, 200)).unwrap();
    }
    let records = read_all(&wal);
    let files_before = segment_files(dir.path()).len();
    let used_before = wal.stats().used_bytes;
    assert_eq!(used_before, 100 * 208);

    wal.commit(records[59].next).unwrap();

    let stats = wal.stats();
    assert_eq!(stats.used_bytes, 40 * 208);
    assert_eq!(stats.committed_bytes, 60 * 208);
    assert_eq!(wal.checkpoint(), records[60].position);
    assert!(segment_files(dir.path()).len() < files_before);
    assert_eq!(segment_files(dir.path()).len() as u64, stats.segments);
    assert_eq!(numbers(&read_all(&wal)), (60..100).collect::<Vec<_>>());
    // Records of the checkpoint's own segment are still there to be read.
    let segment_start = records
        .iter()
        .find(|r| r.position.segment() == records[60].position.segment())
        .unwrap();
    assert!(wal.read(segment_start.position, 1).is_ok());
}

#[test]
fn committing_everything_leaves_one_empty_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    for n in 0..100 {
        wal.append(&payload(n, 200)).unwrap();
    }
    wal.commit(wal.end()).unwrap();
    assert_eq!(wal.stats().used_bytes, 0);
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert!(read_all(&wal).is_empty());
    // The same commit again is a no-op.
    wal.commit(wal.end()).unwrap();
}

#[test]
fn commit_refuses_positions_before_the_checkpoint_or_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    for n in 0..3 {
        wal.append(&payload(n, 100)).unwrap();
    }
    let records = read_all(&wal);
    wal.commit(records[1].next).unwrap();
    assert!(matches!(
        wal.commit(records[0].next),
        Err(CommitError::Backwards { .. })
    ));
    let past_end = Position::from_bytes(Position::to_bytes(wal.end()).map(|_| 0x7f));
    assert!(matches!(
        wal.commit(past_end),
        Err(CommitError::OutOfRange { .. })
    ));
    assert_eq!(wal.checkpoint(), records[2].position);
}

#[test]
fn reading_on_from_a_committed_segment_end_continues_in_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    for n in 0..100 {
        wal.append(&payload(n, 200)).unwrap();
    }
    let records = read_all(&wal);
    let boundary = records
        .windows(2)
        .find(|pair| pair[0].next != pair[1].position)
        .expect("the records span segments");
    let last_in_segment = &boundary[0];
    // The consumer commits exactly what it read, the end of a sealed segment, and reads on
    // from there.
    wal.commit(last_in_segment.next).unwrap();
    let n = number(&last_in_segment.payload);
    let next = wal.read(last_in_segment.next, 1).unwrap();
    assert_eq!(numbers(&next), vec![n + 1]);
    assert_eq!(
        next[0].position.segment(),
        last_in_segment.position.segment() + 1
    );
    assert_eq!(wal.checkpoint(), next[0].position);
}

#[test]
fn read_of_a_deleted_segment_fails_as_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    for n in 0..100 {
        wal.append(&payload(n, 200)).unwrap();
    }
    let first = read_all(&wal)[0].position;
    wal.commit(wal.end()).unwrap();
    assert!(matches!(
        wal.read(first, 1),
        Err(ReadError::Consumed { .. })
    ));
}

#[test]
fn reopen_replays_exactly_the_uncommitted_records() {
    let dir = tempfile::tempdir().unwrap();
    let used = {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        for n in 0..100 {
            wal.append(&payload(n, 150)).unwrap();
        }
        wal.commit(read_all(&wal)[39].next).unwrap();
        wal.stats().used_bytes
    };

    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(numbers(&read_all(&wal)), (40..100).collect::<Vec<_>>());
    let report = wal.recovery();
    assert_eq!(report.records, 60);
    assert_eq!(report.bytes, used);
    assert_eq!(report.truncated_bytes, 0);
    assert!(!report.checkpoint_lost);
    assert_eq!(wal.stats().used_bytes, used);

    // Appends after reopen follow the replayed records.
    wal.append(&payload(100, 150)).unwrap();
    assert_eq!(numbers(&read_all(&wal)), (40..=100).collect::<Vec<_>>());
}

#[test]
fn reopen_after_a_full_commit_replays_nothing_and_keeps_no_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        assert!(read_all(&wal).is_empty(), "round {round}");
        for n in 0..50 {
            wal.append(&payload(n, 150)).unwrap();
        }
        wal.commit(wal.end()).unwrap();
    }
    assert_eq!(segment_files(dir.path()).len(), 1);
}

#[test]
fn restarts_without_appends_leave_no_empty_segments_behind() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        wal.append(&payload(0, 100)).unwrap();
    }
    for _ in 0..5 {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        assert_eq!(numbers(&read_all(&wal)), vec![0]);
    }
    // The segment with the record and the one the last open started.
    assert_eq!(segment_files(dir.path()).len(), 2);
}

#[test]
fn append_fails_with_full_at_the_bound_and_succeeds_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        max_bytes: 10_000,
        ..small_segments()
    };
    let wal = Wal::open(dir.path(), opts).unwrap();
    for n in 0..9 {
        wal.append(&payload(n, 1000)).unwrap();
    }
    let end = wal.end();
    match wal.append(&payload(9, 1000)) {
        Err(AppendError::Full { used, max }) => {
            assert_eq!(used, 9 * 1008);
            assert_eq!(max, 10_000);
        }
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(wal.end(), end, "a refused append writes nothing");
    assert_eq!(wal.stats().rejected_full, 1);

    let first = wal.read(wal.checkpoint(), 1).unwrap();
    wal.commit(first[0].next).unwrap();
    wal.append(&payload(9, 1000)).unwrap();
    assert_eq!(numbers(&read_all(&wal)), (1..10).collect::<Vec<_>>());
}

#[test]
fn records_that_can_never_fit_are_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        max_bytes: 10_000,
        ..small_segments()
    };
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.max_payload(), 9_992);
    assert!(matches!(
        wal.append(&vec![0; 9_993]),
        Err(AppendError::TooLarge {
            len: 9_993,
            max: 9_992
        })
    ));
    wal.append(&payload(0, 9_992)).unwrap();
}

#[test]
fn large_payloads_get_a_segment_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 1 << 20,
        ..WalOptions::default()
    };
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    wal.append(&payload(0, 100)).unwrap();
    let big_at = wal.append(&payload(1, 24 << 20)).unwrap();
    let after = wal.append(&payload(2, 100)).unwrap();
    assert!(big_at.segment() > 1);
    assert!(after.segment() > big_at.segment());

    let small = wal.read(wal.checkpoint(), 1 << 20).unwrap();
    assert_eq!(
        numbers(&small),
        vec![0],
        "the big record does not fit the budget"
    );
    let big = wal.read(small[0].next, 1 << 20).unwrap();
    assert_eq!(
        numbers(&big),
        vec![1],
        "but it comes alone when it is first"
    );
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(numbers(&read_all(&wal)), vec![0, 1, 2]);
}

#[test]
fn second_open_of_a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small_segments()),
        Err(OpenError::Locked { .. })
    ));
    drop(wal);
    Wal::open(dir.path(), small_segments()).unwrap();
}

#[test]
fn always_sync_round_trips_and_replays_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        sync: SyncPolicy::Always,
        ..small_segments()
    };
    {
        let wal = Wal::open(dir.path(), opts.clone()).unwrap();
        for n in 0..40 {
            wal.append(&payload(n, 300)).unwrap();
        }
        wal.commit(read_all(&wal)[9].next).unwrap();
    }
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(numbers(&read_all(&wal)), (10..40).collect::<Vec<_>>());
}

#[test]
fn stats_count_appends_commits_and_disk_use() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    for n in 0..30 {
        wal.append(&payload(n, 500)).unwrap();
    }
    let records = read_all(&wal);
    wal.commit(records[9].next).unwrap();
    let stats = wal.stats();
    assert_eq!(stats.appended_records, 30);
    assert_eq!(stats.appended_bytes, 30 * 508);
    assert_eq!(stats.committed_bytes, 10 * 508);
    assert_eq!(stats.used_bytes, 20 * 508);
    assert_eq!(stats.max_bytes, 64 << 20);
    assert_eq!(stats.end, wal.end());
    assert_eq!(stats.checkpoint, records[10].position);
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|path| path.metadata().unwrap().len())
        .sum();
    assert_eq!(stats.disk_bytes, on_disk);
    assert_eq!(
        number(&wal.read(stats.checkpoint, 1).unwrap()[0].payload),
        10
    );
    assert_eq!(read_from(&wal, records[25].position).len(), 5);
}
