//! `kill -9` right after an acknowledgement loses nothing.
//!
//! The test re-executes its own binary as a child that appends numbered records and prints
//! `ack N` after each append returned, kills it with SIGKILL at some point, reopens the log
//! and checks that every acknowledged number is there.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use common::read_all;
use tern_wal::{Wal, WalOptions};

const CHILD_DIR_ENV: &str = "TERN_WAL_CRASH_CHILD_DIR";
const CHILD_FIRST_ENV: &str = "TERN_WAL_CRASH_CHILD_FIRST";
const CHILD_TEST: &str = "crash_child_appends_and_acknowledges_until_killed";

fn child_options() -> WalOptions {
    WalOptions {
        segment_bytes: 1 << 20,
        ..WalOptions::default()
    }
}

/// Mostly small records, every 8th a 512 KiB one, so that a kill often lands inside a
/// write. Cheap to make (the number, then one byte repeated): the child spends its time
/// appending.
fn child_payload(n: u64) -> Vec<u8> {
    let len = if n.is_multiple_of(8) {
        512 << 10
    } else {
        200 + (n % 7) as usize * 100
    };
    let mut out = vec![n as u8; len];
    out[..8].copy_from_slice(&n.to_le_bytes());
    out
}

/// The number a [`child_payload`] carries, after checking it.
fn child_number(payload: &[u8]) -> u64 {
    let n = u64::from_le_bytes(payload[..8].try_into().unwrap());
    assert_eq!(
        payload,
        child_payload(n),
        "payload of record {n} is damaged"
    );
    n
}

#[test]
#[ignore = "the child process of acknowledged_records_survive_sigkill"]
fn crash_child_appends_and_acknowledges_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let first: u64 = std::env::var(CHILD_FIRST_ENV).unwrap().parse().unwrap();
    let wal = Wal::open(&dir, child_options()).unwrap();
    let mut acks = std::io::stderr().lock();
    for n in first.. {
        wal.append(&child_payload(n)).unwrap();
        // One write per line, so a kill never leaves half a number behind.
        acks.write_all(format!("ack {n}\n").as_bytes()).unwrap();
    }
}

/// When the parent kills the child.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// Right after reading this many acknowledgements: the kill lands just after an ack.
    AfterAcks(usize),
    /// This long after the first acknowledgement: the kill lands anywhere, often inside
    /// the write of a large record.
    AfterMillis(u64),
}

/// Runs the child on `dir`, numbering from `first`, kills it with SIGKILL as `kill` says,
/// and returns every number it acknowledged before it died.
fn run_child_and_kill(dir: &Path, first: u64, kill: Kill) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_FIRST_ENV, first.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (acks, acks_in) = mpsc::channel();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let reader = thread::spawn(move || {
        for line in lines {
            let line = line.unwrap();
            match line.strip_prefix("ack ") {
                Some(n) => acks.send(n.parse::<u64>().unwrap()).unwrap(),
                None => eprintln!("child: {line}"),
            }
        }
    });

    let mut acked = vec![acks_in.recv().expect("the child acknowledges something")];
    let started = Instant::now();
    loop {
        let due = match kill {
            Kill::AfterAcks(count) => acked.len() >= count,
            Kill::AfterMillis(ms) => started.elapsed() >= Duration::from_millis(ms),
        };
        if due {
            break;
        }
        match acks_in.recv_timeout(Duration::from_millis(1)) {
            Ok(n) => acked.push(n),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("child ended on its own"),
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    reader.join().unwrap();
    acked.extend(acks_in.iter());
    acked
}

#[test]
fn acknowledged_records_survive_sigkill() {
    use Kill::*;
    let dir = tempfile::tempdir().unwrap();
    let mut torn_tails = 0;
    let kills = [
        AfterAcks(100),
        AfterMillis(30),
        AfterAcks(800),
        AfterMillis(7),
        AfterAcks(1),
        AfterMillis(60),
        AfterMillis(15),
    ];
    for (round, kill) in kills.into_iter().enumerate() {
        let first = round as u64 * 1_000_000;
        let acked = run_child_and_kill(dir.path(), first, kill);

        let wal = Wal::open(dir.path(), child_options()).unwrap();
        let found: Vec<u64> = read_all(&wal)
            .iter()
            .map(|r| child_number(&r.payload))
            .collect();
        let expected: Vec<u64> = (first..first + acked.len() as u64).collect();
        assert_eq!(acked, expected, "the child acknowledged out of order");
        // Every acknowledged record, in order, then at most the one record that was
        // written but not yet acknowledged when the kill came.
        assert_eq!(
            found[..acked.len()],
            acked[..],
            "round {round}: acknowledged records lost"
        );
        assert!(found.len() <= acked.len() + 1, "round {round}: {found:?}");
        torn_tails += wal.recovery().truncations.len();
        eprintln!(
            "round {round} ({kill:?}): {} acknowledged, {} found, {} bytes cut",
            acked.len(),
            found.len(),
            wal.recovery().truncated_bytes
        );
        // Consume the round, so that the next one starts from an empty log.
        wal.commit(wal.end()).unwrap();
    }
    eprintln!("{torn_tails} torn tails cut");
}
