//! The embedded ClickHouse engine: `libchdb.so` loaded once, a data directory opened once
//! per process, and a pool of chDB connections so that queries and inserts run side by
//! side (one chDB connection runs one statement at a time).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;
use crate::ffi;
use crate::pool::{Pool, PooledConn};
use crate::raw::{version, Params, RawResult};
use crate::sql;
use crate::stream::{InsertStream, QueryStream};

/// The chDB release Tern is built and tested against (npm `@chdb/lib-linux-x64-gnu`).
pub const CHDB_VERSION: &str = "26.7.3-stable.1";

/// Where `scripts/setup.sh` puts `libchdb.so`:
/// `$XDG_CACHE_HOME/tern/chdb/<CHDB_VERSION>/libchdb.so`, else under `$HOME/.cache`.
pub fn default_lib_path() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"));
    cache
        .join("tern")
        .join("chdb")
        .join(CHDB_VERSION)
        .join("libchdb.so")
}

/// The library to load: `explicit`, else `$TERN_CHDB_LIB`, else [`default_lib_path`].
pub fn resolve_lib_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("TERN_CHDB_LIB")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(default_lib_path)
}

/// How to open the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The data directory (created if missing). One per process.
    pub path: PathBuf,
    /// `libchdb.so`; `None` resolves with [`resolve_lib_path`].
    pub lib: Option<PathBuf>,
    /// Most chDB connections open at once, i.e. statements running at once. Callers
    /// beyond it wait for a free connection. Default: 16.
    pub max_connections: usize,
}

impl EngineOptions {
    /// Options for `path` with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lib: None,
            max_connections: 16,
        }
    }
}

/// The context of one statement, as the HTTP interface gives it.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// The current database; `None` is `default`.
    pub database: Option<String>,
    /// Settings for this statement only (`max_threads` → `4`).
    pub settings: Vec<(String, String)>,
    /// Values for `{name:Type}` placeholders, by name (without `param_`).
    pub params: Vec<(String, String)>,
    /// Refuse anything but reading statements (ClickHouse's `READONLY`, code 164).
    pub read_only: bool,
}

/// What the engine reports about a finished statement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Time the engine spent.
    pub elapsed: Duration,
    /// Rows in the result.
    pub result_rows: u64,
    /// Bytes of the result, in the engine's internal representation.
    pub result_bytes: u64,
    /// Rows read from storage.
    pub read_rows: u64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Rows written (inserts, including materialized views).
    pub written_rows: u64,
    /// Bytes written.
    pub written_bytes: u64,
}

/// A finished query: its formatted output and statistics.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The result in the requested output format; shares the engine's buffer.
    pub data: Bytes,
    /// What the engine reported.
    pub stats: Stats,
}

/// The embedded engine on one data directory. Cheap to clone, `Send + Sync`; every method
/// blocks the calling thread while the engine works (use `spawn_blocking` from async).
///
/// ```no_run
/// let engine = tern_chdb::Engine::open("/var/lib/tern/data")?;
/// let out = engine.query("SELECT version()", "TSV")?;
/// assert!(!out.data.is_empty());
/// # Ok::<(), tern_chdb::Error>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    pool: Arc<Pool>,
}

/// The engine of this process, once opened: chDB runs one data directory per process.
static OPEN: Mutex<Option<Engine>> = Mutex::new(None);

impl Engine {
    /// Opens `path` with default options (see [`EngineOptions`]).
    pub fn open(path: impl Into<PathBuf>) -> Result<Engine, Error> {
        Self::open_with(EngineOptions::new(path))
    }

    /// Opens the engine, or returns the one this process already runs on the same data
    /// directory. Another directory is an error: chDB serves one per process.
    pub fn open_with(options: EngineOptions) -> Result<Engine, Error> {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(&options.path).map_err(|e| Error::Open {
            path: options.path.clone(),
            message: e.to_string(),
        })?;
        let path = options.path.canonicalize().map_err(|e| Error::Open {
            path: options.path.clone(),
            message: e.to_string(),
        })?;
        if let Some(engine) = open.as_ref() {
            return if engine.pool.path() == path {
                Ok(engine.clone())
            } else {
                Err(Error::AlreadyOpen {
                    open: engine.pool.path().to_path_buf(),
                    requested: path,
                })
            };
        }
        let api = ffi::load(&resolve_lib_path(options.lib.as_deref()))?;
        let started = std::time::Instant::now();
        let pool = Pool::open(api, path, options.max_connections)?;
        tracing::info!(
            path = %pool.path().display(),
            version = %version(api),
            startup_ms = started.elapsed().as_millis() as u64,
            "chdb engine opened"
        );
        let engine = Engine {
            pool: Arc::new(pool),
        };
        *open = Some(engine.clone());
        Ok(engine)
    }

    /// The data directory, canonical.
    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// The engine's version string (`chdb_version`), e.g. `26.7.3`.
    pub fn version(&self) -> String {
        version(self.pool.api)
    }

    /// Runs `sql` in the `default` database and returns its output in `format`
    /// (`TSV`, `RowBinaryWithNamesAndTypes`, `JSON`, …).
    pub fn query(&self, sql: &str, format: &str) -> Result<QueryOutput, Error> {
        self.query_with(sql, format, &QueryOptions::default())
    }

    /// Runs `sql` (any statement, including `INSERT … VALUES` with inline data) with
    /// `options`, and returns the whole output in `format`.
    pub fn query_with(
        &self,
        sql: impl AsRef<[u8]>,
        format: &str,
        options: &QueryOptions,
    ) -> Result<QueryOutput, Error> {
        let (_conn, result) = self.start(
            sql.as_ref(),
            format,
            options,
            self.pool.api.query_with_params_n,
        )?;
        let stats = result.stats();
        Ok(QueryOutput {
            data: Bytes::from_owner(result),
            stats,
        })
    }

    /// Starts `sql` and returns its output chunk by chunk (about a block each) instead of
    /// all at once; the statement holds a connection until the stream ends or is dropped
    /// (which cancels it). Only formats whose chunks concatenate are accepted (see
    /// [`is_streamable_format`]); for `RowBinaryWithNames[AndTypes]` the header is kept
    /// on the first chunk only.
    pub fn query_stream(
        &self,
        sql: impl AsRef<[u8]>,
        format: &str,
        options: &QueryOptions,
    ) -> Result<QueryStream, Error> {
        if !is_streamable_format(format) {
            return Err(Error::InvalidArgument(format!(
                "format {format} cannot be streamed in chunks"
            )));
        }
        let api = self.pool.api;
        // The handle is destroyed by `QueryStream`.
        let (conn, handle) = self.start(
            sql.as_ref(),
            format,
            options,
            api.stream_query_with_params_n,
        )?;
        Ok(QueryStream::new(conn, handle, format))
    }

    /// Runs `sql` on a pooled connection through `call` (whole or streaming query) and
    /// returns the connection with the checked result.
    fn start(
        &self,
        sql: &[u8],
        format: &str,
        options: &QueryOptions,
        call: ffi::WithParamsN<ffi::ResultPtr>,
    ) -> Result<(PooledConn, RawResult), Error> {
        let mut conn = self.pool.acquire()?;
        conn.prepare(sql, options)?;
        let params = Params::new(&options.params)?;
        // SAFETY: the connection is ours until dropped.
        let raw = unsafe { params.call(call, conn.handle(), sql, format) };
        conn.after(sql);
        let result = RawResult::new(self.pool.api, raw)?;
        result.check()?;
        Ok((conn, result))
    }

    /// Inserts `data`, encoded in the format that `sql` names
    /// (`INSERT INTO t (a, b) FORMAT RowBinary`), in the `default` database.
    pub fn insert(&self, sql: &str, data: &[u8]) -> Result<Stats, Error> {
        let mut stream = self.insert_stream(sql, &QueryOptions::default())?;
        stream.append(data)?;
        stream.finish()
    }

    /// Starts a streaming insert: `sql` is `INSERT … FORMAT name`, and the data in that
    /// format follows through [`InsertStream::append`] in chunks of any size.
    pub fn insert_stream(&self, sql: &str, options: &QueryOptions) -> Result<InsertStream, Error> {
        let split = sql::split_insert_format(sql.as_bytes()).ok_or_else(|| {
            Error::InvalidArgument("an insert must be INSERT … FORMAT <name>".into())
        })?;
        let mut conn = self.pool.acquire()?;
        conn.prepare(split.head.as_bytes(), options)?;
        let params = Params::new(&options.params)?;
        let api = self.pool.api;
        let (head, format) = (split.head, split.format);
        // SAFETY: the connection is ours until dropped; the handle is destroyed by
        // `InsertStream`.
        let raw = unsafe {
            params.call(
                api.stream_insert_with_params_n,
                conn.handle(),
                head.as_bytes(),
                format,
            )
        };
        if raw.is_null() {
            return Err(Error::clickhouse("chdb_stream_insert returned no handle"));
        }
        let mut stream = InsertStream::new(conn, raw)?;
        if !split.data.is_empty() {
            stream.append(split.data)?;
        }
        Ok(stream)
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.pool.path())
            .field("lib", &self.pool.api.path)
            .finish()
    }
}

/// Whether results in `format` can be streamed in chunks that simply concatenate.
pub fn is_streamable_format(format: &str) -> bool {
    const FORMATS: &[&str] = &[
        "RowBinary",
        "RowBinaryWithNames",
        "RowBinaryWithNamesAndTypes",
        "Native",
        "TabSeparated",
        "TSV",
        "TabSeparatedRaw",
        "TSVRaw",
        "CSV",
        "JSONEachRow",
        "JSONLines",
        "NDJSON",
        "JSONCompactEachRow",
        "JSONStringsEachRow",
    ];
    FORMATS.contains(&format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_streamable_formats() {
        assert!(is_streamable_format("RowBinaryWithNamesAndTypes"));
        assert!(!is_streamable_format("JSON"));
    }

    #[test]
    fn a_missing_library_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = EngineOptions {
            lib: Some("/nonexistent/libchdb.so".into()),
            ..EngineOptions::new(dir.path())
        };
        let err = Engine::open_with(options).unwrap_err();
        assert!(matches!(err, Error::LibraryNotFound { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "chDB library not found at /nonexistent/libchdb.so; \
             run scripts/setup.sh or set TERN_CHDB_LIB"
        );
    }

    #[test]
    fn default_lib_path_names_the_pinned_version() {
        assert!(default_lib_path().ends_with(format!("{CHDB_VERSION}/libchdb.so")));
    }
}
