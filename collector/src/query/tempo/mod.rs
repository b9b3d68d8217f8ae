//! A Grafana Tempo-compatible HTTP API, so Grafana's stock Tempo datasource works
//! against the collector: trace by id (`/api/traces/{id}` as OTLP `TracesData`
//! protobuf, `/api/v2/traces/{id}` as Tempo's `TraceByIDResponse` protobuf, JSON when
//! the client does not ask for protobuf), search (`/api/search`: tags, min/max
//! duration, and the TraceQL subset of [`traceql`]), tags and tag values (v1 and v2),
//! `/api/echo`, `/api/status/buildinfo`.

pub mod otlp;
pub mod search;
pub mod traceql;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clickhouse::Row;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use prost::Message;
use serde::Deserialize;
use serde_json::json;

use super::calltree::trace_spans;
use super::{counted, now_ms, ApiError, ApiState};
use traceql::{Cond, Field, Lit, Op};

/// The Tempo version whose HTTP API this follows.
pub const TEMPO_VERSION: &str = "2.3.0";

const PROTOBUF: &str = "application/protobuf";

/// A trace id as Tempo accepts it: up to 32 hex digits, left-padded with zeros.
fn trace_id(text: &str) -> Result<[u8; 16], ApiError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(format!(
            "trace id must be 1 to 32 hex characters, got {text:?}"
        )));
    }
    let padded = format!("{t:0>32}");
    let mut out = [0u8; 16];
    hex::decode_to_slice(padded, &mut out).expect("checked hex");
    Ok(out)
}

#[derive(Row, Deserialize)]
struct ResourceRow {
    service: String,
    instance: String,
    attributes: Vec<(String, String)>,
}

/// The trace's spans as OTLP resource spans (`None` when the trace is unknown).
async fn resource_spans(s: &ApiState, id: &str) -> Result<Option<Vec<ResourceSpans>>, ApiError> {
    let spans = trace_spans(s, trace_id(id)?).await?;
    if spans.is_empty() {
        return Ok(None);
    }
    let mut services: Vec<&str> = spans.iter().map(|r| r.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let rows: Vec<ResourceRow> = s
        .store
        .client()
        .query("SELECT service, instance, attributes FROM resources FINAL WHERE has(?, service)")
        .bind(services)
        .fetch_all()
        .await?;
    let by_key: HashMap<(String, String), Vec<(String, String)>> = rows
        .into_iter()
        .map(|r| ((r.service, r.instance), r.attributes))
        .collect();
    Ok(Some(otlp::resource_spans(&spans, |service, instance| {
        by_key
            .get(&(service.to_string(), instance.to_string()))
            .cloned()
            .unwrap_or_default()
    })))
}

fn wants_protobuf(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("protobuf"))
}

fn protobuf(s: &ApiState, body: Vec<u8>) -> Response {
    s.metrics
        .api_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ([(header::CONTENT_TYPE, PROTOBUF)], body).into_response()
}

fn not_found(s: &ApiState) -> Response {
    s.metrics
        .api_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    s.metrics
        .api_bad_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (StatusCode::NOT_FOUND, "trace not found").into_response()
}

/// `GET /api/traces/{id}`: OTLP `TracesData` (protobuf), or Tempo's v1 JSON
/// `{"batches": [...]}`.
async fn trace_v1(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Response {
    match resource_spans(&s, &id).await {
        Ok(None) => not_found(&s),
        Ok(Some(rs)) if wants_protobuf(&h) => {
            protobuf(&s, TracesData { resource_spans: rs }.encode_to_vec())
        }
        Ok(Some(rs)) => counted(&s, Ok(Json(json!({ "batches": rs })))).await,
        Err(e) => counted(&s, Err(e)).await,
    }
}

/// `GET /api/v2/traces/{id}`: Tempo's `TraceByIDResponse` (protobuf), or its JSON
/// `{"trace": {"resourceSpans": [...]}}`.
async fn trace_v2(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Response {
    match resource_spans(&s, &id).await {
        Ok(None) => not_found(&s),
        Ok(Some(rs)) if wants_protobuf(&h) => {
            let answer = tern_proto::tempo::TraceByIdResponse {
                trace: Some(tern_proto::tempo::Trace {
                    resource_spans: rs.iter().map(Message::encode_to_vec).collect(),
                }),
                metrics: Some(Default::default()),
            };
            protobuf(&s, answer.encode_to_vec())
        }
        Ok(Some(rs)) => counted(&s, Ok(Json(json!({ "trace": { "resourceSpans": rs } })))).await,
        Err(e) => counted(&s, Err(e)).await,
    }
}

fn params(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `start`/`end` (Unix seconds) as a microsecond window; the last 24 hours by default.
fn window(p: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let secs = |k: &str| -> Result<Option<i64>, ApiError> {
        p.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!("{k} must be Unix seconds, got {v:?}"))
                })
            })
            .transpose()
    };
    let now_us = now_ms() * 1000;
    let end = secs("end")?.map_or(now_us, |e| e * 1_000_000 + 999_999);
    let start = secs("start")?.map_or(end - 86_400_000_000, |s| s * 1_000_000);
    if start > end {
        return Err(ApiError::BadRequest("start must not be after end".into()));
    }
    Ok((start, end))
}

/// Conditions from the legacy parameters: `tags` (logfmt), `minDuration`, `maxDuration`.
fn legacy_conditions(p: &HashMap<String, String>) -> Result<Vec<Cond>, ApiError> {
    let mut out = Vec::new();
    if let Some(tags) = p.get("tags") {
        for pair in logfmt(tags) {
            let (k, v) = pair.map_err(ApiError::BadRequest)?;
            let field = match k.as_str() {
                "service.name" => Field::Service,
                "name" => Field::Name,
                "status" => Field::Status,
                other => Field::Any(other.into()),
            };
            let value = if field == Field::Status {
                Lit::Keyword(v)
            } else {
                Lit::Str(v)
            };
            out.push(Cond {
                field,
                op: Op::Eq,
                value,
            });
        }
    }
    for (k, op) in [("minDuration", Op::Ge), ("maxDuration", Op::Le)] {
        if let Some(v) = p.get(k).filter(|v| !v.is_empty()) {
            let d = traceql::go_duration(v).ok_or_else(|| {
                ApiError::BadRequest(format!("{k} must be a duration such as 100ms, got {v:?}"))
            })?;
            out.push(Cond {
                field: Field::TraceDuration,
                op,
                value: Lit::Micros(d.as_micros() as u64),
            });
        }
    }
    Ok(out)
}

/// `key=value key2="quoted value"` pairs.
fn logfmt(s: &str) -> Vec<Result<(String, String), String>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            out.push(Err(format!("tags must be key=value pairs, got {rest:?}")));
            break;
        };
        let key = rest[..eq].trim().to_string();
        rest = &rest[eq + 1..];
        let (value, after) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        out.push(Ok((key, value)));
        rest = after.trim_start();
    }
    out
}

async fn search_route(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    let r = async {
        let p = params(q.as_deref());
        let (from, to) = window(&p)?;
        let mut conds = legacy_conditions(&p)?;
        if let Some(q) = p.get("q").filter(|q| !q.trim().is_empty()) {
            conds.extend(traceql::parse(q).map_err(ApiError::BadRequest)?);
        }
        let limit = match p.get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("limit must be a number, got {l:?}")))?,
            None => 20,
        };
        let spss = match p.get("spss") {
            Some(n) => n
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("spss must be a number, got {n:?}")))?,
            None => 3,
        };
        Ok(Json(
            search::search(&s, &conds, from, to, limit, spss).await?,
        ))
    }
    .await;
    counted(&s, r).await
}

async fn tags_v2(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    let r = async {
        let p = params(q.as_deref());
        let (from, to) = window(&p)?;
        let (span, resource) = search::tag_names(&s, from, to).await?;
        let scope = p.get("scope").map(String::as_str).unwrap_or("all");
        let mut scopes = Vec::new();
        if matches!(scope, "all" | "" | "resource") {
            scopes.push(json!({ "name": "resource", "tags": resource }));
        }
        if matches!(scope, "all" | "" | "span") {
            scopes.push(json!({ "name": "span", "tags": span }));
        }
        if matches!(scope, "all" | "" | "intrinsic") {
            scopes.push(json!({ "name": "intrinsic", "tags": search::INTRINSICS }));
        }
        Ok(Json(json!({ "scopes": scopes })))
    }
    .await;
    counted(&s, r).await
}

async fn tags_v1(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    let r = async {
        let (from, to) = window(&params(q.as_deref()))?;
        let (mut span, resource) = search::tag_names(&s, from, to).await?;
        span.extend(resource);
        span.sort();
        span.dedup();
        Ok(Json(json!({ "tagNames": span })))
    }
    .await;
    counted(&s, r).await
}

/// One tag's values in the window, each shaped by `shape(value, type)`: Tempo's v1 API
/// answers bare strings, v2 typed objects.
async fn tag_values(
    s: &ApiState,
    tag: &str,
    q: Option<&str>,
    shape: fn(String, &'static str) -> serde_json::Value,
) -> Response {
    let r = async {
        let (from, to) = window(&params(q))?;
        let values: Vec<_> = search::tag_values(s, tag, from, to)
            .await?
            .into_iter()
            .map(|(v, t)| shape(v, t))
            .collect();
        Ok(Json(json!({ "tagValues": values })))
    }
    .await;
    counted(s, r).await
}

async fn tag_values_v2(
    State(s): State<Arc<ApiState>>,
    Path(tag): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    tag_values(
        &s,
        &tag,
        q.as_deref(),
        |v, t| json!({ "type": t, "value": v }),
    )
    .await
}

async fn tag_values_v1(
    State(s): State<Arc<ApiState>>,
    Path(tag): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    tag_values(&s, &tag, q.as_deref(), |v, _| json!(v)).await
}

async fn echo() -> &'static str {
    "echo"
}

async fn buildinfo() -> Json<serde_json::Value> {
    Json(json!({
        "version": TEMPO_VERSION, "revision": format!("tern-{}", env!("CARGO_PKG_VERSION")),
        "branch": "tern", "buildUser": "tern", "buildDate": "", "goVersion": "",
    }))
}

/// The Tempo API routes (merged into the API router).
pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/echo", get(echo))
        .route("/api/status/buildinfo", get(buildinfo))
        .route("/api/traces/{id}", get(trace_v1))
        .route("/api/v2/traces/{id}", get(trace_v2))
        .route("/api/search", get(search_route))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{tag}/values", get(tag_values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tag_values_v2))
}
