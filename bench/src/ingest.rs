//! Sustained ingest: `tern-loadgen` at full speed into a release collector with its
//! embedded store. The figure is spans per second *written to the store* (not merely
//! accepted), over a window after warm-up; probes measure ingest-to-queryable latency.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::collector::Collector;
use crate::pct;

#[derive(clap::Args)]
pub struct Options {
    /// Seconds of measured load (after warm-up).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Concurrent requests of the load tool.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Traces per request.
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// Traces per second of load (0: as fast as the collector takes them). Measure
    /// ingest-to-queryable latency below capacity, else it is just the queue's depth.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Load protocol: grpc or http-protobuf.
    #[arg(long, default_value = "grpc")]
    protocol: String,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn probe_request(n: u64) -> (String, Vec<u8>) {
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&0x7e57_0000_0000_0000u64.to_be_bytes());
    trace[8..].copy_from_slice(&(n + 1).to_be_bytes());
    let span = ((n + 1) | (1 << 63)).to_be_bytes();
    let end = now_ns();
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "probe")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace.to_vec(),
                    span_id: span.to_vec(),
                    name: "GET /probe".into(),
                    kind: SpanKind::Server as i32,
                    start_time_unix_nano: end - 1_000_000,
                    end_time_unix_nano: end,
                    attributes: vec![kv("http.request.method", "GET"), kv("http.route", "/probe")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (
        format!("{}:{}", hex(&trace), hex(&span)),
        req.encode_to_vec(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Sends a probe every 250 ms and measures until the API returns it.
fn probe_loop(api: &str, otlp_http: &str, stop: &AtomicBool, out: &Mutex<Vec<f64>>) {
    let client = reqwest::blocking::Client::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (txid, body) = probe_request(n);
        let sent = Instant::now();
        let ok = client
            .post(format!("{otlp_http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .is_ok_and(|r| r.status().is_success());
        if ok {
            let url = format!("{api}/api/v1/transactions?from=0&service=probe&txid={txid}");
            while sent.elapsed() < Duration::from_secs(30) {
                let found = client
                    .get(&url)
                    .send()
                    .ok()
                    .and_then(|r| r.json::<serde_json::Value>().ok())
                    .is_some_and(|v| v["returned"] == 1);
                if found {
                    out.lock()
                        .unwrap()
                        .push(sent.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn run(bin_dir: &Path, o: Options) -> anyhow::Result<()> {
    let c = Collector::start(bin_dir, &[])?;
    let total = o.warmup + o.seconds;
    let rate = if o.rate == 0 {
        "full rate".to_string()
    } else {
        format!("{} traces/s", o.rate)
    };
    println!("ingest: load tool {} at {rate}, {} s warm-up + {} s measured, concurrency {}, batch {} traces",
        o.protocol, o.warmup, o.seconds, o.concurrency, o.batch);
    let load = Command::new(bin_dir.join("tern-loadgen"))
        .args([
            "--endpoint",
            if o.protocol == "grpc" {
                &c.otlp_grpc
            } else {
                &c.otlp_http
            },
        ])
        .args([
            "--protocol",
            &o.protocol,
            "--rate",
            &o.rate.to_string(),
            "--replay",
            "64",
        ])
        .args([
            "--concurrency",
            &o.concurrency.to_string(),
            "--batch",
            &o.batch.to_string(),
        ])
        .args(["--duration", &format!("{total}s"), "--report-every", "10s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting tern-loadgen")?;

    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let (stop, lat) = (stop.clone(), latencies.clone());
        let (api, http) = (c.api.clone(), c.otlp_http.clone());
        std::thread::spawn(move || probe_loop(&api, &http, &stop, &lat))
    };

    std::thread::sleep(Duration::from_secs(o.warmup));
    latencies.lock().unwrap().clear();
    let (w0, a0, t0) = (
        c.metric("tern_store_spans_written_total")?,
        c.metric("tern_ingest_spans_accepted_total")?,
        Instant::now(),
    );
    let mut max_backlog = 0u64;
    for s in 1..=o.seconds {
        std::thread::sleep(Duration::from_secs(1));
        max_backlog = max_backlog.max(c.metric("tern_wal_used_bytes")?);
        if s % 10 == 0 {
            let w = c.metric("tern_store_spans_written_total")?;
            println!(
                "  {s:>3} s: {:>9.0} spans/s written so far",
                (w - w0) as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (w1, a1) = (
        c.metric("tern_store_spans_written_total")?,
        c.metric("tern_ingest_spans_accepted_total")?,
    );
    stop.store(true, Ordering::Relaxed);
    let out = load.wait_with_output()?;
    let _ = prober.join();
    let summary = String::from_utf8_lossy(&out.stdout);
    let summary = summary
        .lines()
        .rfind(|l| l.starts_with("summary"))
        .unwrap_or("")
        .to_string();

    // Drain: everything accepted reaches the store.
    let drain = Instant::now();
    while c.metric("tern_store_spans_written_total")?
        < c.metric("tern_ingest_spans_accepted_total")?
    {
        std::thread::sleep(Duration::from_millis(100));
        if drain.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    let drain_s = drain.elapsed().as_secs_f64();
    let written = (w1 - w0) as f64 / secs;
    let accepted = (a1 - a0) as f64 / secs;
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);

    // Bytes per stored span, after merges settle.
    c.sql("OPTIMIZE TABLE tern.spans FINAL")?;
    c.sql("OPTIMIZE TABLE tern.transactions FINAL")?;
    let parts = c.sql(
        "SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) \
         FROM system.parts WHERE database = 'tern' AND active GROUP BY table ORDER BY table FORMAT TSV",
    )?;
    let mut span_rows = 0f64;
    let mut span_bytes = 0f64;
    let mut span_raw = 0f64;
    let mut all_bytes = 0f64;
    for line in parts.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (rows, comp, raw): (f64, f64, f64) = (f[1].parse()?, f[2].parse()?, f[3].parse()?);
        all_bytes += comp;
        if f[0] == "spans" {
            (span_rows, span_bytes, span_raw) = (rows, comp, raw);
        }
    }
    let columns = c.sql(
        "SELECT name, round(data_compressed_bytes / (SELECT sum(rows) FROM system.parts WHERE database = 'tern' AND table = 'spans' AND active), 1) \
         FROM system.columns WHERE database = 'tern' AND table = 'spans' ORDER BY data_compressed_bytes DESC LIMIT 6 FORMAT TSV",
    )?;

    println!();
    println!("load tool: {summary}");
    println!("collector: {accepted:.0} spans/s accepted, {written:.0} spans/s written to the store over {secs:.0} s; backlog peak {:.1} MB; drained in {drain_s:.1} s after the load stopped",
        max_backlog as f64 / 1e6);
    println!();
    println!("{:<58} {:>14}", "sustained OTLP ingest, spans/s", "");
    println!(
        "{:<58} {:>14.0}",
        "  Tern, measured here (2 cores, incl. load tool)", written
    );
    println!(
        "{:<58} {:>14}",
        "  OpenTelemetry Collector, published per core", "~12,000"
    );
    println!(
        "{:<58} {:>14}",
        "  Jaeger + ClickHouse, published on 4 cores", "52,000"
    );
    println!("{:<58} {:>14}", "stored bytes per span (compressed)", "");
    println!(
        "{:<58} {:>14.1}",
        "  Tern spans table, measured",
        span_bytes / span_rows
    );
    println!(
        "{:<58} {:>14.1}",
        "  Tern all tables (spans, transactions, rollups) / span",
        all_bytes / span_rows
    );
    println!(
        "{:<58} {:>14.1}",
        "  Tern spans table uncompressed, measured",
        span_raw / span_rows
    );
    println!("{:<58} {:>14}", "  Jaeger, published", "76");
    println!(
        "{:<58} {:>14}",
        "ingest-to-queryable latency (probe every 250 ms)", ""
    );
    println!("{:<58} {:>14}", "  probes", lat.len());
    println!("{:<58} {:>14.0}", "  p50 ms", pct(&lat, 0.5));
    println!("{:<58} {:>14.0}", "  p99 ms", pct(&lat, 0.99));
    println!("{:<58} {:>14.0}", "  max ms", pct(&lat, 1.0));
    println!();
    println!("largest span columns, bytes per span:");
    for l in columns.lines() {
        println!("  {l}");
    }
    Ok(())
}
