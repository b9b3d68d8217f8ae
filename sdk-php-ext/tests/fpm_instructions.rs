//! What the extension costs a php-fpm worker per request, counted in instructions (not
//! time, so other load on the machine does not move it): one php-fpm worker without and
//! one with `tern.so` (and the forwarder behind it), each under callgrind, serve the test
//! app's `/bench` endpoint (about 20 SQL and HTTP calls per request). After a warm-up the
//! counters are zeroed, `TERN_BENCH_REQUESTS` (default 200) requests are sent one after
//! another, and the counts are dumped. Prints instructions per request side by side and
//! leaves the callgrind files (`callgrind_annotate` them to see where the difference
//! goes). Not part of CI (ignored); run it in release:
//!
//! ```text
//! cargo build --release -p tern-php -p tern-agent -p tern-collector
//! cargo test --release -p tern-php --test fpm_instructions -- --ignored --nocapture
//! ```
//!
//! With `TERN_BENCH_PERF=1` the workers run under `perf record` (CPU-clock samples,
//! i.e. time, not instructions) instead, and the share of each library and function in
//! the worker's time is printed for both sides: where the time goes when code runs
//! cold between PHP's own work (instruction counts do not show cache misses).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tern_testkit::php::{
    bench_extension, bench_setting, AppServices, Forwarder, FpmOptions, PhpStack,
};
use tern_testkit::{Collector, StoreMode};

/// Stops php-fpm and returns the instructions callgrind counted in the workers, with
/// their files.
fn stop_and_count(dir: &Path) -> (u64, Vec<PathBuf>) {
    let master = stop_fpm(dir);
    let mut total = 0;
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("callgrind.out.") else {
            continue;
        };
        if pid == master {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        total += text
            .lines()
            .find_map(|l| {
                l.strip_prefix("summary: ")
                    .or_else(|| l.strip_prefix("totals: "))
            })
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        files.push(p);
    }
    (total, files)
}

/// Stops php-fpm gracefully (SIGQUIT to the master: workers finish and exit, so the
/// tool it runs under writes its files) and returns the master's pid.
fn stop_fpm(dir: &Path) -> String {
    let master = std::fs::read_to_string(dir.join("php-fpm.pid")).unwrap();
    let master = master.trim().to_string();
    let status = Command::new("kill")
        .args(["-QUIT", &master])
        .status()
        .unwrap();
    assert!(status.success());
    tern_testkit::wait_for("php-fpm to exit", Duration::from_secs(60), || {
        !Path::new(&format!("/proc/{master}")).exists()
            || std::fs::read_to_string(format!("/proc/{master}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    master
}

/// Stops php-fpm (perf writes its file when the master exits) and prints the worker's
/// time by library and by function.
fn print_perf_profile(label: &str, dir: &Path) {
    stop_fpm(dir);
    let data = dir.join("perf.data");
    tern_testkit::wait_for("perf to write its file", Duration::from_secs(60), || {
        data.metadata().is_ok_and(|m| m.len() > 0)
    });
    std::thread::sleep(Duration::from_secs(2));
    for sort in ["dso", "dso,sym"] {
        let out = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "-q",
                "--comm",
                "php-fpm8.2",
                "--sort",
                sort,
                "-i",
            ])
            .arg(&data)
            .output()
            .unwrap();
        println!("== {label}: php-fpm time by {sort} (perf, CPU-clock samples)");
        for line in String::from_utf8_lossy(&out.stdout).lines().take(30) {
            println!("{line}");
        }
    }
}

#[test]
#[ignore = "benchmark: run by hand, see the module docs"]
fn instructions_per_request_with_and_without_the_extension() {
    let requests: u64 = bench_setting("TERN_BENCH_REQUESTS", 200);
    let ext = bench_extension();
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/app");
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(StoreMode::Embedded, &[]);
    let services = AppServices::start(tmp.path());
    let env = services.env.clone();
    let perf = std::env::var("TERN_BENCH_PERF").is_ok_and(|v| v == "1");
    let mut rows = Vec::new();
    // The third leaves out the `traceparent` of outgoing calls: what propagation costs
    // (most of it inside libcurl, which formats each custom header it sends).
    for label in ["no extension", "tern.so+forwarder", "tern.so, propagate=0"] {
        let dir = tmp
            .path()
            .join(label.replace(['.', '+', ' ', ',', '='], "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let perf_launcher = vec![
            "perf".to_string(),
            "record".into(),
            "-q".into(),
            "-e".into(),
            "cpu-clock".into(),
            "-F".into(),
            "20000".into(),
            "-o".into(),
            dir.join("perf.data").display().to_string(),
            "--".into(),
        ];
        let callgrind_launcher = vec![
            "valgrind".to_string(),
            "--tool=callgrind".into(),
            // Count what a request costs: its start-up, the script, its shutdown (not
            // the FastCGI accept loop around them, which the extension does not touch).
            "--collect-atstart=no".into(),
            "--toggle-collect=php_request_startup".into(),
            "--toggle-collect=php_execute_script".into(),
            "--toggle-collect=php_request_shutdown".into(),
            format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()),
        ];
        let launcher = if perf {
            perf_launcher
        } else {
            callgrind_launcher
        };
        let forwarder =
            (label != "no extension").then(|| Forwarder::start(&dir, &collector.otlp_grpc));
        let mut base = match &forwarder {
            Some(f) => FpmOptions::bench(&ext, &dir, &f.socket),
            None => FpmOptions::default(),
        };
        if label.ends_with("propagate=0") {
            base.ini.push(("tern.propagate".into(), "0".into()));
        }
        let options = FpmOptions {
            workers: 1,
            launcher,
            ..base
        };
        let stack = PhpStack::start(&dir, &app, &options, &env);
        for _ in 0..requests {
            assert_eq!(stack.get("/bench").0, 200);
        }
        if perf {
            print_perf_profile(label, &dir);
            drop(stack);
            continue;
        }
        let (n, files) = stop_and_count(&dir);
        assert!(n > 0, "no callgrind file of a worker in {}", dir.display());
        rows.push((label, n as f64 / requests as f64, files));
        drop(stack);
    }
    if perf {
        let keep = tmp.keep();
        println!("perf files kept under {}", keep.display());
        return;
    }
    println!("php-fpm worker instructions per request, /bench, {requests} requests (callgrind):");
    let base = rows[0].1;
    for (label, per, files) in &rows {
        println!(
            "  {label:<20} {per:>12.0}  {:>+10.0} ({:+.1} %)   {}",
            per - base,
            (per - base) / base * 100.0,
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    // Keep the files for callgrind_annotate.
    let keep = tmp.keep();
    println!("callgrind files kept under {}", keep.display());
}
