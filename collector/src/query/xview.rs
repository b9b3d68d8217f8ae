//! The X-View: every finished transaction as a point (end time × elapsed), and the
//! transactions inside a box of it.
//!
//! When a range holds more points than asked for, the answer is reduced honestly and
//! says how: every failed transaction and every one at or above the range's p99 is kept,
//! and the rest are a deterministic sample (by span id hash), so the same request gives
//! the same points and outliers never vanish.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::params::{parse, txid, Filters, Range};
use super::{now_ms, ApiError, ApiResult, ApiState, Where};
use crate::model::rows::TransactionRow;

/// The filters every X-View query shares, on the `transactions` table.
pub fn transaction_filter(f: &Filters, r: Range) -> Result<Where, ApiError> {
    let mut w = Where::default();
    w.and("end_ms >= fromUnixTimestamp64Milli(toInt64(?))")
        .i64(r.from_ms)
        .and("end_ms < fromUnixTimestamp64Milli(toInt64(?))")
        .i64(r.to_ms);
    if let Some(s) = &f.service {
        w.and("service = ?").str(s);
    }
    if let Some(i) = &f.instance {
        w.and("instance = ?").str(i);
    }
    if let Some(e) = &f.endpoint {
        w.and("endpoint = ?").str(e);
    }
    if f.errors_only {
        w.and("error = 1");
    }
    let (lo, hi) = f.elapsed_us()?;
    if let Some(lo) = lo {
        w.and("elapsed_us >= ?").u64(lo);
    }
    if let Some(hi) = hi {
        w.and("elapsed_us <= ?").u64(hi);
    }
    if let Some(id) = &f.txid {
        let (trace, span) = txid(id)?;
        w.and("trace_id = unhex(?)").str(&hex::encode(trace));
        if let Some(span) = span {
            w.and("span_id = unhex(?)").str(&hex::encode(span));
        }
    }
    Ok(w)
}

#[derive(Row, Deserialize)]
struct Census {
    total: u64,
    errors: u64,
    p99_us: f64,
}

#[derive(Row, Deserialize)]
struct Point {
    end_ms: i64,
    elapsed_us: u64,
    error: u8,
    trace_id: [u8; 16],
    span_id: [u8; 8],
}

/// Columnar X-View points (end time, elapsed, error flag, `trace:span` id): compact to
/// send, straight into typed arrays in the browser. The live push adds label columns.
#[derive(Serialize, Default)]
pub struct Points {
    end_ms: Vec<i64>,
    elapsed_ms: Vec<f64>,
    error: Vec<u8>,
    id: Vec<String>,
}

impl Points {
    pub fn push(&mut self, end_ms: i64, elapsed_ms: f64, error: bool, id: String) {
        self.end_ms.push(end_ms);
        self.elapsed_ms.push(elapsed_ms);
        self.error.push(u8::from(error));
        self.id.push(id);
    }
}

/// `GET /api/v1/xview`
pub async fn points(s: &ApiState, q: Option<&str>) -> ApiResult {
    let f: Filters = parse(q)?;
    let r = f.range(now_ms())?;
    let limit = f.limit(s.config.max_points, s.config.max_points)?;
    let w = transaction_filter(&f, r)?;
    let census: Census = w
        .bind(s.store.client().query(&format!(
            "SELECT count() AS total, countIf(error = 1) AS errors, \
             toFloat64(ifNotFinite(quantile(0.99)(elapsed_us), 0)) AS p99_us FROM transactions {}",
            w.sql()
        )))
        .fetch_one()
        .await?;
    let reduced = census.total > limit;
    let (sample_clause, reduction) = if reduced {
        let keep_always = census.errors + census.total / 100;
        let room = limit.saturating_sub(keep_always.min(limit));
        let rest = census.total.saturating_sub(keep_always).max(1);
        let ppm = ((room as f64 / rest as f64) * 1e6).floor() as u64;
        (
            format!(
                " AND (error = 1 OR elapsed_us >= {} OR cityHash64(span_id) % 1000000 < {ppm})",
                census.p99_us.ceil() as u64
            ),
            json!({
                "method": "kept every failed transaction and every one at or above the range's p99; sampled the rest deterministically by span id",
                "p99_ms": census.p99_us / 1000.0,
                "sample_ratio": ppm as f64 / 1e6,
            }),
        )
    } else {
        (String::new(), serde_json::Value::Null)
    };
    let rows: Vec<Point> = w
        .bind(s.store.client().query(&format!(
            "SELECT end_ms, elapsed_us, error, trace_id, span_id \
             FROM transactions {}{sample_clause} ORDER BY error DESC, elapsed_us DESC LIMIT {limit}",
            w.sql()
        )))
        .fetch_all()
        .await?;
    // If the reduction still overflows the limit, failures and the slowest are kept first.
    let mut rows = rows;
    rows.sort_unstable_by_key(|r| r.end_ms);
    let mut p = Points::default();
    for row in &rows {
        let id = format!("{}:{}", hex::encode(row.trace_id), hex::encode(row.span_id));
        p.push(
            row.end_ms,
            row.elapsed_us as f64 / 1000.0,
            row.error != 0,
            id,
        );
    }
    Ok(json!({
        "from": r.from_ms, "to": r.to_ms,
        "total": census.total, "returned": rows.len(), "reduced": reduced, "reduction": reduction,
        "points": p,
    })
    .into())
}

/// A transaction summary as every API answer shows it.
pub fn summary_json(t: &TransactionRow) -> serde_json::Value {
    json!({
        "txid": format!("{}:{}", hex::encode(t.trace_id), hex::encode(t.span_id)),
        "trace_id": hex::encode(t.trace_id), "span_id": hex::encode(t.span_id),
        "end_ms": t.end_ms, "start_ms": t.end_ms - (t.elapsed_us / 1000) as i64,
        "elapsed_ms": t.elapsed_us as f64 / 1000.0,
        "service": t.service, "instance": t.instance, "endpoint": t.endpoint,
        "http_method": t.http_method, "http_status": t.http_status,
        "error": t.error == 1, "error_type": t.error_type, "error_message": t.error_message,
        "cpu_ms": t.cpu_us as f64 / 1000.0,
        "sql_count": t.sql_count, "sql_ms": t.sql_us as f64 / 1000.0,
        "external_count": t.ext_count, "external_ms": t.ext_us as f64 / 1000.0,
        "fetch_ms": t.fetch_us as f64 / 1000.0,
        "client_address": t.client_address, "user_id": t.user_id,
    })
}

/// `GET /api/v1/transactions` — the transactions inside a box (time × elapsed).
pub async fn transactions(s: &ApiState, q: Option<&str>) -> ApiResult {
    let f: Filters = parse(q)?;
    let r = f.range(now_ms())?;
    let limit = f.limit(1000, s.config.max_rows)?;
    let w = transaction_filter(&f, r)?;
    let total: u64 = w
        .bind(
            s.store
                .client()
                .query(&format!("SELECT count() FROM transactions {}", w.sql())),
        )
        .fetch_one()
        .await?;
    let rows: Vec<TransactionRow> = w
        .bind(s.store.client().query(&format!(
            "SELECT ?fields FROM transactions {} ORDER BY end_ms LIMIT {limit}",
            w.sql()
        )))
        .fetch_all()
        .await?;
    let list: Vec<_> = rows.iter().map(summary_json).collect();
    Ok(json!({
        "from": r.from_ms, "to": r.to_ms, "total": total, "returned": list.len(),
        "truncated": total > list.len() as u64, "transactions": list,
    })
    .into())
}
