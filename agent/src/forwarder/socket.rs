//! The unix stream socket PHP workers connect to, and the shared frame rings
//! (`tern_php_wire::ring`) read on the same round. Frames are read with
//! `tern_php_wire::FrameDecoder`; a connection that sends an oversized or malformed frame
//! is closed and counted, so a bad client only ever loses its own connection.
//!
//! A PHP worker sends one small frame per request. Reading each as it arrives (one epoll
//! wake-up and a context switch per request) cost the forwarder ~40–50 µs of CPU per
//! request. So the connections are not registered for readiness at all: one task reads
//! every connection, without blocking, [`READ_INTERVAL`] apart (up to [`IDLE_INTERVAL`]
//! while nothing comes). Frames wait in the socket's buffer meanwhile (about 200 KiB per
//! connection; a PHP worker that finds it full drops its frame and counts it), and the
//! forwarder wakes at most 100 times a second whatever the request rate.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::io::Read;
use std::time::Duration;

use tern_php_wire::{Drained, FrameDecoder, Rings};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};

use super::active::Services;
use super::batch::Queue;
use super::{add, scan, Counters, Error};

/// Binds `path`: a stale socket file (nobody answers) is removed first; a live one means
/// another forwarder runs, and anything that is not a socket is left alone.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, Error> {
    let io = |source| Error::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::NotASocket(path.to_path_buf()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
        tracing::info!(socket = %path.display(), "removed a stale socket file");
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    // PHP workers usually run as another user than the forwarder.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(io)?;
    Ok(listener)
}

/// How often every connection is read while frames come.
pub(crate) const READ_INTERVAL: Duration = Duration::from_millis(10);
/// The longest wait between reads after rounds that read nothing (doubling from
/// [`READ_INTERVAL`]); short enough that a burst after a quiet spell fits the buffers.
pub(crate) const IDLE_INTERVAL: Duration = Duration::from_millis(40);

/// Most bytes read from one connection per round, so one busy worker cannot hold up the
/// others.
const MAX_READ_PER_ROUND: usize = 4 << 20;

/// Accepts connections until `stop`; a reader task reads them.
pub(crate) async fn accept(
    listener: UnixListener,
    rings: Option<Rings>,
    max_connections: usize,
    queue: Queue,
    services: Arc<Services>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let (conns_tx, conns_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_all(
        conns_rx,
        rings.map(RingReader::new),
        queue,
        services,
        counters.clone(),
        stop.clone(),
    ));
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accepting a php connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if counters.open_connections.load(Ordering::Relaxed) >= max_connections as u64 {
            add(&counters.refused_connections, 1);
            drop(stream);
            continue;
        }
        // Out of tokio's reactor: the reader polls it; a std stream stays non-blocking.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        add(&counters.connections, 1);
        add(&counters.open_connections, 1);
        let _ = conns_tx.send(Conn {
            stream,
            decoder: FrameDecoder::new(),
        });
    }
    drop(conns_tx);
    let _ = reader.await;
}

/// One PHP connection.
struct Conn {
    stream: std::os::unix::net::UnixStream,
    decoder: FrameDecoder,
}

/// Reads every connection [`READ_INTERVAL`] apart until `stop`, then once more.
async fn read_all(
    mut new: mpsc::UnboundedReceiver<Conn>,
    mut rings: Option<RingReader>,
    queue: Queue,
    services: Arc<Services>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut wait = READ_INTERVAL;
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => stopping = true,
        }
        while let Ok(c) = new.try_recv() {
            conns.push(c);
        }
        let mut read = rings
            .as_mut()
            .map_or(0, |r| r.drain(&queue, &services, &counters));
        conns.retain_mut(|c| {
            let (n, open) = read_conn(c, &mut buf, &queue, &services, &counters);
            read += n;
            if !open {
                counters.open_connections.fetch_sub(1, Ordering::Relaxed);
            }
            open
        });
        wait = if read > 0 {
            READ_INTERVAL
        } else {
            (wait * 2).min(IDLE_INTERVAL)
        };
    }
    counters
        .open_connections
        .fetch_sub(conns.len() as u64, Ordering::Relaxed);
    if let Some(r) = rings {
        r.release();
    }
}

/// Reads what `c` has sent and queues its frames: the bytes read, and false when it
/// closed or misbehaved.
fn read_conn(
    c: &mut Conn,
    buf: &mut [u8],
    queue: &Queue,
    services: &Services,
    counters: &Counters,
) -> (usize, bool) {
    let mut read = 0;
    while read < MAX_READ_PER_ROUND {
        let n = match c.stream.read(buf) {
            Ok(0) => return (read, false),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return (read, true),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return (read, false),
        };
        read += n;
        c.decoder.push(&buf[..n]);
        if !take_frames(&mut c.decoder, queue, services, counters) {
            return (read, false);
        }
    }
    (read, true)
}

/// Checks and queues the complete frames `decoder` holds; false at the first bad one
/// (counted), after which the stream cannot be trusted.
fn take_frames(
    decoder: &mut FrameDecoder,
    queue: &Queue,
    services: &Services,
    counters: &Counters,
) -> bool {
    loop {
        let frame = match decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return true,
            Err(e) => {
                bad_frame(counters, &e.to_string());
                return false;
            }
        };
        match scan(&frame) {
            Ok(info) if info.spans == 0 => {}
            Ok(info) => {
                add(&counters.frames, 1);
                add(&counters.spans, info.spans as u64);
                if let Some(service) = &info.service {
                    services.saw(service);
                }
                queue.push(frame, info.spans);
            }
            Err(e) => {
                bad_frame(counters, &e.to_string());
                return false;
            }
        }
    }
}

/// The workers' frame rings (`tern_php_wire::ring`), drained on the same reading round
/// as the connections once this forwarder holds the reader's claim (tried again every
/// [`SWEEP_EVERY`] rounds while another forwarder holds it).
pub(crate) struct RingReader {
    rings: Rings,
    claimed: bool,
    rounds: u64,
    /// One decoder for every ring: a ring hands over whole frames only.
    decoder: FrameDecoder,
}

/// Every this many rounds (about a second) the claim is retried and every ring with
/// unread bytes is visited, marked or not.
const SWEEP_EVERY: u64 = 100;

impl RingReader {
    pub(crate) fn new(rings: Rings) -> Self {
        let claimed = rings.claim_reader();
        if !claimed {
            tracing::warn!("another forwarder reads the frame rings; taking frames from the socket until it stops");
        }
        RingReader {
            rings,
            claimed,
            rounds: 0,
            decoder: FrameDecoder::new(),
        }
    }

    /// Drains every ring written to since the last round (every ring holding bytes, on
    /// a sweep) and queues its frames: the bytes read.
    fn drain(&mut self, queue: &Queue, services: &Services, counters: &Counters) -> usize {
        self.rounds += 1;
        let sweep = self.rounds.is_multiple_of(SWEEP_EVERY);
        if !self.claimed {
            if !sweep || !self.rings.claim_reader() {
                return 0;
            }
            self.claimed = true;
            tracing::info!("reading the frame rings now");
        }
        let mut read = 0;
        let (rings, decoder) = (&self.rings, &mut self.decoder);
        rings.round(sweep, |i| {
            match rings.drain(i, |b| decoder.push(b)) {
                Drained::Bytes(n) => read += n,
                Drained::Corrupt => {
                    bad_frame(counters, "a frame ring's counters were corrupt");
                    return;
                }
            }
            // A bad frame, or bytes that do not end on a frame (no writer keeping the
            // protocol leaves them), lose the rest of this ring's bytes of the round;
            // the next starts on a frame.
            let mut clean = take_frames(decoder, queue, services, counters);
            if clean && decoder.buffered() > 0 {
                bad_frame(counters, "a frame ring ended inside a frame");
                clean = false;
            }
            if !clean {
                *decoder = FrameDecoder::new();
            }
        });
        read
    }

    /// Stops reading: writers go back to the socket.
    fn release(&self) {
        if self.claimed {
            self.rings.release_reader();
        }
    }
}

fn bad_frame(counters: &Counters, error: &str) {
    add(&counters.bad_frames, 1);
    if !counters.warned_bad.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            error,
            "dropped a bad frame from a php worker: its connection closed, or the rest of its ring's bytes this round skipped (counted; warned once)"
        );
    }
}
