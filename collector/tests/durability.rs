//! Nothing acknowledged is lost: kill -9 right after an acknowledgement, a store that is
//! down, a full write-ahead log, and a graceful stop.

mod common;

use std::time::Duration;

use common::otlp::batch;
use common::{now_ns, ChdbServer, Collector, StoreMode};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

const PROTO: [(&str, &str); 1] = [("content-type", "application/x-protobuf")];

/// Sends `n` batches of 20 transactions (60 spans); every one must be acknowledged.
fn send_acked(c: &Collector, service: &str, n: u64) -> u64 {
    for b in 0..n {
        let (_, req) = batch(service, b * 20 + 1..b * 20 + 21, now_ns());
        let r = c.post_traces(req.encode_to_vec(), &PROTO);
        assert_eq!(r.status(), 200, "batch {b} not acknowledged");
    }
    n * 20
}

fn count(c: &Collector, service: &str) -> u64 {
    c.api(&format!(
        "/api/v1/transactions?from=0&service={service}&limit=1"
    ))["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn an_acknowledged_batch_survives_kill_9_of_the_collector() {
    // A long flush interval keeps the batches in the log, not yet in the store, at the kill.
    let mut c = Collector::start(
        StoreMode::Embedded,
        &[("TERN_WRITER_FLUSH_INTERVAL_MS", "30000")],
    );
    let sent = send_acked(&c, "k9", 10);
    assert_eq!(
        c.metrics()["tern_store_spans_written_total"],
        0,
        "already inserted: the test would prove nothing"
    );
    c.kill9();
    c.env
        .push(("TERN_WRITER_FLUSH_INTERVAL_MS".into(), "100".into()));
    c.restart();
    c.eventually("/api/v1/transactions?from=0&service=k9&limit=1", |v| {
        v["total"] == sent
    });
    // Exactly once: nothing doubled either.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&c, "k9"), sent);
}

#[test]
fn batches_accepted_while_the_store_is_down_arrive_when_it_returns() {
    let mut c = Collector::start(StoreMode::Server, &[]);
    // Schema in place first.
    c.eventually("/api/v1/self", |m| {
        m["tern_store_schema_version"].as_u64() >= Some(1)
    });
    c.chdb.as_mut().unwrap().kill();
    assert_eq!(c.get("/health").0, 503);
    let sent = send_acked(&c, "down", 5);
    c.eventually("/api/v1/self", |m| {
        m["tern_store_insert_errors_total"].as_u64().unwrap() > 0
    });
    assert_eq!(c.metrics()["tern_store_up"], 0);
    c.chdb.as_mut().unwrap().restart();
    c.eventually("/api/v1/transactions?from=0&service=down&limit=1", |v| {
        v["total"] == sent
    });
    assert_eq!(c.metrics()["tern_store_up"], 1);
}

#[test]
fn a_full_log_pushes_back_with_429_and_resource_exhausted_and_loses_nothing() {
    let mut c = Collector::start(StoreMode::Server, &[("TERN_WAL_MAX_BYTES", "200000")]);
    c.eventually("/api/v1/self", |m| {
        m["tern_store_schema_version"].as_u64() >= Some(1)
    });
    c.chdb.as_mut().unwrap().kill();

    // HTTP: acknowledged until the log is full, then 429 with Retry-After.
    let mut acked = 0u64;
    let mut throttled = None;
    for b in 0..200u64 {
        let (_, req) = batch("full", b * 20 + 1..b * 20 + 21, now_ns());
        let r = c.post_traces(req.encode_to_vec(), &PROTO);
        match r.status().as_u16() {
            200 => acked += 20,
            429 => {
                throttled = Some(r);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let r = throttled.expect("the log never filled up");
    assert!(acked > 0);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);

    // gRPC: RESOURCE_EXHAUSTED.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let mut client = TraceServiceClient::connect(c.otlp_grpc.clone())
            .await
            .unwrap();
        let (_, req) = batch("full", 90_001..90_021, now_ns());
        client.export(req).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("full"), "{status:?}");
    assert!(c.metrics()["tern_ingest_throttled_total"].as_u64().unwrap() >= 2);

    // The store returns: everything acknowledged arrives, and ingest accepts again.
    c.chdb.as_mut().unwrap().restart();
    c.eventually("/api/v1/transactions?from=0&service=full&limit=1", |v| {
        v["total"] == acked
    });
    let (_, req) = batch("full", 95_001..95_021, now_ns());
    let ok = (0..100).any(|_| {
        let s = c.post_traces(req.encode_to_vec(), &PROTO).status().as_u16();
        s == 200 || {
            std::thread::sleep(Duration::from_millis(200));
            false
        }
    });
    assert!(ok, "ingest never accepted again after the store came back");
}

#[test]
fn a_graceful_stop_inserts_what_the_log_holds_before_exiting() {
    let mut c = Collector::start(
        StoreMode::Embedded,
        &[("TERN_WRITER_FLUSH_INTERVAL_MS", "30000")],
    );
    let sent = send_acked(&c, "term", 3);
    c.stop();
    // Read the embedded store directly, with the collector gone.
    let server = ChdbServer::start(&c.data_dir.join("clickhouse"));
    let body = reqwest::blocking::Client::new()
        .post(server.url())
        .body("SELECT count() FROM tern.transactions WHERE service = 'term'")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body.trim(), sent.to_string());
}
