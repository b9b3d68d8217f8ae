//! Many appenders, a reader running alongside, and waiting for appends.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{number, payload, read_all, small_segments};
use futures::FutureExt;
use tern_wal::{Position, SyncPolicy, Wal, WalOptions};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 500;

/// Appends `PER_THREAD` records from each of `THREADS` threads; the number of a record is
/// `thread * 1_000_000 + sequence`. Returns where each number was appended.
fn append_from_threads(wal: &Wal) -> HashMap<u64, Position> {
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let wal = wal.clone();
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|seq| {
                        let n = thread * 1_000_000 + seq;
                        (
                            n,
                            wal.append(&payload(n, 64 + (seq as usize % 5) * 100))
                                .unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect()
}

fn assert_each_record_once_in_append_order(wal: &Wal, appended: &HashMap<u64, Position>) {
    let records = read_all(wal);
    assert_eq!(records.len() as u64, THREADS * PER_THREAD);
    let mut last_seq = HashMap::new();
    for pair in records.windows(2) {
        assert!(pair[0].position < pair[1].position);
    }
    for record in &records {
        let n = number(&record.payload);
        assert_eq!(
            appended[&n], record.position,
            "record {n} is where its append said"
        );
        let (thread, seq) = (n / 1_000_000, n % 1_000_000);
        if let Some(previous) = last_seq.insert(thread, seq) {
            assert_eq!(seq, previous + 1, "thread {thread} out of order");
        }
    }
}

#[test]
fn concurrent_appends_read_back_exactly_once_in_a_consistent_order() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let appended = append_from_threads(&wal);
    assert_eq!(appended.len() as u64, THREADS * PER_THREAD);
    assert_each_record_once_in_append_order(&wal, &appended);
}

#[test]
fn concurrent_appends_with_always_sync_share_syncs_and_read_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 64 << 10,
        sync: SyncPolicy::Always,
        ..small_segments()
    };
    let wal = Wal::open(dir.path(), opts).unwrap();
    let appended = append_from_threads(&wal);
    assert_each_record_once_in_append_order(&wal, &appended);
}

#[test]
fn reader_running_alongside_appends_sees_only_whole_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    const TOTAL: u64 = 5_000;
    let writer = {
        let wal = wal.clone();
        thread::spawn(move || {
            for n in 0..TOTAL {
                wal.append(&payload(n, 8 + (n as usize * 13) % 900))
                    .unwrap();
            }
        })
    };
    let mut at = wal.checkpoint();
    let mut expected = 0;
    while expected < TOTAL {
        let batch = wal.read(at, 16 << 10).unwrap();
        for record in &batch {
            assert_eq!(number(&record.payload), expected);
            expected += 1;
        }
        match batch.last() {
            Some(last) => at = last.next,
            None => thread::yield_now(),
        }
    }
    writer.join().unwrap();
    assert!(wal.read(at, usize::MAX).unwrap().is_empty());
}

#[tokio::test]
async fn wait_for_append_resolves_at_once_when_records_exist() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    let start = wal.checkpoint();
    wal.append(b"x").unwrap();
    assert!(wal.wait_for_append(start).now_or_never().is_some());
}

#[tokio::test]
async fn wait_for_append_waits_at_the_end_and_wakes_on_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    wal.append(b"first").unwrap();
    let end = wal.end();
    assert!(wal.wait_for_append(end).now_or_never().is_none());

    let waiter = tokio::spawn({
        let wal = wal.clone();
        async move { wal.wait_for_append(end).await }
    });
    let appender = {
        let wal = wal.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            wal.append(b"second").unwrap();
        })
    };
    tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("waiter woke")
        .unwrap();
    appender.join().unwrap();
    assert_eq!(&wal.read(end, 1).unwrap()[0].payload[..], b"second");
}

#[tokio::test]
async fn wait_for_append_misses_no_wakeup_under_a_stream_of_appends() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    const TOTAL: u64 = 2_000;
    let done = Arc::new(AtomicBool::new(false));
    let appender = {
        let wal = wal.clone();
        let done = Arc::clone(&done);
        thread::spawn(move || {
            for n in 0..TOTAL {
                wal.append(&payload(n, 64)).unwrap();
                if n.is_multiple_of(64) {
                    thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let consumer = async {
        let mut at = wal.checkpoint();
        let mut seen = 0;
        while seen < TOTAL {
            let batch = wal.read(at, 4 << 10).unwrap();
            match batch.last() {
                Some(last) => {
                    at = last.next;
                    seen += batch.len() as u64;
                    wal.commit(at).unwrap();
                }
                None => wal.wait_for_append(at).await,
            }
        }
        seen
    };
    let seen = tokio::time::timeout(Duration::from_secs(60), consumer)
        .await
        .expect("consumer kept up");
    appender.join().unwrap();
    assert!(done.load(Ordering::Acquire));
    assert_eq!(seen, TOTAL);
    assert_eq!(wal.stats().used_bytes, 0);
}

#[tokio::test]
async fn wait_for_append_at_the_end_of_a_sealed_segment_waits_for_a_new_record() {
    let dir = tempfile::tempdir().unwrap();
    let end = {
        let wal = Wal::open(dir.path(), small_segments()).unwrap();
        wal.append(b"before restart").unwrap();
        wal.end()
    };
    // After reopen, `end` is the end of a sealed segment: the same place as the start of
    // the new one, where nothing was appended yet.
    let wal = Wal::open(dir.path(), small_segments()).unwrap();
    assert!(end < wal.end());
    assert!(wal.wait_for_append(end).now_or_never().is_none());
    wal.append(b"after restart").unwrap();
    assert!(wal.wait_for_append(end).now_or_never().is_some());
    assert_eq!(&wal.read(end, 1).unwrap()[0].payload[..], b"after restart");
}

#[test]
fn wal_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Wal>();
}
