//! OTLP/HTTP ingest against the real collector and embedded engine: JSON from curl,
//! protobuf, gzip, partial success, and every kind of bad input.

mod common;

use std::io::Write;
use std::process::Command;

use common::otlp::{batch, request, txn};
use common::{now_ns, Collector, StoreMode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::Value;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn otlp_json_sent_by_curl_becomes_a_queryable_transaction() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let end = now_ns();
    let start = end - 120_000_000;
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"curl-svc"}}}}]}},
        "scopeSpans":[{{"scope":{{"name":"manual"}},"spans":[
          {{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /users/{{id}}",
            "kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",
            "attributes":[{{"key":"http.request.method","value":{{"stringValue":"GET"}}}},
                          {{"key":"http.route","value":{{"stringValue":"/users/{{id}}"}}}},
                          {{"key":"http.response.status_code","value":{{"intValue":"200"}}}}]}},
          {{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174",
            "name":"SELECT users","kind":3,"startTimeUnixNano":"{s2}","endTimeUnixNano":"{e2}",
            "attributes":[{{"key":"db.system.name","value":{{"stringValue":"postgresql"}}}},
                          {{"key":"db.query.text","value":{{"stringValue":"SELECT * FROM users WHERE id = 7"}}}}]}}
        ]}}]}}]}}"#,
        s2 = start + 10_000_000,
        e2 = start + 40_000_000,
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ])
        .arg(format!("{}/v1/traces", c.otlp_http))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("200"), "curl got: {text}");

    let q = "/api/v1/transactions?txid=5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174";
    let found = c.eventually(q, |v| v["returned"] == 1);
    let t = &found["transactions"][0];
    assert_eq!(t["service"], "curl-svc");
    assert_eq!(t["endpoint"], "GET /users/{id}");
    assert_eq!(t["http_status"], 200);
    assert_eq!(t["sql_count"], 1);
    assert_eq!(t["sql_ms"], 30.0);
    assert_eq!(t["elapsed_ms"], 120.0);
}

#[test]
fn protobuf_plain_and_gzipped_is_accepted_and_stored() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let (txns, req) = batch("proto-svc", 1..21, now_ns());
    let r = c.post_traces(
        req.encode_to_vec(),
        &[("content-type", "application/x-protobuf")],
    );
    assert_eq!(r.status(), 200);
    let resp = ExportTraceServiceResponse::decode(r.bytes().unwrap()).unwrap();
    assert!(resp.partial_success.is_none(), "{resp:?}");

    let (more, req) = batch("proto-svc", 21..41, now_ns());
    let r = c.post_traces(
        gzip(&req.encode_to_vec()),
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
    );
    assert_eq!(r.status(), 200);

    let total = c.eventually("/api/v1/transactions?service=proto-svc&from=0", |v| {
        v["total"] == 40
    });
    assert_eq!(total["returned"], 40);
    for t in txns.iter().chain(more.iter()).step_by(7) {
        let one = c.api(&format!("/api/v1/transactions?from=0&txid={}", t.txid()));
        assert_eq!(one["returned"], 1, "{}", t.txid());
    }
    assert_eq!(c.metrics()["tern_ingest_spans_accepted_total"], 120);
}

#[test]
fn invalid_spans_are_rejected_with_reasons_as_partial_success() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let good = txn(1, now_ns(), 10, "/ok", false);
    let mut bad_id = txn(2, now_ns(), 10, "/bad", false).spans.pop().unwrap();
    bad_id.trace_id = vec![0; 16];
    let mut backwards = txn(3, now_ns(), 10, "/bad", false).spans.pop().unwrap();
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    let mut spans = good.spans.clone();
    spans.push(bad_id);
    spans.push(backwards);
    let r = c.post_traces(
        request("p", spans).encode_to_vec(),
        &[("content-type", "application/x-protobuf")],
    );
    assert_eq!(r.status(), 200);
    let resp = ExportTraceServiceResponse::decode(r.bytes().unwrap()).unwrap();
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("end time before start"),
        "{}",
        partial.error_message
    );
    // The valid part is stored.
    c.eventually(
        &format!("/api/v1/transactions?from=0&txid={}", good.txid()),
        |v| v["returned"] == 1,
    );
    assert_eq!(c.metrics()["tern_ingest_spans_rejected_total"], 2);
}

#[test]
fn bad_requests_get_clear_4xx_answers_and_are_counted() {
    let c = Collector::start(StoreMode::Embedded, &[("TERN_MAX_REQUEST_BYTES", "65536")]);
    let json = [("content-type", "application/json")];
    let proto = [("content-type", "application/x-protobuf")];

    let r = c.post_traces(b"{not json".to_vec(), &json);
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP JSON"),
        "{body}"
    );

    let r = c.post_traces(vec![0xff, 0xff, 0xff, 0x0f, 0x01], &proto);
    assert_eq!(r.status(), 400);

    let r = c.post_traces(b"hello".to_vec(), &[("content-type", "text/plain")]);
    assert_eq!(r.status(), 415);
    let body: Value = r.json().unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("text/plain"),
        "{body}"
    );

    let r = c.post_traces(vec![b' '; 100_000], &json);
    assert_eq!(r.status(), 413);

    // Small on the wire, too large once decompressed.
    let bomb = gzip(&vec![b' '; 1_000_000]);
    assert!(bomb.len() < 65536);
    let r = c.post_traces(
        bomb,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
    );
    assert_eq!(r.status(), 413);
    let body: Value = r.json().unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("decompressed"),
        "{body}"
    );

    let r = c.post_traces(
        b"x".to_vec(),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
    );
    assert_eq!(r.status(), 400);
    let r = c.post_traces(
        b"x".to_vec(),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
    );
    assert_eq!(r.status(), 415);

    let client = reqwest::blocking::Client::new();
    let r = client
        .post(format!("{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 501);
    let body: Value = r.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not supported yet"),
        "{body}"
    );

    let m = c.metrics();
    let bad = &m["tern_ingest_bad_requests_total"];
    assert_eq!(bad["malformed"], 2, "{m}");
    assert_eq!(bad["unsupported_content_type"], 1, "{m}");
    assert_eq!(bad["too_large"], 2, "{m}");
    assert_eq!(bad["bad_encoding"], 2, "{m}");
    assert_eq!(bad["unsupported_signal"], 1, "{m}");
    // Still healthy after all that.
    assert_eq!(c.get("/health").0, 200);
}

/// Sends one raw gRPC frame to TraceService/Export with curl over h2c; returns the
/// response headers (where a refusal's grpc-status stands).
fn grpc_raw(c: &Collector, message: &[u8]) -> String {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frame");
    std::fs::write(&path, frame).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--http2-prior-knowledge",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", path.display()))
        .arg(format!(
            "{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            c.otlp_grpc
        ))
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

#[test]
fn malformed_and_oversized_grpc_requests_are_invalid_argument_and_counted() {
    let c = Collector::start(StoreMode::Embedded, &[("TERN_MAX_REQUEST_BYTES", "4096")]);
    let answer = grpc_raw(&c, &[0xff, 0xff, 0xff, 0x0f, 0x01]);
    assert!(answer.contains("grpc-status: 3"), "{answer}");
    assert!(answer.contains("decode"), "{answer}");
    // Over the limit but within one HTTP/2 flow-control window, so curl has sent it all
    // when the early answer comes (a larger body can meet a stream reset mid-upload).
    let answer = grpc_raw(&c, &vec![0u8; 8_000]);
    assert!(answer.contains("grpc-status: 3"), "{answer}");
    assert!(answer.contains("too%20large"), "{answer}");
    let m = c.metrics();
    assert_eq!(m["tern_ingest_bad_requests_total"]["malformed"], 1, "{m}");
    assert_eq!(m["tern_ingest_bad_requests_total"]["too_large"], 1, "{m}");
}
