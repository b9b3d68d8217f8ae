//! Per-span checks behind OTLP partial success: a span with bad ids or absurd timestamps
//! is removed from the request and counted, with the reason, in the response.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;

/// 2000-01-01T00:00:00Z in Unix nanoseconds: anything earlier is a clock or encoding bug.
const EARLIEST_NS: u64 = 946_684_800_000_000_000;
/// Spans may start at most this far in the future (clock skew).
const FUTURE_SLACK_NS: u64 = 3_600_000_000_000;
/// Longest plausible span: 7 days.
const LONGEST_NS: u64 = 7 * 24 * 3_600_000_000_000;

/// Why a span was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TraceId,
    SpanId,
    ParentSpanId,
    MissingStart,
    EndBeforeStart,
    TooOld,
    InFuture,
    TooLong,
}

impl Rejection {
    const ALL: [Rejection; 8] = [
        Rejection::TraceId,
        Rejection::SpanId,
        Rejection::ParentSpanId,
        Rejection::MissingStart,
        Rejection::EndBeforeStart,
        Rejection::TooOld,
        Rejection::InFuture,
        Rejection::TooLong,
    ];

    fn describe(self) -> &'static str {
        match self {
            Rejection::TraceId => "invalid trace_id (must be 16 bytes, not all zero)",
            Rejection::SpanId => "invalid span_id (must be 8 bytes, not all zero)",
            Rejection::ParentSpanId => "invalid parent_span_id (must be empty or 8 bytes)",
            Rejection::MissingStart => "missing start time",
            Rejection::EndBeforeStart => "end time before start time",
            Rejection::TooOld => "start time before the year 2000",
            Rejection::InFuture => "start time more than one hour in the future",
            Rejection::TooLong => "duration longer than 7 days",
        }
    }
}

/// Checks one span.
pub fn check(span: &Span, now_ns: u64) -> Result<(), Rejection> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err(Rejection::TraceId);
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err(Rejection::SpanId);
    }
    if !(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8) {
        return Err(Rejection::ParentSpanId);
    }
    let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
    if start == 0 {
        return Err(Rejection::MissingStart);
    }
    if end < start {
        return Err(Rejection::EndBeforeStart);
    }
    if start < EARLIEST_NS {
        return Err(Rejection::TooOld);
    }
    if start > now_ns.saturating_add(FUTURE_SLACK_NS) {
        return Err(Rejection::InFuture);
    }
    if end - start > LONGEST_NS {
        return Err(Rejection::TooLong);
    }
    Ok(())
}

/// What validation kept and refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub accepted: u64,
    pub rejected: u64,
    /// Empty when nothing was rejected; else a summary such as
    /// `rejected 3 spans: 2 invalid trace_id (…); 1 end time before start time`.
    pub message: String,
}

/// Removes invalid spans (and the scopes and resources left empty) from `request`.
pub fn validate(request: &mut ExportTraceServiceRequest, now_ns: u64) -> Verdict {
    let mut counts = [0u64; Rejection::ALL.len()];
    let mut accepted = 0u64;
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            ss.spans.retain(|span| match check(span, now_ns) {
                Ok(()) => {
                    accepted += 1;
                    true
                }
                Err(why) => {
                    counts[why as usize] += 1;
                    false
                }
            });
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    request
        .resource_spans
        .retain(|rs| !rs.scope_spans.is_empty());
    let rejected: u64 = counts.iter().sum();
    let message = if rejected == 0 {
        String::new()
    } else {
        let parts: Vec<String> = Rejection::ALL
            .iter()
            .filter(|r| counts[**r as usize] > 0)
            .map(|r| format!("{} {}", counts[*r as usize], r.describe()))
            .collect();
        let noun = if rejected == 1 { "span" } else { "spans" };
        format!("rejected {rejected} {noun}: {}", parts.join("; "))
    };
    Verdict {
        accepted,
        rejected,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            start_time_unix_nano: NOW - 2_000_000,
            end_time_unix_nano: NOW - 1_000_000,
            name: "s".into(),
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn valid_spans_pass_untouched() {
        let mut r = request(vec![span(1, 1), span(1, 2)]);
        let v = validate(&mut r, NOW);
        assert_eq!((v.accepted, v.rejected), (2, 0));
        assert!(v.message.is_empty());
        assert_eq!(r.resource_spans[0].scope_spans[0].spans.len(), 2);
    }

    #[test]
    fn bad_ids_and_timestamps_are_rejected_with_reasons() {
        let mut zero_trace = span(0, 1);
        zero_trace.trace_id = vec![0; 16];
        let short_span = Span {
            span_id: vec![1; 4],
            ..span(1, 1)
        };
        let backwards = Span {
            end_time_unix_nano: NOW - 3_000_000,
            ..span(1, 3)
        };
        let ancient = Span {
            start_time_unix_nano: 5,
            end_time_unix_nano: 6,
            ..span(1, 4)
        };
        let future = Span {
            start_time_unix_nano: NOW + 2 * FUTURE_SLACK_NS,
            end_time_unix_nano: NOW + 2 * FUTURE_SLACK_NS,
            ..span(1, 5)
        };
        let mut r = request(vec![
            zero_trace,
            short_span,
            backwards,
            ancient,
            future,
            span(1, 6),
        ]);
        let v = validate(&mut r, NOW);
        assert_eq!((v.accepted, v.rejected), (1, 5));
        for needle in [
            "trace_id",
            "span_id",
            "end time before start",
            "2000",
            "future",
        ] {
            assert!(
                v.message.contains(needle),
                "{needle} missing from {}",
                v.message
            );
        }
        assert_eq!(r.resource_spans[0].scope_spans[0].spans.len(), 1);
    }

    #[test]
    fn a_request_with_only_bad_spans_becomes_empty() {
        let mut r = request(vec![Span {
            trace_id: vec![],
            ..span(1, 1)
        }]);
        let v = validate(&mut r, NOW);
        assert_eq!(v.rejected, 1);
        assert!(r.resource_spans.is_empty());
    }
}
