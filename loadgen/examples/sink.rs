//! A minimal OTLP sink that accepts and counts spans (gRPC on :4317, HTTP protobuf on
//! :4318), to measure the load tool on its own.
//!
//! `cargo run --release -p tern-loadgen --example sink -- [seconds]`

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

fn count(req: &ExportTraceServiceRequest) -> u64 {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len() as u64)
        .sum()
}

struct Grpc(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.fetch_add(count(request.get_ref()), Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let spans = Arc::new(AtomicU64::new(0));
    let grpc = TraceServiceServer::new(Grpc(spans.clone()))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(64 << 20);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(grpc)
            .serve("127.0.0.1:4317".parse().unwrap()),
    );
    let counter = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
            let mut raw = body.to_vec();
            if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
                raw.clear();
                let _ = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut raw);
            }
            if let Ok(req) = ExportTraceServiceRequest::decode(&raw[..]) {
                counter.fetch_add(count(&req), Relaxed);
            }
            ""
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:4318")
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut last = 0;
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = spans.load(Relaxed);
        println!("sink: {} spans/s", now - last);
        last = now;
    }
}
