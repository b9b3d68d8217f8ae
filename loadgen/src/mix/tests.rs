//! Well-formedness of the generated traffic.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn now_ns() -> u64 {
    1_700_000_000 * 1_000_000_000
}

/// Every span with its service name.
fn spans_of(req: &ExportTraceServiceRequest) -> Vec<(String, &Span)> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let attrs = &rs.resource.as_ref().expect("resource").attributes;
        let service = str_attr(attrs, "service.name")
            .expect("service.name")
            .to_string();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                out.push((service.clone(), s));
            }
        }
    }
    out
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn is_entry(s: &Span) -> bool {
    s.kind == SpanKind::Server as i32 || s.kind == SpanKind::Consumer as i32
}

fn is_error(s: &Span) -> bool {
    s.status
        .as_ref()
        .is_some_and(|st| st.code == StatusCode::Error as i32)
}

fn sample(seed: u64, options: MixOptions, traces: usize) -> Vec<ExportTraceServiceRequest> {
    let mut mix = Mix::new(seed, options);
    (0..traces / 100)
        .map(|_| mix.next_request(100, now()))
        .collect()
}

#[test]
fn requests_are_well_formed() {
    let reqs = sample(1, MixOptions::default(), 3000);
    let mut ids = HashSet::new();
    let mut by_trace: HashMap<Vec<u8>, HashMap<Vec<u8>, &Span>> = HashMap::new();
    for req in &reqs {
        for rs in &req.resource_spans {
            let attrs = &rs.resource.as_ref().unwrap().attributes;
            for key in [
                "service.name",
                "service.instance.id",
                "host.name",
                "telemetry.sdk.language",
                "deployment.environment",
            ] {
                assert!(
                    str_attr(attrs, key).is_some_and(|v| !v.is_empty()),
                    "resource lacks {key}"
                );
            }
            assert_eq!(rs.scope_spans.len(), 1);
            assert!(!rs.scope_spans[0].scope.as_ref().unwrap().name.is_empty());
        }
        for (_, s) in spans_of(req) {
            assert_eq!(s.trace_id.len(), 16);
            assert_eq!(s.span_id.len(), 8);
            assert!(s.trace_id.iter().any(|&b| b != 0) && s.span_id.iter().any(|&b| b != 0));
            assert!(s.parent_span_id.is_empty() || s.parent_span_id.len() == 8);
            assert!(!s.name.is_empty());
            assert!(s.start_time_unix_nano <= s.end_time_unix_nano);
            assert!(s.end_time_unix_nano <= now_ns(), "spans end before now");
            assert!(
                s.start_time_unix_nano > now_ns() - 60_000_000_000,
                "spans are recent"
            );
            assert!(ids.insert(s.span_id.clone()), "span ids are unique");
            by_trace
                .entry(s.trace_id.clone())
                .or_default()
                .insert(s.span_id.clone(), s);
        }
    }
    assert_eq!(by_trace.len(), 3000, "trace ids are unique, one per trace");
    for spans in by_trace.values() {
        let roots = spans
            .values()
            .filter(|s| s.parent_span_id.is_empty())
            .count();
        assert_eq!(roots, 1, "one root per trace");
        for s in spans.values().filter(|s| !s.parent_span_id.is_empty()) {
            let parent = spans
                .get(&s.parent_span_id)
                .expect("parent is in the trace");
            if parent.kind == SpanKind::Producer as i32 {
                // Consumed asynchronously: starts after the message was sent.
                assert!(s.start_time_unix_nano >= parent.end_time_unix_nano);
            } else {
                assert!(
                    s.start_time_unix_nano >= parent.start_time_unix_nano,
                    "child starts within parent"
                );
                assert!(
                    s.end_time_unix_nano <= parent.end_time_unix_nano,
                    "child ends within parent"
                );
            }
            for ev in &s.events {
                assert!(
                    ev.time_unix_nano >= s.start_time_unix_nano
                        && ev.time_unix_nano <= s.end_time_unix_nano
                );
            }
        }
    }
}

#[test]
fn spans_are_grouped_by_instance_and_children_come_first() {
    let mut mix = Mix::new(3, MixOptions::default());
    let req = mix.next_request(200, now());
    let mut instances = HashSet::new();
    for rs in &req.resource_spans {
        let id = str_attr(
            &rs.resource.as_ref().unwrap().attributes,
            "service.instance.id",
        )
        .unwrap();
        assert!(instances.insert(id.to_string()), "one group per instance");
        let spans = &rs.scope_spans[0].spans;
        // Sorted by end time: parents come after their children.
        let pos: HashMap<&[u8], usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.span_id[..], i))
            .collect();
        for (i, s) in spans.iter().enumerate() {
            if let Some(&p) = pos.get(&s.parent_span_id[..]) {
                assert!(p > i, "parents after their children, as SDKs export them");
            }
        }
    }
}

#[test]
fn all_kinds_and_both_semconv_generations_are_present() {
    let reqs = sample(2, MixOptions::default(), 2000);
    let mut keys = HashSet::new();
    let mut kinds = HashSet::new();
    let mut route_services = HashSet::new();
    let mut routeless_services = HashSet::new();
    let mut db_systems = HashSet::new();
    for req in &reqs {
        for (service, s) in spans_of(req) {
            kinds.insert(s.kind);
            keys.extend(s.attributes.iter().map(|kv| kv.key.clone()));
            if s.kind == SpanKind::Server as i32 {
                if attr(&s.attributes, "http.route").is_some() {
                    route_services.insert(service.clone());
                } else {
                    routeless_services.insert(service.clone());
                }
            }
            for key in ["db.system", "db.system.name"] {
                if let Some(v) = str_attr(&s.attributes, key) {
                    db_systems.insert(v.to_string());
                }
            }
        }
    }
    for kind in [
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Internal,
        SpanKind::Producer,
        SpanKind::Consumer,
    ] {
        assert!(kinds.contains(&(kind as i32)), "{kind:?} spans present");
    }
    for key in [
        "http.method",
        "http.status_code",
        "http.target",
        "http.url",
        "net.peer.name",
        "db.statement",
        "db.system",
        "http.request.method",
        "http.response.status_code",
        "url.path",
        "url.full",
        "server.address",
        "db.query.text",
        "db.system.name",
        "messaging.system",
        "messaging.destination.name",
    ] {
        assert!(keys.contains(key), "attribute {key} present");
    }
    assert!(
        !route_services.is_empty() && !routeless_services.is_empty(),
        "http.route on some services only"
    );
    assert_eq!(
        db_systems,
        ["mysql", "postgresql", "sqlite"].map(String::from).into()
    );
}

#[test]
fn sql_literals_vary() {
    let reqs = sample(4, MixOptions::default(), 1000);
    let mut statements = HashSet::new();
    let mut in_list_lengths = HashSet::new();
    for req in &reqs {
        for (_, s) in spans_of(req) {
            let text = str_attr(&s.attributes, "db.statement")
                .or_else(|| str_attr(&s.attributes, "db.query.text"));
            if let Some(text) = text {
                statements.insert(text.to_string());
                if let Some(list) = text.split(" IN (").nth(1) {
                    in_list_lengths.insert(list.split(')').next().unwrap().split(',').count());
                }
            }
        }
    }
    assert!(
        statements.len() > 3000,
        "{} distinct statements",
        statements.len()
    );
    assert!(
        in_list_lengths.len() >= 8,
        "IN lists of varying length: {in_list_lengths:?}"
    );
}

#[test]
fn error_share_follows_the_option_with_exception_events() {
    for rate in [0.02, 0.1] {
        let options = MixOptions {
            error_rate: rate,
            ..MixOptions::default()
        };
        let reqs = sample(5, options, 20_000);
        let (mut entries, mut failed, mut sql_errors, mut external_503) = (0u64, 0u64, 0u64, 0u64);
        for req in &reqs {
            for (_, s) in spans_of(req) {
                if is_entry(s) {
                    entries += 1;
                    if is_error(s) {
                        failed += 1;
                        let ev = s
                            .events
                            .iter()
                            .find(|e| e.name == "exception")
                            .expect("exception event");
                        for key in [
                            "exception.type",
                            "exception.message",
                            "exception.stacktrace",
                        ] {
                            assert!(str_attr(&ev.attributes, key).is_some(), "{key}");
                        }
                        if s.kind == SpanKind::Server as i32 {
                            let code = attr(&s.attributes, "http.status_code")
                                .or_else(|| attr(&s.attributes, "http.response.status_code"));
                            assert_eq!(code, Some(&Value::IntValue(500)));
                        }
                    }
                } else if is_error(s) {
                    let sql = attr(&s.attributes, "db.system")
                        .or_else(|| attr(&s.attributes, "db.system.name"));
                    if sql.is_some() {
                        sql_errors += 1;
                    }
                    let code = attr(&s.attributes, "http.status_code")
                        .or_else(|| attr(&s.attributes, "http.response.status_code"));
                    if code == Some(&Value::IntValue(503)) {
                        external_503 += 1;
                    }
                }
            }
        }
        let share = failed as f64 / entries as f64;
        assert!(
            (share - rate).abs() < rate * 0.2,
            "error share {share} for {rate}"
        );
        assert!(
            sql_errors > 0 && external_503 > 0,
            "sql errors {sql_errors}, 503s {external_503}"
        );
    }
}

#[test]
fn slow_outliers_take_seconds() {
    let reqs = sample(6, MixOptions::default(), 20_000);
    let (mut roots, mut slow) = (0u64, 0u64);
    for req in &reqs {
        for (_, s) in spans_of(req) {
            if s.parent_span_id.is_empty() {
                roots += 1;
                if s.end_time_unix_nano - s.start_time_unix_nano > 1_000_000_000 {
                    slow += 1;
                }
            }
        }
    }
    let share = slow as f64 / roots as f64;
    assert!((0.002..0.01).contains(&share), "slow share {share}");
}

#[test]
fn cross_service_traces_exist() {
    let reqs = sample(7, MixOptions::default(), 500);
    let (mut http_hops, mut message_hops) = (0, 0);
    for req in &reqs {
        let spans = spans_of(req);
        let by_id: HashMap<&[u8], (&str, &Span)> = spans
            .iter()
            .map(|(svc, s)| (&s.span_id[..], (svc.as_str(), *s)))
            .collect();
        for (svc, s) in &spans {
            let Some((parent_svc, parent)) = by_id.get(&s.parent_span_id[..]) else {
                continue;
            };
            if parent_svc != svc {
                if s.kind == SpanKind::Server as i32 && parent.kind == SpanKind::Client as i32 {
                    http_hops += 1;
                }
                if s.kind == SpanKind::Consumer as i32 && parent.kind == SpanKind::Producer as i32 {
                    message_hops += 1;
                }
            }
        }
    }
    assert!(
        http_hops > 100 && message_hops > 5,
        "http hops {http_hops}, message hops {message_hops}"
    );
}

#[test]
fn the_seed_decides_the_traffic() {
    let a = Mix::new(9, MixOptions::default()).next_request(50, now());
    let b = Mix::new(9, MixOptions::default()).next_request(50, now());
    let c = Mix::new(10, MixOptions::default()).next_request(50, now());
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn refilling_a_request_gives_the_same_traffic_as_new_requests() {
    let mut fresh = Mix::new(11, MixOptions::default());
    let mut reused = Mix::new(11, MixOptions::default());
    let mut req = ExportTraceServiceRequest::default();
    for round in 0..30 {
        let expected = fresh.next_request(20 + round % 7, now());
        let g = reused.fill_request(&mut req, 20 + round % 7, now());
        assert_eq!(
            req, expected,
            "round {round}: no stale parts survive recycling"
        );
        assert_eq!(g.spans as usize, spans_of(&req).len());
        assert_eq!(g.traces as usize, 20 + round % 7);
        assert_eq!(
            g.transactions as usize,
            spans_of(&req).iter().filter(|(_, s)| is_entry(s)).count()
        );
    }
}

#[test]
fn the_services_option_shrinks_or_repeats_the_application() {
    let one = Mix::new(
        1,
        MixOptions {
            services: 1,
            ..MixOptions::default()
        },
    );
    assert_eq!(one.service_names().collect::<Vec<_>>(), ["shop-frontend"]);
    let mut one = one;
    for (svc, _) in spans_of(&one.next_request(100, now())) {
        assert_eq!(svc, "shop-frontend");
    }

    let mut twelve = Mix::new(
        1,
        MixOptions {
            services: 12,
            ..MixOptions::default()
        },
    );
    let names: Vec<String> = twelve.service_names().map(String::from).collect();
    assert_eq!(names.len(), 12);
    assert!(
        names.contains(&"order-service-2".to_string())
            && names.contains(&"order-service-3".to_string())
    );
    let seen: HashSet<String> = spans_of(&twelve.next_request(2000, now()))
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        seen.contains("shop-frontend-3") && seen.contains("payment-service-2"),
        "{seen:?}"
    );
    assert!(!seen.contains("payment-service-3"), "only 12 services");
    for svc in 0..12 {
        let n = twelve.services[svc].slots.len();
        assert!((1..=3).contains(&n));
    }
}
