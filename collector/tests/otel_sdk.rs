//! The real OpenTelemetry Rust SDK (`opentelemetry-otlp`) exporting to the collector over
//! gRPC and over HTTP/protobuf, checked through the query API.

mod common;

use common::{Collector, StoreMode};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// Emits one checkout transaction (SQL + external call) and one failing transaction.
/// Returns the txids.
fn emit(provider: &SdkTracerProvider) -> (String, String) {
    let tracer = provider.tracer("tern-test");
    let server = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/checkout"),
            KeyValue::new("http.response.status_code", 201),
            KeyValue::new("enduser.id", "alice"),
        ])
        .start(&tracer);
    let ok_id = format!(
        "{}:{}",
        server.span_context().trace_id(),
        server.span_context().span_id()
    );
    let cx = Context::current_with_span(server);
    let mut sql = tracer
        .span_builder("INSERT orders")
        .with_kind(SpanKind::Client)
        .with_attributes(vec![
            KeyValue::new("db.system", "sqlite"),
            KeyValue::new(
                "db.statement",
                "INSERT INTO orders (id, total) VALUES (17, 99.5)",
            ),
        ])
        .start_with_context(&tracer, &cx);
    std::thread::sleep(std::time::Duration::from_millis(3));
    sql.end();
    let mut call = tracer
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_attributes(vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.full", "http://payments.local:9000/charge"),
            KeyValue::new("server.address", "payments.local"),
            KeyValue::new("server.port", 9000),
        ])
        .start_with_context(&tracer, &cx);
    std::thread::sleep(std::time::Duration::from_millis(2));
    call.end();
    cx.span().end();

    let mut failing = tracer
        .span_builder("GET /orders/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("http.response.status_code", 500),
        ])
        .start(&tracer);
    let err_id = format!(
        "{}:{}",
        failing.span_context().trace_id(),
        failing.span_context().span_id()
    );
    failing.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", "KeyError"),
            KeyValue::new("exception.message", "order 9 not found"),
        ],
    );
    failing.set_status(Status::error("order 9 not found"));
    failing.end();
    provider.force_flush().expect("flush");
    (ok_id, err_id)
}

fn check(c: &Collector, service: &str, ok_id: &str, err_id: &str) {
    let found = c.eventually(&format!("/api/v1/transactions?from=0&txid={ok_id}"), |v| {
        v["returned"] == 1
    });
    let t = &found["transactions"][0];
    assert_eq!(t["service"], service);
    assert_eq!(t["endpoint"], "POST /checkout");
    assert_eq!(t["http_status"], 201);
    assert_eq!(t["user_id"], "alice");
    assert_eq!(t["sql_count"], 1);
    assert_eq!(t["external_count"], 1);
    assert!(t["sql_ms"].as_f64().unwrap() >= 3.0, "{t}");

    let (trace, span) = ok_id.split_once(':').unwrap();
    let one = c.api(&format!("/api/v1/transactions/{trace}/{span}"));
    let kids = one["call_tree"]["children"].as_array().unwrap();
    assert_eq!(kids.len(), 2, "{one}");
    let sql = kids
        .iter()
        .find(|k| k["category"] == "sql")
        .expect("sql node");
    assert_eq!(
        sql["sql"],
        "INSERT INTO orders (id, total) VALUES (17, 99.5)"
    );
    let ext = kids
        .iter()
        .find(|k| k["category"] == "external")
        .expect("external node");
    assert_eq!(ext["target"], "payments.local:9000");
    assert_eq!(one["resource"]["service.name"], service);

    let failed = c.eventually(&format!("/api/v1/transactions?from=0&txid={err_id}"), |v| {
        v["returned"] == 1
    });
    let f = &failed["transactions"][0];
    assert_eq!(f["error"], true);
    assert_eq!(f["error_type"], "KeyError");
    assert_eq!(f["error_message"], "order 9 not found");

    let trace = c.api(&format!("/api/v1/traces/{trace}"));
    assert_eq!(trace["span_count"], 3);
}

#[test]
fn the_rust_sdk_over_grpc_is_ingested() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let provider = rt.block_on(async {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&c.otlp_grpc)
            .build()
            .unwrap();
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("sdk-grpc").build())
            .build()
    });
    let (ok_id, err_id) = emit(&provider);
    check(&c, "sdk-grpc", &ok_id, &err_id);
    provider.shutdown().unwrap();
}

#[test]
fn the_rust_sdk_over_http_protobuf_is_ingested() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", c.otlp_http))
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("sdk-http").build())
        .build();
    let (ok_id, err_id) = emit(&provider);
    check(&c, "sdk-http", &ok_id, &err_id);
    provider.shutdown().unwrap();
}
