//! Ingest: one module per protocol, all sharing [`Ingestor::accept`] — validate, append
//! to the write-ahead log, then acknowledge. Nothing is acknowledged before it is in the
//! log, so a crash after the acknowledgement loses nothing.

pub mod live;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod validate;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tern_wal::{AppendError, Wal};

use crate::server::metrics::Metrics;

/// Seconds a throttled sender is told to wait before retrying.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Why an otherwise valid request was not accepted. `Full` and `Io` are retryable.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("the collector's write-ahead log is full ({used} of {max} bytes) because the store is behind or down; retry later")]
    Full { used: u64, max: u64 },
    #[error(
        "request of {len} bytes exceeds the largest record the write-ahead log takes ({max} bytes)"
    )]
    TooLarge { len: usize, max: u64 },
    #[error("the collector cannot write its write-ahead log: {0}")]
    Io(String),
}

/// The shared accept path of every ingest protocol.
#[derive(Clone)]
pub struct Ingestor {
    pub wal: Arc<Wal>,
    pub metrics: Arc<Metrics>,
}

impl Ingestor {
    /// Validates `request`, appends what is valid to the log, and returns the verdict
    /// for the OTLP partial-success answer.
    pub async fn accept(
        &self,
        mut request: ExportTraceServiceRequest,
    ) -> Result<validate::Verdict, AcceptError> {
        self.metrics.ingest_requests.fetch_add(1, Relaxed);
        let verdict = validate::validate(&mut request, now_ns());
        self.metrics
            .ingest_spans_rejected
            .fetch_add(verdict.rejected, Relaxed);
        if verdict.accepted == 0 {
            return Ok(verdict);
        }
        let payload = request.encode_to_vec();
        let wal = self.wal.clone();
        let appended = tokio::task::spawn_blocking(move || wal.append(&payload))
            .await
            .map_err(|e| AcceptError::Io(e.to_string()))?;
        match appended {
            Ok(_) => {
                self.metrics
                    .ingest_spans_accepted
                    .fetch_add(verdict.accepted, Relaxed);
                Ok(verdict)
            }
            Err(AppendError::TooLarge { len, max }) => Err(AcceptError::TooLarge { len, max }),
            Err(AppendError::Full { used, max }) => {
                self.metrics.ingest_throttled.fetch_add(1, Relaxed);
                Err(AcceptError::Full { used, max })
            }
            Err(e) => {
                self.metrics.wal_append_errors.fetch_add(1, Relaxed);
                tracing::error!(error = %e, "write-ahead log append failed");
                Err(AcceptError::Io(e.to_string()))
            }
        }
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
