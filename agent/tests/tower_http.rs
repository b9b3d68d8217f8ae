//! An axum service with tower-http's stock `TraceLayer` (no custom span): its request
//! spans become transactions, and a handler's `#[instrument]` and SQL spans its call
//! tree.

mod common;

use std::time::Duration;

use axum::routing::get;
use tower_http::trace::TraceLayer;
use tracing_subscriber::prelude::*;

#[tracing::instrument]
async fn lookup(id: u32) -> String {
    let _q = tracing::info_span!(
        "select",
        db.system.name = "sqlite",
        db.query.text = "SELECT name FROM items WHERE id = ?"
    )
    .entered();
    format!("item {id}")
}

async fn item(axum::extract::Path(id): axum::extract::Path<u32>) -> String {
    lookup(id).await
}

#[test]
fn tower_http_request_spans_become_transactions() {
    let c = common::collector();
    let (layer, guard) = tern_agent::builder()
        .service_name("tower")
        .endpoint(&c.otlp_grpc)
        .export_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let app = axum::Router::new()
                .route("/items/{id}", get(item))
                .layer(TraceLayer::new_for_http());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let client = reqwest::Client::new();
            for id in 1..=3 {
                let body = client
                    .get(format!("http://{addr}/items/{id}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert_eq!(body, format!("item {id}"));
            }
        })
    });
    drop(rt);
    drop(guard);

    let list = c.eventually("/api/v1/transactions?from=0&service=tower", |b| {
        b["total"].as_u64() == Some(3)
    });
    let t = &list["transactions"][0];
    assert_eq!(t["http_method"], "GET", "{t}");
    assert!(
        t["endpoint"].as_str().unwrap().starts_with("GET /items/"),
        "{t}"
    );
    assert_eq!(t["sql_count"], 1, "{t}");
    assert_eq!(t["http_status"], 200, "{t}");
    let tree = c.api(&format!(
        "/api/v1/transactions/{}/{}",
        t["trace_id"].as_str().unwrap(),
        t["span_id"].as_str().unwrap()
    ));
    let kids = tree["call_tree"]["children"].as_array().unwrap();
    assert_eq!(kids[0]["name"], "lookup", "{tree}");
    assert_eq!(kids[0]["children"][0]["category"], "sql", "{tree}");
}
