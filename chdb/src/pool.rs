//! The connection pool: one chDB connection runs one statement at a time, so concurrent
//! statements each borrow their own. A connection remembers the database and settings
//! it was left with; a statement that changes them behind our back retires it.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use crate::engine::QueryOptions;
use crate::error::Error;
use crate::ffi::{self, Api};
use crate::raw::{Params, RawResult};
use crate::sql;

/// The connections of one engine.
pub(crate) struct Pool {
    pub(crate) api: &'static Api,
    path: PathBuf,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
    /// Never closed: closing the last connection shuts the engine down, and chDB is meant
    /// to boot once per process.
    _keeper: Conn,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

impl Pool {
    /// Boots the engine on `path` by opening its first connection.
    pub(crate) fn open(api: &'static Api, path: PathBuf, max: usize) -> Result<Self, Error> {
        let keeper = Conn::connect(api, &path)?;
        Ok(Self {
            api,
            path,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            _keeper: keeper,
        })
    }

    /// The data directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Lends a connection, opening one when under the limit, else waiting for one.
    pub(crate) fn acquire(self: &Arc<Self>) -> Result<PooledConn, Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(PooledConn::new(self.clone(), conn));
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match Conn::connect(self.api, &self.path) {
                    Ok(conn) => Ok(PooledConn::new(self.clone(), conn)),
                    Err(err) => {
                        self.state.lock().unwrap_or_else(|e| e.into_inner()).open -= 1;
                        self.freed.notify_one();
                        Err(err)
                    }
                };
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// One chDB connection and what we changed on it.
struct Conn {
    api: &'static Api,
    raw: *mut ffi::Connection,
    /// The database `USE`d on it.
    database: String,
    /// Settings `SET` on it, to put back to their defaults before the next statement.
    dirty: Vec<String>,
}

// SAFETY: a chDB connection may be used from any thread, one statement at a time; the
// pool hands each to one user at a time.
unsafe impl Send for Conn {}
// SAFETY: `Conn` exposes no method taking `&self` that touches the connection.
unsafe impl Sync for Conn {}

impl Conn {
    fn connect(api: &'static Api, path: &Path) -> Result<Conn, Error> {
        let open_error = |message: String| Error::Open {
            path: path.to_path_buf(),
            message,
        };
        let arg0 = CString::new("clickhouse").expect("no NUL");
        let arg1 = CString::new(format!("--path={}", path.display()))
            .map_err(|_| open_error("path contains NUL".into()))?;
        let mut argv = [arg0.as_ptr().cast_mut(), arg1.as_ptr().cast_mut()];
        // SAFETY: argv holds two NUL-terminated strings that outlive the call.
        let raw = unsafe { (api.connect)(argv.len() as i32, argv.as_mut_ptr()) };
        // SAFETY: a non-null result points to a connection handle.
        if raw.is_null() || unsafe { (*raw).is_null() } {
            return Err(open_error(
                "chdb_connect failed (is another process using this data directory?)".into(),
            ));
        }
        Ok(Conn {
            api,
            raw,
            database: "default".into(),
            dirty: Vec::new(),
        })
    }

    fn handle(&self) -> ffi::Connection {
        // SAFETY: `raw` is a live connection handle until `close`.
        unsafe { *self.raw }
    }

    /// Runs a statement of ours (USE, SET) and discards its output.
    fn run(&mut self, sql: &str) -> Result<(), Error> {
        let api = self.api;
        // SAFETY: the connection is live until `close`.
        let raw = unsafe {
            Params::new(&[])?.call(
                api.query_with_params_n,
                self.handle(),
                sql.as_bytes(),
                "TSV",
            )
        };
        RawResult::new(api, raw)?.check()
    }

    fn is_read_only(&self, sql: &[u8]) -> bool {
        let mut analysis = ffi::QueryAnalysis {
            struct_size: std::mem::size_of::<ffi::QueryAnalysis>() as u32,
            ..Default::default()
        };
        // SAFETY: `analysis` is a properly sized out-struct; `sql` outlives the call.
        let state = unsafe {
            (self.api.classify_query_n)(
                self.handle(),
                sql.as_ptr().cast(),
                sql.len(),
                std::ptr::null(),
                0,
                &mut analysis,
            )
        };
        // Text that does not parse cannot write; let the engine report its syntax error.
        state == ffi::CHDB_SUCCESS
            && (analysis.statement_count == 0 || analysis.query_class == ffi::QUERY_CLASS_READ_ONLY)
    }

    fn close(self) {
        // SAFETY: `raw` came from chdb_connect and is closed once; the keeper stays open.
        unsafe { (self.api.close_conn)(self.raw) };
    }
}

/// A connection lent by the pool; returned (or closed, when its session state is no
/// longer known) on drop.
pub(crate) struct PooledConn {
    pool: Arc<Pool>,
    conn: Option<Conn>,
    poisoned: bool,
}

impl PooledConn {
    fn new(pool: Arc<Pool>, conn: Conn) -> Self {
        Self {
            pool,
            conn: Some(conn),
            poisoned: false,
        }
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until drop")
    }

    pub(crate) fn api(&self) -> &'static Api {
        self.pool.api
    }

    pub(crate) fn handle(&mut self) -> ffi::Connection {
        self.conn().handle()
    }

    /// Puts the connection in the state `options` asks for: database, settings, and the
    /// read-only check.
    pub(crate) fn prepare(&mut self, sql: &[u8], options: &QueryOptions) -> Result<(), Error> {
        if options.read_only && !self.conn().is_read_only(sql) {
            return Err(Error::clickhouse(
                "Code: 164. DB::Exception: Cannot execute query in readonly mode. (READONLY)",
            ));
        }
        let database = options.database.as_deref().unwrap_or("default");
        if self.conn().database != database {
            self.conn()
                .run(&format!("USE {}", sql::quote_identifier(database)))?;
            self.conn().database = database.to_owned();
        }
        let conn = self.conn();
        let mut assignments = Vec::new();
        for name in &conn.dirty {
            if !options.settings.iter().any(|(n, _)| n == name) {
                assignments.push(format!("{name} = DEFAULT"));
            }
        }
        for (name, value) in &options.settings {
            if !sql::is_plain_name(name) {
                return Err(Error::InvalidArgument(format!("bad setting name {name:?}")));
            }
            assignments.push(format!("{name} = {}", sql::quote_string(value)));
        }
        if assignments.is_empty() {
            return Ok(());
        }
        let result = conn.run(&format!("SET {}", assignments.join(", ")));
        conn.dirty = options.settings.iter().map(|(n, _)| n.clone()).collect();
        if result.is_err() {
            // Part of the SET may have applied; start the next user on a fresh connection.
            self.poisoned = true;
        }
        result
    }

    /// Notes a statement that changed session state behind our back (`SET`, `USE`, …):
    /// the connection is closed instead of being lent again.
    pub(crate) fn after(&mut self, sql: &[u8]) {
        if let Some(keyword) = sql::leading_keyword(sql) {
            if matches!(keyword.as_str(), "SET" | "USE") {
                self.poisoned = true;
            }
        }
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut state = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.poisoned {
            state.open -= 1;
            drop(state);
            conn.close();
        } else {
            state.idle.push(conn);
            drop(state);
        }
        self.pool.freed.notify_one();
    }
}
