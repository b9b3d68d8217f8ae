//! The collector's one typed configuration: a TOML file, then environment overrides.
//!
//! Every field has a default, so an empty file (or none) runs the collector with the
//! embedded store under `.tern/data`. Unknown keys are rejected so a typo is an error,
//! not a silently ignored setting. Environment overrides are declared in [`ENV_OVERRIDES`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tern_wal::WalOptions;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {var}={value:?}: {message}")]
    Env {
        var: &'static str,
        value: String,
        message: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub otlp: OtlpConfig,
    pub api: ApiConfig,
    pub storage: StorageConfig,
    /// The write-ahead log every accepted batch goes through before it is acknowledged:
    /// `max_bytes` (default 1 GiB) bounds the spill while the store is down (past it,
    /// ingest answers 429 / RESOURCE_EXHAUSTED), `segment_bytes` (64 MiB), `sync`
    /// (`never`: survives `kill -9`; `always`: fsync per append, survives power loss).
    pub wal: WalOptions,
    pub writer: WriterConfig,
    pub normalize: NormalizeConfig,
    pub live: LiveConfig,
}

/// OTLP ingest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// OTLP/gRPC listen address (also serves `tern.v1.LiveService`). Default 127.0.0.1:4317.
    pub grpc_listen: SocketAddr,
    /// OTLP/HTTP listen address (`/v1/traces`). Default 127.0.0.1:4318.
    pub http_listen: SocketAddr,
    /// Largest accepted request, in bytes, after decompression. Default 16 MiB.
    pub max_request_bytes: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            grpc_listen: "127.0.0.1:4317".parse().expect("literal address"),
            http_listen: "127.0.0.1:4318".parse().expect("literal address"),
            max_request_bytes: 16 << 20,
        }
    }
}

/// Query API (and, later, the web UI).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address of the HTTP JSON API under `/api/v1/`. Default 127.0.0.1:8300.
    pub listen: SocketAddr,
    /// Most X-View points one response carries; more are reduced (and the answer says so).
    /// Default 50,000.
    pub max_points: u64,
    /// Most rows any list endpoint returns. Default 10,000.
    pub max_rows: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8300".parse().expect("literal address"),
            max_points: 50_000,
            max_rows: 10_000,
        }
    }
}

/// Where data is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Local data directory: the write-ahead log and, in embedded mode, the ClickHouse
    /// data. Default `.tern/data` (relative to the working directory).
    pub data_dir: PathBuf,
    /// Days of spans and transactions to keep (ClickHouse TTL). Default 7.
    pub retention_days: u32,
    /// Days of minute rollups to keep. Default 90.
    pub rollup_retention_days: u32,
    /// A ClickHouse server to use instead of the embedded engine.
    pub clickhouse: Option<ClickHouseConfig>,
    /// The embedded engine (used when `clickhouse` is not set).
    pub embedded: EmbeddedConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".tern/data"),
            retention_days: 7,
            rollup_retention_days: 90,
            clickhouse: None,
            embedded: EmbeddedConfig::default(),
        }
    }
}

/// A ClickHouse server reached over its HTTP interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// e.g. `http://127.0.0.1:8123`.
    pub url: String,
    #[serde(default = "default_ch_user")]
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// Database for Tern's tables; created if missing. Default `tern`.
    #[serde(default = "default_database")]
    pub database: String,
}

fn default_ch_user() -> String {
    "default".into()
}
fn default_database() -> String {
    "tern".into()
}

/// The embedded ClickHouse engine (chDB).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Path of `libchdb.so`. Default: `TERN_CHDB_LIB`, else the path `scripts/setup.sh`
    /// installs to (`~/.cache/tern/chdb/<version>/libchdb.so`).
    pub lib: Option<PathBuf>,
    /// Address of the ClickHouse-HTTP front over the embedded engine. The collector
    /// itself talks to it; any ClickHouse tool can too. Default 127.0.0.1:0 (a free port).
    pub http_listen: SocketAddr,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            lib: None,
            http_listen: "127.0.0.1:0".parse().expect("literal address"),
        }
    }
}

/// The store writer that moves the log into ClickHouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Spans per insert batch. Default 100,000.
    pub batch_spans: usize,
    /// Longest a span waits in the writer before its batch is inserted. Default 500 ms.
    pub flush_interval_ms: u64,
    /// First retry delay while the store is down (doubles up to 10 s). Default 200 ms.
    pub retry_initial_ms: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_spans: 100_000,
            flush_interval_ms: 500,
            retry_initial_ms: 200,
        }
    }
}

/// Normalization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Distinct endpoint names kept per service; the rest are folded into `{other}`.
    /// Default 1,000.
    pub max_endpoints_per_service: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            max_endpoints_per_service: 1000,
        }
    }
}

/// Live state from Tern agents (tern.v1) and the settings handed to them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// An agent's active-transaction snapshot is dropped when older than this. Default 10 s.
    pub snapshot_ttl_secs: u64,
    /// Share of transactions agents record with a full call tree. Default 1.0.
    pub sample_ratio: f64,
    /// Transactions slower than this always get a full call tree. Default 1000 ms.
    pub profile_threshold_ms: u64,
    /// Whether agents may capture SQL bind parameters. Default false.
    pub capture_sql_params: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            snapshot_ttl_secs: 10,
            sample_ratio: 1.0,
            profile_threshold_ms: 1000,
            capture_sql_params: false,
        }
    }
}

type Setter = fn(&mut Config, &str) -> Result<(), String>;

fn parse<T: std::str::FromStr>(v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse::<T>().map_err(|e| e.to_string())
}

fn clickhouse_mut(c: &mut Config) -> &mut ClickHouseConfig {
    c.storage
        .clickhouse
        .get_or_insert_with(|| ClickHouseConfig {
            url: String::new(),
            user: default_ch_user(),
            password: String::new(),
            database: default_database(),
        })
}

/// Every environment override, in one place: variable name and what it sets.
pub const ENV_OVERRIDES: &[(&str, Setter)] = &[
    ("TERN_OTLP_GRPC_LISTEN", |c, v| {
        c.otlp.grpc_listen = parse(v)?;
        Ok(())
    }),
    ("TERN_OTLP_HTTP_LISTEN", |c, v| {
        c.otlp.http_listen = parse(v)?;
        Ok(())
    }),
    ("TERN_MAX_REQUEST_BYTES", |c, v| {
        c.otlp.max_request_bytes = parse(v)?;
        Ok(())
    }),
    ("TERN_API_LISTEN", |c, v| {
        c.api.listen = parse(v)?;
        Ok(())
    }),
    ("TERN_DATA_DIR", |c, v| {
        c.storage.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("TERN_RETENTION_DAYS", |c, v| {
        c.storage.retention_days = parse(v)?;
        Ok(())
    }),
    ("TERN_CHDB_LIB", |c, v| {
        c.storage.embedded.lib = Some(PathBuf::from(v));
        Ok(())
    }),
    ("TERN_EMBEDDED_HTTP_LISTEN", |c, v| {
        c.storage.embedded.http_listen = parse(v)?;
        Ok(())
    }),
    ("TERN_CLICKHOUSE_URL", |c, v| {
        clickhouse_mut(c).url = v.to_string();
        Ok(())
    }),
    ("TERN_CLICKHOUSE_USER", |c, v| {
        clickhouse_mut(c).user = v.to_string();
        Ok(())
    }),
    ("TERN_CLICKHOUSE_PASSWORD", |c, v| {
        clickhouse_mut(c).password = v.to_string();
        Ok(())
    }),
    ("TERN_CLICKHOUSE_DATABASE", |c, v| {
        clickhouse_mut(c).database = v.to_string();
        Ok(())
    }),
    ("TERN_WAL_MAX_BYTES", |c, v| {
        c.wal.max_bytes = parse(v)?;
        Ok(())
    }),
    ("TERN_WRITER_FLUSH_INTERVAL_MS", |c, v| {
        c.writer.flush_interval_ms = parse(v)?;
        Ok(())
    }),
];

impl Config {
    /// Loads `path` (if given), applies environment overrides from `env`, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::from_toml(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                })?
            }
            None => Config::default(),
        };
        for (var, set) in ENV_OVERRIDES {
            if let Some(value) = env(var) {
                set(&mut config, &value).map_err(|message| ConfigError::Env {
                    var,
                    value,
                    message,
                })?;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (no environment, no validation).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if let Some(ch) = &self.storage.clickhouse {
            if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
                return bad("storage.clickhouse.url must start with http:// or https://");
            }
            if ch.database.is_empty()
                || !ch
                    .database
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return bad(
                    "storage.clickhouse.database must be a plain identifier ([A-Za-z0-9_])",
                );
            }
        }
        if self.otlp.max_request_bytes < 1024 {
            return bad("otlp.max_request_bytes must be at least 1024");
        }
        if self.storage.retention_days == 0 || self.storage.rollup_retention_days == 0 {
            return bad("storage.retention_days and rollup_retention_days must be at least 1");
        }
        if self.wal.segment_bytes < 4096 || self.wal.max_bytes < 4096 {
            return bad("wal.segment_bytes and wal.max_bytes must be at least 4096");
        }
        if self.writer.batch_spans == 0 {
            return bad("writer.batch_spans must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.live.sample_ratio) {
            return bad("live.sample_ratio must be between 0.0 and 1.0");
        }
        Ok(())
    }

    /// Directory of the write-ahead log.
    pub fn wal_dir(&self) -> PathBuf {
        self.storage.data_dir.join("wal")
    }

    /// Directory of the embedded ClickHouse data.
    pub fn embedded_dir(&self) -> PathBuf {
        self.storage.data_dir.join("clickhouse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_config_means_embedded_defaults() {
        let c = Config::load(None, no_env).unwrap();
        assert!(c.storage.clickhouse.is_none());
        assert_eq!(c.otlp.grpc_listen.port(), 4317);
        assert_eq!(c.otlp.http_listen.port(), 4318);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("[otlp]\ngrpc_lisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("grpc_lisen"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = Config::load(None, |k| match k {
            "TERN_CLICKHOUSE_URL" => Some("http://127.0.0.1:9".into()),
            "TERN_API_LISTEN" => Some("127.0.0.1:9999".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.storage.clickhouse.unwrap().url, "http://127.0.0.1:9");
        assert_eq!(c.api.listen.port(), 9999);
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let err = Config::load(None, |k| (k == "TERN_API_LISTEN").then(|| "nope".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TERN_API_LISTEN"), "{err}");
    }

    #[test]
    fn a_clickhouse_url_without_scheme_is_rejected() {
        let err = Config::load(None, |k| {
            (k == "TERN_CLICKHOUSE_URL").then(|| "127.0.0.1:8123".into())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("http://"), "{err}");
    }
}
