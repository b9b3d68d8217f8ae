//! A Prometheus-compatible HTTP API over the minute rollups, so Grafana's stock
//! Prometheus datasource works against the collector: `/api/v1/query`,
//! `/api/v1/query_range` (GET, or POST form), `/api/v1/labels`,
//! `/api/v1/label/{name}/values`, `/api/v1/series`, `/api/v1/status/buildinfo`.
//!
//! A query is parsed (`promql-parser`), its selectors' series are loaded from ClickHouse
//! ([`series`]), then it is evaluated in memory ([`eval`]). Answers and errors have
//! Prometheus's exact JSON shape; anything outside the supported subset is a
//! `bad_data` error, never a wrong number.

pub mod eval;
pub mod functions;
pub mod series;
pub mod value;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};
use serde_json::{json, Value as Json_};

use self::eval::{EvalError, Evaluator};
use self::series::{LoadError, FAMILIES};
use self::value::{Labels, Series, Value, NAME};
use super::{now_ms, ApiState};

/// Most points a range query may return per series (Prometheus's limit).
const MAX_POINTS: i64 = 11_000;

/// An error in Prometheus's shape: `{"status":"error","errorType":...,"error":...}`.
#[derive(Debug)]
pub struct PromError {
    kind: &'static str,
    message: String,
}

impl PromError {
    fn bad(message: impl Into<String>) -> PromError {
        PromError {
            kind: "bad_data",
            message: message.into(),
        }
    }
}

impl From<EvalError> for PromError {
    fn from(e: EvalError) -> PromError {
        match e {
            EvalError::BadData(m) => PromError::bad(m),
            EvalError::Execution(m) => PromError {
                kind: "execution",
                message: m,
            },
        }
    }
}

impl From<LoadError> for PromError {
    fn from(e: LoadError) -> PromError {
        match e {
            LoadError::TooMany => PromError {
                kind: "execution",
                message: e.to_string(),
            },
            LoadError::Store(_) => PromError {
                kind: "unavailable",
                message: e.to_string(),
            },
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let status = match self.kind {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(json!({ "status": "error", "errorType": self.kind, "error": self.message })),
        )
            .into_response()
    }
}

type PromResult = Result<Json_, PromError>;

/// Request parameters: the query string and, for POST, the form body (repeated keys
/// such as `match[]` kept).
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: Option<&str>, body: &[u8]) -> Params {
        let mut v: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        v.extend(form_urlencoded::parse(body).into_owned());
        Params(v)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// A time parameter (RFC 3339 or float seconds) in milliseconds.
    fn time(&self, k: &str) -> Result<Option<i64>, PromError> {
        self.get(k).map(|v| parse_time(k, v)).transpose()
    }
}

/// Parses Prometheus's time format: float Unix seconds or RFC 3339.
pub fn parse_time(name: &str, v: &str) -> Result<i64, PromError> {
    if let Ok(s) = v.parse::<f64>() {
        if s.is_finite() {
            return Ok((s * 1000.0).round() as i64);
        }
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|d| d.timestamp_millis())
        .map_err(|_| {
            PromError::bad(format!(
                "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid timestamp"
            ))
        })
}

/// Parses a step or duration: float seconds or a PromQL duration (`15s`, `1m`).
pub fn parse_duration_ms(name: &str, v: &str) -> Result<i64, PromError> {
    if let Ok(s) = v.parse::<f64>() {
        if s.is_finite() {
            return Ok((s * 1000.0).round() as i64);
        }
    }
    promql_parser::util::parse_duration(v)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| {
            PromError::bad(format!(
                "invalid parameter \"{name}\": cannot parse \"{v}\" to a valid duration"
            ))
        })
}

fn parse_query(p: &Params) -> Result<Expr, PromError> {
    let q = p
        .get("query")
        .ok_or_else(|| PromError::bad("invalid parameter \"query\": missing"))?;
    promql_parser::parser::parse(q)
        .map_err(|e| PromError::bad(format!("invalid parameter \"query\": {e}")))
}

/// The equality matchers of a selector (but the name), to narrow the store query.
fn equalities(vs: &VectorSelector) -> Vec<(String, String)> {
    vs.matchers
        .matchers
        .iter()
        .filter(|m| m.name != NAME && m.op == MatchOp::Equal)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect()
}

/// Whether a selector may select series of the family `name`.
fn may_select(vs: &VectorSelector, name: &str) -> bool {
    let mut l = Labels::new();
    l.insert(NAME.into(), name.into());
    vs.name.as_deref().is_none_or(|n| n == name)
        && vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == NAME)
            .all(|m| m.is_match(name))
}

/// Loads the series of every selector of `e` for evaluations in `[start, end]`.
async fn load_for(
    s: &ApiState,
    e: &Expr,
    start: i64,
    end: i64,
) -> Result<HashMap<usize, Vec<Series>>, PromError> {
    let now = now_ms();
    let mut data = HashMap::new();
    for need in eval::selectors(e)? {
        let vs = need.selector;
        if vs.name.is_none() && vs.matchers.is_empty_matchers() {
            return Err(PromError::bad(
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        let mut all = Vec::new();
        for f in FAMILIES.iter().filter(|f| may_select(vs, f.name)) {
            let keep = |l: &Labels| eval::selects(vs, l);
            let from = start - need.before_ms;
            let to = end - need.offset_ms;
            all.extend(series::load(s, f, &equalities(vs), from, to, now, &keep).await?);
        }
        data.insert(eval::key(vs), all);
    }
    Ok(data)
}

/// Evaluates `query` at one instant.
pub async fn instant(s: &ApiState, expr: &Expr, t: i64) -> PromResult {
    let data = load_for(s, expr, t, t).await?;
    let v = Evaluator { data: &data }.eval(expr, t)?;
    Ok(value::instant_json(&v, t))
}

/// Evaluates `query` at every step of `[start, end]`.
pub async fn range(s: &ApiState, expr: &Expr, start: i64, end: i64, step: i64) -> PromResult {
    if step <= 0 {
        return Err(PromError::bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if end < start {
        return Err(PromError::bad(
            "end timestamp must not be before start time",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(PromError::bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let data = load_for(s, expr, start, end).await?;
    let ev = Evaluator { data: &data };
    let mut out: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
    let mut t = start;
    while t <= end {
        match ev.eval(expr, t)? {
            Value::Scalar(v) => out.entry(Labels::new()).or_default().push((t, v)),
            Value::Vector(v) => {
                for x in v {
                    out.entry(x.labels).or_default().push((t, x.value));
                }
            }
            other => {
                return Err(PromError::bad(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                if matches!(other, Value::Matrix(_)) {
                    "range vector"
                } else {
                    other.type_name()
                }
            )))
            }
        }
        t += step;
    }
    let mut series: Vec<Series> = out
        .into_iter()
        .map(|(labels, samples)| Series { labels, samples })
        .collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(json!({ "resultType": "matrix", "result": value::matrix_json(&series) }))
}

async fn query_handler(s: &ApiState, p: &Params) -> PromResult {
    let expr = parse_query(p)?;
    let t = p.time("time")?.unwrap_or_else(now_ms);
    instant(s, &expr, t).await
}

async fn query_range_handler(s: &ApiState, p: &Params) -> PromResult {
    let expr = parse_query(p)?;
    let start = p
        .time("start")?
        .ok_or_else(|| PromError::bad("invalid parameter \"start\": missing"))?;
    let end = p
        .time("end")?
        .ok_or_else(|| PromError::bad("invalid parameter \"end\": missing"))?;
    let step = parse_duration_ms(
        "step",
        p.get("step")
            .ok_or_else(|| PromError::bad("invalid parameter \"step\": missing"))?,
    )?;
    range(s, &expr, start, end, step).await
}

/// The label sets of series matching any `match[]` (all series when none), up to `end`.
async fn matching_sets(s: &ApiState, p: &Params, required: bool) -> Result<Vec<Labels>, PromError> {
    let end = p.time("end")?.unwrap_or_else(now_ms);
    let mut selectors = Vec::new();
    for m in p.all("match[]") {
        match promql_parser::parser::parse(m) {
            Ok(Expr::VectorSelector(vs)) => selectors.push(vs),
            Ok(_) => {
                return Err(PromError::bad(format!(
                    "invalid parameter \"match[]\": {m} is not a series selector"
                )))
            }
            Err(e) => {
                return Err(PromError::bad(format!(
                    "invalid parameter \"match[]\": {e}"
                )))
            }
        }
    }
    if selectors.is_empty() && required {
        return Err(PromError::bad("no match[] parameter provided"));
    }
    let mut out = BTreeSet::new();
    for f in FAMILIES {
        let wanted: Vec<&VectorSelector> = selectors
            .iter()
            .filter(|vs| may_select(vs, f.name))
            .collect();
        if !selectors.is_empty() && wanted.is_empty() {
            continue;
        }
        let keep = |l: &Labels| wanted.is_empty() || wanted.iter().any(|vs| eval::selects(vs, l));
        out.extend(series::label_sets(s, f, end, &keep).await?);
    }
    Ok(out.into_iter().collect())
}

async fn labels_handler(s: &ApiState, p: &Params) -> PromResult {
    let names: BTreeSet<String> = matching_sets(s, p, false)
        .await?
        .into_iter()
        .flat_map(|l| l.into_keys())
        .collect();
    Ok(json!(names))
}

async fn label_values_handler(s: &ApiState, p: &Params, name: &str) -> PromResult {
    let values: BTreeSet<String> = matching_sets(s, p, false)
        .await?
        .into_iter()
        .filter_map(|mut l| l.remove(name))
        .filter(|v| !v.is_empty())
        .collect();
    Ok(json!(values))
}

async fn series_handler(s: &ApiState, p: &Params) -> PromResult {
    Ok(json!(matching_sets(s, p, true).await?))
}

/// The Prometheus version whose API and PromQL semantics Tern follows.
pub const PROMETHEUS_VERSION: &str = "2.42.0";

async fn buildinfo() -> Json<Json_> {
    Json(json!({ "status": "success", "data": {
        "version": PROMETHEUS_VERSION, "revision": format!("tern-{}", env!("CARGO_PKG_VERSION")),
        "branch": "tern", "buildUser": "tern", "buildDate": "", "goVersion": "",
    }}))
}

fn answer(s: &ApiState, r: PromResult) -> Response {
    s.metrics.api_requests.fetch_add(1, Relaxed);
    match r {
        Ok(data) => Json(json!({ "status": "success", "data": data })).into_response(),
        Err(e) => {
            if e.kind == "unavailable" {
                tracing::warn!(error = %e.message, "prometheus api query failed");
                s.metrics.api_errors.fetch_add(1, Relaxed);
            } else {
                s.metrics.api_bad_requests.fetch_add(1, Relaxed);
            }
            e.into_response()
        }
    }
}

macro_rules! handler {
    ($name:ident, $f:ident) => {
        async fn $name(
            State(s): State<Arc<ApiState>>,
            RawQuery(q): RawQuery,
            body: Bytes,
        ) -> Response {
            let p = Params::new(q.as_deref(), &body);
            let r = $f(&s, &p).await;
            answer(&s, r)
        }
    };
}

handler!(query, query_handler);
handler!(query_range, query_range_handler);
handler!(labels, labels_handler);
handler!(series_route, series_handler);

async fn label_values(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = Params::new(q.as_deref(), &body);
    let r = label_values_handler(&s, &p, &name).await;
    answer(&s, r)
}

/// Help texts for `/api/v1/metadata` (Grafana shows them in its metric browser).
const HELP: &[(&str, &str, &str)] = &[
    (
        "tern_requests_total",
        "counter",
        "Transactions (entry spans) finished, per minute rollup.",
    ),
    (
        "tern_request_errors_total",
        "counter",
        "Failed transactions.",
    ),
    (
        "tern_request_duration_seconds",
        "histogram",
        "Elapsed time of transactions (from log-scale rollup buckets).",
    ),
    (
        "tern_request_cpu_seconds_total",
        "counter",
        "CPU time of transactions, when agents report it.",
    ),
    (
        "tern_sql_calls_total",
        "counter",
        "SQL calls, by database system.",
    ),
    ("tern_sql_errors_total", "counter", "Failed SQL calls."),
    (
        "tern_sql_duration_seconds_sum",
        "counter",
        "Total time spent in SQL calls.",
    ),
    (
        "tern_external_calls_total",
        "counter",
        "Outgoing calls to other services, by target host:port.",
    ),
    (
        "tern_external_errors_total",
        "counter",
        "Failed outgoing calls.",
    ),
    (
        "tern_external_duration_seconds_sum",
        "counter",
        "Total time spent in outgoing calls.",
    ),
];

async fn metadata() -> Json<Json_> {
    let data: serde_json::Map<String, Json_> = HELP
        .iter()
        .map(|(name, kind, help)| {
            (
                name.to_string(),
                json!([{ "type": kind, "help": help, "unit": "" }]),
            )
        })
        .collect();
    Json(json!({ "status": "success", "data": data }))
}

/// Tern has no exemplars: an empty, successful answer (Grafana may ask).
async fn exemplars() -> Json<Json_> {
    Json(json!({ "status": "success", "data": [] }))
}

/// The Prometheus API routes (merged into the API router).
pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/series", get(series_route).post(series_route))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
}
