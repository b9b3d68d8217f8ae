//! The Tempo-compatible API, decoded with the messages Grafana's Tempo datasource uses:
//! OTLP `TracesData` for `/api/traces/<id>`, Tempo's `TraceByIDResponse` (same field
//! numbers, declared here with prost over the OTLP types) for `/api/v2/traces/<id>`.

mod common;

use std::collections::BTreeSet;

use common::otlp::{batch, ids, request, txn};
use common::{now_ms, now_ns, Collector, StoreMode};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use prost::Message;
use serde_json::Value;

/// Tempo's `tempopb.TraceByIDResponse`, as Grafana decodes it.
#[derive(Clone, PartialEq, Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
}

/// Tempo's `tempopb.Trace`.
#[derive(Clone, PartialEq, Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

/// 50 `shop` transactions (seeds 1..=50: elapsed 5 + n % 50 ms, every 10th failed with
/// HTTP 500; each with a mysql and an HTTP child) and one `billing` transaction.
fn seeded() -> Collector {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let end = now_ns() - 1_000_000_000;
    let (_, shop) = batch("shop", 1..51, end);
    let billing = request("billing", txn(999, end, 7, "/charge/1", false).spans);
    for req in [shop, billing] {
        let r = c.post_traces(
            req.encode_to_vec(),
            &[("content-type", "application/x-protobuf")],
        );
        assert_eq!(r.status(), 200);
    }
    c.eventually("/api/v1/transactions?from=0&limit=1", |v| v["total"] == 51);
    c
}

fn get_bytes(url: &str, accept: &str) -> (u16, Vec<u8>) {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .header("accept", accept)
        .send()
        .unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

fn str_attr(rs: &ResourceSpans, key: &str) -> Option<String> {
    rs.resource
        .as_ref()?
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

fn check_trace(rs: &[ResourceSpans], seed: u64) {
    let (trace_id, span_id) = ids(seed);
    assert_eq!(rs.len(), 1);
    assert_eq!(str_attr(&rs[0], "service.name").as_deref(), Some("shop"));
    assert_eq!(
        str_attr(&rs[0], "service.instance.id").as_deref(),
        Some("i-1")
    );
    let spans: Vec<_> = rs[0].scope_spans.iter().flat_map(|s| &s.spans).collect();
    assert_eq!(spans.len(), 3);
    assert!(spans.iter().all(|s| s.trace_id == trace_id));
    let entry = spans
        .iter()
        .find(|s| s.span_id == span_id)
        .expect("entry span");
    assert_eq!(entry.name, format!("GET /api/orders/{seed}"));
    assert!(entry.parent_span_id.is_empty());
    assert_eq!(
        entry.end_time_unix_nano - entry.start_time_unix_nano,
        (5 + seed % 50) * 1_000_000
    );
    assert_eq!(
        entry.status.as_ref().map(|s| s.code),
        Some(2),
        "seed {seed} failed"
    );
    assert_eq!(entry.events[0].name, "exception");
    assert!(spans
        .iter()
        .filter(|s| s.span_id != span_id)
        .all(|s| s.parent_span_id == span_id));
    assert!(spans
        .iter()
        .any(|s| s.name == "SELECT orders" && s.attributes.iter().any(|a| a.key == "db.system")));
}

#[test]
fn traces_by_id_decode_as_grafana_decodes_them() {
    let c = seeded();
    assert_eq!(
        reqwest::blocking::get(format!("{}/api/echo", c.api))
            .unwrap()
            .text()
            .unwrap(),
        "echo"
    );
    let id = hex::encode(ids(10).0);

    let (status, body) = get_bytes(
        &format!("{}/api/v2/traces/{id}", c.api),
        "application/protobuf",
    );
    assert_eq!(status, 200);
    let v2 = TraceByIdResponse::decode(body.as_slice()).unwrap();
    check_trace(&v2.trace.unwrap().resource_spans, 10);

    let (status, body) = get_bytes(
        &format!("{}/api/traces/{id}", c.api),
        "application/protobuf",
    );
    assert_eq!(status, 200);
    check_trace(
        &TracesData::decode(body.as_slice()).unwrap().resource_spans,
        10,
    );

    // JSON when asked: OTLP/JSON resource spans (hex ids, camelCase).
    let v = c.api(&format!("/api/v2/traces/{id}"));
    let spans = &v["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().unwrap().len(), 3, "{v}");
    assert!(
        spans
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["traceId"] == id.as_str()),
        "{v}"
    );
    let v1 = c.api(&format!("/api/traces/{id}"));
    assert!(v1["batches"][0]["resource"].is_object(), "{v1}");

    // Tempo accepts ids without their leading zeros.
    let short = id.trim_start_matches('0');
    assert_eq!(
        get_bytes(
            &format!("{}/api/v2/traces/{short}", c.api),
            "application/protobuf"
        )
        .0,
        200
    );
    assert_eq!(
        get_bytes(
            &format!("{}/api/v2/traces/{}", c.api, "ab".repeat(16)),
            "application/protobuf"
        )
        .0,
        404
    );
    assert_eq!(c.get("/api/v2/traces/not-hex").0, 400);
}

fn search(c: &Collector, query: &str) -> Value {
    let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    c.api(&format!(
        "/api/search?q={q}&limit=100&start={}&end={}",
        now_ms() / 1000 - 3600,
        now_ms() / 1000 + 60
    ))
}

fn trace_ids(v: &Value) -> BTreeSet<String> {
    v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect()
}

fn expected(seeds: impl Iterator<Item = u64>) -> BTreeSet<String> {
    seeds.map(|s| hex::encode(ids(s).0)).collect()
}

#[test]
fn search_answers_the_traceql_grafanas_editor_generates() {
    let c = seeded();
    let v = search(&c, r#"{resource.service.name="shop" && status=error}"#);
    assert_eq!(trace_ids(&v), expected((10..=50).step_by(10)), "{v}");
    let t = &v["traces"][0];
    assert_eq!(t["rootServiceName"], "shop");
    assert!(t["rootTraceName"]
        .as_str()
        .unwrap()
        .starts_with("GET /api/orders/"));
    assert!(
        t["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(t["durationMs"].as_u64().unwrap() >= 5);
    // The matching spans: the failed entry span of each trace.
    let set = &t["spanSets"][0];
    assert_eq!(set["matched"], 1, "{v}");
    assert_eq!(set["spans"][0]["name"], t["rootTraceName"], "{v}");
    assert!(
        set["spans"][0]["durationNanos"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 5_000_000
    );
    let v = search(&c, r#"{resource.service.name="shop"}"#);
    assert_eq!(v["traces"][0]["spanSets"][0]["matched"], 3, "{v}");
    assert_eq!(
        v["traces"][0]["spanSets"][0]["spans"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let v = search(&c, "{duration>40ms && kind=server}");
    assert_eq!(trace_ids(&v), expected(36..50), "{v}");
    let v = search(&c, "{span.http.status_code=500}");
    assert_eq!(trace_ids(&v), expected((10..=50).step_by(10)), "{v}");
    let v = search(
        &c,
        r#"{span.db.system="mysql" && resource.service.instance.id="i-1"}"#,
    );
    assert_eq!(trace_ids(&v).len(), 51, "{v}");
    // Unscoped attributes match the span's or its resource's.
    let v = search(
        &c,
        r#"{.service.instance.id="i-1" && .http.status_code="500"}"#,
    );
    assert_eq!(trace_ids(&v), expected((10..=50).step_by(10)), "{v}");
    let v = search(&c, r#"{.service.name="billing"}"#);
    assert_eq!(trace_ids(&v), expected([999].into_iter()), "{v}");
    let v = search(&c, r#"{name=~"GET /api/orders/1.*"}"#);
    assert_eq!(
        trace_ids(&v),
        expected([1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19].into_iter()),
        "{v}"
    );
    let v = search(&c, r#"{resource.service.name!="shop"}"#);
    assert_eq!(trace_ids(&v), expected([999].into_iter()), "{v}");
    assert_eq!(search(&c, "{}")["traces"].as_array().unwrap().len(), 51);
    let v = c.api("/api/search?q=%7B%7D&limit=5");
    let starts: Vec<u64> = v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["startTimeUnixNano"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 5, "{v}");
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "most recent first: {v}"
    );

    // The legacy parameters: logfmt tags and trace duration bounds.
    let v = c.api("/api/search?tags=service.name%3Dshop&minDuration=50ms&limit=100");
    assert_eq!(trace_ids(&v), expected(45..50), "{v}");
    let v =
        c.api("/api/search?tags=service.name%3Dshop%20http.method%3DGET&maxDuration=6ms&limit=100");
    assert_eq!(trace_ids(&v), expected([1, 50].into_iter()), "{v}");

    for q in [r#"{name="a" || name="b"}"#, r#"{name="a"} | count() > 2"#] {
        let enc: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let (status, v) = c.get(&format!("/api/search?q={enc}"));
        assert_eq!(status, 400, "{q}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("not supported"),
            "{v}"
        );
    }
}

#[test]
fn tags_and_tag_values_have_tempos_shapes() {
    let c = seeded();
    let v = c.api("/api/v2/search/tags");
    let scope = |name: &str| -> Vec<String> {
        v["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        scope("resource").contains(&"service.name".to_string()),
        "{v}"
    );
    assert!(scope("span").contains(&"http.method".to_string()), "{v}");
    assert!(scope("intrinsic").contains(&"duration".to_string()), "{v}");
    let v1 = c.api("/api/search/tags");
    assert!(
        v1["tagNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "db.system"),
        "{v1}"
    );

    let v = c.api("/api/v2/search/tag/resource.service.name/values");
    let values: Vec<&Value> = v["tagValues"].as_array().unwrap().iter().collect();
    assert_eq!(values.len(), 2, "{v}");
    assert!(values.iter().all(|x| x["type"] == "string"));
    assert_eq!(values[1]["value"], "shop");
    let v = c.api("/api/v2/search/tag/span.http.status_code/values");
    let got: BTreeSet<&str> = v["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["value"].as_str().unwrap())
        .collect();
    assert_eq!(got, BTreeSet::from(["200", "500"]), "{v}");
    let v = c.api("/api/v2/search/tag/status/values");
    assert!(v["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["value"] == "error" && x["type"] == "keyword"));
    let v = c.api("/api/search/tag/service.name/values");
    assert_eq!(v["tagValues"], serde_json::json!(["billing", "shop"]));
    let b = c.api("/api/status/buildinfo");
    assert!(b["version"].is_string());
}
