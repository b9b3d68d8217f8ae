//! Test harness: starts the real `tern-collector` binary of this workspace on free
//! loopback ports, polls its query API, and cleans up.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The collector binary next to this test binary (`target/debug/tern-collector`).
fn collector_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join("tern-collector");
        if candidate.is_file() {
            return candidate;
        }
        let candidate = dir.join("debug").join("tern-collector");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "tern-collector binary not found near {}: run `cargo build --workspace --bins` first",
        exe.display()
    );
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` until it is true (up to a minute, then fails naming `what`).
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running collector process with a fresh data directory.
pub struct Collector {
    pub api: String,
    pub otlp_grpc: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Collector {
    /// Starts a collector; its OTLP gRPC port is `grpc_port` (0: any free port).
    pub fn start_on(grpc_port: u16) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let mut child = Command::new(collector_bin())
            .arg("--ready-file")
            .arg(&ready)
            .env("TERN_DATA_DIR", dir.path().join("data"))
            .env("TERN_OTLP_GRPC_LISTEN", format!("127.0.0.1:{grpc_port}"))
            .env("TERN_OTLP_HTTP_LISTEN", "127.0.0.1:0")
            .env("TERN_API_LISTEN", "127.0.0.1:0")
            .env("TERN_WRITER_FLUSH_INTERVAL_MS", "100")
            .env(
                "TERN_LOG",
                std::env::var("TERN_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning tern-collector");
        let start = Instant::now();
        while !ready.exists()
            || std::fs::read_to_string(&ready)
                .unwrap_or_default()
                .is_empty()
        {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tern-collector exited during start-up: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "collector start-up timed out"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let info: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
        let field = |k: &str| info[k].as_str().unwrap().to_string();
        let c = Collector {
            api: format!("http://{}", field("api")),
            otlp_grpc: format!("http://{}", field("otlp_grpc")),
            child,
            _dir: dir,
        };
        c.eventually("/api/v1/self", |m| {
            m["tern_store_schema_version"].as_u64() >= Some(1)
        });
        c
    }

    pub fn start() -> Collector {
        Collector::start_on(0)
    }

    /// GETs an API path: status and JSON body.
    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        match reqwest::blocking::get(format!("{}{}", self.api, path_and_query)) {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// GETs an API path, expecting 200.
    pub fn api_json(&self, path_and_query: &str) -> Value {
        let (status, body) = self.get(path_and_query);
        assert_eq!(
            status, 200,
            "GET {path_and_query} answered {status}: {body}"
        );
        body
    }

    /// Polls `path` until `check` accepts the answer.
    pub fn eventually(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.get(path);
            if status == 200 && check(&body) {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "GET {path} never satisfied the check; last answer {status}: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A unique service name per test, so tests sharing nothing never see each other.
pub fn service(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}
