//! Append and read throughput of the WAL: figures to compare, never assertions.
//!
//! ```text
//! cargo run -p tern-wal --release --example wal_throughput [-- DIR]
//! ```
//!
//! For 1 KiB and 64 KiB payloads, with `SyncPolicy::Never` and `Always`, from 1 and 4
//! appending threads: appends until 256 MiB or 2 seconds, whichever comes first, then reads
//! everything back in 8 MiB batches. DIR (default: the system temp dir) should be on the
//! disk the collector would use; on tmpfs, `Always` costs nothing.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use tern_wal::{SyncPolicy, Wal, WalOptions};

const TARGET_BYTES: u64 = 256 << 20;
const TIME_LIMIT: Duration = Duration::from_secs(2);

struct Figures {
    records: u64,
    payload_bytes: u64,
    elapsed: Duration,
}

impl Figures {
    fn per_second(&self) -> (f64, f64) {
        let secs = self.elapsed.as_secs_f64();
        (
            self.records as f64 / secs,
            self.payload_bytes as f64 / secs / 1e6,
        )
    }
}

fn append_case(wal: &Wal, payload_len: usize, threads: u64) -> Figures {
    let started = Instant::now();
    let per_thread_bytes = TARGET_BYTES / threads;
    let counts: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let payload = vec![t as u8; payload_len];
                    let mut records = 0u64;
                    while records * (payload_len as u64) < per_thread_bytes
                        && started.elapsed() < TIME_LIMIT
                    {
                        wal.append(&payload).expect("append");
                        records += 1;
                    }
                    records
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let records = counts.iter().sum::<u64>();
    Figures {
        records,
        payload_bytes: records * payload_len as u64,
        elapsed: started.elapsed(),
    }
}

fn read_back(wal: &Wal) -> Figures {
    let started = Instant::now();
    let (mut records, mut payload_bytes) = (0u64, 0u64);
    let mut at = wal.checkpoint();
    loop {
        let batch = wal.read(at, 8 << 20).expect("read");
        let Some(last) = batch.last() else { break };
        at = last.next;
        records += batch.len() as u64;
        payload_bytes += batch.iter().map(|r| r.payload.len() as u64).sum::<u64>();
    }
    Figures {
        records,
        payload_bytes,
        elapsed: started.elapsed(),
    }
}

fn main() {
    let base = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("wal throughput in {}", base.display());
    if cfg!(debug_assertions) {
        println!("debug build: these figures mean little, run with --release");
    }
    println!(
        "{:<8} {:<7} {:>7} {:>9} {:>7} {:>12} {:>9}   {:>12} {:>9}",
        "payload",
        "sync",
        "threads",
        "records",
        "secs",
        "append rec/s",
        "MB/s",
        "read rec/s",
        "MB/s"
    );
    for payload_len in [1 << 10, 64 << 10] {
        for sync in [SyncPolicy::Never, SyncPolicy::Always] {
            for threads in [1, 4] {
                let dir = tempfile_dir(&base);
                let opts = WalOptions {
                    max_bytes: 2 * TARGET_BYTES,
                    sync,
                    ..WalOptions::default()
                };
                let wal = Wal::open(&dir, opts).expect("open");
                let append = append_case(&wal, payload_len, threads);
                let read = read_back(&wal);
                assert_eq!(read.records, append.records, "every record reads back");
                let (append_rps, append_mbps) = append.per_second();
                let (read_rps, read_mbps) = read.per_second();
                println!(
                    "{:<8} {:<7} {:>7} {:>9} {:>7.2} {:>12.0} {:>9.1}   {:>12.0} {:>9.1}",
                    format!("{} KiB", payload_len >> 10),
                    format!("{sync:?}").to_lowercase(),
                    threads,
                    append.records,
                    append.elapsed.as_secs_f64(),
                    append_rps,
                    append_mbps,
                    read_rps,
                    read_mbps,
                );
                drop(wal);
                std::fs::remove_dir_all(&dir).expect("clean up");
            }
        }
    }
}

/// A fresh directory under `base`.
fn tempfile_dir(base: &std::path::Path) -> PathBuf {
    tempfile::Builder::new()
        .prefix("tern-wal-throughput-")
        .tempdir_in(base)
        .expect("temp dir")
        .keep()
}
