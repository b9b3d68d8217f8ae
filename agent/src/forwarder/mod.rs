//! The PHP forwarder: the long-running half of the PHP agent. PHP workers (the `tern.so`
//! extension) write one frame per finished request into their shared-memory ring while
//! the forwarder drains the rings, or to a unix stream socket; the forwarder checks each
//! frame, batches frames into OTLP export requests to the
//! collector, and reports the transactions running right now, read once a second from
//! the extension's shared-memory slots, over `tern.v1.LiveService`.
//!
//! The contract with the extension (frames, shared memory, defaults) is the
//! `tern-php-wire` crate. Everything here is bounded: a bad client loses its connection,
//! a full queue drops frames, a collector that is down gets retries with backoff; every
//! loss is counted ([`Stats`]), logged periodically and sent in heartbeats.
//!
//! ```no_run
//! # async fn f() -> Result<(), tern_agent::forwarder::Error> {
//! let config = tern_agent::forwarder::Config::default();
//! let forwarder = tern_agent::forwarder::Forwarder::start(config).await?;
//! tokio::signal::ctrl_c().await.ok();
//! forwarder.shutdown().await;
//! # Ok(()) }
//! ```

mod active;
mod batch;
mod scan;
mod socket;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use scan::{scan, FrameInfo, ScanError};

/// The forwarder's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The unix stream socket PHP workers write frames to (default
    /// `/tmp/tern-agent.sock`).
    pub socket: PathBuf,
    /// The extension's active-transaction shared memory file (default
    /// `/dev/shm/tern-active`); a missing file means no PHP worker runs yet.
    pub active: PathBuf,
    /// The collector's OTLP gRPC URL (default `http://127.0.0.1:4317`).
    pub endpoint: String,
    /// This host's name, the `instance` of the PHP services in live reports.
    pub instance: String,
    /// Frame bytes waiting for export before new frames are dropped (default 64 MiB).
    pub queue_bytes: usize,
    /// Most bytes per export request (default 4 MiB; a single larger frame goes alone).
    pub batch_bytes: usize,
    /// Most spans per export request (default 8,192).
    pub batch_spans: usize,
    /// How long a partial batch waits for more frames (default 200 ms).
    pub export_interval: Duration,
    /// How often active transactions and heartbeats are reported (default 1 s).
    pub live_interval: Duration,
    /// How often the counters are logged (default 60 s).
    pub stats_interval: Duration,
    /// Most PHP connections at once; more are closed at once and counted (default 4,096).
    pub max_connections: usize,
    /// How long shutdown may spend sending what is queued (default 5 s).
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Config {
            socket: tern_php_wire::DEFAULT_SOCKET.into(),
            active: tern_php_wire::DEFAULT_ACTIVE_PATH.into(),
            endpoint: tern_php_wire::DEFAULT_COLLECTOR.into(),
            instance: host,
            queue_bytes: 64 << 20,
            batch_bytes: 4 << 20,
            batch_spans: 8_192,
            export_interval: Duration::from_millis(200),
            live_interval: Duration::from_secs(1),
            stats_interval: Duration::from_secs(60),
            max_connections: 4_096,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the forwarder could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another forwarder answers on the socket path.
    #[error("another forwarder is listening on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket path holds something that is not a socket; it is left alone.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// Binding or preparing the socket failed.
    #[error("socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The collector URL is not usable.
    #[error(transparent)]
    Endpoint(#[from] crate::StartError),
}

/// The forwarder's counters, shared by its tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections: AtomicU64,
    open_connections: AtomicU64,
    refused_connections: AtomicU64,
    frames: AtomicU64,
    spans: AtomicU64,
    bad_frames: AtomicU64,
    dropped_frames: AtomicU64,
    dropped_spans: AtomicU64,
    exported_spans: AtomicU64,
    rejected_spans: AtomicU64,
    retried_batches: AtomicU64,
    queued_bytes: AtomicU64,
    warned_drop: AtomicBool,
    warned_bad: AtomicBool,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A reading of the forwarder's counters since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// PHP connections accepted.
    pub connections: u64,
    /// PHP connections open now.
    pub open_connections: u64,
    /// Connections closed at once because `max_connections` were open.
    pub refused_connections: u64,
    /// Well-formed frames received.
    pub frames: u64,
    /// Spans in those frames.
    pub spans: u64,
    /// Oversized or malformed frames; each closed its connection.
    pub bad_frames: u64,
    /// Frames dropped: the queue was full, the collector refused them for good, or
    /// shutdown ran out of time.
    pub dropped_frames: u64,
    /// Spans in the dropped frames.
    pub dropped_spans: u64,
    /// Spans the collector accepted.
    pub exported_spans: u64,
    /// Spans the collector answered as rejected (invalid) in a partial success.
    pub rejected_spans: u64,
    /// Export requests that failed and were tried again.
    pub retried_batches: u64,
    /// Frame bytes waiting for export now.
    pub queued_bytes: u64,
}

impl Counters {
    fn stats(&self) -> Stats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections: r(&self.connections),
            open_connections: r(&self.open_connections),
            refused_connections: r(&self.refused_connections),
            frames: r(&self.frames),
            spans: r(&self.spans),
            bad_frames: r(&self.bad_frames),
            dropped_frames: r(&self.dropped_frames),
            dropped_spans: r(&self.dropped_spans),
            exported_spans: r(&self.exported_spans),
            rejected_spans: r(&self.rejected_spans),
            retried_batches: r(&self.retried_batches),
            queued_bytes: r(&self.queued_bytes),
        }
    }

    /// Counts a frame that is thrown away.
    fn dropped(&self, spans: usize, why: &'static str) {
        add(&self.dropped_frames, 1);
        add(&self.dropped_spans, spans as u64);
        if !self.warned_drop.swap(true, Ordering::Relaxed) {
            tracing::warn!(reason = why, "dropping php frames (counted; warned once)");
        }
    }
}

/// A running forwarder: its tasks run on the caller's tokio runtime.
pub struct Forwarder {
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    socket: PathBuf,
}

impl Forwarder {
    /// Binds the socket (removing a stale socket file, refusing when another forwarder
    /// answers on it) and starts accepting, exporting and reporting.
    pub async fn start(config: Config) -> Result<Forwarder, Error> {
        let channel = crate::export::grpc_endpoint(&config.endpoint)?.connect_lazy();
        let listener = socket::bind(&config.socket)?;
        let rings = open_rings(&config.active);
        let counters = Arc::new(Counters::default());
        let services = Arc::new(active::Services::default());
        let (stop, stop_rx) = watch::channel(false);
        let (queue, rx) = batch::Queue::new(config.queue_bytes, counters.clone());
        let tasks = vec![
            tokio::spawn(socket::accept(
                listener,
                rings,
                config.max_connections,
                queue,
                services.clone(),
                counters.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(batch::run(
                config.clone(),
                channel.clone(),
                rx,
                counters.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(active::report(
                config.clone(),
                channel,
                services,
                counters.clone(),
                stop_rx,
            )),
        ];
        tracing::info!(
            socket = %config.socket.display(),
            active = %config.active.display(),
            endpoint = %config.endpoint,
            "forwarder started"
        );
        Ok(Forwarder {
            counters,
            stop,
            tasks,
            socket: config.socket,
        })
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.counters.stats()
    }

    /// Stops accepting, removes the socket file, sends what is queued (bounded by the
    /// shutdown timeout, the rest is counted as dropped) and reports that nothing runs.
    pub async fn shutdown(self) -> Stats {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = std::fs::remove_file(&self.socket);
        let stats = self.counters.stats();
        log_stats(&stats, "forwarder stopped");
        stats
    }
}

/// The workers' frame rings next to the active-transaction file; without them (an
/// error) the workers' frames all come through the socket.
fn open_rings(active: &std::path::Path) -> Option<tern_php_wire::Rings> {
    let path = tern_php_wire::ring::path_for(active);
    tern_php_wire::Rings::open(&path, tern_php_wire::active::DEFAULT_SLOTS)
        .map_err(
            |e| tracing::warn!(error = %e, "no frame rings; taking frames from the socket only"),
        )
        .ok()
}

fn log_stats(s: &Stats, message: &'static str) {
    tracing::info!(
        frames = s.frames,
        spans = s.spans,
        exported_spans = s.exported_spans,
        dropped_frames = s.dropped_frames,
        dropped_spans = s.dropped_spans,
        bad_frames = s.bad_frames,
        rejected_spans = s.rejected_spans,
        retried_batches = s.retried_batches,
        open_connections = s.open_connections,
        refused_connections = s.refused_connections,
        queued_bytes = s.queued_bytes,
        "{message}"
    );
}
