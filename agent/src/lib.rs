//! # tern-agent
//!
//! Tern's Rust agent: a [`tracing-subscriber`](tracing_subscriber) [`Layer`](tracing_subscriber::Layer)
//! that turns a service's `tracing` spans into Tern transactions with their call trees
//! (SQL, external calls, methods, errors), reports the transactions running right now,
//! and exports everything to a Tern collector (or any OTLP gRPC endpoint).
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! let (tern, _guard) = tern_agent::builder().service_name("shop").build()?;
//! tracing_subscriber::registry().with(tern).init();
//! # Ok::<(), tern_agent::Error>(())
//! ```
//!
//! What becomes what:
//! - **Transaction**: a span with `otel.kind = "server"` or `"consumer"`, tower-http's
//!   `TraceLayer` request span, or any root span. A `traceparent` field (W3C header
//!   value) continues the caller's trace.
//! - **SQL**: a span with `db.system`, `db.system.name`, `db.statement` or
//!   `db.query.text`.
//! - **External call**: `url.full`, `http.url`, `server.address`, `rpc.system`, or
//!   `otel.kind = "client"`/`"producer"`. Send [`current_traceparent`] with the call.
//! - **Method**: any other span (`#[instrument]` functions).
//! - **Failure**: an `error` field (`true` or a message), `otel.status_code = "ERROR"`,
//!   or an ERROR event inside the transaction.
//!
//! The application never waits for the agent: finished spans go into a bounded queue
//! (full: dropped and counted, see [`Stats`]); a background thread batches them to the
//! collector, retrying with backoff while it is down. Dropping the [`Guard`] flushes.

mod active;
mod attrs;
mod classify;
mod clock;
mod config;
mod export;
mod ids;
mod layer;
mod live;
mod open;
mod otlp;
mod queue;
mod record;

pub mod forwarder;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub use classify::Category;
pub use config::{Builder, Config, ConfigError, Transport, ENV_VARS};
pub use export::{Guard, StartError, Stats};
pub use ids::TraceParent;
pub use layer::{current_traceparent, TernLayer};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting (builder or environment) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter could not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A builder with defaults and the `OTEL_*` / `TERN_AGENT_*` environment ([`ENV_VARS`]).
pub fn builder() -> Builder {
    Builder::from_env()
}

/// The layer and its guard with settings from the environment only.
pub fn layer() -> Result<(TernLayer, Guard), Error> {
    builder().build()
}

impl Builder {
    /// Validates the settings, starts the exporter thread and returns the layer with
    /// the [`Guard`] that flushes on drop.
    pub fn build(self) -> Result<(TernLayer, Guard), Error> {
        let config = self.config()?;
        clock::init();
        let (queue, rx) = queue::Queue::bounded(config.queue_size);
        let shared = Arc::new(layer::Shared {
            active: active::ActiveRegistry::default(),
            entries: active::EntryIds::default(),
            queue,
            counters: export::Counters::default(),
            sample_ratio: AtomicU64::new(config.sample_ratio.to_bits()),
            profile_threshold_ns: AtomicU64::new(0),
            parent_based: config.parent_based,
        });
        let guard = export::start(config, shared.clone(), rx)?;
        Ok((TernLayer { shared, token: 0 }, guard))
    }
}
