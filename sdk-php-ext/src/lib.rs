//! Tern's PHP agent: the `tern` extension (`libtern.so`).
//!
//! Modules: INI settings ([`config`]), the transaction of a request ([`request`]), the
//! observers and one instrumentation module per library ([`hooks`]), the call tree
//! ([`tree`]), OTLP encoding ([`otlp`]), the socket ([`send`]), starting the forwarder
//! ([`spawn`]). `module.rs` wires them into PHP's module entry, with four PHP functions
//! for tests and diagnostics: `tern_stats()`, `tern_decode_frame()`,
//! `tern_active_snapshot()`, `tern_extension_path()`.

#![allow(clippy::missing_safety_doc)]

pub mod clock;
pub mod config;
pub mod db;
pub mod hooks;
pub mod naming;
pub mod otlp;
pub mod overhead;
pub mod php;
pub mod request;
pub mod send;
pub mod spawn;
pub mod tree;

// The PHP module itself; left out of unit-test builds, which run without PHP.
#[cfg(not(test))]
mod module;
