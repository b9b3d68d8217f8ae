//! A shallow, allocation-free walk over one frame's protobuf: checks that it is a
//! well-formed `ExportTraceServiceRequest` down to the spans, counts the spans and finds
//! the resource's `service.name`. Frames are forwarded as the bytes they are (requests
//! concatenate into one request), so this walk is all the decoding the forwarder does.

/// Why a frame is not a well-formed `ExportTraceServiceRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// A varint, a length or a field runs past the end of its message.
    #[error("truncated protobuf")]
    Truncated,
    /// A field uses a wire type that protobuf 3 does not have (groups, 6, 7).
    #[error("invalid wire type {0}")]
    WireType(u8),
    /// A field number of zero.
    #[error("field number zero")]
    FieldZero,
}

/// What the forwarder needs to know about a frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// Spans in the frame.
    pub spans: usize,
    /// The first resource's `service.name`, when it has one.
    pub service: Option<String>,
}

/// One protobuf field: number and value.
enum Value<'a> {
    Varint,
    Fixed,
    Bytes(&'a [u8]),
}

struct Fields<'a> {
    rest: &'a [u8],
}

fn varint(b: &mut &[u8]) -> Result<u64, ScanError> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&byte, tail) = b.split_first().ok_or(ScanError::Truncated)?;
        *b = tail;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ScanError::Truncated)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Value<'a>), ScanError> {
        let key = varint(&mut self.rest)?;
        let number = key >> 3;
        if number == 0 {
            return Err(ScanError::FieldZero);
        }
        let take = |rest: &mut &'a [u8], n: usize| -> Result<&'a [u8], ScanError> {
            if rest.len() < n {
                return Err(ScanError::Truncated);
            }
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            Ok(head)
        };
        let value = match key & 7 {
            0 => {
                varint(&mut self.rest)?;
                Value::Varint
            }
            1 => {
                take(&mut self.rest, 8)?;
                Value::Fixed
            }
            5 => {
                take(&mut self.rest, 4)?;
                Value::Fixed
            }
            2 => {
                let n = varint(&mut self.rest)?;
                let n = usize::try_from(n).map_err(|_| ScanError::Truncated)?;
                Value::Bytes(take(&mut self.rest, n)?)
            }
            w => return Err(ScanError::WireType(w as u8)),
        };
        Ok((number, value))
    }
}

fn fields(b: &[u8]) -> Fields<'_> {
    Fields { rest: b }
}

/// Checks that `b` is a sequence of well-formed fields.
fn well_formed(b: &[u8]) -> Result<(), ScanError> {
    fields(b).try_for_each(|f| f.map(drop))
}

/// Walks `frame` (an encoded `ExportTraceServiceRequest`).
pub fn scan(frame: &[u8]) -> Result<FrameInfo, ScanError> {
    let mut info = FrameInfo::default();
    for f in fields(frame) {
        // ExportTraceServiceRequest.resource_spans = 1
        let (1, Value::Bytes(resource_spans)) = f? else {
            continue;
        };
        for f in fields(resource_spans) {
            match f? {
                // ResourceSpans.resource = 1
                (1, Value::Bytes(resource)) => {
                    let service = service_name(resource)?;
                    if info.service.is_none() {
                        info.service = service.map(str::to_string);
                    }
                }
                // ResourceSpans.scope_spans = 2
                (2, Value::Bytes(scope_spans)) => {
                    for f in fields(scope_spans) {
                        // ScopeSpans.spans = 2
                        if let (2, Value::Bytes(span)) = f? {
                            well_formed(span)?;
                            info.spans += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(info)
}

/// `service.name` among a `Resource`'s attributes.
fn service_name(resource: &[u8]) -> Result<Option<&str>, ScanError> {
    let mut found = None;
    for f in fields(resource) {
        // Resource.attributes = 1 (KeyValue: key = 1, value = 2 AnyValue: string_value = 1)
        let (1, Value::Bytes(kv)) = f? else { continue };
        let (mut key, mut value) = (None, None);
        for f in fields(kv) {
            match f? {
                (1, Value::Bytes(k)) => key = Some(k),
                (2, Value::Bytes(v)) => value = Some(v),
                _ => {}
            }
        }
        if key != Some(b"service.name".as_slice()) || found.is_some() {
            continue;
        }
        for f in fields(value.unwrap_or_default()) {
            if let (1, Value::Bytes(s)) = f? {
                found = std::str::from_utf8(s).ok();
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    pub(crate) fn request(service: &str, spans: usize) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(service.into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans)
                        .map(|i| Span {
                            name: format!("span {i}"),
                            trace_id: vec![1; 16],
                            span_id: vec![i as u8 + 1; 8],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn counts_spans_and_finds_the_service_name() {
        let info = scan(&request("shop", 3)).unwrap();
        assert_eq!(info.spans, 3);
        assert_eq!(info.service.as_deref(), Some("shop"));
        assert_eq!(scan(&[]).unwrap(), FrameInfo::default());
    }

    #[test]
    fn two_frames_concatenated_are_one_request_with_both() {
        let mut both = request("shop", 2);
        both.extend(request("shop", 5));
        assert_eq!(scan(&both).unwrap().spans, 7);
        let req = ExportTraceServiceRequest::decode(both.as_slice()).unwrap();
        assert_eq!(req.resource_spans.len(), 2);
    }

    #[test]
    fn garbage_and_truncated_frames_are_errors() {
        let good = request("shop", 2);
        assert_eq!(
            scan(&good[..good.len() - 3]).unwrap_err(),
            ScanError::Truncated
        );
        assert!(scan(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert_eq!(scan(b"\x0f").unwrap_err(), ScanError::WireType(7));
        assert_eq!(scan(b"\x00\x01").unwrap_err(), ScanError::FieldZero);
        assert!(scan(b"this is not protobuf at all").is_err());
    }
}
