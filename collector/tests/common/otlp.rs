//! Hand-built OTLP requests with exactly known content, for assertions.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

pub fn kv_int(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// A transaction: a SERVER span with one SQL child (old semconv names) and one
/// external HTTP child (new names), ids derived from `seed`.
pub struct Txn {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub spans: Vec<Span>,
}

impl Txn {
    pub fn txid(&self) -> String {
        format!(
            "{}:{}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id)
        )
    }
}

pub fn ids(seed: u64) -> ([u8; 16], [u8; 8]) {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(seed | 1 << 60).to_be_bytes());
    t[8..].copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    let s = (seed.wrapping_mul(31) | 1 << 62).to_be_bytes();
    (t, s)
}

/// `end_ns` is the end of the entry span; it lasts `elapsed_ms`.
pub fn txn(seed: u64, end_ns: u64, elapsed_ms: u64, path: &str, failed: bool) -> Txn {
    let (trace_id, span_id) = ids(seed);
    let start = end_ns - elapsed_ms * 1_000_000;
    let child = |n: u64| {
        let mut id = span_id;
        id[7] = id[7].wrapping_add(n as u8);
        id[0] ^= 0x5a;
        id
    };
    let mut entry = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: format!("GET {path}"),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end_ns,
        attributes: vec![
            kv("http.method", "GET"),
            kv("http.target", path),
            kv_int("http.status_code", if failed { 500 } else { 200 }),
            kv("client.address", "10.1.2.3"),
        ],
        ..Default::default()
    };
    if failed {
        entry.status = Some(Status {
            code: status::StatusCode::Error as i32,
            message: "boom".into(),
        });
        entry.events.push(span::Event {
            time_unix_nano: end_ns - 1000,
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", "OrderNotFound"),
                kv("exception.message", "order 42 does not exist"),
            ],
            ..Default::default()
        });
    }
    let sql = Span {
        trace_id: trace_id.to_vec(),
        span_id: child(1).to_vec(),
        parent_span_id: span_id.to_vec(),
        name: "SELECT orders".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start + 1_000_000,
        end_time_unix_nano: start + 3_000_000,
        attributes: vec![
            kv("db.system", "mysql"),
            kv(
                "db.statement",
                &format!("SELECT * FROM orders WHERE id = {seed}"),
            ),
        ],
        ..Default::default()
    };
    let ext = Span {
        trace_id: trace_id.to_vec(),
        span_id: child(2).to_vec(),
        parent_span_id: span_id.to_vec(),
        name: "GET".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start + 3_000_000,
        end_time_unix_nano: start + 4_000_000,
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("url.full", "http://payments.internal:8080/charge"),
            kv("server.address", "payments.internal"),
            kv_int("server.port", 8080),
            kv_int("http.response.status_code", 200),
        ],
        ..Default::default()
    };
    Txn {
        trace_id,
        span_id,
        spans: vec![sql, ext, entry],
    }
}

pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", service),
                    kv("service.instance.id", "i-1"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Many transactions in one request.
pub fn batch(
    service: &str,
    seeds: std::ops::Range<u64>,
    end_ns: u64,
) -> (Vec<Txn>, ExportTraceServiceRequest) {
    let txns: Vec<Txn> = seeds
        .map(|s| {
            txn(
                s,
                end_ns - s * 1_000_000,
                5 + s % 50,
                &format!("/api/orders/{s}"),
                s % 10 == 0,
            )
        })
        .collect();
    let spans = txns.iter().flat_map(|t| t.spans.clone()).collect();
    (txns, request(service, spans))
}
