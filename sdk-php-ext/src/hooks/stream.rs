//! The http/https stream wrappers: `file_get_contents` and `fopen` on URLs. The status
//! comes from `$http_response_header`, which the wrapper sets in the caller's scope.
//! The request carries a W3C `traceparent` (unless the application sets one itself, or
//! `tern.propagate=0`): it is added to the `http` `header` option of the call's stream
//! context (the one passed, else the default context) for the length of the call, and
//! the option is put back as it was when the call ends.

use ext_php_rs::convert::IntoZval;
use ext_php_rs::flags::DataType;
use ext_php_rs::types::{ZendHashTable, Zval};

use super::{failure, finish, open_http, Hook, TraceparentLine};
use crate::php::{self, Frame};
use crate::request::{Open, StreamHeader, Tx, Val};

/// What is hooked: the function and the position of its `$context` argument.
pub const HOOKS: &[Hook] = &[
    Hook::function(
        "file_get_contents",
        file_get_contents_begin,
        file_get_contents_end,
    ),
    Hook::function("fopen", fopen_begin, fopen_end),
];

fn file_get_contents_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    url_begin(frame, tx, 2)
}

fn file_get_contents_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    url_end(frame, rv, tx, open, 2);
}

fn fopen_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    url_begin(frame, tx, 3)
}

fn fopen_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    url_end(frame, rv, tx, open, 3);
}

fn url_begin(frame: Frame, tx: &mut Tx, context_arg: u32) -> Option<Open> {
    let name = frame.arg_bytes(0)?;
    let lower = name.get(..8).map(<[u8]>::to_ascii_lowercase)?;
    if !(lower.starts_with(b"http://") || lower.starts_with(b"https://")) {
        return None;
    }
    let open = open_http(tx, "GET", php::lossy(name).into_owned());
    if !crate::config::get().propagate {
        return Some(open);
    }
    let tp = TraceparentLine::new(tx, &open);
    if let Some(ctx) = context(frame, context_arg) {
        let before = header_of(&ctx);
        // A `traceparent` the application sets itself is its choice: kept, ours not added.
        if let Some(lines) = with_traceparent(&before, tp.as_str().as_bytes()) {
            set_header(&ctx, StreamHeader::Lines(lines));
            tx.stream_headers.push((frame.0 as usize, before));
        }
    }
    Some(open)
}

/// The call's stream context: its `$context` argument, else the default context.
fn context(frame: Frame, arg: u32) -> Option<Zval> {
    match frame.arg(arg) {
        Some(z) if z.get_type() == DataType::Resource => Some(z.shallow_clone()),
        Some(z) if !z.is_null() => None, // not a context: the call will fail anyway
        _ => php::call("stream_context_get_default", &[]),
    }
}

/// The context's `http` `header` option.
fn header_of(ctx: &Zval) -> StreamHeader {
    let Some(options) = php::call("stream_context_get_options", &[ctx]) else {
        return StreamHeader::None;
    };
    let header = options
        .array()
        .and_then(|o| o.get("http"))
        .and_then(|h| h.array())
        .and_then(|h| h.get("header"));
    match header {
        Some(h) if h.is_string() => {
            StreamHeader::Text(php::zval_bytes(h).unwrap_or_default().to_vec())
        }
        Some(h) => match h.array() {
            Some(a) => StreamHeader::Lines(
                a.values()
                    .filter_map(|v| php::zval_bytes(v).map(<[u8]>::to_vec))
                    .collect(),
            ),
            None => StreamHeader::None,
        },
        None => StreamHeader::None,
    }
}

/// The application's header lines and ours; `None` when it sets a `traceparent` itself.
fn with_traceparent(before: &StreamHeader, tp: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut lines: Vec<Vec<u8>> = match before {
        StreamHeader::None => Vec::new(),
        StreamHeader::Text(t) => t
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect(),
        StreamHeader::Lines(l) => l.clone(),
    };
    lines.retain(|l| !l.is_empty());
    if lines.iter().any(|l| is_traceparent(l)) {
        return None;
    }
    lines.push(tp.to_vec());
    Some(lines)
}

/// Whether a header line is a `traceparent`.
pub fn is_traceparent(line: &[u8]) -> bool {
    line.get(..12)
        .is_some_and(|n| n.eq_ignore_ascii_case(b"traceparent:"))
}

/// Sets the context's `http` `header` option (`None`: an empty string, no header).
fn set_header(ctx: &Zval, header: StreamHeader) {
    let value = match header {
        StreamHeader::None => "".into_zval(false).ok(),
        StreamHeader::Text(t) => String::from_utf8_lossy(&t)
            .into_owned()
            .into_zval(false)
            .ok(),
        StreamHeader::Lines(lines) => {
            let mut a = ZendHashTable::with_capacity(lines.len() as u32);
            let filled = lines
                .iter()
                .all(|l| a.push(String::from_utf8_lossy(l).as_ref()).is_ok());
            filled.then(|| {
                let mut z = Zval::new();
                z.set_hashtable(a);
                z
            })
        }
    };
    let (Some(value), Ok(wrapper), Ok(option)) =
        (value, "http".into_zval(false), "header".into_zval(false))
    else {
        return;
    };
    php::call(
        "stream_context_set_option",
        &[ctx, &wrapper, &option, &value],
    );
}

/// Puts back the `header` option of the context of the call in `frame`.
fn restore(frame: Frame, tx: &mut Tx, context_arg: u32) {
    let Some(i) = tx
        .stream_headers
        .iter()
        .rposition(|(ex, _)| *ex == frame.0 as usize)
    else {
        return;
    };
    let (_, before) = tx.stream_headers.remove(i);
    if let Some(ctx) = context(frame, context_arg) {
        set_header(&ctx, before);
    }
}

/// The status code in the last `HTTP/x y` line of `$http_response_header`.
pub fn status_from_headers(headers: &[Vec<u8>]) -> Option<i64> {
    headers
        .iter()
        .rev()
        .find(|h| h.starts_with(b"HTTP/"))
        .and_then(|line| {
            let text = String::from_utf8_lossy(line);
            text.split_whitespace().nth(1)?.parse().ok()
        })
}

fn url_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open, context_arg: u32) {
    restore(frame, tx, context_arg);
    let headers = php::caller_local(frame, "http_response_header")
        .and_then(|z| {
            z.array().map(|a| {
                a.values()
                    .filter_map(|v| php::zval_bytes(v).map(<[u8]>::to_vec))
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default();
    let status = status_from_headers(&headers);
    let mut error = failure(rv, "stream");
    let mut more = Vec::new();
    if let Some(s) = status {
        more.push(("http.response.status_code", Val::I(s)));
        if s >= 400 {
            error = Some((s.to_string(), format!("HTTP {s}")));
        }
    }
    finish(tx, open, more, error);
}

#[cfg(test)]
mod tests {
    use super::status_from_headers;

    #[test]
    fn the_last_status_line_wins_after_redirects() {
        let h = vec![
            b"HTTP/1.1 302 Found".to_vec(),
            b"Location: /x".to_vec(),
            b"HTTP/1.1 404 Not Found".to_vec(),
        ];
        assert_eq!(status_from_headers(&h), Some(404));
        assert_eq!(status_from_headers(&[]), None);
    }
}
