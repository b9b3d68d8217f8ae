//! What the extension costs a php-fpm worker per request in CPU time, measured exactly
//! (`/proc/<pid>/schedstat`, nanoseconds) on requests sent one after another: one
//! php-fpm worker (behind nginx, with MariaDB and the curl target of the test app) per
//! configuration, all started at once, alternating rounds of `TERN_BENCH_REQUESTS`
//! (default 300) `/bench` requests (about 20 SQL and HTTP calls each),
//! `TERN_BENCH_ROUNDS` (default 6) rounds each. Prints the worker's CPU µs per request
//! per round and the medians, side by side: no extension, `tern.so` with its forwarder,
//! and, with `TERN_BENCH_BASELINE_EXTENSION=<another libtern.so>`, that build with its
//! own forwarder (before/after in one run).
//!
//! Where `fpm_instructions` counts instructions (which load does not move) this counts
//! time, which is what a user pays: the extension's code runs cold between PHP's own work
//! (each hook meets caches that MariaDB, nginx and the kernel have just used), so an
//! instruction of ours costs more than an average one. Sequential requests keep the
//! worker's own CPU time clean of queueing; other load on the machine still moves it by
//! a few percent, hence alternating rounds and medians. Not part of CI (ignored):
//!
//! ```text
//! cargo build --release -p tern-php -p tern-agent -p tern-collector
//! cargo test --release -p tern-php --test fpm_cpu -- --ignored --nocapture
//! ```

use std::path::PathBuf;

use tern_testkit::bench::median;
use tern_testkit::php::{
    bench_extension, bench_setting, AppServices, Forwarder, FpmOptions, PhpStack,
};
use tern_testkit::{Collector, StoreMode};

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn cpu_per_sequential_request_with_and_without_the_extension() {
    let requests: u64 = bench_setting("TERN_BENCH_REQUESTS", 300);
    let rounds: usize = bench_setting("TERN_BENCH_ROUNDS", 6);
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(StoreMode::Embedded, &[]);
    let services = AppServices::start(tmp.path());
    // The third sends no `traceparent` on outgoing calls: what propagation costs (most
    // of it inside libcurl, which formats each custom header it sends).
    let mut configs = vec![
        ("no extension", None, false),
        ("tern.so + forwarder", Some(bench_extension()), true),
        ("tern.so, propagate=0", Some(bench_extension()), false),
    ];
    if let Ok(base) = std::env::var("TERN_BENCH_BASELINE_EXTENSION") {
        configs.push(("baseline .so + forwarder", Some(PathBuf::from(base)), true));
    }
    let mut stacks = Vec::new();
    for (label, ext, propagate) in configs {
        let dir = tmp
            .path()
            .join(label.replace(['.', '+', ' ', ',', '='], "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let forwarder = ext
            .as_ref()
            .map(|_| Forwarder::start(&dir, &collector.otlp_grpc));
        let options = match (&ext, &forwarder) {
            (Some(ext), Some(f)) => {
                let mut options = FpmOptions::bench(ext, &dir, &f.socket);
                if !propagate {
                    options.ini.push(("tern.propagate".into(), "0".into()));
                }
                FpmOptions {
                    workers: 1,
                    ..options
                }
            }
            _ => FpmOptions {
                workers: 1,
                ..FpmOptions::default()
            },
        };
        let stack = PhpStack::start(&dir, &app, &options, &services.env);
        for _ in 0..50 {
            assert_eq!(stack.get("/bench").0, 200, "warm-up of {label}");
        }
        stacks.push((label, stack, forwarder, Vec::new(), Vec::new()));
    }
    for _ in 0..rounds {
        for (_, stack, _, per_round, events) in stacks.iter_mut() {
            let before = stack.fpm_run_ns();
            let (faults, switches) = stack.fpm_faults_and_switches();
            for _ in 0..requests {
                assert_eq!(stack.get("/bench").0, 200);
            }
            let used = stack.fpm_run_ns() - before;
            let (faults_after, switches_after) = stack.fpm_faults_and_switches();
            per_round.push(used as f64 / requests as f64 / 1000.0);
            events.push((
                (faults_after - faults) as f64 / requests as f64,
                (switches_after - switches) as f64 / requests as f64,
            ));
        }
    }
    println!(
        "php-fpm worker CPU µs per /bench request, sequential, {rounds} rounds x {requests} requests (schedstat):"
    );
    let base = median(stacks[0].3.clone());
    for (label, _, _, per_round, events) in &stacks {
        let m = median(per_round.clone());
        let rounds: Vec<String> = per_round.iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "  {label:<26} median {m:>7.1}  added {:>+6.1}   rounds: {}",
            m - base,
            rounds.join(" ")
        );
        let faults = median(events.iter().map(|e| e.0).collect());
        let switches = median(events.iter().map(|e| e.1).collect());
        println!(
            "  {:<26} page faults {faults:.1}, context switches {switches:.1} per request",
            ""
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}
