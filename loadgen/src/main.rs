//! `tern-loadgen`: sends realistic OTLP trace traffic to a collector.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tern_loadgen::run::{dry_run, run, RunConfig};
use tern_loadgen::{Mix, MixOptions, MixProfile, Protocol};

/// Sends realistic OTLP trace traffic (a five-service shop: SQL, external calls,
/// cross-service traces, errors, slow outliers) to a collector at a chosen rate.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Collector endpoint [default: http://127.0.0.1:4317 for grpc, :4318 for http-*].
    /// For OTLP/HTTP, `/v1/traces` is appended unless present.
    #[arg(long, env = "TERN_LOADGEN_ENDPOINT")]
    endpoint: Option<String>,
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "grpc")]
    protocol: Protocol,
    /// Gzip request bodies.
    #[arg(long)]
    gzip: bool,
    /// Front-door transactions (traces) per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// How long to run: `90s`, `5m`, `1h`, `500ms`, or `forever`.
    #[arg(long, default_value = "60s", value_parser = parse_period)]
    duration: Period,
    /// Traces per request.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed of the traffic model (same seed, same services and traffic).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of services: fewer than 5 keeps the first ones, more repeats the shop
    /// as `shop-frontend-2`, ….
    #[arg(long, default_value_t = 5)]
    services: usize,
    /// Share of transactions that fail.
    #[arg(long, default_value_t = 0.02)]
    error_rate: f64,
    /// Share of traces with a slow outlier (seconds).
    #[arg(long, default_value_t = 0.005)]
    slow_rate: f64,
    /// Progress line interval.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    report_every: Duration,
    /// Timeout of one export attempt.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Replay N pre-encoded requests with fresh ids and timestamps instead of generating
    /// every request: the cheapest load, for benchmarks (grpc and http-protobuf only).
    #[arg(long, value_name = "N")]
    replay: Option<usize>,
    /// Only generate and encode (as fast as possible, for `--duration`, 10 s if
    /// forever) and print spans/s; send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A run length: a duration, or `None` for forever.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Period(Option<Duration>);

fn parse_period(s: &str) -> Result<Period, String> {
    if s.trim().eq_ignore_ascii_case("forever") {
        return Ok(Period(None));
    }
    parse_duration(s).map(|d| Period(Some(d)))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 60s, 5m, forever)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = MixOptions {
        services: args.services.max(1),
        error_rate: args.error_rate,
        slow_rate: args.slow_rate,
    };
    print_mix(args.seed, &options, args.batch);

    let endpoint = args
        .endpoint
        .unwrap_or_else(|| args.protocol.default_endpoint().to_string());
    let config = RunConfig {
        endpoint: endpoint.clone(),
        protocol: args.protocol,
        gzip: args.gzip,
        rate: args.rate,
        duration: args.duration.0,
        batch: args.batch.max(1),
        concurrency: args.concurrency.max(1),
        seed: args.seed,
        mix: options,
        report_every: (!args.report_every.is_zero()).then_some(args.report_every),
        timeout: args.timeout,
        stop_on_ctrl_c: true,
        replay: args.replay,
    };
    if args.dry_run {
        let report = dry_run(&config, config.duration.unwrap_or(Duration::from_secs(10)));
        println!(
            "{}",
            report.line(config.protocol, config.gzip, config.replay.is_some())
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "sending {}{} to {endpoint}: rate {}, batch {}, concurrency {}, duration {}",
        config.protocol.name(),
        if config.gzip { " (gzip)" } else { "" },
        if config.rate > 0.0 {
            format!("{} traces/s", config.rate)
        } else {
            "max".into()
        },
        config.batch,
        config.concurrency,
        config
            .duration
            .map_or("forever".into(), |d| format!("{d:?}")),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = match runtime.block_on(run(config)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", summary.summary_line());
    if summary.requests_ok == 0 && summary.errors + summary.throttled > 0 {
        let last = summary.last_error.as_deref().unwrap_or("none");
        if summary.unreachable > 0 {
            eprintln!("error: {endpoint} was unreachable for the whole run (last error: {last})");
        } else {
            eprintln!("error: {endpoint} accepted no request during the run (last error: {last})");
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Prints the mix and its standard figures (spans per transaction, bytes per span).
fn print_mix(seed: u64, options: &MixOptions, batch: usize) {
    let mix = Mix::new(seed, options.clone());
    let names: Vec<&str> = mix.service_names().collect();
    let p = MixProfile::measure(seed, options.clone(), 500, batch.max(1));
    let shown = if names.len() > 6 {
        format!("{}, …, {}", names[..5].join(", "), names[names.len() - 1])
    } else {
        names.join(", ")
    };
    println!(
        "mix: {} services ({shown}), {} instances",
        names.len(),
        mix.instance_count()
    );
    println!(
        "mix: {:.1} spans/trace, {:.2} transactions/trace, {:.1} spans/transaction; {:.0} bytes/span protobuf ({:.0} gzip), {:.0} bytes/span json",
        p.spans_per_trace(),
        p.transactions_per_trace(),
        p.spans_per_transaction(),
        p.protobuf_bytes_per_span(),
        p.protobuf_gzip_bytes_per_span(),
        p.json_bytes_per_span(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_period("forever"), Ok(Period(None)));
        assert_eq!(
            parse_period("1h"),
            Ok(Period(Some(Duration::from_secs(3600))))
        );
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
