//! OTLP/HTTP: POST to `/v1/traces` with protobuf or JSON bodies, optionally gzip.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use reqwest::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use super::retry::parse_retry_after;
use super::{Outcome, SendError};
use crate::encode::Protocol;

#[derive(Clone)]
pub(super) struct HttpExporter {
    client: reqwest::Client,
    url: String,
    protocol: Protocol,
    gzip: bool,
}

impl HttpExporter {
    pub(super) fn new(
        url: &str,
        protocol: Protocol,
        gzip: bool,
        timeout: Duration,
    ) -> Result<HttpExporter, SendError> {
        reqwest::Url::parse(url).map_err(|e| SendError::InvalidEndpoint {
            endpoint: url.to_string(),
            reason: e.to_string(),
        })?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| SendError::Client(e.to_string()))?;
        Ok(HttpExporter {
            client,
            url: url.to_string(),
            protocol,
            gzip,
        })
    }

    pub(super) async fn export(&mut self, body: Bytes) -> Outcome {
        let mut req = self.client.post(&self.url).header(
            CONTENT_TYPE,
            HeaderValue::from_static(self.protocol.content_type()),
        );
        if self.gzip {
            req = req.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport_failure(&e),
        };
        if status.is_success() {
            return Outcome::Accepted {
                rejected_spans: rejected_spans(&body, json),
            };
        }
        let reason = format!("HTTP {}", status.as_u16());
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Outcome::Throttled {
                retry_after,
                reason,
            },
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Outcome::Failed {
                error: reason,
                retryable: true,
            },
            _ => {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                Outcome::Failed {
                    error: format!("{reason}: {}", text.trim()),
                    retryable: false,
                }
            }
        }
    }
}

fn transport_failure(e: &reqwest::Error) -> Outcome {
    let mut error = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // Sources often repeat their wrapper's text; keep each piece once.
        let text = s.to_string();
        if !error.contains(&text) {
            error.push_str(": ");
            error.push_str(&text);
        }
        source = s.source();
    }
    if e.is_connect() {
        Outcome::Unreachable { error }
    } else {
        Outcome::Failed {
            error,
            retryable: true,
        }
    }
}

/// `partial_success.rejected_spans` of a success body (protobuf or JSON, may be empty).
fn rejected_spans(body: &[u8], json: bool) -> u64 {
    if body.is_empty() {
        return 0;
    }
    if json {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return 0;
        };
        let r = &v["partialSuccess"]["rejectedSpans"];
        return r
            .as_u64()
            .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
    }
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rejected_spans_from_json_and_protobuf_bodies() {
        assert_eq!(
            rejected_spans(br#"{"partialSuccess":{"rejectedSpans":"3"}}"#, true),
            3
        );
        assert_eq!(
            rejected_spans(br#"{"partialSuccess":{"rejectedSpans":4}}"#, true),
            4
        );
        assert_eq!(rejected_spans(b"{}", true), 0);
        let resp = ExportTraceServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess {
                    rejected_spans: 5,
                    error_message: "too old".into(),
                },
            ),
        };
        assert_eq!(rejected_spans(&resp.encode_to_vec(), false), 5);
        assert_eq!(rejected_spans(b"", false), 0);
    }
}
