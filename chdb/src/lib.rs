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
