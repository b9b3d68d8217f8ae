//! The extension's own time per php-fpm request, measured inside the worker
//! (`tern.overhead_stats=1`, see `src/overhead.rs`): its hooks' work, request start,
//! request end and, within it, sending. One worker behind nginx serving the test app's
//! `/bench` (16 SQL statements and 4 curl calls) to requests sent one after another, with
//! the extension as configured by default and with `tern.propagate=0`.
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
use tern_testkit::php::{
    bench_extension, bench_setting, AppServices, Forwarder, FpmOptions, PhpStack,
};
use tern_testkit::{Collector, StoreMode};

fn stats(stack: &PhpStack) -> Value {
    let (status, body) = stack.get("/tern-stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn the_extensions_own_time_per_request() {
    let requests: u64 = bench_setting("TERN_BENCH_REQUESTS", 2000);
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(StoreMode::Embedded, &[]);
    let services = AppServices::start(tmp.path());
    println!("tern's own time per /bench request, µs ({requests} sequential requests):");
    println!(
        "  {:<22} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "", "hooks", "start", "end", "(send)", "total"
    );
    for (label, propagate) in [("default", "1"), ("tern.propagate=0", "0")] {
        let dir = tmp.path().join(label.replace(['.', '='], "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let forwarder = Forwarder::start(&dir, &collector.otlp_grpc);
        let mut options = FpmOptions::bench(&bench_extension(), &dir, &forwarder.socket);
        options.workers = 1;
        options.ini.push(("tern.overhead_stats".into(), "1".into()));
        options
            .ini
            .push(("tern.propagate".into(), propagate.into()));
        let stack = PhpStack::start(&dir, &app, &options, &services.env);
        for _ in 0..100 {
            assert_eq!(stack.get("/bench").0, 200, "warm-up of {label}");
        }
        let before = stats(&stack);
        for _ in 0..requests {
            assert_eq!(stack.get("/bench").0, 200);
        }
        let after = stats(&stack);
        // The stats request itself is one more request measured (its start and end).
        let per = |key: &str| {
            let spent = after[key].as_i64().unwrap() - before[key].as_i64().unwrap();
            assert!(spent > 0, "{key} not measured: {after}");
            spent as f64 / (requests + 1) as f64 / 1000.0
        };
        let (hooks, start, end, send) = (
            per("overhead_ns_hooks"),
            per("overhead_ns_request_start"),
            per("overhead_ns_request_end"),
            per("overhead_ns_send"),
        );
        println!(
            "  {label:<22} {hooks:>7.1} {start:>7.1} {end:>7.1} {send:>7.1} {:>7.1}",
            hooks + start + end
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}
