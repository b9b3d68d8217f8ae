//! Writing OTLP trace requests (`ExportTraceServiceRequest`) straight as protobuf bytes,
//! for both agents: the Rust layer's exporter thread and the PHP extension at request end.
//! Building the `opentelemetry-proto` structs first costs about ten small allocations per
//! span and prost's nested length computations; writing the wire format directly needs
//! neither.
//!
//! A nested message is written into a scratch buffer and appended with its length
//! ([`put_bytes`]); a request is assembled by [`Envelope`], which leaves room in front of
//! the spans for the request header (whose lengths are known only at the end).

/// Protobuf wire types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum WireType {
    /// Varint.
    Varint = 0,
    /// 64-bit little-endian.
    SixtyFourBit = 1,
    /// Length-delimited (strings, bytes, messages).
    LengthDelimited = 2,
}

/// OTLP `Span.SpanKind` values.
pub mod kind {
    /// `SPAN_KIND_INTERNAL`.
    pub const INTERNAL: u64 = 1;
    /// `SPAN_KIND_SERVER`.
    pub const SERVER: u64 = 2;
    /// `SPAN_KIND_CLIENT`.
    pub const CLIENT: u64 = 3;
    /// `SPAN_KIND_PRODUCER`.
    pub const PRODUCER: u64 = 4;
    /// `SPAN_KIND_CONSUMER`.
    pub const CONSUMER: u64 = 5;
}

/// Field numbers of `Span`.
pub mod span {
    /// `trace_id` (bytes).
    pub const TRACE_ID: u32 = 1;
    /// `span_id` (bytes).
    pub const SPAN_ID: u32 = 2;
    /// `parent_span_id` (bytes).
    pub const PARENT_SPAN_ID: u32 = 4;
    /// `name`.
    pub const NAME: u32 = 5;
    /// `kind`.
    pub const KIND: u32 = 6;
    /// `start_time_unix_nano` (fixed64).
    pub const START: u32 = 7;
    /// `end_time_unix_nano` (fixed64).
    pub const END: u32 = 8;
    /// `attributes` (repeated `KeyValue`).
    pub const ATTRIBUTES: u32 = 9;
    /// `events` (repeated `Event`).
    pub const EVENTS: u32 = 11;
    /// `status`.
    pub const STATUS: u32 = 15;
}

/// A protobuf varint (prost's generic `encode_varint` costs several times more on a `Vec`).
#[inline]
pub fn put_varint_raw(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Bytes a varint of `v` takes.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A field key.
#[inline]
pub fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    put_varint_raw(u64::from(tag << 3 | wire_type as u32), buf);
}

/// A length-delimited field (string, bytes or an already encoded message).
#[inline]
pub fn put_bytes(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(buf, tag, WireType::LengthDelimited);
    put_varint_raw(b.len() as u64, buf);
    buf.extend_from_slice(b);
}

/// A fixed64 field.
#[inline]
pub fn put_fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(buf, tag, WireType::SixtyFourBit);
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A varint field (also `int64`/`int32`/enums: negative values as their two's complement).
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(buf, tag, WireType::Varint);
    put_varint_raw(v, buf);
}

/// A borrowed attribute value (`AnyValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `string_value`.
    Str(&'a str),
    /// `int_value`.
    I64(i64),
    /// `double_value`.
    F64(f64),
    /// `bool_value`.
    Bool(bool),
}

impl<'a> Value<'a> {
    /// The string, when it is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl Value<'_> {
    /// Encoded length of the `AnyValue` message.
    #[inline]
    fn len(&self) -> usize {
        match self {
            Value::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
            Value::I64(i) => 1 + varint_len(*i as u64),
            Value::F64(_) => 9,
            Value::Bool(_) => 2,
        }
    }

    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Value::Str(s) => put_bytes(buf, 1, s.as_bytes()),
            Value::Bool(b) => put_varint(buf, 2, *b as u64),
            Value::I64(i) => put_varint(buf, 3, *i as u64),
            Value::F64(f) => {
                put_key(buf, 4, WireType::SixtyFourBit);
                buf.extend_from_slice(&f.to_le_bytes());
            }
        }
    }
}

/// A `KeyValue` as field `tag` of the enclosing message (its length computed, not
/// buffered).
#[inline]
pub fn put_kv(buf: &mut Vec<u8>, tag: u32, key: &str, v: Value<'_>) {
    let k = key.as_bytes();
    // The common cases (a short string or an integer): every tag and length is one byte,
    // so the message is written in one go.
    match v {
        Value::Str(s) if s.len() < 120 => {
            let mut any = [0u8; SHORT_HEAD];
            any[..2].copy_from_slice(&[0x0a, s.len() as u8]); // string_value, length
            if put_short_kv(buf, tag, k, (any, 2), s.as_bytes()) {
                return;
            }
        }
        Value::I64(i) => {
            let mut any = [0u8; SHORT_HEAD];
            any[0] = 3 << 3; // int_value, varint
            let n = 1 + write_varint(i as u64, &mut any[1..]);
            if put_short_kv(buf, tag, k, (any, n), &[]) {
                return;
            }
        }
        _ => {}
    }
    let vlen = v.len();
    let len = 1 + varint_len(k.len() as u64) + k.len() + 1 + varint_len(vlen as u64) + vlen;
    put_key(buf, tag, WireType::LengthDelimited);
    put_varint_raw(len as u64, buf);
    put_bytes(buf, 1, k);
    put_key(buf, 2, WireType::LengthDelimited);
    put_varint_raw(vlen as u64, buf);
    v.encode(buf);
}

/// `v` as a varint into `out` (at least 10 bytes); returns the bytes written.
#[inline]
fn write_varint(mut v: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        out[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    n + 1
}

/// Room for the head of a short `AnyValue` (its key byte and a length or a varint).
const SHORT_HEAD: usize = 12;

/// A `KeyValue` whose tag and lengths each fit one byte (`tag` < 16, the message < 128
/// bytes), its `AnyValue` body being the first `head.1` bytes of `head.0` then `tail`;
/// false (nothing written) when it does not fit.
#[inline]
fn put_short_kv(
    buf: &mut Vec<u8>,
    tag: u32,
    key: &[u8],
    head: ([u8; SHORT_HEAD], usize),
    tail: &[u8],
) -> bool {
    let (head, head_len) = head;
    let vlen = head_len + tail.len();
    let len = 2 + key.len() + 2 + vlen;
    if tag >= 16 || len >= 128 || head_len > SHORT_HEAD {
        return false;
    }
    let total = 2 + len;
    // The whole head array is copied (a fixed-size copy, no call) and `tail` written
    // over what follows its used part: room for the unused rest is reserved too.
    buf.reserve(total + SHORT_HEAD);
    // SAFETY: `total + SHORT_HEAD` bytes were reserved past the length. Written: 4 bytes,
    // the key, 2 bytes, SHORT_HEAD bytes, then `tail` from 2 + key + 2 + head_len on;
    // every write ends within `total + SHORT_HEAD`, and the length covers the `total`
    // bytes that are the message.
    unsafe {
        let p = buf.as_mut_ptr().add(buf.len());
        p.cast::<[u8; 4]>().write_unaligned([
            (tag << 3 | WireType::LengthDelimited as u32) as u8,
            len as u8,
            0x0a,
            key.len() as u8,
        ]);
        std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(4), key.len());
        let q = p.add(4 + key.len());
        q.cast::<[u8; 2]>().write_unaligned([0x12, vlen as u8]);
        q.add(2).cast::<[u8; SHORT_HEAD]>().write_unaligned(head);
        std::ptr::copy_nonoverlapping(tail.as_ptr(), q.add(2 + head_len), tail.len());
        buf.set_len(buf.len() + total);
    }
    true
}

/// An attribute of a span (field 9).
#[inline]
pub fn put_attr(buf: &mut Vec<u8>, key: &str, v: Value<'_>) {
    put_kv(buf, span::ATTRIBUTES, key, v);
}

/// An `exception` event (`Span.events`, field 11) with `exception.type`,
/// `exception.message` and, when given, `exception.stacktrace`; `scratch` is reused.
pub fn put_exception_event(
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    time_unix_nano: u64,
    kind: &str,
    message: &str,
    stacktrace: Option<&str>,
) {
    scratch.clear();
    put_fixed64(scratch, 1, time_unix_nano);
    put_bytes(scratch, 2, b"exception");
    put_kv(scratch, 3, "exception.type", Value::Str(kind));
    put_kv(scratch, 3, "exception.message", Value::Str(message));
    if let Some(st) = stacktrace {
        put_kv(scratch, 3, "exception.stacktrace", Value::Str(st));
    }
    put_bytes(buf, span::EVENTS, scratch);
}

/// An error `Status` (`Span.status`, field 15) with `message`.
pub fn put_error_status(buf: &mut Vec<u8>, message: &str) {
    let len = if message.is_empty() {
        0
    } else {
        1 + varint_len(message.len() as u64) + message.len()
    } + 2;
    put_key(buf, span::STATUS, WireType::LengthDelimited);
    put_varint_raw(len as u64, buf);
    if !message.is_empty() {
        put_bytes(buf, 2, message.as_bytes());
    }
    put_varint(buf, 3, 2); // STATUS_CODE_ERROR
}

/// The request around the spans: one `ResourceSpans` with the resource and one
/// `ScopeSpans` with the scope, both encoded once.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `ResourceSpans.resource` (field 1), encoded.
    resource: Vec<u8>,
    /// `ScopeSpans.scope` (field 1), encoded.
    scope: Vec<u8>,
}

/// Longest varint of a length written by [`Envelope`] (requests stay far below 4 GiB).
const MAX_LEN_VARINT: usize = 5;

impl Envelope {
    /// The envelope of a process: its resource attributes and instrumentation scope.
    pub fn new(resource: &[(&str, Value<'_>)], scope_name: &str, scope_version: &str) -> Self {
        let mut attrs = Vec::new();
        for (k, v) in resource {
            put_kv(&mut attrs, 1, k, *v);
        }
        let mut res = Vec::new();
        put_bytes(&mut res, 1, &attrs);
        let mut scope_msg = Vec::new();
        put_bytes(&mut scope_msg, 1, scope_name.as_bytes());
        put_bytes(&mut scope_msg, 2, scope_version.as_bytes());
        let mut scope = Vec::new();
        put_bytes(&mut scope, 1, &scope_msg);
        Envelope {
            resource: res,
            scope,
        }
    }

    /// Bytes kept free in front of the spans for the header.
    pub fn head_room(&self) -> usize {
        1 + MAX_LEN_VARINT + self.resource.len() + 1 + MAX_LEN_VARINT + self.scope.len()
    }

    /// Starts a request in `out` (cleared) at offset `at`: room for the header, then the
    /// spans are appended with [`Envelope::push_span`].
    pub fn begin(&self, out: &mut Vec<u8>, at: usize) {
        out.clear();
        out.resize(at + self.head_room(), 0);
    }

    /// Appends one encoded `Span` message.
    #[inline]
    pub fn push_span(out: &mut Vec<u8>, span: &[u8]) {
        put_bytes(out, 2, span);
    }

    /// Writes the header right-aligned in front of the spans of the request begun at
    /// `at` and returns where the request starts (`out[start..]` is the request).
    pub fn finish(&self, out: &mut [u8], at: usize) -> usize {
        let head_room = self.head_room();
        let spans_len = out.len() - at - head_room;
        let scope_spans_len = self.scope.len() + spans_len;
        let resource_spans_len =
            self.resource.len() + 1 + varint_len(scope_spans_len as u64) + scope_spans_len;
        let mut head = Vec::with_capacity(head_room);
        put_key(&mut head, 1, WireType::LengthDelimited);
        put_varint_raw(resource_spans_len as u64, &mut head);
        head.extend_from_slice(&self.resource);
        put_key(&mut head, 2, WireType::LengthDelimited);
        put_varint_raw(scope_spans_len as u64, &mut head);
        head.extend_from_slice(&self.scope);
        let start = at + head_room - head.len();
        out[start..at + head_room].copy_from_slice(&head);
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_prost_at_every_length() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
            -3i64 as u64,
        ] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_varint_raw(v, &mut ours);
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(varint_len(v), prost::encoding::encoded_len_varint(v), "{v}");
        }
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint_raw(v, &mut b);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
        let mut b = Vec::new();
        put_varint_raw(300, &mut b);
        assert_eq!(b, [0xac, 0x02]);
    }

    #[test]
    fn a_request_has_its_header_right_in_front_of_its_spans() {
        let env = Envelope::new(&[("service.name", Value::Str("shop"))], "tern", "1");
        let mut out = vec![9; 3];
        env.begin(&mut out, 4);
        let mut span = Vec::new();
        put_bytes(&mut span, span::NAME, b"x");
        Envelope::push_span(&mut out, &span);
        let start = env.finish(&mut out, 4);
        assert!(start >= 4);
        // ResourceSpans (field 1, length-delimited) is the request's only field.
        assert_eq!(out[start], 0x0a);
        assert_eq!(*out.last().unwrap(), b'x');
    }

    #[test]
    fn key_values_are_byte_for_byte_what_prost_writes_at_every_size() {
        use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
        let long = "k".repeat(130);
        let text = "v".repeat(300);
        for key in ["a", "db.query.text", &long[..60], &long] {
            let mut values: Vec<Value> = [0, 1, 2, 60, 115, 119, 120, 121, 127, 128, 300]
                .iter()
                .map(|&n| Value::Str(&text[..n]))
                .collect();
            values.extend(
                [0, 1, -1, 127, 128, 300, i64::MAX, i64::MIN]
                    .iter()
                    .map(|&i| Value::I64(i)),
            );
            values.extend([Value::F64(0.5), Value::Bool(true)]);
            for v in values {
                for tag in [1, 9, 15, 16] {
                    let mut buf = vec![0xee];
                    put_kv(&mut buf, tag, key, v);
                    let any = match v {
                        Value::Str(s) => V::StringValue(s.into()),
                        Value::I64(i) => V::IntValue(i),
                        Value::F64(f) => V::DoubleValue(f),
                        Value::Bool(b) => V::BoolValue(b),
                    };
                    let kv = KeyValue {
                        key: key.into(),
                        value: Some(AnyValue { value: Some(any) }),
                        ..Default::default()
                    };
                    let mut want = vec![0xee];
                    prost::encoding::message::encode(tag, &kv, &mut want);
                    assert_eq!(buf, want, "key {} value {v:?} tag {tag}", key.len());
                }
            }
        }
    }

    #[test]
    fn prost_decodes_what_is_written() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
        use prost::Message;

        let env = Envelope::new(
            &[
                ("service.name", Value::Str("shop")),
                ("process.pid", Value::I64(-7)),
            ],
            "tern-php",
            "0.1.0",
        );
        let mut out = Vec::new();
        env.begin(&mut out, 4);
        let (mut span, mut scratch) = (Vec::new(), Vec::new());
        for n in 0..2u8 {
            span.clear();
            put_bytes(&mut span, span::TRACE_ID, &[n; 16]);
            put_bytes(&mut span, span::SPAN_ID, &[n + 1; 8]);
            put_bytes(&mut span, span::NAME, "x".repeat(200).as_bytes());
            put_varint(&mut span, span::KIND, kind::CLIENT);
            put_fixed64(&mut span, span::START, 10);
            put_fixed64(&mut span, span::END, 20);
            put_attr(&mut span, "db.query.text", Value::Str(&"q".repeat(300)));
            put_attr(&mut span, "rows", Value::I64(-3));
            put_attr(&mut span, "ratio", Value::F64(0.5));
            put_attr(&mut span, "cached", Value::Bool(true));
            if n == 1 {
                put_exception_event(&mut span, &mut scratch, 15, "E", "boom", Some("a.php:3"));
                put_error_status(&mut span, "boom");
            }
            Envelope::push_span(&mut out, &span);
        }
        let start = env.finish(&mut out, 4);
        let req = ExportTraceServiceRequest::decode(&out[start..]).unwrap();
        let rs = &req.resource_spans[0];
        let res = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(res[0].key, "service.name");
        assert_eq!(res[1].value.as_ref().unwrap().value, Some(V::IntValue(-7)));
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "tern-php");
        assert_eq!(ss.spans.len(), 2);
        let s = &ss.spans[1];
        assert_eq!(
            (s.trace_id.as_slice(), s.span_id.as_slice()),
            (&[1u8; 16][..], &[2u8; 8][..])
        );
        assert_eq!(s.name, "x".repeat(200));
        assert_eq!(
            (s.kind, s.start_time_unix_nano, s.end_time_unix_nano),
            (3, 10, 20)
        );
        let vals: Vec<_> = s
            .attributes
            .iter()
            .map(|a| a.value.clone().unwrap().value.unwrap())
            .collect();
        assert_eq!(
            vals,
            [
                V::StringValue("q".repeat(300)),
                V::IntValue(-3),
                V::DoubleValue(0.5),
                V::BoolValue(true)
            ]
        );
        let ev = &s.events[0];
        assert_eq!((ev.name.as_str(), ev.time_unix_nano), ("exception", 15));
        assert_eq!(ev.attributes[2].key, "exception.stacktrace");
        let st = s.status.as_ref().unwrap();
        assert_eq!((st.code, st.message.as_str()), (2, "boom"));
        assert!(ss.spans[0].status.is_none() && ss.spans[0].events.is_empty());
    }
}
