//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, gzip
//! accepted. Metrics and logs services answer UNIMPLEMENTED with a clear message.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{AcceptError, Ingestor, RETRY_AFTER_SECS};
use crate::server::metrics::{BadRequest, Metrics};

/// The trace service.
pub struct GrpcTraces {
    pub ingestor: Ingestor,
}

#[tonic::async_trait]
impl TraceService for GrpcTraces {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        match self.ingestor.accept(request.into_inner()).await {
            Ok(verdict) => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: (verdict.rejected > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: verdict.rejected as i64,
                    error_message: verdict.message,
                }),
            })),
            Err(e @ AcceptError::Full { .. }) => Err(Status::with_error_details(
                Code::ResourceExhausted,
                e.to_string(),
                // RetryInfo makes RESOURCE_EXHAUSTED retryable for OTLP exporters.
                ErrorDetails::with_retry_info(Some(Duration::from_secs(RETRY_AFTER_SECS))),
            )),
            Err(e @ AcceptError::TooLarge { .. }) => Err(Status::invalid_argument(e.to_string())),
            Err(e @ AcceptError::Io(_)) => Err(Status::unavailable(e.to_string())),
        }
    }
}

/// Builds the trace service with the size limit and gzip.
pub fn trace_server(
    ingestor: Ingestor,
    max_request_bytes: usize,
) -> TraceServiceServer<GrpcTraces> {
    TraceServiceServer::new(GrpcTraces { ingestor })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes)
}

/// Metrics and logs: not ingested yet, said clearly.
pub struct Unsupported {
    pub ingestor: Ingestor,
}

impl Unsupported {
    fn refuse(&self, signal: &str) -> Status {
        self.ingestor
            .metrics
            .bad_request(BadRequest::UnsupportedSignal);
        Status::unimplemented(format!(
            "the {signal} signal is not supported yet: Tern ingests traces only"
        ))
    }
}

#[tonic::async_trait]
impl MetricsService for Unsupported {
    async fn export(
        &self,
        _: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        Err(self.refuse("metrics"))
    }
}

/// The logs half of [`Unsupported`] (a separate value: tonic takes services by value).
pub struct UnsupportedLogs(pub Unsupported);

#[tonic::async_trait]
impl LogsService for UnsupportedLogs {
    async fn export(
        &self,
        _: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Err(self.0.refuse("logs"))
    }
}

pub fn metrics_server(ingestor: Ingestor) -> MetricsServiceServer<Unsupported> {
    MetricsServiceServer::new(Unsupported { ingestor })
}

pub fn logs_server(ingestor: Ingestor) -> LogsServiceServer<UnsupportedLogs> {
    LogsServiceServer::new(UnsupportedLogs(Unsupported { ingestor }))
}

/// Counts the requests tonic's decoder refuses before a handler runs, and answers them
/// as INVALID_ARGUMENT: tonic says INTERNAL for a malformed message and OUT_OF_RANGE for
/// one over the size limit, and OTLP exporters retry OUT_OF_RANGE, so an oversized batch
/// would be sent again forever.
pub fn decode_refusals(
    metrics: Arc<Metrics>,
) -> tower::util::MapResponseLayer<
    impl FnMut(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> + Clone,
> {
    tower::util::MapResponseLayer::new(move |mut res: http::Response<tonic::body::Body>| {
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok());
        let code = header("grpc-status").and_then(|v| v.parse::<i32>().ok());
        // grpc-message is percent-encoded.
        let message = header("grpc-message").unwrap_or("").replace("%20", " ");
        let refused = match code {
            Some(c) if c == Code::Internal as i32 && message.contains("decode") => {
                Some(BadRequest::Malformed)
            }
            Some(c) if c == Code::OutOfRange as i32 && message.contains("too large") => {
                Some(BadRequest::TooLarge)
            }
            _ => None,
        };
        if let Some(why) = refused {
            metrics.bad_request(why);
            res.headers_mut().insert(
                "grpc-status",
                http::HeaderValue::from(Code::InvalidArgument as i32),
            );
        }
        res
    })
}
