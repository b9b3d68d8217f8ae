//! The PHP agent's overhead under load, in one run: nginx + php-fpm serving the test
//! app's `/bench` endpoint (about 20 SQL and HTTP calls per request) without and with
//! `tern.so` (and the forwarder and collector behind it), driven by `wrk`, alternating
//! A/B rounds. Prints throughput, p50/p99 latency and peak PHP memory per request side
//! by side. Not part of CI (ignored). Run it in release (the extension, forwarder and
//! collector are then the release builds found next to the test binary):
//!
//! ```text
//! cargo build --release -p tern-php -p tern-agent -p tern-collector
//! cargo test --release -p tern-php --test wrk_bench -- --ignored --nocapture
//! ```
//! `TERN_BENCH_SECONDS` (default 20) sets each round's length, `TERN_BENCH_ROUNDS`
//! (default 3) the rounds per side.

use std::path::PathBuf;
use std::process::Command;

use tern_testkit::php::{
    extension_path, AppEnv, Forwarder, FpmOptions, HttpTarget, MariaDb, PhpStack,
};
use tern_testkit::{Collector, StoreMode};

struct Round {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

fn micros(v: &str) -> f64 {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * mult
}

fn wrk(url: &str, seconds: u64) -> Round {
    let out = Command::new("wrk")
        .args(["-t2", "-c8", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .expect("running wrk (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("wrk printed no {prefix:?}:\n{text}"))
    };
    assert!(!text.contains("Non-2xx"), "errors under load:\n{text}");
    Round {
        rps: field("Requests/sec:").trim().parse().unwrap(),
        p50_us: micros(&field("50%")),
        p99_us: micros(&field("99%")),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak(stack: &PhpStack) -> f64 {
    let (_, body) = stack.get("/bench");
    body.rsplit("peak=")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn wrk_with_and_without_the_extension() {
    let seconds: u64 = std::env::var("TERN_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rounds: usize = std::env::var("TERN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let ext = std::env::var("TERN_PHP_EXTENSION")
        .map(PathBuf::from)
        .unwrap_or_else(|_| extension_path());
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(StoreMode::Embedded, &[]);
    let db = MariaDb::start(tmp.path());
    let target = HttpTarget::start();
    let env = AppEnv {
        vars: vec![
            ("APP_MYSQL_SOCKET".into(), db.socket.display().to_string()),
            ("APP_TARGET_URL".into(), target.url()),
        ],
    };
    let (plain_dir, tern_dir) = (tmp.path().join("plain"), tmp.path().join("tern"));
    std::fs::create_dir_all(&plain_dir).unwrap();
    std::fs::create_dir_all(&tern_dir).unwrap();
    let forwarder = Forwarder::start(&tern_dir, &collector.otlp_grpc);
    let plain = PhpStack::start(&plain_dir, &app, &FpmOptions::default(), &env);
    let tern = PhpStack::start(
        &tern_dir,
        &app,
        &FpmOptions {
            extension: Some(ext.clone()),
            ini: vec![
                ("tern.service_name".into(), "bench".into()),
                ("tern.socket".into(), forwarder.socket.display().to_string()),
                (
                    "tern.active_path".into(),
                    forwarder.active.display().to_string(),
                ),
            ],
            ..FpmOptions::default()
        },
        &env,
    );
    // Warm-up (opcache, connections, tables).
    wrk(&format!("{}/bench", plain.url), 3);
    wrk(&format!("{}/bench", tern.url), 3);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(wrk(&format!("{}/bench", plain.url), seconds));
        b.push(wrk(&format!("{}/bench", tern.url), seconds));
    }
    let m = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
    let (rps_a, rps_b) = (m(&a, |r| r.rps), m(&b, |r| r.rps));
    let (p50_a, p50_b) = (m(&a, |r| r.p50_us), m(&b, |r| r.p50_us));
    let (p99_a, p99_b) = (m(&a, |r| r.p99_us), m(&b, |r| r.p99_us));
    let (mem_a, mem_b) = (peak(&plain), peak(&tern));
    println!("php-fpm + nginx, /bench (~20 SQL/HTTP calls per request), wrk -t2 -c8, {rounds} x {seconds} s per side, medians");
    println!(
        "{:<22} {:>14} {:>14} {:>12}",
        "", "without tern", "with tern.so", "difference"
    );
    println!(
        "{:<22} {:>14.0} {:>14.0} {:>11.2}%",
        "requests/s",
        rps_a,
        rps_b,
        (rps_a - rps_b) / rps_a * 100.0
    );
    println!(
        "{:<22} {:>14.0} {:>14.0} {:>12.0}",
        "p50 latency (us)",
        p50_a,
        p50_b,
        p50_b - p50_a
    );
    println!(
        "{:<22} {:>14.0} {:>14.0} {:>12.0}",
        "p99 latency (us)",
        p99_a,
        p99_b,
        p99_b - p99_a
    );
    println!(
        "{:<22} {:>14.0} {:>14.0} {:>12.0}",
        "peak PHP memory (B)",
        mem_a,
        mem_b,
        mem_b - mem_a
    );
    println!("extension: {}", ext.display());
    let exported = collector.api("/api/v1/agents");
    println!("forwarder heartbeat: {exported}");
}
