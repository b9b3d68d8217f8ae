//! One vocabulary over the OpenTelemetry semantic conventions, old and new.
//!
//! Instrumentations in the wild emit every generation of the conventions: `http.method`
//! next to `http.request.method`, `db.statement` next to `db.query.text`. The rest of the
//! collector asks for a [`Field`] and gets whichever key the span carried, the newest one
//! when several are present. The mapping is the one table in [`Field::keys`]; adding a
//! renamed key is adding a string there.
//!
//! [`Attrs`] resolves every field in one pass over a span's attributes (a hash probe per
//! attribute, no allocation), for code that asks several questions of one span;
//! [`lookup`] answers a single one.

use std::sync::LazyLock;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::table::StrTable;

/// A canonical attribute: one meaning, whatever key carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    /// HTTP request method (`GET`).
    HttpMethod,
    /// HTTP response status code (`200`).
    HttpStatus,
    /// The matched route template (`/orders/{id}`).
    HttpRoute,
    /// Full request URL (`https://api.example.com/orders/7?x=1`).
    UrlFull,
    /// Request path; from `http.target` it may still carry the query string.
    UrlPath,
    /// Query string without the `?`.
    UrlQuery,
    /// URL scheme (`https`).
    UrlScheme,
    /// On CLIENT/PRODUCER spans: the remote server's name or address.
    ServerAddress,
    /// On CLIENT/PRODUCER spans: the remote server's port.
    ServerPort,
    /// On SERVER spans: the host name the client addressed (the `Host` header).
    ServerHost,
    /// On SERVER spans: the end client's address (past proxies when known).
    ClientAddress,
    /// Database product (`postgresql`, `mysql`, `redis`).
    DbSystem,
    /// The query text (`SELECT …`, a Redis command…).
    DbStatement,
    /// Database / schema / keyspace name.
    DbName,
    /// Database operation (`SELECT`, `findAndModify`).
    DbOperation,
    /// Table or collection the operation acts on.
    DbCollection,
    /// Messaging product (`kafka`, `rabbitmq`).
    MessagingSystem,
    /// Topic, queue or exchange name.
    MessagingDestination,
    /// Messaging operation (`publish`, `receive`, `process`).
    MessagingOperation,
    /// RPC framework (`grpc`, `dubbo`).
    RpcSystem,
    /// RPC service (`shop.v1.Orders`).
    RpcService,
    /// RPC method (`GetOrder`).
    RpcMethod,
    /// RPC status code (`OK`, or gRPC's numeric code).
    RpcStatus,
    /// The end user's id.
    UserId,
    /// Exception class (on `exception` events).
    ExceptionType,
    /// Exception message (on `exception` events).
    ExceptionMessage,
    /// Exception stack trace (on `exception` events).
    ExceptionStacktrace,
    /// The class of error a failed operation ended with.
    ErrorType,
    /// CPU time of the transaction in microseconds (Tern agents).
    CpuTimeUs,
    /// Time spent fetching result rows in microseconds (Tern agents).
    FetchTimeUs,
    /// Logical name of the remote service.
    PeerService,
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: [Field; 31] = [
        Field::HttpMethod,
        Field::HttpStatus,
        Field::HttpRoute,
        Field::UrlFull,
        Field::UrlPath,
        Field::UrlQuery,
        Field::UrlScheme,
        Field::ServerAddress,
        Field::ServerPort,
        Field::ServerHost,
        Field::ClientAddress,
        Field::DbSystem,
        Field::DbStatement,
        Field::DbName,
        Field::DbOperation,
        Field::DbCollection,
        Field::MessagingSystem,
        Field::MessagingDestination,
        Field::MessagingOperation,
        Field::RpcSystem,
        Field::RpcService,
        Field::RpcMethod,
        Field::RpcStatus,
        Field::UserId,
        Field::ExceptionType,
        Field::ExceptionMessage,
        Field::ExceptionStacktrace,
        Field::ErrorType,
        Field::CpuTimeUs,
        Field::FetchTimeUs,
        Field::PeerService,
    ];

    /// The attribute keys that carry this field, newest convention first.
    pub const fn keys(self) -> &'static [&'static str] {
        match self {
            Field::HttpMethod => &["http.request.method", "http.method"],
            Field::HttpStatus => &["http.response.status_code", "http.status_code"],
            Field::HttpRoute => &["http.route"],
            Field::UrlFull => &["url.full", "http.url"],
            Field::UrlPath => &["url.path", "http.target"],
            Field::UrlQuery => &["url.query"],
            Field::UrlScheme => &["url.scheme", "http.scheme"],
            Field::ServerAddress => &["server.address", "net.peer.name", "http.host"],
            Field::ServerPort => &["server.port", "net.peer.port"],
            Field::ServerHost => &[
                "server.address",
                "net.host.name",
                "http.host",
                "http.server_name",
            ],
            Field::ClientAddress => &[
                "client.address",
                "http.client_ip",
                "net.sock.peer.addr",
                "net.peer.ip",
                "network.peer.address",
            ],
            Field::DbSystem => &["db.system.name", "db.system"],
            Field::DbStatement => &["db.query.text", "db.statement"],
            Field::DbName => &["db.namespace", "db.name"],
            Field::DbOperation => &["db.operation.name", "db.operation"],
            Field::DbCollection => &[
                "db.collection.name",
                "db.sql.table",
                "db.mongodb.collection",
                "db.cassandra.table",
            ],
            Field::MessagingSystem => &["messaging.system"],
            Field::MessagingDestination => &["messaging.destination.name", "messaging.destination"],
            Field::MessagingOperation => &["messaging.operation.type", "messaging.operation"],
            Field::RpcSystem => &["rpc.system.name", "rpc.system"],
            Field::RpcService => &["rpc.service"],
            Field::RpcMethod => &["rpc.method"],
            Field::RpcStatus => &["rpc.response.status_code", "rpc.grpc.status_code"],
            Field::UserId => &["enduser.id", "user.id"],
            Field::ExceptionType => &["exception.type"],
            Field::ExceptionMessage => &["exception.message"],
            Field::ExceptionStacktrace => &["exception.stacktrace"],
            Field::ErrorType => &["error.type"],
            Field::CpuTimeUs => &["tern.cpu_time_us"],
            Field::FetchTimeUs => &["tern.fetch_time_us"],
            Field::PeerService => &["service.peer.name", "peer.service"],
        }
    }

    /// The field's canonical name: its newest key.
    pub const fn name(self) -> &'static str {
        self.keys()[0]
    }
}

/// Key → (field, rank) for every key of [`Field::keys`]. A key may carry several fields
/// (`server.address` is both the peer and the served host).
static INDEX: LazyLock<StrTable<(Field, u8)>> = LazyLock::new(|| {
    StrTable::new(
        Field::ALL
            .iter()
            .flat_map(|&f| {
                f.keys()
                    .iter()
                    .enumerate()
                    .map(move |(rank, &k)| (k, (f, rank as u8)))
            })
            .collect(),
    )
});

/// The value of `field` in `attrs`: the newest of its keys that is present with a value.
/// Empty strings count as absent, so an older key with content wins over a blank new one.
pub fn lookup(attrs: &[KeyValue], field: Field) -> Option<&AnyValue> {
    field.keys().iter().find_map(|key| {
        attrs
            .iter()
            .find(|kv| kv.key == *key)
            .and_then(|kv| present(kv.value.as_ref()))
    })
}

fn present(v: Option<&AnyValue>) -> Option<&AnyValue> {
    match v?.value.as_ref()? {
        Value::StringValue(s) if s.is_empty() => None,
        _ => v,
    }
}

/// The value as a string slice, if it is a string.
pub fn str_of(v: &AnyValue) -> Option<&str> {
    match v.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The value as an integer: an int, a decimal string (`"200"`), or a finite double
/// (truncated toward zero), as different SDKs send numbers differently.
pub fn int_of(v: &AnyValue) -> Option<i64> {
    match v.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.trim().parse().ok(),
        Value::DoubleValue(d) if d.is_finite() && d.abs() < 9.2e18 => Some(*d as i64),
        _ => None,
    }
}

/// A span's attributes with every [`Field`] resolved, from one pass over them.
///
/// ```
/// use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
/// use tern_collector::normalize::{Attrs, Field};
/// let kv = |k: &str, v: &str| KeyValue {
///     key: k.into(),
///     value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }),
///     ..Default::default()
/// };
/// let attrs = [kv("http.method", "GET"), kv("http.status_code", "404")];
/// let a = Attrs::new(&attrs);
/// assert_eq!(a.str(Field::HttpMethod), Some("GET"));
/// assert_eq!(a.int(Field::HttpStatus), Some(404));
/// ```
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    values: [Option<&'a AnyValue>; Field::ALL.len()],
}

impl<'a> Attrs<'a> {
    /// Resolves every field of `attrs`; for each, the newest key present wins.
    pub fn new(attrs: &'a [KeyValue]) -> Self {
        let index = &*INDEX;
        let mut values = [None; Field::ALL.len()];
        let mut ranks = [u8::MAX; Field::ALL.len()];
        for kv in attrs {
            let Some(value) = present(kv.value.as_ref()) else {
                continue;
            };
            for &(_, (field, rank)) in index.get_all(kv.key.as_bytes()) {
                let slot = field as usize;
                if rank < ranks[slot] {
                    ranks[slot] = rank;
                    values[slot] = Some(value);
                }
            }
        }
        Attrs { values }
    }

    /// The value of `field`, if any of its keys was present.
    pub fn get(&self, field: Field) -> Option<&'a AnyValue> {
        self.values[field as usize]
    }

    /// The value of `field` as a string, if it is one.
    pub fn str(&self, field: Field) -> Option<&'a str> {
        self.get(field).and_then(str_of)
    }

    /// The value of `field` as an integer (see [`int_of`]).
    pub fn int(&self, field: Field) -> Option<i64> {
        self.get(field).and_then(int_of)
    }

    /// Whether `field` is present.
    pub fn has(&self, field: Field) -> bool {
        self.get(field).is_some()
    }

    /// Whether the span is a database call: a db system or a statement is present.
    pub fn is_sql(&self) -> bool {
        self.has(Field::DbSystem) || self.has(Field::DbStatement)
    }

    /// Whether the span is a call out of the service: a PRODUCER span, or a CLIENT span
    /// with HTTP, RPC, messaging or remote-peer attributes that is not a database call.
    pub fn is_external(&self, kind: i32) -> bool {
        if kind == SpanKind::Producer as i32 {
            return true;
        }
        kind == SpanKind::Client as i32
            && !self.is_sql()
            && [
                Field::HttpMethod,
                Field::UrlFull,
                Field::RpcSystem,
                Field::RpcService,
                Field::MessagingSystem,
                Field::ServerAddress,
                Field::PeerService,
            ]
            .into_iter()
            .any(|f| self.has(f))
    }

    /// The request path: `url.path`, else `http.target`, else the path of the full URL.
    pub fn path(&self) -> Option<&'a str> {
        self.str(Field::UrlPath)
            .or_else(|| self.str(Field::UrlFull).and_then(|u| split_url(u).path))
    }

    /// What an external call talks to, as `host:port`: from the server address and port
    /// (the port defaulted from the URL scheme when absent), else from the full URL, else
    /// the peer service name. Host names are lowercased; IPv6 addresses are bracketed.
    pub fn external_target(&self) -> Option<String> {
        let url = self.str(Field::UrlFull).map(split_url);
        let scheme = self
            .str(Field::UrlScheme)
            .or(url.as_ref().and_then(|u| u.scheme));
        let default_port = scheme.and_then(default_port);
        if let Some(host) = self.str(Field::ServerAddress) {
            let port = self
                .int(Field::ServerPort)
                .or(url.as_ref().and_then(|u| u.port))
                .or(default_port);
            return Some(host_port(host, port));
        }
        if let Some(u) = url.filter(|u| !u.host.is_empty()) {
            return Some(host_port(u.host, u.port.or(default_port)));
        }
        self.str(Field::PeerService).map(str::to_owned)
    }
}

/// See [`Attrs::is_sql`].
pub fn is_sql(attrs: &[KeyValue]) -> bool {
    Attrs::new(attrs).is_sql()
}

/// See [`Attrs::is_external`]; `kind` is the OTLP `Span.kind`.
pub fn is_external(kind: i32, attrs: &[KeyValue]) -> bool {
    Attrs::new(attrs).is_external(kind)
}

/// See [`Attrs::external_target`].
pub fn external_target(attrs: &[KeyValue]) -> Option<String> {
    Attrs::new(attrs).external_target()
}

/// The parts of an absolute URL that naming needs, as slices of it.
#[derive(Debug, Default, PartialEq)]
struct UrlParts<'a> {
    scheme: Option<&'a str>,
    host: &'a str,
    port: Option<i64>,
    path: Option<&'a str>,
}

/// Splits `scheme://[user@]host[:port][/path][?query]` without allocating.
fn split_url(url: &str) -> UrlParts<'_> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return UrlParts {
            path: url.starts_with('/').then_some(url),
            ..Default::default()
        };
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()),
        _ => (authority, None),
    };
    let path = tail
        .split(['?', '#'])
        .next()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    UrlParts {
        scheme: Some(scheme),
        host: host.trim_start_matches('[').trim_end_matches(']'),
        port,
        path: Some(path),
    }
}

fn default_port(scheme: &str) -> Option<i64> {
    match scheme {
        s if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => Some(443),
        s if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => Some(80),
        _ => None,
    }
}

fn host_port(host: &str, port: Option<i64>) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let v6 = host.contains(':');
    let mut out = String::with_capacity(host.len() + 8);
    if v6 {
        out.push('[');
    }
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    if v6 {
        out.push(']');
    }
    if let Some(p) = port {
        out.push(':');
        out.push_str(itoa(p, &mut [0u8; 20]));
    }
    out
}

/// Formats `n` into `buf` without allocating.
fn itoa(n: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg && i > 0 {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn i(k: &str, v: i64) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::IntValue(v)),
            }),
            ..Default::default()
        }
    }

    fn d(k: &str, v: f64) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::DoubleValue(v)),
            }),
            ..Default::default()
        }
    }

    const CLIENT: i32 = SpanKind::Client as i32;
    const SERVER: i32 = SpanKind::Server as i32;

    #[test]
    fn every_field_has_keys_and_all_lists_every_field_in_order() {
        for (n, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, n);
            assert!(!f.keys().is_empty());
        }
    }

    #[test]
    fn the_newest_key_wins_whatever_the_attribute_order() {
        let attrs = [s("http.method", "POST"), s("http.request.method", "GET")];
        assert_eq!(Attrs::new(&attrs).str(Field::HttpMethod), Some("GET"));
        assert_eq!(
            lookup(&attrs, Field::HttpMethod).and_then(str_of),
            Some("GET")
        );
        let attrs = [
            s("db.query.text", "SELECT 1"),
            s("db.statement", "SELECT 2"),
        ];
        assert_eq!(Attrs::new(&attrs).str(Field::DbStatement), Some("SELECT 1"));
    }

    #[test]
    fn old_keys_are_read_when_new_ones_are_absent_or_empty() {
        let attrs = [
            s("http.route", ""),
            s("db.statement", "SELECT 2"),
            s("db.query.text", ""),
        ];
        let a = Attrs::new(&attrs);
        assert_eq!(a.str(Field::DbStatement), Some("SELECT 2"));
        assert_eq!(a.get(Field::HttpRoute), None);
        assert_eq!(
            lookup(&attrs, Field::DbStatement).and_then(str_of),
            Some("SELECT 2")
        );
    }

    #[test]
    fn one_key_can_feed_two_fields() {
        let attrs = [s("server.address", "shop.example.com")];
        let a = Attrs::new(&attrs);
        assert_eq!(a.str(Field::ServerAddress), a.str(Field::ServerHost));
    }

    #[test]
    fn integers_arrive_as_ints_strings_or_doubles() {
        let attrs = [
            s("http.status_code", " 200 "),
            i("server.port", 8080),
            d("tern.cpu_time_us", 1234.9),
        ];
        let a = Attrs::new(&attrs);
        assert_eq!(
            (
                a.int(Field::HttpStatus),
                a.int(Field::ServerPort),
                a.int(Field::CpuTimeUs)
            ),
            (Some(200), Some(8080), Some(1234))
        );
        assert_eq!(
            int_of(&AnyValue {
                value: Some(Value::DoubleValue(f64::NAN))
            }),
            None
        );
        assert_eq!(
            int_of(&AnyValue {
                value: Some(Value::StringValue("2xx".into()))
            }),
            None
        );
    }

    #[test]
    fn database_spans_are_sql_and_not_external() {
        let attrs = [s("db.system", "mysql"), s("server.address", "db1")];
        assert!(is_sql(&attrs));
        assert!(!is_external(CLIENT, &attrs));
        assert!(is_sql(&[s("db.statement", "GET k")]));
        assert!(!is_sql(&[s("http.method", "GET")]));
    }

    #[test]
    fn client_calls_with_http_rpc_or_messaging_attributes_are_external() {
        assert!(is_external(CLIENT, &[s("http.request.method", "GET")]));
        assert!(is_external(CLIENT, &[s("rpc.system", "grpc")]));
        assert!(is_external(CLIENT, &[s("messaging.system", "kafka")]));
        assert!(is_external(SpanKind::Producer as i32, &[]));
        assert!(!is_external(CLIENT, &[s("code.function", "f")]));
        assert!(!is_external(SERVER, &[s("http.request.method", "GET")]));
    }

    #[test]
    fn external_target_prefers_address_and_port_then_url_then_peer_service() {
        let t = |attrs: &[KeyValue]| external_target(attrs);
        assert_eq!(
            t(&[
                s("server.address", "API.example.com"),
                i("server.port", 8443)
            ])
            .as_deref(),
            Some("api.example.com:8443")
        );
        assert_eq!(
            t(&[s("net.peer.name", "api"), s("net.peer.port", "81")]).as_deref(),
            Some("api:81")
        );
        assert_eq!(
            t(&[s("server.address", "api"), s("url.full", "https://api/x")]).as_deref(),
            Some("api:443")
        );
        assert_eq!(
            t(&[s("http.url", "http://user:pw@Shop:8080/a?b")]).as_deref(),
            Some("shop:8080")
        );
        assert_eq!(
            t(&[s("url.full", "https://[::1]/a")]).as_deref(),
            Some("[::1]:443")
        );
        assert_eq!(
            t(&[s("server.address", "::1"), i("server.port", 5432)]).as_deref(),
            Some("[::1]:5432")
        );
        assert_eq!(
            t(&[s("peer.service", "billing")]).as_deref(),
            Some("billing")
        );
        assert_eq!(t(&[s("server.address", "redis")]).as_deref(), Some("redis"));
        assert_eq!(t(&[]), None);
    }

    #[test]
    fn the_path_comes_from_url_path_target_or_full_url() {
        assert_eq!(Attrs::new(&[s("url.path", "/a")]).path(), Some("/a"));
        assert_eq!(
            Attrs::new(&[s("http.target", "/a?x=1")]).path(),
            Some("/a?x=1")
        );
        assert_eq!(
            Attrs::new(&[s("url.full", "https://h:1/b/c?x#f")]).path(),
            Some("/b/c")
        );
        assert_eq!(Attrs::new(&[s("url.full", "https://h")]).path(), Some("/"));
    }

    #[test]
    fn integers_format_without_allocation() {
        for n in [0, 7, 443, -12, i64::MAX, i64::MIN] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string());
        }
    }
}
