//! Trace search, tags and tag values over the `spans` and `resources` tables, answered
//! in Tempo's JSON shapes.

use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Value};

use super::traceql::{Cond, Field, Lit, Op};
use crate::query::{ApiError, ApiState, Where};

/// Most traces one search returns.
pub const MAX_LIMIT: u64 = 1000;

const ZERO_SPAN: &str = "unhex('0000000000000000')";

fn kind_code(k: &str) -> Option<u8> {
    Some(match k {
        "unspecified" => 0,
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => return None,
    })
}

fn status_code(k: &str) -> Option<u8> {
    Some(match k {
        "unset" => 0,
        "ok" => 1,
        "error" => 2,
        _ => return None,
    })
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

/// Adds `column op value` for a string-valued column or attribute expression.
fn compare(w: &mut Where, column: &str, op: Op, value: &Lit) -> Result<(), ApiError> {
    match (op, value) {
        (Op::Re | Op::NotRe, Lit::Str(re)) => {
            w.and(format!("{}({column}, ?)", op.sql()))
                .str(&format!("^(?:{re})$"));
        }
        (Op::Eq | Op::Ne, Lit::Str(s)) => {
            w.and(format!("{column} {} ?", op.sql())).str(s);
        }
        (_, Lit::Num(n)) if !matches!(op, Op::Re | Op::NotRe) => {
            w.and(format!("toFloat64OrNull({column}) {} {n:?}", op.sql()));
        }
        (Op::Eq | Op::Ne, Lit::Keyword(k)) if k == "true" || k == "false" => {
            w.and(format!("{column} {} ?", op.sql())).str(k);
        }
        _ => return Err(bad(format!("comparison {op:?} {value:?} is not supported"))),
    }
    Ok(())
}

/// `attr op value` on the span's attributes (present, and comparing).
fn span_attribute(a: &str, c: &Cond) -> Result<Where, ApiError> {
    let mut w = Where::default();
    w.and("mapContains(attributes, ?)").str(a);
    compare(
        &mut w,
        &format!("attributes['{}']", a.replace(['\'', '\\'], "")),
        c.op,
        &c.value,
    )?;
    Ok(w)
}

/// `attr op value` on the span's resource attributes, as one `IN` clause.
fn resource_attribute(a: &str, c: &Cond) -> Result<Where, ApiError> {
    let mut inner = Where::default();
    inner.and("mapContains(attributes, ?)").str(a);
    compare(
        &mut inner,
        &format!("attributes['{}']", a.replace(['\'', '\\'], "")),
        c.op,
        &c.value,
    )?;
    let mut w = Where::default();
    w.and(format!(
        "(service, instance) IN (SELECT service, instance FROM resources FINAL {})",
        inner.sql()
    ));
    w.append(inner);
    Ok(w)
}

/// The span conditions as a WHERE clause, and the trace-duration conditions as a
/// HAVING clause (microseconds inlined: they are numbers).
pub fn conditions(conds: &[Cond], w: &mut Where) -> Result<Vec<String>, ApiError> {
    let mut having = Vec::new();
    for c in conds {
        match &c.field {
            Field::Service => compare(w, "service", c.op, &c.value)?,
            Field::Name => compare(w, "name", c.op, &c.value)?,
            Field::Span(a) => {
                let span = span_attribute(a, c)?;
                w.and(span.sql().trim_start_matches("WHERE ").to_string());
                w.append(span);
            }
            Field::Resource(a) => {
                let resource = resource_attribute(a, c)?;
                w.and(resource.sql().trim_start_matches("WHERE ").to_string());
                w.append(resource);
            }
            Field::Any(a) => {
                let (span, resource) = (span_attribute(a, c)?, resource_attribute(a, c)?);
                w.and(format!(
                    "(({}) OR {})",
                    span.sql().trim_start_matches("WHERE "),
                    resource.sql().trim_start_matches("WHERE ")
                ));
                w.append(span).append(resource);
            }
            Field::Duration | Field::TraceDuration => {
                let us = match c.value {
                    Lit::Micros(us) => us as f64,
                    Lit::Num(s) => s * 1e6,
                    _ => {
                        return Err(bad(
                            "duration must be compared with a duration such as 100ms",
                        ))
                    }
                };
                if matches!(c.op, Op::Re | Op::NotRe) {
                    return Err(bad("regex on a duration is not supported"));
                }
                if c.field == Field::Duration {
                    w.and(format!("duration_us {} {us:?}", c.op.sql()));
                } else {
                    having.push(format!("(last_us - first_us) {} {us:?}", c.op.sql()));
                }
            }
            Field::Status | Field::Kind => {
                let (col, code) = match (&c.field, &c.value) {
                    (Field::Status, Lit::Keyword(k)) => ("status", status_code(k)),
                    (_, Lit::Keyword(k)) => ("kind", kind_code(k)),
                    _ => ("", None),
                };
                let code =
                    code.ok_or_else(|| bad(format!("unknown {:?} value {:?}", c.field, c.value)))?;
                if !matches!(c.op, Op::Eq | Op::Ne) {
                    return Err(bad("status and kind compare with = or != only"));
                }
                w.and(format!("{col} {} {code}", c.op.sql()));
            }
        }
    }
    Ok(having)
}

#[derive(Row, Deserialize)]
struct TraceRow {
    id: String,
    first_us: i64,
    last_us: i64,
    root_service: String,
    root_name: String,
}

/// Traces with at least one span (started in `[from_us, to_us]`) meeting every
/// condition, most recent first, as Tempo's search answer.
pub async fn search(
    s: &ApiState,
    conds: &[Cond],
    from_us: i64,
    to_us: i64,
    limit: u64,
    spans_per_set: u64,
) -> Result<Value, ApiError> {
    let mut w = Where::default();
    w.and("start_us >= fromUnixTimestamp64Micro(?)")
        .i64(from_us)
        .and("start_us <= fromUnixTimestamp64Micro(?)")
        .i64(to_us);
    let having = conditions(conds, &mut w)?;
    let limit = limit.min(MAX_LIMIT);
    // Without a trace-level condition, only the `limit` most recent matching traces
    // need their spans aggregated.
    let (having, inner_tail) = if having.is_empty() {
        (
            String::new(),
            format!("GROUP BY trace_id ORDER BY max(start_us) DESC LIMIT {limit}"),
        )
    } else {
        (format!("HAVING {}", having.join(" AND ")), String::new())
    };
    let sql = format!(
        "SELECT lower(hex(trace_id)) AS id, \
           toUnixTimestamp64Micro(min(spans.start_us)) AS first_us, \
           max(toUnixTimestamp64Micro(spans.start_us) + toInt64(duration_us)) AS last_us, \
           argMin(service, (parent_span_id != {ZERO_SPAN}, spans.start_us)) AS root_service, \
           argMin(name, (parent_span_id != {ZERO_SPAN}, spans.start_us)) AS root_name \
         FROM spans WHERE trace_id IN (SELECT trace_id FROM spans {} {inner_tail}) \
         GROUP BY trace_id {having} ORDER BY first_us DESC LIMIT {limit}",
        w.sql(),
    );
    let rows: Vec<TraceRow> = w.bind(s.store.client().query(&sql)).fetch_all().await?;
    let mut sets = matched_spans(s, &w, &rows, spans_per_set).await?;
    let traces: Vec<Value> = rows
        .iter()
        .map(|r| {
            let set = sets
                .remove(&r.id)
                .unwrap_or_else(|| json!({ "spans": [], "matched": 0 }));
            json!({
                "traceID": r.id,
                "rootServiceName": r.root_service,
                "rootTraceName": r.root_name,
                "startTimeUnixNano": (r.first_us * 1000).to_string(),
                "durationMs": (r.last_us - r.first_us) / 1000,
                "spanSet": set, "spanSets": [set],
            })
        })
        .collect();
    Ok(json!({ "traces": traces, "metrics": { "inspectedTraces": rows.len() } }))
}

#[derive(Row, Deserialize)]
struct MatchedSpan {
    id: String,
    span: String,
    name: String,
    begin_us: i64,
    duration_us: u64,
    matched: u64,
}

/// Per trace, its first `per_trace` spans meeting the span conditions of `w` (Tempo's
/// `spanSet`: `spans` and how many `matched`).
async fn matched_spans(
    s: &ApiState,
    w: &Where,
    traces: &[TraceRow],
    per_trace: u64,
) -> Result<std::collections::HashMap<String, Value>, ApiError> {
    let mut out = std::collections::HashMap::new();
    if traces.is_empty() || per_trace == 0 {
        return Ok(out);
    }
    // The ids are hex digits from the store: safe to inline.
    let ids: Vec<String> = traces
        .iter()
        .map(|t| format!("unhex('{}')", t.id))
        .collect();
    let sql = format!(
        "SELECT lower(hex(trace_id)) AS id, lower(hex(span_id)) AS span, name, \
           toUnixTimestamp64Micro(start_us) AS begin_us, duration_us, \
           toUInt64(count() OVER (PARTITION BY trace_id)) AS matched \
         FROM spans {} AND trace_id IN ({}) \
         ORDER BY trace_id, start_us LIMIT {per_trace} BY trace_id",
        w.sql(),
        ids.join(", ")
    );
    let rows: Vec<MatchedSpan> = w.bind(s.store.client().query(&sql)).fetch_all().await?;
    for r in rows {
        let set = out
            .entry(r.id)
            .or_insert_with(|| json!({ "spans": [], "matched": r.matched }));
        set["spans"].as_array_mut().expect("array").push(json!({
            "spanID": r.span, "name": r.name,
            "startTimeUnixNano": (r.begin_us * 1000).to_string(),
            "durationNanos": (r.duration_us * 1000).to_string(),
        }));
    }
    Ok(out)
}

#[derive(Row, Deserialize)]
struct Text {
    v: String,
}

async fn strings(s: &ApiState, sql: &str, w: &Where) -> Result<Vec<String>, ApiError> {
    let rows: Vec<Text> = w.bind(s.store.client().query(sql)).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|r| r.v)
        .filter(|v| !v.is_empty())
        .collect())
}

fn window(from_us: i64, to_us: i64) -> Where {
    let mut w = Where::default();
    w.and("start_us >= fromUnixTimestamp64Micro(?)")
        .i64(from_us)
        .and("start_us <= fromUnixTimestamp64Micro(?)")
        .i64(to_us);
    w
}

/// The intrinsic fields search accepts.
pub const INTRINSICS: &[&str] = &["duration", "kind", "name", "status", "traceDuration"];

/// Attribute keys of spans started in the window, and of all resources.
pub async fn tag_names(
    s: &ApiState,
    from_us: i64,
    to_us: i64,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let w = window(from_us, to_us);
    let span = strings(
        s,
        &format!("SELECT DISTINCT arrayJoin(mapKeys(attributes)) AS v FROM spans {} ORDER BY v LIMIT 1000", w.sql()),
        &w,
    )
    .await?;
    let mut resource = strings(
        s,
        "SELECT DISTINCT arrayJoin(mapKeys(attributes)) AS v FROM resources ORDER BY v LIMIT 1000",
        &Where::default(),
    )
    .await?;
    if !resource.iter().any(|r| r == "service.name") {
        resource.insert(0, "service.name".into());
    }
    Ok((span, resource))
}

/// Values of one tag (`resource.x`, `span.x`, `.x`, or an intrinsic), with their
/// Tempo type (`string` or `keyword`).
pub async fn tag_values(
    s: &ApiState,
    tag: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(String, &'static str)>, ApiError> {
    let keywords = |list: &[&str]| list.iter().map(|k| (k.to_string(), "keyword")).collect();
    let w = window(from_us, to_us);
    let column = |col: &str| {
        format!(
            "SELECT DISTINCT {col} AS v FROM spans {} ORDER BY v LIMIT 1000",
            w.sql()
        )
    };
    let strings_of = |v: Vec<String>| v.into_iter().map(|x| (x, "string")).collect::<Vec<_>>();
    match tag {
        "status" => return Ok(keywords(&["error", "ok", "unset"])),
        "kind" => {
            return Ok(keywords(&[
                "client",
                "consumer",
                "internal",
                "producer",
                "server",
                "unspecified",
            ]))
        }
        "resource.service.name" | "service.name" | ".service.name" | "rootServiceName" => {
            return Ok(strings_of(strings(s, &column("service"), &w).await?))
        }
        "name" | "rootName" => return Ok(strings_of(strings(s, &column("name"), &w).await?)),
        _ => {}
    }
    let (span_attr, resource_attr) = if let Some(a) = tag.strip_prefix("span.") {
        (Some(a), None)
    } else if let Some(a) = tag.strip_prefix("resource.") {
        (None, Some(a))
    } else {
        let a = tag.strip_prefix('.').unwrap_or(tag);
        (Some(a), Some(a))
    };
    let mut out = Vec::new();
    if let Some(a) = span_attr {
        let mut w = window(from_us, to_us);
        w.and("mapContains(attributes, ?)").str(a);
        let sql = format!(
            "SELECT DISTINCT attributes[?] AS v FROM spans {} ORDER BY v LIMIT 1000",
            w.sql()
        );
        let mut q = s.store.client().query(&sql).bind(a);
        q = w.bind(q);
        let rows: Vec<Text> = q.fetch_all().await?;
        out.extend(rows.into_iter().map(|r| r.v));
    }
    if let Some(a) = resource_attr {
        let mut w = Where::default();
        w.and("mapContains(attributes, ?)").str(a);
        let sql = format!(
            "SELECT DISTINCT attributes[?] AS v FROM resources FINAL {} ORDER BY v LIMIT 1000",
            w.sql()
        );
        let rows: Vec<Text> = w
            .bind(s.store.client().query(&sql).bind(a))
            .fetch_all()
            .await?;
        out.extend(rows.into_iter().map(|r| r.v));
    }
    out.sort();
    out.dedup();
    Ok(strings_of(
        out.into_iter().filter(|v| !v.is_empty()).collect(),
    ))
}
