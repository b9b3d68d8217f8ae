//! Frame rings: the frames of finished requests handed to the forwarder through shared
//! memory instead of the socket — a copy into memory both processes map, no system call.
//!
//! A file next to the active-transaction file (`<active path>.frames-v2`, see [`path_for`])
//! holds a 64-byte header, a bitmap and one ring per active-transaction slot: the
//! process owning slot `i` is ring `i`'s only writer, the forwarder its only reader. A
//! ring carries the same byte stream as a socket connection (length-prefixed frames,
//! [`crate::frame`]). Its `head` and `tail` count bytes written and read since the ring
//! was made and only ever grow; position `n` is byte `n % RING_BYTES`.
//!
//! - The writer copies a whole frame after `head` (refusing it when it does not fit
//!   before `tail`), then publishes it by storing the new `head` with release ordering.
//!   A writer that dies mid-copy leaves only unpublished bytes; the next owner of the
//!   slot continues after the last published frame.
//! - After publishing, the writer sets its ring's bit in the header's bitmap of rings
//!   written to; the reader (once per reading round) takes that bitmap word by word,
//!   leaving zeros, and for each ring marked takes the bytes between `tail` and `head`
//!   (acquire) and then stores the new `tail` — rings nobody wrote to cost it nothing.
//!   It stamps `drained_at` in the header every round.
//!   Writers use the rings only while that stamp is recent ([`STALE_NS`]): with no
//!   forwarder reading (not started, stopped, killed) they fall back to the socket, which
//!   counts what it cannot deliver.
//! - One reader at a time: the forwarder holds an open-file-description lock on the
//!   file's first byte while it reads (the kernel drops it when the forwarder dies,
//!   whatever pid namespace it ran in), so two forwarders pointed at the same file cannot
//!   steal each other's bytes; the one left out retries every round it is told to.
//! - One writer per ring: a process claims its ring by pid (a dead claimant's claim is
//!   taken over), so a slot handed to a second live process (a reader that could not see
//!   the first one's pid freed it) does not let two processes write one ring.
//! - Once a second the reader also visits every ring that holds unread bytes, marked or
//!   not: frames whose mark was lost (a reader killed between taking the marks and
//!   draining, a writer killed between publishing and marking) are delivered then.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::active::{pid_alive, ActiveError, Layout, Mapping};

/// `TERNRNG1` in little-endian: the first word of the file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TERNRNG1");
/// Layout version; bumped whenever the layout changes. It is part of the file's name
/// ([`path_for`]): a file of an earlier layout (left in a data directory, or mapped by
/// processes still running) is left alone, never reinterpreted.
pub const VERSION: u32 = 2;
/// Bytes of one ring: at the forwarder's 10 ms reading round, room for a worker writing
/// 12 MiB of frames a second (a request of ~20 calls makes ~6 KiB).
pub const RING_BYTES: usize = 128 << 10;
/// How long after the reader's last round writers still use the rings (1 s).
pub const STALE_NS: u64 = 1_000_000_000;

const HEADER_SIZE: usize = 64;
/// Most rings in a file (the bitmap's bits).
pub const MAX_RINGS: u32 = 4096;
/// A ring's counters, each on its own cache line, before its bytes.
const COUNTERS_SIZE: usize = 128;
const RING_SIZE: usize = COUNTERS_SIZE + RING_BYTES;

/// The file header. Its first four fields are the prefix every shared file starts with,
/// written and checked by `Mapping::open` (`magic` last when the file is created).
#[repr(C)]
struct Header {
    _magic: AtomicU64,
    _version: AtomicU32,
    _rings: AtomicU32,
    /// Bytes per ring, counters included.
    _ring_size: AtomicU32,
    _unused: AtomicU32,
    /// `CLOCK_MONOTONIC` nanoseconds of the reader's last round; 0 = no reader.
    drained_at: AtomicU64,
    _reserved: [AtomicU32; 8],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);

#[repr(C)]
struct Counters {
    head: AtomicU64,
    /// The pid of the process writing this ring (0: none yet).
    writer: AtomicI32,
    _pad: [u32; 13],
    tail: AtomicU64,
    _pad2: [u64; 7],
}

const _: () = assert!(std::mem::size_of::<Counters>() == COUNTERS_SIZE);

/// The rings file for the active-transaction file at `active`: `<active>.frames-v<VERSION>`.
pub fn path_for(active: &Path) -> PathBuf {
    let mut p = active.as_os_str().to_owned();
    p.push(format!(".frames-v{VERSION}"));
    p.into()
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process on the host.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; served by the vDSO, no system call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Where the rings start: after the header and two bitmaps of one bit per ring (rings
/// written to since the reader's last round; rings allocated), on a counters-sized
/// boundary.
const fn rings_offset(rings: u32) -> usize {
    (HEADER_SIZE + 2 * bitmap_bytes(rings)).next_multiple_of(COUNTERS_SIZE)
}

const fn bitmap_bytes(rings: u32) -> usize {
    (rings as usize).div_ceil(64) * 8
}

/// A mapped rings file. The mapping lives as long as this value.
#[derive(Debug)]
pub struct Rings {
    map: Mapping,
    rings: u32,
}

/// What a reader's [`Rings::drain`] found in one ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// This many bytes, handed over and released.
    Bytes(usize),
    /// Counters that no writer keeping the protocol leaves (a foreign or broken writer):
    /// everything unread was skipped; the stream restarts at the next frame written.
    Corrupt,
}

impl Rings {
    /// Opens the file at `path`, creating it with `rings` rings (mode 0666, like the
    /// active-transaction file) when it does not exist or is empty. An existing file
    /// keeps its own ring count; a file of another layout is
    /// [`ActiveError::Incompatible`].
    pub fn open(path: &Path, rings: u32) -> Result<Self, ActiveError> {
        let layout = Layout {
            magic: MAGIC,
            version: VERSION,
            count: rings.clamp(1, MAX_RINGS),
            max_count: MAX_RINGS,
            unit: RING_SIZE as u32,
            unit_name: "ring",
            start: rings_offset,
            // The header and the bitmap now; each ring when its writer first takes it.
            reserve_all: false,
        };
        Mapping::open(path, &layout).map(|(map, rings)| Rings { map, rings })
    }

    fn header(&self) -> &Header {
        // SAFETY: see `open`.
        unsafe { &*(self.map.base() as *const Header) }
    }

    /// Word `word` of the bitmap of rings written to.
    fn dirty(&self, word: usize) -> &AtomicU64 {
        self.bitmap(0, word)
    }

    /// Word `word` of the bitmap of rings allocated: the only ones the reader touches
    /// (touching an unallocated page of a full tmpfs is SIGBUS).
    fn allocated(&self, word: usize) -> &AtomicU64 {
        self.bitmap(bitmap_bytes(self.rings), word)
    }

    fn bitmap(&self, at: usize, word: usize) -> &AtomicU64 {
        assert!(word < (self.rings as usize).div_ceil(64));
        // SAFETY: both bitmaps lie between the header and the rings, in the part of the
        // file allocated when it was made; 8-byte aligned.
        unsafe { &*(self.map.base().add(HEADER_SIZE + at + word * 8) as *const AtomicU64) }
    }

    /// Ring `index`'s counters and bytes; `None` past the file's rings.
    fn ring(&self, index: u32) -> Option<(&Counters, *mut u8)> {
        if index >= self.rings {
            return None;
        }
        let at = rings_offset(self.rings) + index as usize * RING_SIZE;
        // SAFETY: index < rings, which fit in the mapping (checked at open); 64-byte
        // aligned.
        unsafe {
            let p = self.map.base().add(at);
            Some((&*(p as *const Counters), p.add(COUNTERS_SIZE)))
        }
    }

    /// Number of rings in the file.
    pub fn ring_count(&self) -> u32 {
        self.rings
    }

    /// The writer of ring `index` (the index of the caller's active-transaction slot)
    /// for process `pid`; `None` past the file's rings, when another live process writes
    /// that ring, or when the file system has no room for it (its bytes are allocated
    /// here, once per process).
    pub fn writer(&self, index: u32, pid: i32) -> Option<RingWriter<'_>> {
        // Allocated before anything in it is touched: on a full tmpfs touching an
        // unallocated page is SIGBUS.
        let at = rings_offset(self.rings) + index as usize * RING_SIZE;
        if index >= self.rings || self.map.reserve(at, RING_SIZE).is_err() {
            return None;
        }
        self.allocated(index as usize / 64)
            .fetch_or(1 << (index % 64), Ordering::Release);
        let (c, _) = self.ring(index)?;
        let owner = c.writer.load(Ordering::Acquire);
        let ours = owner == pid
            || ((owner == 0 || !pid_alive(owner))
                && c.writer
                    .compare_exchange(owner, pid, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok());
        ours.then_some(RingWriter { rings: self, index })
    }

    /// Whether a reader drained the rings within the last [`STALE_NS`] (a stamp from the
    /// future — a file kept across a reboot — is stale too).
    pub fn draining(&self) -> bool {
        let at = self.header().drained_at.load(Ordering::Acquire);
        let now = now_ns();
        at != 0 && at <= now && now - at < STALE_NS
    }

    /// Claims the reader's role for this open file (an open-file-description lock on the
    /// file's first byte, held until [`Rings::release_reader`] or the process's end):
    /// false while another reader holds it.
    pub fn claim_reader(&self) -> bool {
        self.map.lock_byte(libc::F_WRLCK)
    }

    /// Releases the reader's role and tells writers nobody reads any more (they go back
    /// to the socket at once). Only the reader may call this.
    pub fn release_reader(&self) {
        self.header().drained_at.store(0, Ordering::Release);
        self.map.lock_byte(libc::F_UNLCK);
    }

    /// The reader's round: stamps `drained_at` and calls `each` with the index of every
    /// ring written to since the last round (taking the marks) or, with `sweep`, of
    /// every ring holding unread bytes, marked or not. Only the reader may call this.
    pub fn round(&self, sweep: bool, mut each: impl FnMut(u32)) {
        self.header()
            .drained_at
            .store(now_ns().max(1), Ordering::Release);
        for word in 0..(self.rings as usize).div_ceil(64) {
            let d = self.dirty(word);
            let mut bits = if d.load(Ordering::Relaxed) == 0 {
                0
            } else {
                d.swap(0, Ordering::Acquire)
            };
            let allocated = self.allocated(word).load(Ordering::Acquire);
            if sweep {
                let mut rest = allocated & !bits;
                while rest != 0 {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    let unread = self.ring(word as u32 * 64 + bit).is_some_and(|(c, _)| {
                        c.head.load(Ordering::Acquire) != c.tail.load(Ordering::Relaxed)
                    });
                    if unread {
                        bits |= 1 << bit;
                    }
                }
            }
            // Only a foreign writer marks a ring that was never allocated.
            bits &= allocated;
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                let index = word as u32 * 64 + bit;
                // A bit past the last ring can only come from a foreign writer.
                if index < self.rings {
                    each(index);
                }
            }
        }
    }

    /// Hands ring `index`'s unread bytes to `take` (in one or two pieces, in order) and
    /// releases them to the writer. Only the reader may call this.
    pub fn drain(&self, index: u32, mut take: impl FnMut(&[u8])) -> Drained {
        let Some((c, data)) = self.ring(index) else {
            return Drained::Bytes(0);
        };
        let tail = c.tail.load(Ordering::Relaxed);
        let head = c.head.load(Ordering::Acquire);
        let n = head.wrapping_sub(tail);
        if n > RING_BYTES as u64 {
            c.tail.store(head, Ordering::Release);
            return Drained::Corrupt;
        }
        let n = n as usize;
        if n > 0 {
            let at = (tail % RING_BYTES as u64) as usize;
            let first = n.min(RING_BYTES - at);
            // SAFETY: both pieces lie within the ring's bytes; the writer does not touch
            // [tail, head) until `tail` moves past it, below.
            unsafe {
                take(std::slice::from_raw_parts(data.add(at), first));
                if first < n {
                    take(std::slice::from_raw_parts(data, n - first));
                }
            }
            c.tail.store(head, Ordering::Release);
        }
        Drained::Bytes(n)
    }
}

/// The writing end of one ring, held by the process owning the matching slot.
#[derive(Debug)]
pub struct RingWriter<'a> {
    rings: &'a Rings,
    index: u32,
}

impl RingWriter<'_> {
    /// Whether a reader drains the rings (see [`Rings::draining`]).
    pub fn draining(&self) -> bool {
        self.rings.draining()
    }

    /// Copies `frame` (length prefix included) into the ring whole and publishes it; false
    /// when it does not fit in what the reader has released.
    pub fn push(&self, frame: &[u8]) -> bool {
        let Some((c, data)) = self.rings.ring(self.index) else {
            return false;
        };
        let head = c.head.load(Ordering::Relaxed);
        let tail = c.tail.load(Ordering::Acquire);
        let used = head.wrapping_sub(tail);
        if used > RING_BYTES as u64 || frame.len() as u64 > RING_BYTES as u64 - used {
            return false;
        }
        let at = (head % RING_BYTES as u64) as usize;
        let first = frame.len().min(RING_BYTES - at);
        // SAFETY: both pieces lie within the ring's bytes, in the part the reader has
        // released ([head, tail + RING_BYTES)), which only this writer touches.
        unsafe {
            std::ptr::copy_nonoverlapping(frame.as_ptr(), data.add(at), first);
            std::ptr::copy_nonoverlapping(frame.as_ptr().add(first), data, frame.len() - first);
        }
        c.head
            .store(head.wrapping_add(frame.len() as u64), Ordering::Release);
        // Always the read-modify-write, never "already marked, skip": a reader that took
        // the mark just before could otherwise read `head` without this frame and leave
        // it unmarked until the next push (the release RMW orders the `head` store before
        // the mark the reader acquires).
        self.rings
            .dirty(self.index as usize / 64)
            .fetch_or(1u64 << (self.index % 64), Ordering::Release);
        true
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
