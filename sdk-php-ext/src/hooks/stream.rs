//! The http/https stream wrappers: `file_get_contents` and `fopen` on URLs. The status
//! comes from `$http_response_header`, which the wrapper sets in the caller's scope.

use ext_php_rs::types::Zval;

use super::{failure, finish, open_http, Hook};
use crate::php::{self, Frame};
use crate::request::{Open, Tx, Val};

/// What is hooked.
pub const HOOKS: &[Hook] = &[
    Hook::function("file_get_contents", url_begin, url_end),
    Hook::function("fopen", url_begin, url_end),
];

fn url_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let name = frame.arg_bytes(0)?;
    let lower = name.get(..8).map(<[u8]>::to_ascii_lowercase)?;
    if !(lower.starts_with(b"http://") || lower.starts_with(b"https://")) {
        return None;
    }
    Some(open_http(
        tx,
        "GET",
        String::from_utf8_lossy(name).into_owned(),
    ))
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

fn url_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
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
