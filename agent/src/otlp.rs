//! Finished spans to OTLP protobuf, on the exporter thread (off the application's path).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use crate::classify::{AttrValue, Category, OtelKind};
use crate::export::FinishedSpan;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn value(v: AttrValue) -> any_value::Value {
    match v {
        AttrValue::Str(s) => any_value::Value::StringValue(s.into_string()),
        AttrValue::I64(i) => any_value::Value::IntValue(i),
        AttrValue::F64(f) => any_value::Value::DoubleValue(f),
        AttrValue::Bool(b) => any_value::Value::BoolValue(b),
    }
}

/// The resource attributes of this process.
pub(crate) fn resource(service: &str, instance: &str) -> Resource {
    Resource {
        attributes: vec![
            s("service.name", service),
            s("service.instance.id", instance),
            s("telemetry.sdk.name", "tern-agent"),
            s("telemetry.sdk.language", "rust"),
            s("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
            kv(
                "process.pid",
                any_value::Value::IntValue(std::process::id() as i64),
            ),
        ],
        ..Default::default()
    }
}

fn kind(span: &FinishedSpan) -> span::SpanKind {
    match (span.otel_kind, span.category) {
        (Some(OtelKind::Server), _) => span::SpanKind::Server,
        (Some(OtelKind::Consumer), _) => span::SpanKind::Consumer,
        (Some(OtelKind::Producer), _) => span::SpanKind::Producer,
        (Some(OtelKind::Client), _) | (_, Category::Sql | Category::External) => {
            span::SpanKind::Client
        }
        (Some(OtelKind::Internal), _) | (None, _) => span::SpanKind::Internal,
    }
}

/// One OTLP span.
pub(crate) fn span(f: FinishedSpan) -> Span {
    let kind = kind(&f) as i32;
    let mut attributes: Vec<KeyValue> = Vec::with_capacity(f.attrs.len() + 1);
    for (k, v) in f.attrs {
        attributes.push(kv(k, value(v)));
    }
    attributes.push(s("code.namespace", f.target));
    let events = f
        .errors
        .into_iter()
        .map(|e| span::Event {
            time_unix_nano: e.time_unix_nano,
            name: "exception".into(),
            attributes: vec![
                s("exception.type", &e.error_type),
                s("exception.message", &e.message),
            ],
            dropped_attributes_count: 0,
        })
        .collect();
    let status = f.error.map(|message| Status {
        message,
        code: status::StatusCode::Error as i32,
    });
    Span {
        trace_id: f.trace_id.to_be_bytes().to_vec(),
        span_id: f.span_id.to_be_bytes().to_vec(),
        parent_span_id: if f.parent_span_id == 0 {
            Vec::new()
        } else {
            f.parent_span_id.to_be_bytes().to_vec()
        },
        name: f.name.into_owned(),
        kind,
        start_time_unix_nano: f.start_unix_nano,
        end_time_unix_nano: f.end_unix_nano.max(f.start_unix_nano),
        attributes,
        events,
        status,
        ..Default::default()
    }
}

/// One export request for a batch.
pub(crate) fn request(
    resource: &Resource,
    batch: impl Iterator<Item = FinishedSpan>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tern-agent".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: batch.map(span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
