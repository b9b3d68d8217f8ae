//! Wire encodings of an export request: OTLP protobuf, OTLP JSON, gzip.

use std::io::Write;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// How requests are sent to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// OTLP/gRPC (`TraceService/Export`), default port 4317.
    Grpc,
    /// OTLP/HTTP with `application/x-protobuf` bodies to `/v1/traces`, default port 4318.
    HttpProtobuf,
    /// OTLP/HTTP with `application/json` bodies to `/v1/traces`, default port 4318.
    HttpJson,
}

impl Protocol {
    /// The endpoint used when none is given.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://127.0.0.1:4317",
            Protocol::HttpProtobuf | Protocol::HttpJson => "http://127.0.0.1:4318",
        }
    }

    /// The name used on the command line (`grpc`, `http-protobuf`, `http-json`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http-protobuf",
            Protocol::HttpJson => "http-json",
        }
    }

    /// The HTTP `content-type` of the bodies.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Grpc => "application/grpc",
            Protocol::HttpProtobuf => "application/x-protobuf",
            Protocol::HttpJson => "application/json",
        }
    }
}

/// Encoding failed (only JSON can).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// serde_json refused the request.
    #[error("json encoding failed: {0}")]
    Json(#[from] serde_json::Error),
}

/// The body to send for `protocol`: protobuf or JSON, gzip-compressed if asked.
/// For gRPC the body is the bare protobuf message; the gRPC layer compresses it.
pub fn encode_body(
    req: &ExportTraceServiceRequest,
    protocol: Protocol,
    gzip: bool,
) -> Result<Bytes, EncodeError> {
    let raw = match protocol {
        Protocol::Grpc | Protocol::HttpProtobuf => req.encode_to_vec(),
        Protocol::HttpJson => to_json(req)?,
    };
    Ok(Bytes::from(if gzip && protocol != Protocol::Grpc {
        gzip_bytes(&raw)
    } else {
        raw
    }))
}

/// OTLP/JSON as the specification defines it: lowerCamelCase field names, trace and
/// span ids as lowercase hex strings, enums as integers, 64-bit integers as decimal
/// strings. (opentelemetry-proto's `with-serde` derive produces exactly this; the tests
/// check it.)
pub fn to_json(req: &ExportTraceServiceRequest) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(req)
}

/// Parses OTLP/JSON back into a request.
pub fn from_json(body: &[u8]) -> Result<ExportTraceServiceRequest, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Gzip at the fast level: the sender must stay cheap next to the collector.
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use serde_json::Value;

    use super::*;
    use crate::{Mix, MixOptions};

    fn request() -> ExportTraceServiceRequest {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Mix::new(
            1,
            MixOptions {
                error_rate: 0.2,
                ..MixOptions::default()
            },
        )
        .next_request(30, now)
    }

    fn is_hex(s: &str, len: usize) -> bool {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn json_is_otlp_spec_json() {
        let req = request();
        let json: Value = serde_json::from_slice(&to_json(&req).unwrap()).unwrap();
        let mut spans = 0;
        for rs in json["resourceSpans"].as_array().unwrap() {
            assert!(rs["resource"]["attributes"].is_array());
            for ss in rs["scopeSpans"].as_array().unwrap() {
                assert!(ss["scope"]["name"].is_string());
                for span in ss["spans"].as_array().unwrap() {
                    spans += 1;
                    assert!(
                        is_hex(span["traceId"].as_str().unwrap(), 32),
                        "trace ids are hex: {}",
                        span["traceId"]
                    );
                    assert!(is_hex(span["spanId"].as_str().unwrap(), 16));
                    let parent = span["parentSpanId"].as_str().unwrap();
                    assert!(parent.is_empty() || is_hex(parent, 16));
                    assert!(span["kind"].is_u64(), "enums are integers");
                    if !span["status"].is_null() {
                        assert!(span["status"]["code"].is_u64());
                    }
                    let start = span["startTimeUnixNano"]
                        .as_str()
                        .expect("64-bit integers as strings");
                    assert!(start.parse::<u64>().is_ok());
                    assert!(span["flags"].is_u64());
                    for kv in span["attributes"].as_array().unwrap() {
                        let value = kv["value"].as_object().unwrap();
                        assert_eq!(value.len(), 1, "one typed value: {kv}");
                        let (ty, v) = value.iter().next().unwrap();
                        match ty.as_str() {
                            "stringValue" => assert!(v.is_string()),
                            "intValue" => assert!(v.as_str().unwrap().parse::<i64>().is_ok()),
                            "boolValue" => assert!(v.is_boolean()),
                            "doubleValue" => assert!(v.is_number()),
                            other => panic!("unexpected value type {other}"),
                        }
                    }
                    for ev in span["events"].as_array().unwrap() {
                        assert!(ev["timeUnixNano"].as_str().unwrap().parse::<u64>().is_ok());
                    }
                }
            }
        }
        assert!(spans > 100);
    }

    #[test]
    fn json_round_trips() {
        let req = request();
        assert_eq!(from_json(&to_json(&req).unwrap()).unwrap(), req);
        // Integers written as JSON numbers (also allowed by the spec) parse too.
        let first = &req.resource_spans[0].scope_spans[0].spans[0];
        let id = hex::encode(&first.span_id);
        let doc = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{}","spanId":"{id}","name":"x","kind":2,"startTimeUnixNano":1,"endTimeUnixNano":2}}]}}]}}]}}"#,
            hex::encode(&first.trace_id)
        );
        let parsed = from_json(doc.as_bytes()).unwrap();
        assert_eq!(
            parsed.resource_spans[0].scope_spans[0].spans[0].span_id,
            first.span_id
        );
    }

    #[test]
    fn protobuf_round_trips_and_gzip_shrinks_it() {
        let req = request();
        let body = encode_body(&req, Protocol::HttpProtobuf, false).unwrap();
        assert_eq!(
            ExportTraceServiceRequest::decode(body.clone()).unwrap(),
            req
        );
        let zipped = encode_body(&req, Protocol::HttpProtobuf, true).unwrap();
        assert!(zipped.len() < body.len() / 2);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut out)
            .unwrap();
        assert_eq!(out, body);
        // gRPC bodies stay bare: tonic compresses them.
        assert_eq!(encode_body(&req, Protocol::Grpc, true).unwrap(), body);
    }
}
