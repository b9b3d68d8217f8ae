//! `tern-bench`: end-to-end figures for docs/benchmarks.md, from the real release
//! binaries on this machine. Prints Tern's measured figures beside the published figures
//! of the tools a user would otherwise pick (labelled as published: those tools cannot be
//! installed here).
//!
//! - `tern-bench ingest`: the collector with its embedded store, fed by `tern-loadgen`
//!   at full speed; sustained spans/s into the store, stored bytes per span, and
//!   ingest-to-queryable latency measured by probe transactions during the load.
//! - `tern-bench query`: 10M transactions (and their spans) seeded by SQL, then the
//!   API's X-View, endpoint-statistics and trace-by-id times.

mod collector;
mod ingest;
mod query;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Args {
    /// Directory of the release binaries (tern-collector, tern-loadgen).
    #[arg(long, default_value = "target/release")]
    bin_dir: std::path::PathBuf,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Sustained OTLP ingest into the embedded store.
    Ingest(ingest::Options),
    /// Query times over millions of stored transactions.
    Query(query::Options),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.what {
        What::Ingest(o) => ingest::run(&args.bin_dir, o),
        What::Query(o) => query::run(&args.bin_dir, o),
    }
}

/// Percentile of sorted values.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}
