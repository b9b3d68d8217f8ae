//! Spans → rows: classify each span, derive one transaction per entry span, and sum the
//! SQL and external calls under it.
//!
//! Children usually end (and so are exported) before their parents, sometimes in an
//! earlier export request. A child whose ancestors have not arrived yet leaves its sums
//! in `pending`, keyed by the missing ancestor; when that span arrives the sums continue
//! up to its entry span. The writer owns the [`Deriver`] alone, so no locks are involved.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};

use super::rows::{Category, ResourceRow, Rows, SpanRow, SqlFingerprintRow, TransactionRow};
use crate::normalize::semconv::{self, Attrs, Field};
use crate::normalize::{endpoint_name, fingerprint_with, hash64, CardinalityGuard, Dialect};

/// How long sums of early children wait for their ancestors.
const PENDING_TTL: Duration = Duration::from_secs(120);
/// Bound on the pending map (the oldest half is dropped past it).
const PENDING_MAX: usize = 200_000;
/// Bound on the remembered fingerprint hashes and resources (cleared past it; a repeat
/// write is harmless: those tables deduplicate).
const SEEN_MAX: usize = 100_000;

type SpanKey = ([u8; 16], [u8; 8]);

#[derive(Debug, Default, Clone, Copy)]
struct CallSums {
    sql_count: u32,
    sql_us: u64,
    ext_count: u32,
    ext_us: u64,
}

impl CallSums {
    fn add(&mut self, o: CallSums) {
        self.sql_count += o.sql_count;
        self.sql_us += o.sql_us;
        self.ext_count += o.ext_count;
        self.ext_us += o.ext_us;
    }
}

/// Turns export requests into rows. One per writer; keeps the cross-batch state.
pub struct Deriver {
    guard: CardinalityGuard,
    pending: HashMap<SpanKey, (CallSums, Instant)>,
    seen_fingerprints: HashSet<u64>,
    seen_resources: HashSet<u64>,
    batches: u64,
}

impl Deriver {
    pub fn new(max_endpoints_per_service: usize) -> Deriver {
        Deriver {
            guard: CardinalityGuard::new(max_endpoints_per_service),
            pending: HashMap::new(),
            seen_fingerprints: HashSet::new(),
            seen_resources: HashSet::new(),
            batches: 0,
        }
    }

    /// Endpoint names folded into `{other}` so far by the cardinality guard.
    pub fn endpoints_folded(&self) -> u64 {
        self.guard.folded()
    }

    /// Child sums still waiting for an ancestor.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Derives the rows of one (already validated) request.
    pub fn derive(&mut self, request: &ExportTraceServiceRequest, now_ms: i64) -> Rows {
        let mut rows = Rows::default();
        // Per span row: its key, parent key, and entry (transaction) index if any.
        let mut keys: Vec<SpanKey> = Vec::new();
        let mut parents: Vec<Option<SpanKey>> = Vec::new();
        let mut entry_of_row: Vec<Option<usize>> = Vec::new();
        let mut own_sums: Vec<CallSums> = Vec::new();

        for rs in &request.resource_spans {
            let rattrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
            let service = attr_str(rattrs, "service.name").unwrap_or("unknown_service");
            let instance = attr_str(rattrs, "service.instance.id")
                .or_else(|| attr_str(rattrs, "host.name"))
                .unwrap_or("");
            self.note_resource(&mut rows, service, instance, rattrs, now_ms);
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref().map_or("", |s| s.name.as_str());
                for span in &ss.spans {
                    let (row, sums, txn) = self.span_row(span, service, instance, scope, &mut rows);
                    keys.push((row.trace_id, row.span_id));
                    parents.push(
                        (row.parent_span_id != [0; 8])
                            .then_some((row.trace_id, row.parent_span_id)),
                    );
                    entry_of_row.push(txn.map(|t| {
                        rows.transactions.push(t);
                        rows.transactions.len() - 1
                    }));
                    own_sums.push(sums);
                    rows.spans.push(row);
                }
            }
        }

        let index: HashMap<SpanKey, usize> =
            keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut txn_sums: Vec<CallSums> = vec![CallSums::default(); rows.transactions.len()];
        // Sums left by children in earlier batches continue from the span they wait for.
        for (i, key) in keys.iter().enumerate() {
            if let Some((sums, _)) = self.pending.remove(key) {
                self.climb(
                    Some(i),
                    None,
                    sums,
                    &index,
                    &parents,
                    &entry_of_row,
                    &mut txn_sums,
                );
            }
        }
        // This batch's SQL and external calls climb to their entry span.
        for (i, sums) in own_sums.iter().enumerate() {
            if (sums.sql_count | sums.ext_count) != 0 && entry_of_row[i].is_none() {
                let start = parents[i].and_then(|p| index.get(&p).copied());
                self.climb(
                    start,
                    parents[i],
                    *sums,
                    &index,
                    &parents,
                    &entry_of_row,
                    &mut txn_sums,
                );
            }
        }
        for (t, s) in rows.transactions.iter_mut().zip(txn_sums) {
            t.sql_count += s.sql_count;
            t.sql_us += s.sql_us;
            t.ext_count += s.ext_count;
            t.ext_us += s.ext_us;
        }
        self.batches += 1;
        if self.batches.is_multiple_of(64) || self.pending.len() > PENDING_MAX {
            self.sweep_pending();
        }
        rows
    }

    /// Walks up from row `at` (or, when the row is unknown, waits on `missing`) until an
    /// entry span takes the sums.
    #[allow(clippy::too_many_arguments)]
    fn climb(
        &mut self,
        mut at: Option<usize>,
        mut missing: Option<SpanKey>,
        sums: CallSums,
        index: &HashMap<SpanKey, usize>,
        parents: &[Option<SpanKey>],
        entry_of_row: &[Option<usize>],
        txn_sums: &mut [CallSums],
    ) {
        for _ in 0..256 {
            match at {
                Some(i) => {
                    if let Some(t) = entry_of_row[i] {
                        txn_sums[t].add(sums);
                        return;
                    }
                    missing = parents[i];
                    at = missing.and_then(|p| index.get(&p).copied());
                }
                None => {
                    if let Some(key) = missing {
                        let slot = self
                            .pending
                            .entry(key)
                            .or_insert((CallSums::default(), Instant::now()));
                        slot.0.add(sums);
                    }
                    return;
                }
            }
        }
    }

    fn sweep_pending(&mut self) {
        let now = Instant::now();
        self.pending
            .retain(|_, (_, t)| now.duration_since(*t) < PENDING_TTL);
        if self.pending.len() > PENDING_MAX {
            // Still too many: keep the newest half.
            let mut ages: Vec<Instant> = self.pending.values().map(|(_, t)| *t).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.pending.retain(|_, (_, t)| *t >= cut);
        }
    }

    fn note_resource(
        &mut self,
        rows: &mut Rows,
        service: &str,
        instance: &str,
        attrs: &[KeyValue],
        now_ms: i64,
    ) {
        let attributes = attrs_to_pairs(attrs);
        let mut key = Vec::with_capacity(256);
        for part in [service, instance].into_iter().chain(
            attributes
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        ) {
            key.extend_from_slice(part.as_bytes());
            key.push(0);
        }
        if self.seen_resources.len() > SEEN_MAX {
            self.seen_resources.clear();
        }
        if self.seen_resources.insert(hash64(&key)) {
            rows.resources.push(ResourceRow {
                service: service.to_string(),
                instance: instance.to_string(),
                seen_ms: now_ms,
                attributes,
            });
        }
    }

    fn span_row(
        &mut self,
        span: &Span,
        service: &str,
        instance: &str,
        scope: &str,
        rows: &mut Rows,
    ) -> (SpanRow, CallSums, Option<TransactionRow>) {
        let attrs = &span.attributes;
        let a = Attrs::new(attrs);
        let trace_id = to_array::<16>(&span.trace_id);
        let span_id = to_array::<8>(&span.span_id);
        let parent_span_id = to_array::<8>(&span.parent_span_id);
        let start_us = (span.start_time_unix_nano / 1000) as i64;
        let duration_us = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano)
            / 1000;
        let kind = span.kind;
        let is_root = parent_span_id == [0; 8];
        let category =
            if kind == SpanKind::Server as i32 || kind == SpanKind::Consumer as i32 || is_root {
                Category::Entry
            } else if a.is_sql() {
                Category::Sql
            } else if a.is_external(kind) {
                Category::External
            } else {
                Category::Method
            };
        let status = span.status.as_ref().map_or(0, |s| s.code) as u8;
        let status_message = span.status.as_ref().map_or("", |s| s.message.as_str());
        let exception = span.events.iter().find(|e| e.name == "exception");
        let exc_type = exception.and_then(|e| attr_str(&e.attributes, "exception.type"));
        let exc_message = exception.and_then(|e| attr_str(&e.attributes, "exception.message"));
        let http_status = a
            .int(Field::HttpStatus)
            .unwrap_or(0)
            .clamp(0, u16::MAX as i64) as u16;
        let failed = status == StatusCode::Error as u8
            || (category == Category::Entry && http_status >= 500);
        let error_type = if failed {
            exc_type
                .map(str::to_string)
                .or_else(|| a.str(Field::ErrorType).map(str::to_string))
                .unwrap_or_else(|| {
                    if http_status >= 500 {
                        format!("HTTP {http_status}")
                    } else {
                        "error".to_string()
                    }
                })
        } else {
            String::new()
        };

        let mut sums = CallSums::default();
        let mut sql_hash = 0;
        let mut target = String::new();
        match category {
            Category::Sql => {
                sums.sql_count = 1;
                sums.sql_us = duration_us;
                let system = a.str(Field::DbSystem).unwrap_or("sql");
                target = match a.str(Field::DbName) {
                    Some(db) => format!("{system}/{db}"),
                    None => system.to_string(),
                };
                if let Some(text) = a.str(Field::DbStatement) {
                    let fp = fingerprint_with(text, Dialect::from_db_system(system));
                    sql_hash = fp.hash;
                    if self.seen_fingerprints.len() > SEEN_MAX {
                        self.seen_fingerprints.clear();
                    }
                    if self.seen_fingerprints.insert(fp.hash) {
                        rows.fingerprints.push(SqlFingerprintRow {
                            sql_hash: fp.hash,
                            fingerprint: fp.text,
                            db_system: system.to_string(),
                        });
                    }
                }
            }
            Category::External => {
                sums.ext_count = 1;
                sums.ext_us = duration_us;
                target = a.external_target().unwrap_or_default();
            }
            _ => {}
        }

        let txn = (category == Category::Entry).then(|| {
            let method = a.str(Field::HttpMethod);
            let route = a.str(Field::HttpRoute);
            let path = a.path();
            let endpoint = self
                .guard
                .admit(service, endpoint_name(route, method, path, &span.name));
            let int_field = |f| a.int(f).unwrap_or(0).max(0) as u64;
            TransactionRow {
                end_ms: (span.end_time_unix_nano / 1_000_000) as i64,
                elapsed_us: duration_us,
                service: service.to_string(),
                instance: instance.to_string(),
                endpoint,
                http_method: method.unwrap_or("").to_string(),
                http_status,
                error: failed as u8,
                error_type: error_type.clone(),
                error_message: if failed {
                    exc_message.unwrap_or(status_message).to_string()
                } else {
                    String::new()
                },
                cpu_us: int_field(Field::CpuTimeUs),
                sql_count: 0,
                sql_us: 0,
                ext_count: 0,
                ext_us: 0,
                fetch_us: int_field(Field::FetchTimeUs),
                client_address: a.str(Field::ClientAddress).unwrap_or("").to_string(),
                user_id: a.str(Field::UserId).unwrap_or("").to_string(),
                trace_id,
                span_id,
            }
        });

        let row = SpanRow {
            trace_id,
            span_id,
            parent_span_id,
            start_us,
            duration_us,
            service: service.to_string(),
            instance: instance.to_string(),
            name: span.name.clone(),
            kind: kind.clamp(0, 255) as u8,
            category: category as u8,
            status,
            status_message: status_message.to_string(),
            error_type,
            sql_hash,
            target,
            scope: scope.to_string(),
            attributes: attrs_to_pairs(attrs),
            events: events_json(span),
        };
        (row, sums, txn)
    }
}

fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if bytes.len() == N {
        out.copy_from_slice(bytes);
    }
    out
}

fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(semconv::str_of)
}

/// Renders any OTLP value as text (strings as is, arrays and maps as JSON).
pub fn value_to_string(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(_) => value_to_json(v).to_string(),
        None => String::new(),
    }
}

fn value_to_json(v: &AnyValue) -> serde_json::Value {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone().into(),
        Some(Value::IntValue(i)) => (*i).into(),
        Some(Value::DoubleValue(d)) => (*d).into(),
        Some(Value::BoolValue(b)) => (*b).into(),
        Some(Value::BytesValue(b)) => hex::encode(b).into(),
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(value_to_json)
            .collect::<Vec<_>>()
            .into(),
        Some(Value::KvlistValue(kv)) => kv
            .values
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value
                        .as_ref()
                        .map_or(serde_json::Value::Null, value_to_json),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        // String-valued references into a dictionary (profiles) do not occur in traces.
        #[allow(unreachable_patterns)]
        _ => serde_json::Value::Null,
    }
}

fn attrs_to_pairs(attrs: &[KeyValue]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(value_to_string).unwrap_or_default(),
            )
        })
        .collect()
}

fn events_json(span: &Span) -> String {
    if span.events.is_empty() {
        return String::new();
    }
    let events: Vec<serde_json::Value> = span
        .events
        .iter()
        .map(|e| {
            let attrs: serde_json::Map<_, _> = e
                .attributes
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map(value_to_string).unwrap_or_default().into()))
                .collect();
            serde_json::json!({ "time_us": e.time_unix_nano / 1000, "name": e.name, "attributes": attrs })
        })
        .collect();
    serde_json::Value::Array(events).to_string()
}
