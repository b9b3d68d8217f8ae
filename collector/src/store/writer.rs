//! The store writer: the one consumer of the write-ahead log.
//!
//! It reads accepted requests from the log in order, derives rows, inserts them in
//! batches, and only then commits the log up to what was inserted. While the store is
//! down it retries the same batch (same deduplication token) with backoff and the log
//! keeps growing on disk; on restart it resumes from the last commit, so anything that
//! was acknowledged to a sender reaches the store.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tern_wal::{Position, Wal};
use tokio::sync::watch;

use super::Store;
use crate::model::derive::Deriver;
use crate::model::rows::Rows;
use crate::server::config::WriterConfig;
use crate::server::metrics::Metrics;

/// Most bytes read from the log per step.
const READ_BYTES: usize = 8 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Moves the log into the store until shutdown.
pub struct Writer {
    pub wal: Arc<Wal>,
    pub store: Store,
    pub deriver: Deriver,
    pub metrics: Arc<Metrics>,
    pub config: WriterConfig,
}

impl Writer {
    /// Runs until `shutdown` turns true; then inserts what the log holds (if the store
    /// is up) and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut pos = self.wal.checkpoint();
        let flush = Duration::from_millis(self.config.flush_interval_ms);
        loop {
            let stopping = *shutdown.borrow();
            let start = pos;
            let mut rows = Rows::default();
            let deadline = Instant::now() + flush;
            // Gather a batch: up to batch_spans spans, or whatever came within the interval.
            loop {
                let records = match self.wal.read(pos, READ_BYTES) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the write-ahead log");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                };
                if records.is_empty() {
                    if stopping || (!rows.is_empty() && Instant::now() >= deadline) {
                        break;
                    }
                    let wait = deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(5));
                    tokio::select! {
                        _ = self.wal.wait_for_append(pos) => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                    if *shutdown.borrow()
                        && rows.is_empty()
                        && self.wal.read(pos, 1).map_or(true, |r| r.is_empty())
                    {
                        return;
                    }
                    continue;
                }
                let now_ms = now_ms();
                tokio::task::block_in_place(|| {
                    for record in &records {
                        match ExportTraceServiceRequest::decode(&record.payload[..]) {
                            Ok(req) => rows.append(self.deriver.derive(&req, now_ms)),
                            Err(e) => {
                                self.metrics.store_corrupt_records.fetch_add(1, Relaxed);
                                tracing::error!(error = %e, "undecodable record in the write-ahead log, skipped");
                            }
                        }
                        pos = record.next;
                    }
                });
                if rows.spans.len() >= self.config.batch_spans || Instant::now() >= deadline {
                    break;
                }
            }
            self.metrics
                .endpoints_folded
                .store(self.deriver.endpoints_folded(), Relaxed);
            if pos == start {
                if stopping {
                    return;
                }
                continue;
            }
            if !self
                .insert_until_done(&rows, start, pos, &mut shutdown)
                .await
            {
                return; // shutting down with the store still down: the log keeps the batch
            }
            if let Err(e) = self.wal.commit(pos) {
                tracing::error!(error = %e, "cannot commit the write-ahead log");
            }
            self.metrics
                .wal_used_bytes
                .store(self.wal.stats().used_bytes, Relaxed);
        }
    }

    /// Inserts `rows` (the log between `start` and `end`), retrying while the store is
    /// down. False when shutdown came first.
    async fn insert_until_done(
        &self,
        rows: &Rows,
        start: Position,
        end: Position,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        if rows.is_empty() {
            return true;
        }
        let token = format!("{start:?}..{end:?}")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect::<String>();
        let mut backoff = Duration::from_millis(self.config.retry_initial_ms.max(1));
        let mut failures = 0u32;
        loop {
            match self.store.insert(rows, &token).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(failures, "store is back; batch inserted");
                    }
                    self.metrics.store_up.store(1, Relaxed);
                    self.metrics.store_batches.fetch_add(1, Relaxed);
                    self.metrics
                        .store_spans_written
                        .fetch_add(rows.spans.len() as u64, Relaxed);
                    self.metrics
                        .store_transactions_written
                        .fetch_add(rows.transactions.len() as u64, Relaxed);
                    return true;
                }
                Err(e) => {
                    self.metrics.store_up.store(0, Relaxed);
                    self.metrics.store_insert_errors.fetch_add(1, Relaxed);
                    if failures == 0 {
                        tracing::warn!(error = %e, "store insert failed; keeping the batch in the write-ahead log and retrying");
                    }
                    failures += 1;
                    if *shutdown.borrow() && failures >= 3 {
                        return false;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    self.metrics
                        .wal_used_bytes
                        .store(self.wal.stats().used_bytes, Relaxed);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
