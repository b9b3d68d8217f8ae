//! The PHP agent's overhead under load, in one run: nginx + php-fpm serving the test
//! app's `/bench` endpoint (about 20 SQL and HTTP calls per request) without and with
//! `tern.so` (and the forwarder and collector behind it), driven by `wrk`, alternating
//! A/B rounds. Prints, side by side, the CPU time per request of the php-fpm workers
//! (utime + stime from `/proc/<pid>/stat` before and after each round, divided by the
//! requests wrk completed: what the extension adds, and what load from other processes
//! on the machine barely moves), of nginx and of the forwarder; throughput, p50/p99
//! latency and peak PHP memory per request. Not part of CI (ignored). Run it in release (the extension, forwarder and
//! collector are then the release builds found next to the test binary):
//!
//! ```text
//! cargo build --release -p tern-php -p tern-agent -p tern-collector
//! cargo test --release -p tern-php --test wrk_bench -- --ignored --nocapture
//! ```
//! `TERN_BENCH_SECONDS` (default 20) sets each round's length, `TERN_BENCH_ROUNDS`
//! (default 3) the rounds per side; `TERN_BENCH_BASELINE_EXTENSION=<path of another
//! libtern.so>` adds a stack with that build (no forwarder), for before/after in one run.

use std::path::PathBuf;
use std::process::Command;

use tern_testkit::bench::median;
use tern_testkit::php::{
    bench_extension, bench_setting, AppServices, Forwarder, FpmOptions, PhpStack,
};
use tern_testkit::{Collector, StoreMode};

struct Round {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    requests: u64,
    /// CPU µs used during the round by php-fpm (all, user only), nginx, the forwarder.
    fpm_us: u64,
    fpm_user_us: u64,
    nginx_us: u64,
    fwd_us: u64,
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

/// One wrk round against `stack`, with the CPU its processes (and `fwd`'s) used.
fn round(stack: &PhpStack, fwd: Option<&Forwarder>, seconds: u64) -> Round {
    let cpu = || {
        (
            stack.fpm_cpu_us(),
            stack.nginx_cpu_us(),
            fwd.map_or(0, Forwarder::cpu_us),
            stack.fpm_user_us(),
        )
    };
    let before = cpu();
    let mut r = wrk(&format!("{}/bench", stack.url), seconds);
    let after = cpu();
    r.fpm_us = after.0 - before.0;
    r.nginx_us = after.1 - before.1;
    r.fwd_us = after.2 - before.2;
    r.fpm_user_us = after.3 - before.3;
    r
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
        requests: text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in"))
            .and_then(|(n, _)| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("wrk printed no request count:\n{text}")),
        fpm_us: 0,
        fpm_user_us: 0,
        nginx_us: 0,
        fwd_us: 0,
    }
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
    let seconds: u64 = bench_setting("TERN_BENCH_SECONDS", 20);
    let rounds: usize = bench_setting("TERN_BENCH_ROUNDS", 3);
    let ext = bench_extension();
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(StoreMode::Embedded, &[]);
    let services = AppServices::start(tmp.path());
    let env = services.env.clone();
    let tern_ini =
        |dir: &std::path::Path, socket: &std::path::Path| FpmOptions::bench(&ext, dir, socket);
    let sub = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (plain_dir, full_dir, fwd_dir, ext_dir) =
        (sub("plain"), sub("full"), sub("fwd"), sub("ext"));
    // The forwarder exporting to the collector on this host, and one whose collector is
    // elsewhere (nothing listens: it retries and drops, as cheaply as it can).
    let forwarder = Forwarder::start(&full_dir, &collector.otlp_grpc);
    let away = format!("http://127.0.0.1:{}", tern_testkit::free_port());
    let lone = Forwarder::start(&fwd_dir, &away);
    let mut stacks = vec![
        (
            "no extension",
            PhpStack::start(&plain_dir, &app, &FpmOptions::default(), &env),
            None,
        ),
        (
            "tern.so+fwd+collector",
            PhpStack::start(
                &full_dir,
                &app,
                &tern_ini(&full_dir, &forwarder.socket),
                &env,
            ),
            Some(&forwarder),
        ),
        (
            "tern.so+forwarder",
            PhpStack::start(&fwd_dir, &app, &tern_ini(&fwd_dir, &lone.socket), &env),
            Some(&lone),
        ),
        (
            "tern.so, no forwarder",
            PhpStack::start(
                &ext_dir,
                &app,
                &tern_ini(&ext_dir, &ext_dir.join("none.sock")),
                &env,
            ),
            None,
        ),
    ];
    // Another build of the extension (e.g. the previous commit's) in the same run, so a
    // change is measured before/after under the same load.
    if let Ok(base) = std::env::var("TERN_BENCH_BASELINE_EXTENSION") {
        let dir = sub("baseline");
        let options = FpmOptions::bench(&PathBuf::from(base), &dir, &dir.join("none.sock"));
        stacks.push((
            "baseline .so, no fwd",
            PhpStack::start(&dir, &app, &options, &env),
            None,
        ));
    }
    for (_, st, _) in &stacks {
        wrk(&format!("{}/bench", st.url), 3); // warm-up: opcache, tables
    }
    let mut results: Vec<Vec<Round>> = stacks.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (_, st, fwd)) in stacks.iter().enumerate() {
            results[i].push(round(st, *fwd, seconds));
        }
    }
    let m = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
    // CPU per request over all rounds of a configuration (sums, not medians: each
    // round's figure is quantised by the 10 ms clock tick).
    let per_req = |v: &[Round], f: fn(&Round) -> u64| {
        v.iter().map(f).sum::<u64>() as f64 / v.iter().map(|r| r.requests).sum::<u64>() as f64
    };
    let base = &results[0];
    let user0 = per_req(base, |r| r.fpm_user_us);
    let (rps0, p50_0, p99_0, mem0, fpm0) = (
        m(base, |r| r.rps),
        m(base, |r| r.p50_us),
        m(base, |r| r.p99_us),
        peak(&stacks[0].1),
        per_req(base, |r| r.fpm_us),
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("php-fpm (4 workers) + nginx, /bench (~20 SQL/HTTP calls per request), wrk -t2 -c8, {rounds} x {seconds} s rounds alternating; load average at the end: {}", load.trim());
    println!(
        "{:<24} {:>9} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "",
        "fpm us/r",
        "added",
        "user us/r",
        "added",
        "nginx/r",
        "fwd us/r",
        "req/s",
        "loss",
        "p50 us",
        "added",
        "p99 us",
        "added",
        "requests",
        "peak mem B+"
    );
    for (i, (label, st, _)) in stacks.iter().enumerate() {
        let r = &results[i];
        let (rps, p50, p99) = (m(r, |r| r.rps), m(r, |r| r.p50_us), m(r, |r| r.p99_us));
        let fpm = per_req(r, |r| r.fpm_us);
        println!(
            "{:<24} {:>9.0} {:>8.1} {:>9.0} {:>8.1} {:>9.1} {:>9.1} {:>9.0} {:>7.1}% {:>7.0} {:>8.0} {:>8.0} {:>8.0} {:>8} {:>10.0}",
            label,
            fpm,
            fpm - fpm0,
            per_req(r, |r| r.fpm_user_us),
            per_req(r, |r| r.fpm_user_us) - user0,
            per_req(r, |r| r.nginx_us),
            per_req(r, |r| r.fwd_us),
            rps,
            (rps0 - rps) / rps0 * 100.0,
            p50,
            p50 - p50_0,
            p99,
            p99 - p99_0,
            r.iter().map(|r| r.requests).sum::<u64>(),
            peak(st) - mem0
        );
    }
    println!("php-fpm CPU per request, each round (us):");
    for (i, (label, _, _)) in stacks.iter().enumerate() {
        let each: Vec<String> = results[i]
            .iter()
            .map(|r| format!("{:.0}", r.fpm_us as f64 / r.requests as f64))
            .collect();
        println!("  {label:<24} {}", each.join(" "));
    }
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("extension: {}", ext.display());
    let exported = collector.api("/api/v1/agents");
    println!("forwarder heartbeat: {exported}");
}
