//! Configuration: a builder, with `OTEL_*` / `TERN_AGENT_*` environment variables read
//! in one place ([`ENV_VARS`]) and checked, so a bad value is a clear error at start-up
//! instead of a silent default.

use std::time::Duration;

/// Every environment variable the agent reads, with what it sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("OTEL_SERVICE_NAME", "service name (default: the executable's name)"),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "collector OTLP gRPC URL (default http://127.0.0.1:4317)",
    ),
    (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "same, for traces only; wins over OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    (
        "OTEL_TRACES_SAMPLER",
        "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
    ),
    (
        "OTEL_TRACES_SAMPLER_ARG",
        "ratio 0.0..=1.0 of transactions whose call tree is exported",
    ),
    ("TERN_AGENT_INSTANCE", "instance name (default host:pid)"),
    ("TERN_AGENT_QUEUE_SIZE", "finished spans held for export (default 16384)"),
    ("TERN_AGENT_BATCH_SIZE", "spans per export request (default 2048)"),
    (
        "TERN_AGENT_EXPORT_INTERVAL_MS",
        "how often the exporter drains the queue (default 200)",
    ),
    (
        "TERN_AGENT_SHUTDOWN_TIMEOUT_MS",
        "how long the guard's drop may flush (default 5000)",
    ),
];

/// A configuration value that cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A value is out of range or does not parse.
    #[error("{name}: invalid value {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Where finished spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// OTLP over gRPC to this URL, plus `tern.v1.LiveService` (active transactions,
    /// heartbeats) on the same connection.
    Grpc(String),
    /// Spans are converted to OTLP and thrown away: for benchmarks and tests that
    /// measure the agent alone.
    Discard,
}

/// The agent's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub service_name: String,
    pub instance: String,
    pub transport: Transport,
    /// Share of transactions whose full call tree is exported (entry spans always are).
    pub sample_ratio: f64,
    /// Follow the caller's sampled flag from `traceparent` when there is one.
    pub parent_based: bool,
    pub queue_size: usize,
    pub batch_size: usize,
    pub export_interval: Duration,
    pub live_interval: Duration,
    pub shutdown_timeout: Duration,
}

/// Builds the agent: `tern_agent::builder().service_name("shop").build()`.
///
/// Starts from defaults overridden by the environment ([`ENV_VARS`]); each setter
/// overrides both.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    pub(crate) config: Config,
    pub(crate) error: Option<ConfigError>,
}

fn invalid(name: &'static str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason,
    }
}

fn parse_ratio(name: &'static str, v: &str) -> Result<f64, ConfigError> {
    match v.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(invalid(name, v, "expected a number from 0.0 to 1.0")),
    }
}

fn parse_count(name: &'static str, v: &str, max: usize) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(invalid(name, v, "expected a whole number within range")),
    }
}

fn parse_endpoint(name: &'static str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() <= "http://".len() {
        return Err(invalid(name, v, "expected an http:// or https:// URL"));
    }
    Ok(v.trim_end_matches('/').to_string())
}

impl Default for Config {
    fn default() -> Self {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "unknown_service".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Config {
            service_name: exe,
            instance: format!("{host}:{}", std::process::id()),
            transport: Transport::Grpc("http://127.0.0.1:4317".into()),
            sample_ratio: 1.0,
            parent_based: true,
            queue_size: 16_384,
            batch_size: 2_048,
            export_interval: Duration::from_millis(200),
            live_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl Builder {
    /// Defaults, then the process environment.
    pub fn from_env() -> Builder {
        Builder::default().env_from(|k| std::env::var(k).ok())
    }

    /// Defaults overridden by variables from `get` (the environment, or a map in tests).
    pub fn env_from(mut self, get: impl Fn(&str) -> Option<String>) -> Builder {
        if let Err(e) = self.apply_env(&get) {
            self.error.get_or_insert(e);
        }
        self
    }

    fn apply_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = &mut self.config;
        if let Some(v) = get("OTEL_SERVICE_NAME").filter(|v| !v.trim().is_empty()) {
            c.service_name = v.trim().to_string();
        }
        if let Some(v) = get("TERN_AGENT_INSTANCE").filter(|v| !v.trim().is_empty()) {
            c.instance = v.trim().to_string();
        }
        let endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v))
            .or_else(|| {
                get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|v| ("OTEL_EXPORTER_OTLP_ENDPOINT", v))
            });
        if let Some((name, v)) = endpoint {
            c.transport = Transport::Grpc(parse_endpoint(name, &v)?);
        }
        let arg = get("OTEL_TRACES_SAMPLER_ARG");
        let ratio = |default: f64| match &arg {
            Some(v) => parse_ratio("OTEL_TRACES_SAMPLER_ARG", v),
            None => Ok(default),
        };
        match get("OTEL_TRACES_SAMPLER").as_deref().map(str::trim) {
            None => {
                if arg.is_some() {
                    c.sample_ratio = ratio(1.0)?;
                }
            }
            Some("always_on") => (c.sample_ratio, c.parent_based) = (1.0, false),
            Some("always_off") => (c.sample_ratio, c.parent_based) = (0.0, false),
            Some("traceidratio") => (c.sample_ratio, c.parent_based) = (ratio(1.0)?, false),
            Some("parentbased_always_on") => (c.sample_ratio, c.parent_based) = (1.0, true),
            Some("parentbased_always_off") => (c.sample_ratio, c.parent_based) = (0.0, true),
            Some("parentbased_traceidratio") => {
                (c.sample_ratio, c.parent_based) = (ratio(1.0)?, true)
            }
            Some(other) => {
                return Err(invalid(
                    "OTEL_TRACES_SAMPLER",
                    other,
                    "expected always_on, always_off, traceidratio or parentbased_*",
                ))
            }
        }
        if let Some(v) = get("TERN_AGENT_QUEUE_SIZE") {
            c.queue_size = parse_count("TERN_AGENT_QUEUE_SIZE", &v, 1 << 24)?;
        }
        if let Some(v) = get("TERN_AGENT_BATCH_SIZE") {
            c.batch_size = parse_count("TERN_AGENT_BATCH_SIZE", &v, 1 << 20)?;
        }
        if let Some(v) = get("TERN_AGENT_EXPORT_INTERVAL_MS") {
            let ms = parse_count("TERN_AGENT_EXPORT_INTERVAL_MS", &v, 3_600_000)?;
            c.export_interval = Duration::from_millis(ms as u64);
        }
        if let Some(v) = get("TERN_AGENT_SHUTDOWN_TIMEOUT_MS") {
            let ms = parse_count("TERN_AGENT_SHUTDOWN_TIMEOUT_MS", &v, 3_600_000)?;
            c.shutdown_timeout = Duration::from_millis(ms as u64);
        }
        Ok(())
    }

    fn check(&mut self, r: Result<(), ConfigError>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// The service's name (`service.name`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.config.service_name = name.into();
        self
    }

    /// This process's instance name (`service.instance.id`), default `host:pid`.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.config.instance = name.into();
        self
    }

    /// The collector's OTLP gRPC URL, e.g. `http://127.0.0.1:4317`.
    pub fn endpoint(mut self, url: impl AsRef<str>) -> Self {
        let r = parse_endpoint("endpoint", url.as_ref()).map(|u| {
            self.config.transport = Transport::Grpc(u);
        });
        self.check(r);
        self
    }

    /// Where spans go; [`Transport::Discard`] for benchmarks.
    pub fn transport(mut self, t: Transport) -> Self {
        self.config.transport = t;
        self
    }

    /// Share (0.0..=1.0) of transactions whose call tree is exported. Every
    /// transaction's entry span is exported regardless, so counts stay exact.
    pub fn sample_ratio(mut self, ratio: f64) -> Self {
        let r = parse_ratio("sample_ratio", &ratio.to_string()).map(|r| {
            self.config.sample_ratio = r;
        });
        self.check(r);
        self
    }

    /// Finished spans held for export before new ones are dropped (and counted).
    pub fn queue_size(mut self, n: usize) -> Self {
        let r = parse_count("queue_size", &n.to_string(), 1 << 24).map(|n| {
            self.config.queue_size = n;
        });
        self.check(r);
        self
    }

    /// Most spans per export request.
    pub fn batch_size(mut self, n: usize) -> Self {
        let r = parse_count("batch_size", &n.to_string(), 1 << 20).map(|n| {
            self.config.batch_size = n;
        });
        self.check(r);
        self
    }

    /// How often the exporter drains the queue.
    pub fn export_interval(mut self, d: Duration) -> Self {
        self.config.export_interval = d.max(Duration::from_millis(1));
        self
    }

    /// How often active transactions and heartbeats are reported (default 1 s).
    pub fn live_interval(mut self, d: Duration) -> Self {
        self.config.live_interval = d.max(Duration::from_millis(10));
        self
    }

    /// How long dropping the [`crate::Guard`] may take to flush.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.config.shutdown_timeout = d;
        self
    }

    /// The validated configuration, or the first bad value.
    pub fn config(&self) -> Result<Config, ConfigError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(self.config.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Builder::default().env_from(|k| m.get(k).cloned()).config()
    }

    #[test]
    fn reads_otel_and_tern_variables() {
        let c = env(&[
            ("OTEL_SERVICE_NAME", "shop"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317/"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("TERN_AGENT_QUEUE_SIZE", "100"),
            ("TERN_AGENT_BATCH_SIZE", "10"),
        ])
        .unwrap();
        assert_eq!(c.service_name, "shop");
        assert_eq!(c.transport, Transport::Grpc("http://collector:4317".into()));
        assert_eq!(c.sample_ratio, 0.25);
        assert!(c.parent_based);
        assert_eq!((c.queue_size, c.batch_size), (100, 10));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable() {
        let e = env(&[("OTEL_TRACES_SAMPLER_ARG", "1.5")]).unwrap_err();
        assert!(e.to_string().starts_with("OTEL_TRACES_SAMPLER_ARG"), "{e}");
        let e = env(&[("TERN_AGENT_QUEUE_SIZE", "lots")]).unwrap_err();
        assert!(e.to_string().contains("TERN_AGENT_QUEUE_SIZE"), "{e}");
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
        let e = env(&[("OTEL_TRACES_SAMPLER", "sometimes")]).unwrap_err();
        assert!(e.to_string().contains("OTEL_TRACES_SAMPLER"), "{e}");
        let e = Builder::default().sample_ratio(-1.0).config().unwrap_err();
        assert!(e.to_string().contains("sample_ratio"), "{e}");
    }
}
