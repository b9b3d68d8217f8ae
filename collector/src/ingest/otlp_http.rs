//! OTLP/HTTP: `POST /v1/traces` with protobuf or JSON bodies, gzip or identity encoded.
//!
//! Every refusal is a 4xx (or a retryable 429/503) with a `google.rpc.Status` body in
//! the request's encoding that says why, and is counted in the self-metrics.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::{AcceptError, Ingestor, RpcStatus, RETRY_AFTER_SECS};
use crate::server::metrics::BadRequest;

#[derive(Clone)]
struct HttpIngest {
    ingestor: Ingestor,
    max_bytes: usize,
}

/// The OTLP/HTTP routes.
pub fn router(ingestor: Ingestor, max_request_bytes: usize) -> Router {
    let state = Arc::new(HttpIngest {
        ingestor,
        max_bytes: max_request_bytes,
    });
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(unsupported_signal))
        .route("/v1/logs", post(unsupported_signal))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Option<Encoding> {
        let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

fn respond_status(enc: Encoding, status: StatusCode, grpc_code: i32, message: String) -> Response {
    let body = RpcStatus {
        code: grpc_code,
        message,
    };
    let bytes = match enc {
        Encoding::Protobuf => body.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&body).unwrap_or_default(),
    };
    (status, [(header::CONTENT_TYPE, enc.content_type())], bytes).into_response()
}

impl HttpIngest {
    fn refuse(
        &self,
        enc: Encoding,
        why: BadRequest,
        status: StatusCode,
        message: String,
    ) -> Response {
        self.ingestor.metrics.bad_request(why);
        tracing::debug!(reason = why.as_str(), %message, "otlp/http request refused");
        // gRPC code 3 = INVALID_ARGUMENT, per the OTLP spec for non-retryable errors.
        respond_status(enc, status, 3, message)
    }
}

async fn unsupported_signal(State(s): State<Arc<HttpIngest>>, headers: HeaderMap) -> Response {
    let enc = Encoding::from_headers(&headers).unwrap_or(Encoding::Json);
    s.ingestor
        .metrics
        .bad_request(BadRequest::UnsupportedSignal);
    respond_status(
        enc,
        StatusCode::NOT_IMPLEMENTED,
        12, // UNIMPLEMENTED
        "this signal is not supported yet: Tern ingests traces only (POST /v1/traces)".into(),
    )
}

async fn traces(State(s): State<Arc<HttpIngest>>, headers: HeaderMap, body: Body) -> Response {
    let Some(enc) = Encoding::from_headers(&headers) else {
        let got = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        return s.refuse(
            Encoding::Json,
            BadRequest::UnsupportedContentType,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {got:?}: use application/x-protobuf or application/json"
            ),
        );
    };
    let raw = match axum::body::to_bytes(body, s.max_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return s.refuse(
                enc,
                BadRequest::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body larger than the limit of {} bytes",
                    s.max_bytes
                ),
            )
        }
    };
    let body = match decode_content(&headers, raw, s.max_bytes) {
        Ok(b) => b,
        Err((why, status, message)) => return s.refuse(enc, why, status, message),
    };
    let request = match enc {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(&body[..])
            .map_err(|e| format!("malformed protobuf ExportTraceServiceRequest: {e}")),
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&body)
            .map_err(|e| format!("malformed OTLP JSON ExportTraceServiceRequest: {e}")),
    };
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            return s.refuse(enc, BadRequest::Malformed, StatusCode::BAD_REQUEST, message)
        }
    };
    match s.ingestor.accept(request).await {
        Ok(verdict) => {
            let response = ExportTraceServiceResponse {
                partial_success: (verdict.rejected > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: verdict.rejected as i64,
                    error_message: verdict.message,
                }),
            };
            let bytes = match enc {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, enc.content_type())],
                bytes,
            )
                .into_response()
        }
        Err(e) => {
            let (status, code) = match e {
                AcceptError::TooLarge { .. } => {
                    s.ingestor.metrics.bad_request(BadRequest::TooLarge);
                    return respond_status(enc, StatusCode::PAYLOAD_TOO_LARGE, 3, e.to_string());
                }
                AcceptError::Full { .. } => (StatusCode::TOO_MANY_REQUESTS, 8), // RESOURCE_EXHAUSTED
                AcceptError::Io(_) => (StatusCode::SERVICE_UNAVAILABLE, 14),    // UNAVAILABLE
            };
            let mut response = respond_status(enc, status, code, e.to_string());
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&RETRY_AFTER_SECS.to_string()).expect("digits"),
            );
            response
        }
    }
}

type Refusal = (BadRequest, StatusCode, String);

/// Undoes `Content-Encoding` (gzip or identity), never producing more than `max` bytes.
fn decode_content(headers: &HeaderMap, raw: Bytes, max: usize) -> Result<Bytes, Refusal> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity((raw.len() * 4).min(max));
            let mut decoder = flate2::read::GzDecoder::new(&raw[..]).take(max as u64 + 1);
            decoder.read_to_end(&mut out).map_err(|e| {
                (
                    BadRequest::BadEncoding,
                    StatusCode::BAD_REQUEST,
                    format!("corrupt gzip body: {e}"),
                )
            })?;
            if out.len() > max {
                return Err((
                    BadRequest::TooLarge,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed request body larger than the limit of {max} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        other => Err((
            BadRequest::BadEncoding,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content encoding {other:?}: use gzip or identity"),
        )),
    }
}
