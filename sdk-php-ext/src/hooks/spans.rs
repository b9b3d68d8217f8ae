//! What the library modules build their hooks from: opening a call record (plain, SQL,
//! HTTP), the `traceparent` of an outgoing call, the error of a call, finishing a call
//! as a span or abandoning it when the request ends first.

use std::borrow::Cow;

use ext_php_rs::types::Zval;

use crate::clock;
use crate::php::{self, Frame};
use crate::request::{Attrs, Conn, Open, SpanRec, Text, Tx, Val};

/// A `begin` that only keeps the frame so `end` runs (no span by itself).
pub fn mark(_frame: Frame, tx: &mut Tx) -> Option<Open> {
    Some(open(tx, Cow::Borrowed(""), Vec::new()))
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
    }
}

const SQL_VERBS: [&str; 20] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "CREATE", "DROP", "ALTER",
    "TRUNCATE", "BEGIN", "START", "COMMIT", "ROLLBACK", "SET", "SHOW", "CALL", "EXPLAIN", "PRAGMA",
    "USE",
];

/// `SELECT`, `INSERT`, ... : the first word of a statement, upper-cased (`SQL` when it is
/// not a common verb, so span names stay few).
pub fn sql_operation(sql: &str) -> &'static str {
    let word = sql.trim_start();
    let end = word.bytes().take_while(u8::is_ascii_alphabetic).count();
    let word = &word[..end];
    SQL_VERBS
        .iter()
        .find(|v| v.len() == word.len() && v.eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or("SQL")
}

/// A SQL call on a known (or unknown) connection.
pub fn open_sql(tx: &Tx, conn: Option<&Conn>, text: Text) -> Open {
    let op = sql_operation(&text);
    // Room for what the hooks add at the end (rows, parameters are rarer).
    let mut attrs: Attrs = Vec::with_capacity(8);
    let system = conn
        .map(|c| c.system)
        .filter(|s| !s.is_empty())
        .unwrap_or("other_sql");
    attrs.push(("db.system.name", Val::Str(system)));
    attrs.push(("db.operation.name", Val::Str(op)));
    if let Some(c) = conn {
        if !c.db.is_empty() {
            attrs.push(("db.namespace", Val::T(c.db.clone())));
        }
        if !c.host.is_empty() {
            attrs.push(("server.address", Val::T(c.host.clone())));
        }
        if let Some(p) = c.port {
            attrs.push(("server.port", Val::I(p)));
        }
    }
    attrs.push(("db.query.text", Val::T(text)));
    open(tx, op.into(), attrs)
}

/// Splits a URL into (scheme, host, port).
pub fn url_parts(url: &str) -> (Val, String, Option<i64>) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').unwrap_or((v6, ""));
        (
            h.to_string(),
            rest.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (authority.to_string(), None),
        }
    };
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        (Val::Str("https"), Some(443))
    } else if scheme.eq_ignore_ascii_case("http") {
        (Val::Str("http"), Some(80))
    } else {
        (Val::S(scheme.to_ascii_lowercase()), None)
    };
    (scheme, host, port.or(default_port))
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
    let (scheme, host, port) = url_parts(&url);
    let mut name = String::with_capacity(method.len() + 1 + host.len());
    name.push_str(method);
    name.push(' ');
    name.push_str(&host);
    let mut attrs: Attrs = Vec::with_capacity(6);
    attrs.push(("http.request.method", method_val(method)));
    attrs.push(("url.full", Val::S(url)));
    attrs.push(("url.scheme", scheme));
    attrs.push(("server.address", Val::S(host)));
    if let Some(p) = port {
        attrs.push(("server.port", Val::I(p)));
    }
    open(tx, name.into(), attrs)
}

/// Appends the W3C `traceparent` for an outgoing call whose span is `open`.
pub fn push_traceparent(s: &mut String, tx: &Tx, open: &Open) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-01";
    for (i, x) in tx.trace_id.iter().enumerate() {
        out[3 + 2 * i] = HEX[usize::from(x >> 4)];
        out[4 + 2 * i] = HEX[usize::from(x & 15)];
    }
    for (i, x) in open.id.iter().enumerate() {
        out[36 + 2 * i] = HEX[usize::from(x >> 4)];
        out[37 + 2 * i] = HEX[usize::from(x & 15)];
    }
    // ASCII hex digits and dashes only.
    s.push_str(std::str::from_utf8(&out).unwrap_or_default());
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
    tx.push_span(SpanRec {
        id: open.id,
        name: open.name,
        start: open.start,
        end,
        node: open.node,
        attrs: open.attrs,
        error,
    });
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
        };
        let mut s = String::from("traceparent: ");
        push_traceparent(&mut s, &tx, &open);
        assert_eq!(
            s,
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert!(crate::request::parse_traceparent(&s.as_bytes()[13..]).is_some());
    }

    #[test]
    fn urls_split_into_scheme_host_and_port() {
        assert_eq!(
            url_parts("https://api.example.com/x?y"),
            (Val::Str("https"), "api.example.com".into(), Some(443))
        );
        assert_eq!(
            url_parts("http://u:p@127.0.0.1:8080/"),
            (Val::Str("http"), "127.0.0.1".into(), Some(8080))
        );
        assert_eq!(
            url_parts("http://[::1]:81/a"),
            (Val::Str("http"), "::1".into(), Some(81))
        );
        assert_eq!(
            url_parts("FTP://files.example.com/a"),
            (Val::S("ftp".into()), "files.example.com".into(), None)
        );
    }

    #[test]
    fn sql_operations_are_the_first_keyword() {
        assert_eq!(sql_operation("  select * from t"), "SELECT");
        assert_eq!(sql_operation("(SELECT 1)"), "SQL");
        assert_eq!(sql_operation("vacuum"), "SQL");
    }
}
