//! The PHP agent end to end: real nginx → real php-fpm with `tern.so` → the `tern-agent`
//! forwarder → the real collector, with a real MariaDB and a local HTTP server as the
//! targets of the test app's SQL and outgoing calls. Everything is checked through the
//! collector's query API. Build first: `cargo build --workspace --bins` and
//! `cargo build -p tern-php` (for `target/debug/libtern.so`).

use std::path::PathBuf;

use serde_json::Value;
use tern_testkit::php::{
    extension_path, AppEnv, Forwarder, FpmOptions, HttpTarget, MariaDb, PhpStack,
};
use tern_testkit::{wait_for, Collector, StoreMode};

const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

fn app_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app")
}

/// The whole stack for one test. Fields drop in reverse order of need.
struct Stack {
    php: PhpStack,
    forwarder: Forwarder,
    target: HttpTarget,
    _db: MariaDb,
    collector: Collector,
    service: String,
    _tmp: tempfile::TempDir,
}

impl Stack {
    fn start(test: &str) -> Stack {
        Stack::start_with(test, Collector::start(StoreMode::Embedded, &[]), 2)
    }

    fn start_with(test: &str, collector: Collector, workers: usize) -> Stack {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let service = format!("{test}-{}", std::process::id());
        let db = MariaDb::start(dir);
        let target = HttpTarget::start();
        let forwarder = Forwarder::start(dir, &collector.otlp_grpc);
        let env = AppEnv {
            vars: vec![
                ("APP_MYSQL_SOCKET".into(), db.socket.display().to_string()),
                ("APP_TARGET_URL".into(), target.url()),
                (
                    "APP_SQLITE".into(),
                    dir.join("app.sqlite").display().to_string(),
                ),
            ],
        };
        let options = FpmOptions {
            extension: Some(extension_path()),
            ini: vec![
                ("tern.service_name".into(), service.clone()),
                ("tern.socket".into(), forwarder.socket.display().to_string()),
                (
                    "tern.active_path".into(),
                    forwarder.active.display().to_string(),
                ),
            ],
            workers,
            ..FpmOptions::default()
        };
        let php = PhpStack::start(dir, &app_dir(), &options, &env);
        Stack {
            php,
            forwarder,
            target,
            _db: db,
            collector,
            service,
            _tmp: tmp,
        }
    }

    fn get_ok(&self, path: &str) -> String {
        let (status, body) = self.php.get(path);
        assert_eq!(status, 200, "GET {path}: {body}\n{}", self.php.fpm_log());
        body
    }

    /// Waits for the transaction of `path` (its endpoint names the path) and returns it
    /// with its call tree.
    fn transaction(&self, path: &str) -> (Value, Value) {
        let list = self.collector.eventually(
            &format!("/api/v1/transactions?service={}&limit=1000", self.service),
            |b| find(b, path).is_some(),
        );
        let tx = find(&list, path).unwrap();
        let tree = self.collector.api(&format!(
            "/api/v1/transactions/{}/{}",
            tx["trace_id"].as_str().unwrap(),
            tx["span_id"].as_str().unwrap()
        ));
        (tx, tree)
    }
}

fn find(list: &Value, path: &str) -> Option<Value> {
    list["transactions"]
        .as_array()?
        .iter()
        .find(|t| t["endpoint"].as_str().is_some_and(|e| e.ends_with(path)))
        .cloned()
}

/// Every node of a call tree, depth first.
fn nodes(tree: &Value) -> Vec<Value> {
    let mut out = vec![tree.clone()];
    for c in tree["children"].as_array().into_iter().flatten() {
        out.extend(nodes(c));
    }
    out
}

fn leaves(tree: &Value, category: &str, field: &str) -> Vec<String> {
    nodes(&tree["call_tree"])
        .iter()
        .filter(|n| n["category"] == category)
        .map(|n| n[field].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn requests_through_nginx_and_php_fpm_become_transactions_with_their_sql_and_calls() {
    let s = Stack::start("php-calls");
    assert_eq!(s.get_ok("/pdo-sqlite"), "sqlite rows=1");
    assert_eq!(s.get_ok("/pdo-mysql"), "mysql rows=1");
    assert_eq!(s.get_ok("/mysqli"), "mysqli 1 ada");
    assert_eq!(s.get_ok("/curl"), "curl hello");
    assert_eq!(s.get_ok("/curl-multi"), "multi hello,hello");
    assert_eq!(s.get_ok("/stream"), "stream hello");

    let (tx, tree) = s.transaction("/pdo-sqlite");
    assert_eq!(tx["http_method"], "GET");
    assert_eq!(tx["http_status"], 200);
    assert!(!tx["error"].as_bool().unwrap_or(true), "{tx}");
    let sql = leaves(&tree, "sql", "sql");
    assert!(
        sql.iter().any(|q| q.contains("INSERT INTO items")),
        "{sql:?}"
    );
    assert!(
        sql.iter().any(|q| q.contains("SELECT id, name FROM items")),
        "{sql:?}"
    );
    assert!(tx["sql_count"].as_u64().unwrap() >= 3, "{tx}");

    let (_, tree) = s.transaction("/pdo-mysql");
    let sql = leaves(&tree, "sql", "sql");
    assert!(
        sql.iter()
            .any(|q| q.contains("SELECT id, total FROM orders")),
        "{sql:?}"
    );

    let (_, tree) = s.transaction("/mysqli");
    let sql = leaves(&tree, "sql", "sql");
    assert!(
        sql.iter()
            .any(|q| q.contains("SELECT COUNT(*) AS n FROM users")),
        "procedural: {sql:?}"
    );
    assert!(
        sql.iter().any(|q| q.contains("SELECT name FROM users")),
        "object style: {sql:?}"
    );

    let target = s.target.url();
    let (tx, tree) = s.transaction("/curl");
    assert_eq!(
        leaves(&tree, "external", "url"),
        vec![format!("{target}/one")]
    );
    assert_eq!(tx["external_count"], 1);
    let (_, tree) = s.transaction("/curl-multi");
    let mut urls = leaves(&tree, "external", "url");
    urls.sort();
    assert_eq!(
        urls,
        vec![format!("{target}/multi-a"), format!("{target}/multi-b")]
    );
    let (_, tree) = s.transaction("/stream");
    assert_eq!(
        leaves(&tree, "external", "url"),
        vec![format!("{target}/stream")]
    );

    // Outgoing curl requests carry the transaction's trace.
    let seen = s.target.seen();
    let one = seen.iter().find(|r| r.path == "/one").unwrap();
    let (tx, _) = s.transaction("/curl");
    let tp = one.header("traceparent").expect("traceparent sent");
    assert!(
        tp.contains(tx["trace_id"].as_str().unwrap()),
        "{tp} vs {tx}"
    );
}

#[test]
fn exceptions_and_fatal_errors_are_failed_transactions_and_exit_is_not() {
    let s = Stack::start("php-errors");
    assert_eq!(s.php.get("/throw").0, 500);
    assert_eq!(s.php.get("/fatal").0, 500);
    assert_eq!(s.get_ok("/exit"), "bye");
    assert_eq!(s.get_ok("/hello"), "ok", "the workers survived");

    let (tx, _) = s.transaction("/throw");
    assert_eq!(tx["error"], true, "{tx}");
    assert_eq!(tx["error_type"], "RuntimeException", "{tx}");
    assert!(
        tx["error_message"].as_str().unwrap().contains("not found"),
        "{tx}"
    );
    let (tx, _) = s.transaction("/fatal");
    assert_eq!(tx["error"], true, "{tx}");
    assert!(
        tx["error_message"].as_str().unwrap().contains("memory"),
        "{tx}"
    );
    let (tx, _) = s.transaction("/exit");
    assert_eq!(tx["error"], false, "{tx}");

    let errors = s
        .collector
        .eventually(&format!("/api/v1/errors?service={}", s.service), |b| {
            b["errors"].as_array().is_some_and(|a| a.len() >= 2)
        });
    let types: Vec<&str> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["error_type"].as_str())
        .collect();
    assert!(types.contains(&"RuntimeException"), "{errors}");
}

#[test]
fn a_curl_call_to_another_instrumented_endpoint_joins_one_trace() {
    let s = Stack::start("php-chain");
    let body = s.get_ok("/chain");
    let (up, _) = s.transaction("/chain");
    let (down, _) = s.transaction("/downstream");
    let trace = up["trace_id"].as_str().unwrap();
    assert!(body.contains(trace), "downstream saw {body}");
    assert_eq!(down["trace_id"], trace, "one trace");
    let whole = s.collector.api(&format!("/api/v1/traces/{trace}"));
    assert!(whole["span_count"].as_u64().unwrap() >= 3, "{whole}");
}

#[test]
fn a_slow_request_shows_in_the_active_view_while_it_runs_and_disappears_after() {
    let s = Stack::start("php-active");
    let url = format!("{}/slow?s=4", s.php.url);
    let slow = std::thread::spawn(move || reqwest::blocking::get(url).map(|r| r.status().as_u16()));
    let path = format!("/api/v1/active?service={}", s.service);
    let active = s.collector.eventually(&path, |b| {
        b["active"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t["current_kind"] == "sql"))
    });
    let t = &active["active"][0];
    assert!(t["endpoint"].as_str().unwrap().contains("/slow"), "{t}");
    assert!(
        t["current_detail"].as_str().unwrap().contains("SLEEP"),
        "{t}"
    );
    assert!(t["worker"].as_str().unwrap().starts_with("pid "), "{t}");
    assert_eq!(slow.join().unwrap().unwrap(), 200);
    s.collector.eventually(&path, |b| {
        b["active"].as_array().is_some_and(|a| a.is_empty())
    });
    s.transaction("/slow");
}

#[test]
fn with_the_forwarder_down_php_still_answers_counts_the_drops_and_recovers_when_it_returns() {
    // One worker, so its counters are the pool's.
    let mut s = Stack::start_with(
        "php-fwd-down",
        Collector::start(StoreMode::Embedded, &[]),
        1,
    );
    s.get_ok("/hello");
    let stats = |s: &Stack| -> Value { serde_json::from_str(&s.get_ok("/tern-stats")).unwrap() };
    let count = |v: &Value, key: &str| v[key].as_i64().unwrap();
    // The forwarder gives way to the workers (nice 10; field 19 of /proc/<pid>/stat).
    let pid = s.forwarder.pid().unwrap();
    assert_eq!(tern_testkit::bench::stat_fields(pid).get(19 - 3), Some(&10));
    let before = stats(&s);
    assert!(
        count(&before, "frames_sent_shared") > 0,
        "with the forwarder reading, frames go through the shared ring: {before}"
    );
    s.forwarder.kill();
    // For up to a second after the forwarder's last reading round frames still go into
    // the ring (a forwarder that comes back reads them); then through the socket, which
    // nobody answers: dropped and counted.
    wait_for("the worker to see the forwarder gone", PATIENCE, || {
        s.get_ok("/hello");
        count(&stats(&s), "frames_dropped") > 0
    });
    let dropped = count(&stats(&s), "frames_dropped");
    for _ in 0..50 {
        assert!(s.get_ok("/pdo-sqlite").starts_with("sqlite rows="));
    }
    let after = stats(&s);
    assert!(count(&after, "frames_dropped") - dropped >= 50, "{after}");
    s.forwarder.restart();
    // The worker reconnects: new requests are delivered again.
    wait_for(
        "a transaction after the forwarder came back",
        PATIENCE,
        || {
            s.get_ok("/exit");
            find(
                &s.collector
                    .get(&format!("/api/v1/transactions?service={}", s.service))
                    .1,
                "/exit",
            )
            .is_some()
        },
    );
}

#[test]
fn with_the_collector_down_the_forwarder_holds_requests_and_delivers_them_when_it_returns() {
    let port = tern_testkit::free_port();
    let listen = format!("127.0.0.1:{port}");
    let collector = Collector::start(StoreMode::Embedded, &[("TERN_OTLP_GRPC_LISTEN", &listen)]);
    let mut s = Stack::start_with("php-coll-down", collector, 2);
    s.collector.kill9();
    for _ in 0..20 {
        s.get_ok("/pdo-sqlite");
    }
    s.collector.restart();
    s.collector.eventually(
        &format!("/api/v1/transactions?service={}&limit=1000", s.service),
        |b| {
            b["transactions"].as_array().is_some_and(|a| {
                a.iter()
                    .filter(|t| t["endpoint"] == "GET /pdo-sqlite")
                    .count()
                    == 20
            })
        },
    );
}

#[test]
fn php_fpm_worker_memory_grows_no_more_with_the_extension_than_without_it() {
    let s = Stack::start_with("php-rss", Collector::start(StoreMode::Embedded, &[]), 2);
    // The same app without the extension, beside it, for comparison.
    let plain_dir = s._tmp.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let env = AppEnv {
        vars: vec![
            ("APP_TARGET_URL".into(), s.target.url()),
            (
                "APP_SQLITE".into(),
                s._tmp.path().join("app.sqlite").display().to_string(),
            ),
        ],
    };
    let options = FpmOptions {
        workers: 2,
        ..FpmOptions::default()
    };
    let plain = PhpStack::start(&plain_dir, &app_dir(), &options, &env);
    let requests: usize = std::env::var("TERN_PHP_RSS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let client = reqwest::blocking::Client::new();
    let run = |stack: &PhpStack, n: usize| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (client, url) = (client.clone(), format!("{}/read", stack.url));
                std::thread::spawn(move || {
                    for _ in 0..n / 4 {
                        let r = client.get(&url).send().unwrap();
                        assert_eq!(r.status().as_u16(), 200);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    };
    let rss = |stack: &PhpStack| -> (Vec<u32>, u64) {
        let w = stack.worker_rss_kib();
        (w.iter().map(|w| w.0).collect(), w.iter().map(|w| w.1).sum())
    };
    let mut growth = Vec::new();
    for stack in [&s.php, &plain] {
        s.get_ok("/pdo-sqlite"); // the table exists
        run(stack, 2_000);
        let (pids, warm) = rss(stack);
        run(stack, requests);
        let (pids_end, end) = rss(stack);
        assert_eq!(pids, pids_end, "no worker was replaced");
        eprintln!("php-fpm workers' RSS: {warm} KiB after warm-up, {end} KiB after {requests} more requests");
        growth.push(end as i64 - warm as i64);
    }
    let (with, without) = (growth[0], growth[1]);
    // 2 workers: a leak of 100 bytes per request would add about 2 MiB.
    assert!(
        with <= without + 1024,
        "with tern.so the workers grew {with} KiB, without it {without} KiB"
    );
    s.collector.eventually(
        &format!("/api/v1/transactions?service={}&limit=1", s.service),
        |b| b["total"].as_u64() > Some(requests as u64),
    );
}
