//! Endpoint naming: one stable, low-cardinality name per transaction type.
//!
//! Every transaction is grouped by `(service, endpoint)` in the live views and the minute
//! rollups, so the endpoint must name the *route*, not the request: `/orders/17` and
//! `/orders/18` are one endpoint. The framework's `http.route` is the best name; without it
//! the path is normalized by replacing segments that look like data with `{id}`; and a
//! [`CardinalityGuard`] bounds what is left, so a misbehaving client cannot create
//! unbounded series.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::hash::hash64;

/// Replaces a path segment that carries data (an id, a UUID, a token, an e-mail, a date).
pub const ID: &str = "{id}";

/// Replaces the segments after the first [`MAX_SEGMENTS`] of a path.
pub const REST: &str = "{rest}";

/// Paths keep at most this many segments; the rest become one [`REST`] segment.
pub const MAX_SEGMENTS: usize = 16;

/// Segments longer than this many bytes are data, whatever they look like (slugs, blobs).
pub const MAX_SEGMENT_LEN: usize = 48;

/// Upper bound, in bytes, of a route or span name taken verbatim into an endpoint name.
pub const MAX_NAME_LEN: usize = 512;

/// The endpoint name when nothing names the transaction.
pub const UNKNOWN: &str = "{unknown}";

/// Normalizes a URL path into an endpoint path.
///
/// - the query string and fragment are dropped, and a leading `scheme://host` if present;
/// - empty segments are dropped (`//a///b/` is `/a/b`; the root stays `/`);
/// - a segment is replaced by [`ID`] when it is all digits, a UUID, hex of 8+ characters
///   with a digit, a date (`2024-01-31`), an e-mail, contains a run of 6+ digits, is a
///   random-looking token (16+ characters of `[A-Za-z0-9_-]`, letters and digits, with
///   frequent switches between lower case, upper case and digits), or is longer than
///   [`MAX_SEGMENT_LEN`]; an extension survives (`123.json` is `{id}.json`);
/// - words, versions (`v2`) and templates (`{id}`, `:id`) are kept as they are;
/// - after [`MAX_SEGMENTS`] segments the rest is one [`REST`] segment.
///
/// ```
/// use tern_collector::normalize::normalize_path;
/// assert_eq!(normalize_path("/api/orders/123/items?page=2"), "/api/orders/{id}/items");
/// assert_eq!(
///     normalize_path("//users/3f2b8c1e-9d4a-4c1b-8f3e-2a1b0c9d8e7f/avatar.png#top"),
///     "/users/{id}/avatar.png"
/// );
/// ```
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(MAX_NAME_LEN) + ID.len());
    push_path(&mut out, path);
    out
}

/// Appends the normalized form of `path` to `out`.
fn push_path(out: &mut String, path: &str) {
    let path = strip_origin(path);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut segments = 0;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        if segments == MAX_SEGMENTS {
            out.push_str(REST);
            return;
        }
        segments += 1;
        match split_extension(seg) {
            _ if is_id(seg) => out.push_str(ID),
            Some((stem, ext)) if is_id(stem) => {
                out.push_str(ID);
                out.push('.');
                out.push_str(ext);
            }
            _ => out.push_str(seg),
        }
    }
    if segments == 0 {
        out.push('/');
    }
}

/// `https://host:8080/a/b` → `/a/b`; anything not starting with a scheme is returned as is.
fn strip_origin(path: &str) -> &str {
    if path.starts_with('/') {
        return path;
    }
    match path.find("://") {
        Some(i)
            if path[..i]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'.' || c == b'-') =>
        {
            let rest = &path[i + 3..];
            rest.find(['/', '?', '#']).map_or("", |j| &rest[j..])
        }
        _ => path,
    }
}

/// `name.ext` with a short alphabetic extension, split at the last dot.
fn split_extension(seg: &str) -> Option<(&str, &str)> {
    let (stem, ext) = seg.rsplit_once('.')?;
    let ext_ok = (1..=5).contains(&ext.len())
        && ext.bytes().all(|c| c.is_ascii_alphanumeric())
        && ext.bytes().any(|c| c.is_ascii_alphabetic());
    (ext_ok && !stem.is_empty()).then_some((stem, ext))
}

/// Whether a path segment carries data rather than naming a resource.
fn is_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.len() > MAX_SEGMENT_LEN {
        return true;
    }
    // Fast path for words: every rule below but the compound code needs a digit, an `@`
    // or a `%40`.
    if !b
        .iter()
        .any(|&c| c.is_ascii_digit() || c == b'@' || c == b'%')
    {
        return has_code_part(seg);
    }
    let mut digits = 0usize;
    let mut letters = 0usize;
    let mut hex = true;
    let mut token = true;
    let mut run = 0usize;
    let mut longest_run = 0usize;
    let mut switches = 0usize;
    let mut last_class = 0u8;
    // E-mail: an `@` (or `%40`) after the first byte, then a `.` somewhere after it.
    let mut at = false;
    let mut email = false;
    for (i, &c) in b.iter().enumerate() {
        at |= i > 0 && (c == b'@' || (c == b'%' && b.get(i + 1..i + 3) == Some(b"40")));
        email |= at && c == b'.';
        let class = match c {
            b'0'..=b'9' => 1,
            b'a'..=b'z' => 2,
            b'A'..=b'Z' => 3,
            _ => 0,
        };
        if class == 1 {
            digits += 1;
            run += 1;
            longest_run = longest_run.max(run);
        } else {
            run = 0;
        }
        letters += usize::from(class >= 2);
        hex &= c.is_ascii_hexdigit();
        token &= class != 0 || c == b'-' || c == b'_';
        if class != 0 {
            switches += usize::from(last_class != 0 && class != last_class);
            last_class = class;
        }
    }
    let n = b.len();
    digits == n
        || longest_run >= 6
        || (hex && n >= 8 && digits > 0)
        || is_uuid(b)
        || is_date(b)
        || email
        || (token && n >= 16 && digits > 0 && letters > 0 && switches * 4 >= n)
        || (token && has_code_part(seg))
}

/// A compound code such as `SKU-4BAF8`, `INV-2024-001` or `order_12345`, told from words
/// such as `page-404` or `report-2024`: a `-`/`_` separated part that mixes hex letters
/// and digits (4+ characters), or is 5+ digits, or — beside an all-uppercase prefix — is
/// 3+ digits or 4+ uppercase hex characters (`SKU-BEDFB`).
fn has_code_part(seg: &str) -> bool {
    if !seg.contains(['-', '_']) {
        return false;
    }
    let upper_prefix = seg
        .split(['-', '_'])
        .any(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_uppercase()));
    seg.split(['-', '_']).any(|p| {
        let digits = p.bytes().filter(u8::is_ascii_digit).count();
        let hex = p.bytes().all(|c| c.is_ascii_hexdigit());
        let upper_hex = p
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c));
        (hex && p.len() >= 4 && digits > 0 && digits < p.len())
            || (digits == p.len() && (digits >= 5 || (digits >= 3 && upper_prefix)))
            || (upper_prefix && upper_hex && p.len() >= 4 && p.len() < seg.len())
    })
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_date(b: &[u8]) -> bool {
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// HTTP methods known to the semantic conventions; anything else is `_OTHER`, so that
/// clients cannot mint endpoints by sending made-up methods.
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "QUERY",
];

/// The canonical (uppercase) spelling of an HTTP method; `_OTHER` for unknown ones,
/// `None` when empty.
pub fn canonical_method(method: &str) -> Option<&'static str> {
    if method.is_empty() {
        return None;
    }
    let known = METHODS.iter().find(|m| m.eq_ignore_ascii_case(method));
    Some(known.copied().unwrap_or("_OTHER"))
}

/// Names a transaction's endpoint from what its entry span carries, best source first:
///
/// 1. `http.route` (verbatim, it is the framework's own template), prefixed with the
///    method: `GET /api/orders/{id}`;
/// 2. the method and the [normalized](normalize_path) path or URL;
/// 3. the span name, normalized when it is a path (`/x/1`) or `METHOD /path`, otherwise
///    verbatim (`ProcessOrderJob`, `grpc.health.v1.Health/Check`).
///
/// Methods are made canonical (`get` → `GET`, unknown → `_OTHER`); verbatim parts are cut
/// at [`MAX_NAME_LEN`] bytes; an empty result is [`UNKNOWN`].
///
/// ```
/// use tern_collector::normalize::endpoint_name;
/// assert_eq!(endpoint_name(Some("/orders/{id}"), Some("get"), Some("/orders/7"), "GET"), "GET /orders/{id}");
/// assert_eq!(endpoint_name(None, Some("POST"), Some("/orders/7?x=1"), "POST"), "POST /orders/{id}");
/// assert_eq!(endpoint_name(None, None, None, "GET /files/123"), "GET /files/{id}");
/// assert_eq!(endpoint_name(None, None, None, "SendInvoices"), "SendInvoices");
/// ```
pub fn endpoint_name(
    route: Option<&str>,
    method: Option<&str>,
    path: Option<&str>,
    span_name: &str,
) -> String {
    let method = method.map(str::trim).and_then(canonical_method);
    let mut out = String::new();
    if let Some(route) = route.map(str::trim).filter(|r| !r.is_empty()) {
        out.reserve(route.len().min(MAX_NAME_LEN) + 8);
        if let Some(m) = method.filter(|m| !starts_with_method(route, m)) {
            out.push_str(m);
            out.push(' ');
        }
        push_bounded(&mut out, route);
    } else if let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) {
        out.reserve(path.len().min(MAX_NAME_LEN) + 8);
        if let Some(m) = method {
            out.push_str(m);
            out.push(' ');
        }
        push_path(&mut out, path);
    } else {
        let name = span_name.trim();
        let (span_method, rest) = match name.split_once(' ') {
            Some((m, rest)) if rest.starts_with('/') => (canonical_method(m), rest),
            _ => (None, name),
        };
        out.reserve(name.len().min(MAX_NAME_LEN) + 8);
        if rest.starts_with('/') {
            if let Some(m) = span_method.or(method) {
                out.push_str(m);
                out.push(' ');
            }
            push_path(&mut out, rest);
        } else {
            push_bounded(&mut out, name);
        }
    }
    if out.is_empty() {
        out.push_str(UNKNOWN);
    }
    out
}

fn starts_with_method(route: &str, method: &str) -> bool {
    route.len() > method.len()
        && route.as_bytes()[method.len()] == b' '
        && route[..method.len()].eq_ignore_ascii_case(method)
}

/// Appends at most [`MAX_NAME_LEN`] bytes of `s`, cut at a character boundary.
fn push_bounded(out: &mut String, s: &str) {
    let mut end = s.len().min(MAX_NAME_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&s[..end]);
}

/// Bounds the number of distinct endpoint names per service.
///
/// Once a service has `limit` names, any new one is folded into [`CardinalityGuard::OTHER`]
/// and counted, so storage and the live views stay bounded whatever the clients send;
/// names admitted before keep working. Known names are checked under a read lock of one
/// of 16 cache-line-padded shards chosen by the name's hash, so concurrent ingest threads
/// rarely touch the same lock; only a name's first sighting takes a write lock.
///
/// The count is per collector process and lasts for its lifetime.
///
/// ```
/// use tern_collector::normalize::CardinalityGuard;
/// let guard = CardinalityGuard::new(1);
/// assert_eq!(guard.admit("shop", "GET /a".into()), "GET /a");
/// assert_eq!(guard.admit("shop", "GET /b".into()), CardinalityGuard::OTHER);
/// assert_eq!(guard.admit("shop", "GET /a".into()), "GET /a");
/// assert_eq!(guard.folded(), 1);
/// ```
pub struct CardinalityGuard {
    limit: usize,
    shards: Box<[Shard]>,
    /// Names admitted per service, across shards.
    counts: RwLock<HashMap<String, Arc<AtomicUsize>>>,
    folded: AtomicU64,
}

/// Service → admitted names, for the names that hash to this shard.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<HashMap<String, HashSet<String>>>);

const SHARDS: usize = 16;

impl CardinalityGuard {
    /// Distinct endpoint names a service may have by default.
    pub const DEFAULT_LIMIT: usize = 1000;

    /// The name that stands for every endpoint past the limit.
    pub const OTHER: &'static str = "{other}";

    /// A guard admitting up to `limit_per_service` distinct names per service.
    pub fn new(limit_per_service: usize) -> Self {
        CardinalityGuard {
            limit: limit_per_service,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            counts: RwLock::new(HashMap::new()),
            folded: AtomicU64::new(0),
        }
    }

    /// The per-service limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Returns `endpoint` if the service already has it or is under its limit (then it is
    /// remembered), else [`Self::OTHER`]. Allocates only on a name's first sighting.
    pub fn admit(&self, service: &str, mut endpoint: String) -> String {
        let shard = &self.shards[(hash64(endpoint.as_bytes()) % SHARDS as u64) as usize].0;
        let known = |map: &HashMap<String, HashSet<String>>| {
            map.get(service)
                .is_some_and(|names| names.contains(&endpoint))
        };
        if known(&shard.read()) {
            return endpoint;
        }
        let count = self.count_of(service);
        let mut map = shard.write();
        if known(&map) {
            return endpoint;
        }
        let reserved = count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            drop(map);
            self.folded.fetch_add(1, Ordering::Relaxed);
            endpoint.clear();
            endpoint.push_str(Self::OTHER);
            return endpoint;
        }
        map.entry(service.to_owned())
            .or_default()
            .insert(endpoint.clone());
        endpoint
    }

    /// How many names were folded into [`Self::OTHER`] so far (a self-metric).
    pub fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// How many distinct names `service` has been admitted.
    pub fn distinct(&self, service: &str) -> usize {
        self.counts
            .read()
            .get(service)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    fn count_of(&self, service: &str) -> Arc<AtomicUsize> {
        if let Some(c) = self.counts.read().get(service) {
            return Arc::clone(c);
        }
        Arc::clone(self.counts.write().entry(service.to_owned()).or_default())
    }
}

impl Default for CardinalityGuard {
    /// A guard with [`CardinalityGuard::DEFAULT_LIMIT`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_LIMIT)
    }
}

impl std::fmt::Debug for CardinalityGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardinalityGuard")
            .field("limit", &self.limit)
            .field("folded", &self.folded())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_codes_become_ids_and_hyphenated_words_stay() {
        assert_eq!(normalize_path("/api/stock/SKU-4BAF8"), "/api/stock/{id}");
        assert_eq!(normalize_path("/api/stock/SKU-BEDFB"), "/api/stock/{id}");
        assert_eq!(normalize_path("/api/API-BETA"), "/api/API-BETA");
        assert_eq!(
            normalize_path("/invoices/INV-2024-001/pdf"),
            "/invoices/{id}/pdf"
        );
        assert_eq!(normalize_path("/orders/order_12345"), "/orders/{id}");
        assert_eq!(
            normalize_path("/auth/oauth2-callback"),
            "/auth/oauth2-callback"
        );
        assert_eq!(normalize_path("/docs/page-2"), "/docs/page-2");
        assert_eq!(normalize_path("/v1/2fa-setup"), "/v1/2fa-setup");
    }

    #[test]
    fn numeric_and_uuid_segments_become_ids_and_words_stay() {
        assert_eq!(
            normalize_path("/api/orders/123/items"),
            "/api/orders/{id}/items"
        );
        assert_eq!(
            normalize_path("/u/3F2B8C1E-9D4A-4C1B-8F3E-2A1B0C9D8E7F"),
            "/u/{id}"
        );
        assert_eq!(
            normalize_path("/api/v2/users/me/settings"),
            "/api/v2/users/me/settings"
        );
        assert_eq!(
            normalize_path("/oauth2-callback-handler/login"),
            "/oauth2-callback-handler/login"
        );
    }

    #[test]
    fn hex_tokens_emails_dates_and_long_digit_runs_become_ids() {
        for seg in [
            "5f2b8c1e9d4a",
            "deadbeef1",
            "a1B2c3D4e5F6g7H8",
            "cus_J4kL2mN8pQ9rS1tU",
            "eyJhbGciOiJIUzI1NiJ9",
            "bob@example.com",
            "bob%40example.com",
            "2024-01-31",
            "INV-2024-000123",
            "x".repeat(MAX_SEGMENT_LEN + 1).as_str(),
        ] {
            assert_eq!(normalize_path(&format!("/a/{seg}/b")), "/a/{id}/b", "{seg}");
        }
    }

    #[test]
    fn ordinary_words_with_digits_are_not_ids() {
        for seg in [
            "v1",
            "2fa",
            "deadbeef",
            "page-404",
            "report-2024",
            "getUserAccountSettings",
            "oauth2",
        ] {
            assert_eq!(
                normalize_path(&format!("/{seg}")),
                format!("/{seg}"),
                "{seg}"
            );
        }
    }

    #[test]
    fn query_fragment_and_empty_segments_are_dropped() {
        assert_eq!(normalize_path("//a///b/?x=1#frag"), "/a/b");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/?q=1"), "/");
        assert_eq!(normalize_path("a/b"), "/a/b");
    }

    #[test]
    fn full_urls_lose_their_origin() {
        assert_eq!(
            normalize_path("https://api.example.com:8443/v1/users/42?x=1"),
            "/v1/users/{id}"
        );
        assert_eq!(normalize_path("http://example.com"), "/");
        assert_eq!(normalize_path("http://example.com?x=1"), "/");
    }

    #[test]
    fn extensions_survive_id_replacement() {
        assert_eq!(normalize_path("/invoices/123.pdf"), "/invoices/{id}.pdf");
        assert_eq!(normalize_path("/static/app.js"), "/static/app.js");
    }

    #[test]
    fn paths_are_bounded_in_segments() {
        let path: String = (0..40).map(|i| format!("/s{i}")).collect();
        let n = normalize_path(&path);
        assert_eq!(n.matches('/').count(), MAX_SEGMENTS + 1);
        assert!(n.ends_with("/s15/{rest}"));
    }

    #[test]
    fn the_route_wins_and_gets_the_method() {
        assert_eq!(
            endpoint_name(Some("/orders/{id}"), Some("GET"), Some("/orders/1"), "x"),
            "GET /orders/{id}"
        );
        assert_eq!(
            endpoint_name(Some("/orders/:id"), None, None, "x"),
            "/orders/:id"
        );
        assert_eq!(
            endpoint_name(Some("GET /orders"), Some("GET"), None, "x"),
            "GET /orders"
        );
    }

    #[test]
    fn without_a_route_the_path_is_normalized() {
        assert_eq!(
            endpoint_name(None, Some("post"), Some("/orders/9/pay?x"), "x"),
            "POST /orders/{id}/pay"
        );
        assert_eq!(
            endpoint_name(Some(""), Some("GET"), Some("https://h/a/1"), "x"),
            "GET /a/{id}"
        );
    }

    #[test]
    fn the_span_name_is_the_last_resort() {
        assert_eq!(endpoint_name(None, None, None, "GET /a/12"), "GET /a/{id}");
        assert_eq!(
            endpoint_name(None, Some("PUT"), None, "/a/12"),
            "PUT /a/{id}"
        );
        assert_eq!(
            endpoint_name(None, None, None, "grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(endpoint_name(None, None, None, "  "), UNKNOWN);
        assert_eq!(
            endpoint_name(None, None, None, &"é".repeat(400)).len(),
            MAX_NAME_LEN
        );
    }

    #[test]
    fn unknown_methods_fold_into_other() {
        assert_eq!(
            endpoint_name(None, Some("FOOBAR"), Some("/a"), "x"),
            "_OTHER /a"
        );
        assert_eq!(canonical_method("patch"), Some("PATCH"));
        assert_eq!(canonical_method(""), None);
    }

    #[test]
    fn the_guard_folds_names_past_the_limit_per_service() {
        let g = CardinalityGuard::new(2);
        assert_eq!(g.admit("a", "x".into()), "x");
        assert_eq!(g.admit("a", "y".into()), "y");
        assert_eq!(g.admit("a", "z".into()), CardinalityGuard::OTHER);
        assert_eq!(g.admit("a", "x".into()), "x");
        assert_eq!(g.admit("b", "z".into()), "z");
        assert_eq!((g.folded(), g.distinct("a"), g.distinct("b")), (1, 2, 1));
    }

    #[test]
    fn the_guard_never_admits_more_than_the_limit_under_concurrency() {
        let g = CardinalityGuard::new(100);
        std::thread::scope(|s| {
            for t in 0..4 {
                let g = &g;
                s.spawn(move || {
                    for i in 0..500 {
                        g.admit("svc", format!("/e/{}", (i * 7 + t) % 300));
                    }
                });
            }
        });
        assert_eq!(g.distinct("svc"), 100);
        let admitted = (0..300)
            .filter(|i| g.admit("svc", format!("/e/{i}")) != CardinalityGuard::OTHER)
            .count();
        assert_eq!(admitted, 100);
    }

    #[test]
    fn arbitrary_paths_never_panic() {
        let mut x = 0x1234_5678_u64;
        let alphabet = [
            "/", "?", "#", "a", "1", "-", "@", ".", "é", "%40", "://", "_", "F", " ",
        ];
        for _ in 0..20_000 {
            let s: String = (0..(x % 40))
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    alphabet[((x >> 33) % alphabet.len() as u64) as usize]
                })
                .collect();
            let n = normalize_path(&s);
            assert!(n.starts_with('/'));
            assert_eq!(normalize_path(&n), n, "not idempotent: {s:?}");
            let _ = endpoint_name(None, Some(&s), None, &s);
        }
    }
}
