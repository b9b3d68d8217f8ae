//! PHP errors: counts by kind, and the fatal error or uncaught exception that ended the
//! request (observer `zend_observer_error_register`, called for every raised error).

use std::ffi::c_int;

use ext_php_rs::ffi::{self, zend_string};

use super::guarded;
use crate::php;
use crate::request::{self, Errors, Fatal};

/// Registers the error observer (module start).
pub fn register() {
    // SAFETY: called during MINIT.
    unsafe { ffi::zend_observer_error_register(Some(on_error)) };
}

const FATAL: u32 =
    ffi::E_ERROR | ffi::E_CORE_ERROR | ffi::E_COMPILE_ERROR | ffi::E_USER_ERROR | ffi::E_PARSE;
const ERROR: u32 = FATAL | ffi::E_RECOVERABLE_ERROR;
const WARNING: u32 =
    ffi::E_WARNING | ffi::E_USER_WARNING | ffi::E_CORE_WARNING | ffi::E_COMPILE_WARNING;
const NOTICE: u32 = ffi::E_NOTICE | ffi::E_USER_NOTICE;
const DEPRECATED: u32 = ffi::E_DEPRECATED | ffi::E_USER_DEPRECATED;

unsafe extern "C" fn on_error(
    kind: c_int,
    file: *mut zend_string,
    line: u32,
    message: *mut zend_string,
) {
    guarded(|| {
        // SAFETY: engine strings valid for the call.
        let (file, message) = unsafe { (php::zstr(file), php::zstr(message)) };
        request::with(|st| {
            if st.tx.on {
                record(&mut st.tx.errors, kind as u32, file, line, message);
            }
        });
    });
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        ffi::E_ERROR => "E_ERROR",
        ffi::E_CORE_ERROR => "E_CORE_ERROR",
        ffi::E_COMPILE_ERROR => "E_COMPILE_ERROR",
        ffi::E_USER_ERROR => "E_USER_ERROR",
        ffi::E_PARSE => "E_PARSE",
        _ => "E_RECOVERABLE_ERROR",
    }
}

/// Counts one error; the first fatal one (or uncaught exception) is kept.
pub fn record(errors: &mut Errors, kind: u32, file: &[u8], line: u32, message: &[u8]) {
    if kind & ERROR != 0 {
        errors.errors += 1;
    } else if kind & WARNING != 0 {
        errors.warnings += 1;
    } else if kind & NOTICE != 0 {
        errors.notices += 1;
    } else if kind & DEPRECATED != 0 {
        errors.deprecated += 1;
    }
    if kind & FATAL == 0 || errors.fatal.is_some() {
        return;
    }
    let text = String::from_utf8_lossy(message);
    let (kind, message) = match uncaught(&text) {
        Some((class, msg)) => (class.to_string(), msg.to_string()),
        None => (
            kind_name(kind).to_string(),
            text.lines().next().unwrap_or("").to_string(),
        ),
    };
    errors.fatal = Some(Fatal {
        kind,
        message: crate::php::clip_owned(message, crate::request::MAX_TEXT),
        file: String::from_utf8_lossy(file).into_owned(),
        line,
    });
}

/// `Uncaught Foo\Bar: message in /f.php:3\nStack trace:...` → (`Foo\Bar`, `message`).
fn uncaught(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("Uncaught ")?;
    let first = rest.split("\nStack trace:").next().unwrap_or(rest);
    let (class, msg) = first.split_once(": ").unwrap_or((first, ""));
    let msg = match msg.rfind(" in /") {
        Some(i) => &msg[..i],
        None => msg,
    };
    Some((class.trim(), msg.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncaught_exceptions_give_their_class_and_message() {
        let mut e = Errors::default();
        record(
            &mut e,
            ffi::E_WARNING,
            b"/a.php",
            1,
            b"Undefined variable $x",
        );
        record(
            &mut e,
            ffi::E_ERROR,
            b"/a.php",
            9,
            b"Uncaught App\\Oops: it broke in /a.php:9\nStack trace:\n#0 {main}\n  thrown",
        );
        record(&mut e, ffi::E_ERROR, b"/a.php", 10, b"second");
        assert_eq!((e.warnings, e.errors), (1, 2));
        let f = e.fatal.unwrap();
        assert_eq!(
            (f.kind.as_str(), f.message.as_str(), f.line),
            ("App\\Oops", "it broke", 9)
        );
    }

    #[test]
    fn a_plain_fatal_error_is_named_by_its_level() {
        let mut e = Errors::default();
        record(
            &mut e,
            ffi::E_ERROR,
            b"/a.php",
            3,
            b"Allowed memory size exhausted",
        );
        assert_eq!(e.fatal.unwrap().kind, "E_ERROR");
    }
}
