//! The PHP agent's overhead under load, in one run: nginx + php-fpm (4 workers) serving
//! the test app's `/bench` endpoint (about 20 SQL and HTTP calls per request) without and
//! with `tern.so` (and the forwarder and collector behind it), in three shapes of load:
//!
//! - **saturated** (`wrk -t2 -c8`: every worker busy, the machine's two cores full):
//!   throughput, and so the throughput loss;
//! - **sequential** (`wrk -t1 -c1`: one request at a time): the latency a request gains,
//!   free of queueing;
//! - **interleaved** (no wrk): `TERN_BENCH_REQUESTS` (default 3000) rounds of one request
//!   to every configuration in a shuffled order, one at a time over kept-alive
//!   connections; each request's latency minus the no-extension request's of the same
//!   round, whose median (with its 95 % interval) is the latency a configuration adds,
//!   and the workers' CPU per request. Seconds-long rounds on this shared machine differ
//!   by more than what is measured (identical configurations came out hundreds of µs
//!   apart); requests side by side do not, which the second, identical no-extension
//!   stack ("again", unless `TERN_BENCH_ONLY` leaves it out) shows. The rounds run in `TERN_BENCH_BLOCKS` (default
//!   4) blocks with every stack started anew before each, since two stacks as started
//!   can differ by ~15 µs; each block's paired median is printed too (the 95 % interval
//!   holds the noise within blocks only). `TERN_BENCH_CLIENTS=N` (default 1) runs N such clients at
//!   once: the same pairing on a machine under load (N = 4 keeps its two cores busy).
//!
//! The two wrk loads run `TERN_BENCH_ROUNDS` (default 3) rounds of `TERN_BENCH_SECONDS`
//! (default 10) per configuration, each round starting with the next configuration, and
//! after every round waits for the collector to finish storing (so the configuration that
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
//! `TERN_BENCH_LOAD=saturated`, `sequential` or `interleaved` runs one of the three;
//! `TERN_BENCH_BASELINE_EXTENSION=<paths of other libtern.so builds, :-separated>` adds a
//! stack with each build and its own forwarder (started with
//! `TERN_BENCH_BASELINE_FORWARDER_ARGS`, e.g. `--nice 0`), for before/after in one run; `TERN_BENCH_VARIANTS=<settings;settings>`
//! adds a stack per `;`-separated list of `,`-separated `tern.*` settings (e.g.
//! `tern.propagate=0;tern.enabled=0`); `TERN_BENCH_ONLY=<label;label>` keeps only those
//! configurations besides the first; `TERN_BENCH_PERF=<dir>` records each wrk round's
//! whole-machine profile there (`perf record -a -g`), and the interleaved run's as one
//! file (`perf record -a -F 10000`, the stacks' worker pids printed to tell them apart).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tern_testkit::bench::{median, median_ci, paired_median, trimmed_mean, KeepAlive};
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

/// How the configurations of `TERN_BENCH_BASELINE_EXTENSION`'s builds are labelled.
const BASELINE: &str = "base ";

struct Config {
    label: String,
    stack: PhpStack,
    forwarder: Option<Forwarder>,
    /// How its stack was started (to start it anew, see [`interleaved`]).
    dir: PathBuf,
    options: FpmOptions,
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
    // (label, extension, the forwarder's collector, settings added to the extension's)
    type Plan<'a> = (
        String,
        Option<PathBuf>,
        Option<&'a str>,
        Vec<(String, String)>,
    );
    let mut plan: Vec<Plan> = [
        ("no extension", None, None),
        // The same as the first, in a stack of its own: how far two identical
        // configurations differ here is the resolution of every other comparison.
        ("no extension, again", None, None),
        (
            "tern.so+fwd+collector",
            Some(ext.clone()),
            Some(bed.collector.otlp_grpc.as_str()),
        ),
        ("tern.so+forwarder", Some(ext.clone()), Some(away.as_str())),
        ("tern.so, no forwarder", Some(ext.clone()), None),
    ]
    .into_iter()
    .map(|(label, ext, endpoint)| (label.to_string(), ext, endpoint, Vec::new()))
    .collect();
    // Other builds of the extension (e.g. the previous commit's) in the same run, so a
    // change is measured before/after under the same load: `:`-separated paths, each
    // labelled by its file name.
    let baselines = std::env::var("TERN_BENCH_BASELINE_EXTENSION").unwrap_or_default();
    for base in baselines.split(':').filter(|b| !b.is_empty()) {
        let name = Path::new(base)
            .file_name()
            .map_or(base.into(), |n| n.to_string_lossy());
        let label = format!("{BASELINE}{name}+fwd");
        plan.push((label, Some(base.into()), Some(&away), Vec::new()));
    }
    // The extension with other settings (`tern.propagate=0;tern.enabled=0`: one
    // configuration per `;`, settings within one separated by `,`), each with its forwarder.
    for variant in std::env::var("TERN_BENCH_VARIANTS")
        .unwrap_or_default()
        .split(';')
    {
        if !variant.trim().is_empty() {
            let ini = variant
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let label = format!("tern.so+fwd, {}", variant.trim());
            plan.push((label, Some(ext.clone()), Some(&away), ini));
        }
    }
    // `TERN_BENCH_ONLY=<label;label>`: those configurations only (besides the first, which
    // the others are compared with): fewer stacks taking turns leave each one's caches
    // less cold between its requests.
    // Builds of the same file name would share a label and so a directory (and its sockets).
    for (i, p) in plan.iter().enumerate() {
        assert!(
            plan[..i].iter().all(|q| q.0 != p.0),
            "two configurations labelled {:?}: give the builds different file names",
            p.0
        );
    }
    if let Ok(only) = std::env::var("TERN_BENCH_ONLY") {
        let keep: Vec<&str> = only.split(';').map(str::trim).collect();
        let first = plan[0].0.clone();
        plan.retain(|p| p.0 == first || keep.contains(&p.0.as_str()));
    }
    let mut configs: Vec<Config> = plan
        .into_iter()
        .map(|(label, ext, endpoint, ini)| {
            let dir = bed.dir(&label);
            // The baselines' forwarders may run with other arguments (`--nice 0`, ...).
            let args: Vec<String> = if label.starts_with(BASELINE) {
                std::env::var("TERN_BENCH_BASELINE_FORWARDER_ARGS")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            };
            let forwarder = endpoint.map(|e| Forwarder::start_with(&dir, e, &args));
            let options = match &ext {
                Some(ext) => {
                    let socket = forwarder
                        .as_ref()
                        .map_or_else(|| dir.join("none.sock"), |f| f.socket.clone());
                    let mut options = FpmOptions::bench(ext, &dir, &socket);
                    options.ini.extend(ini);
                    options
                }
                None => FpmOptions::default(),
            };
            Config {
                label,
                stack: PhpStack::start(&dir, &app, &options, &env),
                forwarder,
                dir,
                options,
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
    if only.as_deref().is_none_or(|o| o == "interleaved") {
        let requests: usize = bench_setting("TERN_BENCH_REQUESTS", 3000);
        let blocks: usize = bench_setting("TERN_BENCH_BLOCKS", 4).max(1);
        let restart = |c: &Config, block: usize| {
            let dir = c.dir.join(format!("block-{block}"));
            std::fs::create_dir_all(&dir).unwrap();
            PhpStack::start(&dir, &app, &c.options, &env)
        };
        let clients: usize = bench_setting("TERN_BENCH_CLIENTS", 1).max(1);
        let runs = interleaved(
            &mut configs,
            requests,
            blocks,
            clients,
            restart,
            perf_dir.as_deref(),
        );
        report_interleaved(blocks, clients, &configs, &runs);
    }
    println!("extension: {}", ext.display());
    println!(
        "forwarder heartbeat: {}",
        bed.collector.api("/api/v1/agents")
    );
}

/// What one configuration did in the interleaved load.
struct Interleaved {
    /// Each request's latency, µs, in the order of the rounds.
    latency_us: Vec<f64>,
    /// CPU used by php-fpm (ns, exact) and the forwarder (µs, clock ticks) during the
    /// rounds (restarts and warm-ups left out).
    fpm_ns: u64,
    fwd_us: u64,
}

/// The interleaved load: `rounds` times, one request to each configuration, in an order
/// shuffled anew each round, each request sent when the one before has been answered
/// (over one kept-alive connection per stack). Every configuration meets the machine in
/// the same state at nearly the same moment, so request by request the difference to
/// the no-extension request of the same round is what the configuration adds, with the
/// machine's slow and fast spells — and the background work of the collector and
/// forwarders, which then falls on all of them alike — taken out.
///
/// What pairing cannot take out is a difference between two stacks as started (where
/// their processes and memory landed): identical stacks came out up to ~15 µs apart.
/// So the rounds run in `blocks`, and before each block but the first every stack is
/// started anew (`restart`), drawing that difference again for each block.
fn interleaved(
    configs: &mut [Config],
    rounds: usize,
    blocks: usize,
    clients: usize,
    restart: impl Fn(&Config, usize) -> PhpStack,
    perf: Option<&Path>,
) -> Vec<Interleaved> {
    let cpu = |c: &Config| {
        (
            c.stack.fpm_run_ns(),
            c.forwarder.as_ref().map_or(0, Forwarder::cpu_us),
        )
    };
    let mut runs: Vec<Interleaved> = configs
        .iter()
        .map(|_| Interleaved {
            latency_us: Vec::with_capacity(rounds),
            fpm_ns: 0,
            fwd_us: 0,
        })
        .collect();
    // One whole-machine profile of the run; each stack's workers told apart by pid.
    let recorder = perf.map(|dir| {
        Command::new("perf")
            .args(["record", "-a", "-F", "10000", "-q", "-o"])
            .arg(dir.join("interleaved.data"))
            .spawn()
            .expect("perf")
    });
    // Every block adds the same number of rounds (what `report_interleaved` relies on).
    let per_client = rounds / blocks / clients;
    assert!(per_client > 0, "fewer rounds than blocks × clients");
    for block in 0..blocks {
        if block > 0 {
            for c in configs.iter_mut() {
                c.stack = restart(c, block);
            }
        }
        let urls: Vec<String> = configs.iter().map(|c| c.stack.url.clone()).collect();
        for url in &urls {
            let mut client = KeepAlive::new(url);
            for _ in 0..50 {
                client.get("/bench"); // warm-up: opcache, tables, connections
            }
        }
        if perf.is_some() {
            for c in configs.iter() {
                let pids: Vec<String> = c
                    .stack
                    .worker_rss_kib()
                    .iter()
                    .map(|(p, _)| p.to_string())
                    .collect();
                println!("perf: {} workers {}", c.label, pids.join(","));
            }
        }
        let before: Vec<(u64, u64)> = configs.iter().map(cpu).collect();
        // Each client its own rounds; a round's requests stay side by side in every
        // configuration's list (same position), so pairs line up across clients too.
        let results: Vec<Vec<Vec<f64>>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..clients)
                .map(|t| {
                    let urls = &urls;
                    let seed = 0x9e37_79b9_7f4a_7c15_u64 ^ ((block * clients + t) as u64 + 1);
                    scope.spawn(move || client_rounds(urls, per_client, seed))
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for latencies in results {
            for (run, l) in runs.iter_mut().zip(latencies) {
                run.latency_us.extend(l);
            }
        }
        for ((c, b), run) in configs.iter().zip(before).zip(&mut runs) {
            let a = cpu(c);
            run.fpm_ns += a.0.saturating_sub(b.0);
            run.fwd_us += a.1.saturating_sub(b.1);
        }
    }
    if let Some(mut r) = recorder {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(r.id() as i32, libc::SIGINT) };
        r.wait().unwrap();
    }
    runs
}

/// `rounds` rounds of one request to each of `urls` in an order shuffled anew each round
/// (Fisher-Yates with xorshift64 from `seed`: reproducible); each configuration's
/// latencies, µs, in round order.
fn client_rounds(urls: &[String], rounds: usize, mut seed: u64) -> Vec<Vec<f64>> {
    let mut clients: Vec<KeepAlive> = urls.iter().map(|u| KeepAlive::new(u)).collect();
    let mut latency: Vec<Vec<f64>> = urls.iter().map(|_| Vec::with_capacity(rounds)).collect();
    let mut order: Vec<usize> = (0..urls.len()).collect();
    for _ in 0..rounds {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let (status, took) = clients[i].get("/bench");
            assert_eq!(status, 200, "{}", urls[i]);
            latency[i].push(took.as_secs_f64() * 1e6);
        }
    }
    latency
}

fn report_interleaved(blocks: usize, clients: usize, configs: &[Config], runs: &[Interleaved]) {
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\ninterleaved: {} rounds of one /bench request to each configuration in a shuffled order, {clients} client(s) each sending one request at a time, in {blocks} blocks with stacks started anew; load average at the end: {}",
        runs[0].latency_us.len(),
        load_avg.trim()
    );
    // The interval holds the noise within blocks only: each block's stacks differ anew
    // by a few µs, so the per-block medians beside it are the spread to believe.
    println!(
        "{:<32} {:>8} {:>8} {:>29} {:>9} {:>9} {:>8} {:>9}  per block",
        "",
        "p50 us",
        "p90 us",
        "added: paired median [95% CI]",
        "trim.mean",
        "fpm us/r",
        "added",
        "fwd us/r"
    );
    let base = &runs[0];
    let rounds = runs[0].latency_us.len();
    let per_req = |ns: u64| ns as f64 / rounds as f64 / 1000.0;
    for (c, r) in configs.iter().zip(runs) {
        let mut sorted = r.latency_us.clone();
        sorted.sort_by(f64::total_cmp);
        let diffs: Vec<f64> = r
            .latency_us
            .iter()
            .zip(&base.latency_us)
            .map(|(a, b)| a - b)
            .collect();
        let (lo, mid, hi) = median_ci(diffs.clone());
        // Blocks are of equal size (see `interleaved`).
        let per_block: Vec<String> = diffs
            .chunks(diffs.len() / blocks)
            .map(|b| format!("{:+.0}", median(b.to_vec())))
            .collect();
        println!(
            "{:<32} {:>8.0} {:>8.0} {:>29} {:>9.1} {:>9.1} {:>8.1} {:>9.1}  {}",
            c.label,
            sorted[sorted.len() / 2],
            sorted[sorted.len() * 9 / 10],
            format!("{mid:+.1} [{lo:+.1}, {hi:+.1}]"),
            trimmed_mean(diffs, 0.1),
            per_req(r.fpm_ns),
            per_req(r.fpm_ns) - per_req(base.fpm_ns),
            r.fwd_us as f64 / rounds as f64,
            per_block.join(" "),
        );
    }
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
