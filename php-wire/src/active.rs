//! The active-transaction shared memory: what every PHP worker is running right now.
//!
//! A file (default `/dev/shm/tern-active`) mapped `MAP_SHARED` by every PHP process and by
//! the forwarder. It starts with a 64-byte [header](Header) (magic, version, slot count,
//! slot size) followed by fixed-size `#[repr(C)]` slots, one per PHP worker process.
//!
//! Each slot is a seqlock: its single writer (the owning process) makes the counter odd,
//! writes the fields, makes it even again; readers retry when the counter was odd or
//! changed. All fields are atomics (relaxed loads and stores fenced by the counter), so
//! the protocol is free of data races even across processes. The writer side does no
//! allocation and no syscall: only stores into the mapping.
//!
//! Slots are claimed by pid: hash the pid, probe linearly, take a free slot (pid 0), our
//! own pid, or the slot of a dead process (`kill(pid, 0)` says `ESRCH`), with a CAS on
//! the pid word. Claiming happens once per process, not per request.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// `TERNACT1` in little-endian: the first word of the file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TERNACT1");
/// Layout version; bumped whenever [`Slot`] changes.
pub const VERSION: u32 = 1;
/// Slot count of a newly created file (an existing file keeps its own).
pub const DEFAULT_SLOTS: u32 = 1024;
/// Bytes of service name kept.
pub const SERVICE_CAP: usize = 64;
/// Bytes of HTTP method kept.
pub const METHOD_CAP: usize = 16;
/// Bytes of client address kept (an IPv6 address is at most 45).
pub const CLIENT_CAP: usize = 48;
/// Bytes of request URI kept.
pub const URI_CAP: usize = 512;
/// Bytes of the current activity's text (SQL or URL) kept.
pub const ACTIVITY_CAP: usize = 1024;

const HEADER_SIZE: usize = 64;
const STATE_IDLE: u32 = 0;
const STATE_RUNNING: u32 = 1;

/// The file header: the prefix every shared file starts with, written and checked by
/// `Mapping::open` (`magic` last when the file is created).
#[repr(C)]
pub struct Header {
    _magic: AtomicU64,
    _version: AtomicU32,
    _slot_count: AtomicU32,
    _slot_size: AtomicU32,
    _reserved: [AtomicU32; 11],
}

/// One worker's slot. Text fields are byte strings packed into `u64` words, with their
/// lengths in `lens` / `activity`.
#[repr(C)]
pub struct Slot {
    seq: AtomicU64,
    pid: AtomicI32,
    state: AtomicU32,
    start_ns: AtomicU64,
    trace_id: [AtomicU64; 2],
    span_id: AtomicU64,
    /// service len | method len << 16 | client len << 32 | uri len << 48
    lens: AtomicU64,
    /// kind | text len << 16
    activity: AtomicU64,
    activity_start_ns: AtomicU64,
    service: [AtomicU64; SERVICE_CAP / 8],
    method: [AtomicU64; METHOD_CAP / 8],
    client: [AtomicU64; CLIENT_CAP / 8],
    uri: [AtomicU64; URI_CAP / 8],
    activity_text: [AtomicU64; ACTIVITY_CAP / 8],
}

/// Size in bytes of one slot in the file.
pub const SLOT_SIZE: usize = std::mem::size_of::<Slot>();

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);

/// What a running transaction is doing (values match `tern.v1.ActivityKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ActivityKind {
    /// Nothing in particular (running PHP code).
    None = 0,
    /// Inside a user method of interest.
    Method = 1,
    /// Waiting on a database query.
    Sql = 2,
    /// Waiting on an outgoing HTTP call.
    External = 3,
}

impl ActivityKind {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Method,
            2 => Self::Sql,
            3 => Self::External,
            _ => Self::None,
        }
    }
}

/// Errors opening the shared memory or claiming a slot.
#[derive(Debug, thiserror::Error)]
pub enum ActiveError {
    /// A system call on the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The call that failed.
        op: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file exists but was made by another layout (or is not ours).
    #[error("{path} is not a tern active-transaction file of version {VERSION}: {reason}")]
    Incompatible {
        /// The file.
        path: String,
        /// What did not match.
        reason: String,
    },
    /// Every slot belongs to a live process.
    #[error("all {0} active-transaction slots are taken by live processes")]
    Full(u32),
}

/// A file mapped `MAP_SHARED`, unmapped on drop: the active-transaction file and the
/// frame rings ([`crate::ring`]) are both opened through it.
pub(crate) struct Mapping {
    base: *mut u8,
    len: usize,
    /// Kept open to reserve parts of the file later ([`Mapping::reserve`]).
    fd: i32,
}

// SAFETY: the mappings' users access shared words through atomics, and ring bytes only
// under the ring protocol.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len).finish()
    }
}

/// How a shared file is laid out: a header whose first 20 bytes are [`Prefix`], then
/// `count` fixed-size units (slots, rings).
pub(crate) struct Layout {
    pub magic: u64,
    pub version: u32,
    /// Units of a new file (an existing file keeps its own, at most `max_count`).
    pub count: u32,
    pub max_count: u32,
    /// Bytes per unit.
    pub unit: u32,
    /// What a unit is called in errors.
    pub unit_name: &'static str,
    /// Where unit 0 starts in a file of `count` units.
    pub start: fn(u32) -> usize,
    /// Allocate a new file whole; otherwise only what precedes the units (see
    /// [`Mapping::reserve`]).
    pub reserve_all: bool,
}

/// The first words of every shared file's header. `magic` is written last when the file
/// is created.
#[repr(C)]
struct Prefix {
    magic: AtomicU64,
    version: AtomicU32,
    count: AtomicU32,
    unit: AtomicU32,
}

impl Layout {
    fn len(&self, count: u32) -> usize {
        (self.start)(count) + count as usize * self.unit as usize
    }
}

impl Mapping {
    /// Opens (creating, mode 0666: php-fpm workers and the forwarder may run as
    /// different users) and maps the file at `path` laid out as `layout`, under an
    /// exclusive `flock`: a new (or empty) file is sized, allocated and given its header
    /// prefix; an existing one is checked against the layout (magic, version, unit size,
    /// a count that fits) and keeps its own count. Returns the mapping and the count.
    pub(crate) fn open(path: &Path, layout: &Layout) -> Result<(Mapping, u32), ActiveError> {
        let fresh_len = layout.len(layout.count);
        let cpath =
            CString::new(path.as_os_str().as_bytes()).map_err(|_| ActiveError::Incompatible {
                path: path.display().to_string(),
                reason: "path contains a NUL byte".into(),
            })?;
        // SAFETY: plain libc calls on a valid C string and the fd they return.
        unsafe {
            let fd = libc::open(
                cpath.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                0o666,
            );
            if fd < 0 {
                return Err(io_err("open", path));
            }
            libc::fchmod(fd, 0o666);
            if libc::flock(fd, libc::LOCK_EX) != 0 {
                let e = io_err("flock", path);
                libc::close(fd);
                return Err(e);
            }
            // From here the mapping owns `fd` (closed with it).
            let result = Self::map_fd(fd, path, fresh_len).and_then(|(map, fresh)| {
                if fresh {
                    let reserve_len = if layout.reserve_all {
                        fresh_len
                    } else {
                        (layout.start)(layout.count)
                    };
                    if let Err(source) = map.reserve(0, reserve_len) {
                        // Nothing written yet: the next opener starts over.
                        libc::ftruncate(fd, 0);
                        return Err(ActiveError::Io {
                            op: "fallocate",
                            path: path.display().to_string(),
                            source,
                        });
                    }
                }
                let count = map.prefix(path, layout, fresh)?;
                Ok((map, count))
            });
            match result {
                Ok((mut map, count)) => {
                    libc::flock(fd, libc::LOCK_UN);
                    // A file allocated whole needs its descriptor no more.
                    if layout.reserve_all {
                        libc::close(fd);
                        map.fd = -1;
                    }
                    Ok((map, count))
                }
                // `fd` is closed already, which released the lock.
                Err(e) => Err(e),
            }
        }
    }

    unsafe fn map_fd(
        fd: i32,
        path: &Path,
        fresh_len: usize,
    ) -> Result<(Mapping, bool), ActiveError> {
        let fail = |e: ActiveError| {
            libc::close(fd);
            Err(e)
        };
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return fail(io_err("fstat", path));
        }
        let fresh = st.st_size == 0;
        let len = if fresh {
            if libc::ftruncate(fd, fresh_len as libc::off_t) != 0 {
                return fail(io_err("ftruncate", path));
            }
            fresh_len
        } else {
            if (st.st_size as usize) < HEADER_SIZE {
                return fail(ActiveError::Incompatible {
                    path: path.display().to_string(),
                    reason: format!("file is {} bytes", st.st_size),
                });
            }
            st.st_size as usize
        };
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if base == libc::MAP_FAILED {
            return fail(io_err("mmap", path));
        }
        Ok((
            Mapping {
                base: base as *mut u8,
                len,
                fd,
            },
            fresh,
        ))
    }

    /// Writes a fresh file's header prefix, or checks an existing one: the unit count.
    fn prefix(&self, path: &Path, layout: &Layout, fresh: bool) -> Result<u32, ActiveError> {
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked when mapped) and
        // page aligned.
        let p = unsafe { &*(self.base as *const Prefix) };
        if fresh {
            p.version.store(layout.version, Ordering::Relaxed);
            p.count.store(layout.count, Ordering::Relaxed);
            p.unit.store(layout.unit, Ordering::Relaxed);
            p.magic.store(layout.magic, Ordering::Release);
            return Ok(layout.count);
        }
        let incompatible = |reason: String| ActiveError::Incompatible {
            path: path.display().to_string(),
            reason,
        };
        if p.magic.load(Ordering::Acquire) != layout.magic {
            return Err(incompatible("bad magic".into()));
        }
        let version = p.version.load(Ordering::Relaxed);
        let unit = p.unit.load(Ordering::Relaxed);
        let count = p.count.load(Ordering::Relaxed);
        if version != layout.version || unit != layout.unit {
            return Err(incompatible(format!(
                "version {version}, {} size {unit}",
                layout.unit_name
            )));
        }
        if count == 0 || count > layout.max_count || layout.len(count) > self.len {
            return Err(incompatible(format!(
                "{count} {}s do not fit in {} bytes",
                layout.unit_name, self.len
            )));
        }
        Ok(count)
    }

    /// Allocates the file's bytes `[offset, offset + len)` (`posix_fallocate`), or says
    /// why not (no room on the file system). Pages of a sparse file are otherwise allocated when
    /// first touched, and a tmpfs that is full then kills the process with `SIGBUS` — a
    /// container's 64 MiB `/dev/shm` fills up long before a file of 1,024 rings does.
    pub(crate) fn reserve(&self, offset: usize, len: usize) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if self.fd < 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        }
        // SAFETY: our open descriptor; the range is checked by the kernel.
        match unsafe { libc::posix_fallocate(self.fd, offset as libc::off_t, len as libc::off_t) } {
            0 => Ok(()),
            e => Err(std::io::Error::from_raw_os_error(e)),
        }
    }

    /// Takes (`F_WRLCK`) or drops (`F_UNLCK`) an open-file-description lock on the file's
    /// first byte, without waiting: false when another open file holds it. The kernel
    /// drops it when the descriptor closes (the process ends), in any pid namespace.
    pub(crate) fn lock_byte(&self, kind: i32) -> bool {
        if self.fd < 0 {
            return false;
        }
        // SAFETY: a zeroed flock filled in; our descriptor.
        unsafe {
            let mut l: libc::flock = std::mem::zeroed();
            l.l_type = kind as libc::c_short;
            l.l_whence = libc::SEEK_SET as libc::c_short;
            l.l_start = 0;
            l.l_len = 1;
            libc::fcntl(self.fd, libc::F_OFD_SETLK, &l) == 0
        }
    }

    /// The mapping's first byte (page aligned).
    pub(crate) fn base(&self) -> *mut u8 {
        self.base
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len come from a successful mmap; fd is ours (or -1).
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
            if self.fd >= 0 {
                libc::close(self.fd);
            }
        }
    }
}

/// A mapped active-transaction file. The mapping lives as long as this value.
pub struct ActiveMap {
    map: Mapping,
    slots: u32,
}

impl std::fmt::Debug for ActiveMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveMap")
            .field("slots", &self.slots)
            .finish()
    }
}

fn io_err(op: &'static str, path: &Path) -> ActiveError {
    ActiveError::Io {
        op,
        path: path.display().to_string(),
        source: std::io::Error::last_os_error(),
    }
}

/// Whether a process with this pid exists (`EPERM` counts as alive).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

impl ActiveMap {
    /// Opens the file at `path`, creating it with `slots` slots (mode 0666, so php-fpm
    /// workers and the forwarder may run as different users) when it does not exist or
    /// is empty. An existing file keeps its own slot count; a file of another layout is
    /// [`ActiveError::Incompatible`].
    pub fn open(path: &Path, slots: u32) -> Result<Self, ActiveError> {
        let layout = Layout {
            magic: MAGIC,
            version: VERSION,
            count: slots.max(1),
            max_count: u32::MAX / SLOT_SIZE as u32,
            unit: SLOT_SIZE as u32,
            unit_name: "slot",
            start: |_| HEADER_SIZE,
            reserve_all: true,
        };
        Mapping::open(path, &layout).map(|(map, slots)| ActiveMap { map, slots })
    }

    fn slot(&self, index: u32) -> &Slot {
        debug_assert!(index < self.slots);
        // SAFETY: index < slots and the mapping holds slots * SLOT_SIZE bytes after the
        // header; slots are 8-byte aligned (SLOT_SIZE is a multiple of 8).
        unsafe {
            &*(self
                .map
                .base()
                .add(HEADER_SIZE + index as usize * SLOT_SIZE) as *const Slot)
        }
    }

    /// Number of slots in the file.
    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    /// Claims a slot for process `pid` (once per process: after a fork, claim again).
    pub fn claim(&self, pid: i32) -> Result<SlotWriter<'_>, ActiveError> {
        let n = self.slots;
        let start = ((pid as u32).wrapping_mul(2_654_435_761)) % n;
        for i in 0..n {
            let index = (start + i) % n;
            let slot = self.slot(index);
            let owner = slot.pid.load(Ordering::Acquire);
            let won = owner == pid
                || (owner == 0
                    && slot
                        .pid
                        .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok())
                || (owner != 0
                    && !pid_alive(owner)
                    && slot
                        .pid
                        .compare_exchange(owner, pid, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok());
            if won {
                let writer = SlotWriter { slot, index };
                writer.reset();
                return Ok(writer);
            }
        }
        Err(ActiveError::Full(n))
    }

    /// Frees the slots of processes that no longer exist; returns their pids.
    pub fn reap_dead(&self) -> Vec<i32> {
        let mut dead = Vec::new();
        for index in 0..self.slots {
            let slot = self.slot(index);
            let owner = slot.pid.load(Ordering::Acquire);
            if owner != 0
                && !pid_alive(owner)
                && slot
                    .pid
                    .compare_exchange(owner, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                dead.push(owner);
            }
        }
        dead
    }

    /// The transactions running right now, each read consistently (a slot that stays
    /// torn after a few retries is skipped). Slots of dead processes are included with
    /// `alive == false`; see [`ActiveMap::reap_dead`].
    pub fn snapshot(&self) -> Vec<SlotSnapshot> {
        let mut out = Vec::new();
        for index in 0..self.slots {
            let slot = self.slot(index);
            if slot.pid.load(Ordering::Relaxed) == 0 {
                continue;
            }
            if let Some(snap) = read_slot(slot, index) {
                out.push(snap);
            }
        }
        out
    }
}

fn store_bytes(dst: &[AtomicU64], src: &[u8]) -> usize {
    let n = src.len().min(dst.len() * 8);
    let src = &src[..n];
    // Whole words as plain loads (no copy call per word), then the tail once.
    let words = src.chunks_exact(8);
    let tail = words.remainder();
    let mut slots = dst.iter();
    // `words` first: zip stops on it without taking another slot.
    for (chunk, word) in words.zip(slots.by_ref()) {
        let bytes: [u8; 8] = chunk.try_into().unwrap_or_default();
        word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
    }
    if let (Some(word), false) = (slots.next(), tail.is_empty()) {
        let mut b = [0u8; 8];
        b[..tail.len()].copy_from_slice(tail);
        word.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
    n
}

fn load_bytes(src: &[AtomicU64], len: usize) -> Vec<u8> {
    let len = len.min(src.len() * 8);
    let mut out = Vec::with_capacity(len.next_multiple_of(8));
    for word in &src[..len.div_ceil(8)] {
        out.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The start of `s` that fits in `cap` bytes without splitting a UTF-8 character.
fn fit(s: &[u8], cap: usize) -> &[u8] {
    if s.len() <= cap {
        return s;
    }
    let mut end = cap;
    while end > 0 && (s[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &s[..end]
}

/// One consistent read of a running slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSnapshot {
    /// Slot index in the file.
    pub index: u32,
    /// The worker process.
    pub pid: i32,
    /// Whether that process still exists.
    pub alive: bool,
    /// Transaction start, unix nanoseconds.
    pub start_ns: u64,
    /// W3C trace id of the transaction.
    pub trace_id: [u8; 16],
    /// Span id of the transaction's entry span.
    pub span_id: [u8; 8],
    /// `service.name` of the PHP application.
    pub service: String,
    /// HTTP method (empty for CLI).
    pub method: String,
    /// Client address (empty for CLI).
    pub client: String,
    /// Request URI or script (truncated to [`URI_CAP`] bytes).
    pub uri: String,
    /// What the transaction is doing now.
    pub activity_kind: ActivityKind,
    /// When the current activity started, unix nanoseconds (0 when none).
    pub activity_start_ns: u64,
    /// SQL text or URL of the current activity (truncated to [`ACTIVITY_CAP`] bytes).
    pub activity_text: String,
}

fn read_slot(slot: &Slot, index: u32) -> Option<SlotSnapshot> {
    for _ in 0..8 {
        let s1 = slot.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let pid = slot.pid.load(Ordering::Relaxed);
        let state = slot.state.load(Ordering::Relaxed);
        let start_ns = slot.start_ns.load(Ordering::Relaxed);
        let t0 = slot.trace_id[0].load(Ordering::Relaxed);
        let t1 = slot.trace_id[1].load(Ordering::Relaxed);
        let span = slot.span_id.load(Ordering::Relaxed);
        let lens = slot.lens.load(Ordering::Relaxed);
        let activity = slot.activity.load(Ordering::Relaxed);
        let activity_start_ns = slot.activity_start_ns.load(Ordering::Relaxed);
        let service = load_bytes(&slot.service, (lens & 0xffff) as usize);
        let method = load_bytes(&slot.method, ((lens >> 16) & 0xffff) as usize);
        let client = load_bytes(&slot.client, ((lens >> 32) & 0xffff) as usize);
        let uri = load_bytes(&slot.uri, ((lens >> 48) & 0xffff) as usize);
        let text = load_bytes(&slot.activity_text, ((activity >> 16) & 0xffff) as usize);
        fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) != s1 {
            continue;
        }
        if state != STATE_RUNNING {
            return None;
        }
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&t0.to_le_bytes());
        trace_id[8..].copy_from_slice(&t1.to_le_bytes());
        let lossy = |b: Vec<u8>| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        return Some(SlotSnapshot {
            index,
            pid,
            alive: pid_alive(pid),
            start_ns,
            trace_id,
            span_id: span.to_le_bytes(),
            service: lossy(service),
            method: lossy(method),
            client: lossy(client),
            uri: lossy(uri),
            activity_kind: ActivityKind::from_u8((activity & 0xff) as u8),
            activity_start_ns,
            activity_text: lossy(text),
        });
    }
    None
}

/// What [`SlotWriter::begin`] publishes about a transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct TxInfo<'a> {
    /// Start, unix nanoseconds.
    pub start_ns: u64,
    /// W3C trace id.
    pub trace_id: [u8; 16],
    /// Entry span id.
    pub span_id: [u8; 8],
    /// `service.name`.
    pub service: &'a [u8],
    /// HTTP method.
    pub method: &'a [u8],
    /// Client address.
    pub client: &'a [u8],
    /// Request URI or script.
    pub uri: &'a [u8],
}

/// The owning process's handle on its slot: lock-free, allocation-free, syscall-free.
#[derive(Debug)]
pub struct SlotWriter<'a> {
    slot: &'a Slot,
    index: u32,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("pid", &self.pid.load(Ordering::Relaxed))
            .finish()
    }
}

impl SlotWriter<'_> {
    /// Index of the claimed slot.
    pub fn index(&self) -> u32 {
        self.index
    }

    #[inline]
    fn write(&self, f: impl FnOnce(&Slot)) {
        let s = self.slot.seq.load(Ordering::Relaxed);
        self.slot.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        f(self.slot);
        self.slot.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn reset(&self) {
        // A previous owner may have died mid-write: make the counter even first.
        let s = self.slot.seq.load(Ordering::Relaxed);
        if s & 1 == 1 {
            self.slot.seq.store(s.wrapping_add(1), Ordering::Release);
        }
        self.write(|slot| {
            slot.state.store(STATE_IDLE, Ordering::Relaxed);
            slot.lens.store(0, Ordering::Relaxed);
            slot.activity.store(0, Ordering::Relaxed);
        });
    }

    /// Publishes a transaction as running.
    pub fn begin(&self, tx: &TxInfo<'_>) {
        self.write(|slot| {
            slot.start_ns.store(tx.start_ns, Ordering::Relaxed);
            slot.trace_id[0].store(
                u64::from_le_bytes(tx.trace_id[..8].try_into().unwrap_or_default()),
                Ordering::Relaxed,
            );
            slot.trace_id[1].store(
                u64::from_le_bytes(tx.trace_id[8..].try_into().unwrap_or_default()),
                Ordering::Relaxed,
            );
            slot.span_id
                .store(u64::from_le_bytes(tx.span_id), Ordering::Relaxed);
            let s = store_bytes(&slot.service, fit(tx.service, SERVICE_CAP)) as u64;
            let m = store_bytes(&slot.method, fit(tx.method, METHOD_CAP)) as u64;
            let c = store_bytes(&slot.client, fit(tx.client, CLIENT_CAP)) as u64;
            let u = store_bytes(&slot.uri, fit(tx.uri, URI_CAP)) as u64;
            slot.lens
                .store(s | (m << 16) | (c << 32) | (u << 48), Ordering::Relaxed);
            slot.activity.store(0, Ordering::Relaxed);
            slot.activity_start_ns.store(0, Ordering::Relaxed);
            slot.state.store(STATE_RUNNING, Ordering::Relaxed);
        });
    }

    /// Publishes what the transaction is doing now (SQL text or URL).
    pub fn set_activity(&self, kind: ActivityKind, start_ns: u64, text: &[u8]) {
        self.write(|slot| {
            let n = store_bytes(&slot.activity_text, fit(text, ACTIVITY_CAP)) as u64;
            slot.activity_start_ns.store(start_ns, Ordering::Relaxed);
            slot.activity
                .store(kind as u64 | (n << 16), Ordering::Relaxed);
        });
    }

    /// The transaction went back to running PHP code.
    pub fn clear_activity(&self) {
        self.write(|slot| {
            slot.activity.store(0, Ordering::Relaxed);
            slot.activity_start_ns.store(0, Ordering::Relaxed);
        });
    }

    /// The transaction finished: the slot stays claimed but is idle.
    pub fn end(&self) {
        self.write(|slot| {
            slot.state.store(STATE_IDLE, Ordering::Relaxed);
            slot.activity.store(0, Ordering::Relaxed);
        });
    }

    /// Gives the slot back (process shutdown).
    pub fn release(self) {
        self.end();
        let pid = self.slot.pid.load(Ordering::Relaxed);
        let _ = self
            .slot
            .pid
            .compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[path = "active_tests.rs"]
mod tests;
