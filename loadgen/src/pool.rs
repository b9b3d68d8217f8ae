//! Recycling of protobuf message parts, so that refilling a request reuses the strings
//! and vectors of the previous one instead of allocating for every span and attribute.

use std::fmt;
use std::fmt::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, Span};

/// Free lists of message parts taken from previous requests.
#[derive(Default)]
pub(crate) struct Pool {
    spans: Vec<Span>,
    str_kvs: Vec<KeyValue>,
    other_kvs: Vec<KeyValue>,
    events: Vec<Event>,
    groups: Vec<ResourceSpans>,
}

impl Pool {
    /// Empties `req`, keeping its parts for reuse.
    pub(crate) fn recycle_request(&mut self, req: &mut ExportTraceServiceRequest) {
        for mut rs in req.resource_spans.drain(..) {
            for ss in &mut rs.scope_spans {
                for span in ss.spans.drain(..) {
                    self.recycle_span(span);
                }
            }
            self.groups.push(rs);
        }
    }

    fn recycle_span(&mut self, mut span: Span) {
        self.recycle_kvs(&mut span.attributes);
        for mut ev in span.events.drain(..) {
            self.recycle_kvs(&mut ev.attributes);
            self.events.push(ev);
        }
        self.spans.push(span);
    }

    fn recycle_kvs(&mut self, kvs: &mut Vec<KeyValue>) {
        for kv in kvs.drain(..) {
            if let Some(AnyValue {
                value: Some(Value::StringValue(_)),
            }) = kv.value
            {
                self.str_kvs.push(kv);
            } else {
                self.other_kvs.push(kv);
            }
        }
    }

    /// A span with empty attributes and events; other fields hold stale values that the
    /// caller overwrites.
    pub(crate) fn span(&mut self) -> Span {
        self.spans.pop().unwrap_or_default()
    }

    /// An event with empty attributes.
    pub(crate) fn event(&mut self) -> Event {
        self.events.pop().unwrap_or_default()
    }

    /// A resource group with stale contents and empty span lists.
    pub(crate) fn group(&mut self) -> Option<ResourceSpans> {
        self.groups.pop()
    }
}

/// Appends attributes to a span or event, reusing pooled key/value storage.
pub(crate) struct Attrs<'a> {
    pub(crate) pool: &'a mut Pool,
    pub(crate) out: &'a mut Vec<KeyValue>,
}

impl Attrs<'_> {
    /// Adds a string attribute and returns its (empty) value to write into.
    pub(crate) fn slot(&mut self, key: &str) -> &mut String {
        let mut kv = self.pool.str_kvs.pop().unwrap_or_else(|| KeyValue {
            key: String::new(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(String::new())),
            }),
            key_strindex: 0,
        });
        kv.key.clear();
        kv.key.push_str(key);
        self.out.push(kv);
        match self.out.last_mut().and_then(|kv| kv.value.as_mut()) {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => {
                s.clear();
                s
            }
            _ => unreachable!("string key/values hold a string value"),
        }
    }

    fn other(&mut self, key: &str, value: Value) {
        let mut kv = self.pool.other_kvs.pop().unwrap_or_default();
        kv.key.clear();
        kv.key.push_str(key);
        kv.value = Some(AnyValue { value: Some(value) });
        self.out.push(kv);
    }

    /// A string attribute.
    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.slot(key).push_str(value);
    }

    /// A string attribute formatted in place.
    pub(crate) fn fmt(&mut self, key: &str, args: fmt::Arguments<'_>) {
        // Writing into a String cannot fail.
        let _ = self.slot(key).write_fmt(args);
    }

    /// An integer attribute.
    pub(crate) fn int(&mut self, key: &str, value: i64) {
        self.other(key, Value::IntValue(value));
    }
}

/// Overwrites `dst` with `src`, keeping its allocation.
pub(crate) fn set_bytes(dst: &mut Vec<u8>, src: &[u8]) {
    dst.clear();
    dst.extend_from_slice(src);
}

/// Overwrites `dst` with `src`, keeping its allocation.
pub(crate) fn set_string(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}
