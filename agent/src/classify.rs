//! What a span is (transaction entry, SQL, external call, method), decided from the
//! fields that real crates emit: OpenTelemetry semantic-convention names, `otel.*`
//! fields, tower-http's request spans, and `error` fields.

use std::fmt;

use tracing_core::field::{Field, Visit};

pub use crate::attrs::Value;
use crate::attrs::{key_name, Attrs, Key, Meta};
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

/// An event kept on a span: errors become OTLP `exception` events.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    pub time_unix_nano: u64,
    pub error_type: String,
    pub message: String,
}

/// What the field visitor collects from a span's fields. Small (its attributes are a
/// short inline buffer; the rarely present parts are behind one `Option<Box>`), since
/// every span record carries one and moves it to the exporter.
#[derive(Debug, Clone)]
pub struct Fields {
    /// The span's callsite: name, target and the names of the fields in `attrs`.
    pub meta: Meta,
    pub attrs: Attrs,
    pub otel_kind: Option<OtelKind>,
    /// Set for tower-http spans: `method` and `uri` map to HTTP attributes.
    pub tower_http: bool,
    /// Which kinds of keys were recorded ([`SQL_KEY`], [`EXTERNAL_KEY`]): the category
    /// is decided from these bits, not by searching the attributes again.
    pub keys: u8,
    /// `otel.name`, errors, a `traceparent`: most spans have none of them.
    pub rare: Option<Box<Rare>>,
}

/// The parts of a span's fields that most spans do not have.
#[derive(Debug, Clone, Default)]
pub struct Rare {
    pub otel_name: Option<String>,
    /// `Some` when an `error` field (true or a message) or `otel.status_code = "ERROR"`
    /// was recorded; the message may be empty.
    pub error: Option<String>,
    pub traceparent: Option<TraceParent>,
    /// ERROR events recorded inside the span.
    pub errors: Vec<ErrorEvent>,
    /// The exported name, when not the span's own (HTTP server spans: `{method} {route}`).
    pub name: Option<String>,
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
    /// No fields yet, for a span of callsite `meta`.
    #[inline]
    pub fn new(meta: Meta) -> Fields {
        Fields {
            tower_http: meta.target().starts_with("tower_http"),
            ..Fields::empty(meta)
        }
    }

    /// No fields, nothing known about the callsite (what a record keeps once its
    /// fields went to the exporter).
    #[inline]
    pub fn empty(meta: Meta) -> Fields {
        Fields {
            meta,
            attrs: Attrs::default(),
            otel_kind: None,
            tower_http: false,
            keys: 0,
            rare: None,
        }
    }

    /// The rarely present parts, created on first use.
    pub fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The error message when the span failed (may be empty).
    pub fn error(&self) -> Option<&str> {
        self.rare.as_ref()?.error.as_deref()
    }

    /// The caller's trace context given in a `traceparent` field.
    pub fn traceparent(&self) -> Option<&TraceParent> {
        self.rare.as_ref()?.traceparent.as_ref()
    }

    /// The `otel.name` field.
    pub fn otel_name(&self) -> Option<&str> {
        self.rare.as_ref()?.otel_name.as_deref()
    }

    /// The attributes as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> {
        let meta = self.meta;
        self.attrs.iter().map(move |(k, v)| (key_name(meta, k), v))
    }

    /// The value of the first of `keys` that was recorded.
    pub fn get(&self, keys: &[&str]) -> Option<Value<'_>> {
        keys.iter()
            .find_map(|k| self.iter().find(|(n, _)| n == k).map(|(_, v)| v))
    }

    /// Appends an attribute without looking for an earlier value of the key: the
    /// fields of one span or one `record` call have distinct names.
    #[inline]
    fn add(&mut self, key: u8, name: &str, value: Value<'_>) {
        self.keys |= key_bits(name);
        self.attrs.push(key, value);
    }

    /// Sets one of the agent's own attributes, replacing an earlier value.
    pub(crate) fn set(&mut self, key: Key, value: Value<'_>) {
        self.attrs.remove(key as u8);
        self.attrs.push(key as u8, value);
    }

    /// Whether a field is one that `record_special` looks at: the first byte of its
    /// name tells most plain attributes apart.
    #[inline(always)]
    fn special(&self, name: &str) -> bool {
        match name.as_bytes().first() {
            Some(b'o' | b'e' | b't') => true,
            Some(b'm' | b'u' | b'v') => self.tower_http,
            _ => false,
        }
    }

    /// The key byte of a field (fields past the key space are not kept: callsites
    /// have at most 32 fields).
    #[inline(always)]
    fn key(field: &Field) -> Option<u8> {
        u8::try_from(field.index()).ok().filter(|&k| k < Key::FIRST)
    }

    #[inline(always)]
    fn record_value(&mut self, field: &Field, value: Value<'_>) {
        let Some(key) = Self::key(field) else { return };
        let name = field.name();
        if self.special(name) {
            self.record_special(key, name, value);
        } else {
            self.add(key, name, value);
        }
    }

    #[inline(never)]
    fn record_special(&mut self, key: u8, name: &'static str, value: Value<'_>) {
        match name {
            "otel.kind" => self.otel_kind = value.as_str().and_then(OtelKind::parse),
            "otel.name" => self.rare_mut().otel_name = Some(value.to_string()),
            "otel.status_code" => {
                if value
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("error"))
                {
                    self.rare_mut().error.get_or_insert_with(String::new);
                }
            }
            "otel.status_message" => self.rare_mut().error = Some(value.to_string()),
            "error" => match value {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    self.rare_mut().error.get_or_insert_with(String::new);
                }
                other => self.rare_mut().error = Some(other.to_string()),
            },
            "traceparent" => {
                self.rare_mut().traceparent = value.as_str().and_then(TraceParent::parse);
            }
            "method" if self.tower_http => self.attrs.push(Key::HttpRequestMethod as u8, value),
            "uri" if self.tower_http => {
                let uri = value.to_string();
                // tower-http records the request target; keep the path and the query apart.
                let path = uri.split('?').next().unwrap_or("");
                let path = match path.find("://") {
                    Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
                    None => path,
                };
                self.attrs.push_str(Key::UrlPath as u8, path);
            }
            "version" if self.tower_http => self
                .attrs
                .push_str(Key::NetworkProtocolVersion as u8, &value.to_string()),
            _ => self.add(key, name, value),
        }
    }

    /// Takes values recorded later (`Span::record`) over earlier ones.
    pub fn merge(&mut self, later: Fields) {
        for (k, v) in later.attrs.iter() {
            self.attrs.remove(k);
            self.attrs.push(k, v);
        }
        self.keys |= later.keys;
        if later.otel_kind.is_some() {
            self.otel_kind = later.otel_kind;
        }
        let Some(later) = later.rare else { return };
        let rare = self.rare_mut();
        if later.otel_name.is_some() {
            rare.otel_name = later.otel_name;
        }
        if later.error.is_some() {
            rare.error = later.error;
        }
        if later.traceparent.is_some() {
            rare.traceparent = later.traceparent;
        }
    }

    /// Decides the span's category. `is_root`: no parent span known to the agent.
    pub fn category(&self, is_root: bool) -> Category {
        // tower-http's `TraceLayer` request span.
        if matches!(self.otel_kind, Some(OtelKind::Server | OtelKind::Consumer))
            || (self.tower_http && self.meta.name() == "request")
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
        if is_root || self.traceparent().is_some() {
            Category::Entry
        } else {
            Category::Method
        }
    }

    /// The SQL text (new or old semantic-convention name).
    pub fn sql(&self) -> Option<&str> {
        self.get(&["db.query.text", "db.statement"])
            .and_then(|v| v.as_str())
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
    pub fn endpoint(&self) -> String {
        let method = self.get(&["http.request.method", "http.method"]);
        let route = self
            .get(&["http.route"])
            .or_else(|| self.get(&["url.path", "http.target"]));
        match (method, route) {
            (Some(m), Some(r)) => format!("{m} {r}"),
            (None, Some(r)) => r.to_string(),
            _ => self
                .otel_name()
                .unwrap_or_else(|| self.meta.name())
                .to_string(),
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record_value(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_value(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_value(field, Value::I64(i64::try_from(value).unwrap_or(i64::MAX)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_value(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_value(field, Value::Str(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_value(field, Value::Str(&value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let Some(key) = Self::key(field) else { return };
        let name = field.name();
        if self.special(name) {
            let text = format!("{value:?}");
            self.record_special(key, name, Value::Str(&text));
        } else {
            self.keys |= key_bits(name);
            self.attrs.push_debug(key, value);
        }
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

/// Test helpers: the fields of real spans, recorded by a minimal subscriber.
#[cfg(test)]
pub(crate) mod testing {
    use super::Fields;

    #[derive(Default)]
    struct Capture(std::sync::Mutex<Vec<Fields>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut f = Fields::new(span.metadata());
            span.record(&mut f);
            self.0.lock().unwrap().push(f);
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// The fields of the last span `f` creates.
    pub(crate) fn capture(f: impl FnOnce()) -> Fields {
        let c = std::sync::Arc::new(Capture::default());
        tracing::subscriber::with_default(c.clone(), f);
        let mut v = c.0.lock().unwrap();
        v.pop().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::capture;
    use super::*;

    fn s(v: &str) -> Value<'_> {
        Value::Str(v)
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let mut f = capture(|| {
            let _ = tracing::info_span!("x", http.route = "/a", n = 1i64);
        });
        // What `span.record("http.route", "/b")` delivers: field 0 of the same callsite.
        let mut later = Fields::new(f.meta);
        later.attrs.push(0, s("/b"));
        later.rare_mut().error = Some("bad".into());
        f.merge(later);
        assert_eq!(f.get(&["http.route"]), Some(s("/b")));
        assert_eq!(f.get(&["n"]), Some(Value::I64(1)));
        assert_eq!(f.error(), Some("bad"));
    }

    #[test]
    fn server_and_consumer_kinds_are_entries() {
        let f = capture(|| {
            let _ = tracing::info_span!("handle", otel.kind = "server");
        });
        assert_eq!(f.category(false), Category::Entry);
        let f = capture(|| {
            let _ = tracing::info_span!("handle", otel.kind = "Consumer");
        });
        assert_eq!(f.category(false), Category::Entry);
    }

    #[test]
    fn roots_and_tower_http_requests_are_entries() {
        let f = capture(|| {
            let _ = tracing::info_span!("job");
        });
        assert_eq!(f.category(true), Category::Entry);
        assert_eq!(f.category(false), Category::Method);
        let f = capture(|| {
            let _ = tracing::info_span!(target: "tower_http::trace::make_span", "request");
        });
        assert_eq!(f.category(false), Category::Entry);
    }

    #[test]
    fn db_fields_make_sql_spans_old_and_new_names() {
        let all = [
            capture(|| drop(tracing::info_span!("query", db.system = "x"))),
            capture(|| drop(tracing::info_span!("query", db.system.name = "x"))),
            capture(|| drop(tracing::info_span!("query", db.statement = "x"))),
            capture(|| drop(tracing::info_span!("query", db.query.text = "x"))),
        ];
        for f in &all {
            assert_eq!(f.category(false), Category::Sql, "{:?}", f.meta.fields());
        }
        assert_eq!(all[2].sql(), Some("x"));
        // SQL wins over the server address that database spans also carry.
        let f = capture(|| {
            let _ = tracing::info_span!("q", server.address = "db", db.system = "postgresql");
        });
        assert_eq!(f.category(false), Category::Sql);
    }

    #[test]
    fn urls_addresses_and_client_kind_make_external_calls() {
        let all = [
            capture(|| drop(tracing::info_span!("call", http.url = "http://x"))),
            capture(|| drop(tracing::info_span!("call", url.full = "http://x"))),
            capture(|| drop(tracing::info_span!("call", server.address = "x"))),
            capture(|| drop(tracing::info_span!("call", otel.kind = "client"))),
        ];
        for f in &all {
            assert_eq!(
                f.category(false),
                Category::External,
                "{:?}",
                f.meta.fields()
            );
        }
        let f = capture(|| {
            let _ = tracing::info_span!("call", server.address = "api", server.port = 8080u64);
        });
        assert_eq!(f.url().as_deref(), Some("api:8080"));
    }

    #[test]
    fn endpoint_prefers_the_route_with_method() {
        let f = capture(|| {
            let _ = tracing::info_span!(
                "request",
                http.request.method = "GET",
                url.path = "/users/42",
                http.route = "/users/{id}"
            );
        });
        assert_eq!(f.endpoint(), "GET /users/{id}");
        let f = capture(|| drop(tracing::info_span!("nightly_job")));
        assert_eq!(f.endpoint(), "nightly_job");
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
        assert_eq!(f.otel_name(), Some("POST /checkout"));
        assert_eq!(f.error(), Some(""));
        assert_eq!(f.get(&["user.id"]), Some(Value::I64(7)));
        assert_eq!(f.traceparent().unwrap().span_id, 0x00f067aa0ba902b7);
        // The special fields are not attributes.
        assert_eq!(f.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["user.id"]);

        let f = capture(|| {
            let e = std::io::Error::other("disk full");
            let _s = tracing::info_span!("save", error = %e);
        });
        assert_eq!(f.error(), Some("disk full"));
    }

    #[test]
    fn records_every_kind_of_value() {
        let f = capture(|| {
            let _s = tracing::info_span!(
                "load_cart",
                user.id = 7u64,
                delta = -2i64,
                ratio = 0.25,
                cached = false,
                kind = "web",
                shown = %"display",
                debugged = ?Some(1)
            );
        });
        let got: Vec<(&str, String)> = f.iter().map(|(k, v)| (k, v.to_string())).collect();
        let want = [
            ("user.id", "7"),
            ("delta", "-2"),
            ("ratio", "0.25"),
            ("cached", "false"),
            ("kind", "web"),
            ("shown", "display"),
            ("debugged", "Some(1)"),
        ];
        let want: Vec<(&str, String)> = want.iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(got, want);
        assert_eq!(f.category(false), Category::Method);
    }

    #[test]
    fn maps_tower_http_request_fields_to_http_attributes() {
        let f = capture(|| {
            let uri: &str = "http://localhost:3000/orders/9?x=1";
            let _s = tracing::debug_span!(target: "tower_http::trace::make_span", "request", method = %"GET", uri = %uri, version = ?1.1);
        });
        assert_eq!(f.get(&["http.request.method"]), Some(s("GET")));
        assert_eq!(f.get(&["url.path"]), Some(s("/orders/9")));
        assert_eq!(f.get(&["network.protocol.version"]), Some(s("1.1")));
        assert_eq!(f.endpoint(), "GET /orders/9");
    }
}
