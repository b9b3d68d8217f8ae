//! Sending encoded export requests to a collector over OTLP/gRPC or OTLP/HTTP, and
//! classifying the answers (accepted, partially rejected, backpressure, unreachable).

mod grpc;
mod http;
mod retry;

use std::time::Duration;

use bytes::Bytes;

use crate::encode::Protocol;
pub use retry::{parse_retry_after, Backoff, MAX_RETRY_AFTER};

/// What became of one export attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `rejected_spans` were refused (OTLP partial success).
    Accepted {
        /// Spans the collector reported as rejected.
        rejected_spans: u64,
    },
    /// Backpressure from the collector: HTTP 429/503 or gRPC RESOURCE_EXHAUSTED /
    /// UNAVAILABLE. Retry after `retry_after` when the collector said so.
    Throttled {
        /// `Retry-After` (HTTP) or `RetryInfo` / `retry-after` metadata (gRPC).
        retry_after: Option<Duration>,
        /// What the collector answered, e.g. `HTTP 429`.
        reason: String,
    },
    /// The endpoint could not be reached (connection refused, DNS, TLS…).
    Unreachable {
        /// The transport error.
        error: String,
    },
    /// Any other failure; `retryable` follows the OTLP specification.
    Failed {
        /// What went wrong.
        error: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
}

/// The exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The endpoint is not a usable URL.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    Client(String),
}

/// Sends pre-encoded bodies (see [`crate::encode::encode_body`]) to one endpoint.
/// Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Exporter {
    inner: Inner,
    target: String,
}

#[derive(Clone)]
enum Inner {
    Grpc(grpc::GrpcExporter),
    Http(http::HttpExporter),
}

impl Exporter {
    /// An exporter for `endpoint` (`http://host:port`; for OTLP/HTTP `/v1/traces` is
    /// appended unless the path already ends with it). Connects lazily.
    pub fn new(
        endpoint: &str,
        protocol: Protocol,
        gzip: bool,
        timeout: Duration,
    ) -> Result<Exporter, SendError> {
        let invalid = |reason: String| SendError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason,
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid("must start with http:// or https://".into()));
        }
        match protocol {
            Protocol::Grpc => {
                let e = grpc::GrpcExporter::new(endpoint, gzip, timeout).map_err(invalid)?;
                Ok(Exporter {
                    inner: Inner::Grpc(e),
                    target: endpoint.to_string(),
                })
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let base = endpoint.trim_end_matches('/');
                let url = if base.ends_with("/v1/traces") {
                    base.to_string()
                } else {
                    format!("{base}/v1/traces")
                };
                let e = http::HttpExporter::new(&url, protocol, gzip, timeout)?;
                Ok(Exporter {
                    inner: Inner::Http(e),
                    target: url,
                })
            }
        }
    }

    /// Where requests go (the full URL for OTLP/HTTP).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// One export attempt of an encoded body.
    pub async fn export(&mut self, body: Bytes) -> Outcome {
        match &mut self.inner {
            Inner::Grpc(e) => e.export(body).await,
            Inner::Http(e) => e.export(body).await,
        }
    }
}
