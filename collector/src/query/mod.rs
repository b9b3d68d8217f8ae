//! The HTTP JSON query API under `/api/v1/` (documented in docs/api.md), plus `/metrics`
//! and `/health`. Handlers are thin: parse parameters strictly, run ClickHouse SQL
//! through the store's client, shape JSON.

pub mod calltree;
pub mod params;
pub mod prom;
pub mod stats;
pub mod tempo;
pub mod xview;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::ingest::live::LiveState;
use crate::server::config::ApiConfig;
use crate::server::metrics::Metrics;
use crate::store::Store;

/// Everything a handler needs.
pub struct ApiState {
    pub store: Store,
    pub live: Arc<LiveState>,
    pub metrics: Arc<Metrics>,
    pub config: ApiConfig,
}

pub type Shared = State<Arc<ApiState>>;

/// An API failure, answered as `{"error": "..."}` with a fitting status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("store query failed: {0}")]
    Store(#[from] clickhouse::error::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

pub type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// Counts the outcome of a handler in the self-metrics.
async fn counted(state: &ApiState, result: ApiResult) -> Response {
    state.metrics.api_requests.fetch_add(1, Relaxed);
    match result {
        Ok(json) => json.into_response(),
        Err(e) => {
            match &e {
                ApiError::BadRequest(_) | ApiError::NotFound(_) => {
                    state.metrics.api_bad_requests.fetch_add(1, Relaxed)
                }
                ApiError::Store(err) => {
                    tracing::warn!(error = %err, "api query failed");
                    state.metrics.api_errors.fetch_add(1, Relaxed)
                }
            };
            e.into_response()
        }
    }
}

macro_rules! endpoint {
    ($name:ident, $f:path) => {
        async fn $name(State(s): Shared, RawQuery(q): RawQuery) -> Response {
            let r = $f(&s, q.as_deref()).await;
            counted(&s, r).await
        }
    };
}

endpoint!(services, stats::services);
endpoint!(endpoints, stats::endpoints);
endpoint!(sql, stats::top_sql);
endpoint!(external, stats::external);
endpoint!(errors, stats::errors);
endpoint!(points, xview::points);
endpoint!(transactions, xview::transactions);
endpoint!(active, stats::active);

async fn transaction(
    State(s): Shared,
    Path((trace_id, span_id)): Path<(String, String)>,
) -> Response {
    let r = calltree::transaction(&s, &trace_id, &span_id).await;
    counted(&s, r).await
}

async fn trace(State(s): Shared, Path(trace_id): Path<String>) -> Response {
    let r = calltree::trace(&s, &trace_id).await;
    counted(&s, r).await
}

async fn agents(State(s): Shared) -> Json<serde_json::Value> {
    Json(json!({ "agents": s.live.agents() }))
}

async fn self_metrics(State(s): Shared) -> Json<serde_json::Value> {
    Json(s.metrics.to_json())
}

async fn prometheus(State(s): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render_prometheus(),
    )
        .into_response()
}

async fn health(State(s): Shared) -> Response {
    let up = s.store.is_up().await;
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "status": if up { "ok" } else { "store down" }, "store_up": up })),
    )
        .into_response()
}

async fn not_found(State(s): Shared) -> Response {
    let r = Err(ApiError::NotFound(
        "no such API endpoint; see docs/api.md".into(),
    ));
    counted(&s, r).await
}

/// The API routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/services", get(services))
        .route("/api/v1/endpoints", get(endpoints))
        .route("/api/v1/xview", get(points))
        .route("/api/v1/transactions", get(transactions))
        .route(
            "/api/v1/transactions/{trace_id}/{span_id}",
            get(transaction),
        )
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/sql", get(sql))
        .route("/api/v1/external", get(external))
        .route("/api/v1/errors", get(errors))
        .route("/api/v1/active", get(active))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/self", get(self_metrics))
        .merge(prom::routes())
        .merge(tempo::routes())
        .route("/metrics", get(prometheus))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(state)
}

/// A WHERE clause and its bound values, built in order.
#[derive(Default)]
pub struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

enum Bind {
    I64(i64),
    U64(u64),
    Str(String),
}

impl Where {
    pub fn and(&mut self, clause: impl Into<String>) -> &mut Self {
        self.clauses.push(clause.into());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.binds.push(Bind::I64(v));
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.binds.push(Bind::U64(v));
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.binds.push(Bind::Str(v.to_string()));
        self
    }

    /// Takes the bound values of `inner`, whose `sql()` went into the last clause added
    /// here (a subquery).
    pub fn append(&mut self, inner: Where) -> &mut Self {
        self.binds.extend(inner.binds);
        self
    }

    /// `WHERE a AND b …` (empty when there is no clause).
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// Binds the values, in order, to a query whose `?`s came from [`Where::sql`].
    pub fn bind(&self, mut q: clickhouse::query::Query) -> clickhouse::query::Query {
        for b in &self.binds {
            q = match b {
                Bind::I64(v) => q.bind(*v),
                Bind::U64(v) => q.bind(*v),
                Bind::Str(v) => q.bind(v.as_str()),
            };
        }
        q
    }
}

pub fn now_ms() -> i64 {
    crate::store::writer::now_ms()
}
