//! Figures of the standard mix: spans per transaction and bytes per span.

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::encode::{gzip_bytes, to_json};
use crate::mix::{Generated, Mix, MixOptions};

/// Sizes of a sample of generated requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MixProfile {
    /// What was generated.
    pub generated: Generated,
    /// Requests in the sample.
    pub requests: u64,
    /// Protobuf bytes, all requests.
    pub protobuf_bytes: u64,
    /// Protobuf bytes after gzip (fast level).
    pub protobuf_gzip_bytes: u64,
    /// OTLP/JSON bytes.
    pub json_bytes: u64,
}

impl MixProfile {
    /// Generates `traces` traces in requests of `batch` with a mix like the one that
    /// `seed` and `options` give, and measures them.
    pub fn measure(seed: u64, options: MixOptions, traces: usize, batch: usize) -> MixProfile {
        let mut mix = Mix::new(seed, options);
        let mut req = ExportTraceServiceRequest::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut p = MixProfile::default();
        let mut left = traces;
        while left > 0 {
            let n = left.min(batch.max(1));
            left -= n;
            p.generated += mix.fill_request(&mut req, n, now);
            p.requests += 1;
            let pb = req.encode_to_vec();
            p.protobuf_bytes += pb.len() as u64;
            p.protobuf_gzip_bytes += gzip_bytes(&pb).len() as u64;
            p.json_bytes += to_json(&req).map_or(0, |j| j.len() as u64);
        }
        p
    }

    /// Spans per trace (one front-door transaction and all it causes).
    pub fn spans_per_trace(&self) -> f64 {
        ratio(self.generated.spans, self.generated.traces)
    }

    /// Spans per transaction (entry span in any service).
    pub fn spans_per_transaction(&self) -> f64 {
        ratio(self.generated.spans, self.generated.transactions)
    }

    /// Transactions per trace.
    pub fn transactions_per_trace(&self) -> f64 {
        ratio(self.generated.transactions, self.generated.traces)
    }

    /// Protobuf bytes per span, request framing included.
    pub fn protobuf_bytes_per_span(&self) -> f64 {
        ratio(self.protobuf_bytes, self.generated.spans)
    }

    /// Gzipped protobuf bytes per span.
    pub fn protobuf_gzip_bytes_per_span(&self) -> f64 {
        ratio(self.protobuf_gzip_bytes, self.generated.spans)
    }

    /// OTLP/JSON bytes per span.
    pub fn json_bytes_per_span(&self) -> f64 {
        ratio(self.json_bytes, self.generated.spans)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
