//! Counters of a run, shared by the generator, the senders and the reporter.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::mix::Generated;

/// Live counters; [`Stats::snapshot`] reads them.
#[derive(Default)]
pub(crate) struct Stats {
    traces: AtomicU64,
    transactions: AtomicU64,
    spans: AtomicU64,
    requests_ok: AtomicU64,
    rejected_spans: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    unreachable: AtomicU64,
    retries: AtomicU64,
    dropped_requests: AtomicU64,
    skipped_traces: AtomicU64,
    latency_us: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    pub(crate) fn accepted(&self, g: Generated, rejected: u64, latency: Duration) {
        self.traces.fetch_add(g.traces, Relaxed);
        self.transactions.fetch_add(g.transactions, Relaxed);
        self.spans.fetch_add(g.spans, Relaxed);
        self.requests_ok.fetch_add(1, Relaxed);
        self.rejected_spans.fetch_add(rejected, Relaxed);
        self.latency_us
            .fetch_add(latency.as_micros() as u64, Relaxed);
    }

    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }

    /// Counts an error; returns true the first time an unreachable endpoint is seen.
    pub(crate) fn error(&self, error: String, unreachable: bool) -> bool {
        self.errors.fetch_add(1, Relaxed);
        let first = unreachable && self.unreachable.fetch_add(1, Relaxed) == 0;
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
        first
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn skipped(&self, traces: u64) {
        self.skipped_traces.fetch_add(traces, Relaxed);
    }

    pub(crate) fn snapshot(&self, elapsed: Duration) -> Summary {
        Summary {
            elapsed,
            traces: self.traces.load(Relaxed),
            transactions: self.transactions.load(Relaxed),
            spans: self.spans.load(Relaxed),
            requests_ok: self.requests_ok.load(Relaxed),
            rejected_spans: self.rejected_spans.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            errors: self.errors.load(Relaxed),
            unreachable: self.unreachable.load(Relaxed),
            retries: self.retries.load(Relaxed),
            dropped_requests: self.dropped_requests.load(Relaxed),
            skipped_traces: self.skipped_traces.load(Relaxed),
            latency_us: self.latency_us.load(Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// Totals of a run (or of a run so far).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Traces in accepted requests.
    pub traces: u64,
    /// Transactions (entry spans) in accepted requests.
    pub transactions: u64,
    /// Spans in accepted requests (rejected ones included; see `rejected_spans`).
    pub spans: u64,
    /// Requests accepted.
    pub requests_ok: u64,
    /// Spans the collector rejected in accepted requests (OTLP partial success).
    pub rejected_spans: u64,
    /// Backpressure answers: HTTP 429/503, gRPC RESOURCE_EXHAUSTED/UNAVAILABLE.
    pub throttled: u64,
    /// Failed attempts of any other kind, unreachable endpoint included.
    pub errors: u64,
    /// Attempts that could not reach the endpoint.
    pub unreachable: u64,
    /// Attempts repeated after a throttle or a retryable error.
    pub retries: u64,
    /// Requests given up (not retryable, or the run ended while retrying).
    pub dropped_requests: u64,
    /// Traces never generated because sending fell more than a second behind the rate.
    pub skipped_traces: u64,
    /// Sum of the latencies of accepted requests, in microseconds.
    pub latency_us: u64,
    /// The last error seen.
    pub last_error: Option<String>,
}

impl Summary {
    /// One progress line for the interval since `prev`.
    pub fn progress_line(&self, prev: &Summary) -> String {
        let secs = (self.elapsed - prev.elapsed).as_secs_f64().max(1e-9);
        let ok = self.requests_ok - prev.requests_ok;
        let avg_ms = if ok == 0 {
            0.0
        } else {
            (self.latency_us - prev.latency_us) as f64 / ok as f64 / 1000.0
        };
        format!(
            "{:>6.0}s  traces/s {:>8.1}  tx/s {:>8.1}  spans/s {:>9.0}  requests ok {:>7}  rejected spans {}  throttled {}  errors {}  avg latency {:.1}ms",
            self.elapsed.as_secs_f64(),
            (self.traces - prev.traces) as f64 / secs,
            (self.transactions - prev.transactions) as f64 / secs,
            (self.spans - prev.spans) as f64 / secs,
            self.requests_ok,
            self.rejected_spans,
            self.throttled,
            self.errors,
            avg_ms,
        )
    }

    /// The final summary line.
    pub fn summary_line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "summary: {:.1}s  {} traces ({:.1}/s)  {} tx ({:.1}/s)  {} spans ({:.0}/s)  requests ok {}  rejected spans {}  throttled {}  errors {}  retries {}  dropped requests {}",
            secs,
            self.traces,
            self.traces as f64 / secs,
            self.transactions,
            self.transactions as f64 / secs,
            self.spans,
            self.spans as f64 / secs,
            self.requests_ok,
            self.rejected_spans,
            self.throttled,
            self.errors,
            self.retries,
            self.dropped_requests,
        );
        if self.skipped_traces > 0 {
            line.push_str(&format!(
                "  skipped traces {} (could not keep the rate)",
                self.skipped_traces
            ));
        }
        line
    }
}
