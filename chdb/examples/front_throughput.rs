//! Prints insert and query figures for the front, side by side with the engine called
//! directly. A measurement, not a test: run it in release mode.
//!
//! ```text
//! cargo run --release -p tern-chdb --example front_throughput [rows]
//! ```

use std::time::{Duration, Instant};

use clickhouse::{Client, Compression, Row};
use serde::{Deserialize, Serialize};
use tern_chdb::{Engine, Front, FrontConfig, QueryOptions};

#[derive(Row, Serialize)]
struct Span {
    trace_id: [u8; 16],
    start_us: i64,
    service: String,
    attributes: Vec<(String, String)>,
    duration_ns: u64,
    status: u8,
    ports: Vec<u16>,
}

#[derive(Row, Deserialize)]
struct Point {
    _trace_id: [u8; 16],
    _duration_ns: u64,
}

const COLUMNS: &str = "trace_id FixedString(16), start_us DateTime64(6),
    service LowCardinality(String), attributes Map(LowCardinality(String), String),
    duration_ns UInt64, status UInt8, ports Array(UInt16)";

fn span(i: u64) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&i.to_be_bytes());
    Span {
        trace_id,
        start_us: 1_750_000_000_000_000 + i as i64 * 1_000,
        service: format!("service-{}", i % 7),
        attributes: vec![
            ("http.route".into(), format!("/api/{}", i % 50)),
            ("http.method".into(), "GET".into()),
        ],
        duration_ns: i * 1_013 % 5_000_000,
        status: (i % 3) as u8,
        ports: vec![8080],
    }
}

async fn insert_through_front(client: &Client, table: &str, rows: u64) -> f64 {
    client
        .query(&format!(
            "CREATE TABLE {table} ({COLUMNS}) ENGINE = MergeTree ORDER BY (service, start_us)"
        ))
        .execute()
        .await
        .unwrap();
    let started = Instant::now();
    let mut insert = client.insert::<Span>(table).await.unwrap();
    for i in 0..rows {
        insert.write(&span(i)).await.unwrap();
    }
    insert.end().await.unwrap();
    rows as f64 / started.elapsed().as_secs_f64()
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    format!("p50 {:?}, p99 {:?}", at(0.5), at(0.99))
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let engine = tokio::task::spawn_blocking({
        let path = dir.path().join("data");
        move || Engine::open(path).unwrap()
    })
    .await
    .unwrap();
    println!(
        "engine open: {:?}, rss {} MiB",
        started.elapsed(),
        rss_mib()
    );
    let front = Front::bind(
        engine.clone(),
        FrontConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..FrontConfig::default()
        },
    )
    .await
    .unwrap();

    // Direct engine insert of the same rows as RowBinary, for comparison.
    let direct = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            engine
                .query(
                    &format!("CREATE TABLE direct ({COLUMNS}) ENGINE = MergeTree ORDER BY (service, start_us)"),
                    "TSV",
                )
                .unwrap();
            let mut data = Vec::new();
            for i in 0..rows {
                let row = span(i);
                data.extend_from_slice(&row.trace_id);
                data.extend_from_slice(&row.start_us.to_le_bytes());
                data.push(row.service.len() as u8);
                data.extend_from_slice(row.service.as_bytes());
                data.push(row.attributes.len() as u8);
                for (k, v) in &row.attributes {
                    data.push(k.len() as u8);
                    data.extend_from_slice(k.as_bytes());
                    data.push(v.len() as u8);
                    data.extend_from_slice(v.as_bytes());
                }
                data.extend_from_slice(&row.duration_ns.to_le_bytes());
                data.push(row.status);
                data.push(row.ports.len() as u8);
                for p in &row.ports {
                    data.extend_from_slice(&p.to_le_bytes());
                }
            }
            let started = Instant::now();
            let mut insert = engine
                .insert_stream("INSERT INTO direct FORMAT RowBinary", &QueryOptions::default())
                .unwrap();
            for chunk in data.chunks(1 << 20) {
                insert.append(chunk).unwrap();
            }
            insert.finish().unwrap();
            rows as f64 / started.elapsed().as_secs_f64()
        })
        .await
        .unwrap()
    };

    let lz4 = Client::default().with_url(front.url());
    let plain = Client::default()
        .with_url(front.url())
        .with_compression(Compression::None);
    let via_lz4 = insert_through_front(&lz4, "via_lz4", rows).await;
    let via_plain = insert_through_front(&plain, "via_plain", rows).await;
    let (a, b) = tokio::join!(
        insert_through_front(&lz4, "parallel_a", rows / 2),
        insert_through_front(&lz4, "parallel_b", rows / 2)
    );
    println!("insert {rows} rows (7 columns incl. Map, Array, LowCardinality):");
    println!("  engine direct, RowBinary stream   {direct:>12.0} rows/s");
    println!("  front, clickhouse crate, lz4      {via_lz4:>12.0} rows/s");
    println!("  front, clickhouse crate, none     {via_plain:>12.0} rows/s");
    println!(
        "  front, two inserts at once        {:>12.0} rows/s together",
        // Each did rows/2; their rates add up to the combined throughput.
        a + b
    );

    for (name, client) in [("lz4", &lz4), ("none", &plain)] {
        let mut trivial = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            client.query("SELECT 1").fetch_one::<u8>().await.unwrap();
            trivial.push(t.elapsed());
        }
        let mut aggregate = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            client
                .query("SELECT service, count(), quantile(0.99)(duration_ns) FROM via_lz4 GROUP BY service")
                .fetch_all::<(String, u64, f64)>()
                .await
                .unwrap();
            aggregate.push(t.elapsed());
        }
        let t = Instant::now();
        let all = client
            .query("SELECT trace_id AS _trace_id, duration_ns AS _duration_ns FROM via_lz4")
            .fetch_all::<Point>()
            .await
            .unwrap();
        println!(
            "queries ({name}): SELECT 1 {}; group-by over {rows} rows {}; fetch {} rows {:?}",
            percentiles(trivial),
            percentiles(aggregate),
            all.len(),
            t.elapsed()
        );
    }
    let mut direct_trivial = Vec::new();
    for _ in 0..200 {
        let engine = engine.clone();
        let t = Instant::now();
        tokio::task::spawn_blocking(move || engine.query("SELECT 1", "RowBinary").unwrap())
            .await
            .unwrap();
        direct_trivial.push(t.elapsed());
    }
    println!(
        "queries (engine direct): SELECT 1 {}",
        percentiles(direct_trivial)
    );
    println!("rss at the end: {} MiB", rss_mib());
    front.shutdown().await;
}
