//! Encoding a finished transaction as OTLP `ExportTraceServiceRequest` frames for the
//! forwarder: the entry span (kind SERVER, HTTP attributes, CPU, memory, error counts),
//! its SQL and HTTP client spans, and the call tree as INTERNAL spans when it was kept.
//! Written straight as protobuf bytes (`tern_php_wire::otlp`), into buffers reused from
//! request to request; a transaction larger than [`CHUNK`] becomes several frames.

use std::collections::BTreeMap;
use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
use tern_php_wire::otlp::{
    self as wire, kind, put_attr, put_bytes, put_error_status, put_exception_event, put_fixed64,
    put_varint, span as field, Envelope, Value,
};

use crate::request::{Tx, Val};
use crate::{clock, tree};

/// Largest frame written at once; a bigger transaction is split into several frames
/// (same resource and scope, a share of the spans each): a unix socket buffer holds
/// about 200 KiB by default.
pub const CHUNK: usize = 48 * 1024;

/// Bytes of the frame's length prefix in front of the request.
const PREFIX: usize = 4;

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: valid buffer and length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn value(v: &Val) -> Value<'_> {
    match v {
        Val::S(s) => Value::Str(s),
        Val::T(s) => Value::Str(s),
        Val::Str(s) => Value::Str(s),
        Val::I(i) => Value::I64(*i),
    }
}

/// The envelope of a service in a process (resource attributes, scope).
fn envelope(service: &str, host: &str, pid: i32) -> Envelope {
    Envelope::new(
        &[
            ("service.name", Value::Str(service)),
            ("service.instance.id", Value::Str(host)),
            ("host.name", Value::Str(host)),
            ("telemetry.sdk.name", Value::Str("tern-php")),
            ("telemetry.sdk.language", Value::Str("php")),
            (
                "telemetry.sdk.version",
                Value::Str(env!("CARGO_PKG_VERSION")),
            ),
            ("process.runtime.name", Value::Str("php")),
            ("process.pid", Value::I64(pid as i64)),
        ],
        "tern-php",
        env!("CARGO_PKG_VERSION"),
    )
}

/// Encodes transactions into frames, reusing its buffers and the envelope of the last
/// service and process.
#[derive(Debug, Default)]
pub struct Encoder {
    env: Option<(String, i32, Envelope)>,
    host: Option<String>,
    /// The frame being built: length prefix, room for the header, spans.
    out: Vec<u8>,
    span: Vec<u8>,
    scratch: Vec<u8>,
    /// Call-tree node span ids of the transaction being encoded.
    node_ids: Vec<[u8; 8]>,
}

impl Encoder {
    /// Encodes a finished transaction and hands each frame (length prefix included) to
    /// `emit`; stops at the first frame `emit` refuses (returns false).
    pub fn encode(
        &mut self,
        tx: &mut Tx,
        keep_tree: bool,
        pid: i32,
        emit: impl FnMut(&[u8]) -> bool,
    ) {
        let env = match self.env.take() {
            Some(e) if e.0 == tx.service && e.1 == pid => e,
            _ => {
                let host = self.host.get_or_insert_with(host_name);
                (tx.service.clone(), pid, envelope(&tx.service, host, pid))
            }
        };
        self.encode_in(&env.2, tx, keep_tree, emit);
        self.env = Some(env);
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::new();
        }
    }

    fn encode_in(
        &mut self,
        env: &Envelope,
        tx: &mut Tx,
        keep_tree: bool,
        mut emit: impl FnMut(&[u8]) -> bool,
    ) {
        env.begin(&mut self.out, PREFIX);
        let entry = tx.span_id;

        // Call-tree nodes become INTERNAL spans; node 0 is the entry span itself.
        let nodes = if keep_tree { tx.tree.nodes() } else { &[] };
        self.node_ids.clear();
        self.node_ids
            .extend((0..nodes.len()).map(|n| if n == 0 { entry } else { clock::span_id() }));

        encode_entry(&mut self.span, &mut self.scratch, tx, keep_tree);
        Envelope::push_span(&mut self.out, &self.span);

        for (n, node) in nodes.iter().enumerate().skip(1) {
            let b = &mut self.span;
            b.clear();
            let start = tx.unix_at(node.first_start);
            put_bytes(b, field::TRACE_ID, &tx.trace_id);
            put_bytes(b, field::SPAN_ID, &self.node_ids[n]);
            let parent = self.node_ids.get(node.parent as usize).unwrap_or(&entry);
            put_bytes(b, field::PARENT_SPAN_ID, parent);
            put_bytes(b, field::NAME, node.name.as_bytes());
            put_varint(b, field::KIND, kind::INTERNAL);
            put_fixed64(b, field::START, start);
            put_fixed64(b, field::END, start + node.total_ns);
            put_attr(b, "code.function.name", Value::Str(&node.name));
            put_attr(b, "code.file.path", Value::Str(&node.file));
            put_attr(b, "code.line.number", Value::I64(node.line as i64));
            put_attr(b, "tern.call_count", Value::I64(node.calls as i64));
            if !self.push(env, &mut emit) {
                return;
            }
        }

        // The child spans, encoded as they finished: under the call-tree nodes they ran
        // in when the tree is kept, then copied in runs that fit a frame.
        if keep_tree {
            tx.spans.set_parents(&self.node_ids);
        }
        let mut from = 0;
        for &end in &tx.spans.ends {
            let span = &tx.spans.buf[from..end as usize];
            if !self.room(env, span.len(), &mut emit) {
                return;
            }
            self.out.extend_from_slice(span);
            from = end as usize;
        }
        self.flush(env, &mut emit);
    }

    /// Appends the span in `self.span` (see [`Encoder::room`]). False when a frame was
    /// refused.
    fn push(&mut self, env: &Envelope, emit: &mut impl FnMut(&[u8]) -> bool) -> bool {
        if !self.room(env, self.span.len(), emit) {
            return false;
        }
        Envelope::push_span(&mut self.out, &self.span);
        true
    }

    /// Makes room for a span of about `len` bytes: sends the frame built so far first
    /// when the span would take it past [`CHUNK`] (a frame always takes one span). False
    /// when a frame was refused.
    fn room(&mut self, env: &Envelope, len: usize, emit: &mut impl FnMut(&[u8]) -> bool) -> bool {
        let empty = self.out.len() == PREFIX + env.head_room();
        if !empty && self.out.len() + len + 8 > CHUNK {
            if !self.flush(env, emit) {
                return false;
            }
            env.begin(&mut self.out, PREFIX);
        }
        true
    }

    /// Sends the frame built so far.
    fn flush(&mut self, env: &Envelope, emit: &mut impl FnMut(&[u8]) -> bool) -> bool {
        let start = env.finish(&mut self.out, PREFIX);
        let len = (self.out.len() - start) as u32;
        self.out[start - PREFIX..start].copy_from_slice(&len.to_le_bytes());
        emit(&self.out[start - PREFIX..])
    }
}

/// A finished call (SQL, HTTP) as [`Spans::push`] takes it.
#[derive(Debug)]
pub struct Finished<'a> {
    /// Span id.
    pub id: [u8; 8],
    /// Span name.
    pub name: &'a str,
    /// Unix start, nanoseconds.
    pub start: u64,
    /// Unix end, nanoseconds.
    pub end: u64,
    /// Call-tree node it ran under (`tree::ROOT`: the entry span).
    pub node: u32,
    /// Attributes (semantic-convention names).
    pub attrs: &'a [(&'static str, Val)],
    /// More attributes, already encoded (see [`conn_attrs`]).
    pub encoded: &'a [u8],
    /// Error type and message when it failed.
    pub error: Option<&'a (String, String)>,
}

/// The attributes every SQL span on a connection carries, encoded as span attributes:
/// `db.system.name` (`other_sql` when unknown), `db.namespace`, `server.address`,
/// `server.port`.
pub fn conn_attrs(c: &crate::db::Conn) -> std::rc::Rc<[u8]> {
    let mut b = Vec::with_capacity(96);
    let system = if c.system.is_empty() {
        "other_sql"
    } else {
        c.system
    };
    put_attr(&mut b, "db.system.name", Value::Str(system));
    if !c.db.is_empty() {
        put_attr(&mut b, "db.namespace", Value::Str(&c.db));
    }
    if !c.host.is_empty() {
        put_attr(&mut b, "server.address", Value::Str(&c.host));
    }
    if let Some(p) = c.port {
        put_attr(&mut b, "server.port", Value::I64(p));
    }
    b.into()
}

/// The finished child spans of a transaction, written as OTLP `Span`s the moment each
/// call ends (each already wrapped as a `ScopeSpans.spans` entry), into one buffer kept
/// from request to request: no record per span, nothing to free at the end, and the
/// frame is a copy of this buffer behind the resource header.
#[derive(Debug, Default)]
pub struct Spans {
    buf: Vec<u8>,
    /// End offset of each span in `buf` (frames are cut between spans).
    ends: Vec<u32>,
    /// Spans that ran under a call-tree node other than the root: (offset of their
    /// parent span id in `buf`, node). Written with the entry span as parent, set to the
    /// node's span when the tree is kept.
    under: Vec<(u32, u32)>,
    /// One span's body being written.
    body: Vec<u8>,
    scratch: Vec<u8>,
}

/// Offset of the parent span id in a child span's body: the trace id (2 + 16 bytes),
/// the span id (2 + 8), the parent's key and length (2).
const PARENT_AT: usize = 2 + 16 + 2 + 8 + 2;

impl Spans {
    /// Spans recorded.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No span recorded.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets the spans, keeping the buffers (unless one grew past 1 MiB).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.under.clear();
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        if self.ends.capacity() > 1 << 16 {
            self.ends = Vec::new();
            self.under = Vec::new();
        }
    }

    /// Writes a finished call as a CLIENT span of the trace, child of `entry` (or of the
    /// span of call-tree `node`, see [`Spans::set_parents`]).
    pub fn push(&mut self, trace_id: &[u8; 16], entry: &[u8; 8], node: u32, f: &Finished<'_>) {
        let b = &mut self.body;
        b.clear();
        // Trace id, span id, parent span id: fixed sizes, one copy.
        let mut ids = [0u8; PARENT_AT + 8];
        ids[..2].copy_from_slice(&[(field::TRACE_ID << 3 | 2) as u8, 16]);
        ids[2..18].copy_from_slice(trace_id);
        ids[18..20].copy_from_slice(&[(field::SPAN_ID << 3 | 2) as u8, 8]);
        ids[20..28].copy_from_slice(&f.id);
        ids[28..30].copy_from_slice(&[(field::PARENT_SPAN_ID << 3 | 2) as u8, 8]);
        ids[PARENT_AT..].copy_from_slice(entry);
        b.extend_from_slice(&ids);
        put_bytes(b, field::NAME, f.name.as_bytes());
        // Kind, start, end: fixed sizes, one copy.
        let mut times = [0u8; 2 + 9 + 9];
        times[..2].copy_from_slice(&[(field::KIND << 3) as u8, kind::CLIENT as u8]);
        times[2] = (field::START << 3 | 1) as u8;
        times[3..11].copy_from_slice(&f.start.to_le_bytes());
        times[11] = (field::END << 3 | 1) as u8;
        times[12..].copy_from_slice(&f.end.to_le_bytes());
        b.extend_from_slice(&times);
        b.extend_from_slice(f.encoded);
        for (k, v) in f.attrs {
            put_attr(b, k, value(v));
        }
        if let Some((kind, message)) = f.error {
            put_attr(b, "error.type", Value::Str(kind));
            put_exception_event(b, &mut self.scratch, f.end, kind, message, None);
            put_error_status(b, message);
        }
        let start = self.buf.len();
        Envelope::push_span(&mut self.buf, &self.body);
        if node != tree::ROOT {
            let at = start + 1 + wire::varint_len(self.body.len() as u64) + PARENT_AT;
            self.under.push((at as u32, node));
        }
        self.ends.push(self.buf.len() as u32);
    }

    /// Makes the spans that ran under call-tree nodes children of those nodes' spans
    /// (`node_ids[n]`: span id of node `n`).
    fn set_parents(&mut self, node_ids: &[[u8; 8]]) {
        for &(at, node) in &self.under {
            if let Some(id) = node_ids.get(node as usize) {
                let at = at as usize;
                self.buf[at..at + 8].copy_from_slice(id);
            }
        }
    }
}

/// The entry span (kind SERVER) of a transaction into `b`.
fn encode_entry(b: &mut Vec<u8>, scratch: &mut Vec<u8>, tx: &Tx, keep_tree: bool) {
    b.clear();
    put_bytes(b, field::TRACE_ID, &tx.trace_id);
    put_bytes(b, field::SPAN_ID, &tx.span_id);
    if let Some(p) = &tx.parent {
        put_bytes(b, field::PARENT_SPAN_ID, p);
    }
    if tx.cli {
        put_bytes(b, field::NAME, tx.name.as_bytes());
    } else {
        let len = tx.method.len() + 1 + tx.name.len();
        wire::put_key(b, field::NAME, wire::WireType::LengthDelimited);
        wire::put_varint_raw(len as u64, b);
        b.extend_from_slice(tx.method.as_bytes());
        b.push(b' ');
        b.extend_from_slice(tx.name.as_bytes());
    }
    put_varint(b, field::KIND, kind::SERVER);
    let end = tx.unix_at(tx.mono_end);
    put_fixed64(b, field::START, tx.unix0);
    put_fixed64(b, field::END, end);
    let str_attr = |b: &mut Vec<u8>, k: &str, v: &str| put_attr(b, k, Value::Str(v));
    if tx.cli {
        str_attr(b, "tern.php.script", &tx.script);
    } else {
        str_attr(b, "http.request.method", &tx.method);
        str_attr(b, "http.route", &tx.name);
        str_attr(b, "url.path", &tx.path);
        for (k, v) in [
            ("url.query", tx.query.as_str()),
            ("url.scheme", tx.scheme),
            ("server.address", &tx.host),
            ("client.address", &tx.client),
            ("user_agent.original", &tx.user_agent),
        ] {
            if !v.is_empty() || k == "url.scheme" {
                str_attr(b, k, v);
            }
        }
        if tx.status > 0 {
            put_attr(b, "http.response.status_code", Value::I64(tx.status));
        }
    }
    put_attr(b, "tern.cpu_time_us", Value::I64(tx.cpu_us as i64));
    put_attr(
        b,
        "tern.php.peak_memory_bytes",
        Value::I64(tx.peak_memory as i64),
    );
    let e = &tx.errors;
    for (key, n) in [
        ("tern.php.errors", e.errors),
        ("tern.php.warnings", e.warnings),
        ("tern.php.notices", e.notices),
        ("tern.php.deprecated", e.deprecated),
        ("tern.php.dropped_spans", tx.dropped_spans),
    ] {
        if n > 0 {
            put_attr(b, key, Value::I64(n as i64));
        }
    }
    if keep_tree && tx.tree.dropped > 0 {
        put_attr(
            b,
            "tern.php.calltree_dropped_calls",
            Value::I64(tx.tree.dropped as i64),
        );
    }
    match &e.fatal {
        Some(f) => {
            put_attr(b, "error.type", Value::Str(&f.kind));
            let at = format!("{}:{}", f.file, f.line);
            put_exception_event(b, scratch, end, &f.kind, &f.message, Some(&at));
            put_error_status(b, &f.message);
        }
        None if tx.status >= 500 => put_error_status(b, &format!("HTTP {}", tx.status)),
        None => {}
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

/// Appends the summary of the frame `frame` (length prefix included) to `path`, one
/// `key=value` line per span (tests, debugging).
pub fn dump(frame: &[u8], path: &str) {
    use prost::Message;
    let Ok(req) = ExportTraceServiceRequest::decode(frame.get(PREFIX..).unwrap_or_default()) else {
        return;
    };
    let mut text = String::new();
    for m in summary(&req) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn tx(spans: usize) -> Tx {
        let mut tx = Tx {
            service: "shop".into(),
            method: "GET".into(),
            name: "/orders/{id}".into(),
            path: "/orders/7".into(),
            scheme: "http",
            trace_id: [7; 16],
            span_id: [8; 8],
            status: 503,
            ..Tx::default()
        };
        for i in 0..spans {
            let error = ("PDOException".to_string(), "gone".to_string());
            tx.push_span(&Finished {
                id: (i as u64 + 1).to_be_bytes(),
                name: &span_name(i),
                start: 1,
                end: 2,
                node: tree::ROOT,
                attrs: &[("db.system.name", Val::Str("mysql")), ("rows", Val::I(3))],
                encoded: &[],
                error: (i == 1).then_some(&error),
            });
        }
        tx
    }

    fn span_name(i: usize) -> String {
        format!("SELECT {i} {}", "x".repeat(100))
    }

    fn frames(tx: &mut Tx) -> Vec<ExportTraceServiceRequest> {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        enc.encode(tx, false, 42, |frame| {
            let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(len, frame.len() - 4);
            assert!(frame.len() <= CHUNK, "{}", frame.len());
            out.push(ExportTraceServiceRequest::decode(&frame[4..]).unwrap());
            true
        });
        out
    }

    #[test]
    fn a_transaction_is_one_frame_that_prost_decodes() {
        let f = frames(&mut tx(3));
        assert_eq!(f.len(), 1);
        let rows = summary(&f[0]);
        assert_eq!(rows.len(), 4);
        let entry = &rows[0];
        assert_eq!(entry["name"], "GET /orders/{id}");
        assert_eq!(entry["kind"], "SERVER");
        assert_eq!(entry["status"], "error");
        assert_eq!(entry["http.response.status_code"], "503");
        assert_eq!(entry["url.scheme"], "http");
        assert!(!entry.contains_key("url.query"));
        assert_eq!(entry["resource.service.name"], "shop");
        assert_eq!(entry["resource.process.pid"], "42");
        let failed = &rows[2];
        assert_eq!(
            (failed["kind"].as_str(), failed["parent"].as_str()),
            ("CLIENT", "entry")
        );
        assert_eq!(failed["error.type"], "PDOException");
        assert_eq!(failed["event.exception.message"], "gone");
        assert_eq!(failed["rows"], "3");
        assert_eq!(failed["duration_ns"], "1");
        assert_eq!(failed["trace_id"], "07".repeat(16));
        assert_eq!(failed["span_id"], "0000000000000002");
        assert_eq!(rows[3]["status"], "unset");
    }

    #[test]
    fn a_large_transaction_splits_into_small_frames_with_every_span_once_in_order() {
        let f = frames(&mut tx(3000));
        assert!(f.len() > 5, "{}", f.len());
        let names: Vec<String> = f
            .iter()
            .flat_map(|r| r.resource_spans[0].scope_spans[0].spans.iter())
            .map(|s| s.name.clone())
            .collect();
        let mut want = vec!["GET /orders/{id}".to_string()];
        // Over `MAX_SPANS` the rest are counted, not kept.
        want.extend((0..crate::request::MAX_SPANS).map(span_name));
        assert_eq!(names, want);
        for r in &f {
            let res = r.resource_spans[0].resource.as_ref().unwrap();
            assert_eq!(res.attributes[0].key, "service.name");
        }
    }

    /// A transaction with a call tree (`main` > `load`) and a SQL span inside `load`.
    fn tx_with_tree() -> Tx {
        fn describe(f: *const ext_php_rs::ffi::zend_function) -> (String, String, u32) {
            let name = if f as usize == 1 { "main" } else { "load" };
            (name.into(), "app.php".into(), 3)
        }
        let mut tx = tx(0);
        tx.tree.start(100, 0);
        let func = |n: usize| n as *const ext_php_rs::ffi::zend_function;
        tx.tree.enter(func(1), 1, describe);
        tx.push_span(&Finished {
            id: [1; 8],
            name: "before",
            start: 1,
            end: 2,
            node: tx.tree.current(),
            attrs: &[],
            encoded: &[],
            error: None,
        });
        tx.tree.enter(func(2), 2, describe);
        tx.push_span(&Finished {
            id: [2; 8],
            name: "SELECT",
            start: 3,
            end: 4,
            node: tx.tree.current(),
            attrs: &[("db.system.name", Val::Str("mysql"))],
            encoded: &[],
            error: None,
        });
        tx.tree.exit(5);
        tx.tree.exit(6);
        tx
    }

    fn parents(tx: &mut Tx, keep_tree: bool) -> Vec<(String, String)> {
        let mut enc = Encoder::default();
        let mut rows = Vec::new();
        enc.encode(tx, keep_tree, 1, |frame| {
            rows.extend(summary(
                &ExportTraceServiceRequest::decode(&frame[4..]).unwrap(),
            ));
            true
        });
        rows.iter()
            .map(|r| (r["name"].clone(), r["parent"].clone()))
            .collect()
    }

    #[test]
    fn spans_hang_under_the_call_tree_node_they_ran_in_when_the_tree_is_kept() {
        let kept = parents(&mut tx_with_tree(), true);
        let want = |s: &[(&str, &str)]| -> Vec<(String, String)> {
            s.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            kept,
            want(&[
                ("GET /orders/{id}", "none"),
                ("main", "entry"),
                ("load", "main"),
                ("before", "main"),
                ("SELECT", "load"),
            ])
        );
        let dropped = parents(&mut tx_with_tree(), false);
        assert_eq!(
            dropped,
            want(&[
                ("GET /orders/{id}", "none"),
                ("before", "entry"),
                ("SELECT", "entry"),
            ])
        );
    }

    #[test]
    fn a_refused_frame_stops_the_transaction() {
        let mut enc = Encoder::default();
        let mut calls = 0;
        enc.encode(&mut tx(3000), false, 1, |_| {
            calls += 1;
            false
        });
        assert_eq!(calls, 1);
    }
}
