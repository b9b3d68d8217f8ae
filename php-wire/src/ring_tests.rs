use super::*;

const ME: fn() -> i32 = || std::process::id() as i32;

fn file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("active.frames");
    (dir, path)
}

fn frame(n: usize, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (n * 31 + i) as u8).collect();
    let mut out = Vec::new();
    crate::encode_frame(&payload, &mut out).unwrap();
    out
}

/// Everything the reader gets from ring `index`, decoded into payloads.
fn drain_frames(rings: &Rings, index: u32, decoder: &mut crate::FrameDecoder) -> Vec<Vec<u8>> {
    assert!(matches!(
        rings.drain(index, |b| decoder.push(b)),
        Drained::Bytes(_)
    ));
    let mut out = Vec::new();
    while let Some(f) = decoder.next_frame().unwrap() {
        out.push(f);
    }
    out
}

#[test]
fn frames_written_in_one_mapping_are_read_whole_and_in_order_in_another_across_the_wrap() {
    let (_dir, path) = file();
    let writer_side = Rings::open(&path, 4).unwrap();
    let reader_side = Rings::open(&path, 99).unwrap(); // an existing file keeps its count
    assert_eq!(reader_side.ring_count(), 4);
    let w = writer_side.writer(2, ME()).unwrap();
    let mut decoder = crate::FrameDecoder::new();
    let mut sent = Vec::new();
    let mut got = Vec::new();
    // Odd sizes, drained every few frames: the stream wraps around the ring many times
    // (~40 x 128 KiB), with frames split across the end.
    for n in 0..1_000 {
        let f = frame(n, 1_000 + (n * 7919) % 9_000);
        assert!(w.push(&f), "frame {n} fits after draining");
        sent.push(f[4..].to_vec());
        if n % 3 == 2 {
            let mut marked = Vec::new();
            reader_side.round(false, |i| marked.push(i));
            assert_eq!(marked, [2], "only the ring written to is marked");
            got.extend(drain_frames(&reader_side, 2, &mut decoder));
        }
    }
    reader_side.round(false, |_| {});
    got.extend(drain_frames(&reader_side, 2, &mut decoder));
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "payloads differ");
    assert_eq!(
        reader_side.drain(2, |_| panic!("nothing left")),
        Drained::Bytes(0)
    );
    let mut marked = 0;
    reader_side.round(true, |_| marked += 1);
    assert_eq!(marked, 0, "the marks were taken and nothing is unread");
}

#[test]
fn a_full_ring_refuses_a_frame_whole_and_takes_it_once_drained() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 1).unwrap();
    let w = rings.writer(0, ME()).unwrap();
    let big = frame(1, 40_000);
    let mut pushed = 0;
    while w.push(&big) {
        pushed += 1;
    }
    assert_eq!(pushed, RING_BYTES / big.len());
    let mut decoder = crate::FrameDecoder::new();
    assert_eq!(drain_frames(&rings, 0, &mut decoder).len(), pushed);
    assert_eq!(
        decoder.buffered(),
        0,
        "a refused frame left no partial bytes"
    );
    assert!(w.push(&big));
    assert!(!w.push(&vec![0u8; RING_BYTES + 1]), "larger than the ring");
}

#[test]
fn writers_use_the_rings_only_while_a_reader_drains_them() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 2).unwrap();
    let w = rings.writer(1, ME()).unwrap();
    assert!(!w.draining(), "no reader yet");
    assert!(rings.claim_reader());
    rings.round(false, |_| {});
    assert!(w.draining());
    // A stamp older than STALE_NS (a reader that stopped without saying so), and one
    // from the future (a file kept across a reboot).
    for at in [now_ns() - STALE_NS - 1, now_ns() + STALE_NS] {
        rings.header().drained_at.store(at, Ordering::Release);
        assert!(!w.draining(), "stamp {at} is stale");
    }
    rings.round(false, |_| {});
    rings.release_reader();
    assert!(!w.draining(), "a reader that stops says so");
}

#[test]
fn one_reader_at_a_time_until_it_lets_go_or_its_file_closes() {
    let (_dir, path) = file();
    let first = Rings::open(&path, 1).unwrap();
    let second = Rings::open(&path, 1).unwrap(); // another open file, as another process
    assert!(first.claim_reader());
    assert!(!second.claim_reader(), "held by the first");
    first.release_reader();
    assert!(second.claim_reader());
    drop(second); // a reader that dies: its descriptor closes
    assert!(first.claim_reader(), "the dead reader's claim went with it");
}

#[test]
fn one_live_writer_per_ring_and_a_dead_ones_ring_is_taken_over() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 2).unwrap();
    // pid 1 lives (init) and is not us.
    assert!(rings.writer(0, 1).is_some());
    assert!(rings.writer(0, ME()).is_none(), "ring 0 has a live writer");
    assert!(rings.writer(1, ME()).is_some());
    assert!(rings.writer(1, ME()).is_some(), "our own ring again");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id() as i32;
    child.wait().unwrap();
    assert!(!pid_alive(dead));
    let (_dir2, path2) = file();
    let rings = Rings::open(&path2, 1).unwrap();
    assert!(rings.writer(0, dead).is_some());
    assert!(
        rings.writer(0, ME()).is_some(),
        "the dead writer's ring is taken over"
    );
}

#[test]
fn a_published_frame_whose_mark_was_lost_is_found_by_the_sweep() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 70).unwrap();
    let w = rings.writer(66, ME()).unwrap();
    assert!(w.push(&frame(1, 50)));
    // The reader took the marks and died before draining.
    rings.round(false, |_| {});
    let mut seen = Vec::new();
    rings.round(false, |i| seen.push(i));
    assert!(seen.is_empty());
    rings.round(true, |i| seen.push(i));
    assert_eq!(seen, [66]);
    let mut decoder = crate::FrameDecoder::new();
    assert_eq!(
        drain_frames(&rings, 66, &mut decoder),
        vec![frame(1, 50)[4..].to_vec()]
    );
    // A mark past the last ring (only a foreign writer sets one) is ignored.
    rings.dirty(1).fetch_or(1 << 63, Ordering::Release);
    rings.round(false, |i| panic!("ring {i} does not exist"));
    assert_eq!(rings.drain(70, |_| panic!("no ring 70")), Drained::Bytes(0));
}

#[test]
fn counters_no_writer_leaves_are_skipped_and_the_stream_restarts_after_them() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 1).unwrap();
    let w = rings.writer(0, ME()).unwrap();
    assert!(w.push(&frame(1, 100)));
    let (c, _) = rings.ring(0).unwrap();
    c.head.store(
        c.tail.load(Ordering::Relaxed) + RING_BYTES as u64 + 1,
        Ordering::Release,
    );
    assert_eq!(rings.drain(0, |_| panic!("skipped")), Drained::Corrupt);
    assert!(w.push(&frame(2, 100)));
    let mut decoder = crate::FrameDecoder::new();
    assert_eq!(
        drain_frames(&rings, 0, &mut decoder),
        vec![frame(2, 100)[4..].to_vec()]
    );
}

#[test]
fn a_file_of_another_layout_is_refused_and_past_the_rings_there_is_no_writer() {
    let (_dir, path) = file();
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    assert!(matches!(
        Rings::open(&path, 1),
        Err(ActiveError::Incompatible { .. })
    ));
    let (_dir2, path2) = file();
    let rings = Rings::open(&path2, 2).unwrap();
    assert!(rings.writer(2, ME()).is_none());
    assert_eq!(
        path_for(Path::new("/dev/shm/tern-active")),
        Path::new("/dev/shm/tern-active.frames-v2")
    );
}

/// Run by hand as root (it mounts a 1 MiB tmpfs):
/// `cargo test -p tern-php-wire full_tmpfs -- --ignored`.
#[test]
#[ignore = "needs root: mounts a 1 MiB tmpfs"]
fn on_a_full_tmpfs_rings_and_files_are_refused_not_a_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let mount = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap()
    };
    let at = dir.path().to_str().unwrap();
    assert!(mount(&["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", at]).success());
    let result = std::panic::catch_unwind(|| {
        // 64 rings of 128 KiB in 1 MiB: a few fit.
        let rings = Rings::open(&dir.path().join("active.frames"), 64).unwrap();
        let granted: Vec<RingWriter<'_>> = (0..64).filter_map(|i| rings.writer(i, ME())).collect();
        assert!(
            (1..64).contains(&granted.len()),
            "{} granted",
            granted.len()
        );
        for w in &granted {
            while w.push(&frame(1, 3_000)) {} // every byte of the ring touched
        }
        assert!(rings.claim_reader());
        let mut drained = 0;
        rings.round(true, |i| {
            drained += 1;
            rings.drain(i, |_| {});
        });
        assert_eq!(drained, granted.len());
        // A file allocated whole does not fit at all: an error, no file to touch.
        let active = crate::ActiveMap::open(&dir.path().join("active"), 1024);
        assert!(matches!(
            active,
            Err(ActiveError::Io {
                op: "fallocate",
                ..
            })
        ));
    });
    mount(&["umount", at]);
    result.unwrap();
}
