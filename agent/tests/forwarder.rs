//! The PHP forwarder against the real collector, fed frames encoded here the way the
//! extension encodes them (`tern_php_wire::encode_frame` around an OTLP request), and
//! active transactions written with the extension's own slot writer.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{wait_for, PATIENCE};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tern_agent::forwarder::{Config, Forwarder, Stats};

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One PHP request: a server span and one SQL span under it.
fn php_request(service: &str, n: u64) -> Vec<u8> {
    let trace_id: Vec<u8> = (n as u128 + 1).to_be_bytes().to_vec();
    let now = common::now_ns();
    let entry = Span {
        trace_id: trace_id.clone(),
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: "GET /orders".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: now - 2_000_000,
        end_time_unix_nano: now,
        attributes: vec![kv("http.request.method", "GET"), kv("url.path", "/orders")],
        ..Default::default()
    };
    let sql = Span {
        trace_id,
        span_id: (n + 1_000_000).to_be_bytes().to_vec(),
        parent_span_id: (n + 1).to_be_bytes().to_vec(),
        name: "SELECT".into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: now - 1_500_000,
        end_time_unix_nano: now - 500_000,
        attributes: vec![
            kv("db.system.name", "sqlite"),
            kv("db.query.text", "SELECT * FROM orders WHERE id = 7"),
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", service),
                    kv("telemetry.sdk.language", "php"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![entry, sql],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    tern_php_wire::encode_frame(payload, &mut out).unwrap();
    out
}

fn config(dir: &Path, endpoint: &str) -> Config {
    Config {
        socket: dir.join("agent.sock"),
        active: dir.join("active"),
        endpoint: endpoint.to_string(),
        export_interval: Duration::from_millis(50),
        live_interval: Duration::from_millis(200),
        shutdown_timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Starts a forwarder on a thread of its own; `stop` it to get the final counters.
struct Running {
    stats: std::sync::Arc<parking_lot::Mutex<Stats>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Stats>>,
}

impl Running {
    fn start(config: Config) -> Running {
        let stats = std::sync::Arc::new(parking_lot::Mutex::new(Stats::default()));
        let (stop, mut stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared = stats.clone();
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let f = Forwarder::start(config).await.unwrap();
                ready_tx.send(()).unwrap();
                loop {
                    *shared.lock() = f.stats();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        _ = &mut stop_rx => break,
                    }
                }
                f.shutdown().await
            })
        });
        ready_rx.recv_timeout(PATIENCE).expect("forwarder started");
        Running {
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stats(&self) -> Stats {
        *self.stats.lock()
    }

    fn stop(mut self) -> Stats {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap()
    }
}

#[test]
fn frames_in_the_shared_rings_are_read_whether_written_before_or_while_it_runs() {
    let collector = common::collector();
    let dir = tempfile::tempdir().unwrap();
    let service = common::service("php-rings");
    // Workers' side: rings 0 and 5 (their active-transaction slots).
    let cfg = config(dir.path(), &collector.otlp_grpc);
    let rings = tern_php_wire::Rings::open(&tern_php_wire::ring::path_for(&cfg.active), 8).unwrap();
    let me = std::process::id() as i32;
    let (w0, w5) = (rings.writer(0, me).unwrap(), rings.writer(5, me).unwrap());
    assert!(!w0.draining(), "no forwarder yet: workers use the socket");
    // Written while no forwarder read (one that was killed): read by the next one.
    assert!(w0.push(&frame(&php_request(&service, 1))));
    let fwd = Running::start(cfg);
    wait_for("the forwarder's first round", PATIENCE, || w0.draining());
    for i in 0..10 {
        assert!(w5.push(&frame(&php_request(&service, 100 + i))));
    }
    // A malformed frame in a ring is counted and skipped; later frames still arrive.
    assert!(w0.push(&frame(b"\xff\xff not protobuf")));
    wait_for("the bad frame to be read", PATIENCE, || {
        fwd.stats().bad_frames == 1
    });
    assert!(w0.push(&frame(&php_request(&service, 2))));
    collector.eventually(
        &format!("/api/v1/transactions?service={service}&limit=100"),
        |b| b["total"].as_u64() == Some(12),
    );
    wait_for("the exported counter", PATIENCE, || {
        fwd.stats().exported_spans == 24
    });
    let s = fwd.stop();
    assert_eq!((s.frames, s.bad_frames, s.connections), (12, 1, 0));
    assert!(
        !w0.draining(),
        "a stopped forwarder sends workers back to the socket"
    );
}

#[test]
fn frames_from_many_connections_become_transactions_with_their_sql() {
    let collector = common::collector();
    let dir = tempfile::tempdir().unwrap();
    let service = common::service("php-frames");
    let fwd = Running::start(config(dir.path(), &collector.otlp_grpc));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (socket, service) = (dir.path().join("agent.sock"), service.clone());
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(socket).unwrap();
                for i in 0..25 {
                    let bytes = frame(&php_request(&service, w * 100 + i));
                    // Split writes: frames arrive in pieces.
                    let (a, b) = bytes.split_at(3);
                    s.write_all(a).unwrap();
                    s.write_all(b).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let body = collector.eventually(
        &format!("/api/v1/transactions?service={service}&limit=1000"),
        |b| b["total"].as_u64() == Some(100),
    );
    let tx = &body["transactions"][0];
    assert_eq!(tx["endpoint"], "GET /orders");
    assert_eq!(tx["sql_count"], 1);
    let tree = collector.api(&format!(
        "/api/v1/transactions/{}/{}",
        tx["trace_id"].as_str().unwrap(),
        tx["span_id"].as_str().unwrap()
    ));
    let sql = &tree["call_tree"]["children"][0];
    assert_eq!(sql["category"], "sql");
    assert!(
        sql["sql"].as_str().unwrap().contains("FROM orders"),
        "{sql}"
    );
    wait_for("the exported counter", PATIENCE, || {
        fwd.stats().exported_spans == 200
    });
    let s = fwd.stop();
    assert_eq!(
        (s.frames, s.spans, s.bad_frames, s.dropped_spans),
        (100, 200, 0, 0)
    );
    assert!(!dir.path().join("agent.sock").exists(), "socket removed");
}

#[test]
fn a_garbage_or_oversized_frame_closes_only_that_connection_and_is_counted() {
    let collector = common::collector();
    let dir = tempfile::tempdir().unwrap();
    let service = common::service("php-garbage");
    let fwd = Running::start(config(dir.path(), &collector.otlp_grpc));
    let socket = dir.path().join("agent.sock");
    let mut good = UnixStream::connect(&socket).unwrap();
    good.write_all(&frame(&php_request(&service, 1))).unwrap();

    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage
        .write_all(&frame(b"\xff\xff\xff this is not protobuf"))
        .unwrap();
    let mut huge = UnixStream::connect(&socket).unwrap();
    huge.write_all(&(64u32 << 20).to_le_bytes()).unwrap();
    wait_for("two bad frames", PATIENCE, || fwd.stats().bad_frames == 2);
    // The forwarder closed both: reading gives end of file.
    for mut s in [garbage, huge] {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut s, &mut buf).unwrap(), 0);
    }
    // The good connection still works.
    good.write_all(&frame(&php_request(&service, 2))).unwrap();
    collector.eventually(&format!("/api/v1/transactions?service={service}"), |b| {
        b["total"].as_u64() == Some(2)
    });
    let s = fwd.stop();
    assert_eq!(
        (s.frames, s.bad_frames, s.dropped_frames),
        (2, 2, 0),
        "{s:?}"
    );
}

#[test]
fn with_the_collector_down_frames_are_retried_then_delivered_and_overflow_is_counted() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let service = common::service("php-down");
    let frame_len = frame(&php_request(&service, 0)).len();
    let fwd = Running::start(Config {
        // Room for about 50 frames, and 10 frames per request.
        queue_bytes: 50 * frame_len,
        batch_spans: 20,
        ..config(dir.path(), &format!("http://127.0.0.1:{port}"))
    });
    let mut s = UnixStream::connect(dir.path().join("agent.sock")).unwrap();
    for i in 0..200 {
        s.write_all(&frame(&php_request(&service, i))).unwrap();
    }
    wait_for("frames to be read", PATIENCE, || fwd.stats().frames == 200);
    wait_for("a retry", PATIENCE, || fwd.stats().retried_batches >= 1);
    let s = fwd.stats();
    assert!(
        s.dropped_frames >= 100,
        "the bounded queue overflowed: {s:?}"
    );
    assert!(s.queued_bytes <= 50 * frame_len as u64, "{s:?}");

    // The collector comes up on the address the forwarder retries: what was held is
    // delivered, and every frame is either delivered or counted as dropped.
    let collector = common::collector_on(port);
    let delivered = 200 - s.dropped_frames;
    collector.eventually(
        &format!("/api/v1/transactions?service={service}&limit=1000"),
        |b| b["total"].as_u64() == Some(delivered),
    );
    wait_for("the heartbeat to carry the drops", PATIENCE, || {
        let agents = collector.api("/api/v1/agents");
        agents["agents"].as_array().unwrap().iter().any(|a| {
            a["service"] == service.as_str()
                && a["language"] == "php"
                && a["dropped_spans"].as_u64() == Some(2 * s.dropped_frames)
        })
    });
    let end = fwd.stop();
    assert_eq!(end.exported_spans + end.dropped_spans, 400, "{end:?}");
}

#[test]
fn running_php_requests_show_in_the_active_view_until_they_end() {
    let collector = common::collector();
    let dir = tempfile::tempdir().unwrap();
    let service = common::service("php-active");
    let fwd = Running::start(config(dir.path(), &collector.otlp_grpc));
    // A worker publishes its transaction the way the extension does.
    let map = tern_php_wire::ActiveMap::open(&dir.path().join("active"), 8).unwrap();
    let slot = map.claim(std::process::id() as i32).unwrap();
    slot.begin(&tern_php_wire::active::TxInfo {
        start_ns: common::now_ns(),
        trace_id: [7; 16],
        span_id: [9; 8],
        service: service.as_bytes(),
        method: b"GET",
        client: b"127.0.0.1",
        uri: b"/slow?s=3",
    });
    slot.set_activity(
        tern_php_wire::ActivityKind::Sql,
        common::now_ns(),
        b"SELECT SLEEP(3)",
    );
    let path = format!("/api/v1/active?service={service}");
    let active = collector.eventually(&path, |b| {
        b["active"].as_array().is_some_and(|a| a.len() == 1)
    });
    let t = &active["active"][0];
    assert_eq!(t["endpoint"], "/slow?s=3");
    assert_eq!(t["current_kind"], "sql");
    assert_eq!(t["current_detail"], "SELECT SLEEP(3)");
    assert_eq!(t["trace_id"], "07".repeat(16));
    slot.end();
    collector.eventually(&path, |b| {
        b["active"].as_array().is_some_and(|a| a.is_empty())
    });
    fwd.stop();
}

#[test]
fn a_second_forwarder_on_the_same_socket_is_refused_and_a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9");
    let first = Running::start(cfg.clone());
    let err = runtime()
        .block_on(Forwarder::start(cfg.clone()))
        .err()
        .expect("second forwarder refused");
    assert!(err.to_string().contains("another forwarder"), "{err}");
    first.stop();
    // A socket file nobody listens on (a forwarder that was killed).
    let stale = std::os::unix::net::UnixListener::bind(&cfg.socket).unwrap();
    drop(stale);
    assert!(cfg.socket.exists());
    Running::start(cfg.clone()).stop();
    // Not a socket: left alone.
    std::fs::write(&cfg.socket, "data").unwrap();
    let err = runtime().block_on(Forwarder::start(cfg)).err().unwrap();
    assert!(err.to_string().contains("not a socket"), "{err}");
}
