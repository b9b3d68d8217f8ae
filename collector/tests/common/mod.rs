//! The workspace's test harness, plus OTLP request builders for the collector's tests.
#![allow(dead_code, unused_imports)]

pub mod otlp;

pub use tern_testkit::*;
