//! Small, allocation-free views over the engine's structures (call frames, zvals,
//! strings, objects) used by the hooks, plus the few engine calls ext-php-rs does not
//! bind.

use std::ffi::{c_char, c_int, CStr};

use ext_php_rs::ffi::{self, zend_execute_data, zend_function, zend_object, zend_string, zval};
use ext_php_rs::flags::DataType;
use ext_php_rs::types::Zval;

unsafe extern "C" {
    fn zend_is_auto_global_str(name: *const c_char, len: usize) -> bool;
    fn zend_memory_peak_usage(real: bool) -> usize;
    fn zend_clear_exception();
    static mut sapi_module: ffi::sapi_module_struct;
}

/// Bytes of a `zend_string` (empty for null).
///
/// # Safety
/// `s` is null or a valid `zend_string` that outlives the returned slice.
pub unsafe fn zstr<'a>(s: *const zend_string) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    // SAFETY: per the caller.
    unsafe { std::slice::from_raw_parts((*s).val.as_ptr().cast::<u8>(), (*s).len) }
}

/// PHP bytes as text, invalid UTF-8 replaced; valid text (nearly always) is borrowed after
/// one fast check instead of going through `from_utf8_lossy`'s chunking.
#[inline]
pub fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// A PHP value kept after the call that passed it (its reference count raised by one),
/// given back with [`Held::release`] while the engine runs. Dropped without that, it
/// only forgets (no drop glue: request memory is freed with the request anyway).
#[derive(Debug)]
pub struct Held(std::mem::ManuallyDrop<Zval>);

impl Held {
    /// Keeps `z` (for a reference: the variable itself).
    pub fn new(z: &Zval) -> Held {
        Held(std::mem::ManuallyDrop::new(z.shallow_clone()))
    }

    /// The value now, through references.
    pub fn get(&self) -> &Zval {
        self.0.dereference()
    }

    /// Gives the value back (lowers its reference count, freeing it if it was the last).
    pub fn release(mut self) {
        // SAFETY: taken once, here; the value is alive (we held a reference).
        unsafe { std::mem::ManuallyDrop::drop(&mut self.0) }
    }
}

/// A SQL parameter as text for a span (at most [`MAX_PARAM_TEXT`]), without running
/// application code (no `__toString`: a hook must not call into the application):
/// scalars as PHP writes them, `null` empty, an object `object(Class)`, an array
/// `array`, anything else `resource`.
///
/// [`MAX_PARAM_TEXT`]: crate::request::MAX_PARAM_TEXT
pub fn param_text(z: &Zval) -> String {
    let z = z.dereference();
    if let Some(o) = z.object() {
        // SAFETY: a live object's class entry and name.
        return format!("object({})", lossy(unsafe { zstr((*o.ce).name) }));
    }
    if z.is_array() {
        return "array".to_string();
    }
    let text = z
        .coerce_to_string()
        .unwrap_or_else(|| "resource".to_string());
    clip_owned(text, crate::request::MAX_PARAM_TEXT)
}

/// `s` cut to at most `max` bytes (on a character boundary), ending in `…` when cut:
/// a bulk `INSERT` or a blob parameter must not make a span larger than a frame.
pub fn clip(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// [`clip`] of an owned string, without copying one that fits.
pub fn clip_owned(s: String, max: usize) -> String {
    match clip(&s, max) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(c) => c,
    }
}

/// The string bytes of a zval, through references.
pub fn zval_bytes(z: &Zval) -> Option<&[u8]> {
    let z = z.dereference();
    if z.get_type() != DataType::String {
        return None;
    }
    // SAFETY: the type says the value is a string.
    Some(unsafe { zstr(z.value.str_) })
}

/// The object handle of a zval holding an object.
pub fn obj_handle(z: &Zval) -> Option<u32> {
    let z = z.dereference();
    z.object().map(|o| o.handle)
}

/// One call frame as the observer sees it.
#[derive(Clone, Copy)]
pub struct Frame(pub *mut zend_execute_data);

const FRAME_SLOT: usize =
    std::mem::size_of::<zend_execute_data>().div_ceil(std::mem::size_of::<zval>());

impl Frame {
    /// Number of arguments passed.
    pub fn num_args(&self) -> u32 {
        // SAFETY: frames handed to observers are valid for the call.
        unsafe { (*self.0).This.u2.num_args }
    }

    /// Argument `n` (0-based), through references.
    pub fn arg(&self, n: u32) -> Option<&Zval> {
        self.arg_as_passed(n).map(Zval::dereference)
    }

    /// Argument `n` as passed: the reference itself for a by-reference parameter.
    pub fn arg_as_passed(&self, n: u32) -> Option<&Zval> {
        if n >= self.num_args() {
            return None;
        }
        // SAFETY: arguments follow the frame header (ZEND_CALL_ARG).
        Some(unsafe { &*(self.0 as *const zval).add(FRAME_SLOT + n as usize) })
    }

    /// Argument `n` as bytes when it is a string.
    pub fn arg_bytes(&self, n: u32) -> Option<&[u8]> {
        self.arg(n).and_then(zval_bytes)
    }

    /// `$this` for a method call.
    pub fn this(&self) -> Option<&Zval> {
        // SAFETY: as above.
        let this = unsafe { &(*self.0).This };
        this.is_object().then_some(this)
    }

    /// Handle of `$this`.
    pub fn this_handle(&self) -> Option<u32> {
        self.this().and_then(obj_handle)
    }

    /// The function being called.
    pub fn func(&self) -> *mut zend_function {
        // SAFETY: as above.
        unsafe { (*self.0).func }
    }
}

fn has_exception() -> bool {
    // SAFETY: reading the executor globals (NTS).
    unsafe { !ffi::executor_globals.exception.is_null() }
}

/// Runs `f`, and if it raised an exception where there was none, clears it: what the
/// hooks do must never change what the application sees.
fn contained<R>(f: impl FnOnce() -> Option<R>) -> Option<R> {
    if has_exception() {
        return f();
    }
    let r = f();
    if has_exception() {
        // SAFETY: an exception is pending and it is ours.
        unsafe { zend_clear_exception() };
        return None;
    }
    r
}

/// Reads a property of an object (declared, dynamic or computed by handlers),
/// silently, as an owned value; an exception raised by the read is cleared.
pub fn read_prop(obj: &Zval, name: &str) -> Option<Zval> {
    contained(|| read_prop_raw(obj, name))
}

fn read_prop_raw(obj: &Zval, name: &str) -> Option<Zval> {
    let o: *mut zend_object = obj.dereference().object()? as *const _ as *mut _;
    let mut rv = Zval::new();
    // SAFETY: valid object; silent read; the result points into the object or `rv`.
    let p = unsafe {
        ffi::zend_read_property((*o).ce, o, name.as_ptr().cast(), name.len(), true, &mut rv)
    };
    if p.is_null() {
        return None;
    }
    if std::ptr::eq(p, &rv) {
        return (!rv.is_null()).then_some(rv);
    }
    // SAFETY: non-null and owned by the object; shallow_clone takes a reference.
    let z = unsafe { &*p }.dereference();
    (!z.is_null()).then(|| z.shallow_clone())
}

/// A property as an integer.
pub fn prop_long(obj: &Zval, name: &str) -> Option<i64> {
    read_prop(obj, name).and_then(|z| z.long())
}

/// A property as bytes.
pub fn prop_bytes(obj: &Zval, name: &str) -> Option<Vec<u8>> {
    read_prop(obj, name).and_then(|z| zval_bytes(&z).map(<[u8]>::to_vec))
}

/// Most arguments [`call`] passes.
const MAX_CALL_ARGS: usize = 4;

thread_local! {
    /// Internal functions [`call`] has looked up: their entries live as long as the
    /// process (registered at module start, never moved), so one lookup each.
    static KNOWN: std::cell::RefCell<Vec<(&'static str, *mut zend_function)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn known_function(name: &'static str) -> Option<*mut zend_function> {
    KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        if let Some((_, f)) = k.iter().find(|(n, _)| *n == name) {
            return (!f.is_null()).then_some(*f);
        }
        // SAFETY: a lookup in the function table by a valid (ptr, len).
        let f = unsafe { ffi::zend_fetch_function_str(name.as_ptr().cast(), name.len()) };
        let internal = !f.is_null() && unsafe { (*f).type_ } == ffi::ZEND_INTERNAL_FUNCTION as u8;
        let f = if internal { f } else { std::ptr::null_mut() };
        k.push((name, f));
        (!f.is_null()).then_some(f)
    })
}

/// Calls an internal PHP function by its (lowercase) name with at most four arguments;
/// `None` when it does not exist, fails or throws (an exception it raised is cleared).
pub fn call(name: &'static str, args: &[&Zval]) -> Option<Zval> {
    if args.len() > MAX_CALL_ARGS {
        return None;
    }
    let f = known_function(name)?;
    contained(|| {
        // Shallow copies: the callee copies (and counts references of) its arguments, and
        // these are never dropped.
        let mut params: std::mem::MaybeUninit<[zval; MAX_CALL_ARGS]> =
            std::mem::MaybeUninit::uninit();
        let p = params.as_mut_ptr().cast::<zval>();
        for (i, a) in args.iter().enumerate() {
            // SAFETY: i < MAX_CALL_ARGS; bitwise copy of a live zval.
            unsafe {
                p.add(i)
                    .write(std::ptr::read(*a as *const Zval as *const zval))
            };
        }
        let mut rv = Zval::new();
        // SAFETY: a live internal function and `args.len()` initialised parameters.
        unsafe {
            ffi::zend_call_known_function(
                f,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut rv,
                args.len() as u32,
                p,
                std::ptr::null_mut(),
            )
        };
        (!has_exception()).then_some(rv)
    })
}

/// The pending exception's class and message, if one is being thrown.
pub fn pending_exception() -> Option<(String, String)> {
    // SAFETY: reading the executor globals in the request thread (NTS).
    let ex = unsafe { ffi::executor_globals.exception };
    if ex.is_null() {
        return None;
    }
    // SAFETY: non-null exception object.
    let class = unsafe { String::from_utf8_lossy(zstr((*(*ex).ce).name)).into_owned() };
    let mut holder = Zval::new();
    // SAFETY: wrap the object in a zval to read its message without changing refcounts.
    holder.u1.type_info = ffi::IS_OBJECT_EX;
    holder.value.obj = ex;
    let message = prop_bytes(&holder, "message")
        .map(|b| clip(&String::from_utf8_lossy(&b), crate::request::MAX_TEXT).into_owned());
    // Do not let the holder release the exception.
    holder.u1.type_info = ffi::IS_NULL;
    Some((class, message.unwrap_or_default()))
}

/// Makes sure `$_SERVER` is populated (it is built lazily with `auto_globals_jit`).
fn arm_server_globals() {
    // SAFETY: engine call with a static string.
    unsafe { zend_is_auto_global_str(c"_SERVER".as_ptr(), 7) };
}

/// A request variable (`REQUEST_URI`, `HTTP_HOST`, ...) as bytes: from the SAPI's own
/// environment when it has one (php-fpm: the FastCGI parameters, a hash lookup), else
/// from `$_SERVER`. Reading `$_SERVER` would build it for every request, application
/// using it or not (about 80,000 instructions under php-fpm).
pub fn request_var(key: &'static CStr) -> Option<&'static [u8]> {
    // SAFETY: reading the SAPI module's function pointer, set at startup.
    let getenv = unsafe { sapi_module.getenv };
    match getenv {
        Some(getenv) => {
            let bytes = key.to_bytes();
            // SAFETY: a NUL-terminated name and its length; the result (if any) is a
            // NUL-terminated string owned by the SAPI for the whole request.
            let p = unsafe { getenv(bytes.as_ptr().cast(), bytes.len()) };
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
        }
        None => {
            arm_server_globals();
            server_var(key.to_str().ok()?)
        }
    }
}

/// `$_SERVER[key]` as bytes.
fn server_var(key: &str) -> Option<&'static [u8]> {
    // SAFETY: reading the request's core globals (NTS).
    let server = unsafe {
        &*(&raw const ffi::core_globals.http_globals[ffi::TRACK_VARS_SERVER as usize]
            as *const Zval)
    };
    let table = server.array()?;
    let v = table.get(key)?;
    // SAFETY: the string lives in $_SERVER for the request; callers copy before it ends.
    zval_bytes(v).map(|b| unsafe { std::slice::from_raw_parts(b.as_ptr(), b.len()) })
}

/// Peak memory of the request (`memory_get_peak_usage()`).
pub fn peak_memory() -> u64 {
    // SAFETY: plain engine call.
    unsafe { zend_memory_peak_usage(false) as u64 }
}

/// The response status the SAPI will send (0 for CLI).
pub fn http_status() -> i64 {
    // SAFETY: reading the SAPI globals (NTS).
    unsafe { ffi::sapi_globals.sapi_headers.http_response_code as i64 }
}

/// Request strings of the SAPI.
pub type RequestInfo = (
    Option<&'static [u8]>,
    Option<&'static [u8]>,
    Option<&'static [u8]>,
    Option<&'static [u8]>,
);

/// `SG(request_info)` strings: (method, request URI, query string, path translated).
pub fn request_info() -> RequestInfo {
    let c = |p: *const c_char| {
        // SAFETY: SAPI strings are NUL-terminated and live for the request.
        (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes())
    };
    // SAFETY: reading the SAPI globals (NTS).
    unsafe {
        let Some(ri) = (&raw const ffi::sapi_globals.request_info).as_ref() else {
            return (None, None, None, None);
        };
        (
            c(ri.request_method),
            c(ri.request_uri),
            c(ri.query_string),
            c(ri.path_translated),
        )
    }
}

/// The SAPI's name (`cli`, `fpm-fcgi`, `cli-server`, ...).
pub fn sapi_name() -> &'static str {
    // SAFETY: the SAPI module is static for the process.
    unsafe {
        let Some(module) = (&raw const sapi_module).as_ref() else {
            return "";
        };
        let p = module.name;
        if p.is_null() {
            return "";
        }
        std::ffi::CStr::from_ptr(p).to_str().unwrap_or("")
    }
}

/// `E_*` constants as `c_int`.
pub const E_ERROR: c_int = ffi::E_ERROR as c_int;

/// A local variable of the calling user function (CV or symbol table), e.g.
/// `$http_response_header` set by the http stream wrapper.
pub fn caller_local(frame: Frame, name: &str) -> Option<&'static Zval> {
    // SAFETY: frames and op arrays are valid while the call runs; the result is read
    // before the hook returns.
    unsafe {
        let caller = (*frame.0).prev_execute_data;
        if caller.is_null() || (*caller).func.is_null() {
            return None;
        }
        let func = (*caller).func;
        if (*func).type_ == ffi::ZEND_USER_FUNCTION as u8 {
            let op = &(*func).op_array;
            for i in 0..op.last_var.max(0) as usize {
                let var = *op.vars.add(i);
                if zstr(var) == name.as_bytes() {
                    let z = &*(caller as *const zval).add(FRAME_SLOT + i);
                    let z = z.dereference();
                    return (z.get_type() != DataType::Undef && !z.is_null()).then_some(z);
                }
            }
        }
        let table = (*caller).symbol_table;
        if table.is_null() {
            return None;
        }
        let table = &*(table as *const ext_php_rs::types::ZendHashTable);
        table
            .get(name)
            .map(|z| z.indirect().unwrap_or(z).dereference())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_character_boundary() {
        assert!(matches!(
            clip("SELECT 1", 8),
            std::borrow::Cow::Borrowed("SELECT 1")
        ));
        assert_eq!(clip("SELECT 1", 7), "SELE…");
        // 'é' is two bytes: a cut inside it moves back to its start.
        assert_eq!(clip("aéééé", 5), "a…");
        assert_eq!(clip("aéééé", 6), "aé…");
        assert_eq!(clip("aéééé", 7), "aé…");
        for max in 3..40 {
            let long = "ü".repeat(30);
            let c = clip(&long, max);
            assert!(c.len() <= max, "{max}: {}", c.len());
            assert!(c.ends_with('…'));
        }
        assert_eq!(clip_owned("x".repeat(10), 10), "x".repeat(10));
        assert_eq!(
            clip_owned("x".repeat(11), 10),
            format!("{}…", "x".repeat(7))
        );
    }
}
