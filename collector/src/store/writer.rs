//! The store writer: the one consumer of the write-ahead log.
//!
//! It reads accepted requests from the log in order, derives rows, inserts them in
//! batches, and only then commits the log up to what was inserted. One insert runs while
//! the next batch is derived (the store's insert threads and the deriving thread work at
//! once); commits stay in log order. While the store is down the insert retries the same
//! batch (same deduplication token) with backoff and the log keeps growing on disk; on
//! restart the writer resumes from the last commit, so anything that was acknowledged to
//! a sender reaches the store.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tern_wal::{Position, Wal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Store;
use crate::aggregate::LiveWindows;
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
    /// Retention of spans/transactions and of rollups, for the schema's TTLs.
    pub ttl_days: u32,
    pub rollup_ttl_days: u32,
    /// The live per-second windows, fed with every derived transaction.
    pub windows: Arc<LiveWindows>,
}

/// The insert of one batch (`start..end` of the log), running beside the deriving.
struct InFlight {
    task: JoinHandle<bool>,
    end: Position,
}

impl Writer {
    /// Brings the schema up to date (retrying while the store is down: ingest keeps
    /// accepting into the log meanwhile), then runs until `shutdown` turns true; then
    /// inserts what the log holds (if the store is up) and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if !self.migrate(&mut shutdown).await {
            return;
        }
        let mut pos = self.wal.checkpoint();
        let mut in_flight: Option<InFlight> = None;
        loop {
            let stopping = *shutdown.borrow();
            let start = pos;
            let rows = self.gather(&mut pos, &mut shutdown, &mut in_flight).await;
            // The previous insert must finish (and be committed) before the next starts.
            if let Some(prev) = in_flight.take() {
                if !self.finish(prev).await {
                    return;
                }
            }
            if pos == start {
                if stopping || *shutdown.borrow() {
                    return;
                }
                continue;
            }
            in_flight = Some(InFlight {
                task: tokio::spawn(insert_until_done(
                    self.store.clone(),
                    self.metrics.clone(),
                    self.wal.clone(),
                    self.config.retry_initial_ms,
                    rows,
                    batch_token(start, pos),
                    shutdown.clone(),
                )),
                end: pos,
            });
        }
    }

    /// Applies the migrations, retrying with backoff. False when shutdown came first.
    async fn migrate(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut delay = Duration::from_millis(200);
        let mut warned = false;
        loop {
            match self
                .store
                .migrate(self.ttl_days, self.rollup_ttl_days)
                .await
            {
                Ok(applied) => {
                    if !applied.is_empty() {
                        tracing::info!(?applied, "schema migrations applied");
                    }
                    let newest = super::schema::MIGRATIONS.last().map_or(0, |m| m.version);
                    self.metrics
                        .store_schema_version
                        .store(newest.into(), Relaxed);
                    self.metrics.store_up.store(1, Relaxed);
                    return true;
                }
                Err(e) => {
                    self.metrics.store_up.store(0, Relaxed);
                    self.metrics.store_insert_errors.fetch_add(1, Relaxed);
                    if !warned {
                        tracing::warn!(error = %e, "store not ready; accepting into the write-ahead log and retrying");
                        warned = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return false,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Waits for an insert and commits the log past it. False when it gave up (shutdown
    /// with the store down: the log keeps the batch for next time).
    async fn finish(&self, insert: InFlight) -> bool {
        if !insert.task.await.unwrap_or(false) {
            return false;
        }
        if let Err(e) = self.wal.commit(insert.end) {
            tracing::error!(error = %e, "cannot commit the write-ahead log");
        }
        self.metrics
            .wal_used_bytes
            .store(self.wal.stats().used_bytes, Relaxed);
        true
    }

    /// Reads and derives a batch: up to `batch_spans` spans, or whatever came within the
    /// flush interval while the writer is caught up. Idle waits also finish an insert in flight, so the log is
    /// committed promptly when traffic stops.
    async fn gather(
        &mut self,
        pos: &mut Position,
        shutdown: &mut watch::Receiver<bool>,
        in_flight: &mut Option<InFlight>,
    ) -> Rows {
        let mut rows = Rows::default();
        let deadline = Instant::now() + Duration::from_millis(self.config.flush_interval_ms);
        loop {
            let records = match self.wal.read(*pos, READ_BYTES) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the write-ahead log");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return rows;
                }
            };
            if records.is_empty() {
                if *shutdown.borrow() || (!rows.is_empty() && Instant::now() >= deadline) {
                    return rows;
                }
                if rows.is_empty() {
                    if let Some(prev) = in_flight.take() {
                        if !self.finish(prev).await {
                            return rows;
                        }
                        continue;
                    }
                }
                let wait = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(5));
                tokio::select! {
                    _ = self.wal.wait_for_append(*pos) => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let now_ms = now_ms();
            tokio::task::block_in_place(|| {
                for record in &records {
                    match ExportTraceServiceRequest::decode(&record.payload[..]) {
                        Ok(req) => {
                            let derived = self.deriver.derive(&req, now_ms);
                            self.windows.record(&derived.transactions, now_ms);
                            rows.append(derived);
                        }
                        Err(e) => {
                            self.metrics.store_corrupt_records.fetch_add(1, Relaxed);
                            tracing::error!(error = %e, "undecodable record in the write-ahead log, skipped");
                        }
                    }
                    *pos = record.next;
                }
            });
            self.metrics
                .endpoints_folded
                .store(self.deriver.endpoints_folded(), Relaxed);
            // Behind (the log already holds more): fill the batch, bigger parts cost the
            // store less. Caught up: the flush interval bounds the wait.
            let behind = self.wal.end() > *pos;
            if rows.spans.len() >= self.config.batch_spans
                || (!behind && Instant::now() >= deadline)
            {
                return rows;
            }
        }
    }
}

/// Identifies a batch by its log range: a retried insert of the same batch carries the
/// same token and ClickHouse drops the repeat.
fn batch_token(start: Position, end: Position) -> String {
    format!(
        "{}-{}-{}-{}",
        start.segment(),
        start.offset(),
        end.segment(),
        end.offset()
    )
}

/// Inserts `rows`, retrying while the store is down. False when shutdown came first.
async fn insert_until_done(
    store: Store,
    metrics: Arc<Metrics>,
    wal: Arc<Wal>,
    retry_initial_ms: u64,
    rows: Rows,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    if rows.is_empty() {
        return true;
    }
    let mut backoff = Duration::from_millis(retry_initial_ms.max(1));
    let mut failures = 0u32;
    loop {
        match store.insert(&rows, &token).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "store is back; batch inserted");
                }
                metrics.store_up.store(1, Relaxed);
                metrics.store_batches.fetch_add(1, Relaxed);
                metrics
                    .store_spans_written
                    .fetch_add(rows.spans.len() as u64, Relaxed);
                metrics
                    .store_transactions_written
                    .fetch_add(rows.transactions.len() as u64, Relaxed);
                return true;
            }
            Err(e) => {
                metrics.store_up.store(0, Relaxed);
                metrics.store_insert_errors.fetch_add(1, Relaxed);
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
                metrics
                    .wal_used_bytes
                    .store(wal.stats().used_bytes, Relaxed);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
