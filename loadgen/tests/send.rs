//! Runs against fake OTLP collectors on loopback: backpressure with Retry-After /
//! RetryInfo, partial success, gzip, JSON, and an unreachable endpoint.

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tern_loadgen::encode::from_json;
use tern_loadgen::run::{run, RunConfig};
use tern_loadgen::{MixOptions, Protocol};
use tonic_types::{ErrorDetails, StatusExt};

/// What a fake collector saw.
#[derive(Default)]
struct Seen {
    /// Arrival time of every request, accepted or not.
    arrivals: Vec<Instant>,
    /// Spans in accepted requests.
    spans: u64,
}

fn span_count(req: &ExportTraceServiceRequest) -> u64 {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len() as u64)
        .sum()
}

const REJECT_PER_REQUEST: i64 = 2;

/// OTLP/HTTP: answers the first request 429 with `Retry-After: 1`, then accepts with
/// a partial success of two rejected spans.
async fn http_export(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let first = {
        let mut s = seen.lock().unwrap();
        s.arrivals.push(Instant::now());
        s.arrivals.len() == 1
    };
    if first {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    let mut raw = body.to_vec();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        raw.clear();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .unwrap();
    }
    let json = headers
        .get("content-type")
        .is_some_and(|v| v == "application/json");
    let req = if json {
        from_json(&raw).unwrap()
    } else {
        ExportTraceServiceRequest::decode(&raw[..]).unwrap()
    };
    seen.lock().unwrap().spans += span_count(&req);
    if json {
        let body = format!(
            r#"{{"partialSuccess":{{"rejectedSpans":"{REJECT_PER_REQUEST}","errorMessage":"too old"}}}}"#
        );
        ([("content-type", "application/json")], body).into_response()
    } else {
        let resp = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: REJECT_PER_REQUEST,
                error_message: "too old".into(),
            }),
        };
        (
            [("content-type", "application/x-protobuf")],
            resp.encode_to_vec(),
        )
            .into_response()
    }
}

async fn start_http(seen: Arc<Mutex<Seen>>) -> String {
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(http_export))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn config(endpoint: String, protocol: Protocol, gzip: bool, duration: Duration) -> RunConfig {
    RunConfig {
        endpoint,
        protocol,
        gzip,
        rate: 100.0,
        duration: Some(duration),
        batch: 10,
        concurrency: 1,
        seed: 3,
        mix: MixOptions::default(),
        report_every: None,
        timeout: Duration::from_secs(5),
        stop_on_ctrl_c: false,
        replay: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_runs_honour_retry_after_and_count_rejected_spans() {
    for (protocol, gzip) in [(Protocol::HttpProtobuf, true), (Protocol::HttpJson, false)] {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let endpoint = start_http(seen.clone()).await;
        let summary = run(config(
            endpoint,
            protocol,
            gzip,
            Duration::from_millis(2500),
        ))
        .await
        .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(summary.throttled, 1, "{protocol:?}: {summary:?}");
        assert!(summary.requests_ok >= 2, "{protocol:?}: {summary:?}");
        assert_eq!(
            summary.rejected_spans,
            summary.requests_ok * REJECT_PER_REQUEST as u64
        );
        assert_eq!(
            summary.spans, seen.spans,
            "every accepted span arrived once"
        );
        assert_eq!(summary.errors, 0);
        let gap = seen.arrivals[1] - seen.arrivals[0];
        assert!(
            gap >= Duration::from_millis(950),
            "retried after Retry-After, not before ({gap:?})"
        );
    }
}

/// OTLP/gRPC: the first export is refused with RESOURCE_EXHAUSTED and a RetryInfo of
/// 700 ms; later ones are accepted with a partial success.
struct FakeGrpc(Arc<Mutex<Seen>>);

#[tonic::async_trait]
impl TraceService for FakeGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        seen.arrivals.push(Instant::now());
        if seen.arrivals.len() == 1 {
            let details = ErrorDetails::with_retry_info(Some(Duration::from_millis(700)));
            return Err(tonic::Status::with_error_details(
                tonic::Code::ResourceExhausted,
                "busy",
                details,
            ));
        }
        seen.spans += span_count(request.get_ref());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: REJECT_PER_REQUEST,
                error_message: String::new(),
            }),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_runs_honour_retry_info_with_gzip() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(FakeGrpc(seen.clone()))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream_from(listener)),
    );
    let summary = run(config(
        format!("http://{addr}"),
        Protocol::Grpc,
        true,
        Duration::from_millis(2000),
    ))
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(summary.throttled, 1, "{summary:?}");
    assert!(summary.requests_ok >= 2, "{summary:?}");
    assert_eq!(
        summary.rejected_spans,
        summary.requests_ok * REJECT_PER_REQUEST as u64
    );
    assert_eq!(summary.spans, seen.spans);
    let gap = seen.arrivals[1] - seen.arrivals[0];
    assert!(
        gap >= Duration::from_millis(650),
        "retried after RetryInfo ({gap:?})"
    );
}

/// The listener as a stream of connections for tonic.
fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}

/// A loopback port with nothing listening.
fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_are_counted_not_fatal() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let summary = run(config(
            dead_endpoint(),
            protocol,
            false,
            Duration::from_millis(700),
        ))
        .await
        .unwrap();
        assert_eq!(summary.requests_ok, 0, "{protocol:?}");
        assert!(
            summary.unreachable > 0 && summary.errors >= summary.unreachable,
            "{protocol:?}: {summary:?}"
        );
        assert_eq!(
            summary.throttled, 0,
            "{protocol:?}: connection failures are not backpressure"
        );
        assert!(summary.last_error.is_some());
    }
}

#[test]
fn the_binary_exits_non_zero_when_the_endpoint_is_unreachable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern-loadgen"))
        .args([
            "--endpoint",
            &dead_endpoint(),
            "--duration",
            "700ms",
            "--report-every",
            "0s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unreachable for the whole run"), "{stderr}");
}

#[test]
fn the_binary_prints_the_mix_progress_and_a_summary() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let endpoint = runtime.block_on(start_http(seen.clone()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern-loadgen"))
        .args([
            "--protocol",
            "http-protobuf",
            "--endpoint",
            &endpoint,
            "--duration",
            "2500ms",
        ])
        .args(["--report-every", "1s", "--rate", "50", "--batch", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("spans/transaction") && stdout.contains("bytes/span"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("spans/s") && l.contains("throttled 1")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("summary:")),
        "{stdout}"
    );
    assert!(seen.lock().unwrap().spans > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_runs_send_whole_batches_of_valid_requests() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let endpoint = start_http(seen.clone()).await;
    let mut cfg = config(
        endpoint.clone(),
        Protocol::HttpProtobuf,
        true,
        Duration::from_millis(2000),
    );
    cfg.replay = Some(4);
    let summary = run(cfg).await.unwrap();
    assert!(summary.requests_ok >= 2, "{summary:?}");
    assert_eq!(
        summary.traces,
        summary.requests_ok * 10,
        "whole batches only"
    );
    assert_eq!(summary.spans, seen.lock().unwrap().spans);

    let mut cfg = config(
        endpoint,
        Protocol::HttpJson,
        false,
        Duration::from_millis(100),
    );
    cfg.replay = Some(4);
    assert!(run(cfg).await.is_err(), "json bodies cannot be replayed");
}
