//! A small shop service instrumented with the Tern layer: axum, a real SQLite database
//! (rusqlite), and outgoing HTTP calls that carry `traceparent` (here to its own
//! `/inventory` endpoint, so each order is a trace across two transactions).
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 \
//!   cargo run -p tern-agent --example demo_service -- --listen 127.0.0.1:3000 --drive 5
//! ```
//!
//! `--drive N` makes it send itself about N requests a second (products, orders, a slow
//! report now and then), so real agent traffic shows up in Tern with nothing else.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::Connection;
use serde_json::{json, Value};
use tower_http::trace::TraceLayer;
use tracing::{field, info_span, Instrument, Span};
use tracing_subscriber::prelude::*;

#[derive(Clone)]
struct App {
    db: Arc<Mutex<Connection>>,
    http: reqwest::Client,
    base: String,
}

/// Runs one statement on the blocking pool inside a SQL span.
async fn sql<T: Send + 'static>(
    app: &App,
    statement: &'static str,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StatusCode> {
    let span = info_span!(
        "sqlite",
        db.system.name = "sqlite",
        db.query.text = statement
    );
    let db = app.db.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _in = span.enter();
        let conn = db.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).inspect_err(
            |e| tracing::error!(error.type = "SqliteError", error = %e, "query failed"),
        )
    })
    .await;
    match result {
        Ok(Ok(v)) => Ok(v),
        _ => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

#[tracing::instrument(skip(app))]
async fn load_product(app: &App, id: i64) -> Result<Value, StatusCode> {
    sql(app, "SELECT id, name, price FROM products WHERE id = ?1", move |c| {
        c.query_row(
            "SELECT id, name, price FROM products WHERE id = ?1",
            [id],
            |r| Ok(json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?, "price": r.get::<_, f64>(2)?})),
        )
    })
    .await
}

async fn product(State(app): State<App>, Path(id): Path<i64>) -> Result<Json<Value>, StatusCode> {
    let p = load_product(&app, id).await?;
    Ok(Json(p))
}

/// An outgoing HTTP call in an external-call span, with `traceparent` injected.
async fn call(app: &App, path: &str) -> Result<Value, String> {
    let url = format!("{}{path}", app.base);
    let span = info_span!(
        "GET",
        otel.kind = "client",
        url.full = %url,
        http.request.method = "GET",
        http.response.status_code = field::Empty
    );
    let tp = span.in_scope(tern_agent::current_traceparent);
    let mut req = app.http.get(&url);
    if let Some(tp) = tp {
        req = req.header("traceparent", tp.to_header());
    }
    async move {
        let resp = req.send().await.map_err(|e| e.to_string())?;
        Span::current().record("http.response.status_code", resp.status().as_u16());
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        resp.json().await.map_err(|e| e.to_string())
    }
    .instrument(span)
    .await
}

async fn order(State(app): State<App>) -> Response {
    let product: i64 = rand_below(50) as i64 + 1;
    if let Err(e) = call(&app, &format!("/inventory/{product}")).await {
        tracing::error!(error.type = "InventoryUnavailable", error = %e, "cannot reserve stock");
        return (StatusCode::BAD_GATEWAY, "inventory unavailable").into_response();
    }
    let id = sql(
        &app,
        "INSERT INTO orders (product_id, created) VALUES (?1, datetime('now'))",
        move |c| {
            c.execute(
                "INSERT INTO orders (product_id, created) VALUES (?1, datetime('now'))",
                [product],
            )?;
            Ok(c.last_insert_rowid())
        },
    )
    .await;
    match id {
        Ok(id) => Json(json!({"order": id, "product": product})).into_response(),
        Err(s) => s.into_response(),
    }
}

/// The "downstream service": a little latency, and it fails now and then.
async fn inventory(Path(id): Path<i64>) -> Result<Json<Value>, StatusCode> {
    check_stock(id).await
}

#[tracing::instrument]
async fn check_stock(id: i64) -> Result<Json<Value>, StatusCode> {
    tokio::time::sleep(Duration::from_millis(5 + rand_below(40))).await;
    if rand_below(20) == 0 {
        tracing::error!(error.type = "StockServiceDown", "stock backend timed out");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(json!({"product": id, "reserved": true})))
}

/// A slow report: a heavy SQL statement (seen live in the active-transaction view).
async fn report(State(app): State<App>) -> Result<Json<Value>, StatusCode> {
    const Q: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT sum(x) FROM c";
    let total = sql(&app, Q, |c| c.query_row(Q, [], |r| r.get::<_, i64>(0))).await?;
    Ok(Json(json!({"total": total})))
}

fn rand_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() % n
}

fn open_db() -> rusqlite::Result<Connection> {
    let c = Connection::open_in_memory()?;
    c.execute_batch(
        "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL, created TEXT NOT NULL);",
    )?;
    for i in 1..=50 {
        c.execute(
            "INSERT INTO products (id, name, price) VALUES (?1, ?2, ?3)",
            rusqlite::params![i, format!("product {i}"), 1.5 * i as f64],
        )?;
    }
    Ok(c)
}

/// Sends the service about `rate` requests a second, forever.
async fn drive(base: String, rate: u64) {
    let client = reqwest::Client::new();
    let pause = Duration::from_micros(1_000_000 / rate.max(1));
    loop {
        let r = rand_below(100);
        let req = if r < 55 {
            client.get(format!("{base}/products/{}", rand_below(50) + 1))
        } else if r < 90 {
            client.post(format!("{base}/orders"))
        } else {
            client.get(format!("{base}/reports/sales"))
        };
        tokio::spawn(async move {
            let _ = req.send().await;
        });
        tokio::time::sleep(pause).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut rate = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or_default().parse()?,
            "--drive" => rate = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other:?} (use --listen ADDR, --drive RATE)"),
        }
    }

    let (tern, _guard) = tern_agent::builder().service_name("demo-shop").build()?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(
            "info,h2=warn,hyper=warn,reqwest=warn",
        ))
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(tern)
        .init();

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = App {
        db: Arc::new(Mutex::new(open_db()?)),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?,
        base: format!("http://{addr}"),
    };
    let http_span = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            let headers: &HeaderMap = req.headers();
            let traceparent = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            info_span!(
                "request",
                otel.kind = "server",
                http.request.method = %req.method(),
                url.path = %req.uri().path(),
                http.route = %route,
                traceparent = %traceparent,
                http.response.status_code = field::Empty
            )
        })
        .on_response(|res: &Response, _latency: Duration, span: &Span| {
            span.record("http.response.status_code", res.status().as_u16());
        });
    let router = Router::new()
        .route("/products/{id}", get(product))
        .route("/orders", post(order))
        .route("/inventory/{id}", get(inventory))
        .route("/reports/sales", get(report))
        .route_layer(http_span)
        .with_state(app.clone());

    tracing::info!(%addr, "demo service listening");
    if rate > 0 {
        tokio::spawn(drive(app.base.clone(), rate));
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}
