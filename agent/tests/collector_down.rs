//! With the collector down the application keeps going: every span is created, none
//! waits for the network, and what cannot be held is dropped and counted.

mod common;

use std::time::Duration;

use common::wait_for;
use tracing_subscriber::prelude::*;

const TRANSACTIONS: u64 = 20_000;
const SPANS_PER_TRANSACTION: u64 = 3;

#[test]
fn the_application_keeps_running_and_counts_drops_while_the_collector_is_down() {
    // Nothing listens on this port.
    let port = common::free_port();
    let (layer, guard) = tern_agent::builder()
        .service_name("offline")
        .endpoint(format!("http://127.0.0.1:{port}"))
        .queue_size(1_000)
        .batch_size(100)
        .export_interval(Duration::from_millis(10))
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let stats = layer.clone();
    let subscriber = tracing_subscriber::registry().with(layer);
    let mut created = 0u64;
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..TRANSACTIONS {
            let _t = tracing::info_span!("GET /health", otel.kind = "server", n = i).entered();
            created += 1;
            let _m = tracing::info_span!("check").entered();
            created += 1;
            let _q = tracing::info_span!("ping", db.system = "sqlite", db.statement = "SELECT 1")
                .entered();
            created += 1;
        }
    });
    let total = TRANSACTIONS * SPANS_PER_TRANSACTION;
    assert_eq!(created, total, "every span was created");

    let s = stats.stats();
    assert_eq!(s.exported_spans, 0, "{s:?}");
    assert_eq!(s.active_transactions, 0, "{s:?}");
    // The queue holds 1,000 and the exporter at most one batch of 100: the rest were
    // dropped on the application's side, without waiting.
    assert!(s.dropped_spans >= total - 1_000 - 100, "{s:?}");
    assert!(s.queued_spans <= 1_000, "{s:?}");
    wait_for("the exporter to retry", common::PATIENCE, || {
        stats.stats().retried_batches >= 1
    });

    // Shutting down with the collector still away: the flush gives up after its timeout
    // and every span is accounted for.
    drop(guard);
    let s = stats.stats();
    assert_eq!(s.exported_spans + s.dropped_spans, total, "{s:?}");

    // Spans after the shutdown are dropped and counted too, never a panic.
    let subscriber = tracing_subscriber::registry().with(stats.clone());
    tracing::subscriber::with_default(subscriber, || {
        let _t = tracing::info_span!("late").entered();
    });
    assert_eq!(stats.stats().dropped_spans, total + 1);
}
