//! Handing a request's frames to the forwarder. While the forwarder drains the shared
//! frame rings (`tern_php_wire::ring`), a frame is copied into this process's ring: no
//! system call. Otherwise (no forwarder reading, or the ring full) it is the one write
//! to the forwarder's unix stream socket: non-blocking, never signalling, never waiting.
//! Anything but a complete write drops the frame and counts it; a partial write closes
//! the socket (the stream would be corrupt) and the next request reconnects. While the
//! forwarder is away, connecting is retried at most once a second.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock;

/// Frames written completely.
pub static SENT: AtomicU64 = AtomicU64::new(0);
/// Of them, frames handed over through the shared frame ring.
pub static SENT_SHARED: AtomicU64 = AtomicU64::new(0);
/// Frames dropped (no forwarder, socket full, partial write, too large).
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Frames dropped because the socket buffer was full.
pub static DROPPED_FULL: AtomicU64 = AtomicU64::new(0);

const RETRY_NS: u64 = 1_000_000_000;
/// The socket of one process (a forked worker makes its own).
#[derive(Debug)]
pub struct Sender {
    fd: i32,
    next_try: u64,
    /// This process's frame ring (the one of its active-transaction slot), when open.
    pub ring: Option<tern_php_wire::RingWriter<'static>>,
}

impl Default for Sender {
    fn default() -> Self {
        Self {
            fd: -1,
            next_try: 0,
            ring: None,
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.close();
    }
}

/// Connects a non-blocking unix stream socket; -1 when nobody listens.
pub fn connect(path: &str) -> i32 {
    // SAFETY: plain socket calls on a zeroed sockaddr_un filled within bounds.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return -1;
        }
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            libc::close(fd);
            return -1;
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
        if libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) != 0 {
            libc::close(fd);
            return -1;
        }
        fd
    }
}

impl Sender {
    fn close(&mut self) {
        if self.fd >= 0 {
            // SAFETY: our own descriptor.
            unsafe { libc::close(self.fd) };
            self.fd = -1;
        }
    }

    /// Hands one frame (length prefix included) over through the ring or in one
    /// non-blocking write, or drops and counts it. False when it was not sent.
    pub fn send(&mut self, socket: &str, frame: &[u8]) -> bool {
        if frame.len() > 4 + tern_php_wire::MAX_FRAME {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if let Some(ring) = &self.ring {
            if ring.draining() && ring.push(frame) {
                SENT.fetch_add(1, Ordering::Relaxed);
                SENT_SHARED.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        self.write_frame(socket, frame)
    }

    fn write_frame(&mut self, socket: &str, frame: &[u8]) -> bool {
        if self.fd < 0 {
            let now = clock::mono_ns();
            if now < self.next_try {
                DROPPED.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            self.fd = connect(socket);
            if self.fd < 0 {
                self.next_try = now + RETRY_NS;
                DROPPED.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        // SAFETY: our descriptor and buffer.
        let n = unsafe {
            libc::send(
                self.fd,
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n == frame.len() as isize {
            SENT.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        DROPPED.fetch_add(1, Ordering::Relaxed);
        if n < 0 {
            let err = std::io::Error::last_os_error().raw_os_error();
            if err == Some(libc::EAGAIN) || err == Some(libc::EWOULDBLOCK) {
                // Nothing was written: the stream is intact, keep it.
                DROPPED_FULL.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        // A partial write or a broken connection: start over with a new stream.
        self.close();
        false
    }
}
