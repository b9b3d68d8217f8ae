//! Test harness: starts the real `tern-collector` binary (and, for server mode, a real
//! ClickHouse engine behind `tern-chdb`) on free loopback ports, and cleans up. Shared by
//! the integration tests of every crate in the workspace.

pub mod bench;
pub mod browser;
pub mod prometheus;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod php;

/// Which store the collector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// The engine inside the collector process (the default deployment).
    Embedded,
    /// A separate ClickHouse-HTTP server process, reached by URL.
    Server,
}

/// The directory of the workspace's binaries: the first ancestor of the running test
/// binary that holds `tern-collector` (`target/debug/deps/x` → `target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("tern-collector").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            panic!(
                "tern-collector not found near {}: run `cargo build --workspace --bins` first",
                exe.display()
            )
        })
}

/// A free loopback port, bound then released: another process may take it before the
/// caller binds it, so use it only where the port must be known before its server
/// starts (and prefer port 0 everywhere else).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding 127.0.0.1:0")
        .local_addr()
        .expect("bound address")
        .port()
}

/// Polls `ready` until it is true, failing after `timeout` with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A standalone ClickHouse engine (`tern-chdb`) serving a data directory over HTTP.
pub struct ChdbServer {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl ChdbServer {
    pub fn start(dir: &Path) -> ChdbServer {
        let mut s = ChdbServer {
            dir: dir.to_path_buf(),
            port: 0,
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same directory. The first start binds a free port
    /// itself (port 0, read back from its output: no window for another test to take
    /// it); restarts bind that same port again.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(bin_dir().join("tern-chdb"))
            .arg("--path")
            .arg(&self.dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning tern-chdb (build it first: cargo build --workspace --bins)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("piped stdout")),
            &mut line,
        )
        .expect("reading tern-chdb's url");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("tern-chdb printed {line:?}, not its url"));
        assert!(
            self.port == 0 || self.port == port,
            "restarted on another port"
        );
        self.port = port;
        self.child = Some(child);
        let url = format!("{}/ping", self.url());
        wait_for("tern-chdb to answer /ping", Duration::from_secs(60), || {
            reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success())
        });
    }

    /// Kills the server (SIGKILL): the store is down until [`ChdbServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChdbServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running collector process and its addresses.
pub struct Collector {
    pub data_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub api: String,
    pub otlp_http: String,
    pub otlp_grpc: String,
    pub store: String,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    pub chdb: Option<ChdbServer>,
}

impl Collector {
    /// Starts a collector with a fresh data directory.
    pub fn start(mode: StoreMode, env: &[(&str, &str)]) -> Collector {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let chdb = match mode {
            StoreMode::Embedded => None,
            StoreMode::Server => {
                let server = ChdbServer::start(&tmp.path().join("server"));
                env.push(("TERN_CLICKHOUSE_URL".into(), server.url()));
                Some(server)
            }
        };
        let mut c = Collector {
            data_dir,
            env,
            api: String::new(),
            otlp_http: String::new(),
            otlp_grpc: String::new(),
            store: String::new(),
            child: None,
            _tmp: Some(tmp),
            chdb,
        };
        c.launch();
        c
    }

    fn launch(&mut self) {
        let ready = self.data_dir.with_extension("ready.json");
        let _ = std::fs::remove_file(&ready);
        let mut cmd = Command::new(bin_dir().join("tern-collector"));
        cmd.arg("--ready-file")
            .arg(&ready)
            .env("TERN_DATA_DIR", &self.data_dir)
            .env("TERN_OTLP_GRPC_LISTEN", "127.0.0.1:0")
            .env("TERN_OTLP_HTTP_LISTEN", "127.0.0.1:0")
            .env("TERN_API_LISTEN", "127.0.0.1:0")
            .env("TERN_WRITER_FLUSH_INTERVAL_MS", "100")
            .env(
                "TERN_LOG",
                std::env::var("TERN_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning tern-collector");
        let start = Instant::now();
        while !ready.exists() {
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
        self.api = format!("http://{}", field("api"));
        self.otlp_http = format!("http://{}", field("otlp_http"));
        self.otlp_grpc = format!("http://{}", field("otlp_grpc"));
        self.store = field("store");
        self.child = Some(child);
        // Ready to query once the schema is in place.
        self.eventually("/api/v1/self", |m| {
            m["tern_store_schema_version"].as_u64() >= Some(1)
        });
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the ordered shutdown.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (at most `max`) until the collector has used at most 10 ms of CPU over half
    /// a second: done storing what it was sent, so it does not compete with what is
    /// measured next.
    pub fn wait_idle(&self, max: Duration) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let start = Instant::now();
        let mut before = crate::php::cpu_us(pid);
        while start.elapsed() < max {
            std::thread::sleep(Duration::from_millis(500));
            let now = crate::php::cpu_us(pid);
            if now - before <= 10_000 {
                return;
            }
            before = now;
        }
    }

    /// Starts the collector again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        self.launch();
    }

    /// GETs an API path: status and JSON body (status 0 when the collector does not answer).
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
    pub fn api(&self, path_and_query: &str) -> Value {
        let (status, body) = self.get(path_and_query);
        assert_eq!(
            status, 200,
            "GET {path_and_query} answered {status}: {body}"
        );
        body
    }

    /// Polls `path` until `check` accepts the answer (data is queryable).
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

    /// The collector's self-metrics.
    pub fn metrics(&self) -> Value {
        self.api("/api/v1/self")
    }

    /// POSTs a body to OTLP/HTTP `/v1/traces` with the given headers.
    pub fn post_traces(
        &self,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::blocking::Response {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .post(format!("{}/v1/traces", self.otlp_http))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().unwrap()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Unix time in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    (now_ns() / 1_000_000) as i64
}
