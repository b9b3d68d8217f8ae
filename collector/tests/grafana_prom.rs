//! The Prometheus-compatible API, compared query by query with a real Prometheus
//! (Debian's 2.42) loaded with exactly the samples Tern exposes.

mod common;

use std::collections::BTreeMap;

use common::otlp::{request, txn};
use common::prometheus::{Prometheus, RawSeries};
use common::{now_ms, Collector, StoreMode};
use prost::Message;
use serde_json::Value;

const MINUTE: i64 = 60_000;

/// Transactions over 15 minutes, ending at least 5 minutes ago: `shop` with two
/// endpoints (one idle two minutes in three), `billing` with one; some failed; every
/// transaction has one SQL and one external call. Returns the collector, the first
/// minute (ms) and the number of transactions.
fn seeded() -> (Collector, i64, u64) {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let base = now_ms() / MINUTE * MINUTE - 20 * MINUTE;
    let mut shop = Vec::new();
    let mut billing = Vec::new();
    let mut total = 0;
    for k in 0..15i64 {
        let at = |i: i64| ((base + k * MINUTE + 2_000 + i * 1_500) as u64) * 1_000_000;
        for i in 0..(3 + k % 4) {
            let seed = (k * 100 + i) as u64;
            let ms = 5 + ((k * 7 + i * 13) % 200) as u64;
            shop.push(txn(
                seed,
                at(i),
                ms,
                &format!("/api/orders/{seed}"),
                (k + i) % 5 == 0,
            ));
        }
        if k % 3 == 0 {
            for i in 0..2 {
                let seed = (k * 100 + 50 + i) as u64;
                let ms = 30 + ((k * 31 + i * 97) % 470) as u64;
                shop.push(txn(
                    seed,
                    at(10 + i),
                    ms,
                    &format!("/api/users/{seed}"),
                    false,
                ));
            }
        }
        for i in 0..(1 + k % 2) {
            let seed = (10_000 + k * 100 + i) as u64;
            let ms = 100 + ((k * 211 + i * 53) % 1_900) as u64;
            billing.push(txn(
                seed,
                at(20 + i),
                ms,
                &format!("/charge/{seed}"),
                k == 7,
            ));
        }
    }
    for (service, txns) in [("shop", &shop), ("billing", &billing)] {
        total += txns.len() as u64;
        let spans = txns.iter().flat_map(|t| t.spans.clone()).collect();
        let r = c.post_traces(
            request(service, spans).encode_to_vec(),
            &[("content-type", "application/x-protobuf")],
        );
        assert_eq!(r.status(), 200);
    }
    let want = total;
    c.eventually("/api/v1/services?from=0", |v| {
        v["services"].as_array().is_some_and(|s| {
            s.iter()
                .map(|x| x["calls"].as_u64().unwrap_or(0))
                .sum::<u64>()
                == want
        })
    });
    (c, base, total)
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn num(v: &Value) -> f64 {
    match v.as_str().unwrap() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

/// Tern's raw samples: every `tern_*` series over the last two hours.
fn export(c: &Collector, at_ms: i64) -> Vec<RawSeries> {
    let q = format!(
        "/api/v1/query?query={}&time={}",
        urlencode("{__name__=~\"tern_.+\"}[2h]"),
        at_ms as f64 / 1000.0
    );
    let v = c.api(&q);
    assert_eq!(v["data"]["resultType"], "matrix");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let samples = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, num(&p[1])))
                .collect();
            (labels(&s["metric"]), samples)
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A result as comparable data: result type, and per label set the points.
type Canon = (String, BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>);

fn canon(data: &Value) -> Canon {
    let kind = data["resultType"].as_str().unwrap().to_string();
    let point = |p: &Value| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, num(&p[1]));
    let mut out = BTreeMap::new();
    match kind.as_str() {
        "scalar" => {
            out.insert(BTreeMap::new(), vec![point(&data["result"])]);
        }
        "vector" => {
            for s in data["result"].as_array().unwrap() {
                let prev = out.insert(labels(&s["metric"]), vec![point(&s["value"])]);
                assert!(prev.is_none(), "duplicate series in {data}");
            }
        }
        _ => {
            for s in data["result"].as_array().unwrap() {
                out.insert(
                    labels(&s["metric"]),
                    s["values"].as_array().unwrap().iter().map(point).collect(),
                );
            }
        }
    }
    (kind, out)
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Asserts both answers are the same; returns the number of points compared and the
/// largest relative difference seen.
fn assert_same(what: &str, tern: &Value, prom: &Value) -> (usize, f64) {
    let (mut points, mut worst) = (0, 0.0f64);
    assert_eq!(
        prom["status"], "success",
        "prometheus refused {what}: {prom}"
    );
    assert_eq!(tern["status"], "success", "tern refused {what}: {tern}");
    let (tk, t) = canon(&tern["data"]);
    let (pk, p) = canon(&prom["data"]);
    assert_eq!(tk, pk, "{what}: result types differ");
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        p.keys().collect::<Vec<_>>(),
        "{what}: series differ\ntern: {tern}\nprometheus: {prom}"
    );
    for (labels, tp) in &t {
        let pp = &p[labels];
        assert_eq!(
            tp.len(),
            pp.len(),
            "{what} {labels:?}: point counts differ: {tp:?} vs {pp:?}"
        );
        for (x, y) in tp.iter().zip(pp) {
            assert!(
                x.0 == y.0 && close(x.1, y.1),
                "{what} {labels:?}: tern {x:?} vs prometheus {y:?}"
            );
            points += 1;
            if x.1.is_finite() && y.1.is_finite() && x.1 != y.1 {
                worst = worst.max((x.1 - y.1).abs() / x.1.abs().max(y.1.abs()));
            }
        }
    }
    (points, worst)
}

/// Every supported feature appears here at least once.
const QUERIES: &[&str] = &[
    "tern_requests_total",
    "tern_requests_total{service=\"shop\"}",
    "tern_requests_total{service!=\"shop\"}",
    "tern_requests_total{endpoint=~\"GET /api/orders.*\"}",
    "tern_requests_total{endpoint!~\".*orders.*\"}",
    "{__name__=~\"tern_sql_.+\"}",
    "tern_external_calls_total",
    "rate(tern_requests_total{endpoint=\"GET /api/orders/{id}\", instance=\"i-1\"}[5m])",
    "tern_sql_calls_total{db_system=\"mysql\", instance=\"\"}",
    "tern_request_duration_seconds_bucket{service=\"billing\", le=\"0.5\"}",
    "rate(tern_requests_total[5m])",
    "rate(tern_requests_total[90s])",
    "increase(tern_request_errors_total[10m])",
    "delta(tern_request_duration_seconds_sum[4m])",
    "irate(tern_sql_calls_total[3m])",
    "sum by (service) (rate(tern_requests_total[5m]))",
    "sum without (instance) (increase(tern_requests_total[3m]))",
    "avg by (service) (tern_requests_total)",
    "min(tern_requests_total)",
    "max by (endpoint) (tern_request_duration_seconds_sum)",
    "count without (endpoint) (tern_requests_total)",
    "group by (service) (tern_requests_total)",
    "sum(tern_requests_total)",
    "histogram_quantile(0.95, sum by (le, service) (rate(tern_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (le) (increase(tern_request_duration_seconds_bucket[10m])))",
    "histogram_quantile(0.99, tern_request_duration_seconds_bucket)",
    "topk(2, tern_requests_total)",
    "bottomk(1, tern_requests_total)",
    "topk by (service) (1, tern_request_duration_seconds_sum)",
    "sum_over_time(tern_requests_total[5m])",
    "avg_over_time(tern_requests_total[5m])",
    "min_over_time(tern_request_errors_total[7m])",
    "max_over_time(tern_sql_duration_seconds_sum[7m])",
    "count_over_time(tern_requests_total[4m])",
    "last_over_time(tern_requests_total[4m])",
    "rate(tern_request_duration_seconds_sum[5m]) / rate(tern_request_duration_seconds_count[5m])",
    "tern_request_errors_total / tern_requests_total",
    "sum by (service) (rate(tern_request_errors_total[5m])) / on (service) sum by (service) (rate(tern_requests_total[5m]))",
    "tern_request_errors_total / ignoring (instance) tern_requests_total",
    "tern_requests_total / on (service) group_left sum by (service) (tern_requests_total)",
    "sum by (service) (tern_requests_total) / on (service) group_right tern_requests_total",
    "tern_requests_total > 10",
    "tern_requests_total > bool 10",
    "10 < tern_requests_total",
    "tern_requests_total == on (service, endpoint, instance) tern_request_duration_seconds_count",
    "tern_requests_total != bool tern_request_duration_seconds_count",
    "tern_requests_total * 2 + 1",
    "2 ^ 3 - 1",
    "-tern_requests_total",
    "tern_requests_total % 7",
    "tern_requests_total offset 5m",
    "rate(tern_requests_total[5m] offset 3m)",
    "tern_requests_total and tern_request_errors_total > 0",
    "tern_request_errors_total > 1 or tern_requests_total",
    "tern_requests_total unless tern_request_errors_total > 1",
    "abs(-tern_requests_total)",
    "ceil(rate(tern_requests_total[5m]) * 10)",
    "clamp_max(tern_requests_total, 20)",
    "clamp_min(tern_requests_total, 20)",
    "sqrt(tern_requests_total)",
    "scalar(sum(tern_requests_total))",
    "vector(1)",
    "time()",
    "sum(rate(tern_external_calls_total[5m])) by (target)",
    "tern_sql_calls_total - tern_sql_errors_total",
    "max_over_time(rate(tern_requests_total[5m])[10m:1m])",
    "avg_over_time(sum by (service) (tern_requests_total)[7m:2m])",
    "rate(tern_requests_total[6m:30s])",
    "max_over_time(tern_requests_total[5m:] offset 2m)",
    "min_over_time((tern_requests_total offset 1m)[4m:45s] offset 30s)",
    "changes(tern_requests_total[5m])",
    "resets(tern_requests_total[10m])",
    "idelta(tern_requests_total[3m])",
    "deriv(tern_requests_total[5m])",
    "predict_linear(tern_requests_total[5m], 600)",
    "present_over_time(tern_sql_calls_total[2m])",
    "absent_over_time(tern_requests_total{service=\"nope\"}[5m])",
    "stddev(tern_requests_total)",
    "stdvar by (service) (tern_requests_total)",
    "quantile(0.9, tern_requests_total)",
    "quantile by (service) (0.5, rate(tern_requests_total[5m]))",
    "stddev_over_time(tern_requests_total[5m])",
    "stdvar_over_time(tern_request_duration_seconds_sum[5m])",
    "quantile_over_time(0.75, tern_requests_total[6m])",
    "sort(tern_requests_total)",
    "sort_desc(rate(tern_requests_total[5m]))",
    "round(rate(tern_requests_total[5m]), 0.01)",
    "round(tern_request_duration_seconds_sum)",
    "absent(tern_requests_total{service=\"nope\"})",
    "absent(tern_requests_total)",
    "label_replace(tern_requests_total, \"svc\", \"$1-x\", \"service\", \"(s.*)\")",
];

#[test]
fn promql_answers_match_a_real_prometheus_on_the_same_samples() {
    let (c, base, total) = seeded();
    let end = now_ms() / MINUTE * MINUTE;
    let samples = export(&c, end);
    assert!(
        samples.len() > 20,
        "too few series exported: {}",
        samples.len()
    );

    // The canonical samples are the truth: the counter totals equal what was sent.
    let sum = c.api(&format!(
        "/api/v1/query?query=sum(tern_requests_total)&time={}",
        end / 1000
    ));
    assert_eq!(
        num(&sum["data"]["result"][0]["value"][1]),
        total as f64,
        "{sum}"
    );
    let inf = c.api(&format!(
        "/api/v1/query?query={}&time={}",
        url_escape("sum(tern_request_duration_seconds_bucket{le=\"+Inf\"})"),
        end / 1000
    ));
    assert_eq!(
        num(&inf["data"]["result"][0]["value"][1]),
        total as f64,
        "{inf}"
    );

    let prom = Prometheus::with_samples(&samples);
    let times = [
        base + 7 * MINUTE + 30_000,
        base + 15 * MINUTE,
        end - 30_000,
        end,
    ];
    let client = reqwest::blocking::Client::new();
    let (mut total_points, mut worst, mut evaluations) = (0, 0.0f64, 0);
    for q in QUERIES {
        let mut query_points = 0;
        for t in times {
            let path = format!(
                "/api/v1/query?query={}&time={}",
                url_escape(q),
                t as f64 / 1000.0
            );
            let (_, tv) = c.get(&path);
            let (_, pv) = prom.get(&path);
            let (n, d) = assert_same(&format!("{q} at {t}"), &tv, &pv);
            (query_points, worst, evaluations) = (query_points + n, worst.max(d), evaluations + 1);
        }
        for step in ["45", "1m"] {
            let form = [
                ("query", q.to_string()),
                ("start", ((base - 2 * MINUTE) / 1000).to_string()),
                ("end", (end / 1000).to_string()),
                ("step", step.to_string()),
            ];
            // Grafana POSTs the form first.
            let tv: Value = client
                .post(format!("{}/api/v1/query_range", c.api))
                .form(&form)
                .send()
                .unwrap()
                .json()
                .unwrap();
            let pv: Value = client
                .get(format!("{}/api/v1/query_range", prom.url))
                .query(&form)
                .send()
                .unwrap()
                .json()
                .unwrap();
            let (n, d) = assert_same(&format!("{q} range step {step}"), &tv, &pv);
            (query_points, worst, evaluations) = (query_points + n, worst.max(d), evaluations + 1);
        }
        // An empty answer on both sides proves little: every query must have data
        // (but the one that asks whether an existing metric is absent).
        assert!(
            query_points > 0 || *q == "absent(tern_requests_total)",
            "{q} returned no data at any time"
        );
        total_points += query_points;
    }

    eprintln!(
        "compared {} queries, {evaluations} evaluations, {total_points} points with prometheus: largest relative difference {worst:e}",
        QUERIES.len()
    );

    // Metadata endpoints list the same series, names and values.
    let window = format!("start={}&end={}", (base - MINUTE) / 1000, end / 1000);
    for path in [
        format!("/api/v1/labels?{window}"),
        format!("/api/v1/label/service/values?{window}"),
        format!("/api/v1/label/__name__/values?{window}"),
        format!("/api/v1/label/endpoint/values?{window}&match[]=tern_requests_total"),
        format!(
            "/api/v1/labels?{window}&match[]={}",
            url_escape("tern_sql_calls_total")
        ),
    ] {
        let (ts, tv) = c.get(&path);
        let (_, pv) = prom.get(&path);
        assert_eq!(ts, 200, "{path}: {tv}");
        assert_eq!(tv["data"], pv["data"], "{path}");
    }
    let path = format!(
        "/api/v1/series?{window}&match[]={}",
        url_escape("tern_requests_total{service=\"shop\"}")
    );
    let (_, tv) = c.get(&path);
    let (_, pv) = prom.get(&path);
    let set = |v: &Value| {
        let mut s: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.to_string())
            .collect();
        s.sort();
        s
    };
    assert_eq!(set(&tv), set(&pv), "{path}");
    assert_eq!(set(&tv).len(), 2);
}

#[test]
fn queries_outside_the_supported_subset_are_refused_with_prometheus_errors() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    for q in [
        "timestamp(tern_requests_total)",
        "count_values(\"v\", tern_requests_total)",
        "day_of_week()",
        "tern_requests_total @ 1700000000",
        "label_join(tern_requests_total, \"a\", \",\", \"service\")",
    ] {
        let (status, v) = c.get(&format!("/api/v1/query?query={}", url_escape(q)));
        assert_eq!(status, 400, "{q}: {v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(
            v["error"].as_str().unwrap().contains("not supported"),
            "{q}: {v}"
        );
    }
    let (status, v) = c.get("/api/v1/query?query=sum(");
    assert_eq!(status, 400);
    assert_eq!(v["errorType"], "bad_data", "{v}");
    let (status, v) = c.get("/api/v1/query_range?query=1&start=10&end=0&step=1");
    assert_eq!(status, 400, "{v}");
    let (_, b) = c.get("/api/v1/status/buildinfo");
    assert_eq!(b["status"], "success");
    assert!(b["data"]["version"].as_str().unwrap().starts_with('2'));
    let m = c.api("/api/v1/metadata");
    assert_eq!(
        m["data"]["tern_requests_total"][0]["type"], "counter",
        "{m}"
    );
    assert_eq!(
        c.api("/api/v1/query_exemplars?query=x")["data"],
        serde_json::json!([])
    );
}
