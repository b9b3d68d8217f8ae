//! The normalize stage: turns what agents send into Tern's one vocabulary, cheaply.
//!
//! Between ingest and aggregation every span passes through here, so everything is a pure
//! function (or, for the cardinality guard, a lock-light shared set), with no regex and no
//! allocation beyond the value returned. At 100k+ spans/s on two cores these run per span.
//!
//! - [`semconv`]: old and new OpenTelemetry attribute names mapped to one [`Field`] each,
//!   plus the span predicates built on them ([`is_sql`], [`is_external`],
//!   [`external_target`]).
//! - [`sql`]: SQL text to a [`Fingerprint`]: literals out, canonical form, stable hash; so
//!   SQL statistics group by statement shape and never store values.
//! - [`endpoint`]: transaction names from `http.route`, normalized paths or span names,
//!   and the [`CardinalityGuard`] that bounds them per service.
//! - [`hash64`]: the stable hash used for fingerprints.

pub mod endpoint;
mod hash;
pub mod semconv;
pub mod sql;
mod table;

pub use endpoint::{endpoint_name, normalize_path, CardinalityGuard};
pub use hash::hash64;
pub use semconv::{external_target, int_of, is_external, is_sql, lookup, str_of, Attrs, Field};
pub use sql::{fingerprint, fingerprint_with, main_table, operation, Dialect, Fingerprint};
