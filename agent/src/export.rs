//! The exporter: a bounded queue that the application pushes finished spans into
//! without blocking (full → drop and count), and a background thread with its own
//! single-threaded tokio runtime that batches them to the collector over OTLP gRPC,
//! retries with backoff while the collector is down, reports active transactions and
//! heartbeats over `tern.v1.LiveService`, and flushes when the [`Guard`] drops.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tern_proto::codec::RawCodec;

use bytes::Bytes;
use tern_proto::v1::{AgentHello, RemoteSettings};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::classify::{Category, Fields};
use crate::config::{Config, Transport};
use crate::layer::Shared;
use crate::live::{Beat, LiveSession};
use crate::otlp;
use crate::queue::Receiver;

/// A span that has ended, waiting for export.
#[derive(Debug)]
pub(crate) struct FinishedSpan {
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: u64,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub category: Category,
    /// Name, target, attributes, kind, errors.
    pub fields: Fields,
}

impl FinishedSpan {
    /// The exported name: `otel.name`, else the name given at close (HTTP server
    /// spans), else the span's.
    pub(crate) fn name(&self) -> &str {
        let rare = self.fields.rare.as_deref();
        rare.and_then(|r| r.otel_name.as_deref().or(r.name.as_deref()))
            .unwrap_or(self.fields.meta.name())
    }
}

/// The agent's own counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    warned_drop: AtomicBool,
}

impl Counters {
    /// Counts spans thrown away (a full queue or a stopped exporter).
    pub(crate) fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A reading of the agent's counters, since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Spans the collector accepted (or, with [`Transport::Discard`], converted).
    pub exported_spans: u64,
    /// Spans thrown away: the queue was full, the collector refused them for good, or the
    /// shutdown flush ran out of time.
    pub dropped_spans: u64,
    /// Export requests that failed and were tried again.
    pub retried_batches: u64,
    /// Spans the collector answered as rejected (invalid) in a partial success.
    pub rejected_spans: u64,
    /// Spans waiting in the queue now.
    pub queued_spans: usize,
    /// Transactions running now.
    pub active_transactions: usize,
}

pub(crate) fn stats(shared: &Shared) -> Stats {
    let c = &shared.counters;
    Stats {
        exported_spans: c.exported.load(Ordering::Relaxed),
        dropped_spans: c.dropped.load(Ordering::Relaxed),
        retried_batches: c.retried.load(Ordering::Relaxed),
        rejected_spans: c.rejected.load(Ordering::Relaxed),
        queued_spans: shared.queue.len(),
        active_transactions: shared.active.len(),
    }
}

/// Keeps the exporter running; dropping it flushes what is queued (bounded by the
/// shutdown timeout) and stops the background thread.
///
/// Hold it in `main` for the life of the program: `let (layer, _guard) = ...`.
#[derive(Debug)]
pub struct Guard {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Guard {
    /// The agent's counters.
    pub fn stats(&self) -> Stats {
        stats(&self.shared)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An error starting the exporter.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The endpoint URL is not usable by the gRPC client.
    #[error("endpoint {url:?}: {source}")]
    Endpoint {
        url: String,
        source: tonic::transport::Error,
    },
    /// The background thread or its runtime could not be created.
    #[error("starting the exporter thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The collector's gRPC endpoint with the agent's timeouts (shared with the PHP forwarder).
pub(crate) fn grpc_endpoint(url: &str) -> Result<Endpoint, StartError> {
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|source| StartError::Endpoint {
            url: url.to_string(),
            source,
        })?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5)))
}

/// Starts the background thread.
pub(crate) fn start(
    config: Config,
    shared: Arc<Shared>,
    rx: Receiver,
) -> Result<Guard, StartError> {
    let endpoint = match &config.transport {
        Transport::Grpc(url) => Some(grpc_endpoint(url)?),
        Transport::Discard => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(silence_this_thread)
        .build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("tern-agent-export".into())
        .spawn(move || {
            silence_this_thread();
            runtime.block_on(async move {
                let channel = endpoint.map(|e| e.connect_lazy());
                let live = channel.clone().map(|ch| {
                    tokio::spawn(run_live(
                        config.clone(),
                        worker_shared.clone(),
                        ch,
                        stop_rx.clone(),
                    ))
                });
                run_exporter(config, worker_shared, rx, channel, stop_rx).await;
                if let Some(live) = live {
                    let _ = live.await;
                }
            });
        })?;
    Ok(Guard {
        stop: stop_tx,
        thread: Some(thread),
        shared,
    })
}

/// The agent's own threads must not report to the agent (tonic and hyper emit spans):
/// give them a no-op subscriber.
fn silence_this_thread() {
    let guard = tracing::dispatcher::set_default(&tracing::Dispatch::none());
    // The thread keeps the no-op subscriber for its whole life.
    std::mem::forget(guard);
}

/// Whether a failed export is worth trying again (the collector is down or busy).
pub(crate) fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
    )
}

/// First wait before retrying a failed export; doubles up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between export retries.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn run_exporter(
    config: Config,
    shared: Arc<Shared>,
    mut rx: Receiver,
    channel: Option<Channel>,
    mut stop: watch::Receiver<bool>,
) {
    let mut encoder = otlp::RequestEncoder::new(&config.service_name, &config.instance);
    let mut client = channel.map(tonic::client::Grpc::new);
    let mut deadline: Option<Instant> = None;
    let mut batch: Vec<FinishedSpan> = Vec::with_capacity(config.batch_size);
    loop {
        crate::clock::recalibrate();
        if deadline.is_none() && *stop.borrow() {
            deadline = Some(Instant::now() + config.shutdown_timeout);
        }
        loop {
            // One buffer, reused: no large allocation per batch.
            rx.fill(&mut batch, config.batch_size);
            if batch.is_empty() {
                break;
            }
            let n = batch.len() as u64;
            let full = batch.len() == config.batch_size;
            let req = encoder.encode(batch.drain(..));
            send(
                &mut client,
                req,
                n,
                &shared,
                &mut stop,
                &mut deadline,
                &config,
            )
            .await;
            if !full {
                break;
            }
        }
        if deadline.is_some() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.export_interval) => {}
            _ = stop.changed() => {}
        }
    }
    // Anything still queued after the flush ran out of time is lost: count it.
    let left = rx.close();
    shared.counters.dropped.fetch_add(left, Ordering::Relaxed);
}

/// One OTLP export call with pre-encoded request bytes (shared with the PHP forwarder).
pub(crate) async fn export(
    client: &mut tonic::client::Grpc<Channel>,
    req: Bytes,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    client
        .unary(
            tonic::Request::new(req),
            path,
            RawCodec::<ExportTraceServiceResponse>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// Spans of a request of `n` the collector reports as rejected (OTLP partial success),
/// at most `n`.
pub(crate) fn rejected(resp: &ExportTraceServiceResponse, n: u64) -> u64 {
    resp.partial_success
        .as_ref()
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
        .min(n)
}

async fn send(
    client: &mut Option<tonic::client::Grpc<Channel>>,
    req: Bytes,
    n: u64,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    deadline: &mut Option<Instant>,
    config: &Config,
) {
    let c = &shared.counters;
    let Some(client) = client else {
        // Transport::Discard: the request is built and thrown away.
        drop(req);
        c.exported.fetch_add(n, Ordering::Relaxed);
        return;
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        match export(client, req.clone()).await {
            Ok(resp) => {
                let rejected = rejected(&resp, n);
                c.rejected.fetch_add(rejected, Ordering::Relaxed);
                c.exported.fetch_add(n - rejected, Ordering::Relaxed);
                return;
            }
            Err(status) if retryable(status.code()) => {
                c.retried.fetch_add(1, Ordering::Relaxed);
                if c.dropped.load(Ordering::Relaxed) > 0
                    && !c.warned_drop.swap(true, Ordering::Relaxed)
                {
                    eprintln!(
                        "tern-agent: the collector is not accepting spans ({}); spans are dropped while the queue is full (counted in stats)",
                        status.code()
                    );
                }
                let wait = match deadline {
                    Some(d) if Instant::now() + backoff > *d => {
                        c.dropped.fetch_add(n, Ordering::Relaxed);
                        return;
                    }
                    _ => backoff,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed(), if deadline.is_none() => {
                        *deadline = Some(Instant::now() + config.shutdown_timeout);
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(status) => {
                // Refused for good (bad request): retrying would not help.
                c.dropped.fetch_add(n, Ordering::Relaxed);
                if !c.warned_drop.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tern-agent: the collector refused a batch ({}: {}); dropped and counted",
                        status.code(),
                        status.message()
                    );
                }
                return;
            }
        }
    }
}

async fn run_live(
    config: Config,
    shared: Arc<Shared>,
    channel: Channel,
    mut stop: watch::Receiver<bool>,
) {
    let hello = AgentHello {
        agent_id: format!("{}-{:016x}", config.instance, crate::ids::next_u64()),
        service_name: config.service_name.clone(),
        instance: config.instance.clone(),
        language: "rust".into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        host_name: config
            .instance
            .rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or_default(),
        pid: std::process::id(),
    };
    let mut session = LiveSession::new(channel, hello);
    let apply = |s: RemoteSettings| {
        let ratio = if s.sample_ratio > 0.0 {
            s.sample_ratio.min(1.0)
        } else {
            config.sample_ratio
        };
        shared
            .sample_ratio
            .store(ratio.to_bits(), Ordering::Relaxed);
        shared.profile_threshold_ns.store(
            s.profile_threshold_ms.saturating_mul(1_000_000),
            Ordering::Relaxed,
        );
    };
    loop {
        let s = stats(&shared);
        let beat = Beat {
            exported_spans: s.exported_spans,
            dropped_spans: s.dropped_spans,
            retried_batches: s.retried_batches,
        };
        if let Some(settings) = session.report(shared.active.snapshot(), beat).await {
            apply(settings);
        }
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.live_interval) => {}
            _ = stop.changed() => break,
        }
    }
    session.leave().await;
}
