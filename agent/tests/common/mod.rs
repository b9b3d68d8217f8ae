//! The workspace's test harness (tern-testkit), plus helpers of the agent's tests.
#![allow(dead_code, unused_imports)]

pub use tern_testkit::*;

/// How long the agent's tests wait for something that should happen.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// A collector (embedded store) whose OTLP gRPC port is `grpc_port`.
pub fn collector_on(grpc_port: u16) -> Collector {
    let listen = format!("127.0.0.1:{grpc_port}");
    Collector::start(StoreMode::Embedded, &[("TERN_OTLP_GRPC_LISTEN", &listen)])
}

/// A collector on free ports.
pub fn collector() -> Collector {
    Collector::start(StoreMode::Embedded, &[])
}

/// A unique service name per test, so tests sharing nothing never see each other.
pub fn service(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}
