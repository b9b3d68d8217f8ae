//! Cost per span, side by side in one run: no subscriber, the `tracing-subscriber`
//! registry alone, `tracing-opentelemetry` with the OpenTelemetry SDK batch exporter to
//! a no-op exporter, and the Tern layer (spans encoded to OTLP protobuf bytes and
//! discarded on the exporter thread). One span = new, enter, exit, close, with three fields.
//!
//! `cargo bench -p tern-agent --bench span_cost`
//!
//! After criterion's figures it prints allocations per span on the application thread
//! (a counting global allocator) and the Tern layer's export counters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tern_testkit::bench::{median, run_ns};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

// ---- allocation counting (application thread only) ----

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT_HERE.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT_HERE.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- the stacks ----

#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        drop(black_box(batch));
        async { Ok(()) }
    }
}

struct Stack {
    name: &'static str,
    dispatch: Dispatch,
    tern: Option<(tern_agent::TernLayer, tern_agent::Guard)>,
    _otel: Option<SdkTracerProvider>,
}

fn stacks() -> Vec<Stack> {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(NoopExporter)
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    // Exporter keeping up: drained every 5 ms, every span converted to OTLP.
    let (tern, guard) = tern_agent::builder()
        .service_name("bench")
        .transport(tern_agent::Transport::Discard)
        .queue_size(1 << 16)
        .export_interval(Duration::from_millis(5))
        .build()
        .expect("tern layer");
    // Defaults (queue 16384, drained every 200 ms): at millions of spans per second the
    // queue fills and most spans take the drop path, like the SDK batch processor's
    // default queue of 2048 spans does for tracing-opentelemetry.
    let (tern_default, guard_default) = tern_agent::builder()
        .service_name("bench")
        .transport(tern_agent::Transport::Discard)
        .build()
        .expect("tern layer");
    vec![
        Stack {
            name: "no subscriber",
            dispatch: Dispatch::none(),
            tern: None,
            _otel: None,
        },
        Stack {
            name: "registry alone",
            dispatch: Dispatch::new(tracing_subscriber::registry()),
            tern: None,
            _otel: None,
        },
        Stack {
            name: "tracing-opentelemetry + SDK batch (no-op exporter)",
            dispatch: Dispatch::new(tracing_subscriber::registry().with(otel)),
            tern: None,
            _otel: Some(provider),
        },
        Stack {
            name: "tern-agent layer (exporting every span)",
            dispatch: Dispatch::new(tracing_subscriber::registry().with(tern.clone())),
            tern: Some((tern, guard)),
            _otel: None,
        },
        Stack {
            name: "tern-agent layer (default queue)",
            dispatch: Dispatch::new(tracing_subscriber::registry().with(tern_default.clone())),
            tern: Some((tern_default, guard_default)),
            _otel: None,
        },
    ]
}

/// One span: new, enter, exit, close, three fields.
#[inline(never)]
fn one_span(i: u64) {
    let span = tracing::info_span!("load_cart", user.id = i, cart.kind = "web", cached = false);
    let _entered = span.enter();
    black_box(&span);
}

/// Runs `f` inside an open transaction (an entry span), so each measured span is a
/// method in a call tree, as in a real service.
fn in_transaction<R>(d: &Dispatch, f: impl FnOnce() -> R) -> R {
    tracing::dispatcher::with_default(d, || {
        let root = tracing::info_span!("GET /cart", otel.kind = "server", http.route = "/cart");
        let _g = root.enter();
        f()
    })
}

fn bench(c: &mut Criterion) {
    let stacks = stacks();
    let mut g = c.benchmark_group("span (new+enter+exit+close, 3 fields)");
    for s in &stacks {
        g.bench_function(s.name, |b| {
            in_transaction(&s.dispatch, || {
                let mut i = 0u64;
                b.iter(|| {
                    i += 1;
                    one_span(i)
                })
            })
        });
    }
    g.finish();

    if std::env::var_os("SPAN_COST_NO_TABLE").is_some() {
        return; // profiling criterion's loop alone
    }
    println!("\nper span, plain loop of {SPANS} spans, median of {ROUNDS} interleaved rounds:");
    let mut runs: Vec<Vec<Figures>> = stacks.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (s, r) in stacks.iter().zip(&mut runs) {
            r.push(in_transaction(&s.dispatch, measure));
        }
    }
    let figs: Vec<Figures> = runs.iter().map(|r| Figures::median(r)).collect();
    println!(
        "| stack | wall ns | app-thread CPU ns | background CPU ns | allocations (app thread) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (s, f) in stacks.iter().zip(&figs) {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} |",
            s.name, f.wall_ns, f.cpu_ns, f.background_ns, f.allocs
        );
    }
    // The layer's own cost: what it adds above the registry it runs on.
    let find = |part: &str| stacks.iter().position(|s| s.name.contains(part));
    if let (Some(reg), Some(otel)) = (find("registry alone"), find("opentelemetry")) {
        let above = |i: usize, f: fn(&Figures) -> f64| f(&figs[i]) - f(&figs[reg]);
        let wall: fn(&Figures) -> f64 = |f| f.wall_ns;
        let cpu: fn(&Figures) -> f64 = |f| f.cpu_ns;
        let total: fn(&Figures) -> f64 = |f| f.cpu_ns + f.background_ns;
        println!("\nabove the registry alone (the layer's own cost), and tracing-opentelemetry's / this stack's:");
        println!("| stack | wall ns above | × | app CPU ns above | × | app+background CPU ns above | × |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (i, s) in stacks.iter().enumerate() {
            if i == reg || s.name == "no subscriber" {
                continue;
            }
            let mut row = format!("| {} ", s.name);
            for f in [wall, cpu, total] {
                let (mine, theirs) = (above(i, f), above(otel, f));
                row += &format!("| {mine:.0} | {:.1} ", theirs / mine.max(1.0));
            }
            println!("{row}|");
        }
    }
    two_threads(&stacks);
    clock_costs();
    for s in stacks {
        if let Some((layer, guard)) = s.tern {
            drop(guard);
            let st = layer.stats();
            println!(
                "\n{}: exported {} dropped {} (drops: the queue was full)",
                s.name, st.exported_spans, st.dropped_spans
            );
        }
    }
}

/// The same loop on one thread, then on two threads at once (each in its own
/// transaction): whether spans of different threads slow each other down (the Tern
/// layer's records table takes a shard lock per span start and end; the registry has
/// its own shared structures). Wall ns per span per thread, medians of 3 rounds; on a
/// 2-core machine the exporter thread competes with the two application threads.
fn two_threads(stacks: &[Stack]) {
    const N: u64 = 500_000;
    let run = |d: &Dispatch| {
        let start = Instant::now();
        in_transaction(d, || {
            for i in 0..N {
                one_span(i);
            }
        });
        start.elapsed().as_nanos() as f64 / N as f64
    };
    println!(
        "
one thread vs two threads at once, wall ns per span per thread (medians of 3):"
    );
    println!("| stack | 1 thread | 2 threads | × |");
    println!("| --- | ---: | ---: | ---: |");
    for s in stacks.iter().filter(|s| s.name != "no subscriber") {
        let one = median((0..3).map(|_| run(&s.dispatch)).collect());
        let two = median(
            (0..3)
                .map(|_| {
                    std::thread::scope(|t| {
                        let a = t.spawn(|| run(&s.dispatch));
                        let b = t.spawn(|| run(&s.dispatch));
                        (a.join().unwrap() + b.join().unwrap()) / 2.0
                    })
                })
                .collect(),
        );
        println!("| {} | {one:.0} | {two:.0} | {:.2} |", s.name, two / one);
    }
}

/// What one clock reading costs here: the span clock reads the TSC when the kernel's
/// clocksource is `tsc`, else `clock_gettime(CLOCK_REALTIME)`.
fn clock_costs() {
    const N: u32 = 10_000_000;
    let time = |f: &dyn Fn() -> u64| {
        let start = Instant::now();
        let mut acc = 0u64;
        for _ in 0..N {
            acc = acc.wrapping_add(f());
        }
        black_box(acc);
        start.elapsed().as_nanos() as f64 / f64::from(N)
    };
    let realtime = time(&|| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out-pointer for clock_gettime.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        ts.tv_nsec as u64
    });
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64.
        let tsc = time(&|| unsafe { core::arch::x86_64::_rdtsc() });
        println!("\none clock reading: clock_gettime(CLOCK_REALTIME) {realtime:.1} ns, rdtsc {tsc:.1} ns");
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("\none clock reading: clock_gettime(CLOCK_REALTIME) {realtime:.1} ns");
}

const SPANS: u64 = 1_000_000;
const ROUNDS: usize = 3;

/// CPU time of the calling thread.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of every other thread of this process (exporter threads), from
/// `/proc/self/task/*/schedstat` (nanoseconds).
fn background_cpu_ns() -> u64 {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&tid| tid != me)
        .map(run_ns)
        .sum()
}

struct Figures {
    wall_ns: f64,
    cpu_ns: f64,
    background_ns: f64,
    allocs: f64,
}

impl Figures {
    fn median(runs: &[Figures]) -> Figures {
        let med = |f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
        Figures {
            wall_ns: med(|f| f.wall_ns),
            cpu_ns: med(|f| f.cpu_ns),
            background_ns: med(|f| f.background_ns),
            allocs: med(|f| f.allocs),
        }
    }
}

fn measure() -> Figures {
    for i in 0..10_000 {
        one_span(i);
    }
    COUNT_HERE.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::Relaxed);
    let bg = background_cpu_ns();
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    for i in 0..SPANS {
        one_span(i);
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu_ns() - cpu;
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    COUNT_HERE.with(|c| c.set(false));
    // Let the exporter catch up with what was queued, then read its CPU time.
    std::thread::sleep(Duration::from_millis(300));
    let bg = background_cpu_ns() - bg;
    let per = |v: f64| v / SPANS as f64;
    Figures {
        wall_ns: per(elapsed.as_nanos() as f64),
        cpu_ns: per(cpu as f64),
        background_ns: per(bg as f64),
        allocs: per(allocs as f64),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench
}

/// `SPAN_COST_STACK=<part of a stack name>`: a plain loop of `SPAN_COST_SPANS` spans on that
/// stack only, no criterion (for `valgrind --tool=callgrind` and `perf record`).
fn profile_one(filter: &str) {
    let spans: u64 = std::env::var("SPAN_COST_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let stacks = stacks();
    let s = stacks
        .iter()
        .find(|s| s.name.contains(filter))
        .expect("SPAN_COST_STACK matches no stack name");
    in_transaction(&s.dispatch, || {
        for i in 0..spans {
            one_span(i);
        }
    });
    println!("{}: {spans} spans", s.name);
}

fn main() {
    if let Ok(filter) = std::env::var("SPAN_COST_STACK") {
        return profile_one(&filter);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
