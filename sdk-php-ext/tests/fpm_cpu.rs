//! What the extension costs a php-fpm worker per request in CPU time, measured exactly
//! (`/proc/<pid>/schedstat`, nanoseconds) on requests sent one after another: one
//! php-fpm worker (behind nginx, with MariaDB and the curl target of the test app) per
//! configuration, all started at once, alternating rounds of `TERN_BENCH_REQUESTS`
//! (default 300) `/bench` requests (about 20 SQL and HTTP calls each),
//! `TERN_BENCH_ROUNDS` (default 6) rounds each, each round starting with the next
//! configuration. Prints the worker's CPU µs per request per round and the medians (and
//! the median of each round's difference to the no-extension round of its cycle), its
//! user/system split, page faults and context switches, and each forwarder's CPU per
//! request, side by side: no extension, `tern.so` with its forwarder, the same with
//! `tern.propagate=0`, the same with no forwarder listening, and, with
//! `TERN_BENCH_BASELINE_EXTENSION=<another libtern.so>`, that build with its own
//! forwarder (before/after in one run).
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

use tern_testkit::bench::{median, paired_median};
use tern_testkit::php::{bench_extension, BenchBed, Forwarder, FpmOptions, PhpStack};

/// How a configuration differs from the extension's defaults.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    Default,
    NoPropagation,
    NoForwarder,
}

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn cpu_per_sequential_request_with_and_without_the_extension() {
    let bed = BenchBed::start(300, 6);
    let (requests, rounds) = (bed.requests, bed.rounds);
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    // Besides the extension as configured by default: without the `traceparent` of
    // outgoing calls (what propagation costs; most of it inside libcurl, which formats
    // each custom header it sends), and with its forwarder away (what sending costs: the
    // extension then makes no system call for it).
    let ext = Some(bench_extension());
    let mut configs = vec![
        ("no extension", None, Setup::Default),
        ("tern.so + forwarder", ext.clone(), Setup::Default),
        ("tern.so, propagate=0", ext.clone(), Setup::NoPropagation),
        ("tern.so, forwarder away", ext, Setup::NoForwarder),
    ];
    if let Ok(base) = std::env::var("TERN_BENCH_BASELINE_EXTENSION") {
        configs.push((
            "baseline .so + forwarder",
            Some(PathBuf::from(base)),
            Setup::Default,
        ));
    }
    let mut stacks = Vec::new();
    for (label, ext, setup) in configs {
        let dir = bed.dir(label);
        let forwarder = (ext.is_some() && setup != Setup::NoForwarder)
            .then(|| Forwarder::start(&dir, &bed.collector.otlp_grpc));
        let options = match &ext {
            Some(ext) => {
                let socket = forwarder
                    .as_ref()
                    .map_or_else(|| dir.join("no-forwarder.sock"), |f| f.socket.clone());
                let mut options = FpmOptions::bench(ext, &dir, &socket);
                if setup == Setup::NoPropagation {
                    options.ini.push(("tern.propagate".into(), "0".into()));
                }
                FpmOptions {
                    workers: 1,
                    ..options
                }
            }
            None => FpmOptions {
                workers: 1,
                ..FpmOptions::default()
            },
        };
        let stack = PhpStack::start(&dir, &app, &options, &bed.services.env);
        for _ in 0..50 {
            assert_eq!(stack.get("/bench").0, 200, "warm-up of {label}");
        }
        stacks.push((label, stack, forwarder, Vec::new(), Vec::new()));
    }
    // The forwarder's CPU over all rounds (it exports after a round ends, so not per
    // round): a cost on the machine the requests share.
    let forwarder_before: Vec<u64> = stacks
        .iter()
        .map(|s| s.2.as_ref().map_or(0, |f| f.cpu_us()))
        .collect();
    bed.rotated_rounds(stacks.len(), |i| {
        let (_, stack, _, per_round, events) = &mut stacks[i];
        let before = stack.fpm_run_ns();
        let (faults, switches) = stack.fpm_faults_and_switches();
        let (user, sys) = stack.fpm_user_sys_us();
        for _ in 0..requests {
            assert_eq!(stack.get("/bench").0, 200);
        }
        let used = stack.fpm_run_ns() - before;
        let (faults_after, switches_after) = stack.fpm_faults_and_switches();
        let (user_after, sys_after) = stack.fpm_user_sys_us();
        per_round.push(used as f64 / requests as f64 / 1000.0);
        events.push((
            (faults_after - faults) as f64 / requests as f64,
            (switches_after - switches) as f64 / requests as f64,
            (user_after - user) as f64 / requests as f64,
            (sys_after - sys) as f64 / requests as f64,
        ));
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let forwarder_per_request: Vec<f64> = stacks
        .iter()
        .zip(&forwarder_before)
        .map(|(s, before)| {
            let after = s.2.as_ref().map_or(0, |f| f.cpu_us());
            (after - before) as f64 / (rounds as u64 * requests) as f64
        })
        .collect();
    println!(
        "php-fpm worker CPU µs per /bench request, sequential, {rounds} rounds x {requests} requests (schedstat):"
    );
    let base_rounds = stacks[0].3.clone();
    let base = median(base_rounds.clone());
    for ((label, _, forwarder, per_round, events), forwarder_us) in
        stacks.iter().zip(&forwarder_per_request)
    {
        let m = median(per_round.clone());
        let paired = paired_median(per_round, &base_rounds, |r, b| r - b);
        let rounds: Vec<String> = per_round.iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "  {label:<26} median {m:>7.1}  added {:>+6.1}  paired {paired:>+6.1}   rounds: {}",
            m - base,
            rounds.join(" ")
        );
        let faults = median(events.iter().map(|e| e.0).collect());
        let switches = median(events.iter().map(|e| e.1).collect());
        // User and system time are clock ticks: summed over all rounds, not medians.
        let n = events.len().max(1) as f64;
        let user = events.iter().map(|e| e.2).sum::<f64>() / n;
        let sys = events.iter().map(|e| e.3).sum::<f64>() / n;
        println!(
            "  {:<26} user {user:.0} µs + system {sys:.0} µs (ticks, all rounds); page faults {faults:.1}, context switches {switches:.1} per request",
            ""
        );
        if forwarder.is_some() {
            println!(
                "  {:<26} its forwarder: {forwarder_us:.1} µs of CPU per request",
                ""
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}
