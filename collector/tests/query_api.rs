//! The query API over known data, on both store paths: the embedded engine inside the
//! collector, and a ClickHouse server reached by URL.

mod common;

use common::otlp::batch;
use common::{now_ms, now_ns, Collector, StoreMode};
use prost::Message;
use serde_json::Value;

/// 100 transactions of `GET /api/orders/<n>`: elapsed 5 + n % 50 ms, every 10th failed,
/// each with one 2 ms SQL call and one 1 ms external call.
fn seeded(mode: StoreMode) -> (Collector, u64) {
    let c = Collector::start(mode, &[]);
    let end = now_ns() - 1_000_000_000;
    let (_, req) = batch("shop", 1..101, end);
    let r = c.post_traces(
        req.encode_to_vec(),
        &[("content-type", "application/x-protobuf")],
    );
    assert_eq!(r.status(), 200);
    c.eventually("/api/v1/transactions?from=0&service=shop&limit=1", |v| {
        v["total"] == 100
    });
    (c, end / 1_000_000)
}

fn elapsed_ms(n: u64) -> f64 {
    (5 + n % 50) as f64
}

fn range() -> String {
    format!("from={}&to={}", now_ms() - 3_600_000, now_ms() + 60_000)
}

fn statistics_match_what_was_sent(mode: StoreMode) {
    let (c, _) = seeded(mode);
    let r = range();
    let s = c.eventually(&format!("/api/v1/services?{r}"), |v| {
        v["services"][0]["calls"] == 100
    });
    assert_eq!(s["services"][0]["service"], "shop");
    assert_eq!(s["services"][0]["errors"], 10);

    let e = c.api(&format!("/api/v1/endpoints?{r}&service=shop"));
    let ep = &e["endpoints"][0];
    assert_eq!(
        e["endpoints"].as_array().unwrap().len(),
        1,
        "ids in paths must collapse: {e}"
    );
    assert_eq!(ep["endpoint"], "GET /api/orders/{id}");
    assert_eq!(ep["calls"], 100);
    assert_eq!(ep["max_ms"], 54.0);
    let mut all: Vec<f64> = (1..101).map(elapsed_ms).collect();
    all.sort_by(f64::total_cmp);
    let exact_p50 = all[49];
    let p50 = ep["p50_ms"].as_f64().unwrap();
    assert!(
        (p50 - exact_p50).abs() / exact_p50 < 0.1,
        "p50 {p50} vs exact {exact_p50}"
    );
    let avg = all.iter().sum::<f64>() / 100.0;
    assert!((ep["avg_ms"].as_f64().unwrap() - avg).abs() < 1e-6);

    let sql = c.api(&format!("/api/v1/sql?{r}"));
    let st = &sql["statements"][0];
    assert_eq!(
        sql["statements"].as_array().unwrap().len(),
        1,
        "literals must be normalized: {sql}"
    );
    assert_eq!(st["calls"], 100);
    assert_eq!(st["total_ms"], 200.0);
    assert!(
        st["fingerprint"].as_str().unwrap().contains("orders"),
        "{st}"
    );
    assert!(!st["fingerprint"].as_str().unwrap().contains("42"), "{st}");

    let ext = c.api(&format!("/api/v1/external?{r}"));
    assert_eq!(ext["external"][0]["target"], "payments.internal:8080");
    assert_eq!(ext["external"][0]["calls"], 100);

    let errs = c.api(&format!("/api/v1/errors?{r}"));
    assert_eq!(errs["errors"][0]["error_type"], "OrderNotFound");
    assert_eq!(errs["errors"][0]["count"], 10);
}

fn xview_reduces_honestly_and_boxes_select_exactly(mode: StoreMode) {
    let (c, _) = seeded(mode);
    let r = range();
    let all = c.api(&format!("/api/v1/xview?{r}"));
    assert_eq!(all["total"], 100);
    assert_eq!(all["reduced"], false);
    assert_eq!(all["points"]["end_ms"].as_array().unwrap().len(), 100);

    let few = c.api(&format!("/api/v1/xview?{r}&limit=30"));
    assert_eq!(few["total"], 100);
    assert_eq!(few["reduced"], true);
    assert!(few["reduction"]["method"]
        .as_str()
        .unwrap()
        .contains("sampled"));
    let errors: u64 = few["points"]["error"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_u64().unwrap())
        .sum();
    assert_eq!(errors, 10, "every failure is kept: {few}");
    assert!(few["returned"].as_u64().unwrap() <= 30);
    let slowest = few["points"]["elapsed_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(slowest, 54.0, "the slowest is kept");

    // A box: elapsed 40..=50 ms over the whole range.
    let boxed = c.api(&format!(
        "/api/v1/transactions?{r}&min_elapsed_ms=40&max_elapsed_ms=50"
    ));
    let expected = (1..101)
        .filter(|n| (40.0..=50.0).contains(&elapsed_ms(*n)))
        .count();
    assert_eq!(boxed["total"], expected as u64);
    for t in boxed["transactions"].as_array().unwrap() {
        let e = t["elapsed_ms"].as_f64().unwrap();
        assert!((40.0..=50.0).contains(&e));
    }
    let failed = c.api(&format!("/api/v1/transactions?{r}&errors_only=true"));
    assert_eq!(failed["total"], 10);
}

fn a_transaction_opens_with_its_call_tree_and_trace(mode: StoreMode) {
    let (c, _) = seeded(mode);
    let list = c.api(&format!("/api/v1/transactions?{}&limit=1", range()));
    let t = &list["transactions"][0];
    let one = c.api(&format!(
        "/api/v1/transactions/{}/{}",
        t["trace_id"].as_str().unwrap(),
        t["span_id"].as_str().unwrap()
    ));
    assert_eq!(one["transaction"]["txid"], t["txid"]);
    let tree = &one["call_tree"];
    assert_eq!(tree["category"], "entry");
    let kids = tree["children"].as_array().unwrap();
    assert_eq!(kids.len(), 2);
    let sql = kids.iter().find(|k| k["category"] == "sql").unwrap();
    assert!(sql["sql"]
        .as_str()
        .unwrap()
        .starts_with("SELECT * FROM orders WHERE id = "));
    assert_eq!(sql["elapsed_ms"], 2.0);
    let trace = c.api(one["trace_url"].as_str().unwrap());
    assert_eq!(trace["span_count"], 3);
    assert_eq!(trace["spans"][0]["depth"], 0);
}

fn bad_parameters_and_unknown_ids_get_clear_errors(mode: StoreMode) {
    let c = Collector::start(mode, &[]);
    for (path, status, needle) in [
        ("/api/v1/xview?from=10&to=5", 400, "before"),
        ("/api/v1/xview?form=10", 400, "form"),
        ("/api/v1/xview?limit=abc", 400, "limit"),
        (
            "/api/v1/transactions?min_elapsed_ms=-1",
            400,
            "min_elapsed_ms",
        ),
        ("/api/v1/transactions?txid=xyz", 400, "trace_id"),
        ("/api/v1/traces/0011", 400, "trace_id"),
        (
            "/api/v1/traces/00112233445566778899aabbccddeeff",
            404,
            "no trace",
        ),
        (
            "/api/v1/transactions/00112233445566778899aabbccddeeff/0011223344556677",
            404,
            "no transaction",
        ),
        ("/api/v1/nope", 404, "docs/api.md"),
    ] {
        let (got, body): (u16, Value) = c.get(path);
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    assert!(c.metrics()["tern_api_bad_requests_total"].as_u64().unwrap() >= 9);
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn on_the_embedded_engine() {
                super::$name(super::StoreMode::Embedded)
            }
            #[test]
            fn on_a_clickhouse_server_url() {
                super::$name(super::StoreMode::Server)
            }
        }
    )*};
}

on_both_stores!(
    statistics_match_what_was_sent,
    xview_reduces_honestly_and_boxes_select_exactly,
    a_transaction_opens_with_its_call_tree_and_trace,
    bad_parameters_and_unknown_ids_get_clear_errors,
);
