//! The web UI: static assets compiled into the binary (`collector/ui/`, plain ES modules,
//! no build step) served under `/ui/`, and the live push `/api/v1/live` (server-sent
//! events, one `tick` per second) that the dashboard and the X-View stream from.

pub mod live;

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::aggregate::LiveWindows;
use crate::ingest::live::LiveState;

/// What the UI routes need.
pub struct UiState {
    /// Per-second windows and recent points, fed by the writer.
    pub windows: Arc<LiveWindows>,
    /// Agents' active transactions (for the equalizer).
    pub live: Arc<LiveState>,
    /// Turns true at shutdown: open event streams end so the server can stop.
    pub shutdown: watch::Receiver<bool>,
}

/// The embedded files: (name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/api.js"),
    ),
    (
        "xview.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/xview.js"),
    ),
    (
        "points.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/points.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/dashboard.js"),
    ),
    (
        "calltree.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/calltree.js"),
    ),
    (
        "tables.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/tables.js"),
    ),
];

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

async fn index() -> Response {
    asset("index.html")
}

async fn file(Path(name): Path<String>) -> Response {
    asset(&name)
}

/// The UI routes: `/` redirects to `/ui/`, `/ui/<file>` serves the assets, and
/// `/api/v1/live` (+ `/api/v1/live/now`) the live numbers.
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/{file}", get(file))
        .route("/api/v1/live", get(live::stream))
        .route("/api/v1/live/now", get(live::now))
        .with_state(Arc::new(state))
}
