//! The chDB C API (`chdb.h` of chDB 26.7), resolved from `libchdb.so` at run time.
//!
//! Only the entry points Tern uses are bound. The library is loaded once per process and
//! never unloaded: unloading it while engine threads run crashes at exit.

use std::ffi::{c_char, c_double, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::Library;

use crate::error::Error;

/// `chdb_connection`: an opaque handle; `chdb_connect` returns a pointer to one.
pub(crate) type Connection = *mut c_void;
/// `chdb_result *`: a query result, a streaming query, or insert statistics.
pub(crate) type ResultPtr = *mut c_void;
/// `chdb_insert_stream`: an opaque streaming-INSERT handle.
pub(crate) type InsertStream = *mut c_void;

/// `CHDBSuccess` of `chdb_state`.
pub(crate) const CHDB_SUCCESS: c_int = 0;

/// `chdb_query_analysis_v1`, filled by `chdb_classify_query_n`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct QueryAnalysis {
    pub struct_size: u32,
    pub statement_count: u32,
    pub flags: u32,
    pub query_class: u32,
}

/// `CHDB_QUERY_READ_ONLY` of `chdb_query_class`.
pub(crate) const QUERY_CLASS_READ_ONLY: u32 = 0;

/// The resolved entry points. Plain function pointers, valid for the whole process.
#[allow(clippy::type_complexity)]
pub(crate) struct Api {
    pub path: PathBuf,
    pub version: unsafe extern "C" fn() -> *const c_char,
    pub set_signal_handlers_enabled: unsafe extern "C" fn(c_int),
    pub connect: unsafe extern "C" fn(c_int, *mut *mut c_char) -> *mut Connection,
    pub close_conn: unsafe extern "C" fn(*mut Connection),
    pub query_with_params_n: WithParamsN<ResultPtr>,
    pub stream_query_with_params_n: WithParamsN<ResultPtr>,
    pub stream_fetch_result: unsafe extern "C" fn(Connection, ResultPtr) -> ResultPtr,
    pub stream_cancel_query: unsafe extern "C" fn(Connection, ResultPtr),
    pub destroy_query_result: unsafe extern "C" fn(ResultPtr),
    pub stream_insert_with_params_n: WithParamsN<InsertStream>,
    pub stream_append: unsafe extern "C" fn(InsertStream, *const c_void, usize) -> c_int,
    pub stream_done: unsafe extern "C" fn(InsertStream) -> ResultPtr,
    pub stream_cancel_insert: unsafe extern "C" fn(InsertStream),
    pub stream_insert_error: unsafe extern "C" fn(InsertStream) -> *const c_char,
    pub destroy_insert_stream: unsafe extern "C" fn(InsertStream),
    pub result_buffer: unsafe extern "C" fn(ResultPtr) -> *mut c_char,
    pub result_length: unsafe extern "C" fn(ResultPtr) -> usize,
    pub result_elapsed: unsafe extern "C" fn(ResultPtr) -> c_double,
    pub result_rows_read: unsafe extern "C" fn(ResultPtr) -> u64,
    pub result_bytes_read: unsafe extern "C" fn(ResultPtr) -> u64,
    pub result_storage_rows_read: unsafe extern "C" fn(ResultPtr) -> u64,
    pub result_storage_bytes_read: unsafe extern "C" fn(ResultPtr) -> u64,
    pub result_rows_written: unsafe extern "C" fn(ResultPtr) -> u64,
    pub result_bytes_written: unsafe extern "C" fn(ResultPtr) -> u64,
    pub result_error: unsafe extern "C" fn(ResultPtr) -> *const c_char,
    pub classify_query_n: unsafe extern "C" fn(
        Connection,
        *const c_char,
        usize,
        *const c_char,
        usize,
        *mut QueryAnalysis,
    ) -> c_int,
}

static API: OnceLock<&'static Api> = OnceLock::new();

/// Loads the library at `path` once per process; later calls return the loaded one, or
/// an error when they name another file.
pub(crate) fn load(path: &Path) -> Result<&'static Api, Error> {
    if let Some(api) = API.get() {
        return check_same(api, path);
    }
    // Loading twice concurrently would only leak a second mapping; serialize anyway.
    static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(api) = API.get() {
        return check_same(api, path);
    }
    if !path.is_file() {
        return Err(Error::LibraryNotFound {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: libchdb.so runs no unsound initializers; it is the library chDB ships.
    let library = unsafe { Library::new(path) }.map_err(|source| Error::LibraryLoad {
        path: path.to_path_buf(),
        message: source.to_string(),
    })?;
    // Never unloaded: see the module docs.
    let library: &'static Library = Box::leak(Box::new(library));
    let api: &'static Api = Box::leak(Box::new(resolve(library, path)?));
    // SAFETY: called before any connection exists; keeps SIGINT/SIGTERM and the fatal
    // signals with the host process.
    unsafe { (api.set_signal_handlers_enabled)(0) };
    let _ = API.set(api);
    Ok(api)
}

fn check_same(api: &'static Api, path: &Path) -> Result<&'static Api, Error> {
    if same_file(&api.path, path) {
        Ok(api)
    } else {
        Err(Error::LibraryMismatch {
            loaded: api.path.clone(),
            requested: path.to_path_buf(),
        })
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn resolve(library: &'static Library, path: &Path) -> Result<Api, Error> {
    macro_rules! sym {
        ($name:literal) => {{
            // SAFETY: the field's type is the signature `chdb.h` declares for the symbol.
            let symbol =
                unsafe { library.get(concat!($name, "\0").as_bytes()) }.map_err(|source| {
                    Error::LibraryLoad {
                        path: path.to_path_buf(),
                        message: format!("missing symbol {}: {source}", $name),
                    }
                })?;
            *symbol
        }};
    }
    Ok(Api {
        path: path.to_path_buf(),
        version: sym!("chdb_version"),
        set_signal_handlers_enabled: sym!("chdb_set_signal_handlers_enabled"),
        connect: sym!("chdb_connect"),
        close_conn: sym!("chdb_close_conn"),
        query_with_params_n: sym!("chdb_query_with_params_n"),
        stream_query_with_params_n: sym!("chdb_stream_query_with_params_n"),
        stream_fetch_result: sym!("chdb_stream_fetch_result"),
        stream_cancel_query: sym!("chdb_stream_cancel_query"),
        destroy_query_result: sym!("chdb_destroy_query_result"),
        stream_insert_with_params_n: sym!("chdb_stream_insert_with_params_n"),
        stream_append: sym!("chdb_stream_append"),
        stream_done: sym!("chdb_stream_done"),
        stream_cancel_insert: sym!("chdb_stream_cancel_insert"),
        stream_insert_error: sym!("chdb_stream_insert_error"),
        destroy_insert_stream: sym!("chdb_destroy_insert_stream"),
        result_buffer: sym!("chdb_result_buffer"),
        result_length: sym!("chdb_result_length"),
        result_elapsed: sym!("chdb_result_elapsed"),
        result_rows_read: sym!("chdb_result_rows_read"),
        result_bytes_read: sym!("chdb_result_bytes_read"),
        result_storage_rows_read: sym!("chdb_result_storage_rows_read"),
        result_storage_bytes_read: sym!("chdb_result_storage_bytes_read"),
        result_rows_written: sym!("chdb_result_rows_written"),
        result_bytes_written: sym!("chdb_result_bytes_written"),
        result_error: sym!("chdb_result_error"),
        classify_query_n: sym!("chdb_classify_query_n"),
    })
}
/// The shape every `chdb_*_with_params_n` function shares: (connection, sql, sql_len,
/// format, format_len, param names, name lengths, param values, value lengths, param
/// count) -> a result or stream handle `R`.
pub type WithParamsN<R> = unsafe extern "C" fn(
    Connection,
    *const c_char,
    usize,
    *const c_char,
    usize,
    *const *const c_char,
    *const usize,
    *const *const c_char,
    *const usize,
    usize,
) -> R;
