//! Replay: a set of requests generated and encoded once, then sent again and again with
//! fresh ids and timestamps patched into the protobuf bytes. Ids and times are
//! fixed-width on the wire, so a replayed request costs a copy and a few stores per
//! span: the cheapest way to push a collector to its limit.

use std::time::SystemTime;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::mix::{Generated, Mix};

/// One encoded request and where its ids and times are.
struct Template {
    body: Vec<u8>,
    /// Offsets of 16-byte trace ids.
    trace_ids: Vec<u32>,
    /// Offsets of 8-byte span and parent span ids.
    span_ids: Vec<u32>,
    /// Offsets of fixed64 timestamps (span start/end, event times).
    times: Vec<u32>,
    generated: Generated,
    /// The `now` it was generated for, in ns.
    now_ns: u64,
}

/// Replays pre-encoded protobuf requests with new ids and timestamps.
///
/// Ids are XORed with a random key per replay (relations within a trace are kept; an
/// id could become zero with probability 2⁻⁶⁴); times are moved to the current `now`.
///
/// ```
/// use std::time::SystemTime;
/// use tern_loadgen::{replay::Replay, Mix, MixOptions};
///
/// let mut replay = Replay::new(&mut Mix::new(1, MixOptions::default()), 4, 10, 1);
/// let (body, generated) = replay.next_body(SystemTime::now());
/// assert!(body.len() > 0 && generated.traces == 10);
/// ```
pub struct Replay {
    templates: Vec<Template>,
    next: usize,
    rng: SmallRng,
}

impl Replay {
    /// Generates `templates` requests of `traces` traces each from `mix`.
    pub fn new(mix: &mut Mix, templates: usize, traces: usize, seed: u64) -> Replay {
        let now = SystemTime::now();
        let now_ns = unix_ns(now);
        let mut req = ExportTraceServiceRequest::default();
        let templates = (0..templates.max(1))
            .map(|_| {
                let generated = mix.fill_request(&mut req, traces, now);
                let mut t = Template {
                    body: req.encode_to_vec(),
                    trace_ids: Vec::new(),
                    span_ids: Vec::new(),
                    times: Vec::new(),
                    generated,
                    now_ns,
                };
                index_request(&mut t);
                t
            })
            .collect();
        Replay {
            templates,
            next: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The next request (OTLP protobuf) with new ids, its traces ending before `now`.
    pub fn next_body(&mut self, now: SystemTime) -> (Bytes, Generated) {
        let t = &self.templates[self.next];
        self.next = (self.next + 1) % self.templates.len();
        let mut body = t.body.clone();
        let trace_key: u128 = self.rng.random();
        let span_key: u64 = self.rng.random();
        for &at in &t.trace_ids {
            let f = &mut body[at as usize..at as usize + 16];
            let v = u128::from_be_bytes(f.try_into().expect("16 bytes")) ^ trace_key;
            f.copy_from_slice(&v.to_be_bytes());
        }
        for &at in &t.span_ids {
            let f = &mut body[at as usize..at as usize + 8];
            let v = u64::from_be_bytes(f.try_into().expect("8 bytes")) ^ span_key;
            f.copy_from_slice(&v.to_be_bytes());
        }
        let delta = unix_ns(now).wrapping_sub(t.now_ns);
        for &at in &t.times {
            let f = &mut body[at as usize..at as usize + 8];
            let v = u64::from_le_bytes(f.try_into().expect("8 bytes")).wrapping_add(delta);
            f.copy_from_slice(&v.to_le_bytes());
        }
        (Bytes::from(body), t.generated)
    }

    /// Traces per request.
    pub fn traces_per_request(&self) -> u64 {
        self.templates[0].generated.traces
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A protobuf field: number, wire type, and the byte range of its value.
struct Field {
    number: u64,
    wire: u8,
    start: usize,
    end: usize,
}

/// The fields of the message in `buf[range]` (our own encoding, so well-formed).
fn fields(buf: &[u8], mut pos: usize, end: usize) -> Vec<Field> {
    let mut out = Vec::new();
    while pos < end {
        let key = varint(buf, &mut pos);
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let (start, stop) = match wire {
            0 => {
                let s = pos;
                varint(buf, &mut pos);
                (s, pos)
            }
            1 => (pos, pos + 8),
            2 => {
                let len = varint(buf, &mut pos) as usize;
                (pos, pos + len)
            }
            5 => (pos, pos + 4),
            _ => unreachable!("prost writes no group fields"),
        };
        pos = stop;
        out.push(Field {
            number,
            wire,
            start,
            end: stop,
        });
    }
    out
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// Records the offsets of ids and times of every span in the template's body.
fn index_request(t: &mut Template) {
    let body = std::mem::take(&mut t.body);
    for rs in fields(&body, 0, body.len())
        .iter()
        .filter(|f| f.number == 1 && f.wire == 2)
    {
        for ss in fields(&body, rs.start, rs.end)
            .iter()
            .filter(|f| f.number == 2 && f.wire == 2)
        {
            for span in fields(&body, ss.start, ss.end)
                .iter()
                .filter(|f| f.number == 2 && f.wire == 2)
            {
                for f in fields(&body, span.start, span.end) {
                    let len = f.end - f.start;
                    match (f.number, f.wire) {
                        (1, 2) if len == 16 => t.trace_ids.push(f.start as u32),
                        (2 | 4, 2) if len == 8 => t.span_ids.push(f.start as u32),
                        (7 | 8, 1) => t.times.push(f.start as u32),
                        (11, 2) => {
                            for ef in fields(&body, f.start, f.end) {
                                if ef.number == 1 && ef.wire == 1 {
                                    t.times.push(ef.start as u32);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    t.body = body;
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::MixOptions;

    fn spans(req: &ExportTraceServiceRequest) -> Vec<&opentelemetry_proto::tonic::trace::v1::Span> {
        req.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .collect()
    }

    #[test]
    fn replays_keep_the_traces_with_new_ids_and_times() {
        let mut mix = Mix::new(
            5,
            MixOptions {
                error_rate: 0.3,
                ..MixOptions::default()
            },
        );
        let mut replay = Replay::new(&mut mix, 1, 40, 9);
        let template = ExportTraceServiceRequest::decode(&replay.templates[0].body[..]).unwrap();
        let later = SystemTime::now() + Duration::from_secs(90);
        let (a, ga) = replay.next_body(later);
        let (b, _) = replay.next_body(later);
        let a = ExportTraceServiceRequest::decode(a).unwrap();
        let b = ExportTraceServiceRequest::decode(b).unwrap();
        assert_eq!(ga.spans as usize, spans(&a).len());
        let (ts, sa, sb) = (spans(&template), spans(&a), spans(&b));
        let delta = unix_ns(later) - replay.templates[0].now_ns;
        let ids_a: HashSet<&[u8]> = sa.iter().map(|s| &s.span_id[..]).collect();
        let mut events = 0;
        for ((t, a), b) in ts.iter().zip(&sa).zip(&sb) {
            assert_eq!(
                (&t.name, &t.attributes, t.kind),
                (&a.name, &a.attributes, a.kind)
            );
            assert_ne!(t.trace_id, a.trace_id);
            assert_ne!(a.span_id, b.span_id, "each replay has its own ids");
            assert_eq!(a.start_time_unix_nano, t.start_time_unix_nano + delta);
            assert_eq!(a.end_time_unix_nano, t.end_time_unix_nano + delta);
            assert!(a.parent_span_id.is_empty() == t.parent_span_id.is_empty());
            if !a.parent_span_id.is_empty() {
                assert!(
                    ids_a.contains(&a.parent_span_id[..]),
                    "parents still resolve"
                );
            }
            for (te, ae) in t.events.iter().zip(&a.events) {
                assert_eq!(ae.time_unix_nano, te.time_unix_nano + delta);
                events += 1;
            }
        }
        assert!(events > 0, "exception events are shifted too");
        assert_eq!(ids_a.len(), sa.len());
    }
}
