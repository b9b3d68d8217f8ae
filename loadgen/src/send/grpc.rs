//! OTLP/gRPC: `TraceService/Export` with a codec that sends the pre-encoded protobuf
//! body as it is, so encoding stays in the generator and costs nothing here.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tern_proto::codec::RawCodec;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::retry::{parse_retry_after, MAX_RETRY_AFTER};
use super::Outcome;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Clone)]
pub(super) struct GrpcExporter {
    client: tonic::client::Grpc<Channel>,
}

impl GrpcExporter {
    pub(super) fn new(
        endpoint: &str,
        gzip: bool,
        timeout: Duration,
    ) -> Result<GrpcExporter, String> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let mut client = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(64 << 20);
        if gzip {
            client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        Ok(GrpcExporter { client })
    }

    pub(super) async fn export(&mut self, body: Bytes) -> Outcome {
        if let Err(e) = self.client.ready().await {
            return Outcome::Unreachable {
                error: e.to_string(),
            };
        }
        let path = PathAndQuery::from_static(EXPORT_PATH);
        match self
            .client
            .unary(
                tonic::Request::new(body),
                path,
                RawCodec::<ExportTraceServiceResponse>::default(),
            )
            .await
        {
            Ok(resp) => Outcome::Accepted {
                rejected_spans: resp
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_spans.max(0) as u64),
            },
            Err(status) => classify(&status),
        }
    }
}

/// Maps a gRPC status to an outcome. Statuses built on the client side (connection
/// failures) carry a source error; those sent by the server do not.
fn classify(status: &Status) -> Outcome {
    let local = std::error::Error::source(status).is_some();
    let reason = || format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable if local => Outcome::Unreachable {
            error: transport_error(status),
        },
        Code::ResourceExhausted | Code::Unavailable => Outcome::Throttled {
            retry_after: retry_after(status),
            reason: reason(),
        },
        Code::Unknown if local => Outcome::Unreachable {
            error: transport_error(status),
        },
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss => Outcome::Failed {
            error: reason(),
            retryable: true,
        },
        _ => Outcome::Failed {
            error: reason(),
            retryable: false,
        },
    }
}

fn transport_error(status: &Status) -> String {
    let mut msg = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        // Sources often repeat their wrapper's text; keep each piece once.
        let text = e.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = e.source();
    }
    msg
}

/// `google.rpc.RetryInfo` in the status details, else a `retry-after` metadata entry.
fn retry_after(status: &Status) -> Option<Duration> {
    if let Some(d) = status.get_details_retry_info().and_then(|r| r.retry_delay) {
        return Some(d.min(MAX_RETRY_AFTER));
    }
    let value = status.metadata().get("retry-after")?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}
