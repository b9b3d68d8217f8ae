//! Owned wrappers around the engine's raw results and argument arrays.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use crate::engine::Stats;
use crate::error::Error;
use crate::ffi::{self, Api};
use crate::sql;

pub(crate) fn version(api: &Api) -> String {
    // SAFETY: chdb_version returns a static NUL-terminated string.
    unsafe { c_message((api.version)()) }.unwrap_or_default()
}

/// Copies a NUL-terminated message from the engine, if any.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn c_message(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    let text = unsafe { CStr::from_ptr(ptr) }.to_string_lossy();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Parameter name/value arrays in the shape `chdb_*_with_params_n` takes.
pub(crate) struct Params<'a> {
    pub(crate) names: Vec<*const c_char>,
    pub(crate) name_lens: Vec<usize>,
    pub(crate) values: Vec<*const c_char>,
    pub(crate) value_lens: Vec<usize>,
    _source: &'a [(String, String)],
}

impl<'a> Params<'a> {
    pub(crate) fn new(params: &'a [(String, String)]) -> Result<Self, Error> {
        for (name, _) in params {
            if !sql::is_plain_name(name) {
                return Err(Error::InvalidArgument(format!(
                    "bad parameter name {name:?}"
                )));
            }
        }
        Ok(Self {
            names: params.iter().map(|(n, _)| n.as_ptr().cast()).collect(),
            name_lens: params.iter().map(|(n, _)| n.len()).collect(),
            values: params.iter().map(|(_, v)| v.as_ptr().cast()).collect(),
            value_lens: params.iter().map(|(_, v)| v.len()).collect(),
            _source: params,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Calls a `chdb_*_with_params_n` function with `sql`, `format` and these parameters.
    ///
    /// # Safety
    /// `conn` must be a live connection that the caller holds for the call.
    pub(crate) unsafe fn call<R>(
        &self,
        f: ffi::WithParamsN<R>,
        conn: ffi::Connection,
        sql: &[u8],
        format: &str,
    ) -> R {
        // SAFETY: every pointer/length pair borrows a buffer that outlives the call.
        unsafe {
            f(
                conn,
                sql.as_ptr().cast(),
                sql.len(),
                format.as_ptr().cast(),
                format.len(),
                self.names.as_ptr(),
                self.name_lens.as_ptr(),
                self.values.as_ptr(),
                self.value_lens.as_ptr(),
                self.len(),
            )
        }
    }
}

/// An owned `chdb_result *`, destroyed on drop.
pub(crate) struct RawResult {
    pub(crate) api: &'static Api,
    pub(crate) raw: ffi::ResultPtr,
}

// SAFETY: a result is plain memory owned by whoever holds the pointer.
unsafe impl Send for RawResult {}

impl RawResult {
    pub(crate) fn new(api: &'static Api, raw: ffi::ResultPtr) -> Result<Self, Error> {
        if raw.is_null() {
            Err(Error::clickhouse("chDB returned no result"))
        } else {
            Ok(Self { api, raw })
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        // SAFETY: `raw` is a live result.
        match unsafe { c_message((self.api.result_error)(self.raw)) } {
            Some(message) => Err(Error::clickhouse(message)),
            None => Ok(()),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let api = self.api;
        let raw = self.raw;
        // SAFETY: `raw` is a live result; the getters only read it.
        unsafe {
            Stats {
                elapsed: Duration::from_secs_f64((api.result_elapsed)(raw).max(0.0)),
                result_rows: (api.result_rows_read)(raw),
                result_bytes: (api.result_bytes_read)(raw),
                read_rows: (api.result_storage_rows_read)(raw),
                read_bytes: (api.result_storage_bytes_read)(raw),
                written_rows: (api.result_rows_written)(raw),
                written_bytes: (api.result_bytes_written)(raw),
            }
        }
    }
}

impl AsRef<[u8]> for RawResult {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the buffer lives as long as the result and is `length` bytes long.
        unsafe {
            let ptr = (self.api.result_buffer)(self.raw);
            let len = (self.api.result_length)(self.raw);
            if ptr.is_null() || len == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(ptr.cast::<u8>(), len)
            }
        }
    }
}

impl Drop for RawResult {
    fn drop(&mut self) {
        // SAFETY: destroyed exactly once.
        unsafe { (self.api.destroy_query_result)(self.raw) };
    }
}
