//! The agent against the real collector: what the application does with `tracing`
//! arrives as transactions, call trees, errors, traces and active transactions.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{wait_for, Collector};
use serde_json::Value;
use tern_agent::TraceParent;
use tracing_subscriber::prelude::*;

fn agent(c: &Collector, service: &str) -> (tern_agent::TernLayer, tern_agent::Guard) {
    tern_agent::builder()
        .service_name(service)
        .endpoint(&c.otlp_grpc)
        .export_interval(Duration::from_millis(50))
        .live_interval(Duration::from_millis(100))
        .build()
        .unwrap()
}

#[tracing::instrument]
fn load_order(id: u64) {
    let _sql = tracing::info_span!(
        "SELECT orders",
        db.system = "sqlite",
        db.query.text = "SELECT id, total FROM orders WHERE id = 42"
    )
    .entered();
}

fn call_inventory() -> TraceParent {
    let _call = tracing::info_span!(
        "GET",
        otel.kind = "client",
        url.full = "http://inventory.local:8081/items/42",
        http.request.method = "GET",
        server.address = "inventory.local",
        server.port = 8081
    )
    .entered();
    tern_agent::current_traceparent().expect("traceparent inside a span")
}

fn children(node: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for c in node["children"].as_array().into_iter().flatten() {
        out.push(c.clone());
        out.extend(children(c));
    }
    out
}

#[test]
fn transactions_call_trees_errors_and_joined_traces_arrive() {
    let c = common::collector();
    let (layer, guard) = agent(&c, "orders");
    let subscriber = tracing_subscriber::registry().with(layer);
    let (ok_tx, failed_tx, downstream, outgoing, recorded) = tracing::subscriber::with_default(
        subscriber,
        || {
            // A transaction with a method, a SQL statement and an external call.
            let entry = tracing::info_span!(
                "GET /orders/{id}",
                otel.kind = "server",
                http.route = "/orders/{id}",
                http.request.method = "GET",
                url.path = "/orders/42"
            );
            let (ok_tx, outgoing) = entry.in_scope(|| {
                load_order(42);
                burn_cpu_ms(3);
                let outgoing = call_inventory();
                (tern_agent::current_traceparent().unwrap(), outgoing)
            });
            drop(entry);

            // A failed one: an ERROR event inside.
            let failed =
                tracing::info_span!("POST /pay", otel.kind = "server", http.route = "/pay");
            failed.in_scope(|| {
                let _m = tracing::info_span!("charge_card").entered();
                tracing::error!(error.type = "PaymentDeclined", "card declined");
            });
            let failed_tx = failed.in_scope(|| tern_agent::current_traceparent().unwrap());
            drop(failed);

            // The called service's side: a transaction that continues the outgoing call's trace.
            let header = outgoing.to_header();
            let remote = tracing::info_span!("GET /items/{id}", http.route = "/items/{id}", traceparent = %header);
            let downstream = remote.in_scope(|| tern_agent::current_traceparent().unwrap());
            drop(remote);

            // The same with the header recorded after the span was created (a framework
            // that creates the request span before reading headers).
            let later = tracing::info_span!(
                "GET /stock",
                otel.kind = "server",
                http.route = "/stock",
                traceparent = tracing::field::Empty
            );
            later.record("traceparent", header.as_str());
            let recorded = later.in_scope(|| tern_agent::current_traceparent().unwrap());
            (ok_tx, failed_tx, downstream, outgoing, recorded)
        },
    );
    drop(guard); // flushes
    assert_eq!(downstream.trace_id, ok_tx.trace_id, "the trace continues");
    assert_eq!(
        recorded.trace_id, ok_tx.trace_id,
        "a recorded traceparent too"
    );

    let list = c.eventually("/api/v1/transactions?from=0&service=orders", |b| {
        b["total"].as_u64() == Some(4)
    });
    let txs = list["transactions"].as_array().unwrap();
    let find = |tp: &TraceParent| {
        let id = format!("{:032x}:{:016x}", tp.trace_id, tp.span_id);
        txs.iter()
            .find(|t| t["txid"] == id.as_str())
            .unwrap_or_else(|| panic!("transaction {id} missing in {list}"))
            .clone()
    };
    let ok = find(&ok_tx);
    assert_eq!(ok["endpoint"], "GET /orders/{id}");
    // tern.cpu_time_us: at least the CPU time burnt inside the entry span.
    let cpu_ms = ok["cpu_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no cpu_ms in {ok}"));
    assert!(cpu_ms >= 3.0, "{ok}");
    assert_eq!(ok["error"], false);
    assert_eq!(ok["sql_count"], 1);
    assert_eq!(ok["external_count"], 1);
    let failed = find(&failed_tx);
    assert_eq!(failed["error"], true, "{failed}");
    assert_eq!(failed["error_type"], "PaymentDeclined", "{failed}");
    let down = find(&downstream);
    assert!(
        down["endpoint"].as_str().unwrap().ends_with("/items/{id}"),
        "{down}"
    );

    // The call tree: method → SQL with its text; the external call with its URL.
    let tree = c.api(&format!(
        "/api/v1/transactions/{:032x}/{:016x}",
        ok_tx.trace_id, ok_tx.span_id
    ));
    let nodes = children(&tree["call_tree"]);
    let by_cat = |cat: &str| nodes.iter().find(|n| n["category"] == cat).cloned();
    let method = by_cat("method").unwrap_or_else(|| panic!("no method in {tree}"));
    assert_eq!(method["name"], "load_order");
    let sql = by_cat("sql").unwrap_or_else(|| panic!("no sql in {tree}"));
    assert_eq!(sql["sql"], "SELECT id, total FROM orders WHERE id = 42");
    let ext = by_cat("external").unwrap_or_else(|| panic!("no external in {tree}"));
    assert!(
        ext["url"].as_str().unwrap().contains("inventory.local"),
        "{ext}"
    );

    // One trace across "both services": the downstream transaction hangs under the
    // outgoing call's span.
    let trace = c.api(&format!("/api/v1/traces/{:032x}", ok_tx.trace_id));
    let spans = trace["spans"].as_array().unwrap();
    let down_span = spans
        .iter()
        .find(|s| s["span_id"] == format!("{:016x}", downstream.span_id).as_str())
        .unwrap_or_else(|| panic!("downstream span missing in {trace}"));
    assert_eq!(
        down_span["parent_span_id"],
        format!("{:016x}", outgoing.span_id).as_str(),
        "{down_span}"
    );
    let recorded_span = spans
        .iter()
        .find(|s| s["span_id"] == format!("{:016x}", recorded.span_id).as_str())
        .unwrap_or_else(|| panic!("span with a recorded traceparent missing in {trace}"));
    assert_eq!(
        recorded_span["parent_span_id"],
        format!("{:016x}", outgoing.span_id).as_str(),
        "{recorded_span}"
    );
}

/// Keeps this thread on the CPU for `ms` of its own CPU time.
fn burn_cpu_ms(ms: u64) {
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out-pointer for clock_gettime.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let until = cpu() + ms * 1_000_000;
    while cpu() < until {
        std::hint::black_box(0u64);
    }
}

#[test]
fn active_transactions_show_what_they_are_doing_while_they_run() {
    let c = common::collector();
    let (layer, guard) = agent(&c, "billing");
    let stats_layer = layer.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let app = std::thread::Builder::new()
        .name("billing-worker-1".into())
        .spawn(move || {
            let subscriber = tracing_subscriber::registry().with(layer);
            tracing::subscriber::with_default(subscriber, || {
                let _entry = tracing::info_span!(
                    "POST /invoices",
                    otel.kind = "server",
                    http.route = "/invoices",
                    http.request.method = "POST"
                )
                .entered();
                let _sql = tracing::info_span!(
                    "INSERT invoices",
                    db.system = "sqlite",
                    db.statement = "INSERT INTO invoices VALUES (1)"
                )
                .entered();
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
        })
        .unwrap();
    started_rx.recv().unwrap();
    assert_eq!(stats_layer.stats().active_transactions, 1);
    // Snapshots go out once a second: one taken before the SQL span was entered may be the
    // collector's latest for a moment, so wait for the one that shows it.
    let active = c.eventually("/api/v1/active?service=billing", |b| {
        b["active"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["current_kind"] == "sql")
    });
    let t = active["active"].as_array().unwrap()[0].clone();
    assert_eq!(t["endpoint"], "POST /invoices", "{t}");
    assert_eq!(t["current_kind"], "sql", "{t}");
    assert_eq!(
        t["current_detail"], "INSERT INTO invoices VALUES (1)",
        "{t}"
    );
    assert_eq!(t["worker"], "billing-worker-1", "{t}");
    c.eventually("/api/v1/agents", |b| b.to_string().contains("billing"));

    release_tx.send(()).unwrap();
    app.join().unwrap();
    assert_eq!(stats_layer.stats().active_transactions, 0);
    c.eventually("/api/v1/active?service=billing", |b| {
        b["active"].as_array().is_some_and(|a| a.is_empty())
    });
    drop(guard);
}

#[test]
fn spans_wait_for_a_collector_that_starts_late_and_then_arrive() {
    let port = common::free_port();
    let (layer, guard) = tern_agent::builder()
        .service_name("late")
        .endpoint(format!("http://127.0.0.1:{port}"))
        .export_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let stats = layer.clone();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..20u64 {
            let _t = tracing::info_span!("tick", otel.kind = "consumer", n = i).entered();
        }
    });
    wait_for("a failed export to be retried", common::PATIENCE, || {
        stats.stats().retried_batches >= 2
    });
    assert_eq!(stats.stats().exported_spans, 0);
    let c = common::collector_on(port);
    c.eventually("/api/v1/transactions?from=0&service=late", |b| {
        b["total"].as_u64() == Some(20)
    });
    let s = stats.stats();
    assert_eq!((s.exported_spans, s.dropped_spans), (20, 0), "{s:?}");
    drop(guard);
}
