//! The engine through its Rust API, on the real `libchdb.so`. One engine per test binary
//! (chDB serves one data directory per process); each test uses its own database.

use std::sync::OnceLock;
use std::time::Instant;

use tern_chdb::{Engine, Error, QueryOptions};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<(Engine, tempfile::TempDir)> = OnceLock::new();
    &ENGINE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let engine = Engine::open(dir.path().join("data")).expect("open engine");
            (engine, dir)
        })
        .0
}

fn database(name: &str) -> QueryOptions {
    engine()
        .query(&format!("CREATE DATABASE IF NOT EXISTS {name}"), "TSV")
        .expect("create database");
    QueryOptions {
        database: Some(name.into()),
        ..Default::default()
    }
}

fn text(engine: &Engine, sql: &str, options: &QueryOptions) -> String {
    let out = engine.query_with(sql, "TSV", options).expect(sql);
    String::from_utf8(out.data.to_vec()).unwrap()
}

#[test]
fn runs_a_query_and_reports_the_version() {
    let out = engine().query("SELECT 1 + 1", "TSV").unwrap();
    assert_eq!(&out.data[..], b"2\n");
    assert!(engine().version().starts_with("26."));
}

#[test]
fn reopening_the_same_directory_shares_the_engine() {
    let again = Engine::open(engine().path()).expect("same directory");
    assert_eq!(again.path(), engine().path());
    let other = tempfile::tempdir().unwrap();
    let err = Engine::open(other.path()).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");
}

#[test]
fn carries_clickhouse_error_text_and_code() {
    let err = engine()
        .query("SELECT * FROM no_such_table", "TSV")
        .unwrap_err();
    assert_eq!(err.code(), Some(60), "{err}");
    assert!(err.to_string().contains("UNKNOWN_TABLE"), "{err}");
}

#[test]
fn binds_parameters() {
    let options = QueryOptions {
        params: vec![("x".into(), "41".into()), ("s".into(), "it's".into())],
        ..Default::default()
    };
    let out = text(engine(), "SELECT {x:UInt32} + 1, {s:String}", &options);
    assert_eq!(out, "42\tit\\'s\n");
}

#[test]
fn settings_apply_to_one_statement_only() {
    let with = QueryOptions {
        settings: vec![("max_threads".into(), "3".into())],
        ..Default::default()
    };
    let sql = "SELECT getSetting('max_threads')";
    assert_eq!(text(engine(), sql, &with), "3\n");
    for _ in 0..4 {
        assert_ne!(text(engine(), sql, &QueryOptions::default()), "3\n");
    }
}

#[test]
fn set_and_use_statements_do_not_leak_into_later_queries() {
    let options = database("leak");
    engine().query("SET max_threads = 5", "TSV").unwrap();
    engine().query_with("USE leak", "TSV", &options).unwrap();
    for _ in 0..4 {
        assert_eq!(
            text(
                engine(),
                "SELECT currentDatabase(), getSetting('max_threads') = 5",
                &QueryOptions::default()
            ),
            "default\t0\n"
        );
    }
}

#[test]
fn read_only_refuses_writes() {
    let options = QueryOptions {
        read_only: true,
        ..database("ro")
    };
    assert_eq!(text(engine(), "SELECT 1", &options), "1\n");
    let err = engine()
        .query_with("CREATE TABLE t (a UInt8) ENGINE = Memory", "TSV", &options)
        .unwrap_err();
    assert_eq!(err.code(), Some(164), "{err}");
}

#[test]
fn inserts_row_binary_in_chunks_and_streams_it_back() {
    let options = database("ins");
    engine()
        .query_with(
            "CREATE TABLE t (a UInt64, s String) ENGINE = MergeTree ORDER BY a",
            "TSV",
            &options,
        )
        .unwrap();
    let rows = 200_000u64;
    let mut data = Vec::new();
    for i in 0..rows {
        data.extend_from_slice(&i.to_le_bytes());
        let s = format!("row-{i}");
        data.push(s.len() as u8);
        data.extend_from_slice(s.as_bytes());
    }
    let started = Instant::now();
    let mut insert = engine()
        .insert_stream("INSERT INTO t (a, s) FORMAT RowBinary", &options)
        .unwrap();
    for chunk in data.chunks(100_003) {
        insert.append(chunk).unwrap();
    }
    let stats = insert.finish().unwrap();
    eprintln!(
        "engine insert: {rows} rows in {:?} ({:.0} rows/s)",
        started.elapsed(),
        rows as f64 / started.elapsed().as_secs_f64()
    );
    assert_eq!(stats.written_rows, rows);

    let stream = engine()
        .query_stream(
            "SELECT a, s FROM t ORDER BY a",
            "RowBinaryWithNamesAndTypes",
            &options,
        )
        .unwrap();
    let mut all = Vec::new();
    let mut chunks = 0;
    for chunk in stream {
        all.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    let whole = engine()
        .query_with(
            "SELECT a, s FROM t ORDER BY a",
            "RowBinaryWithNamesAndTypes",
            &options,
        )
        .unwrap();
    assert!(chunks > 1, "expected several chunks");
    assert_eq!(all.len(), whole.data.len());
    assert!(all == whole.data[..]);
}

#[test]
fn a_bad_insert_reports_the_engine_error() {
    let options = database("badins");
    let err = engine()
        .insert_stream("INSERT INTO missing FORMAT RowBinary", &options)
        .err()
        .expect("unknown table");
    assert_eq!(err.code(), Some(60), "{err}");
    let err = engine()
        .insert_stream("INSERT INTO t VALUES", &options)
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[test]
fn concurrent_queries_run_on_separate_connections() {
    let sql = "SELECT sum(cityHash64(number)) FROM numbers(20000000) SETTINGS max_threads = 1";
    let started = Instant::now();
    engine().query(sql, "TSV").unwrap();
    let one = started.elapsed();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| engine().query(sql, "TSV").unwrap());
        }
    });
    eprintln!("one query {one:?}; two at once {:?}", started.elapsed());
}
