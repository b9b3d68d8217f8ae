//! curl: `curl_exec` and the multi interface (`curl_multi_add_handle` starts the span,
//! `curl_multi_getcontent`/`curl_multi_remove_handle` end it); `curl_copy_handle` copies
//! what is tracked of a handle, `curl_reset` forgets it. Every outgoing request carries a
//! W3C `traceparent` (unless the application sets one itself, or `tern.propagate=0`); the
//! application's own `CURLOPT_HTTPHEADER` list is tracked so the header is added to it,
//! not put in its place. A handle without headers of the application's gets ours
//! straight through libcurl (`libcurl.rs`), taken off when the transfer ends.

use std::sync::atomic::{AtomicU64, Ordering};

use ext_php_rs::convert::IntoZval;
use ext_php_rs::types::{ZendHashTable, Zval};

use super::stream::is_traceparent;
use super::{failure, finish, libcurl, mark, open_http, Hook, TraceparentLine};
use crate::php::{self, Frame};
use crate::request::{CurlOpts, Open, Tx, Val};

const CURLOPT_HTTPHEADER: i64 = 10023;
const CURLOPT_CUSTOMREQUEST: i64 = 10036;
const CURLOPT_POST: i64 = 47;
const CURLOPT_NOBODY: i64 = 44;
const CURLOPT_UPLOAD: i64 = 46;
const CURLOPT_PUT: i64 = 54;
const CURLOPT_HTTPGET: i64 = 80;
const CURLINFO_RESPONSE_CODE: i64 = 0x200002;
const CURLINFO_EFFECTIVE_URL: i64 = 0x100001;

/// What is hooked.
pub const HOOKS: &[Hook] = &[
    Hook::function("curl_setopt", mark, setopt_end),
    Hook::function("curl_setopt_array", mark, setopt_array_end),
    Hook::function("curl_copy_handle", mark, copy_end),
    Hook::function("curl_reset", mark, reset_end),
    Hook::function("curl_exec", exec_begin, exec_end),
    Hook::function("curl_multi_add_handle", multi_add_begin, multi_add_end),
    Hook::function("curl_multi_getcontent", multi_done_begin, super::discard),
    Hook::function(
        "curl_multi_remove_handle",
        multi_remove_begin,
        super::discard,
    ),
];

fn headers_of(z: &Zval) -> Option<Vec<String>> {
    let arr = z.array()?;
    Some(
        arr.values()
            .filter_map(|v| php::zval_bytes(v).map(|b| String::from_utf8_lossy(b).into_owned()))
            .take(256)
            .collect(),
    )
}

fn opts_of(tx: &mut Tx, handle: u32) -> &mut CurlOpts {
    if let Some(i) = tx.curl_opts.iter().position(|(h, _)| *h == handle) {
        return &mut tx.curl_opts[i].1;
    }
    if tx.curl_opts.len() >= 512 {
        tx.curl_opts.remove(0);
    }
    tx.curl_opts.push((handle, CurlOpts::default()));
    &mut tx.curl_opts.last_mut().expect("just pushed").1
}

/// Records one option the span needs (headers, method).
fn remember(tx: &mut Tx, handle: u32, option: i64, value: &Zval) {
    let on = value.coerce_to_bool();
    let method = match option {
        CURLOPT_HTTPHEADER => {
            if let Some(list) = headers_of(value) {
                opts_of(tx, handle).headers = list;
            }
            return;
        }
        CURLOPT_CUSTOMREQUEST => {
            php::zval_bytes(value).map(|b| String::from_utf8_lossy(b).to_ascii_uppercase())
        }
        CURLOPT_POST if on => Some("POST".into()),
        CURLOPT_NOBODY if on => Some("HEAD".into()),
        CURLOPT_PUT | CURLOPT_UPLOAD if on => Some("PUT".into()),
        CURLOPT_HTTPGET if on => Some("GET".into()),
        _ => return,
    };
    let opts = opts_of(tx, handle);
    // A custom request wins over the flags, whatever the order they were set in.
    if option == CURLOPT_CUSTOMREQUEST {
        opts.custom = method.is_some();
        opts.method = method;
    } else if !opts.custom {
        opts.method = method;
    }
}

fn setopt_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if !rv.is_some_and(|z| z.is_true()) {
        return;
    }
    if let (Some(h), Some(option), Some(value)) = (
        frame.arg(0).and_then(php::obj_handle),
        frame.arg(1).and_then(|z| z.long()),
        frame.arg(2),
    ) {
        remember(tx, h, option, value);
    }
}

fn setopt_array_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if !rv.is_some_and(|z| z.is_true()) {
        return;
    }
    let (Some(h), Some(opts)) = (
        frame.arg(0).and_then(php::obj_handle),
        frame.arg(1).and_then(|z| z.array()),
    ) else {
        return;
    };
    for (key, value) in opts.iter() {
        if let ext_php_rs::types::ArrayKey::Long(option) = key {
            remember(tx, h, option, value);
        }
    }
}

/// Times transfer information had to be asked of PHP's `curl_getinfo` because libcurl
/// could not be reached directly (`tern_stats()["curl_info_from_php"]`).
pub static INFO_FROM_PHP: AtomicU64 = AtomicU64::new(0);

/// A copy of a handle has the options the application set on the original (headers,
/// method), and not our header list when the copy was made during a transfer.
fn copy_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    let (Some(from), Some(copy)) = (frame.arg(0).and_then(php::obj_handle), rv) else {
        return;
    };
    let Some(to) = php::obj_handle(copy) else {
        return;
    };
    if tx.curl_lists.iter().any(|l| l.attached && l.handle == from) {
        libcurl::clear_headers(copy);
    }
    if let Some(opts) = tx
        .curl_opts
        .iter()
        .find(|(h, _)| *h == from)
        .map(|o| o.1.clone())
    {
        *opts_of(tx, to) = opts;
    }
}

/// `curl_reset` forgets every option the application set (headers, method).
fn reset_end(frame: Frame, _rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if let Some(h) = frame.arg(0).and_then(php::obj_handle) {
        tx.curl_opts.retain(|(handle, _)| *handle != h);
    }
}

fn getinfo(ch: &Zval, what: i64) -> Option<Zval> {
    INFO_FROM_PHP.fetch_add(1, Ordering::Relaxed);
    php::call("curl_getinfo", &[ch, &what.into_zval(false).ok()?])
}

/// The URL a transfer on `ch` goes to.
fn effective_url(ch: &Zval) -> String {
    let mut url = String::new();
    let direct = libcurl::info_bytes(ch, CURLINFO_EFFECTIVE_URL as i32, |b| {
        url.push_str(&php::lossy(b))
    });
    if direct.is_none() {
        url = getinfo(ch, CURLINFO_EFFECTIVE_URL)
            .and_then(|z| php::zval_bytes(&z).map(|b| php::lossy(b).into_owned()))
            .unwrap_or_default();
    }
    url
}

/// The HTTP status of the last transfer on `ch` (0 when none).
fn response_code(ch: &Zval) -> i64 {
    libcurl::info_long(ch, CURLINFO_RESPONSE_CODE as i32)
        .or_else(|| getinfo(ch, CURLINFO_RESPONSE_CODE).and_then(|z| z.long()))
        .unwrap_or(0)
}

/// Starts the span of a transfer on `ch` and adds `traceparent` to its headers.
fn start(tx: &mut Tx, ch: &Zval) -> Option<Open> {
    let handle = php::obj_handle(ch)?;
    let url = effective_url(ch);
    let opts = tx
        .curl_opts
        .iter()
        .find(|(h, _)| *h == handle)
        .map(|(_, o)| o);
    let method = opts.and_then(|o| o.method.as_deref()).unwrap_or("GET");
    let mut open = open_http(tx, method, url);
    open.obj = handle;
    // The application's headers and ours, as the array `curl_setopt` takes.
    let headers = opts.map_or(&[][..], |o| &o.headers[..]);
    // A `traceparent` the application sets itself is its choice: kept, ours not added.
    if !crate::config::get().propagate || headers.iter().any(|h| is_traceparent(h.as_bytes())) {
        return Some(open);
    }
    let tp = TraceparentLine::new(tx, &open);
    if headers.is_empty() {
        // No headers of the application's to keep: our list straight into libcurl,
        // taken off again when the transfer ends.
        if let Some(list) = libcurl::set_header(ch, handle, tp.as_c_str()) {
            tx.curl_lists.push(list);
            return Some(open);
        }
    }
    let mut list = ZendHashTable::with_capacity(headers.len() as u32 + 1);
    let filled =
        headers.iter().all(|h| list.push(h.as_str()).is_ok()) && list.push(tp.as_str()).is_ok();
    if let (true, Ok(opt)) = (filled, CURLOPT_HTTPHEADER.into_zval(false)) {
        let mut list_z = Zval::new();
        list_z.set_hashtable(list);
        php::call("curl_setopt", &[ch, &opt, &list_z]);
    }
    Some(open)
}

/// Ends the span of a transfer on `ch`: status from `curl_getinfo`, error from
/// `curl_error` when the transfer failed.
fn stop(tx: &mut Tx, ch: &Zval, open: Open, failed: bool) {
    let ours = tx
        .curl_lists
        .iter_mut()
        .find(|l| l.attached && l.handle == open.obj);
    if let Some(list) = ours {
        list.attached = false;
        // Unless the application set headers of its own meanwhile (from a callback).
        let own = tx
            .curl_opts
            .iter()
            .any(|(h, o)| *h == open.obj && !o.headers.is_empty());
        if !own {
            libcurl::clear_headers(ch);
        }
    }
    let status = response_code(ch);
    let more = (status > 0).then_some(("http.response.status_code", Val::I(status)));
    let mut error = None;
    if status >= 400 {
        error = Some((status.to_string(), format!("HTTP {status}")));
    }
    if failed || status == 0 {
        let errno = php::call("curl_errno", &[ch])
            .and_then(|z| z.long())
            .unwrap_or(0);
        if errno != 0 || failed {
            let msg = php::call("curl_error", &[ch])
                .and_then(|z| php::zval_bytes(&z).map(|b| String::from_utf8_lossy(b).into_owned()))
                .unwrap_or_default();
            error = Some((format!("curl error {errno}"), msg));
        }
    }
    finish(tx, open, more, error);
}

fn exec_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    start(tx, frame.arg(0)?)
}

fn exec_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    let failed = failure(rv, "curl_exec").is_some();
    match frame.arg(0) {
        Some(ch) => stop(tx, ch, open, failed),
        None => finish(tx, open, None, None),
    }
}

fn multi_add_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    start(tx, frame.arg(1)?)
}

fn multi_add_end(_frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    if rv.and_then(|z| z.long()) == Some(0) {
        tx.curl_multi.retain(|(h, _)| *h != open.obj);
        if tx.curl_multi.len() < 1024 {
            tx.curl_multi.push((open.obj, open));
        }
    }
}

fn take_multi(tx: &mut Tx, ch: &Zval) -> Option<Open> {
    let handle = php::obj_handle(ch)?;
    let i = tx.curl_multi.iter().position(|(h, _)| *h == handle)?;
    Some(tx.curl_multi.remove(i).1)
}

fn multi_done(tx: &mut Tx, ch: Option<&Zval>) {
    if let Some(ch) = ch {
        if let Some(open) = take_multi(tx, ch) {
            stop(tx, ch, open, false);
        }
    }
}

fn multi_done_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    multi_done(tx, frame.arg(0));
    None
}

fn multi_remove_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    multi_done(tx, frame.arg(1));
    None
}
