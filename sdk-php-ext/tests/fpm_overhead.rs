//! The extension's own time per php-fpm request, measured inside the worker
//! (`tern.overhead_stats=1`, see `src/overhead.rs`): its hooks' work, request start,
//! request end and, within it, sending. One worker per configuration behind nginx,
//! serving the test app's `/bench` (16 SQL statements and 4 curl calls) to requests sent
//! one after another: the extension as configured by default, with `tern.propagate=0`,
//! and, with `TERN_BENCH_BASELINE_EXTENSION=<another libtern.so>` (a build that has
//! `tern.overhead_stats`), that build — all started at once, `TERN_BENCH_ROUNDS`
//! (default 6) rounds of `TERN_BENCH_REQUESTS` (default 300) requests each, each round
//! starting with the next configuration, so drift in the machine's load is shared out.
//! Prints the medians of the rounds.
//!
//! Where `fpm_cpu` compares whole pools' CPU time (what a user pays, indirect costs
//! included, but moved by everything else the machine does) this times only the
//! extension's own code, so a change to it shows even on a busy machine. Not part of CI
//! (ignored):
//!
//! ```text
//! cargo build --release -p tern-php -p tern-agent -p tern-collector
//! cargo test --release -p tern-php --test fpm_overhead -- --ignored --nocapture
//! ```

use std::path::PathBuf;

use serde_json::Value;
use tern_testkit::bench::median;
use tern_testkit::php::{bench_extension, BenchBed, Forwarder, FpmOptions, PhpStack};

/// The `tern_stats()` keys, in the order printed.
const PHASES: [&str; 4] = [
    "overhead_ns_hooks",
    "overhead_ns_request_start",
    "overhead_ns_request_end",
    "overhead_ns_send",
];

fn phases(stack: &PhpStack) -> [i64; 4] {
    let (status, body) = stack.get("/tern-stats");
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).unwrap();
    PHASES.map(|k| {
        stats[k]
            .as_i64()
            .unwrap_or_else(|| panic!("no {k} in {stats}"))
    })
}

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn the_extensions_own_time_per_request() {
    let bed = BenchBed::start(300, 6);
    let (requests, rounds) = (bed.requests, bed.rounds);
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let mut configs = vec![
        ("default", bench_extension(), "1"),
        ("tern.propagate=0", bench_extension(), "0"),
    ];
    if let Ok(base) = std::env::var("TERN_BENCH_BASELINE_EXTENSION") {
        configs.push(("baseline .so", PathBuf::from(base), "1"));
    }
    let mut stacks = Vec::new();
    for (label, ext, propagate) in configs {
        let dir = bed.dir(label);
        let forwarder = Forwarder::start(&dir, &bed.collector.otlp_grpc);
        let mut options = FpmOptions::bench(&ext, &dir, &forwarder.socket);
        options.workers = 1;
        options.ini.push(("tern.overhead_stats".into(), "1".into()));
        options
            .ini
            .push(("tern.propagate".into(), propagate.into()));
        let stack = PhpStack::start(&dir, &app, &options, &bed.services.env);
        for _ in 0..50 {
            assert_eq!(stack.get("/bench").0, 200, "warm-up of {label}");
        }
        stacks.push((label, stack, forwarder, Vec::<[f64; 4]>::new()));
    }
    bed.rotated_rounds(stacks.len(), |i| {
        let (_, stack, _, per_round) = &mut stacks[i];
        let before = phases(stack);
        for _ in 0..requests {
            assert_eq!(stack.get("/bench").0, 200);
        }
        let after = phases(stack);
        // The stats request itself is one more request measured (its start and end).
        per_round.push(std::array::from_fn(|p| {
            let spent = after[p] - before[p];
            assert!(spent > 0, "{} not measured", PHASES[p]);
            spent as f64 / (requests + 1) as f64 / 1000.0
        }));
    });
    println!(
        "tern's own time per /bench request, µs, medians of {rounds} rounds x {requests} sequential requests:"
    );
    println!(
        "  {:<18} {:>7} {:>7} {:>7} {:>7} {:>7}   totals per round",
        "", "hooks", "start", "end", "(send)", "total"
    );
    for (label, _, _, per_round) in &stacks {
        let m: [f64; 4] = std::array::from_fn(|i| median(per_round.iter().map(|r| r[i]).collect()));
        let totals: Vec<f64> = per_round.iter().map(|r| r[0] + r[1] + r[2]).collect();
        let each: Vec<String> = totals.iter().map(|t| format!("{t:.1}")).collect();
        println!(
            "  {label:<18} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1}   {}",
            m[0],
            m[1],
            m[2],
            m[3],
            median(totals.clone()),
            each.join(" ")
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}
