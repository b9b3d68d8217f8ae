//! Finished spans straight to OTLP protobuf bytes (`ExportTraceServiceRequest`), on the
//! exporter thread. Writing the wire format directly skips building and freeing the
//! `opentelemetry-proto` structs (about ten small allocations per span); the bytes are
//! sent as is by a pass-through gRPC codec and reused as is by retries.

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encoded_len_varint, WireType};
use prost::Message;

use crate::classify::{Category, OtelKind, Value};
use crate::export::FinishedSpan;

/// The resource attributes of this process.
pub(crate) fn resource(service: &str, instance: &str) -> Resource {
    let s = |key: &str, v: &str| KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    };
    Resource {
        attributes: vec![
            s("service.name", service),
            s("service.instance.id", instance),
            s("telemetry.sdk.name", "tern-agent"),
            s("telemetry.sdk.language", "rust"),
            s("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
            KeyValue {
                key: "process.pid".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(std::process::id() as i64)),
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// OTLP `SpanKind` numbers.
fn kind(span: &FinishedSpan) -> u64 {
    const INTERNAL: u64 = 1;
    const SERVER: u64 = 2;
    const CLIENT: u64 = 3;
    const PRODUCER: u64 = 4;
    const CONSUMER: u64 = 5;
    match (span.fields.otel_kind, span.category) {
        (Some(OtelKind::Server), _) => SERVER,
        (Some(OtelKind::Consumer), _) => CONSUMER,
        (Some(OtelKind::Producer), _) => PRODUCER,
        (Some(OtelKind::Client), _) | (_, Category::Sql | Category::External) => CLIENT,
        (Some(OtelKind::Internal), _) | (None, _) => INTERNAL,
    }
}

/// A protobuf varint (prost's generic `encode_varint` costs several times more on a
/// `Vec`: this runs ~20 times per span on the exporter thread).
#[inline]
fn encode_varint(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

fn put_bytes(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(b.len() as u64, buf);
    buf.put_slice(b);
}

fn put_fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.put_u64_le(v);
}

fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(v, buf);
}

/// Protobuf encoding of an attribute value (`AnyValue`).
trait AnyValueEncoding {
    fn len(&self) -> usize;
    fn encode(&self, buf: &mut Vec<u8>);
}

impl AnyValueEncoding for Value<'_> {
    /// Encoded length of the `AnyValue` message.
    fn len(&self) -> usize {
        match self {
            Value::Str(s) => 1 + encoded_len_varint(s.len() as u64) + s.len(),
            Value::I64(i) => 1 + encoded_len_varint(*i as u64),
            Value::F64(_) => 9,
            Value::Bool(_) => 2,
        }
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Value::Str(s) => put_bytes(buf, 1, s.as_bytes()),
            Value::Bool(b) => put_varint(buf, 2, *b as u64),
            Value::I64(i) => put_varint(buf, 3, *i as u64),
            Value::F64(f) => {
                encode_key(4, WireType::SixtyFourBit, buf);
                buf.put_f64_le(*f);
            }
        }
    }
}

/// A `KeyValue` as field `tag` of the enclosing message.
fn put_kv(buf: &mut Vec<u8>, tag: u32, key: &str, v: Value<'_>) {
    let vlen = v.len();
    let len = 1
        + encoded_len_varint(key.len() as u64)
        + key.len()
        + 1
        + encoded_len_varint(vlen as u64)
        + vlen;
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
    put_bytes(buf, 1, key.as_bytes());
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint(vlen as u64, buf);
    v.encode(buf);
}

/// Turns batches of finished spans into request bytes, reusing its buffers.
pub(crate) struct RequestEncoder {
    /// `ResourceSpans.resource` (field 1), encoded once.
    resource: Vec<u8>,
    /// `ScopeSpans.scope` (field 1), encoded once.
    scope: Vec<u8>,
    /// The request header, written last.
    head: Vec<u8>,
    /// Bytes of spans in the last request: the next one's first capacity.
    last_len: usize,
    span: Vec<u8>,
    event: Vec<u8>,
}

impl RequestEncoder {
    pub(crate) fn new(service: &str, instance: &str) -> RequestEncoder {
        let mut resource = Vec::new();
        put_bytes(
            &mut resource,
            1,
            &self::resource(service, instance).encode_to_vec(),
        );
        let mut scope_msg = Vec::new();
        put_bytes(&mut scope_msg, 1, b"tern-agent");
        put_bytes(&mut scope_msg, 2, env!("CARGO_PKG_VERSION").as_bytes());
        let mut scope = Vec::new();
        put_bytes(&mut scope, 1, &scope_msg);
        RequestEncoder {
            resource,
            scope,
            head: Vec::new(),
            last_len: 0,
            span: Vec::new(),
            event: Vec::new(),
        }
    }

    fn encode_span(&mut self, f: &FinishedSpan) {
        let b = &mut self.span;
        b.clear();
        put_bytes(b, 1, &f.trace_id.to_be_bytes());
        put_bytes(b, 2, &f.span_id.to_be_bytes());
        if f.parent_span_id != 0 {
            put_bytes(b, 4, &f.parent_span_id.to_be_bytes());
        }
        put_bytes(b, 5, f.name().as_bytes());
        put_varint(b, 6, kind(f));
        put_fixed64(b, 7, f.start_unix_nano);
        put_fixed64(b, 8, f.end_unix_nano.max(f.start_unix_nano));
        for (k, v) in f.fields.iter() {
            put_kv(b, 9, k, v);
        }
        put_kv(b, 9, "code.namespace", Value::Str(f.fields.meta.target()));
        let rare = f.fields.rare.as_deref();
        for e in rare.map(|r| &r.errors[..]).unwrap_or_default() {
            let ev = &mut self.event;
            ev.clear();
            put_fixed64(ev, 1, e.time_unix_nano);
            put_bytes(ev, 2, b"exception");
            put_kv(ev, 3, "exception.type", Value::Str(&e.error_type));
            put_kv(ev, 3, "exception.message", Value::Str(&e.message));
            put_bytes(b, 11, ev);
        }
        if let Some(message) = rare.and_then(|r| r.error.as_ref()) {
            let ev = &mut self.event;
            ev.clear();
            if !message.is_empty() {
                put_bytes(ev, 2, message.as_bytes());
            }
            put_varint(ev, 3, 2); // STATUS_CODE_ERROR
            put_bytes(b, 15, ev);
        }
    }

    /// One `ExportTraceServiceRequest` holding `batch`. The spans are written once, into
    /// the buffer that becomes the request: room for the header (whose lengths are known
    /// only at the end) is left in front of them and the header is written right-aligned
    /// into it.
    pub(crate) fn encode(&mut self, batch: impl Iterator<Item = FinishedSpan>) -> Bytes {
        const MAX_LEN_VARINT: usize = 5; // requests stay far below 4 GiB
        let head_room =
            1 + MAX_LEN_VARINT + self.resource.len() + 1 + MAX_LEN_VARINT + self.scope.len();
        let mut out = Vec::with_capacity(head_room + self.last_len);
        out.resize(head_room, 0);
        for f in batch {
            self.encode_span(&f);
            put_bytes(&mut out, 2, &self.span);
        }
        let spans_len = out.len() - head_room;
        let scope_spans_len = self.scope.len() + spans_len;
        let resource_spans_len =
            self.resource.len() + 1 + encoded_len_varint(scope_spans_len as u64) + scope_spans_len;
        let head = &mut self.head;
        head.clear();
        encode_key(1, WireType::LengthDelimited, head);
        encode_varint(resource_spans_len as u64, head);
        head.put_slice(&self.resource);
        encode_key(2, WireType::LengthDelimited, head);
        encode_varint(scope_spans_len as u64, head);
        head.put_slice(&self.scope);
        let start = head_room - head.len();
        out[start..head_room].copy_from_slice(head);
        // The next batch starts with room for one like this (bounded: no huge buffer kept).
        self.last_len = spans_len.min(4 << 20);
        Bytes::from(out).slice(start..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ErrorEvent;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

    fn finished(error: bool) -> FinishedSpan {
        let mut fields = crate::classify::testing::capture(|| {
            let _ = tracing::info_span!(
                "query",
                db.query.text = "x".repeat(300).as_str(),
                rows = -3i64,
                ratio = 0.5,
                cached = true
            );
        });
        if error {
            let rare = fields.rare_mut();
            rare.error = Some("boom".to_string());
            rare.errors.push(ErrorEvent {
                time_unix_nano: 5,
                error_type: "E".into(),
                message: "boom".into(),
            });
        }
        FinishedSpan {
            trace_id: 0x0102030405060708090a0b0c0d0e0f10,
            span_id: 0x1112131415161718,
            parent_span_id: if error { 0 } else { 0x2122232425262728 },
            category: Category::Sql,
            fields,
            start_unix_nano: 10,
            end_unix_nano: 20,
        }
    }

    #[test]
    fn encodes_a_request_that_prost_decodes_to_the_same_spans() {
        let mut enc = RequestEncoder::new("shop", "host:1");
        let bytes = enc.encode([finished(false), finished(true)].into_iter());
        let req = ExportTraceServiceRequest::decode(bytes).unwrap();
        let rs = &req.resource_spans[0];
        let res = rs.resource.as_ref().unwrap();
        assert_eq!(res.attributes[0].key, "service.name");
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "tern-agent");
        assert_eq!(ss.spans.len(), 2);
        let s = &ss.spans[0];
        assert_eq!(
            s.trace_id,
            (0x0102030405060708090a0b0c0d0e0f10u128).to_be_bytes()
        );
        assert_eq!(s.span_id, (0x1112131415161718u64).to_be_bytes());
        assert_eq!(s.parent_span_id, (0x2122232425262728u64).to_be_bytes());
        assert_eq!(s.name, "query");
        assert_eq!(s.kind, SpanKind::Client as i32);
        assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (10, 20));
        let val = |i: usize| {
            s.attributes[i]
                .value
                .as_ref()
                .unwrap()
                .value
                .clone()
                .unwrap()
        };
        assert_eq!(s.attributes[0].key, "db.query.text");
        assert_eq!(val(0), any_value::Value::StringValue("x".repeat(300)));
        assert_eq!(val(1), any_value::Value::IntValue(-3));
        assert_eq!(val(2), any_value::Value::DoubleValue(0.5));
        assert_eq!(val(3), any_value::Value::BoolValue(true));
        assert_eq!(s.attributes[4].key, "code.namespace");
        assert!(s.status.is_none() && s.events.is_empty());
        let e = &ss.spans[1];
        assert!(e.parent_span_id.is_empty());
        let st = e.status.as_ref().unwrap();
        assert_eq!((st.code, st.message.as_str()), (2, "boom"));
        assert_eq!(e.events[0].name, "exception");
        assert_eq!(e.events[0].attributes[1].key, "exception.message");
        // The buffers are reused: a second batch encodes the same way.
        let again = enc.encode([finished(false)].into_iter());
        let req2 = ExportTraceServiceRequest::decode(again).unwrap();
        assert_eq!(req2.resource_spans[0].scope_spans[0].spans[0], *s);
    }

    #[test]
    fn varints_match_prost_at_every_length() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
            -3i64 as u64,
        ] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            encode_varint(v, &mut ours);
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
        }
    }
}
