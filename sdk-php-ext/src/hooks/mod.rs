//! Instrumentation: hooked internal functions and, for call trees, user functions.
//!
//! Each library is one module holding a table of [`Hook`]s — which internal function or
//! method, what to do at its start and at its end — written over the shared helpers of
//! `spans.rs` ([`open_sql`], [`open_http`], [`finish`], [`failure`]). [`install`] finds each
//! hooked internal function once per process and puts one generic wrapper in place of
//! its handler: the wrapper looks the hook up by function address, runs its start,
//! the original handler, its end, keeps the call's [`Open`] record on the request's
//! stack, publishes the activity to the active slot, and catches panics (counted, never
//! crossing into PHP).
//!
//! User functions are seen only when call trees are configured, in one of two ways
//! (see [`register`]): by interposing `zend_execute_ex` (every user call, include and
//! generator resume goes through it), or, when opcache's JIT may be on, through the Zend
//! Observer API. The observer is the fallback only: in PHP 8.2 any fcall observer makes
//! every request initialise a run-time cache for every internal function (150–190 µs of
//! CPU per request, sampled or not), while the JIT refuses to start (with a startup
//! warning) when `zend_execute_ex` is overridden.

pub mod curl;
pub mod errors;
pub mod libcurl;
pub mod mysqli;
pub mod pdo;
mod spans;
pub mod stream;

pub use spans::{
    abandon, discard, failure, finish, mark, open, open_http, open_sql, param_key, param_key_at,
    push_params, sql_operation, url_parts, TraceparentLine,
};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};

use ext_php_rs::ffi::{self, zend_execute_data, zend_function, zend_observer_fcall_handlers, zval};
use ext_php_rs::types::Zval;

use crate::clock;
use crate::overhead::{self, Phase};
use crate::php::{self, Frame};
use crate::request::{self, Open, Tx};

/// Hook handlers that panicked (caught and counted).
pub static FAILURES: AtomicU64 = AtomicU64::new(0);
/// Whether user functions are observed for call trees (decided at module start).
pub static PROFILER: AtomicBool = AtomicBool::new(false);

/// Start of a hooked call: returns the record to keep until its end, or `None`.
pub type BeginFn = fn(Frame, &mut Tx) -> Option<Open>;
/// End of a hooked call, with its return value and the record made at its start.
pub type EndFn = fn(Frame, Option<&Zval>, &mut Tx, Open);

/// One hooked internal function or method.
pub struct Hook {
    /// Lower-case class name, empty for a function.
    pub class: &'static str,
    /// Lower-case function or method name.
    pub function: &'static str,
    /// At the call's start.
    pub begin: BeginFn,
    /// At the call's end.
    pub end: EndFn,
    /// Installed only with `tern.capture_params=1` (calls that only matter for
    /// parameters cost nothing otherwise).
    pub params_only: bool,
}

impl Hook {
    /// A hooked function.
    pub const fn function(function: &'static str, begin: BeginFn, end: EndFn) -> Self {
        Hook {
            class: "",
            function,
            begin,
            end,
            params_only: false,
        }
    }

    /// A hooked method.
    pub const fn method(
        class: &'static str,
        function: &'static str,
        begin: BeginFn,
        end: EndFn,
    ) -> Self {
        Hook {
            class,
            function,
            begin,
            end,
            params_only: false,
        }
    }

    /// Installed only when SQL parameters are captured (`tern.capture_params=1`).
    pub const fn params_only(self) -> Self {
        Hook {
            params_only: true,
            ..self
        }
    }
}

const TABLES: [&[Hook]; 4] = [pdo::HOOKS, mysqli::HOOKS, curl::HOOKS, stream::HOOKS];
const _: () = assert!(
    pdo::HOOKS.len() + mysqli::HOOKS.len() + curl::HOOKS.len() + stream::HOOKS.len() <= 96,
    "RESOLVED must hold every hook"
);

fn hook_at(mut index: usize) -> Option<&'static Hook> {
    for t in TABLES {
        if index < t.len() {
            return Some(&t[index]);
        }
        index -= t.len();
    }
    None
}

/// Wrapped internal functions: address and hook index. Internal functions live for the
/// process, so these addresses are stable (copies are not recorded, see [`inherited`]).
static RESOLVED_FUNC: [AtomicUsize; 96] = [const { AtomicUsize::new(0) }; 96];
static RESOLVED_HOOK: [AtomicUsize; 96] = [const { AtomicUsize::new(0) }; 96];
static RESOLVED_LEN: AtomicUsize = AtomicUsize::new(0);

/// Our slot in every internal function's `reserved` array (`zend_get_resource_handle`,
/// taken at module start; -1 when the engine had none left): a wrapped function carries
/// its hook index + 1 there, so the wrapper finds its hook with one read of the function
/// it was called with (already in cache), and copies of a wrapped function (subclasses,
/// closures) carry it too.
static RESERVED: AtomicIsize = AtomicIsize::new(-1);

/// The hook index a wrapped function (or a copy of one) carries in our reserved slot.
#[inline]
fn reserved_index(func: *mut zend_function) -> Option<usize> {
    let slot = usize::try_from(RESERVED.load(Ordering::Relaxed)).ok()?;
    // SAFETY: the function being called; internal functions have `reserved`.
    let v = unsafe { (*func).internal_function.reserved[slot] } as usize;
    (v != 0 && v <= ORIGINAL.len()).then(|| v - 1)
}

fn resolved_index(func: *mut zend_function) -> Option<usize> {
    let f = func as usize;
    let len = RESOLVED_LEN.load(Ordering::Acquire);
    (0..len)
        .find(|&i| RESOLVED_FUNC[i].load(Ordering::Relaxed) == f)
        .map(|i| RESOLVED_HOOK[i].load(Ordering::Relaxed))
}

fn remember(func: *mut zend_function, index: usize) -> bool {
    if resolved_index(func).is_some() {
        return true;
    }
    // One thread runs PHP (NTS): no two writers.
    let len = RESOLVED_LEN.load(Ordering::Acquire);
    if len == RESOLVED_FUNC.len() {
        return false;
    }
    RESOLVED_FUNC[len].store(func as usize, Ordering::Relaxed);
    RESOLVED_HOOK[len].store(index, Ordering::Relaxed);
    RESOLVED_LEN.store(len + 1, Ordering::Release);
    true
}

const NO_HANDLERS: zend_observer_fcall_handlers = zend_observer_fcall_handlers {
    begin: None,
    end: None,
};

unsafe extern "C" {
    static mut zend_execute_ex: Option<unsafe extern "C" fn(*mut zend_execute_data)>;
    fn cfg_get_string(name: *const std::ffi::c_char, result: *mut *mut std::ffi::c_char) -> i32;
}

/// The `zend_execute_ex` that was in place before ours (0 = not interposed).
static PREVIOUS_EXECUTE: AtomicUsize = AtomicUsize::new(0);

/// The raw configuration value of `name` (php.ini and `-d`), before any module parses it.
fn raw_ini(name: &std::ffi::CStr) -> Option<String> {
    let mut out: *mut std::ffi::c_char = std::ptr::null_mut();
    // SAFETY: looks the name up in the configuration hash; the result is owned by it.
    let found = unsafe { cfg_get_string(name.as_ptr(), &mut out) } == 0;
    (found && !out.is_null()).then(|| {
        unsafe { std::ffi::CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Whether opcache's JIT may run in this process: a JIT buffer is configured and the JIT
/// mode is not off. (Opcache starts after the modules, so its own settings are not parsed
/// yet at our module start; the raw configuration is.)
fn jit_configured() -> bool {
    let buffer = raw_ini(c"opcache.jit_buffer_size").unwrap_or_default();
    let buffer = buffer.trim();
    if buffer.is_empty() || buffer.trim_start_matches('0').is_empty() {
        return false;
    }
    let mode = raw_ini(c"opcache.jit")
        .unwrap_or_default()
        .to_ascii_lowercase();
    !matches!(mode.trim(), "off" | "disable" | "0" | "false" | "no")
}

/// Registers the hooks (module start): user functions for call trees when `profile`,
/// through `zend_execute_ex` unless the JIT may run (then the fcall observer), errors, and
/// the wrappers of hooked internal functions.
pub fn register(profile: bool) {
    PROFILER.store(profile, Ordering::Relaxed);
    if profile {
        if jit_configured() {
            // SAFETY: called during MINIT.
            unsafe { ffi::zend_observer_fcall_register(Some(fcall_init)) };
        } else {
            // SAFETY: MINIT runs once, before any PHP code; the previous value is kept
            // and called by ours, and put back at module shutdown.
            unsafe {
                let slot = &raw mut zend_execute_ex;
                if let Some(previous) = *slot {
                    PREVIOUS_EXECUTE.store(previous as usize, Ordering::Relaxed);
                    *slot = Some(execute_user);
                }
            }
        }
    }
    errors::register();
    // SAFETY: MINIT; the engine hands out one of its reserved slots per caller.
    let slot = unsafe { ffi::zend_get_resource_handle(c"tern".as_ptr()) };
    if (0..6).contains(&slot) {
        RESERVED.store(slot as isize, Ordering::Relaxed);
    }
    install();
}

/// Puts `zend_execute_ex` back (module shutdown).
pub fn unregister() {
    let previous = PREVIOUS_EXECUTE.swap(0, Ordering::Relaxed);
    if previous != 0 {
        // SAFETY: the value stored is the original executor; no PHP code runs now.
        unsafe {
            zend_execute_ex = Some(std::mem::transmute::<
                usize,
                unsafe extern "C" fn(*mut zend_execute_data),
            >(previous));
        }
    }
}

/// Stack address at request start, and how many bytes of C stack user calls may use
/// below it before the request is stopped with a fatal error.
static STACK_BASE: AtomicUsize = AtomicUsize::new(0);
static STACK_ROOM: AtomicUsize = AtomicUsize::new(0);

/// Notes where the C stack is at request start (only used with `zend_execute_ex`).
#[inline(never)]
pub fn mark_stack() {
    if PREVIOUS_EXECUTE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let here = 0u8;
    STACK_BASE.store(&raw const here as usize, Ordering::Relaxed);
    if STACK_ROOM.load(Ordering::Relaxed) == 0 {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain getrlimit into a local.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0;
        let size = if ok && lim.rlim_cur != libc::RLIM_INFINITY {
            lim.rlim_cur as usize
        } else {
            8 << 20
        };
        // Keep 1 MiB (or a quarter of a small stack) for the engine, internal functions
        // and error handling below the deepest user call.
        let margin = (1usize << 20).min(size / 4);
        STACK_ROOM.store(size.saturating_sub(margin).max(1), Ordering::Relaxed);
    }
}

/// Start of `zend_fiber_stack` (PHP 8.2 `Zend/zend_fibers.h`): usable memory from
/// `pointer` for `size` bytes.
#[repr(C)]
struct FiberStack {
    pointer: *mut std::ffi::c_void,
    size: usize,
}

/// The top of the C stack this call runs on and the room user calls may take below it:
/// the request's stack, or the running fiber's own (fibers switch C stacks).
fn stack_bounds() -> (usize, usize) {
    // SAFETY: executor globals of this (NTS) thread; a running fiber's context and stack
    // are valid while it runs.
    unsafe {
        let eg = &raw const ffi::executor_globals;
        if !(*eg).active_fiber.is_null() {
            let ctx = (*eg).current_fiber_context;
            if ctx.is_null() || (*ctx).stack.is_null() {
                return (0, 0);
            }
            let stack = (*ctx).stack.cast::<FiberStack>();
            let size = (*stack).size;
            let top = ((*stack).pointer as usize).wrapping_add(size);
            return (top, size - (256usize << 10).min(size / 4));
        }
    }
    (
        STACK_BASE.load(Ordering::Relaxed),
        STACK_ROOM.load(Ordering::Relaxed),
    )
}

unsafe extern "C" {
    fn zend_error_noreturn(kind: i32, format: *const std::ffi::c_char, ...) -> !;
}

/// Our `zend_execute_ex`: a user frame (function, method, closure, file, generator
/// resume) starts and ends around the engine's executor. An exception or `exit()` returns
/// through here; a fatal error jumps over the end (the request end closes the tree).
/// With `zend_execute_ex` overridden every user call nests on the C stack (the engine
/// otherwise keeps PHP frames on its heap VM stack), so recursion that PHP alone would
/// survive could overflow it: before that, the request ends with a fatal error, as on
/// memory exhaustion.
unsafe extern "C" fn execute_user(ex: *mut zend_execute_data) {
    let here = 0u8;
    let (top, room) = stack_bounds();
    let used = top.wrapping_sub(&raw const here as usize);
    if top != 0 && used > room && used <= room + (1 << 20) {
        // SAFETY: a fatal error bails out (longjmp) to the request's end; no Rust frame
        // with anything to drop is between here and the engine.
        unsafe {
            zend_error_noreturn(
                ffi::E_ERROR as i32,
                c"Maximum call stack size of %zu bytes reached (tern call trees nest user calls on the C stack)".as_ptr(),
                room,
            )
        }
    }
    let previous = PREVIOUS_EXECUTE.load(Ordering::Relaxed);
    // SAFETY: set before this function was installed; the engine's executor.
    let previous: unsafe extern "C" fn(*mut zend_execute_data) =
        unsafe { std::mem::transmute(previous) };
    unsafe {
        profile_begin(ex);
        previous(ex);
        profile_end(ex, std::ptr::null_mut());
    }
}

unsafe extern "C" fn fcall_init(ex: *mut zend_execute_data) -> zend_observer_fcall_handlers {
    catch_unwind(|| {
        // SAFETY: the engine passes a valid frame with its function.
        let func = unsafe { (*ex).func };
        if func.is_null() || unsafe { (*func).common.type_ } == ffi::ZEND_INTERNAL_FUNCTION as u8 {
            return NO_HANDLERS;
        }
        zend_observer_fcall_handlers {
            begin: Some(profile_begin),
            end: Some(profile_end),
        }
    })
    .unwrap_or_else(|_| {
        FAILURES.fetch_add(1, Ordering::Relaxed);
        NO_HANDLERS
    })
}

/// Original handlers of hooked functions, by hook index (0 = not installed).
static ORIGINAL: [AtomicUsize; 96] = [const { AtomicUsize::new(0) }; 96];
static INSTALLED_ALL: AtomicBool = AtomicBool::new(false);
/// Internal functions whose handler is the wrapper (`tern_stats()["hooks_installed"]`).
pub static INSTALLED: AtomicUsize = AtomicUsize::new(0);

/// The internal function `class::function` (lower-case names), if loaded.
fn lookup(class: &str, function: &str) -> Option<*mut zend_function> {
    // SAFETY: the compiler globals' tables are valid after module start; lookups only.
    unsafe {
        let cg = &raw const ffi::compiler_globals;
        let table = if class.is_empty() {
            (*cg).function_table
        } else {
            let classes = (*cg)
                .class_table
                .cast::<ext_php_rs::types::ZendHashTable>()
                .as_ref()?;
            let ce = classes
                .get(class)?
                .value
                .ptr
                .cast::<ffi::zend_class_entry>();
            if ce.is_null() {
                return None;
            }
            &raw mut (*ce).function_table
        };
        let table = table.cast::<ext_php_rs::types::ZendHashTable>().as_ref()?;
        let func = table.get(function)?.value.ptr.cast::<zend_function>();
        (!func.is_null() && (*func).type_ == ffi::ZEND_INTERNAL_FUNCTION as u8).then_some(func)
    }
}

/// Puts the wrapper in place of every hooked internal function that is loaded and not yet
/// wrapped. Called at module start and at each process's first request (extensions loaded
/// after this one exist by then); cheap once everything is installed.
pub fn install() {
    if INSTALLED_ALL.load(Ordering::Relaxed) {
        return;
    }
    let mut index = 0;
    for table in TABLES {
        for hook in table {
            let wanted = !hook.params_only || crate::config::get().capture_params;
            let func = if wanted && ORIGINAL[index].load(Ordering::Relaxed) == 0 {
                lookup(hook.class, hook.function)
            } else {
                None
            };
            if let Some(func) = func {
                // SAFETY: an internal function: swap its handler for the wrapper.
                unsafe {
                    let slot = &raw mut (*func).internal_function.handler;
                    if let Some(original) = *slot {
                        if remember(func, index) {
                            ORIGINAL[index].store(original as usize, Ordering::Relaxed);
                            if let Ok(r) = usize::try_from(RESERVED.load(Ordering::Relaxed)) {
                                (*func).internal_function.reserved[r] = (index + 1) as *mut _;
                            }
                            *slot = Some(wrapper);
                            INSTALLED.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            index += 1;
        }
    }
}

/// A copy of a wrapped function: PHP copies an internal function when a class extends an
/// internal class (`class MyPDO extends PDO`, statement classes) and when a closure is
/// made of it (`curl_exec(...)`, `Closure::fromCallable`). The copy carries the wrapper
/// but has its own address: find the hook by name (through the class's parents).
fn inherited(func: *mut zend_function) -> Option<usize> {
    let matching = |name: &[u8], class: &[u8]| {
        let mut index = 0;
        for table in TABLES {
            for hook in table {
                if hook.function.as_bytes().eq_ignore_ascii_case(name)
                    && hook.class.as_bytes().eq_ignore_ascii_case(class)
                    && ORIGINAL[index].load(Ordering::Relaxed) != 0
                {
                    return Some(index);
                }
                index += 1;
            }
        }
        None
    };
    // SAFETY: a valid function being called; linked class entries and their parents.
    let found = unsafe {
        let name = php::zstr((*func).common.function_name);
        let mut ce = (*func).common.scope;
        if ce.is_null() {
            matching(name, b"")
        } else {
            let mut found = None;
            while !ce.is_null() && found.is_none() {
                found = matching(name, php::zstr((*ce).name));
                ce = (*ce).__bindgen_anon_1.parent;
            }
            found
        }
    };
    // Last resort: a copy whose class chain does not lead to the hooked class (should
    // not happen); the function name alone, when only one hook has it.
    let found = found.or_else(|| {
        // SAFETY: as above.
        let name = unsafe { php::zstr((*func).common.function_name) };
        let mut hits = (0..TABLES.iter().map(|t| t.len()).sum::<usize>()).filter(|&i| {
            hook_at(i).is_some_and(|h| h.function.as_bytes().eq_ignore_ascii_case(name))
                && ORIGINAL[i].load(Ordering::Relaxed) != 0
        });
        match (hits.next(), hits.next()) {
            (Some(i), None) => Some(i),
            _ => None,
        }
    });
    // Not remembered: copies live in request or closure memory, and a later copy of
    // another function may reuse the address.
    found
}

/// Marks installation as finished for this process (after its first request's attempt).
pub fn install_done() {
    INSTALLED_ALL.store(true, Ordering::Relaxed);
}

unsafe extern "C" fn wrapper(ex: *mut zend_execute_data, rv: *mut zval) {
    // SAFETY: the engine calls handlers with a valid frame.
    let func = unsafe { (*ex).func };
    let index = reserved_index(func)
        .or_else(|| resolved_index(func))
        .or_else(|| inherited(func));
    let original = index
        .map(|i| ORIGINAL[i].load(Ordering::Relaxed))
        .unwrap_or(0);
    if original == 0 {
        // Unreachable in practice: every function carrying the wrapper is a wrapped one or
        // a copy of one. Counted, and the call does nothing (there is no handler to run).
        FAILURES.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: the value stored is the function's original handler.
    let original: unsafe extern "C" fn(*mut zend_execute_data, *mut zval) =
        unsafe { std::mem::transmute(original) };
    let hook = index.and_then(hook_at);
    unsafe {
        if let Some(hook) = hook {
            let timer = overhead::start();
            hook_begin(ex, hook);
            timer.stop(Phase::Hooks);
        }
        original(ex, rv);
        if let Some(hook) = hook {
            let timer = overhead::start();
            hook_end(ex, rv, hook);
            timer.stop(Phase::Hooks);
        }
    }
}

fn guarded(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        FAILURES.fetch_add(1, Ordering::Relaxed);
    }
}

fn hook_begin(ex: *mut zend_execute_data, hook: &'static Hook) {
    guarded(|| {
        let frame = Frame(ex);
        request::with(|st| {
            if !st.tx.on {
                return;
            }
            if let Some(mut open) = (hook.begin)(frame, &mut st.tx) {
                open.ex = ex as usize;
                if let Some((kind, text)) = open.activity() {
                    request::set_activity(st, kind, st.tx.unix_at(open.start), text.as_bytes());
                }
                st.tx.open.push(open);
            }
        });
    });
}

fn hook_end(ex: *mut zend_execute_data, retval: *mut zval, hook: &'static Hook) {
    guarded(|| {
        let frame = Frame(ex);
        request::with(|st| {
            if st.tx.open.last().map(|o| o.ex) != Some(ex as usize) {
                return;
            }
            let Some(open) = st.tx.open.pop() else { return };
            let had_activity = open.activity.is_some();
            // SAFETY: the engine's return value (may be null, e.g. on exception).
            let rv = unsafe { retval.cast::<Zval>().as_ref() };
            (hook.end)(frame, rv, &mut st.tx, open);
            if had_activity {
                request::clear_activity(st);
            }
        });
    });
}

fn describe(func: *const zend_function) -> (String, String, u32) {
    // SAFETY: called while the function runs (node creation), so it is alive.
    unsafe {
        let common = &(*func).common;
        let name = String::from_utf8_lossy(php::zstr(common.function_name));
        let full = if common.scope.is_null() {
            if name.is_empty() {
                "{main}".to_string()
            } else {
                name.into_owned()
            }
        } else {
            format!(
                "{}::{}",
                String::from_utf8_lossy(php::zstr((*common.scope).name)),
                name
            )
        };
        let op = &(*func).op_array;
        (
            full,
            String::from_utf8_lossy(php::zstr(op.filename)).into_owned(),
            op.line_start,
        )
    }
}

unsafe extern "C" fn profile_begin(ex: *mut zend_execute_data) {
    guarded(|| {
        request::with(|st| {
            if st.tx.tree.on {
                // SAFETY: valid frame.
                let func = unsafe { (*ex).func };
                st.tx.tree.enter(func, clock::mono_ns(), describe);
            }
        });
    });
}

unsafe extern "C" fn profile_end(_ex: *mut zend_execute_data, _retval: *mut zval) {
    guarded(|| {
        request::with(|st| {
            if st.tx.tree.on {
                st.tx.tree.exit(clock::mono_ns());
            }
        });
    });
}
