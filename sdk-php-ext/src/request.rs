//! The transaction of one request: its state, its start (RINIT) and its end
//! (RSHUTDOWN), where it is encoded and sent in one non-blocking write.
//!
//! PHP runs one request at a time per process (NTS), so the state is a per-thread value
//! with a `busy` flag instead of a lock: a hook that re-enters (a PHP function called from
//! a hook, a warning raised inside one) finds it busy and does nothing.

use std::cell::UnsafeCell;

use tern_php_wire::active::{ActiveMap, SlotWriter, TxInfo};
use tern_php_wire::Rings;

use crate::config::{self, Config, Naming};
use crate::db::{Bind, Conn};
use crate::tree::{self, Tree};
use crate::{clock, naming, otlp, php, send};

/// Shared text (SQL of a prepared statement, a connection's host and database): cloned
/// into every span of the statement or connection without copying.
pub type Text = std::rc::Rc<str>;

/// Longest SQL statement or URL kept in a span (longer ones end in `…`).
pub const MAX_TEXT: usize = 8 * 1024;
/// Longest SQL parameter value kept in a span.
pub const MAX_PARAM_TEXT: usize = 1024;

/// Text of PHP bytes (invalid UTF-8 replaced, at most [`MAX_TEXT`]); one allocation.
pub fn text(b: &[u8]) -> Text {
    Text::from(php::clip(&php::lossy(b), MAX_TEXT).as_ref())
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string.
    S(String),
    /// Shared text.
    T(Text),
    /// A static string (no allocation).
    Str(&'static str),
    /// An integer.
    I(i64),
}

/// Attributes of a span.
pub type Attrs = Vec<(&'static str, Val)>;

/// Most child spans (SQL, HTTP) kept per request; more are counted as dropped.
pub const MAX_SPANS: usize = 2000;
/// Most connections/statements/handles remembered per request.
pub(crate) const MAX_HANDLES: usize = 512;

/// A hooked call in progress.
#[derive(Debug)]
pub struct Open {
    /// The frame (pairs `end` with `begin`).
    pub ex: usize,
    /// Span id (known at start: it goes into `traceparent`).
    pub id: [u8; 8],
    /// Monotonic start.
    pub start: u64,
    /// Call-tree node at start.
    pub node: u32,
    /// Span name.
    pub name: std::borrow::Cow<'static, str>,
    /// Attributes gathered at start.
    pub attrs: Attrs,
    /// An object handle the hook wants at the end (connection, statement, curl handle).
    pub obj: u32,
    /// What the call is doing for the live view, and which attribute holds its text.
    pub activity: Option<(tern_php_wire::ActivityKind, u8)>,
    /// Attributes already encoded (a connection's, see [`Conn::attrs`]).
    pub encoded: Option<std::rc::Rc<[u8]>>,
}

impl Open {
    /// The live view's activity of this call and its text (SQL, URL).
    pub fn activity(&self) -> Option<(tern_php_wire::ActivityKind, &str)> {
        let (kind, at) = self.activity?;
        match &self.attrs.get(usize::from(at))?.1 {
            Val::S(s) => Some((kind, s.as_str())),
            Val::T(s) => Some((kind, s)),
            Val::Str(s) => Some((kind, s)),
            Val::I(_) => None,
        }
    }
}

/// Options the application set on a curl handle that the span needs.
#[derive(Debug, Clone, Default)]
pub struct CurlOpts {
    /// `CURLOPT_HTTPHEADER` as set by the application (without our `traceparent`).
    pub headers: Vec<String>,
    /// The request method implied by `CURLOPT_CUSTOMREQUEST`, `CURLOPT_POST`, ...
    pub method: Option<String>,
    /// Whether `method` came from `CURLOPT_CUSTOMREQUEST` (flags set later do not win).
    pub custom: bool,
}

/// A stream context's `http` `header` option as the application set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamHeader {
    /// Not set.
    None,
    /// One string of `\r\n`-separated lines.
    Text(Vec<u8>),
    /// An array of lines.
    Lines(Vec<Vec<u8>>),
}

/// The fatal error or uncaught exception that ended a request.
#[derive(Debug, Clone)]
pub struct Fatal {
    /// Exception class, or `E_ERROR`-style name.
    pub kind: String,
    /// Message.
    pub message: String,
    /// Where.
    pub file: String,
    /// Line.
    pub line: u32,
}

/// Error counts of a request.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    /// `E_WARNING`, `E_USER_WARNING`, `E_CORE_WARNING`, `E_COMPILE_WARNING`.
    pub warnings: u32,
    /// `E_NOTICE`, `E_USER_NOTICE`.
    pub notices: u32,
    /// `E_DEPRECATED`, `E_USER_DEPRECATED`.
    pub deprecated: u32,
    /// Errors (`E_ERROR` and the other fatal kinds, `E_USER_ERROR`, `E_RECOVERABLE_ERROR`).
    pub errors: u32,
    /// The first fatal error or uncaught exception.
    pub fatal: Option<Fatal>,
}

/// One transaction.
#[derive(Debug, Default)]
pub struct Tx {
    /// Recording.
    pub on: bool,
    /// W3C trace id (continued from `traceparent`).
    pub trace_id: [u8; 16],
    /// Entry span id.
    pub span_id: [u8; 8],
    /// Remote parent span from `traceparent`.
    pub parent: Option<[u8; 8]>,
    /// Unix start.
    pub unix0: u64,
    /// Monotonic start.
    pub mono0: u64,
    /// Monotonic end.
    pub mono_end: u64,
    /// Transaction name (route).
    pub name: String,
    /// HTTP method (empty for CLI).
    pub method: String,
    /// Request path (without query).
    pub path: String,
    /// Query string.
    pub query: String,
    /// Host header.
    pub host: String,
    /// Client address.
    pub client: String,
    /// User agent.
    pub user_agent: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Script file.
    pub script: String,
    /// Not an HTTP request.
    pub cli: bool,
    /// `service.name` in force for this request.
    pub service: String,
    /// Finished child spans, encoded as they finish.
    pub spans: otlp::Spans,
    /// Child spans not kept (over [`MAX_SPANS`]).
    pub dropped_spans: u32,
    /// Hooked calls in progress.
    pub open: Vec<Open>,
    /// Error counts.
    pub errors: Errors,
    /// The call tree.
    pub tree: Tree,
    /// Whether this request was sampled for a call tree.
    pub sampled: bool,
    /// CPU microseconds used by the thread running the request, at start.
    pub cpu0: u64,
    /// Known connections and statements by object handle.
    pub conns: Vec<(u32, Conn)>,
    /// What the application set on curl handles (headers, method), by handle.
    pub curl_opts: Vec<(u32, CurlOpts)>,
    /// Curl handles added to a multi handle and not yet finished: (handle, open call).
    pub curl_multi: Vec<(u32, Open)>,
    /// `traceparent` lists given to libcurl directly, taken off their handle when the
    /// transfer ends and freed when the request ends (see `libcurl::HeaderList`).
    pub curl_lists: Vec<crate::hooks::libcurl::HeaderList>,
    /// Parameters bound to prepared statements (`tern.capture_params=1`). Holds PHP
    /// references: emptied in [`end`], while the engine is alive.
    pub binds: Vec<Bind>,
    /// Stream calls whose context got our `traceparent`: (frame, the context's `http`
    /// `header` option before), restored when the call ends.
    pub stream_headers: Vec<(usize, StreamHeader)>,
    /// Response status (at the end).
    pub status: i64,
    /// Peak memory (at the end).
    pub peak_memory: u64,
    /// CPU microseconds of the request (at the end).
    pub cpu_us: u64,
    /// Attribute lists of finished calls, kept for the next calls (no allocation each).
    pub attr_pool: std::cell::RefCell<Vec<Attrs>>,
}

impl Tx {
    /// Records a finished child span (or counts it as dropped). Its parent is the entry
    /// span, or the call-tree node it ran under when the tree is kept.
    pub fn push_span(&mut self, span: &otlp::Finished<'_>) {
        if self.spans.len() < MAX_SPANS {
            let node = if self.tree.on { span.node } else { tree::ROOT };
            self.spans.push(&self.trace_id, &self.span_id, node, span);
        } else {
            self.dropped_spans += 1;
        }
    }

    /// An empty attribute list for a new call (one a finished call left, when there is).
    pub fn attrs(&self) -> Attrs {
        self.attr_pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(8))
    }

    /// Gives the attribute list of a finished call back for the next calls.
    pub fn recycle(&self, mut attrs: Attrs) {
        attrs.clear();
        let mut pool = self.attr_pool.borrow_mut();
        if pool.len() < 64 && attrs.capacity() <= 32 {
            pool.push(attrs);
        }
    }

    /// Unix nanoseconds of a monotonic instant of this request.
    pub fn unix_at(&self, mono: u64) -> u64 {
        self.unix0 + mono.saturating_sub(self.mono0)
    }

    /// Empties the transaction for the next request, keeping the allocations of its
    /// strings and lists (a request should not pay for freeing and re-making them).
    fn reset(&mut self) {
        // Every field named, so a new one cannot be forgotten here.
        let Tx {
            on,
            trace_id,
            span_id,
            parent,
            unix0,
            mono0,
            mono_end,
            name,
            method,
            path,
            query,
            host,
            client,
            user_agent,
            scheme,
            script,
            cli,
            service: _, // replaced only when it changes (see `config::service_name_into`)
            spans,
            dropped_spans,
            open,
            errors,
            tree,
            sampled,
            cpu0,
            conns,
            curl_opts,
            curl_multi,
            curl_lists,
            binds,
            stream_headers,
            status,
            peak_memory,
            cpu_us,
            attr_pool: _, // kept from request to request
        } = self;
        *on = false;
        *trace_id = [0; 16];
        *span_id = [0; 8];
        *parent = None;
        (*unix0, *mono0, *mono_end, *cpu0, *cpu_us, *peak_memory) = (0, 0, 0, 0, 0, 0);
        for s in [name, method, path, query, host, client, user_agent, script] {
            s.clear();
            if s.capacity() > 4096 {
                s.shrink_to(256);
            }
        }
        *scheme = "http";
        *cli = false;
        spans.clear();
        *dropped_spans = 0;
        open.clear();
        *errors = Errors::default();
        tree.clear();
        *sampled = false;
        conns.clear();
        curl_opts.clear();
        curl_multi.clear();
        curl_lists.clear();
        // Normally emptied at the end of the request. Left over only when that end did
        // not run: their PHP values went with that request's memory, so they are
        // forgotten (`Held` has no drop glue), not released.
        binds.clear();
        stream_headers.clear();
        *status = 0;
    }
}

/// Everything the extension keeps per process.
#[derive(Default)]
pub struct State {
    /// The current transaction.
    pub tx: Tx,
    /// The process whose slot and socket these are (forks change it).
    pub pid: i32,
    /// [`FORKS`] when `pid` was read: a different count means a new process.
    forks: Option<u32>,
    /// This process's active-transaction slot.
    pub slot: Option<SlotWriter<'static>>,
    /// The socket to the forwarder.
    pub sender: send::Sender,
    /// Encodes transactions into frames (buffers reused from request to request).
    pub encoder: otlp::Encoder,
    busy: bool,
}

thread_local! {
    static STATE: UnsafeCell<State> = UnsafeCell::new(State::default());
}

/// Runs `f` on the state unless it is already in use (re-entry); `None` then.
#[inline]
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|cell| {
        // SAFETY: single thread; the busy flag prevents a second &mut while one is live.
        let st = unsafe { &mut *cell.get() };
        if st.busy {
            return None;
        }
        st.busy = true;
        struct Clear(*mut State);
        impl Drop for Clear {
            fn drop(&mut self) {
                // SAFETY: same cell, still alive.
                unsafe { (*self.0).busy = false };
            }
        }
        let _clear = Clear(st);
        Some(f(st))
    })
}

fn force_idle() {
    // A fatal error (longjmp) inside a hook can leave the flag set: clear it per request.
    STATE.with(|cell| unsafe { (*cell.get()).busy = false });
}

/// Forks of this process image so far, counted in the child (`pthread_atfork`): a
/// request compares it with its state's instead of asking the kernel for its pid.
static FORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn forked() {
    FORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Counts forks from now on (module start, before php-fpm forks its workers).
pub fn watch_forks() {
    // glibc's `pthread_atfork` is linked in statically with this library's DSO handle
    // (`U __register_atfork` in `nm -D libtern.so`), so the handler is dropped if the
    // library is unloaded (a web server reloading PHP) and never called dangling.
    // SAFETY: registers a child handler that only increments an atomic.
    unsafe { libc::pthread_atfork(None, None, Some(forked)) };
}

/// Whether this is another process than the one `st` was last used in (its first
/// request, or a fork's); `st.pid` is then this process's.
fn new_process(st: &mut State) -> bool {
    let forks = FORKS.load(std::sync::atomic::Ordering::Relaxed);
    if st.forks == Some(forks) {
        return false;
    }
    st.forks = Some(forks);
    // SAFETY: getpid has no preconditions.
    st.pid = unsafe { libc::getpid() };
    true
}

static ACTIVE: std::sync::OnceLock<&'static ActiveMap> = std::sync::OnceLock::new();

/// Opens the active-transaction file and the frame rings next to it (module start,
/// before php-fpm forks).
pub fn open_active(config: &Config) {
    if config.active_path.is_empty() {
        return;
    }
    match ActiveMap::open(
        std::path::Path::new(&config.active_path),
        tern_php_wire::active::DEFAULT_SLOTS,
    ) {
        Ok(map) => {
            let _ = ACTIVE.set(Box::leak(Box::new(map)));
        }
        Err(e) => config::warn(&format!(
            "tern: active transactions will not be published: {e}"
        )),
    }
    let path = tern_php_wire::ring::path_for(std::path::Path::new(&config.active_path));
    match Rings::open(&path, tern_php_wire::active::DEFAULT_SLOTS) {
        Ok(rings) => {
            let _ = RINGS.set(Box::leak(Box::new(rings)));
        }
        Err(e) => config::warn(&format!(
            "tern: frames will go through the socket only: {e}"
        )),
    }
}

static RINGS: std::sync::OnceLock<&'static Rings> = std::sync::OnceLock::new();

/// The frame rings (next to the active-transaction file), when open.
fn rings() -> Option<&'static Rings> {
    RINGS.get().copied()
}

/// The active-transaction file, when open.
pub fn active() -> Option<&'static ActiveMap> {
    ACTIVE.get().copied()
}

fn cpu_us() -> u64 {
    // SAFETY: valid out-pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // This thread's: the one running the request (half the cost of the process's).
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// `dst` = the bytes as text (invalid UTF-8 replaced), empty for none; its allocation
/// reused.
fn set_lossy(dst: &mut String, b: Option<&[u8]>) {
    dst.clear();
    if let Some(b) = b {
        dst.push_str(&php::lossy(b));
    }
}

/// Parses a W3C `traceparent` (`00-<trace>-<span>-<flags>`).
pub fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8])> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let mut parts = s.split('-');
    let (version, trace, span, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let mut t = [0u8; 16];
    let mut p = [0u8; 8];
    hex_into(trace, &mut t)?;
    hex_into(span, &mut p)?;
    (t != [0; 16] && p != [0; 8]).then_some((t, p))
}

fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(())
}

/// Request start (RINIT).
pub fn begin(config: &Config, profiler: bool) {
    force_idle();
    with(|st| {
        if new_process(st) {
            let pid = st.pid;
            crate::hooks::install();
            crate::hooks::install_done();
            clock::reseed();
            st.sender = send::Sender::default();
            st.slot = active().and_then(|m| m.claim(pid).ok());
            st.sender.ring = st
                .slot
                .as_ref()
                .and_then(|s| rings()?.writer(s.index(), pid));
        }
        let tx = &mut st.tx;
        tx.reset();
        tx.on = true;
        tx.mono0 = clock::mono_ns();
        tx.unix0 = clock::unix_ns();
        tx.cpu0 = cpu_us();
        let (method, uri, query, translated) = php::request_info();
        tx.cli = php::sapi_name() == "cli" || method.is_none();
        set_lossy(&mut tx.method, method);
        // php-fpm's SG(request_info).request_uri is the script (SCRIPT_NAME), not the
        // request's URI: a front controller would name every request `/index.php`.
        let uri = php::request_var(c"REQUEST_URI").or(uri).unwrap_or_default();
        let path = uri.split(|&c| c == b'?').next().unwrap_or_default();
        set_lossy(&mut tx.path, Some(path));
        set_lossy(&mut tx.query, query);
        set_lossy(&mut tx.host, php::request_var(c"HTTP_HOST"));
        set_lossy(&mut tx.client, php::request_var(c"REMOTE_ADDR"));
        set_lossy(&mut tx.user_agent, php::request_var(c"HTTP_USER_AGENT"));
        tx.scheme = match php::request_var(c"HTTPS") {
            Some(v) if !v.is_empty() && v != b"off" => "https",
            _ => "http",
        };
        set_lossy(
            &mut tx.script,
            php::request_var(c"SCRIPT_NAME").or(translated),
        );
        config::service_name_into(&mut tx.service);
        if tx.cli {
            let script = if tx.script.is_empty() {
                "php-cli"
            } else {
                &tx.script
            };
            tx.name.push_str(script);
        } else {
            match config.naming {
                Naming::Script => tx.name.push_str(&tx.script),
                Naming::Uri | Naming::Framework => {
                    naming::collapse_ids_into(&tx.path, &mut tx.name)
                }
            }
        }
        match php::request_var(c"HTTP_TRACEPARENT").and_then(parse_traceparent) {
            Some((trace, parent)) => {
                tx.trace_id = trace;
                tx.parent = Some(parent);
            }
            None => tx.trace_id = clock::trace_id(),
        }
        tx.span_id = clock::span_id();
        tx.sampled = config.profile_sample > 0.0
            && (clock::rand_u64() as f64 / u64::MAX as f64) < config.profile_sample;
        if profiler && (tx.sampled || config.profile_threshold_ms > 0) {
            tx.tree.start(config.max_nodes, tx.mono0);
        }
        if let Some(slot) = &st.slot {
            let tx = &st.tx;
            let uri = if tx.cli { tx.script.as_bytes() } else { uri };
            slot.begin(&TxInfo {
                start_ns: tx.unix0,
                trace_id: tx.trace_id,
                span_id: tx.span_id,
                service: tx.service.as_bytes(),
                method: tx.method.as_bytes(),
                client: tx.client.as_bytes(),
                uri,
            });
        }
    });
}

/// Request end (RSHUTDOWN): finish, encode, send, release the slot.
pub fn end(config: &Config) {
    force_idle();
    with(|st| {
        let tx = &mut st.tx;
        if !tx.on {
            return;
        }
        let now = clock::mono_ns();
        tx.mono_end = now;
        // Bound variables are given back while the engine still runs (see `Tx::reset`).
        for b in tx.binds.drain(..) {
            b.value.release();
        }
        for open in std::mem::take(&mut tx.open) {
            crate::hooks::abandon(tx, open, now);
        }
        for (_, open) in std::mem::take(&mut tx.curl_multi) {
            crate::hooks::abandon(tx, open, now);
        }
        tx.tree.close_all(now);
        tx.status = php::http_status();
        tx.peak_memory = php::peak_memory();
        tx.cpu_us = cpu_us().saturating_sub(tx.cpu0);
        let elapsed_ms = now.saturating_sub(tx.mono0) / 1_000_000;
        let keep_tree = tx.tree.on
            && (tx.sampled
                || (config.profile_threshold_ms > 0 && elapsed_ms >= config.profile_threshold_ms));
        // A `pcntl_fork()` child ends the request it inherited: it must not write into
        // the parent's socket stream or slot.
        if new_process(st) {
            st.sender = send::Sender::default(); // closing the inherited copy is harmless
            st.slot = None;
        }
        let dump = config::debug_dump();
        let sender = &mut st.sender;
        st.encoder.encode(&mut st.tx, keep_tree, st.pid, |frame| {
            if let Some(path) = &dump {
                otlp::dump(frame, path);
            }
            let timer = crate::overhead::start();
            let sent = sender.send(&config.socket, frame);
            timer.stop(crate::overhead::Phase::Send);
            sent
        });
        let tx = &mut st.tx;
        if let Some(slot) = &st.slot {
            slot.end();
        }
        tx.on = false;
        tx.tree.clear();
        tx.conns.clear();
        tx.curl_opts.clear();
        // Transfers that never finished (exit inside one, a multi handle never read)
        // still hold our header list: taken off before it is freed.
        for list in tx.curl_lists.drain(..) {
            if list.attached {
                crate::hooks::libcurl::clear_headers_of(list.handle);
            }
        }
    });
}

/// Longest transaction name taken from the application.
const MAX_NAME: usize = 256;

/// Names the current transaction (see `tern_set_transaction_name`); false when none is
/// being recorded or the name is empty.
pub fn set_name(name: &[u8]) -> bool {
    let name = String::from_utf8_lossy(name);
    let name = name.trim();
    if name.is_empty() {
        return false;
    }
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    with(|st| {
        if !st.tx.on {
            return false;
        }
        st.tx.name = name[..end].to_string();
        true
    })
    .unwrap_or(false)
}

/// Publishes the current activity into the active slot.
pub fn set_activity(st: &State, kind: tern_php_wire::ActivityKind, start_unix: u64, text: &[u8]) {
    if let Some(slot) = &st.slot {
        slot.set_activity(kind, start_unix, text);
    }
}

/// Clears the current activity.
pub fn clear_activity(st: &State) {
    if let Some(slot) = &st.slot {
        slot.clear_activity();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued_and_bad_ones_are_ignored() {
        let (t, p) =
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t[0], 0x4b);
        assert_eq!(p[7], 0xb7);
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"[..],
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
            b"",
        ] {
            assert!(
                parse_traceparent(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
