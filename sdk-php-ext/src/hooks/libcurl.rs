//! Calls into libcurl itself for the curl hooks, skipping a PHP function call each:
//! transfer information (`curl_easy_getinfo`: ~100 instructions where PHP's
//! `curl_getinfo` costs ~650) and the `traceparent` header list of a handle whose
//! application set no headers (`curl_slist_append` + `curl_easy_setopt`, where PHP's
//! `curl_setopt` with an array costs ~2,000). libcurl is found among the symbols
//! already loaded (PHP loads `curl.so`, and with it libcurl, with `RTLD_GLOBAL`); the
//! easy handle is the first field of the engine's object behind a `CurlHandle`. Every
//! function returns `None` when something is missing, or when `tern.curl_direct=0`;
//! the hooks then go through PHP.

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::sync::OnceLock;

use ext_php_rs::types::Zval;

type GetInfo = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type SetOpt = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type SlistAppend = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
type SlistFreeAll = unsafe extern "C" fn(*mut c_void);

/// The libcurl functions used, looked up once.
struct Api {
    getinfo: GetInfo,
    setopt: SetOpt,
    append: SlistAppend,
    free_all: SlistFreeAll,
}

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        if !crate::config::get().curl_direct {
            return None;
        }
        let find = |name: &CStr| {
            // SAFETY: a lookup among the symbols already loaded.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            (!p.is_null()).then_some(p)
        };
        let (getinfo, setopt, append, free_all) = (
            find(c"curl_easy_getinfo")?,
            find(c"curl_easy_setopt")?,
            find(c"curl_slist_append")?,
            find(c"curl_slist_free_all")?,
        );
        // SAFETY: libcurl's exported functions, with these C signatures.
        unsafe {
            Some(Api {
                getinfo: std::mem::transmute::<*mut c_void, GetInfo>(getinfo),
                setopt: std::mem::transmute::<*mut c_void, SetOpt>(setopt),
                append: std::mem::transmute::<*mut c_void, SlistAppend>(append),
                free_all: std::mem::transmute::<*mut c_void, SlistFreeAll>(free_all),
            })
        }
    })
    .as_ref()
}

/// The `CURL *` of a `CurlHandle`: PHP keeps its curl object `handlers.offset` bytes in
/// front of the `zend_object`, and the handle is that struct's first field
/// (`php_curl.cp`, PHP 8.0 to 8.4).
fn easy_handle(ch: &Zval) -> Option<*mut c_void> {
    easy_handle_of(ch.dereference().object()?)
}

fn easy_handle_of(obj: &ext_php_rs::types::ZendObject) -> Option<*mut c_void> {
    // SAFETY: a live object: its class entry, name and handlers are valid.
    unsafe {
        if crate::php::zstr((*obj.ce).name) != b"CurlHandle" || obj.handlers.is_null() {
            return None;
        }
        let offset = usize::try_from((*obj.handlers).offset).ok()?;
        if offset < std::mem::size_of::<*mut c_void>() {
            return None;
        }
        let base = (obj as *const ext_php_rs::types::ZendObject)
            .cast::<u8>()
            .sub(offset);
        let cp = base.cast::<*mut c_void>().read();
        (!cp.is_null()).then_some(cp)
    }
}

const CURLE_OK: c_int = 0;
const CURLOPT_HTTPHEADER: c_int = 10023;

/// A `long` piece of information (`CURLINFO_RESPONSE_CODE`, ...).
pub fn info_long(ch: &Zval, what: c_int) -> Option<i64> {
    let (api, cp) = (api()?, easy_handle(ch)?);
    let mut v: c_long = 0;
    // SAFETY: a live easy handle; a `long` info writes one `long`.
    (unsafe { (api.getinfo)(cp, what, &mut v as *mut c_long) } == CURLE_OK).then_some(v as i64)
}

/// A string piece of information (`CURLINFO_EFFECTIVE_URL`, ...), handed to `out`.
pub fn info_bytes(ch: &Zval, what: c_int, out: impl FnOnce(&[u8])) -> Option<()> {
    let (api, cp) = (api()?, easy_handle(ch)?);
    let mut p: *const c_char = std::ptr::null();
    // SAFETY: a live easy handle; a string info writes a pointer owned by libcurl, valid
    // until the handle changes (read right away).
    if unsafe { (api.getinfo)(cp, what, &mut p as *mut *const c_char) } != CURLE_OK || p.is_null() {
        return None;
    }
    out(unsafe { CStr::from_ptr(p) }.to_bytes());
    Some(())
}

/// A header list we gave the handle with object handle `handle`; freed when dropped.
/// Kept until the request ends: a copy of the handle made during the transfer
/// (`curl_copy_handle` in a callback) points at it too. `attached` while the transfer it
/// was made for runs; a list still attached at the request end is taken off its handle
/// ([`clear_headers_of`]) before it is freed.
#[derive(Debug)]
pub struct HeaderList {
    list: *mut c_void,
    /// The `CurlHandle`'s object handle.
    pub handle: u32,
    /// Still set on the handle.
    pub attached: bool,
}

impl Drop for HeaderList {
    fn drop(&mut self) {
        if let Some(api) = api() {
            // SAFETY: a list `curl_slist_append` made, freed once.
            unsafe { (api.free_all)(self.list) };
        }
    }
}

/// Makes `line` (a header, `Name: value`) the only custom header of the transfers of
/// `ch` (object handle `handle`); the list must outlive them (see [`HeaderList`]).
pub fn set_header(ch: &Zval, handle: u32, line: &CStr) -> Option<HeaderList> {
    let (api, cp) = (api()?, easy_handle(ch)?);
    // SAFETY: a new list with a copy of `line` (libcurl copies it).
    let list = unsafe { (api.append)(std::ptr::null_mut(), line.as_ptr()) };
    if list.is_null() {
        return None;
    }
    let list = HeaderList {
        list,
        handle,
        attached: true,
    };
    // SAFETY: a live easy handle; the list stays alive as long as it is set (above).
    (unsafe { (api.setopt)(cp, CURLOPT_HTTPHEADER, list.list) } == CURLE_OK).then_some(list)
}

/// Takes the custom headers off `ch` (after a transfer [`set_header`] prepared).
pub fn clear_headers(ch: &Zval) {
    if let Some(cp) = easy_handle(ch) {
        clear(cp);
    }
}

/// [`clear_headers`] for the `CurlHandle` with object handle `handle`, if it is still
/// alive (request end, for transfers that never finished: `exit()` inside one).
pub fn clear_headers_of(handle: u32) {
    // SAFETY: the executor's object store (NTS); a bucket holds a live object unless
    // its low bit marks it free.
    let obj = unsafe {
        let eg = &raw const ext_php_rs::ffi::executor_globals;
        let store = &(*eg).objects_store;
        if handle == 0 || handle >= store.top || store.object_buckets.is_null() {
            return;
        }
        let obj = *store.object_buckets.add(handle as usize);
        if obj.is_null() || (obj as usize) & 1 != 0 {
            return;
        }
        &*obj.cast::<ext_php_rs::types::ZendObject>()
    };
    if obj.handle == handle {
        if let Some(cp) = easy_handle_of(obj) {
            clear(cp);
        }
    }
}

fn clear(cp: *mut c_void) {
    if let Some(api) = api() {
        // SAFETY: a live easy handle; no list is a valid value.
        unsafe { (api.setopt)(cp, CURLOPT_HTTPHEADER, std::ptr::null_mut::<c_void>()) };
    }
}
