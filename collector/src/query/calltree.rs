//! One transaction with its call tree, and a whole trace across services.
//!
//! The call tree of a transaction is the part of its trace inside its own service: the
//! entry span and its descendants, stopping at the entry spans of other transactions
//! (other services, or nested server spans), which appear as links. It is built from the
//! trace's spans at query time, so children that arrived in any order are all there.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::params::hex_id;
use super::xview::summary_json;
use super::{ApiError, ApiResult, ApiState};
use crate::model::rows::{Category, SpanRow, TransactionRow};

/// Most spans read for one trace.
const MAX_TRACE_SPANS: u64 = 100_000;

/// Every span of a trace (each once), oldest first.
pub async fn trace_spans(s: &ApiState, trace: [u8; 16]) -> Result<Vec<SpanRow>, ApiError> {
    let rows: Vec<SpanRow> = s
        .store
        .client()
        .query(&format!(
            "SELECT ?fields FROM spans WHERE trace_id = unhex(?) ORDER BY start_us LIMIT {MAX_TRACE_SPANS}"
        ))
        .bind(hex::encode(trace))
        .fetch_all()
        .await?;
    // A batch replayed after a crash can store a span twice: show it once.
    let mut seen = HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|r| seen.insert(r.span_id))
        .collect())
}

fn attr<'a>(row: &'a SpanRow, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| row.attributes.iter().find(|(key, _)| key == k))
        .map(|(_, v)| v.as_str())
}

fn status_str(s: u8) -> &'static str {
    match s {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

fn txid(row: &SpanRow) -> String {
    format!("{}:{}", hex::encode(row.trace_id), hex::encode(row.span_id))
}

/// One span as a JSON node (without children).
fn node(row: &SpanRow, origin_us: i64) -> Value {
    let category = Category::from_u8(row.category);
    let mut v = json!({
        "span_id": hex::encode(row.span_id),
        "parent_span_id": if row.parent_span_id == [0; 8] { String::new() } else { hex::encode(row.parent_span_id) },
        "service": row.service, "instance": row.instance,
        "name": row.name, "category": category.as_str(),
        "start_offset_ms": (row.start_us - origin_us) as f64 / 1000.0,
        "start_us": row.start_us,
        "elapsed_ms": row.duration_us as f64 / 1000.0,
        "status": status_str(row.status), "status_message": row.status_message,
        "error_type": row.error_type, "target": row.target,
        "attributes": attributes_value(row.attributes.clone()),
        "events": serde_json::from_str::<Value>(&row.events).unwrap_or(Value::Array(vec![])),
    });
    match category {
        Category::Sql => {
            v["sql"] = attr(row, &["db.query.text", "db.statement"])
                .unwrap_or("")
                .into()
        }
        Category::External => v["url"] = attr(row, &["url.full", "http.url"]).unwrap_or("").into(),
        _ => {}
    }
    v
}

fn attributes_value(pairs: Vec<(String, String)>) -> serde_json::Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Builds the call tree under `root`, stopping at other transactions' entry spans.
fn build_tree(spans: &[SpanRow], root: usize) -> Value {
    let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        children.entry(s.parent_span_id).or_default().push(i);
    }
    let origin = spans[root].start_us;
    fn walk(
        spans: &[SpanRow],
        children: &HashMap<[u8; 8], Vec<usize>>,
        i: usize,
        origin: i64,
        depth: usize,
    ) -> Value {
        let mut v = node(&spans[i], origin);
        let mut kids = Vec::new();
        let mut links = Vec::new();
        if depth < 512 {
            for &c in children
                .get(&spans[i].span_id)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let child = &spans[c];
                if Category::from_u8(child.category) == Category::Entry {
                    links.push(
                        json!({ "service": child.service, "name": child.name, "txid": txid(child),
                                        "elapsed_ms": child.duration_us as f64 / 1000.0 }),
                    );
                } else {
                    kids.push(walk(spans, children, c, origin, depth + 1));
                }
            }
        }
        v["children"] = Value::Array(kids);
        v["calls_into"] = Value::Array(links);
        v
    }
    walk(spans, &children, root, origin, 0)
}

/// `GET /api/v1/transactions/{trace_id}/{span_id}`
pub async fn transaction(s: &ApiState, trace_id: &str, span_id: &str) -> ApiResult {
    let trace = hex_id::<16>("trace_id", trace_id)?;
    let span = hex_id::<8>("span_id", span_id)?;
    let summary: Option<TransactionRow> = s
        .store
        .client()
        .query("SELECT ?fields FROM transactions WHERE trace_id = unhex(?) AND span_id = unhex(?) LIMIT 1")
        .bind(hex::encode(trace))
        .bind(hex::encode(span))
        .fetch_optional()
        .await?;
    let Some(summary) = summary else {
        return Err(ApiError::NotFound(format!(
            "no transaction {trace_id}:{span_id}"
        )));
    };
    let spans = trace_spans(s, trace).await?;
    let tree = spans
        .iter()
        .position(|r| r.span_id == span)
        .map(|root| build_tree(&spans, root))
        .unwrap_or(Value::Null);
    let resource = resource_of(s, &summary.service, &summary.instance).await?;
    Ok(json!({
        "transaction": summary_json(&summary),
        "resource": resource,
        "call_tree": tree,
        "trace_url": format!("/api/v1/traces/{}", hex::encode(trace)),
    })
    .into())
}

async fn resource_of(s: &ApiState, service: &str, instance: &str) -> Result<Value, ApiError> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Attributes {
        attributes: Vec<(String, String)>,
    }
    let row: Option<Attributes> = s
        .store
        .client()
        .query("SELECT attributes FROM resources FINAL WHERE service = ? AND instance = ? LIMIT 1")
        .bind(service)
        .bind(instance)
        .fetch_optional()
        .await?;
    Ok(row.map_or(Value::Null, |r| {
        Value::Object(attributes_value(r.attributes))
    }))
}

/// `GET /api/v1/traces/{trace_id}` — every span of a trace, depth-first, with depth.
pub async fn trace(s: &ApiState, trace_id: &str) -> ApiResult {
    let trace = hex_id::<16>("trace_id", trace_id)?;
    let spans = trace_spans(s, trace).await?;
    if spans.is_empty() {
        return Err(ApiError::NotFound(format!("no trace {trace_id}")));
    }
    let ids: HashSet<[u8; 8]> = spans.iter().map(|r| r.span_id).collect();
    let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, r) in spans.iter().enumerate() {
        if r.parent_span_id == [0; 8] || !ids.contains(&r.parent_span_id) {
            roots.push(i);
        } else {
            children.entry(r.parent_span_id).or_default().push(i);
        }
    }
    let origin = spans.iter().map(|r| r.start_us).min().unwrap_or(0);
    let end = spans
        .iter()
        .map(|r| r.start_us + r.duration_us as i64)
        .max()
        .unwrap_or(origin);
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        let mut v = node(&spans[i], origin);
        v["depth"] = depth.into();
        out.push(v);
        if let Some(kids) = children.get(&spans[i].span_id) {
            stack.extend(kids.iter().rev().map(|&c| (c, depth + 1)));
        }
    }
    let services: HashSet<&str> = spans.iter().map(|r| r.service.as_str()).collect();
    let mut services: Vec<&str> = services.into_iter().collect();
    services.sort_unstable();
    Ok(json!({
        "trace_id": hex::encode(trace),
        "start_us": origin, "elapsed_ms": (end - origin) as f64 / 1000.0,
        "span_count": out.len(), "services": services,
        "spans": out,
    })
    .into())
}
