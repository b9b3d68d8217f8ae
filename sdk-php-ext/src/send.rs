//! The one write per request to the forwarder's unix stream socket: non-blocking,
//! never signalling, never waiting. Anything but a complete write drops the frame and
//! counts it; a partial write closes the socket (the stream would be corrupt) and the
//! next request reconnects. While the forwarder is away, connecting is retried at most
//! once a second.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::clock;

/// Frames written completely.
pub static SENT: AtomicU64 = AtomicU64::new(0);
/// Frames dropped (no forwarder, socket full, partial write, too large).
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Frames dropped because the socket buffer was full.
pub static DROPPED_FULL: AtomicU64 = AtomicU64::new(0);

const RETRY_NS: u64 = 1_000_000_000;
/// Largest frame written at once; bigger requests are split (a unix socket buffer holds
/// about 200 KiB by default).
pub const CHUNK: usize = 48 * 1024;

/// The socket of one process (a forked worker makes its own).
#[derive(Debug)]
pub struct Sender {
    fd: i32,
    next_try: u64,
    buf: Vec<u8>,
}

impl Default for Sender {
    fn default() -> Self {
        Self {
            fd: -1,
            next_try: 0,
            buf: Vec::new(),
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

    /// Encodes and sends one request, or drops and counts it. A request larger than
    /// [`CHUNK`] is split into several frames (same resource and scope, a share of the
    /// spans each), so no frame is larger than a socket buffer takes at once.
    pub fn send(&mut self, socket: &str, req: &ExportTraceServiceRequest) {
        if req.encoded_len() <= CHUNK {
            self.send_one(socket, req);
            return;
        }
        for part in split(req) {
            if !self.send_one(socket, &part) {
                break;
            }
        }
    }

    fn send_one(&mut self, socket: &str, req: &ExportTraceServiceRequest) -> bool {
        self.buf.clear();
        let len = req.encoded_len();
        if len > tern_php_wire::MAX_FRAME {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.buf.reserve(4 + len);
        self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        if req.encode(&mut self.buf).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let ok = self.write_frame(socket);
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        ok
    }

    fn write_frame(&mut self, socket: &str) -> bool {
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
                self.buf.as_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n == self.buf.len() as isize {
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

/// Splits a request into requests of at most about [`CHUNK`] bytes each, keeping the
/// resource and scope, spans in order (the entry span first).
pub fn split(req: &ExportTraceServiceRequest) -> Vec<ExportTraceServiceRequest> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            let mut part = Vec::new();
            let mut size = 0;
            for span in &ss.spans {
                let n = span.encoded_len() + 4;
                if size + n > CHUNK && !part.is_empty() {
                    out.push(wrap(rs, ss, std::mem::take(&mut part)));
                    size = 0;
                }
                size += n;
                part.push(span.clone());
            }
            if !part.is_empty() {
                out.push(wrap(rs, ss, part));
            }
        }
    }
    out
}

fn wrap(
    rs: &opentelemetry_proto::tonic::trace::v1::ResourceSpans,
    ss: &opentelemetry_proto::tonic::trace::v1::ScopeSpans,
    spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
) -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: rs.resource.clone(),
            scope_spans: vec![ScopeSpans {
                scope: ss.scope.clone(),
                spans,
                schema_url: ss.schema_url.clone(),
            }],
            schema_url: rs.schema_url.clone(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[test]
    fn a_large_request_splits_into_small_frames_with_every_span_once_in_order() {
        let spans: Vec<Span> = (0..3000u32)
            .map(|i| Span {
                name: format!("span {i} {}", "x".repeat(100)),
                ..Default::default()
            })
            .collect();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let parts = split(&req);
        assert!(parts.len() > 5);
        let mut names = Vec::new();
        for p in &parts {
            assert!(p.encoded_len() <= CHUNK + 200, "{}", p.encoded_len());
            names.extend(
                p.resource_spans[0].scope_spans[0]
                    .spans
                    .iter()
                    .map(|s| s.name.clone()),
            );
        }
        let want: Vec<String> = req.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(names, want);
    }
}
