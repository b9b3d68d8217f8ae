//! Stored span rows back into OTLP `ResourceSpans`: one per service instance (its
//! resource attributes from the `resources` table), one `ScopeSpans` per
//! instrumentation scope. Attribute values come back as strings (the store keeps them
//! as strings).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use crate::model::rows::SpanRow;

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn events(json: &str) -> Vec<span::Event> {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str(json) else {
        return vec![];
    };
    list.iter()
        .map(|e| span::Event {
            time_unix_nano: e["time_us"].as_u64().unwrap_or(0) * 1000,
            name: e["name"].as_str().unwrap_or("").into(),
            attributes: e["attributes"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| kv(k, v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default(),
            ..Default::default()
        })
        .collect()
}

/// One stored span as an OTLP span.
pub fn span(r: &SpanRow) -> Span {
    let start = (r.start_us.max(0) as u64) * 1000;
    Span {
        trace_id: r.trace_id.to_vec(),
        span_id: r.span_id.to_vec(),
        parent_span_id: if r.parent_span_id == [0; 8] {
            vec![]
        } else {
            r.parent_span_id.to_vec()
        },
        name: r.name.clone(),
        kind: r.kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + r.duration_us * 1000,
        attributes: r.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        events: events(&r.events),
        status: (r.status != 0).then(|| Status {
            code: if r.status == 2 {
                status::StatusCode::Error
            } else {
                status::StatusCode::Ok
            } as i32,
            message: r.status_message.clone(),
        }),
        ..Default::default()
    }
}

/// The spans grouped by service instance and scope. `resource_of(service, instance)`
/// gives the stored resource attributes (`service.name` is added when missing).
pub fn resource_spans(
    rows: &[SpanRow],
    resource_of: impl Fn(&str, &str) -> Vec<(String, String)>,
) -> Vec<ResourceSpans> {
    let mut by_resource: BTreeMap<(&str, &str), BTreeMap<&str, Vec<Span>>> = BTreeMap::new();
    for r in rows {
        by_resource
            .entry((&r.service, &r.instance))
            .or_default()
            .entry(&r.scope)
            .or_default()
            .push(span(r));
    }
    by_resource
        .into_iter()
        .map(|((service, instance), scopes)| {
            let mut attributes: Vec<KeyValue> = resource_of(service, instance)
                .iter()
                .map(|(k, v)| kv(k, v))
                .collect();
            if !attributes.iter().any(|a| a.key == "service.name") {
                attributes.insert(0, kv("service.name", service));
            }
            ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|(scope, spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: scope.into(),
                            ..Default::default()
                        }),
                        spans,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect()
}
