//! The web UI end to end in a real browser: the real collector with seeded
//! transactions (OTLP) and a live agent snapshot (tern.v1), Debian's Chromium driven by
//! `collector/tests/ui/e2e.mjs` (playwright-core). The script checks the page against
//! the API and the seeds and saves screenshots in `target/ui-screenshots/`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::otlp::{request, txn};
use common::{now_ns, Collector, StoreMode};
use prost::Message;
use serde_json::json;
use tern_proto::v1::live_service_client::LiveServiceClient;
use tern_proto::v1::{ActiveSnapshot, ActiveTransaction, ActivityKind, AgentHello};
use tern_testkit::browser::{run_node_script, workspace_root};

/// 240 transactions over the last four minutes: two services, elapsed 20–919 ms, every
/// 7th failed; each with one SQL call whose text names its seed.
fn seed(c: &Collector) -> Vec<serde_json::Value> {
    let now = now_ns() - 5_000_000_000;
    let mut seeds = Vec::new();
    for (service, range) in [("shop", 1..181u64), ("billing", 181..241u64)] {
        let txns: Vec<_> = range
            .map(|s| {
                let end = now - s * 1_000_000_000;
                let elapsed = 20 + (s * 37) % 900;
                let failed = s % 7 == 0;
                let t = txn(s, end, elapsed, &format!("/api/orders/{s}"), failed);
                seeds.push(json!({
                    "txid": t.txid(), "service": service, "end_ms": end / 1_000_000,
                    "elapsed_us": elapsed * 1000, "error": failed,
                    "sql": format!("SELECT * FROM orders WHERE id = {s}"),
                }));
                t
            })
            .collect();
        let spans = txns.iter().flat_map(|t| t.spans.clone()).collect();
        let r = c.post_traces(
            request(service, spans).encode_to_vec(),
            &[("content-type", "application/x-protobuf")],
        );
        assert_eq!(r.status(), 200);
    }
    c.eventually("/api/v1/transactions?from=0&limit=1", |v| v["total"] == 240);
    seeds
}

/// Keeps one agent's snapshot fresh (two running transactions of `shop`, 0.5 s and
/// 4 s old) until `stop`.
fn report_active(grpc: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut client = LiveServiceClient::connect(grpc).await.unwrap();
            client
                .hello(AgentHello {
                    agent_id: "agent-ui".into(),
                    service_name: "shop".into(),
                    instance: "i-1".into(),
                    language: "rust".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let now = now_ns();
                let running = |n: u8, age_ms: u64, detail: &str| ActiveTransaction {
                    trace_id: vec![n; 16],
                    span_id: vec![n; 8],
                    endpoint: format!("GET /api/slow/{n}"),
                    http_method: "GET".into(),
                    start_time_unix_nano: now - age_ms * 1_000_000,
                    worker: format!("thread {n}"),
                    current_kind: ActivityKind::Sql as i32,
                    current_detail: detail.into(),
                    current_start_unix_nano: now - 200_000_000,
                    ..Default::default()
                };
                client
                    .report_active(ActiveSnapshot {
                        agent_id: "agent-ui".into(),
                        service_name: "shop".into(),
                        instance: "i-1".into(),
                        time_unix_nano: now,
                        transactions: vec![
                            running(1, 500, "SELECT * FROM carts WHERE id = ?"),
                            running(2, 4000, "SELECT SLEEP(5)"),
                        ],
                    })
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
    })
}

#[test]
fn the_ui_shows_the_api_numbers_and_a_drag_select_lists_exactly_the_transactions_in_the_box() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let seeds = seed(&c);
    let stop = Arc::new(AtomicBool::new(false));
    let agent = report_active(c.otlp_grpc.clone(), stop.clone());
    c.eventually("/api/v1/active", |v| v["count"] == 2);

    let root = workspace_root();
    let shots = root.join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let seeds_file = c.data_dir.with_extension("seeds.json");
    std::fs::write(&seeds_file, serde_json::to_vec(&seeds).unwrap()).unwrap();
    let run = run_node_script(
        &root.join("collector/tests/ui/e2e.mjs"),
        &[
            &c.api,
            seeds_file.to_str().unwrap(),
            shots.to_str().unwrap(),
            &c.otlp_http,
        ],
    );
    stop.store(true, Ordering::Relaxed);
    agent.join().unwrap();
    println!("{}", run.stdout);
    eprintln!("{}", run.stderr);
    assert!(run.success, "the browser checks failed:\n{}", run.stdout);
    for check in [
        "ok dashboard services table matches /api/v1/services",
        "ok live tiles match the last tick",
        "ok a transaction sent while the page is open arrives live",
        "ok x-view draws every seeded point",
        "ok drag-select lists exactly the seeded transactions inside the box",
        "ok call tree shows the transaction's SQL",
        "ok the URL restores the selection and the call tree",
        "ok the whole trace opens from the call tree",
        "ok statistics match /api/v1/endpoints and sort by a clicked column",
        "ok active services list the agent's running transactions",
        "ok empty state and dark theme render",
        "ok filters narrow the X-View",
        "ok wheel zoom keeps the view in the URL and loads it",
        "ok an API error shows in a banner",
    ] {
        assert!(
            run.stdout.contains(check),
            "missing `{check}`:\n{}",
            run.stdout
        );
    }
}
