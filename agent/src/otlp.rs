//! Finished spans straight to OTLP protobuf bytes (`ExportTraceServiceRequest`), on the
//! exporter thread. Writing the wire format directly skips building and freeing the
//! `opentelemetry-proto` structs (about ten small allocations per span); the bytes are
//! sent as is by a pass-through gRPC codec and reused as is by retries.

use bytes::Bytes;
use tern_php_wire::otlp::{
    kind as span_kind, put_bytes, put_error_status, put_exception_event, put_fixed64, put_kv,
    put_varint, span as field, Envelope, Value,
};

use crate::classify::{Category, OtelKind};
use crate::export::FinishedSpan;

/// The envelope (resource attributes, scope) of this process.
fn envelope(service: &str, instance: &str) -> Envelope {
    Envelope::new(
        &[
            ("service.name", Value::Str(service)),
            ("service.instance.id", Value::Str(instance)),
            ("telemetry.sdk.name", Value::Str("tern-agent")),
            ("telemetry.sdk.language", Value::Str("rust")),
            (
                "telemetry.sdk.version",
                Value::Str(env!("CARGO_PKG_VERSION")),
            ),
            ("process.pid", Value::I64(std::process::id() as i64)),
        ],
        "tern-agent",
        env!("CARGO_PKG_VERSION"),
    )
}

/// OTLP `SpanKind` numbers.
fn kind(span: &FinishedSpan) -> u64 {
    match (span.fields.otel_kind, span.category) {
        (Some(OtelKind::Server), _) => span_kind::SERVER,
        (Some(OtelKind::Consumer), _) => span_kind::CONSUMER,
        (Some(OtelKind::Producer), _) => span_kind::PRODUCER,
        (Some(OtelKind::Client), _) | (_, Category::Sql | Category::External) => span_kind::CLIENT,
        (Some(OtelKind::Internal), _) | (None, _) => span_kind::INTERNAL,
    }
}

/// Turns batches of finished spans into request bytes, reusing its buffers.
pub(crate) struct RequestEncoder {
    envelope: Envelope,
    /// Bytes of spans in the last request: the next one's first capacity.
    last_len: usize,
    span: Vec<u8>,
    event: Vec<u8>,
}

impl RequestEncoder {
    pub(crate) fn new(service: &str, instance: &str) -> RequestEncoder {
        RequestEncoder {
            envelope: envelope(service, instance),
            last_len: 0,
            span: Vec::new(),
            event: Vec::new(),
        }
    }

    fn encode_span(&mut self, f: &FinishedSpan) {
        let b = &mut self.span;
        b.clear();
        put_bytes(b, field::TRACE_ID, &f.trace_id.to_be_bytes());
        put_bytes(b, field::SPAN_ID, &f.span_id.to_be_bytes());
        if f.parent_span_id != 0 {
            put_bytes(b, field::PARENT_SPAN_ID, &f.parent_span_id.to_be_bytes());
        }
        put_bytes(b, field::NAME, f.name().as_bytes());
        put_varint(b, field::KIND, kind(f));
        put_fixed64(b, field::START, f.start_unix_nano);
        put_fixed64(b, field::END, f.end_unix_nano.max(f.start_unix_nano));
        for (k, v) in f.fields.iter() {
            put_kv(b, field::ATTRIBUTES, k, v);
        }
        let target = Value::Str(f.fields.meta.target());
        put_kv(b, field::ATTRIBUTES, "code.namespace", target);
        let rare = f.fields.rare.as_deref();
        for e in rare.map(|r| &r.errors[..]).unwrap_or_default() {
            let ev = &mut self.event;
            put_exception_event(b, ev, e.time_unix_nano, &e.error_type, &e.message, None);
        }
        if let Some(message) = rare.and_then(|r| r.error.as_ref()) {
            put_error_status(b, message);
        }
    }

    /// One `ExportTraceServiceRequest` holding `batch`. The spans are written once, into
    /// the buffer that becomes the request, behind room for its header.
    pub(crate) fn encode(&mut self, batch: impl Iterator<Item = FinishedSpan>) -> Bytes {
        let mut out = Vec::with_capacity(self.envelope.head_room() + self.last_len);
        self.envelope.begin(&mut out, 0);
        for f in batch {
            self.encode_span(&f);
            Envelope::push_span(&mut out, &self.span);
        }
        // The next batch starts with room for one like this (bounded: no huge buffer kept).
        self.last_len = (out.len() - self.envelope.head_room()).min(4 << 20);
        let start = self.envelope.finish(&mut out, 0);
        Bytes::from(out).slice(start..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ErrorEvent;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;

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
}
