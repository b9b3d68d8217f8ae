//! What a span is (transaction entry, SQL, external call, method), decided from the
//! fields that real crates emit: OpenTelemetry semantic-convention names, `otel.*`
//! fields, tower-http's request spans, and `error` fields.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};

use crate::ids::TraceParent;

/// The role of a span in Tern's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The entry span of a transaction (server/consumer kind, a tower-http request, or a
    /// root span).
    Entry,
    /// A database call (`db.system`, `db.statement`, `db.query.text`, ...).
    Sql,
    /// An outgoing call to another service (`http.url`, `url.full`, `server.address`,
    /// `otel.kind = "client"` or `"producer"`).
    External,
    /// Any other span: a method in the call tree (`#[instrument]` functions).
    Method,
}

/// The `otel.kind` field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtelKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl OtelKind {
    fn parse(s: &str) -> Option<OtelKind> {
        [
            ("internal", OtelKind::Internal),
            ("server", OtelKind::Server),
            ("client", OtelKind::Client),
            ("producer", OtelKind::Producer),
            ("consumer", OtelKind::Consumer),
        ]
        .into_iter()
        .find(|(name, _)| s.eq_ignore_ascii_case(name))
        .map(|(_, k)| k)
    }
}

const INLINE: usize = 22;

/// A string field value. Up to 22 bytes are kept inline: most field values (names,
/// methods, short ids) cost no allocation, and no memory crosses from the application's
/// threads to the exporter thread, where freeing it would contend on the allocator.
#[derive(Clone)]
pub enum Text {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(String),
}

impl Default for Text {
    fn default() -> Self {
        Text::Inline {
            len: 0,
            buf: [0; INLINE],
        }
    }
}

impl Text {
    /// Copies `s`, inline when short.
    #[inline]
    pub fn new(s: &str) -> Text {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline {
                len: s.len() as u8,
                buf,
            }
        } else {
            Text::Heap(s.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Only whole UTF-8 strings are ever copied in (see `push_str`).
            Text::Inline { len, buf } => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            Text::Heap(s) => s,
        }
    }

    fn push_str(&mut self, s: &str) {
        match self {
            Text::Inline { len, buf } => {
                let l = *len as usize;
                if l + s.len() <= INLINE {
                    buf[l..l + s.len()].copy_from_slice(s.as_bytes());
                    *len = (l + s.len()) as u8;
                } else {
                    let mut heap = String::with_capacity(l + s.len());
                    heap.push_str(std::str::from_utf8(&buf[..l]).unwrap_or(""));
                    heap.push_str(s);
                    *self = Text::Heap(heap);
                }
            }
            Text::Heap(h) => h.push_str(s),
        }
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= INLINE {
            Text::new(&s)
        } else {
            Text::Heap(s)
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A recorded field value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(Text),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl AttrValue {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s.as_str()),
            AttrValue::I64(v) => write!(f, "{v}"),
            AttrValue::F64(v) => write!(f, "{v}"),
            AttrValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// Attributes of one span, inline up to four (no allocation for small spans).
pub type Attrs = SmallVec<[(&'static str, AttrValue); 4]>;

/// An event kept on a span: errors become OTLP `exception` events.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    pub time_unix_nano: u64,
    pub error_type: String,
    pub message: String,
}

/// What the field visitor collects from a span's fields.
#[derive(Debug, Default)]
pub struct Fields {
    pub attrs: Attrs,
    pub otel_kind: Option<OtelKind>,
    pub otel_name: Option<String>,
    /// `Some` when an `error` field (true or a message) or `otel.status_code = "ERROR"`
    /// was recorded; the message may be empty.
    pub error: Option<String>,
    /// Boxed: rare, and its 16-byte alignment would pad every span record.
    pub traceparent: Option<Box<TraceParent>>,
    /// Set for tower-http spans: `method` and `uri` map to HTTP attributes.
    pub tower_http: bool,
    /// Which kinds of keys were recorded ([`SQL_KEY`], [`EXTERNAL_KEY`]): the category
    /// is decided from these bits, not by searching the attributes again.
    pub keys: u8,
}

/// A `db.*` key that makes a span a SQL call was recorded.
pub const SQL_KEY: u8 = 1;
/// A URL or address key that makes a span an external call was recorded.
pub const EXTERNAL_KEY: u8 = 2;

/// The category bits a key sets.
#[inline]
fn key_bits(key: &str) -> u8 {
    // Most keys are none of these: the first byte rules them out.
    if !matches!(
        key.as_bytes().first(),
        Some(b'd' | b'h' | b'u' | b's' | b'r')
    ) {
        return 0;
    }
    match key {
        "db.system" | "db.system.name" | "db.statement" | "db.query.text" => SQL_KEY,
        "http.url" | "url.full" | "server.address" | "rpc.system" => EXTERNAL_KEY,
        _ => 0,
    }
}

impl Fields {
    /// The value of the first of `keys` that was recorded.
    pub fn get(&self, keys: &[&str]) -> Option<&AttrValue> {
        keys.iter()
            .find_map(|k| self.attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v))
    }

    /// Appends an attribute without looking for an earlier value of the key: the
    /// fields of one span or one `record` call have distinct names.
    #[inline]
    pub(crate) fn add(&mut self, key: &'static str, value: AttrValue) {
        self.keys |= key_bits(key);
        self.attrs.push((key, value));
    }

    /// Sets an attribute, replacing an earlier value of the key.
    pub(crate) fn set(&mut self, key: &'static str, value: AttrValue) {
        match self.attrs.iter_mut().find(|(n, _)| *n == key) {
            Some(slot) => slot.1 = value,
            None => self.add(key, value),
        }
    }

    #[inline(always)]
    fn record(&mut self, field: &Field, value: AttrValue) {
        let name = field.name();
        // Most keys are plain attributes: the first byte tells them from the keys that
        // `record_special` looks at.
        let special = match name.as_bytes().first() {
            Some(b'o' | b'e' | b't') => true,
            Some(b'm' | b'u' | b'v') => self.tower_http,
            _ => false,
        };
        if special {
            self.record_special(name, value);
        } else {
            self.add(name, value);
        }
    }

    #[inline(never)]
    fn record_special(&mut self, name: &'static str, value: AttrValue) {
        match name {
            "otel.kind" => self.otel_kind = value.as_str().and_then(OtelKind::parse),
            "otel.name" => self.otel_name = Some(value.to_string()),
            "otel.status_code" => {
                if value
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("error"))
                {
                    self.error.get_or_insert_with(String::new);
                }
            }
            "otel.status_message" => self.error = Some(value.to_string()),
            "error" => match value {
                AttrValue::Bool(false) => {}
                AttrValue::Bool(true) => {
                    self.error.get_or_insert_with(String::new);
                }
                other => self.error = Some(other.to_string()),
            },
            "traceparent" => {
                self.traceparent = value.as_str().and_then(TraceParent::parse).map(Box::new);
            }
            "method" if self.tower_http => self.add("http.request.method", value),
            "uri" if self.tower_http => {
                let uri = value.to_string();
                // tower-http records the request target; keep the path and the query apart.
                let path = uri.split('?').next().unwrap_or("").to_string();
                let path = match path.find("://") {
                    Some(i) => path[i + 3..]
                        .find('/')
                        .map(|j| path[i + 3 + j..].to_string())
                        .unwrap_or_else(|| "/".into()),
                    None => path,
                };
                self.add("url.path", AttrValue::Str(path.into()));
            }
            "version" if self.tower_http => self.add(
                "network.protocol.version",
                AttrValue::Str(Text::from(value.to_string())),
            ),
            _ => self.add(name, value),
        }
    }

    /// Takes values recorded later (`Span::record`) over earlier ones.
    pub fn merge(&mut self, later: Fields) {
        for (k, v) in later.attrs {
            self.set(k, v);
        }
        self.keys |= later.keys;
        if later.otel_kind.is_some() {
            self.otel_kind = later.otel_kind;
        }
        if later.otel_name.is_some() {
            self.otel_name = later.otel_name;
        }
        if later.error.is_some() {
            self.error = later.error;
        }
        if later.traceparent.is_some() {
            self.traceparent = later.traceparent;
        }
    }

    /// Decides the span's category. `is_root`: no parent span known to the agent.
    pub fn category(&self, name: &str, target: &str, is_root: bool) -> Category {
        if matches!(self.otel_kind, Some(OtelKind::Server | OtelKind::Consumer))
            || is_tower_http_request(name, target)
        {
            return Category::Entry;
        }
        if self.keys & SQL_KEY != 0 {
            return Category::Sql;
        }
        if matches!(self.otel_kind, Some(OtelKind::Client | OtelKind::Producer))
            || self.keys & EXTERNAL_KEY != 0
        {
            return Category::External;
        }
        if is_root || self.traceparent.is_some() {
            Category::Entry
        } else {
            Category::Method
        }
    }

    /// The SQL text (new or old semantic-convention name).
    pub fn sql(&self) -> Option<&str> {
        self.get(&["db.query.text", "db.statement"])
            .and_then(AttrValue::as_str)
    }

    /// The URL or address of an external call.
    pub fn url(&self) -> Option<String> {
        if let Some(v) = self.get(&["url.full", "http.url"]) {
            return Some(v.to_string());
        }
        let host = self.get(&["server.address", "net.peer.name"])?;
        Some(match self.get(&["server.port", "net.peer.port"]) {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    }

    /// The endpoint of an entry span: `http.route` (with the method) or the path.
    pub fn endpoint(&self, name: &str) -> Cow<'static, str> {
        let method = self
            .get(&["http.request.method", "http.method"])
            .map(|m| m.to_string());
        let route = self
            .get(&["http.route"])
            .or_else(|| self.get(&["url.path", "http.target"]))
            .map(|r| r.to_string());
        match (method, route) {
            (Some(m), Some(r)) => Cow::Owned(format!("{m} {r}")),
            (None, Some(r)) => Cow::Owned(r),
            _ => Cow::Owned(self.otel_name.clone().unwrap_or_else(|| name.to_string())),
        }
    }
}

/// tower-http's `TraceLayer` default request span.
pub fn is_tower_http_request(name: &str, target: &str) -> bool {
    name == "request" && target.starts_with("tower_http")
}

/// A `tracing` field visitor that records into [`Fields`].
pub struct Recorder<'a>(pub &'a mut Fields);

impl Visit for Recorder<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.record(field, AttrValue::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record(field, AttrValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record(
            field,
            AttrValue::I64(i64::try_from(value).unwrap_or(i64::MAX)),
        );
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record(field, AttrValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record(field, AttrValue::Str(Text::new(value)));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .record(field, AttrValue::Str(Text::from(value.to_string())));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = Text::default();
        let _ = write!(s, "{value:?}");
        self.0.record(field, AttrValue::Str(s));
    }
}

/// What an ERROR event carries: its message and error type.
#[derive(Default)]
pub struct EventFields {
    pub message: String,
    pub error_type: Option<String>,
    pub status: Option<i64>,
}

impl Visit for EventFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.status = i64::try_from(value).ok();
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_text(field, value.to_string());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_text(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_text(field, format!("{value:?}"));
    }
}

impl EventFields {
    fn record_text(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" | "exception.message" => {
                if self.message.is_empty() {
                    self.message = value;
                } else {
                    self.message = format!("{}: {value}", self.message);
                }
            }
            "error" => {
                if self.message.is_empty() {
                    self.message = value;
                } else {
                    self.message = format!("{}: {value}", self.message);
                }
            }
            "error.type" | "exception.type" => self.error_type = Some(value),
            "status" => self.status = value.parse().ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&'static str, AttrValue)]) -> Fields {
        let mut f = Fields::default();
        for (k, v) in pairs {
            f.add(k, v.clone());
        }
        f
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::Str(v.into())
    }

    #[test]
    fn short_text_stays_inline_and_long_text_spills() {
        let short = Text::new("web");
        assert!(matches!(short, Text::Inline { .. }));
        assert_eq!(short.as_str(), "web");
        let mut t = Text::new("0123456789");
        let tail = "abcdefghijklmnopqrstuvwxyz";
        write!(t, "{tail}").unwrap();
        assert!(matches!(t, Text::Heap(_)));
        assert_eq!(t.as_str(), "0123456789abcdefghijklmnopqrstuvwxyz");
        assert_eq!(Text::from("é".repeat(11)).as_str(), "é".repeat(11));
        assert_eq!(Text::from("é".repeat(12)).as_str(), "é".repeat(12));
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let mut f = fields(&[("http.route", s("/a")), ("n", AttrValue::I64(1))]);
        let mut later = fields(&[("http.route", s("/b"))]);
        later.error = Some("bad".into());
        f.merge(later);
        assert_eq!(f.get(&["http.route"]), Some(&s("/b")));
        assert_eq!(f.get(&["n"]), Some(&AttrValue::I64(1)));
        assert_eq!(f.error.as_deref(), Some("bad"));
    }

    #[test]
    fn server_and_consumer_kinds_are_entries() {
        for kind in [OtelKind::Server, OtelKind::Consumer] {
            let f = Fields {
                otel_kind: Some(kind),
                ..Fields::default()
            };
            assert_eq!(f.category("handle", "app", false), Category::Entry);
        }
    }

    #[test]
    fn roots_and_tower_http_requests_are_entries() {
        let f = Fields::default();
        assert_eq!(f.category("job", "app", true), Category::Entry);
        assert_eq!(
            f.category("request", "tower_http::trace::make_span", false),
            Category::Entry
        );
        assert_eq!(f.category("work", "app", false), Category::Method);
    }

    #[test]
    fn db_fields_make_sql_spans_old_and_new_names() {
        for key in [
            "db.system",
            "db.system.name",
            "db.statement",
            "db.query.text",
        ] {
            let f = fields(&[(key, s("x"))]);
            assert_eq!(f.category("query", "app", false), Category::Sql, "{key}");
        }
        let f = fields(&[("db.statement", s("SELECT 1"))]);
        assert_eq!(f.sql(), Some("SELECT 1"));
        // SQL wins over the server address that database spans also carry.
        let f = fields(&[("server.address", s("db")), ("db.system", s("postgresql"))]);
        assert_eq!(f.category("q", "app", false), Category::Sql);
    }

    #[test]
    fn urls_addresses_and_client_kind_make_external_calls() {
        for key in ["http.url", "url.full", "server.address"] {
            let f = fields(&[(key, s("http://x"))]);
            assert_eq!(f.category("call", "app", false), Category::External);
        }
        let f = Fields {
            otel_kind: Some(OtelKind::Client),
            ..Fields::default()
        };
        assert_eq!(f.category("call", "app", false), Category::External);
        let f = fields(&[
            ("server.address", s("api")),
            ("server.port", AttrValue::I64(8080)),
        ]);
        assert_eq!(f.url().as_deref(), Some("api:8080"));
    }

    #[test]
    fn endpoint_prefers_the_route_with_method() {
        let f = fields(&[
            ("http.request.method", s("GET")),
            ("url.path", s("/users/42")),
            ("http.route", s("/users/{id}")),
        ]);
        assert_eq!(f.endpoint("request"), "GET /users/{id}");
        let f = fields(&[]);
        assert_eq!(f.endpoint("nightly_job"), "nightly_job");
    }

    #[derive(Default)]
    struct Capture(std::sync::Mutex<Vec<Fields>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut f = Fields {
                tower_http: span.metadata().target().starts_with("tower_http"),
                ..Fields::default()
            };
            span.record(&mut Recorder(&mut f));
            self.0.lock().unwrap().push(f);
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn capture(f: impl FnOnce()) -> Fields {
        let c = std::sync::Arc::new(Capture::default());
        tracing::subscriber::with_default(c.clone(), f);
        let mut v = c.0.lock().unwrap();
        v.pop().unwrap()
    }

    #[test]
    fn records_otel_fields_and_errors_from_real_spans() {
        let f = capture(|| {
            let _s = tracing::info_span!(
                "checkout",
                otel.kind = "server",
                otel.name = "POST /checkout",
                error = true,
                user.id = 7u64,
                traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            );
        });
        assert_eq!(f.otel_kind, Some(OtelKind::Server));
        assert_eq!(f.otel_name.as_deref(), Some("POST /checkout"));
        assert_eq!(f.error.as_deref(), Some(""));
        assert_eq!(f.get(&["user.id"]), Some(&AttrValue::I64(7)));
        assert_eq!(f.traceparent.unwrap().span_id, 0x00f067aa0ba902b7);

        let f = capture(|| {
            let e = std::io::Error::other("disk full");
            let _s = tracing::info_span!("save", error = %e);
        });
        assert_eq!(f.error.as_deref(), Some("disk full"));
    }

    #[test]
    fn maps_tower_http_request_fields_to_http_attributes() {
        let f = capture(|| {
            let uri: &str = "http://localhost:3000/orders/9?x=1";
            let _s = tracing::debug_span!(target: "tower_http::trace::make_span", "request", method = %"GET", uri = %uri, version = ?1.1);
        });
        assert_eq!(f.get(&["http.request.method"]), Some(&s("GET")));
        assert_eq!(f.get(&["url.path"]), Some(&s("/orders/9")));
        assert_eq!(f.endpoint("request"), "GET /orders/9");
    }
}
