//! Every query of the provisioned Grafana dashboards (dashboards/*.json) — variable
//! queries, PromQL panel targets, TraceQL panel targets — runs against a seeded
//! collector and returns data.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::otlp::{request, txn};
use common::{now_ms, Collector, StoreMode};
use prost::Message;
use serde_json::Value;

const MINUTE: i64 = 60_000;

/// Two services over the last 12 minutes: `shop` (orders, some failed) and `billing`,
/// each transaction with a SQL and an external call.
fn seeded() -> Collector {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let now = now_ms();
    let mut total = 0;
    for (service, path, offset) in [("shop", "/api/orders", 0u64), ("billing", "/charge", 5_000)] {
        let mut spans = Vec::new();
        for k in 1..12i64 {
            for i in 0..4i64 {
                let seed = offset + (k * 10 + i) as u64;
                let end = ((now - k * MINUTE - i * 2_000) as u64) * 1_000_000;
                let t = txn(
                    seed,
                    end,
                    5 + (seed * 7) % 60,
                    &format!("{path}/{seed}"),
                    i == 3,
                );
                spans.extend(t.spans);
                total += 1;
            }
        }
        let r = c.post_traces(
            request(service, spans).encode_to_vec(),
            &[("content-type", "application/x-protobuf")],
        );
        assert_eq!(r.status(), 200);
    }
    c.eventually("/api/v1/transactions?from=0&limit=1", |v| {
        v["total"] == total
    });
    c
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 4, "dashboards missing in {}", dir.display());
    out
}

fn substitute(q: &str, vars: &BTreeMap<String, String>) -> String {
    let mut q = q
        .replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$__interval", "1m");
    for (k, v) in vars {
        q = q.replace(&format!("${k}"), v);
    }
    q
}

/// Resolves `label_values(selector, label)` through the label values API.
fn variable_values(c: &Collector, query: &str) -> Vec<String> {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unsupported variable query {query}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    let v = c.api(&format!(
        "/api/v1/label/{}/values?match[]={}",
        label.trim(),
        enc(selector.trim())
    ));
    assert_eq!(v["status"], "success");
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn check_prometheus(c: &Collector, what: &str, target: &Value, expr: &str) {
    let now = now_ms() / 1000;
    let instant = target["instant"].as_bool().unwrap_or(false);
    let path = if instant {
        format!("/api/v1/query?query={}&time={now}", enc(expr))
    } else {
        format!(
            "/api/v1/query_range?query={}&start={}&end={now}&step=60",
            enc(expr),
            now - 1800
        )
    };
    let (status, v) = c.get(&path);
    assert_eq!(status, 200, "{what}: {expr}: {v}");
    let result = v["data"]["result"].as_array().unwrap();
    let points = result
        .iter()
        .map(|s| s["values"].as_array().map_or(1, |p| p.len()))
        .sum::<usize>();
    assert!(points > 0, "{what}: {expr} returned no data: {v}");
}

fn check_tempo(c: &Collector, what: &str, query: &str) {
    let now = now_ms() / 1000;
    let v = c.api(&format!(
        "/api/search?q={}&limit=100&start={}&end={now}",
        enc(query),
        now - 3600
    ));
    assert!(
        !v["traces"].as_array().unwrap().is_empty(),
        "{what}: {query} found no trace: {v}"
    );
}

#[test]
fn every_dashboard_query_returns_data_from_a_seeded_collector() {
    let c = seeded();
    let provisioning = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../dashboards/provisioning/datasources/tern.yaml"),
    )
    .unwrap();
    let mut checked = 0;
    for (path, d) in dashboards() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut vars = BTreeMap::new();
        for var in d["templating"]["list"].as_array().unwrap() {
            let q = substitute(var["query"]["query"].as_str().unwrap(), &vars);
            let values = variable_values(&c, &q);
            assert!(
                !values.is_empty(),
                "{name}: variable query {q} has no value"
            );
            let pick = values
                .iter()
                .find(|v| *v == "shop")
                .unwrap_or(&values[0])
                .clone();
            vars.insert(var["name"].as_str().unwrap().to_string(), pick);
        }
        let panels = d["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{name} has no panel");
        for panel in panels {
            let what = format!("{name} / {}", panel["title"]);
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{what} has no query");
            for t in targets {
                let uid = t["datasource"]["uid"].as_str().unwrap();
                assert!(
                    provisioning.contains(&format!("uid: {uid}")),
                    "{what}: datasource {uid} is not provisioned"
                );
                match t["datasource"]["type"].as_str().unwrap() {
                    "prometheus" => {
                        let expr = substitute(t["expr"].as_str().unwrap(), &vars);
                        check_prometheus(&c, &what, t, &expr);
                    }
                    "tempo" => {
                        let q = substitute(t["query"].as_str().unwrap(), &vars);
                        check_tempo(&c, &what, &q);
                    }
                    other => panic!("{what}: unexpected datasource type {other}"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} queries checked");
}
