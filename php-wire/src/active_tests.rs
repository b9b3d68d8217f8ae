use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn temp_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("tern-active-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn tx<'a>(uri: &'a [u8]) -> TxInfo<'a> {
    TxInfo {
        start_ns: 42,
        trace_id: [1; 16],
        span_id: [2; 8],
        service: b"shop",
        method: b"GET",
        client: b"10.0.0.1",
        uri,
    }
}

#[test]
fn a_running_transaction_and_its_activity_appear_in_the_snapshot_until_it_ends() {
    let path = temp_path("basic");
    let map = ActiveMap::open(&path, 16).unwrap();
    let me = std::process::id() as i32;
    let w = map.claim(me).unwrap();
    assert!(
        map.snapshot().is_empty(),
        "a claimed idle slot is not running"
    );
    w.begin(&tx(b"/orders/7"));
    w.set_activity(ActivityKind::Sql, 99, b"SELECT 1");
    let snap = map.snapshot();
    assert_eq!(snap.len(), 1);
    let s = &snap[0];
    assert_eq!((s.pid, s.alive, s.start_ns), (me, true, 42));
    assert_eq!(
        (s.service.as_str(), s.method.as_str(), s.client.as_str()),
        ("shop", "GET", "10.0.0.1")
    );
    assert_eq!(s.uri, "/orders/7");
    assert_eq!((s.trace_id, s.span_id), ([1; 16], [2; 8]));
    assert_eq!(
        (
            s.activity_kind,
            s.activity_start_ns,
            s.activity_text.as_str()
        ),
        (ActivityKind::Sql, 99, "SELECT 1")
    );
    w.clear_activity();
    assert_eq!(map.snapshot()[0].activity_kind, ActivityKind::None);
    w.end();
    assert!(map.snapshot().is_empty());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn long_texts_are_truncated_on_a_character_boundary() {
    let path = temp_path("trunc");
    let map = ActiveMap::open(&path, 4).unwrap();
    let w = map.claim(std::process::id() as i32).unwrap();
    let uri = "é".repeat(URI_CAP); // 2 bytes each
    w.begin(&tx(uri.as_bytes()));
    let sql = format!("x{}", "é".repeat(ACTIVITY_CAP));
    w.set_activity(ActivityKind::Sql, 1, sql.as_bytes());
    let s = &map.snapshot()[0];
    assert_eq!(s.uri.len(), URI_CAP);
    assert_eq!(
        s.activity_text.len(),
        ACTIVITY_CAP - 1,
        "the split character is dropped"
    );
    assert!(s.activity_text.starts_with("xé"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_second_open_sees_the_same_slots_and_keeps_the_file_slot_count() {
    let path = temp_path("reopen");
    let a = ActiveMap::open(&path, 8).unwrap();
    let b = ActiveMap::open(&path, 100).unwrap();
    assert_eq!(b.slot_count(), 8);
    let w = a.claim(std::process::id() as i32).unwrap();
    w.begin(&tx(b"/x"));
    assert_eq!(b.snapshot().len(), 1);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_file_of_another_kind_is_refused() {
    let path = temp_path("bad");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    assert!(matches!(
        ActiveMap::open(&path, 8),
        Err(ActiveError::Incompatible { .. })
    ));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn claims_take_distinct_slots_and_a_full_map_says_so() {
    let path = temp_path("full");
    let map = ActiveMap::open(&path, 2).unwrap();
    // Our own pid and our parent's are alive.
    let me = std::process::id() as i32;
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    let a = map.claim(me).unwrap();
    let b = map.claim(parent).unwrap();
    assert_ne!(a.index(), b.index());
    assert!(matches!(map.claim(1), Err(ActiveError::Full(2))));
    b.release();
    assert!(map.claim(1).is_ok());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn readers_never_see_a_torn_slot_while_a_thread_writes() {
    let path = temp_path("torn");
    let map = Arc::new(ActiveMap::open(&path, 4).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (map, stop) = (map.clone(), stop.clone());
        std::thread::spawn(move || {
            let w = map.claim(std::process::id() as i32).unwrap();
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let b = b'!' + (i % 90) as u8;
                let uri = vec![b; 1 + (i % 300) as usize];
                w.begin(&TxInfo {
                    start_ns: i,
                    trace_id: [b; 16],
                    span_id: [b; 8],
                    uri: &uri,
                    ..TxInfo::default()
                });
                w.set_activity(ActivityKind::External, i, &uri);
            }
        })
    };
    let mut seen = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline || seen < 1000 {
        for s in map.snapshot() {
            let b = b'!' + (s.start_ns % 90) as u8;
            assert!(
                s.trace_id.iter().all(|&x| x == b) && s.span_id.iter().all(|&x| x == b),
                "torn ids"
            );
            assert_eq!(
                s.uri.len(),
                1 + (s.start_ns % 300) as usize,
                "torn uri length"
            );
            assert!(s.uri.bytes().all(|x| x == b), "torn uri bytes");
            if s.activity_kind == ActivityKind::External {
                assert_eq!(
                    s.activity_start_ns, s.start_ns,
                    "activity from another write"
                );
            }
            seen += 1;
        }
        if seen > 1_000_000 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(seen > 0);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_slot_written_by_a_child_process_is_seen_and_reaped_after_it_dies() {
    let path = temp_path("fork");
    let map = ActiveMap::open(&path, 8).unwrap();
    // SAFETY: the child only touches the mapping and atomics, then _exits.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let code = match map.claim(unsafe { libc::getpid() }) {
            Ok(w) => {
                w.begin(&tx(b"/child"));
                0
            }
            Err(_) => 1,
        };
        // SAFETY: leave without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 0);
    let snap = map.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(
        (snap[0].pid, snap[0].alive, snap[0].uri.as_str()),
        (child, false, "/child")
    );
    assert_eq!(map.reap_dead(), vec![child]);
    assert!(map.snapshot().is_empty());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bytes_stored_in_words_read_back_at_every_length() {
    let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(u64::MAX)).collect();
    let src: Vec<u8> = (1..=40u8).collect();
    for len in 0..=src.len() {
        let n = store_bytes(&words, &src[..len]);
        assert_eq!(n, len.min(32));
        assert_eq!(load_bytes(&words, n), &src[..n], "length {len}");
    }
}
