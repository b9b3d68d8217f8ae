//! What the library modules build their hooks from: opening a call record (plain, SQL,
//! HTTP), the `traceparent` of an outgoing call, the error of a call, finishing a call
//! as a span or abandoning it when the request ends first.

use std::borrow::Cow;

use ext_php_rs::types::{ArrayKey, Zval};
use tern_php_wire::ActivityKind;

use crate::clock;
use crate::db::{self, Bound, Conn, MAX_PARAMS};
use crate::otlp::Finished;
use crate::php::{self, Frame};
use crate::request::{Attrs, Open, Text, Tx, Val, MAX_TEXT};

/// A `begin` that only keeps the frame so `end` runs (no span by itself).
pub fn mark(_frame: Frame, _tx: &mut Tx) -> Option<Open> {
    // No span: no id, no clock reading, no attributes (an empty name is never finished).
    Some(Open {
        ex: 0,
        id: [0; 8],
        start: 0,
        node: 0,
        name: Cow::Borrowed(""),
        attrs: Vec::new(),
        obj: 0,
        activity: None,
        encoded: None,
    })
}

/// A new call record starting now, under the current call-tree node.
pub fn open(tx: &Tx, name: Cow<'static, str>, attrs: Attrs) -> Open {
    Open {
        ex: 0,
        id: clock::span_id(),
        start: clock::mono_ns(),
        node: tx.tree.current(),
        name,
        attrs,
        obj: 0,
        activity: None,
        encoded: None,
    }
}

/// `SELECT`, `INSERT`, ... : the first word of a statement, upper-cased (`SQL` when it is
/// not a common verb, so span names stay few).
pub fn sql_operation(sql: &str) -> &'static str {
    let b = sql.as_bytes();
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let word = &b[start..];
    let len = word.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let word = &word[..len];
    // Verbs by length, so a statement is compared with at most four of them.
    let verbs: &[&'static str] = match len {
        3 => &["SET", "USE"],
        4 => &["WITH", "DROP", "SHOW", "CALL"],
        5 => &["BEGIN", "START", "ALTER"],
        6 => &[
            "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "COMMIT", "PRAGMA",
        ],
        7 => &["REPLACE", "EXPLAIN"],
        8 => &["TRUNCATE", "ROLLBACK"],
        _ => &[],
    };
    verbs
        .iter()
        .find(|v| v.as_bytes().eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or("SQL")
}

/// A SQL call on a known (or unknown) connection.
pub fn open_sql(tx: &Tx, conn: Option<&Conn>, text: Text) -> Open {
    // A prepared statement's verb was found when it was prepared.
    let op = match conn {
        Some(c) if !c.op.is_empty() && std::rc::Rc::ptr_eq(&c.sql, &text) => c.op,
        _ => sql_operation(&text),
    };
    // Room for what the hooks add at the end (rows, parameters are rarer).
    let mut attrs = tx.attrs();
    let encoded = match conn {
        Some(c) if !c.attrs.is_empty() => Some(c.attrs.clone()),
        _ => {
            attrs.push(("db.system.name", Val::Str("other_sql")));
            None
        }
    };
    attrs.push(("db.operation.name", Val::Str(op)));
    let at = attrs.len() as u8;
    attrs.push(("db.query.text", Val::T(text)));
    let mut open = open(tx, op.into(), attrs);
    open.activity = Some((ActivityKind::Sql, at));
    open.encoded = encoded;
    open
}

/// The parameters of a SQL call passed as an array (`PDOStatement::execute($params)`,
/// `mysqli_stmt::execute($params)`, `mysqli::execute_query`), else those bound to its
/// statement `open.obj` (`bindValue`, `bindParam`, `bind_param`), as
/// `db.query.parameter.<name or position>` attributes, when `tern.capture_params=1`; at
/// most [`MAX_PARAMS`] (the rest counted as dropped).
pub fn push_params(tx: &Tx, open: &mut Open, params: Option<&Zval>) {
    if !crate::config::get().capture_params {
        return;
    }
    if let Some(params) = params.and_then(|z| z.array()) {
        db::params_dropped(params.len().saturating_sub(MAX_PARAMS));
        for (key, value) in params.iter().take(MAX_PARAMS) {
            let name = match key {
                ArrayKey::Long(i) => param_key_at(i),
                ArrayKey::String(s) => param_key(&s),
                ArrayKey::Str(s) => param_key(s),
                ArrayKey::ZendString(s) => param_key(s.as_str().unwrap_or("?")),
            };
            open.attrs.push((name, Val::S(php::param_text(value))));
        }
        return;
    }
    for b in tx.binds.iter().filter(|b| b.stmt == open.obj) {
        let text = match &b.value {
            Bound::Text(t) => t.clone(),
            Bound::Var(v) => php::param_text(v.get()),
        };
        open.attrs.push((b.key, Val::S(text)));
    }
}

/// The attribute key of a parameter given by name (`:id` or `id`).
pub fn param_key(name: &str) -> &'static str {
    interned_param_key(name.trim_start_matches(':'))
}

/// The attribute key of a positional parameter, 0-based.
pub fn param_key_at(position: i64) -> &'static str {
    interned_param_key(&position.to_string())
}

/// `db.query.parameter.<name>` keys; interned so attributes stay `&'static str`.
fn interned_param_key(name: &str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static KEYS: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let Ok(mut guard) = KEYS.lock() else {
        return "db.query.parameter";
    };
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(k) = map.get(name) {
        return k;
    }
    if map.len() >= 256 {
        return "db.query.parameter.other";
    }
    let key: &'static str = Box::leak(format!("db.query.parameter.{name}").into_boxed_str());
    map.insert(name.to_string(), key);
    key
}

/// Splits a URL into (scheme, host, port).
pub fn url_parts(url: &str) -> (Val, String, Option<i64>) {
    // The scheme ends at the first `:`, when `//` follows it.
    let (scheme, rest) = match url.bytes().position(|c| c == b':') {
        Some(i) if url.as_bytes()[i + 1..].starts_with(b"//") => (&url[..i], &url[i + 3..]),
        _ => ("", url),
    };
    let end = rest
        .bytes()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = match authority.bytes().rposition(|c| c == b'@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').unwrap_or((v6, ""));
        (h, rest.strip_prefix(':').and_then(parse_port))
    } else {
        match authority.bytes().rposition(|c| c == b':') {
            Some(i) => (&authority[..i], parse_port(&authority[i + 1..])),
            None => (authority, None),
        }
    };
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        (Val::Str("https"), Some(443))
    } else if scheme.eq_ignore_ascii_case("http") {
        (Val::Str("http"), Some(80))
    } else {
        (Val::S(scheme.to_ascii_lowercase()), None)
    };
    (scheme, host.to_string(), port.or(default_port))
}

/// A port number (digits only, at most 65535).
fn parse_port(p: &str) -> Option<i64> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = p.bytes().fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
    (n <= 65535).then_some(n)
}

/// An HTTP method as an attribute value (the common ones without allocating).
fn method_val(method: &str) -> Val {
    const COMMON: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];
    match COMMON.iter().find(|m| **m == method) {
        Some(m) => Val::Str(m),
        None => Val::S(method.to_string()),
    }
}

/// An outgoing HTTP call.
pub fn open_http(tx: &Tx, method: &str, url: String) -> Open {
    let url = php::clip_owned(url, MAX_TEXT);
    let (scheme, host, port) = url_parts(&url);
    let mut name = String::with_capacity(method.len() + 1 + host.len());
    name.push_str(method);
    name.push(' ');
    name.push_str(&host);
    let mut attrs = tx.attrs();
    attrs.push(("http.request.method", method_val(method)));
    let at = attrs.len() as u8;
    attrs.push(("url.full", Val::S(url)));
    attrs.push(("url.scheme", scheme));
    attrs.push(("server.address", Val::S(host)));
    if let Some(p) = port {
        attrs.push(("server.port", Val::I(p)));
    }
    let mut open = open(tx, name.into(), attrs);
    open.activity = Some((ActivityKind::External, at));
    open
}

/// The `traceparent: 00-<trace>-<span>-01` header line of an outgoing call, with a
/// terminating NUL for libcurl; built in place (no allocation).
pub struct TraceparentLine([u8; TraceparentLine::LEN + 1]);

impl TraceparentLine {
    /// Bytes of the line without its NUL.
    pub const LEN: usize = 68;

    /// The line for a call whose span is `open`.
    pub fn new(tx: &Tx, open: &Open) -> TraceparentLine {
        /// The two hex digits of every byte.
        const PAIRS: [[u8; 2]; 256] = {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut t = [[0u8; 2]; 256];
            let mut i = 0;
            while i < 256 {
                t[i] = [HEX[i >> 4], HEX[i & 15]];
                i += 1;
            }
            t
        };
        let mut out = *b"traceparent: 00-00000000000000000000000000000000-0000000000000000-01\0";
        for (i, x) in tx.trace_id.iter().enumerate() {
            out[16 + 2 * i..18 + 2 * i].copy_from_slice(&PAIRS[usize::from(*x)]);
        }
        for (i, x) in open.id.iter().enumerate() {
            out[49 + 2 * i..51 + 2 * i].copy_from_slice(&PAIRS[usize::from(*x)]);
        }
        TraceparentLine(out)
    }

    /// The line (`traceparent: ...`).
    pub fn as_str(&self) -> &str {
        // SAFETY: ASCII only (the template and hex digits).
        unsafe { std::str::from_utf8_unchecked(&self.0[..Self::LEN]) }
    }

    /// The line as a C string.
    pub fn as_c_str(&self) -> &std::ffi::CStr {
        // SAFETY: one NUL, at the end (the template's; hex digits are never 0).
        unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(&self.0) }
    }
}

/// The error of a call: the exception being thrown, or `false` returned.
pub fn failure(retval: Option<&Zval>, what: &str) -> Option<(String, String)> {
    if let Some(e) = php::pending_exception() {
        if e.0 == "UnwindExit" {
            return Some(("exit".into(), "exit() was called during this call".into()));
        }
        return Some(e);
    }
    match retval {
        Some(z) if z.is_false() => Some((what.to_string(), format!("{what} returned false"))),
        _ => None,
    }
}

/// Ends a call now as a span with extra attributes and an optional error.
pub fn finish(tx: &mut Tx, open: Open, more: impl More, error: Option<(String, String)>) {
    finish_at(tx, open, more, error, clock::mono_ns());
}

/// Attributes added when a call ends (a `Vec`, an array, an `Option` of one): no
/// allocation for the common one or none.
pub trait More: IntoIterator<Item = (&'static str, Val)> {}
impl<T: IntoIterator<Item = (&'static str, Val)>> More for T {}

fn finish_at(
    tx: &mut Tx,
    mut open: Open,
    more: impl More,
    error: Option<(String, String)>,
    end: u64,
) {
    if open.name.is_empty() {
        return;
    }
    open.attrs.extend(more);
    tx.push_span(&Finished {
        id: open.id,
        name: &open.name,
        start: tx.unix_at(open.start),
        end: tx.unix_at(end),
        node: open.node,
        attrs: &open.attrs,
        encoded: open.encoded.as_deref().unwrap_or_default(),
        error: error.as_ref(),
    });
    tx.recycle(open.attrs);
}

/// A call still running when the request ended (exit, fatal error).
pub fn abandon(tx: &mut Tx, open: Open, now: u64) {
    let error = Some((
        "aborted".to_string(),
        "the request ended during this call".to_string(),
    ));
    finish_at(tx, open, None, error, now);
}

/// An `end` that does nothing (hooks whose work is done at the start).
pub fn discard(_frame: Frame, _rv: Option<&Zval>, _tx: &mut Tx, _open: Open) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_the_trace_and_span_in_lowercase_hex() {
        let tx = Tx {
            trace_id: [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36,
            ],
            ..Tx::default()
        };
        let open = Open {
            ex: 0,
            id: [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
            start: 0,
            node: 0,
            name: "x".into(),
            attrs: Vec::new(),
            obj: 0,
            activity: None,
            encoded: None,
        };
        let line = TraceparentLine::new(&tx, &open);
        let s = line.as_str();
        assert_eq!(
            s,
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(line.as_c_str().to_bytes(), s.as_bytes());
        assert!(crate::request::parse_traceparent(&s.as_bytes()[13..]).is_some());
    }

    #[test]
    fn urls_split_into_scheme_host_and_port() {
        for (url, scheme, host, port) in [
            (
                "https://api.example.com/x?y",
                Val::Str("https"),
                "api.example.com",
                Some(443),
            ),
            (
                "http://u:p@127.0.0.1:8080/",
                Val::Str("http"),
                "127.0.0.1",
                Some(8080),
            ),
            ("http://[::1]:81/a", Val::Str("http"), "::1", Some(81)),
            // Not a port (too large, not digits): the scheme's default.
            ("http://h:99999/", Val::Str("http"), "h", Some(80)),
            ("https://h:x1/", Val::Str("https"), "h", Some(443)),
            (
                "FTP://files.example.com/a",
                Val::S("ftp".into()),
                "files.example.com",
                None,
            ),
            (
                "localhost:8080/path",
                Val::S(String::new()),
                "localhost",
                Some(8080),
            ),
        ] {
            assert_eq!(url_parts(url), (scheme, host.to_string(), port), "{url}");
        }
    }

    #[test]
    fn sql_operations_are_the_first_keyword() {
        assert_eq!(sql_operation("  select * from t"), "SELECT");
        assert_eq!(sql_operation("(SELECT 1)"), "SQL");
        assert_eq!(sql_operation("vacuum"), "SQL");
        assert_eq!(sql_operation("\n\t UPDATE t SET a = 1"), "UPDATE");
        assert_eq!(sql_operation("selects"), "SQL");
        assert_eq!(sql_operation(""), "SQL");
        for verb in [
            "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "CREATE", "DROP", "ALTER",
            "TRUNCATE", "BEGIN", "START", "COMMIT", "ROLLBACK", "SET", "SHOW", "CALL", "EXPLAIN",
            "PRAGMA", "USE",
        ] {
            assert_eq!(sql_operation(&format!("{} x", verb.to_lowercase())), verb);
        }
    }
}
