use super::*;

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
    let w = writer_side.writer(2).unwrap();
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
            reader_side.round(|i| marked.push(i));
            assert_eq!(marked, [2], "only the ring written to is marked");
            got.extend(drain_frames(&reader_side, 2, &mut decoder));
        }
    }
    reader_side.round(|_| {});
    got.extend(drain_frames(&reader_side, 2, &mut decoder));
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "payloads differ");
    assert_eq!(
        reader_side.drain(2, |_| panic!("nothing left")),
        Drained::Bytes(0)
    );
    let mut marked = 0;
    reader_side.round(|_| marked += 1);
    assert_eq!(marked, 0, "the marks were taken");
}

#[test]
fn a_full_ring_refuses_a_frame_whole_and_takes_it_once_drained() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 1).unwrap();
    let w = rings.writer(0).unwrap();
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
    let w = rings.writer(1).unwrap();
    assert!(!w.draining(), "no reader yet");
    let me = std::process::id() as i32;
    assert!(rings.claim_reader(me));
    rings.round(|_| {});
    assert!(w.draining());
    // A stamp older than STALE_NS (a reader that stopped without saying so).
    rings
        .header()
        .drained_at
        .store(now_ns() - STALE_NS - 1, Ordering::Release);
    assert!(!w.draining());
    rings.round(|_| {});
    rings.release_reader(me);
    assert!(!w.draining(), "a reader that stops says so");
}

#[test]
fn one_live_reader_at_a_time_and_a_dead_ones_claim_is_taken_over() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 1).unwrap();
    let me = std::process::id() as i32;
    // pid 1 lives (init) and is not us.
    assert!(rings.claim_reader(1));
    assert!(!rings.claim_reader(me));
    rings.release_reader(1);
    assert!(rings.claim_reader(me));
    // A claimant that no longer exists.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id() as i32;
    child.wait().unwrap();
    rings.release_reader(me);
    rings.header().reader_pid.store(dead, Ordering::Release);
    assert!(!pid_alive(dead));
    assert!(
        rings.claim_reader(me),
        "the dead reader's claim is taken over"
    );
    assert!(!rings.claim_reader(1), "and is now ours");
}

#[test]
fn counters_no_writer_leaves_are_skipped_and_the_stream_restarts_after_them() {
    let (_dir, path) = file();
    let rings = Rings::open(&path, 1).unwrap();
    let w = rings.writer(0).unwrap();
    assert!(w.push(&frame(1, 100)));
    let (c, _) = rings.ring(0);
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
    assert!(rings.writer(2).is_none());
    assert_eq!(
        path_for(Path::new("/dev/shm/tern-active")),
        Path::new("/dev/shm/tern-active.frames")
    );
}
