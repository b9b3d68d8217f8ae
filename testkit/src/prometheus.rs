//! A real Prometheus server (Debian's `prometheus`, installed by scripts/setup.sh) loaded
//! with given samples: they are written as OpenMetrics, turned into TSDB blocks by
//! `promtool tsdb create-blocks-from openmetrics`, and served from a temporary
//! directory on a free loopback port. Used as the reference for Tern's PromQL.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{free_port, wait_for};

/// One series for [`Prometheus::with_samples`]: labels (with `__name__`) and
/// `(milliseconds, value)` samples, oldest first.
pub type RawSeries = (BTreeMap<String, String>, Vec<(i64, f64)>);

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The series as an OpenMetrics exposition (families kept together, `# EOF` last).
pub fn openmetrics(series: &[RawSeries]) -> String {
    let mut sorted: Vec<&RawSeries> = series.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (labels, samples) in sorted {
        let name = &labels["__name__"];
        let rest: Vec<String> = labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        for (t, v) in samples {
            let value = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                if *v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
            } else {
                format!("{v}")
            };
            let _ = writeln!(
                out,
                "{name}{{{}}} {value} {}",
                rest.join(","),
                *t as f64 / 1000.0
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

impl Prometheus {
    /// Starts Prometheus over exactly these samples.
    pub fn with_samples(series: &[RawSeries]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("samples.om");
        std::fs::write(&input, openmetrics(series)).unwrap();
        let data = dir.path().join("data");
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .output()
            .expect("running promtool (scripts/setup.sh installs prometheus)");
        assert!(
            out.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global: {}\n").unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning prometheus");
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait_for("prometheus to be ready", Duration::from_secs(60), || {
            reqwest::blocking::get(&ready).is_ok_and(|r| r.status().is_success())
        });
        Prometheus {
            url,
            child,
            _dir: dir,
        }
    }

    /// GETs an API path: status and JSON body.
    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        let r = reqwest::blocking::get(format!("{}{}", self.url, path_and_query))
            .expect("prometheus answers");
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
