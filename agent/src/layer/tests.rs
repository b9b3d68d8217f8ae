//! The layer's unit tests (real spans through a real registry, spans captured before
//! export).

use tracing_subscriber::prelude::*;

fn run(sample_ratio: f64, f: impl FnOnce()) -> crate::Stats {
    let (layer, guard) = crate::Builder::default()
        .transport(crate::Transport::Discard)
        .sample_ratio(sample_ratio)
        .build()
        .unwrap();
    let stats = layer.clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    drop(guard);
    stats.stats()
}

fn transaction() {
    let _t = tracing::info_span!("GET /a", otel.kind = "server").entered();
    let _m = tracing::info_span!("work").entered();
    let _q = tracing::info_span!("q", db.statement = "SELECT 1").entered();
}

#[test]
fn exports_every_span_of_sampled_transactions() {
    let s = run(1.0, transaction);
    assert_eq!((s.exported_spans, s.dropped_spans), (3, 0));
    assert_eq!(s.active_transactions, 0);
}

#[test]
fn unsampled_transactions_still_export_their_entry_span() {
    let s = run(0.0, || {
        transaction();
        transaction();
    });
    assert_eq!((s.exported_spans, s.dropped_spans), (2, 0));
}

#[test]
fn nested_spans_share_the_trace_and_traceparent_points_at_the_current_span() {
    let (layer, _guard) = crate::Builder::default()
        .transport(crate::Transport::Discard)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        assert_eq!(super::current_traceparent(), None, "outside any span");
        let root = tracing::info_span!("job").entered();
        let outer = super::current_traceparent().unwrap();
        let child = tracing::info_span!("step").entered();
        let inner = super::current_traceparent().unwrap();
        assert_eq!(inner.trace_id, outer.trace_id);
        assert_ne!(inner.span_id, outer.span_id);
        drop(child);
        assert_eq!(super::current_traceparent(), Some(outer));
        drop(root);
    });
}

const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const REMOTE_TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;

fn with_layer(f: impl FnOnce(&super::TernLayer)) {
    let (layer, _guard) = crate::Builder::default()
        .transport(crate::Transport::Discard)
        .build()
        .unwrap();
    let handle = layer.clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || f(&handle));
}

#[test]
fn a_route_and_client_recorded_later_on_an_entry_span_show_in_the_active_view() {
    with_layer(|layer| {
        let span = tracing::info_span!(
            "request",
            otel.kind = "server",
            http.request.method = "GET",
            http.route = tracing::field::Empty,
            client.address = tracing::field::Empty,
            user.id = tracing::field::Empty,
        );
        let _e = span.enter();
        let live = || {
            let t = layer.shared.active.snapshot().remove(0);
            (t.endpoint, t.http_method, t.client_address)
        };
        assert_eq!(live(), ("request".into(), "GET".into(), String::new()));
        span.record("user.id", 7);
        assert_eq!(live().0, "request", "a field the view does not show");
        span.record("http.route", "/orders/{id}");
        span.record("client.address", "10.0.0.9");
        assert_eq!(
            live(),
            ("GET /orders/{id}".into(), "GET".into(), "10.0.0.9".into())
        );
    });
}

#[test]
fn a_traceparent_recorded_before_the_first_child_span_continues_the_callers_trace() {
    with_layer(|layer| {
        let span = tracing::info_span!(
            "GET /items",
            otel.kind = "server",
            traceparent = tracing::field::Empty
        );
        span.record("traceparent", HEADER);
        {
            let _e = span.enter();
            let tp = super::current_traceparent().unwrap();
            assert_eq!(tp.trace_id, REMOTE_TRACE);
            assert_ne!(
                tp.span_id, 0x00f067aa0ba902b7,
                "the entry has its own span id"
            );
            let _child = tracing::info_span!("load").entered();
            assert_eq!(super::current_traceparent().unwrap().trace_id, REMOTE_TRACE);
            assert_eq!(layer.stats().active_transactions, 1);
        }
        drop(span);
        assert_eq!(layer.stats().active_transactions, 0);
    });
}

#[test]
fn a_traceparent_recorded_after_a_child_span_exists_does_not_split_the_trace() {
    with_layer(|_| {
        let span = tracing::info_span!("job", traceparent = tracing::field::Empty);
        let _e = span.enter();
        let own = super::current_traceparent().unwrap().trace_id;
        let child = tracing::info_span!("step");
        span.record("traceparent", HEADER);
        assert_eq!(super::current_traceparent().unwrap().trace_id, own);
        let _c = child.entered();
        assert_eq!(super::current_traceparent().unwrap().trace_id, own);
    });
}

/// A layer whose finished spans stay in the queue for the test to read.
fn capture(f: impl FnOnce()) -> Vec<crate::export::FinishedSpan> {
    capture_with(1.0, 0, f)
}

fn capture_with(
    sample_ratio: f64,
    profile_threshold_ns: u64,
    f: impl FnOnce(),
) -> Vec<crate::export::FinishedSpan> {
    let (layer, spans) = layer_with(sample_ratio, profile_threshold_ns);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    spans()
}

/// A layer whose finished spans stay in its queue, and a way to read them.
fn layer_and_spans() -> (
    super::TernLayer,
    impl FnOnce() -> Vec<crate::export::FinishedSpan>,
) {
    layer_with(1.0, 0)
}

fn layer_with(
    sample_ratio: f64,
    profile_threshold_ns: u64,
) -> (
    super::TernLayer,
    impl FnOnce() -> Vec<crate::export::FinishedSpan>,
) {
    use std::sync::atomic::AtomicU64;
    let (queue, mut rx) = crate::queue::Queue::bounded(1_000);
    let shared = std::sync::Arc::new(super::Shared {
        active: crate::active::ActiveRegistry::default(),
        entries: crate::active::EntryIds::default(),
        queue,
        counters: crate::export::Counters::default(),
        sample_ratio: AtomicU64::new(sample_ratio.to_bits()),
        profile_threshold_ns: AtomicU64::new(profile_threshold_ns),
        parent_based: true,
    });
    let spans = move || {
        let mut out = Vec::new();
        rx.fill(&mut out, 1_000);
        out
    };
    (super::TernLayer { shared, token: 0 }, spans)
}

#[test]
fn a_span_closed_on_another_thread_is_exported_like_the_others() {
    let spans = capture(|| {
        let tx = tracing::info_span!("GET /a", otel.kind = "server");
        let _e = tx.enter();
        let moved = tracing::info_span!("moved", n = 1u64);
        let local = tracing::info_span!("local");
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        std::thread::spawn(move || tracing::dispatcher::with_default(&dispatch, || drop(moved)))
            .join()
            .unwrap();
        drop(local);
    });
    let find = |name: &str| spans.iter().find(|s| s.name() == name).unwrap();
    let (tx, moved, local) = (find("GET /a"), find("moved"), find("local"));
    assert_eq!(spans.len(), 3);
    for child in [moved, local] {
        assert_eq!(child.parent_span_id, tx.span_id);
        assert_eq!(child.trace_id, tx.trace_id);
    }
    assert_eq!(moved.fields.get(&["n"]), Some(crate::attrs::Value::I64(1)));
}

#[test]
fn spans_created_under_a_span_of_another_thread_join_its_transaction() {
    let spans = capture(|| {
        let tx = tracing::info_span!("GET /b", otel.kind = "server");
        let step = tx.in_scope(|| tracing::info_span!("step"));
        let _first = tx.in_scope(|| tracing::info_span!("first child"));
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let (tx2, step2) = (tx.clone(), step.clone());
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _explicit = tracing::info_span!(parent: &tx2, "explicit");
                let _in_step = step2.in_scope(|| tracing::info_span!("contextual"));
            })
        })
        .join()
        .unwrap();
        // Back on the creating thread, both paths again.
        let _again = step.in_scope(|| tracing::info_span!("again"));
    });
    let find = |name: &str| spans.iter().find(|s| s.name() == name).unwrap();
    let (tx, step) = (find("GET /b"), find("step"));
    for (name, parent) in [
        ("step", tx),
        ("first child", tx),
        ("explicit", tx),
        ("contextual", step),
        ("again", step),
    ] {
        let s = find(name);
        assert_eq!(s.parent_span_id, parent.span_id, "{name}");
        assert_eq!(s.trace_id, tx.trace_id, "{name}");
    }
}

#[test]
fn two_subscribers_on_one_thread_keep_their_open_spans_apart() {
    let (layer, spans) = layer_and_spans();
    let a = tracing::Dispatch::new(tracing_subscriber::registry().with(layer.clone()));
    let b = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let in_a = tracing::dispatcher::with_default(&a, || tracing::info_span!("in_a"));
    let in_b = tracing::dispatcher::with_default(&b, || tracing::info_span!("in_b"));
    assert_eq!(
        in_a.id(),
        in_b.id(),
        "two fresh registries give the same first id"
    );
    // `in_b`, created last, holds the table's entry for this id: closing `in_a`
    // must not find it.
    tracing::dispatcher::with_default(&a, || drop(in_a));
    tracing::dispatcher::with_default(&b, || drop(in_b));
    let mut names: Vec<String> = spans().iter().map(|s| s.name().to_string()).collect();
    names.sort();
    assert_eq!(names, ["in_a", "in_b"]);
}

/// Keeps this thread on the CPU for `ns` of its own CPU time.
fn burn_cpu(ns: u64) {
    let until = super::thread_cpu_ns() + ns;
    while super::thread_cpu_ns() < until {
        std::hint::black_box(0u64);
    }
}

fn cpu_us(span: &crate::export::FinishedSpan) -> Option<i64> {
    match span.fields.get(&[crate::attrs::CPU_TIME_US])? {
        crate::attrs::Value::I64(us) => Some(us),
        _ => None,
    }
}

#[test]
fn entry_spans_carry_their_cpu_time_summed_over_every_enter() {
    let spans = capture(|| {
        let tx = tracing::info_span!("GET /report", otel.kind = "server");
        for _ in 0..2 {
            let _e = tx.enter();
            let _m = tracing::info_span!("render").entered();
            burn_cpu(2_000_000);
        }
        // Time outside the span is not counted.
        burn_cpu(5_000_000);
    });
    let entry = spans.iter().find(|s| s.name() == "GET /report").unwrap();
    let us = cpu_us(entry).expect("tern.cpu_time_us on the entry span");
    assert!((4_000..5_000).contains(&us), "{us} µs");
    let method = spans.iter().find(|s| s.name() == "render").unwrap();
    assert_eq!(cpu_us(method), None, "method spans carry no CPU time");
}

#[test]
fn unsampled_transactions_over_the_profile_threshold_export_their_call_tree() {
    let names = |spans: Vec<crate::export::FinishedSpan>| -> Vec<String> {
        let mut v: Vec<String> = spans.iter().map(|s| s.name().to_string()).collect();
        v.sort();
        v
    };
    // Any transaction lasts at least 1 ns; none lasts an hour.
    let slow = capture_with(0.0, 1, transaction);
    assert_eq!(names(slow), ["GET /a", "q", "work"]);
    let fast = capture_with(0.0, 3_600_000_000_000, transaction);
    assert_eq!(names(fast), ["GET /a"], "only the entry span");
    let off = capture_with(0.0, 0, transaction);
    assert_eq!(names(off), ["GET /a"]);
}
