//! The PHP agent's overhead under load, in one run: nginx + php-fpm (4 workers) serving
//! the test app's `/bench` endpoint (about 20 SQL and HTTP calls per request) without and
//! with `tern.so` (and the forwarder and collector behind it), driven by `wrk` in two
//! shapes of load:
//!
//! - **saturated** (`wrk -t2 -c8`: every worker busy, the machine's two cores full):
//!   throughput, and so the throughput loss;
//! - **sequential** (`wrk -t1 -c1`: one request at a time): the latency a request gains,
//!   free of queueing.
//!
//! Each load runs `TERN_BENCH_ROUNDS` (default 3) rounds of `TERN_BENCH_SECONDS` (default
//! 10) per configuration, each round starting with the next configuration, and after
//! every round waits for the collector to finish storing (so the configuration that
//! exports to it does not slow whichever runs next). Prints, side by side: requests per
//! second (median, and each round), loss, p50/p99 latency and what was added, the CPU
//! time per request of the php-fpm workers (schedstat, exact) and of the forwarder, and
//! peak PHP memory per request. Not part of CI (ignored). Run it in release (the
//! extension, forwarder and collector are then the release builds found next to the test
//! binary):
//!
//! ```text
//! cargo build --release -p tern-php -p tern-agent -p tern-collector
//! cargo test --release -p tern-php --test wrk_bench -- --ignored --nocapture
//! ```
//! `TERN_BENCH_LOAD=saturated` or `sequential` runs one of the two;
//! `TERN_BENCH_BASELINE_EXTENSION=<path of another libtern.so>` adds a stack with that
//! build and its own forwarder (started with `TERN_BENCH_BASELINE_FORWARDER_ARGS`, e.g.
//! `--nice 0`), for before/after in one run; `TERN_BENCH_PERF=<dir>`
//! records each round's whole-machine profile there (`perf record -a -g`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tern_testkit::bench::{median, paired_median};
use tern_testkit::php::{
    bench_extension, bench_setting, BenchBed, Forwarder, FpmOptions, PhpStack,
};

struct Round {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    requests: u64,
    /// CPU used during the round by php-fpm (ns, exact), nginx and the forwarder (µs,
    /// clock ticks).
    fpm_ns: u64,
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

/// One wrk run of `seconds` with `load`'s connections against `stack`, with the CPU its
/// processes (and `fwd`'s) used meanwhile.
fn round(
    stack: &PhpStack,
    fwd: Option<&Forwarder>,
    load: &[&str],
    seconds: u64,
    perf: Option<PathBuf>,
) -> Round {
    let cpu = || {
        (
            stack.fpm_run_ns(),
            stack.nginx_cpu_us(),
            fwd.map_or(0, Forwarder::cpu_us),
        )
    };
    let before = cpu();
    let mut r = wrk(&format!("{}/bench", stack.url), load, seconds, perf);
    let after = cpu();
    r.fpm_ns = after.0 - before.0;
    r.nginx_us = after.1 - before.1;
    r.fwd_us = after.2 - before.2;
    r
}

fn wrk(url: &str, load: &[&str], seconds: u64, perf: Option<PathBuf>) -> Round {
    // `perf record -a -g` around wrk: the whole machine's profile of the round.
    let mut cmd = match perf {
        Some(out) => {
            let mut c = Command::new("perf");
            c.args(["record", "-a", "-g", "-q", "-o"])
                .arg(out)
                .arg("--")
                .arg("wrk");
            c
        }
        None => Command::new("wrk"),
    };
    let out = cmd
        .args(load)
        .args([&format!("-d{seconds}s"), "--latency", url])
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
        fpm_ns: 0,
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

struct Config {
    label: &'static str,
    stack: PhpStack,
    forwarder: Option<Forwarder>,
}

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn wrk_with_and_without_the_extension() {
    let seconds: u64 = bench_setting("TERN_BENCH_SECONDS", 10);
    let bed = BenchBed::start(0, 3);
    let ext = bench_extension();
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let env = bed.services.env.clone();
    // With a forwarder exporting to the collector on this host; with one whose collector
    // is elsewhere (nothing listens: it retries and drops, as cheaply as it can, so its
    // reading and checking of frames is measured, its export not); with none listening.
    let away = format!("http://127.0.0.1:{}", tern_testkit::free_port());
    let mut plan: Vec<(&'static str, Option<PathBuf>, Option<&str>)> = vec![
        ("no extension", None, None),
        (
            "tern.so+fwd+collector",
            Some(ext.clone()),
            Some(&bed.collector.otlp_grpc),
        ),
        ("tern.so+forwarder", Some(ext.clone()), Some(&away)),
        ("tern.so, no forwarder", Some(ext.clone()), None),
    ];
    // Another build of the extension (e.g. the previous commit's) in the same run, so a
    // change is measured before/after under the same load.
    if let Ok(base) = std::env::var("TERN_BENCH_BASELINE_EXTENSION") {
        plan.push(("baseline .so+forwarder", Some(base.into()), Some(&away)));
    }
    let configs: Vec<Config> = plan
        .into_iter()
        .map(|(label, ext, endpoint)| {
            let dir = bed.dir(label);
            // The baseline's forwarder may run with other arguments (`--nice 0`, ...).
            let args: Vec<String> = match label {
                "baseline .so+forwarder" => std::env::var("TERN_BENCH_BASELINE_FORWARDER_ARGS")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            let forwarder = endpoint.map(|e| Forwarder::start_with(&dir, e, &args));
            let options = match &ext {
                Some(ext) => {
                    let socket = forwarder
                        .as_ref()
                        .map_or_else(|| dir.join("none.sock"), |f| f.socket.clone());
                    FpmOptions::bench(ext, &dir, &socket)
                }
                None => FpmOptions::default(),
            };
            Config {
                label,
                stack: PhpStack::start(&dir, &app, &options, &env),
                forwarder,
            }
        })
        .collect();
    let loads: [(&str, &[&str]); 2] = [
        ("saturated", &["-t2", "-c8"]),
        ("sequential", &["-t1", "-c1"]),
    ];
    let only = std::env::var("TERN_BENCH_LOAD").ok();
    let perf_dir = std::env::var_os("TERN_BENCH_PERF").map(PathBuf::from);
    for (load, args) in loads {
        if only.as_deref().is_some_and(|o| o != load) {
            continue;
        }
        for c in &configs {
            wrk(&format!("{}/bench", c.stack.url), args, 3, None); // warm-up: opcache, tables
        }
        bed.collector.wait_idle(Duration::from_secs(30));
        let mut results: Vec<Vec<Round>> = configs.iter().map(|_| Vec::new()).collect();
        bed.rotated_rounds(configs.len(), |i| {
            let c = &configs[i];
            let perf = perf_dir.as_ref().map(|d| {
                let name = format!("{load}-{}-{}.data", c.label, results[i].len());
                d.join(name.replace(['.', '+', ' ', ','], "-"))
            });
            results[i].push(round(&c.stack, c.forwarder.as_ref(), args, seconds, perf));
            bed.collector.wait_idle(Duration::from_secs(20));
        });
        report(load, args, seconds, &configs, &results);
    }
    println!("extension: {}", ext.display());
    println!(
        "forwarder heartbeat: {}",
        bed.collector.api("/api/v1/agents")
    );
}

fn report(load: &str, args: &[&str], seconds: u64, configs: &[Config], results: &[Vec<Round>]) {
    let m = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
    // CPU per request over all rounds of a configuration (sums, not medians: the
    // forwarder's and nginx's figures are quantised by the 10 ms clock tick).
    let per_req = |v: &[Round], f: fn(&Round) -> u64| {
        v.iter().map(f).sum::<u64>() as f64 / v.iter().map(|r| r.requests).sum::<u64>() as f64
    };
    let base = &results[0];
    let (rps0, p50_0, p99_0, fpm0) = (
        m(base, |r| r.rps),
        m(base, |r| r.p50_us),
        m(base, |r| r.p99_us),
        per_req(base, |r| r.fpm_ns) / 1000.0,
    );
    let mem0 = peak(&configs[0].stack);
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{load}: php-fpm (4 workers) + nginx, /bench (~20 SQL/HTTP calls per request), wrk {}, {} x {seconds} s rounds, rotated; load average at the end: {}",
        args.join(" "),
        results[0].len(),
        load_avg.trim()
    );
    println!(
        "{:<24} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "",
        "req/s",
        "loss",
        "p50 us",
        "added",
        "p99 us",
        "added",
        "fpm us/r",
        "added",
        "nginx/r",
        "fwd us/r",
        "requests",
        "peak mem B+"
    );
    for (c, r) in configs.iter().zip(results) {
        let (rps, p50, p99) = (m(r, |r| r.rps), m(r, |r| r.p50_us), m(r, |r| r.p99_us));
        let fpm = per_req(r, |r| r.fpm_ns) / 1000.0;
        println!(
            "{:<24} {:>8.1} {:>6.1}% {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9} {:>10.0}",
            c.label,
            rps,
            (rps0 - rps) / rps0 * 100.0,
            p50,
            p50 - p50_0,
            p99,
            p99 - p99_0,
            fpm,
            fpm - fpm0,
            per_req(r, |r| r.nginx_us),
            per_req(r, |r| r.fwd_us),
            r.iter().map(|r| r.requests).sum::<u64>(),
            peak(&c.stack) - mem0
        );
    }
    let fpm_us = |r: &Round| r.fpm_ns as f64 / r.requests.max(1) as f64 / 1000.0;
    println!("each round: req/s | p50 µs || paired with the no-extension round of its cycle, median: loss, p50 added, php-fpm µs/r added");
    for (c, r) in configs.iter().zip(results) {
        let rps: Vec<String> = r.iter().map(|r| format!("{:.1}", r.rps)).collect();
        let p50: Vec<String> = r.iter().map(|r| format!("{:.0}", r.p50_us)).collect();
        println!(
            "  {:<24} {} | {} || {:.1}% {:+.0} {:+.1}",
            c.label,
            rps.join(" "),
            p50.join(" "),
            paired_median(r, base, |r, b| (b.rps - r.rps) / b.rps * 100.0),
            paired_median(r, base, |r, b| r.p50_us - b.p50_us),
            paired_median(r, base, |r, b| fpm_us(r) - fpm_us(b)),
        );
    }
}
