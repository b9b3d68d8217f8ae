//! The live push behind the dashboard (`/api/v1/live`, `/api/v1/live/now`) and the UI's
//! files, over the real collector.

mod common;

use std::io::Read;

use common::otlp::batch;
use common::{now_ns, Collector, StoreMode};
use prost::Message;
use serde_json::Value;

/// Reads the first `tick` event of an event stream.
fn first_tick(url: &str) -> Value {
    let mut r = reqwest::blocking::get(url).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    while !text.contains("\n\n") || !text.contains("event: tick") {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended before a tick: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    serde_json::from_str(data).unwrap()
}

#[test]
fn the_live_push_counts_new_transactions_and_backfills_a_late_view() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    // 20 transactions ending within 20 ms, 0.3 s ago: counted once their second is
    // over, for the 5 whole seconds after it.
    let (txns, req) = batch("shop", 1..21, now_ns() - 300_000_000);
    let r = c.post_traces(
        req.encode_to_vec(),
        &[("content-type", "application/x-protobuf")],
    );
    assert_eq!(r.status(), 200);

    let now = c.eventually("/api/v1/live/now", |v| v["total"]["calls"] == 20);
    assert_eq!(now["window_secs"], 5);
    assert_eq!(now["total"]["errors"], 2);
    assert_eq!(now["services"][0]["service"], "shop");
    assert_eq!(now["total"]["tps"], 4.0);
    let avg: f64 = (1..21u64).map(|s| (5 + s % 50) as f64).sum::<f64>() / 20.0;
    assert!((now["total"]["avg_ms"].as_f64().unwrap() - avg).abs() < 1e-9);
    assert_eq!(now["seconds"].as_array().unwrap().len(), 60);
    assert_eq!(now["active"]["bands"].as_array().unwrap().len(), 4);

    // A stream opened now sees those transactions only when it asks for backfill.
    let tick = first_tick(&format!("{}/api/v1/live?backfill_secs=30", c.api));
    let ids: Vec<&str> = tick["points"]["id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut want: Vec<String> = txns.iter().map(|t| t.txid()).collect();
    let mut got: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(tick["points"]["service"][0], "shop");
    let plain = first_tick(&format!("{}/api/v1/live", c.api));
    assert_eq!(plain["points"]["id"].as_array().unwrap().len(), 0);
    assert_eq!(plain["window_secs"], 5);

    let (status, body) = c.get("/api/v1/live?backfill_secs=99");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("backfill_secs"));
    let (status, _) = c.get("/api/v1/live?bogus=1");
    assert_eq!(status, 400);
}

#[test]
fn the_collector_serves_the_ui_files() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let page = reqwest::blocking::get(format!("{}/", c.api)).unwrap();
    assert_eq!(page.url().path(), "/ui/", "/ redirects to the UI");
    assert!(page.text().unwrap().contains("<title>Tern</title>"));
    let js = reqwest::blocking::get(format!("{}/ui/xview.js", c.api)).unwrap();
    assert_eq!(
        js.headers()["content-type"].to_str().unwrap(),
        "text/javascript; charset=utf-8"
    );
    assert!(js.text().unwrap().contains("export class XView"));
    let missing = reqwest::blocking::get(format!("{}/ui/nope.js", c.api)).unwrap();
    assert_eq!(missing.status(), 404);
}
