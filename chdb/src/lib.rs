//! Tern's embedded ClickHouse: the chDB engine (`libchdb.so`) loaded at run time
//! ([`Engine`]) and a ClickHouse-HTTP front over it ([`Front`]), so that the
//! `clickhouse` crate and any ClickHouse tool talk to the embedded store exactly as they
//! would to a server.

mod body;
mod compress;
mod engine;
mod error;
mod ffi;
mod front;
mod pool;
mod protocol;
mod raw;
pub mod sql;
mod stream;

pub use engine::{
    default_lib_path, is_streamable_format, resolve_lib_path, Engine, EngineOptions, QueryOptions,
    QueryOutput, Stats, CHDB_VERSION,
};
pub use error::Error;
pub use front::{Front, FrontConfig};
pub use stream::{InsertStream, QueryStream};

/// Ends the process without running C++ static destructors, after an orderly shutdown.
///
/// The engine is never closed (closing it shuts ClickHouse down for the process), so at
/// `exit()` its static destructors run while its own background threads (merges, flushes)
/// may still be working, which can crash the process on its way out. Everything inserted
/// is already durable on disk when an insert returns, so a process that has finished its
/// own shutdown leaves with `_exit`: no destructors, the kernel releases the data
/// directory's lock.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}
