//! Query times over a large store: transactions (and two spans each) seeded by SQL into
//! a release collector's embedded store, then the API timed end to end over HTTP.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::collector::Collector;
use crate::pct;

#[derive(clap::Args)]
pub struct Options {
    /// Transactions to store (each with two spans).
    #[arg(long, default_value_t = 10_000_000)]
    transactions: u64,
    /// Hours the transactions are spread over (ending now).
    #[arg(long, default_value_t = 10)]
    hours: u64,
    /// Timed repetitions per query.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
}

const SEED_TRANSACTIONS: &str = "INSERT INTO tern.transactions SELECT
  fromUnixTimestamp64Milli(toInt64({now} - intDiv(number * {window}, {n}))) AS end_ms,
  toUInt64(greatest(100, exp(randNormal(9.0, 1.0)))) AS elapsed_us,
  ['shop-frontend','order-service','payment-service','inventory-service','notification-worker'][number % 5 + 1] AS service,
  concat(service, '-', toString(number % 3)) AS instance,
  concat('GET /api/e', toString(intDiv(number, 5) % 40)) AS endpoint,
  'GET' AS http_method,
  toUInt16(if(number % 100 = 0, 500, 200)) AS http_status,
  toUInt8(number % 100 = 0) AS error,
  if(number % 100 = 0, 'HTTP 500', '') AS error_type,
  '' AS error_message,
  intDiv(elapsed_us, 3) AS cpu_us,
  toUInt32(number % 4) AS sql_count, intDiv(elapsed_us, 4) AS sql_us,
  toUInt32(number % 2) AS ext_count, intDiv(elapsed_us, 5) AS ext_us, toUInt64(0) AS fetch_us,
  '10.0.0.1' AS client_address, '' AS user_id,
  toFixedString(concat(reinterpretAsString(cityHash64(number)), reinterpretAsString(cityHash64(number, 1))), 16) AS trace_id,
  toFixedString(reinterpretAsString(cityHash64(number, 2)), 8) AS span_id
FROM numbers({n})";

const SEED_SPANS: &str = "INSERT INTO tern.spans SELECT
  trace_id,
  if(k = 0, span_id, toFixedString(reinterpretAsString(cityHash64(span_id, 7)), 8)) AS sid,
  if(k = 0, toFixedString(unhex('0000000000000000'), 8), span_id) AS parent,
  fromUnixTimestamp64Micro(toInt64(toUnixTimestamp64Milli(end_ms)) * 1000 - toInt64(elapsed_us) + k * 100) AS start_us,
  if(k = 0, elapsed_us, intDiv(elapsed_us, 4)) AS duration_us,
  service, instance,
  if(k = 0, endpoint, 'SELECT') AS name,
  toUInt8(if(k = 0, 2, 3)) AS kind, toUInt8(if(k = 0, 1, 2)) AS category,
  toUInt8(if(k = 0 AND error = 1, 2, 0)) AS status, '' AS status_message,
  if(k = 0, error_type, '') AS error_type,
  if(k = 1, cityHash64(cityHash64(span_id) % 50), 0) AS sql_hash,
  if(k = 1, 'mysql', '') AS target, 'bench' AS scope,
  if(k = 1, map('db.system', 'mysql', 'db.statement', concat('SELECT * FROM t', toString(cityHash64(span_id) % 50), ' WHERE id = ', toString(cityHash64(span_id, 3) % 100000))),
            map('http.method', 'GET', 'http.route', endpoint)) AS attributes,
  '' AS events
FROM tern.transactions ARRAY JOIN [0, 1] AS k";

fn time(url: &str, repeat: usize) -> anyhow::Result<(Vec<f64>, serde_json::Value)> {
    let client = reqwest::blocking::Client::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..2 {
        client.get(url).send()?.error_for_status()?;
    }
    let mut ms = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        last = client.get(url).send()?.error_for_status()?.json()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms, last))
}

pub fn run(bin_dir: &Path, o: Options) -> anyhow::Result<()> {
    let c = Collector::start(bin_dir, &[])?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let window = o.hours as i64 * 3_600_000;
    println!(
        "query: seeding {} transactions over {} h and {} spans by SQL ...",
        o.transactions,
        o.hours,
        2 * o.transactions
    );
    let t = Instant::now();
    c.sql(
        &SEED_TRANSACTIONS
            .replace("{now}", &now.to_string())
            .replace("{window}", &window.to_string())
            .replace("{n}", &o.transactions.to_string()),
    )?;
    c.sql(SEED_SPANS)?;
    println!("  seeded in {:.0} s", t.elapsed().as_secs_f64());
    let stored = c.sql("SELECT (SELECT count() FROM tern.transactions), (SELECT count() FROM tern.spans) FORMAT TSV")?;
    println!(
        "  stored: transactions, spans = {}",
        stored.trim().replace('\t', ", ")
    );
    let ids = c.sql("SELECT lower(hex(trace_id)), lower(hex(span_id)) FROM tern.transactions ORDER BY cityHash64(span_id) LIMIT 20 FORMAT TSV")?;
    let ids: Vec<(String, String)> = ids
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();

    let hour = format!("from={}&to={}", now - 3_600_000, now);
    let api = &c.api;
    let mut rows: Vec<(String, Vec<f64>, String, &str)> = Vec::new();
    let (ms, v) = time(&format!("{api}/api/v1/xview?{hour}"), o.repeat)?;
    rows.push((
        "X-View points, last hour".into(),
        ms,
        format!("{} of {} points", v["returned"], v["total"]),
        "300",
    ));
    let (ms, v) = time(&format!("{api}/api/v1/endpoints?{hour}"), o.repeat)?;
    rows.push((
        "endpoint stats with p99, last hour".into(),
        ms,
        format!(
            "{} endpoints",
            v["endpoints"].as_array().map_or(0, Vec::len)
        ),
        "50",
    ));
    let (ms, v) = time(
        &format!("{api}/api/v1/transactions?{hour}&min_elapsed_ms=100&limit=1000"),
        o.repeat,
    )?;
    rows.push((
        "transactions in a box (>=100 ms, last hour)".into(),
        ms,
        format!("{} of {}", v["returned"], v["total"]),
        "-",
    ));
    let (ms, v) = time(&format!("{api}/api/v1/sql?{hour}"), o.repeat)?;
    rows.push((
        "top SQL, last hour".into(),
        ms,
        format!(
            "{} statements",
            v["statements"].as_array().map_or(0, Vec::len)
        ),
        "-",
    ));
    let mut trace_ms = Vec::new();
    let mut txn_ms = Vec::new();
    for (trace, span) in ids.iter().cycle().take(o.repeat) {
        let (mut a, _) = time(&format!("{api}/api/v1/traces/{trace}"), 1)?;
        trace_ms.append(&mut a);
        let (mut b, _) = time(&format!("{api}/api/v1/transactions/{trace}/{span}"), 1)?;
        txn_ms.append(&mut b);
    }
    trace_ms.sort_by(f64::total_cmp);
    txn_ms.sort_by(f64::total_cmp);
    rows.push(("trace by id".into(), trace_ms, "2 spans".into(), "30"));
    rows.push((
        "one transaction with its call tree".into(),
        txn_ms,
        "".into(),
        "-",
    ));

    println!();
    println!(
        "{:<46} {:>9} {:>9} {:>11}  answer",
        "over the seeded store, through the HTTP API", "p50 ms", "p99 ms", "target ms"
    );
    for (name, ms, note, target) in rows {
        println!(
            "{:<46} {:>9.1} {:>9.1} {:>11}  {}",
            name,
            pct(&ms, 0.5),
            pct(&ms, 0.99),
            target,
            note
        );
    }
    Ok(())
}
