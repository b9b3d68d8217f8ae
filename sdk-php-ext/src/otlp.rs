//! Encoding a finished transaction as one OTLP `ExportTraceServiceRequest`: the entry
//! span (kind SERVER, HTTP attributes, CPU, memory, error counts), its SQL and HTTP
//! client spans, and the call tree as INTERNAL spans when it was kept.

use std::collections::BTreeMap;
use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use crate::request::{Tx, Val};
use crate::{clock, tree};

fn kv(key: &str, v: Val) -> KeyValue {
    let value = match v {
        Val::S(s) => any_value::Value::StringValue(s),
        Val::Str(s) => any_value::Value::StringValue(s.to_string()),
        Val::I(i) => any_value::Value::IntValue(i),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, Val::S(v.into()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, Val::I(v))
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: valid buffer and length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn error_status(message: &str) -> Option<Status> {
    Some(Status {
        code: status::StatusCode::Error as i32,
        message: message.to_string(),
    })
}

fn exception_event(at: u64, kind: &str, message: &str, where_: Option<String>) -> span::Event {
    let mut attributes = vec![s("exception.type", kind), s("exception.message", message)];
    if let Some(w) = where_ {
        attributes.push(s("exception.stacktrace", w));
    }
    span::Event {
        time_unix_nano: at,
        name: "exception".into(),
        attributes,
        dropped_attributes_count: 0,
    }
}

/// Builds the OTLP request for a finished transaction.
pub fn build(tx: &Tx, keep_tree: bool, pid: i32) -> ExportTraceServiceRequest {
    let host = host_name();
    let resource = Resource {
        attributes: vec![
            s("service.name", tx.service.clone()),
            s("service.instance.id", host.clone()),
            s("host.name", host),
            s("telemetry.sdk.name", "tern-php"),
            s("telemetry.sdk.language", "php"),
            s("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
            s("process.runtime.name", "php"),
            i("process.pid", pid as i64),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    };
    let trace_id = tx.trace_id.to_vec();
    let entry_id = tx.span_id;
    let mut spans = Vec::with_capacity(1 + tx.spans.len());

    // Call-tree nodes become INTERNAL spans; node 0 is the entry span itself.
    let nodes = if keep_tree { tx.tree.nodes() } else { &[] };
    let node_ids: Vec<[u8; 8]> = nodes
        .iter()
        .enumerate()
        .map(|(n, _)| if n == 0 { entry_id } else { clock::span_id() })
        .collect();
    let span_parent = |node: u32| node_ids.get(node as usize).copied().unwrap_or(entry_id);
    for (n, node) in nodes.iter().enumerate().skip(1) {
        let start = tx.unix_at(node.first_start);
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: node_ids[n].to_vec(),
            parent_span_id: span_parent(node.parent).to_vec(),
            name: node.name.clone(),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + node.total_ns,
            attributes: vec![
                s("code.function.name", node.name.clone()),
                s("code.file.path", node.file.clone()),
                i("code.line.number", node.line as i64),
                i("tern.call_count", node.calls as i64),
            ],
            ..Default::default()
        });
    }

    for rec in &tx.spans {
        let mut attributes: Vec<KeyValue> =
            rec.attrs.iter().map(|(k, v)| kv(k, v.clone())).collect();
        let (status, events) = match &rec.error {
            Some((kind, message)) => {
                attributes.push(s("error.type", kind.clone()));
                (
                    error_status(message),
                    vec![exception_event(tx.unix_at(rec.end), kind, message, None)],
                )
            }
            None => (None, Vec::new()),
        };
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: rec.id.to_vec(),
            parent_span_id: span_parent(if keep_tree { rec.node } else { tree::ROOT }).to_vec(),
            name: rec.name.to_string(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: tx.unix_at(rec.start),
            end_time_unix_nano: tx.unix_at(rec.end),
            attributes,
            events,
            status,
            ..Default::default()
        });
    }

    let mut attributes = Vec::with_capacity(20);
    if tx.cli {
        attributes.push(s("tern.php.script", tx.script.clone()));
    } else {
        attributes.push(s("http.request.method", tx.method.clone()));
        attributes.push(s("http.route", tx.name.clone()));
        attributes.push(s("url.path", tx.path.clone()));
        if !tx.query.is_empty() {
            attributes.push(s("url.query", tx.query.clone()));
        }
        attributes.push(s("url.scheme", tx.scheme.clone()));
        if !tx.host.is_empty() {
            attributes.push(s("server.address", tx.host.clone()));
        }
        if !tx.client.is_empty() {
            attributes.push(s("client.address", tx.client.clone()));
        }
        if !tx.user_agent.is_empty() {
            attributes.push(s("user_agent.original", tx.user_agent.clone()));
        }
        if tx.status > 0 {
            attributes.push(i("http.response.status_code", tx.status));
        }
    }
    attributes.push(i("tern.cpu_time_us", tx.cpu_us as i64));
    attributes.push(i("tern.php.peak_memory_bytes", tx.peak_memory as i64));
    let e = &tx.errors;
    for (key, n) in [
        ("tern.php.errors", e.errors),
        ("tern.php.warnings", e.warnings),
        ("tern.php.notices", e.notices),
        ("tern.php.deprecated", e.deprecated),
        ("tern.php.dropped_spans", tx.dropped_spans),
    ] {
        if n > 0 {
            attributes.push(i(key, n as i64));
        }
    }
    if keep_tree && tx.tree.dropped > 0 {
        attributes.push(i("tern.php.calltree_dropped_calls", tx.tree.dropped as i64));
    }
    let end = tx.unix_at(tx.mono_end);
    let (status, events) = match &e.fatal {
        Some(f) => {
            attributes.push(s("error.type", f.kind.clone()));
            let at = format!("{}:{}", f.file, f.line);
            (
                error_status(&f.message),
                vec![exception_event(end, &f.kind, &f.message, Some(at))],
            )
        }
        None if tx.status >= 500 => (error_status(&format!("HTTP {}", tx.status)), Vec::new()),
        None => (None, Vec::new()),
    };
    let name = if tx.cli {
        tx.name.clone()
    } else {
        format!("{} {}", tx.method, tx.name)
    };
    spans.insert(
        0,
        Span {
            trace_id: trace_id.clone(),
            span_id: entry_id.to_vec(),
            parent_span_id: tx.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: tx.unix0,
            end_time_unix_nano: end,
            attributes,
            events,
            status,
            ..Default::default()
        },
    );

    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tern-php".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// A flat, readable view of a request: one map per span with `name`, `kind`, `parent`
/// (`none`, `entry`, or the parent's name), `status`, the attributes, `event.*` of the
/// first exception event, and `resource.*` on the first span. Used by `tern_decode_frame`
/// and `tern.debug_dump`.
pub fn summary(req: &ExportTraceServiceRequest) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let spans: Vec<&Span> = rs
            .scope_spans
            .iter()
            .flat_map(|ss| ss.spans.iter())
            .collect();
        let entry = spans
            .iter()
            .find(|sp| sp.kind == span::SpanKind::Server as i32)
            .map(|sp| sp.span_id.clone());
        for (n, sp) in spans.iter().enumerate() {
            let mut m = BTreeMap::new();
            m.insert("name".to_string(), sp.name.clone());
            let kind = span::SpanKind::try_from(sp.kind)
                .map(|k| k.as_str_name())
                .unwrap_or("?");
            m.insert(
                "kind".into(),
                kind.trim_start_matches("SPAN_KIND_").to_string(),
            );
            let parent = if sp.parent_span_id.is_empty() {
                "none".to_string()
            } else if Some(&sp.parent_span_id) == entry.as_ref() {
                "entry".to_string()
            } else {
                spans
                    .iter()
                    .find(|p| p.span_id == sp.parent_span_id)
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| "remote".into())
            };
            m.insert("parent".into(), parent);
            m.insert("trace_id".into(), hex(&sp.trace_id));
            m.insert("span_id".into(), hex(&sp.span_id));
            m.insert(
                "duration_ns".into(),
                sp.end_time_unix_nano
                    .saturating_sub(sp.start_time_unix_nano)
                    .to_string(),
            );
            let code = sp.status.as_ref().map(|s| s.code).unwrap_or(0);
            m.insert(
                "status".into(),
                if code == status::StatusCode::Error as i32 {
                    "error"
                } else {
                    "unset"
                }
                .into(),
            );
            for a in &sp.attributes {
                m.insert(a.key.clone(), value_text(&a.value));
            }
            if let Some(ev) = sp.events.iter().find(|e| e.name == "exception") {
                for a in &ev.attributes {
                    m.insert(format!("event.{}", a.key), value_text(&a.value));
                }
            }
            if n == 0 {
                for a in rs.resource.iter().flat_map(|r| r.attributes.iter()) {
                    m.insert(format!("resource.{}", a.key), value_text(&a.value));
                }
            }
            out.push(m);
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Appends the summary of `req` to `path`, one `key=value` line per span (tests, debugging).
pub fn dump(req: &ExportTraceServiceRequest, path: &str) {
    let mut text = String::new();
    for m in summary(req) {
        let fields: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&fields.join(" | "));
        text.push('\n');
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}
