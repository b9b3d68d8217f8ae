//! `--dry-run`: how fast the generator alone produces (and encodes) spans.

use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::RunConfig;
use crate::encode::{encode_body, gzip_bytes, Protocol};
use crate::mix::{Generated, Mix};
use crate::replay::Replay;

/// Throughput of the generator without any sending.
#[derive(Debug, Clone, Default)]
pub struct DryRunReport {
    /// What was generated.
    pub generated: Generated,
    /// Requests built.
    pub requests: u64,
    /// Bytes of the encoded bodies.
    pub bytes: u64,
    /// Time spent building requests.
    pub generate_time: Duration,
    /// Time spent encoding (and compressing) them.
    pub encode_time: Duration,
}

impl DryRunReport {
    /// Spans per second of building requests alone.
    pub fn generate_spans_per_sec(&self) -> f64 {
        self.generated.spans as f64 / self.generate_time.as_secs_f64().max(1e-9)
    }

    /// Spans per second of building and encoding.
    pub fn total_spans_per_sec(&self) -> f64 {
        self.generated.spans as f64
            / (self.generate_time + self.encode_time)
                .as_secs_f64()
                .max(1e-9)
    }

    /// A line with the figures.
    pub fn line(&self, protocol: Protocol, gzip: bool, replay: bool) -> String {
        let spans = self.generated.spans.max(1) as f64;
        format!(
            "dry run: {} spans in {} requests; {} {:.0} spans/s ({:.0} ns/span); with encoding ({}{}) {:.0} spans/s ({:.0} ns/span); {:.0} bytes/span",
            self.generated.spans,
            self.requests,
            if replay { "replay" } else { "generate" },
            self.generate_spans_per_sec(),
            self.generate_time.as_nanos() as f64 / spans,
            protocol.name(),
            if gzip { ", gzip" } else { "" },
            self.total_spans_per_sec(),
            (self.generate_time + self.encode_time).as_nanos() as f64 / spans,
            self.bytes as f64 / spans,
        )
    }
}

/// Builds and encodes requests as a run with `config` would (generated, or replayed
/// if `config.replay` is set) on this thread for `duration`, without sending.
pub fn dry_run(config: &RunConfig, duration: Duration) -> DryRunReport {
    let mut mix = Mix::new(config.seed, config.mix.clone());
    let batch = config.batch.max(1);
    let mut replay = config
        .replay
        .map(|n| Replay::new(&mut mix, n, batch, config.seed));
    let mut req = ExportTraceServiceRequest::default();
    let mut report = DryRunReport::default();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t0 = Instant::now();
        let (bytes, t1) = if let Some(replay) = &mut replay {
            let (body, generated) = replay.next_body(SystemTime::now());
            report.generated += generated;
            let t1 = Instant::now();
            let zipped = config.gzip && config.protocol != Protocol::Grpc;
            (
                if zipped {
                    gzip_bytes(&body).len()
                } else {
                    body.len()
                },
                t1,
            )
        } else {
            report.generated += mix.fill_request(&mut req, batch, SystemTime::now());
            let t1 = Instant::now();
            (
                encode_body(&req, config.protocol, config.gzip).map_or(0, |b| b.len()),
                t1,
            )
        };
        let t2 = Instant::now();
        report.bytes += bytes as u64;
        report.generate_time += t1 - t0;
        report.encode_time += t2 - t1;
        report.requests += 1;
    }
    report
}
