//! A load run: one generator thread encodes requests at the chosen rate into a bounded
//! queue; `concurrency` sender tasks export them, retrying with backoff on backpressure
//! (honouring `Retry-After`); a reporter prints progress. The queue blocks the
//! generator when full, so a slow collector slows the run instead of growing memory;
//! falling more than a second behind the rate skips traces (counted).

mod dry;
mod generate;
mod sender;
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Mutex};

pub use dry::{dry_run, DryRunReport};
pub use stats::Summary;

use crate::encode::Protocol;
use crate::mix::{Generated, MixOptions};
use crate::send::{Exporter, SendError};
use stats::Stats;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Collector endpoint, `http://host:port` (`/v1/traces` is added for OTLP/HTTP).
    pub endpoint: String,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Gzip request bodies.
    pub gzip: bool,
    /// Front-door transactions (traces) per second; 0 = as fast as possible.
    pub rate: f64,
    /// How long to generate; `None` = until stopped.
    pub duration: Option<Duration>,
    /// Traces per request (fewer when a low rate would otherwise delay data > 250 ms).
    pub batch: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Seed of the traffic model.
    pub seed: u64,
    /// The traffic model's knobs.
    pub mix: MixOptions,
    /// Print a progress line this often; `None` = quiet.
    pub report_every: Option<Duration>,
    /// Timeout of one export attempt.
    pub timeout: Duration,
    /// Stop (gracefully) on Ctrl-C.
    pub stop_on_ctrl_c: bool,
    /// Replay this many pre-encoded requests with fresh ids and times instead of
    /// generating each request (protobuf protocols only; always whole batches).
    pub replay: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            endpoint: Protocol::Grpc.default_endpoint().to_string(),
            protocol: Protocol::Grpc,
            gzip: false,
            rate: 200.0,
            duration: Some(Duration::from_secs(60)),
            batch: 50,
            concurrency: 4,
            seed: 1,
            mix: MixOptions::default(),
            report_every: Some(Duration::from_secs(5)),
            timeout: Duration::from_secs(10),
            stop_on_ctrl_c: false,
            replay: None,
        }
    }
}

/// The run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The exporter could not be set up.
    #[error(transparent)]
    Send(#[from] SendError),
    /// Replay patches protobuf bytes; JSON bodies cannot be replayed.
    #[error("--replay needs a protobuf protocol (grpc or http-protobuf)")]
    ReplayNeedsProtobuf,
}

/// An encoded request and what it holds.
pub(crate) struct Payload {
    pub(crate) body: Bytes,
    pub(crate) generated: Generated,
}

/// Runs the load until the duration ends (or Ctrl-C, if enabled) and returns the totals.
/// Must be called inside a tokio runtime.
pub async fn run(config: RunConfig) -> Result<Summary, RunError> {
    if config.replay.is_some() && config.protocol == Protocol::HttpJson {
        return Err(RunError::ReplayNeedsProtobuf);
    }
    let exporter = Exporter::new(
        &config.endpoint,
        config.protocol,
        config.gzip,
        config.timeout,
    )?;
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let stop_gen = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel::<Payload>(config.concurrency.max(1));
    let rx = Arc::new(Mutex::new(rx));

    let generator = {
        let (config, stats, stop) = (config.clone(), stats.clone(), stop_gen.clone());
        std::thread::Builder::new()
            .name("loadgen-generator".into())
            .spawn(move || generate::generate(&config, tx, &stop, &stats))
            .expect("spawning the generator thread")
    };
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let s = sender::Sender {
            exporter: exporter.clone(),
            rx: rx.clone(),
            stats: stats.clone(),
            stop: stop_rx.clone(),
            target: exporter.target().to_string(),
        };
        senders.spawn(s.run());
    }
    let reporter = config.report_every.map(|every| {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut prev = Summary::default();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let now = stats.snapshot(started.elapsed());
                println!("{}", now.progress_line(&prev));
                prev = now;
            }
        })
    });

    let deadline = async {
        match config.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let ctrl_c = async {
        if config.stop_on_ctrl_c {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = deadline => {}
        _ = ctrl_c => eprintln!("stopping (ctrl-c)"),
    }

    // Stop generating, let the senders finish what is queued (one attempt each), then
    // give up on anything still hanging.
    stop_gen.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let elapsed = started.elapsed();
    let drain = tokio::time::sleep(config.timeout + Duration::from_secs(2));
    tokio::pin!(drain);
    loop {
        tokio::select! {
            next = senders.join_next() => if next.is_none() { break },
            _ = &mut drain => { senders.abort_all(); break }
        }
    }
    if let Some(r) = reporter {
        r.abort();
    }
    // The generator notices the stop flag or the closed queue within 100 ms.
    drop(rx);
    let _ = tokio::task::spawn_blocking(move || generator.join()).await;
    Ok(stats.snapshot(elapsed))
}
