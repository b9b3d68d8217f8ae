//! `tern-loadgen`: realistic OTLP trace traffic for demos, benchmarks and tests.
//!
//! The traffic model ([`Mix`]) is a small shop application of five services
//! (`shop-frontend` → `order-service` → `payment-service`, `inventory-service`, and a
//! Kafka consumer `notification-worker`) whose transactions produce SERVER/CONSUMER entry
//! spans, nested INTERNAL method spans, SQL and HTTP CLIENT spans with varying literals
//! and ids, cross-service traces, errors with exception events and slow outliers, in a
//! mix of old and new semantic-convention names. It is deterministic from its seed and
//! cheap enough to drive a collector at hundreds of thousands of spans per second.
//!
//! [`run`] sends it over OTLP/gRPC or OTLP/HTTP (protobuf or JSON, optionally gzip) at a
//! chosen rate, with backoff on backpressure; the `tern-loadgen` binary wraps it.
//! [`replay::Replay`] re-sends pre-encoded requests with fresh ids and times, for
//! benchmarks where even the generator's cost matters.

#![warn(missing_docs)]

mod catalog;
pub mod encode;
mod mix;
mod pool;
pub mod profile;
mod render;
pub mod replay;
pub mod run;
pub mod send;

pub use encode::Protocol;
pub use mix::{Generated, Mix, MixOptions};
pub use profile::MixProfile;
