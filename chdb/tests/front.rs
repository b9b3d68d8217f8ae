//! The ClickHouse-HTTP front on the real engine, through the `clickhouse` crate with
//! validation on, with LZ4 and without. One engine and one front per test binary (chDB
//! serves one data directory per process), on its own runtime thread; each test uses its
//! own database, so the tests run the same under `cargo test` and `cargo nextest`.

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::Instant;

use clickhouse::{Client, Compression, Row};
use serde::{Deserialize, Serialize};
use tern_chdb::{Engine, Front, FrontConfig};

/// The URL of the shared front.
fn url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let dir = tempfile::tempdir().expect("temp dir");
                let engine = Engine::open(dir.path().join("data")).expect("open engine");
                let config = FrontConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    ..FrontConfig::default()
                };
                let front = Front::bind(engine, config).await.expect("bind front");
                tx.send(front.url()).unwrap();
                // Serve until the test process exits.
                std::future::pending::<()>().await;
                drop((front, dir));
            });
        });
        rx.recv().expect("front started")
    })
}

/// A client on a fresh database `name`, with `compression`.
async fn client(name: &str, compression: Compression) -> Client {
    let root = Client::default().with_url(url());
    root.query(&format!("CREATE DATABASE IF NOT EXISTS {name}"))
        .execute()
        .await
        .expect("create database");
    Client::default()
        .with_url(url())
        .with_database(name)
        .with_compression(compression)
}

/// The column types the collector stores spans with.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Span {
    trace_id: [u8; 16],
    start_us: i64,
    service: String,
    attributes: Vec<(String, String)>,
    duration_ns: u64,
    status: u8,
    ports: Vec<u16>,
}

const CREATE_SPANS: &str = "CREATE TABLE spans (
    trace_id FixedString(16),
    start_us DateTime64(6),
    service LowCardinality(String),
    attributes Map(LowCardinality(String), String),
    duration_ns UInt64,
    status UInt8,
    ports Array(UInt16)
) ENGINE = MergeTree ORDER BY (service, start_us, trace_id)";

fn span(i: u64) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&i.to_be_bytes());
    trace_id[8..].copy_from_slice(&(i * 7919).to_le_bytes());
    Span {
        trace_id,
        start_us: 1_750_000_000_000_000 + i as i64 * 1_000,
        service: format!("service-{}", i % 7),
        attributes: (0..(i % 3))
            .map(|k| (format!("key.{k}"), format!("value {i}/{k}")))
            .collect(),
        duration_ns: i * 1_013 % 5_000_000,
        status: (i % 3) as u8,
        ports: (0..(i % 4) as u16).map(|p| 8000 + p).collect(),
    }
}

async fn insert_spans(client: &Client, rows: u64) -> f64 {
    client
        .query(CREATE_SPANS)
        .execute()
        .await
        .expect("create table");
    let started = Instant::now();
    let mut insert = client.insert::<Span>("spans").await.expect("start insert");
    for i in 0..rows {
        insert.write(&span(i)).await.expect("write row");
    }
    insert.end().await.expect("end insert");
    rows as f64 / started.elapsed().as_secs_f64()
}

async fn round_trip(database: &str, compression: Compression) {
    let client = client(database, compression).await;
    let rows = 100_000;
    let rate = insert_spans(&client, rows).await;
    eprintln!(
        "{database}: inserted {rows} rows through the front at {rate:.0} rows/s (debug build)"
    );

    let started = Instant::now();
    let back = client
        .query("SELECT ?fields FROM spans ORDER BY duration_ns, trace_id")
        .fetch_all::<Span>()
        .await
        .expect("fetch all");
    eprintln!(
        "{database}: fetched {} rows in {:?}",
        back.len(),
        started.elapsed()
    );
    let mut expected: Vec<Span> = (0..rows).map(span).collect();
    expected.sort_by_key(|a| (a.duration_ns, a.trace_id));
    assert_eq!(back.len(), expected.len());
    assert!(back == expected, "rows differ after the round trip");
}

#[tokio::test]
async fn round_trips_100k_rows_with_lz4() {
    round_trip("with_lz4", Compression::Lz4).await;
}

#[tokio::test]
async fn round_trips_100k_rows_without_compression() {
    round_trip("without_compression", Compression::None).await;
}

#[tokio::test]
async fn aggregates_and_binds_parameters() {
    let client = client("aggregates", Compression::Lz4).await;
    insert_spans(&client, 10_000).await;

    #[derive(Debug, Row, Deserialize)]
    struct PerService {
        service: String,
        count: u64,
        errors: u64,
        p99: f64,
    }
    let per_service = client
        .query(
            "SELECT service, count() AS count, countIf(status = 2) AS errors,
                    quantile(0.99)(duration_ns) AS p99
             FROM spans WHERE start_us >= fromUnixTimestamp64Micro(?) GROUP BY service ORDER BY service",
        )
        .bind(1_750_000_000_000_000i64)
        .fetch_all::<PerService>()
        .await
        .expect("aggregate");
    assert_eq!(per_service.len(), 7);
    assert_eq!(per_service.iter().map(|s| s.count).sum::<u64>(), 10_000);
    assert_eq!(per_service[0].service, "service-0");
    assert!(per_service.iter().all(|s| s.errors > 0 && s.p99 > 0.0));

    // Client-side `?` binding and server-side `{name:Type}` parameters.
    let count = client
        .query("SELECT count() FROM spans WHERE service = ? AND status = ?")
        .bind("service-3")
        .bind(1u8)
        .fetch_one::<u64>()
        .await
        .expect("bound query");
    let expected = (0..10_000u64).filter(|i| i % 7 == 3 && i % 3 == 1).count() as u64;
    assert_eq!(count, expected);
    let count = client
        .query("SELECT count() FROM spans WHERE service = {svc:String} AND status = {st:UInt8}")
        .param("svc", "service-3")
        .param("st", 1u8)
        .fetch_one::<u64>()
        .await
        .expect("server-side parameters");
    assert_eq!(count, expected);
}

#[tokio::test]
async fn a_bad_query_reports_clickhouse_message() {
    let client = client("errors", Compression::Lz4).await;
    let err = client
        .query("SELECT count() FROM no_such_table")
        .fetch_one::<u64>()
        .await
        .expect_err("unknown table");
    let text = err.to_string();
    assert!(
        text.contains("Code: 60") && text.contains("UNKNOWN_TABLE"),
        "{text}"
    );

    let err = client.query("SELEC 1").execute().await.expect_err("syntax");
    assert!(err.to_string().contains("SYNTAX_ERROR"), "{err}");

    let err = client
        .insert::<Span>("no_such_table")
        .await
        .err()
        .expect("insert into an unknown table");
    assert!(err.to_string().contains("UNKNOWN_TABLE"), "{err}");
}

#[tokio::test]
async fn an_error_after_the_first_block_still_reaches_the_client() {
    for compression in [Compression::Lz4, Compression::None] {
        let client = client("late_errors", compression).await;
        let err = client
            .query("SELECT throwIf(number = 300000) FROM numbers(1000000) SETTINGS max_block_size = 1000")
            .fetch_all::<u8>()
            .await
            .expect_err("throwIf fires mid-stream");
        assert!(
            err.to_string()
                .contains("FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn inserts_with_a_wrong_row_type_are_refused_by_validation() {
    let client = client("validation", Compression::Lz4).await;
    client.query(CREATE_SPANS).execute().await.unwrap();
    #[derive(Row, Serialize)]
    struct Wrong {
        trace_id: String,
    }
    let result = async {
        let mut insert = client.insert::<Wrong>("spans").await?;
        insert
            .write(&Wrong {
                trace_id: "x".into(),
            })
            .await?;
        insert.end().await
    }
    .await;
    assert!(result.is_err());
}

#[test]
fn answers_ping_and_plain_http() {
    let addr = url().trim_start_matches("http://").to_owned();
    let get = |request: String| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let ping = get("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into());
    assert!(
        ping.starts_with("HTTP/1.1 200") && ping.ends_with("\r\n\r\nOk.\n"),
        "{ping}"
    );
    let select =
        get("GET /?query=SELECT%201%2B1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into());
    assert!(
        select.ends_with("\r\n2\n")
            || select.contains("\r\n\r\n2\n")
            || select.contains("\r\n2\r\n"),
        "{select}"
    );
    let write = get(
        "GET /?query=CREATE%20TABLE%20t%20(a%20UInt8)%20ENGINE%3DMemory HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            .into(),
    );
    assert!(
        write.starts_with("HTTP/1.1 403") && write.contains("READONLY"),
        "{write}"
    );
}
