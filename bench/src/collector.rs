//! Starts a release collector on free ports with a fresh data directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

pub struct Collector {
    child: Child,
    pub api: String,
    pub otlp_grpc: String,
    pub otlp_http: String,
    /// ClickHouse HTTP URL of the embedded store.
    pub store: String,
    _dir: tempfile::TempDir,
}

impl Collector {
    pub fn start(bin_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Collector> {
        let dir = tempfile::tempdir()?;
        let ready = dir.path().join("ready.json");
        let mut cmd = Command::new(bin_dir.join("tern-collector"));
        cmd.arg("--ready-file")
            .arg(&ready)
            .env("TERN_DATA_DIR", dir.path().join("data"))
            .env("TERN_OTLP_GRPC_LISTEN", "127.0.0.1:0")
            .env("TERN_OTLP_HTTP_LISTEN", "127.0.0.1:0")
            .env("TERN_API_LISTEN", "127.0.0.1:0")
            .env("TERN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .context("starting tern-collector (build with cargo build --release)")?;
        let start = Instant::now();
        while !ready.exists() {
            if let Some(status) = child.try_wait()? {
                bail!("tern-collector exited: {status}");
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("tern-collector did not start in 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let info: Value = serde_json::from_str(&std::fs::read_to_string(&ready)?)?;
        let f = |k: &str| info[k].as_str().unwrap_or_default().to_string();
        let c = Collector {
            child,
            api: format!("http://{}", f("api")),
            otlp_grpc: format!("http://{}", f("otlp_grpc")),
            otlp_http: format!("http://{}", f("otlp_http")),
            store: f("store"),
            _dir: dir,
        };
        let start = Instant::now();
        while c.metrics()?["tern_store_schema_version"].as_u64() < Some(1) {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("schema not applied in 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(c)
    }

    pub fn metrics(&self) -> anyhow::Result<Value> {
        Ok(reqwest::blocking::get(format!("{}/api/v1/self", self.api))?.json()?)
    }

    pub fn metric(&self, name: &str) -> anyhow::Result<u64> {
        Ok(self.metrics()?[name].as_u64().unwrap_or(0))
    }

    /// Runs SQL on the store, returning the text answer (TSV).
    pub fn sql(&self, sql: &str) -> anyhow::Result<String> {
        let r = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(1800))
            .build()?
            .post(&self.store)
            .body(sql.to_string())
            .send()?;
        let status = r.status();
        let text = r.text()?;
        if !status.is_success() {
            bail!("store answered {status}: {text}");
        }
        Ok(text)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
