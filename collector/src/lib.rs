//! Tern's collector: ingest (OTLP gRPC/HTTP, tern.v1 live state) → normalize (semantic
//! conventions, SQL fingerprints, endpoint names) → write-ahead log → store writer
//! (ClickHouse, embedded or server) → query API. See docs/architecture.md.

pub mod aggregate;
pub mod ingest;
pub mod model;
pub mod normalize;
pub mod query;
pub mod server;
pub mod store;
pub mod ui;
