//! The Prometheus series Tern exposes, read from the minute rollups.
//!
//! Canonical samples: every series is a counter with one sample at the END of each
//! minute (`minute + 60 s`), valued at its cumulative total over all stored minutes up
//! to and including that minute. A series has a sample at every minute end from its
//! first stored minute until the last minute that has ended (idle minutes repeat the
//! value, as a scraped counter would), so `rate()` and `increase()` see a regular
//! 60-second scrape. The minute in progress has no sample until it ends.
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `tern_requests_total` | service, endpoint, instance | transactions |
//! | `tern_request_errors_total` | service, endpoint, instance | failed transactions |
//! | `tern_request_duration_seconds_sum` / `_count` | service, endpoint, instance | elapsed time / transactions |
//! | `tern_request_duration_seconds_bucket` | service, endpoint, instance, le | transactions by elapsed time |
//! | `tern_request_cpu_seconds_total` | service, endpoint, instance | CPU time |
//! | `tern_sql_calls_total`, `tern_sql_errors_total`, `tern_sql_duration_seconds_sum` | service, db_system | SQL calls |
//! | `tern_external_calls_total`, `tern_external_errors_total`, `tern_external_duration_seconds_sum` | service, target | outgoing calls |
//!
//! Histogram buckets: the rollups keep 8 log-scale buckets per doubling; an observation
//! counts under every `le` at or above its rollup bucket's upper bound.

use std::collections::HashMap;

use clickhouse::Row;
use serde::Deserialize;

use super::eval::EvalError;
use super::value::{Labels, Series, NAME};
use crate::query::ApiState;
use crate::store::schema::bucket_upper_us;

/// Where a family's rows come from.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Endpoints,
    Calls(u8),
}

/// One metric family: its name, source table, and SQL aggregate of its value.
pub struct Family {
    pub name: &'static str,
    source: Source,
    value: &'static str,
    bucket: bool,
}

const ENDPOINT_LABELS: [(&str, &str); 3] = [
    ("service", "service"),
    ("endpoint", "endpoint"),
    ("instance", "instance"),
];
const SQL_LABELS: [(&str, &str); 2] = [("service", "service"), ("db_system", "target")];
const EXT_LABELS: [(&str, &str); 2] = [("service", "service"), ("target", "target")];

/// The `le` bounds of `tern_request_duration_seconds_bucket`, in seconds.
pub const LE: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];

const fn fam(name: &'static str, source: Source, value: &'static str) -> Family {
    Family {
        name,
        source,
        value,
        bucket: false,
    }
}

/// Every metric family, in the order `/api/v1/label/__name__/values` lists them.
pub const FAMILIES: &[Family] = &[
    fam(
        "tern_requests_total",
        Source::Endpoints,
        "toFloat64(sum(calls))",
    ),
    fam(
        "tern_request_errors_total",
        Source::Endpoints,
        "toFloat64(sum(errors))",
    ),
    fam(
        "tern_request_duration_seconds_count",
        Source::Endpoints,
        "toFloat64(sum(calls))",
    ),
    fam(
        "tern_request_duration_seconds_sum",
        Source::Endpoints,
        "sum(elapsed_sum_us) / 1e6",
    ),
    Family {
        name: "tern_request_duration_seconds_bucket",
        source: Source::Endpoints,
        value: "",
        bucket: true,
    },
    fam(
        "tern_request_cpu_seconds_total",
        Source::Endpoints,
        "sum(cpu_us) / 1e6",
    ),
    fam(
        "tern_sql_calls_total",
        Source::Calls(2),
        "toFloat64(sum(calls))",
    ),
    fam(
        "tern_sql_errors_total",
        Source::Calls(2),
        "toFloat64(sum(errors))",
    ),
    fam(
        "tern_sql_duration_seconds_sum",
        Source::Calls(2),
        "sum(total_us) / 1e6",
    ),
    fam(
        "tern_external_calls_total",
        Source::Calls(3),
        "toFloat64(sum(calls))",
    ),
    fam(
        "tern_external_errors_total",
        Source::Calls(3),
        "toFloat64(sum(errors))",
    ),
    fam(
        "tern_external_duration_seconds_sum",
        Source::Calls(3),
        "sum(total_us) / 1e6",
    ),
];

impl Family {
    fn labels(&self) -> &'static [(&'static str, &'static str)] {
        match self.source {
            Source::Endpoints => &ENDPOINT_LABELS,
            Source::Calls(2) => &SQL_LABELS,
            Source::Calls(_) => &EXT_LABELS,
        }
    }

    /// The label names of this family's series (without `__name__`).
    pub fn label_names(&self) -> impl Iterator<Item = &'static str> {
        self.labels()
            .iter()
            .map(|(l, _)| *l)
            .chain(self.bucket.then_some("le"))
    }

    /// The SQL of the three label columns `a`, `b`, `c` (`''` when unused).
    fn columns(&self) -> String {
        let cols: Vec<&str> = self
            .labels()
            .iter()
            .map(|(_, c)| *c)
            .chain(std::iter::repeat("''"))
            .take(3)
            .collect();
        format!("{} AS a, {} AS b, {} AS c", cols[0], cols[1], cols[2])
    }

    /// The table, and the extra condition selecting this family's rows in it.
    fn table(&self) -> (&'static str, String) {
        match self.source {
            Source::Endpoints => ("endpoint_minutes", String::new()),
            Source::Calls(c) => ("call_minutes", format!(" AND category = {c}")),
        }
    }

    /// The equality matchers this family's store query can apply itself: `(column,
    /// value)` for labels it has.
    fn pushed<'e>(&self, eq: &'e [(String, String)]) -> Vec<(&'static str, &'e str)> {
        eq.iter()
            .filter_map(|(label, value)| {
                let (_, column) = self.labels().iter().find(|(l, _)| l == label)?;
                Some((*column, value.as_str()))
            })
            .collect()
    }

    fn sql(&self, select: &str, filter: &str, group: &str, pushed: &[(&str, &str)]) -> String {
        let (table, mut cond) = self.table();
        for (column, _) in pushed {
            cond.push_str(&format!(" AND {column} = ?"));
        }
        let value = if self.bucket {
            "sumMap(histogram)"
        } else {
            self.value
        };
        format!(
            "SELECT {select}, {}, {value} AS v FROM {table} \
             WHERE {filter}{cond} GROUP BY {group}a, b, c",
            self.columns()
        )
    }

    fn labels_of(&self, a: &str, b: &str, c: &str) -> Labels {
        let mut l = Labels::new();
        l.insert(NAME.into(), self.name.into());
        for ((name, _), v) in self.labels().iter().zip([a, b, c]) {
            l.insert((*name).into(), v.into());
        }
        l
    }
}

#[derive(Row, Deserialize)]
struct ValueRow {
    m: u32,
    a: String,
    b: String,
    c: String,
    v: f64,
}

#[derive(Row, Deserialize)]
struct HistRow {
    m: u32,
    a: String,
    b: String,
    c: String,
    v: (Vec<u16>, Vec<u64>),
}

/// Most samples one query may load.
pub const MAX_SAMPLES: usize = 5_000_000;

/// Cumulative counts per `le` of one rollup histogram.
fn le_counts(h: &(Vec<u16>, Vec<u64>)) -> [f64; LE.len()] {
    let mut out = [0.0; LE.len()];
    for (&i, &n) in h.0.iter().zip(&h.1) {
        let upper_s = bucket_upper_us(i) / 1e6;
        for (j, le) in LE.iter().enumerate() {
            if upper_s <= *le {
                out[j] += n as f64;
            }
        }
    }
    out
}

/// A family's series, each with its samples at minute ends in `[from_ms, to_ms]`
/// (`to_ms` capped at `now_ms`), keeping those whose labels pass `keep`. `eq` are the
/// selector's equality matchers, applied by the store query where it can.
pub async fn load(
    s: &ApiState,
    family: &Family,
    eq: &[(String, String)],
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
    keep: &(dyn Fn(&Labels) -> bool + Sync),
) -> Result<Vec<Series>, LoadError> {
    let to_ms = to_ms.min(now_ms);
    // Minutes whose end falls in the window.
    let first_min = (from_ms - 60_000 + 59_999).div_euclid(60_000).max(0) * 60;
    let last_min = (to_ms - 60_000).div_euclid(60_000) * 60;
    if last_min < first_min {
        return Ok(vec![]);
    }
    let width = if family.bucket { LE.len() } else { 1 };
    // (a, b, c) → (first minute, per-minute values), plus the totals before the window.
    type Key = (String, String, String);
    let mut base: HashMap<Key, Vec<f64>> = HashMap::new();
    let mut minutes: HashMap<Key, Vec<(i64, Vec<f64>)>> = HashMap::new();
    let window = "minute >= toDateTime(?) AND minute <= toDateTime(?)";
    let before = "minute < toDateTime(?)";
    let client = s.store.client();
    let pushed = family.pushed(eq);
    if family.bucket {
        let mut wq = client
            .query(&family.sql(
                "toUInt32(toUnixTimestamp(minute)) AS m",
                window,
                "m, ",
                &pushed,
            ))
            .bind(first_min)
            .bind(last_min);
        let mut bq = client
            .query(&family.sql("toUInt32(0) AS m", before, "", &pushed))
            .bind(first_min);
        for (_, value) in &pushed {
            wq = wq.bind(*value);
            bq = bq.bind(*value);
        }
        for r in bq.fetch_all::<HistRow>().await? {
            base.insert((r.a, r.b, r.c), le_counts(&r.v).to_vec());
        }
        for r in wq.fetch_all::<HistRow>().await? {
            minutes
                .entry((r.a, r.b, r.c))
                .or_default()
                .push((r.m as i64, le_counts(&r.v).to_vec()));
        }
    } else {
        let mut wq = client
            .query(&family.sql(
                "toUInt32(toUnixTimestamp(minute)) AS m",
                window,
                "m, ",
                &pushed,
            ))
            .bind(first_min)
            .bind(last_min);
        let mut bq = client
            .query(&family.sql("toUInt32(0) AS m", before, "", &pushed))
            .bind(first_min);
        for (_, value) in &pushed {
            wq = wq.bind(*value);
            bq = bq.bind(*value);
        }
        for r in bq.fetch_all::<ValueRow>().await? {
            base.insert((r.a, r.b, r.c), vec![r.v]);
        }
        for r in wq.fetch_all::<ValueRow>().await? {
            minutes
                .entry((r.a, r.b, r.c))
                .or_default()
                .push((r.m as i64, vec![r.v]));
        }
    }
    let mut keys: Vec<Key> = base.keys().chain(minutes.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    let mut total = 0usize;
    for k in keys {
        let labels = family.labels_of(&k.0, &k.1, &k.2);
        let wanted: Vec<usize> = (0..width)
            .filter(|&j| keep(&with_le(family, &labels, j)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let mut rows = minutes.remove(&k).unwrap_or_default();
        rows.sort_by_key(|r| r.0);
        let (mut acc, start) = match base.remove(&k) {
            Some(b) => (b, first_min),
            None => (vec![0.0; width], rows.first().map_or(first_min, |r| r.0)),
        };
        let mut series: Vec<Series> = wanted
            .iter()
            .map(|&j| Series {
                labels: with_le(family, &labels, j),
                samples: Vec::new(),
            })
            .collect();
        let mut next = rows.into_iter().peekable();
        let mut m = start;
        while m <= last_min {
            if let Some((_, v)) = next.next_if(|r| r.0 == m) {
                for (a, x) in acc.iter_mut().zip(v) {
                    *a += x;
                }
            }
            for (&j, s) in wanted.iter().zip(series.iter_mut()) {
                s.samples.push(((m + 60) * 1000, acc[j]));
            }
            m += 60;
        }
        for s in series {
            if !s.samples.is_empty() {
                total += s.samples.len();
                if total > MAX_SAMPLES {
                    return Err(LoadError::TooMany);
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// The labels of value `j` of a series: with its `le` for the histogram buckets.
fn with_le(family: &Family, labels: &Labels, j: usize) -> Labels {
    let mut l = labels.clone();
    if family.bucket {
        l.insert("le".into(), super::value::format_value(LE[j]));
    }
    l
}

#[derive(Row, Deserialize)]
struct KeyRow {
    a: String,
    b: String,
    c: String,
}

/// The label sets of a family's series that have samples up to `to_ms` (a series
/// exists from its first minute on), keeping those that pass `keep`.
pub async fn label_sets(
    s: &ApiState,
    family: &Family,
    to_ms: i64,
    keep: &(dyn Fn(&Labels) -> bool + Sync),
) -> Result<Vec<Labels>, LoadError> {
    let last_min = (to_ms - 60_000).div_euclid(60_000) * 60;
    let (table, cond) = family.table();
    let sql = format!(
        "SELECT {} FROM {table} WHERE minute <= toDateTime(?){cond} GROUP BY a, b, c",
        family.columns()
    );
    let rows: Vec<KeyRow> = s
        .store
        .client()
        .query(&sql)
        .bind(last_min)
        .fetch_all()
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let labels = family.labels_of(&r.a, &r.b, &r.c);
        let width = if family.bucket { LE.len() } else { 1 };
        for j in 0..width {
            let l = with_le(family, &labels, j);
            if keep(&l) {
                out.push(l);
            }
        }
    }
    Ok(out)
}

/// Why series could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "query would load more than {MAX_SAMPLES} samples: narrow the selectors or the time range"
    )]
    TooMany,
    #[error("store query failed: {0}")]
    Store(#[from] clickhouse::error::Error),
}

impl From<LoadError> for EvalError {
    fn from(e: LoadError) -> EvalError {
        EvalError::Execution(e.to_string())
    }
}
