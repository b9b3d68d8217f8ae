//! The unix stream socket PHP workers connect to. One task per connection reads frames
//! with `tern_php_wire::FrameDecoder`; a connection that sends an oversized or malformed
//! frame is closed and counted, so a bad or slow client only ever costs its own task.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tern_php_wire::FrameDecoder;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

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

/// Accepts connections until `stop`.
pub(crate) async fn accept(
    listener: UnixListener,
    max_connections: usize,
    queue: Queue,
    services: Arc<Services>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accepting a php connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if counters.open_connections.load(Ordering::Relaxed) >= max_connections as u64 {
            add(&counters.refused_connections, 1);
            drop(stream);
            continue;
        }
        add(&counters.connections, 1);
        add(&counters.open_connections, 1);
        tokio::spawn(serve(
            stream,
            queue.clone(),
            services.clone(),
            counters.clone(),
            stop.clone(),
        ));
    }
}

/// Reads frames from one PHP connection until it closes, misbehaves, or `stop`.
async fn serve(
    mut stream: UnixStream,
    queue: Queue,
    services: Arc<Services>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 64 << 10];
    'read: loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = stop.changed() => break,
        };
        decoder.push(&buf[..n]);
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    bad_frame(&counters, &e.to_string());
                    break 'read;
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
                    bad_frame(&counters, &e.to_string());
                    break 'read;
                }
            }
        }
    }
    counters.open_connections.fetch_sub(1, Ordering::Relaxed);
}

fn bad_frame(counters: &Counters, error: &str) {
    add(&counters.bad_frames, 1);
    if !counters.warned_bad.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            error,
            "closed a php connection that sent a bad frame (counted; warned once)"
        );
    }
}
