//! Frames to export requests. Connections push checked frames into a queue bounded in
//! bytes (full → the frame is dropped and counted); one task concatenates frames into
//! requests (an `ExportTraceServiceRequest` is a list of resource spans, so concatenated
//! requests are one request) bounded in bytes and spans, and sends them with the agent's
//! OTLP client, retrying with backoff while the collector is down. While it retries the
//! queue fills, and then new frames are dropped: memory stays bounded.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{add, Config, Counters};
use crate::export::{export, rejected, retryable, MAX_BACKOFF, MIN_BACKOFF};

/// A checked frame waiting for export.
pub(crate) struct Frame {
    bytes: Vec<u8>,
    spans: usize,
}

/// The connections' side of the queue.
#[derive(Clone)]
pub(crate) struct Queue {
    tx: mpsc::UnboundedSender<Frame>,
    max_bytes: u64,
    counters: Arc<Counters>,
}

impl Queue {
    pub(crate) fn new(max_bytes: usize, counters: Arc<Counters>) -> (Queue, Receiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Queue {
            tx,
            max_bytes: max_bytes as u64,
            counters: counters.clone(),
        };
        (queue, Receiver { rx, counters })
    }

    /// Never waits: over the byte bound the frame is dropped and counted.
    pub(crate) fn push(&self, bytes: Vec<u8>, spans: usize) {
        let len = bytes.len() as u64;
        let queued = &self.counters.queued_bytes;
        if queued.fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            queued.fetch_sub(len, Ordering::Relaxed);
            self.counters.dropped(spans, "queue full");
            return;
        }
        if self.tx.send(Frame { bytes, spans }).is_err() {
            queued.fetch_sub(len, Ordering::Relaxed);
            self.counters.dropped(spans, "forwarder stopping");
        }
    }
}

/// The export task's side of the queue.
pub(crate) struct Receiver {
    rx: mpsc::UnboundedReceiver<Frame>,
    counters: Arc<Counters>,
}

impl Receiver {
    async fn recv(&mut self) -> Option<Frame> {
        let f = self.rx.recv().await?;
        self.counters
            .queued_bytes
            .fetch_sub(f.bytes.len() as u64, Ordering::Relaxed);
        Some(f)
    }

    fn try_recv(&mut self) -> Option<Frame> {
        let f = self.rx.try_recv().ok()?;
        self.counters
            .queued_bytes
            .fetch_sub(f.bytes.len() as u64, Ordering::Relaxed);
        Some(f)
    }
}

/// A request being filled.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    spans: usize,
    frames: usize,
}

impl Batch {
    fn fits(&self, f: &Frame, config: &Config) -> bool {
        self.frames == 0
            || (self.bytes.len() + f.bytes.len() <= config.batch_bytes
                && self.spans + f.spans <= config.batch_spans)
    }

    fn add(&mut self, f: Frame) {
        self.bytes.extend_from_slice(&f.bytes);
        self.spans += f.spans;
        self.frames += 1;
    }

    fn take(&mut self) -> (Bytes, usize, usize) {
        let out = (
            Bytes::from(std::mem::take(&mut self.bytes)),
            self.spans,
            self.frames,
        );
        (self.spans, self.frames) = (0, 0);
        out
    }
}

enum Event {
    Frame(Frame),
    Due,
    Stop,
}

/// The export task: fills requests, sends them when full or `export_interval` after
/// their first frame, and on stop sends what is queued within `shutdown_timeout`.
pub(crate) async fn run(
    config: Config,
    channel: Channel,
    mut rx: Receiver,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sender = Sender {
        client: tonic::client::Grpc::new(channel),
        counters: &counters,
        deadline: None,
        shutdown_timeout: config.shutdown_timeout,
    };
    let mut batch = Batch::default();
    let mut due = Instant::now();
    let mut stats_at = Instant::now() + config.stats_interval;
    loop {
        let event = tokio::select! {
            f = rx.recv() => match f {
                Some(f) => Event::Frame(f),
                None => Event::Stop,
            },
            _ = tokio::time::sleep_until(due), if batch.frames > 0 => Event::Due,
            _ = tokio::time::sleep_until(stats_at) => {
                stats_at = Instant::now() + config.stats_interval;
                super::log_stats(&counters.stats(), "forwarder counters");
                continue;
            }
            _ = stop.changed() => Event::Stop,
        };
        match event {
            Event::Frame(f) => {
                if !batch.fits(&f, &config) {
                    sender.send(batch.take(), &mut stop).await;
                }
                if batch.frames == 0 {
                    due = Instant::now() + config.export_interval;
                }
                batch.add(f);
                if batch.bytes.len() >= config.batch_bytes || batch.spans >= config.batch_spans {
                    sender.send(batch.take(), &mut stop).await;
                }
            }
            Event::Due => sender.send(batch.take(), &mut stop).await,
            Event::Stop => break,
        }
    }
    // Stopping: send what is queued (within the shutdown timeout), count the rest.
    sender.stopping();
    rx.rx.close();
    while let Some(f) = rx.try_recv() {
        if !batch.fits(&f, &config) {
            sender.send(batch.take(), &mut stop).await;
        }
        batch.add(f);
    }
    if batch.frames > 0 {
        sender.send(batch.take(), &mut stop).await;
    }
}

/// Sends requests with retries.
struct Sender<'a> {
    client: tonic::client::Grpc<Channel>,
    counters: &'a Counters,
    /// Set when stopping: retries end here.
    deadline: Option<Instant>,
    shutdown_timeout: Duration,
}

impl Sender<'_> {
    fn stopping(&mut self) {
        self.deadline
            .get_or_insert(Instant::now() + self.shutdown_timeout);
    }

    /// Sends one request until the collector takes it, refuses it for good (dropped and
    /// counted), or the shutdown deadline passes (dropped and counted).
    async fn send(
        &mut self,
        (req, spans, frames): (Bytes, usize, usize),
        stop: &mut watch::Receiver<bool>,
    ) {
        let c = self.counters;
        let drop_all = |why| {
            // `dropped` counts one frame itself.
            add(&c.dropped_frames, frames.saturating_sub(1) as u64);
            c.dropped(spans, why);
        };
        let mut backoff = MIN_BACKOFF;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                drop_all("shutdown timeout");
                return;
            }
            match export(&mut self.client, req.clone()).await {
                Ok(resp) => {
                    let rejected = rejected(&resp, spans as u64);
                    add(&c.rejected_spans, rejected);
                    add(&c.exported_spans, spans as u64 - rejected);
                    return;
                }
                Err(status) if retryable(status.code()) => {
                    add(&c.retried_batches, 1);
                    if backoff == MIN_BACKOFF {
                        tracing::debug!(code = ?status.code(), "collector not accepting spans, retrying");
                    }
                    let wait = match self.deadline {
                        Some(d) => backoff.min(d.saturating_duration_since(Instant::now())),
                        None => backoff,
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed(), if self.deadline.is_none() => self.stopping(),
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "collector refused a batch");
                    drop_all("refused by the collector");
                    return;
                }
            }
        }
    }
}
