//! The rows Tern stores: one vocabulary from ingest to query (see docs/architecture.md).

use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// What a span is, for the call tree and the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Category {
    /// Anything else: a method, a template render, an internal step.
    Method = 0,
    /// The entry span of a transaction (SERVER / CONSUMER kind, or a root).
    Entry = 1,
    /// A database call.
    Sql = 2,
    /// A call to another service (HTTP, RPC, messaging producer).
    External = 3,
}

impl Category {
    pub fn from_u8(v: u8) -> Category {
        match v {
            1 => Category::Entry,
            2 => Category::Sql,
            3 => Category::External,
            _ => Category::Method,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Method => "method",
            Category::Entry => "entry",
            Category::Sql => "sql",
            Category::External => "external",
        }
    }
}

/// One OpenTelemetry span, stored as is (binary ids, attributes kept) plus the few
/// derived columns the statistics need. Table `spans`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SpanRow {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zero for a root span.
    pub parent_span_id: [u8; 8],
    /// Start, microseconds since the Unix epoch (DateTime64(6)).
    pub start_us: i64,
    pub duration_us: u64,
    pub service: String,
    pub instance: String,
    pub name: String,
    /// OTLP SpanKind (0 unspecified … 5 consumer).
    pub kind: u8,
    /// [`Category`] as u8.
    pub category: u8,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status: u8,
    pub status_message: String,
    /// Exception type or `error.type`, when the span failed.
    pub error_type: String,
    /// SQL fingerprint hash (0 when not SQL); text in `sql_fingerprints`.
    pub sql_hash: u64,
    /// Database system for SQL, `host:port` for external calls.
    pub target: String,
    pub scope: String,
    pub attributes: Vec<(String, String)>,
    /// Span events (exceptions, logs) as a JSON array; empty string when none.
    pub events: String,
}

/// A transaction: the summary of one entry span. Table `transactions`, one narrow row
/// each — this is what the X-View scans.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct TransactionRow {
    /// End, milliseconds since the Unix epoch (DateTime64(3)).
    pub end_ms: i64,
    pub elapsed_us: u64,
    pub service: String,
    pub instance: String,
    pub endpoint: String,
    pub http_method: String,
    pub http_status: u16,
    pub error: u8,
    pub error_type: String,
    pub error_message: String,
    pub cpu_us: u64,
    pub sql_count: u32,
    pub sql_us: u64,
    pub ext_count: u32,
    pub ext_us: u64,
    pub fetch_us: u64,
    pub client_address: String,
    pub user_id: String,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// A normalized SQL statement, written once per new hash. Table `sql_fingerprints`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SqlFingerprintRow {
    pub sql_hash: u64,
    pub fingerprint: String,
    pub db_system: String,
}

/// Resource attributes of a service instance, written once per new set. Table `resources`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ResourceRow {
    pub service: String,
    pub instance: String,
    pub seen_ms: i64,
    pub attributes: Vec<(String, String)>,
}

/// Everything one batch of spans turns into.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    pub spans: Vec<SpanRow>,
    pub transactions: Vec<TransactionRow>,
    pub fingerprints: Vec<SqlFingerprintRow>,
    pub resources: Vec<ResourceRow>,
}

impl Rows {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
            && self.transactions.is_empty()
            && self.fingerprints.is_empty()
            && self.resources.is_empty()
    }

    pub fn append(&mut self, other: Rows) {
        self.spans.extend(other.spans);
        self.transactions.extend(other.transactions);
        self.fingerprints.extend(other.fingerprints);
        self.resources.extend(other.resources);
    }
}
