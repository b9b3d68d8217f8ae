//! The collector's own metrics: plain atomic counters, rendered in the Prometheus text
//! format at `/metrics` and as JSON at `/api/v1/self`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why an ingest request was refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// The body is not valid protobuf / JSON for the message.
    Malformed,
    /// The content type is neither protobuf nor JSON.
    UnsupportedContentType,
    /// Content-Encoding other than gzip or identity, or a corrupt gzip stream.
    BadEncoding,
    /// Larger than `otlp.max_request_bytes` (before or after decompression).
    TooLarge,
    /// A signal Tern does not ingest yet (metrics, logs).
    UnsupportedSignal,
}

impl BadRequest {
    pub const ALL: [BadRequest; 5] = [
        BadRequest::Malformed,
        BadRequest::UnsupportedContentType,
        BadRequest::BadEncoding,
        BadRequest::TooLarge,
        BadRequest::UnsupportedSignal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BadRequest::Malformed => "malformed",
            BadRequest::UnsupportedContentType => "unsupported_content_type",
            BadRequest::BadEncoding => "bad_encoding",
            BadRequest::TooLarge => "too_large",
            BadRequest::UnsupportedSignal => "unsupported_signal",
        }
    }
}

/// All self-metrics. One instance, shared by reference.
#[derive(Debug, Default)]
pub struct Metrics {
    pub ingest_requests: AtomicU64,
    pub ingest_spans_accepted: AtomicU64,
    pub ingest_spans_rejected: AtomicU64,
    bad_requests: [AtomicU64; BadRequest::ALL.len()],
    /// Requests refused because the write-ahead log was full (429 / RESOURCE_EXHAUSTED).
    pub ingest_throttled: AtomicU64,
    pub wal_append_errors: AtomicU64,
    pub store_batches: AtomicU64,
    pub store_spans_written: AtomicU64,
    pub store_transactions_written: AtomicU64,
    pub store_insert_errors: AtomicU64,
    /// WAL records that could not be decoded on replay (should stay zero).
    pub store_corrupt_records: AtomicU64,
    pub api_requests: AtomicU64,
    pub api_bad_requests: AtomicU64,
    pub api_errors: AtomicU64,
    pub live_snapshots: AtomicU64,
    /// Gauges set by their owners.
    pub wal_used_bytes: AtomicU64,
    pub store_up: AtomicU64,
    /// Newest schema migration applied (0 until the store was reached).
    pub store_schema_version: AtomicU64,
    pub endpoints_folded: AtomicU64,
}

impl Metrics {
    pub fn bad_request(&self, why: BadRequest) {
        self.bad_requests[why as usize].fetch_add(1, Relaxed);
    }

    pub fn bad_requests(&self, why: BadRequest) -> u64 {
        self.bad_requests[why as usize].load(Relaxed)
    }

    fn pairs(&self) -> Vec<(&'static str, &'static str, u64)> {
        let c = |a: &AtomicU64| a.load(Relaxed);
        vec![
            (
                "tern_ingest_requests_total",
                "counter",
                c(&self.ingest_requests),
            ),
            (
                "tern_ingest_spans_accepted_total",
                "counter",
                c(&self.ingest_spans_accepted),
            ),
            (
                "tern_ingest_spans_rejected_total",
                "counter",
                c(&self.ingest_spans_rejected),
            ),
            (
                "tern_ingest_throttled_total",
                "counter",
                c(&self.ingest_throttled),
            ),
            (
                "tern_wal_append_errors_total",
                "counter",
                c(&self.wal_append_errors),
            ),
            ("tern_wal_used_bytes", "gauge", c(&self.wal_used_bytes)),
            ("tern_store_up", "gauge", c(&self.store_up)),
            (
                "tern_store_schema_version",
                "gauge",
                c(&self.store_schema_version),
            ),
            (
                "tern_store_batches_total",
                "counter",
                c(&self.store_batches),
            ),
            (
                "tern_store_spans_written_total",
                "counter",
                c(&self.store_spans_written),
            ),
            (
                "tern_store_transactions_written_total",
                "counter",
                c(&self.store_transactions_written),
            ),
            (
                "tern_store_insert_errors_total",
                "counter",
                c(&self.store_insert_errors),
            ),
            (
                "tern_store_corrupt_records_total",
                "counter",
                c(&self.store_corrupt_records),
            ),
            ("tern_api_requests_total", "counter", c(&self.api_requests)),
            (
                "tern_api_bad_requests_total",
                "counter",
                c(&self.api_bad_requests),
            ),
            ("tern_api_errors_total", "counter", c(&self.api_errors)),
            (
                "tern_live_snapshots_total",
                "counter",
                c(&self.live_snapshots),
            ),
            (
                "tern_endpoints_folded_total",
                "counter",
                c(&self.endpoints_folded),
            ),
        ]
    }

    /// Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, kind, value) in self.pairs() {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(out, "# TYPE tern_ingest_bad_requests_total counter");
        for why in BadRequest::ALL {
            let _ = writeln!(
                out,
                "tern_ingest_bad_requests_total{{reason=\"{}\"}} {}",
                why.as_str(),
                self.bad_requests(why)
            );
        }
        out
    }

    /// The same figures as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, _, value) in self.pairs() {
            map.insert(name.to_string(), value.into());
        }
        let bad: serde_json::Map<_, _> = BadRequest::ALL
            .iter()
            .map(|w| (w.as_str().to_string(), self.bad_requests(*w).into()))
            .collect();
        map.insert("tern_ingest_bad_requests_total".into(), bad.into());
        map.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_are_counted_by_reason() {
        let m = Metrics::default();
        m.bad_request(BadRequest::TooLarge);
        m.bad_request(BadRequest::TooLarge);
        assert_eq!(m.bad_requests(BadRequest::TooLarge), 2);
        let text = m.render_prometheus();
        assert!(text.contains("tern_ingest_bad_requests_total{reason=\"too_large\"} 2"));
        assert!(text.contains("tern_ingest_bad_requests_total{reason=\"malformed\"} 0"));
    }
}
