//! The generator thread: builds and encodes requests at the configured rate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::mpsc;

use super::stats::Stats;
use super::{Payload, RunConfig};
use crate::encode::{encode_body, gzip_bytes, Protocol};
use crate::mix::Mix;
use crate::replay::Replay;

/// Longest time a generated trace waits for its batch to fill at low rates.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(250);
/// Longest sleep between checks of the stop flag.
const MAX_SLEEP: Duration = Duration::from_millis(100);

pub(super) fn generate(
    config: &RunConfig,
    tx: mpsc::Sender<Payload>,
    stop: &AtomicBool,
    stats: &Stats,
) {
    let mut mix = Mix::new(config.seed, config.mix.clone());
    let mut req = ExportTraceServiceRequest::default();
    let batch = config.batch.max(1);
    let mut replay = config
        .replay
        .map(|n| Replay::new(&mut mix, n, batch, config.seed));
    let rate = config.rate.max(0.0);
    let started = Instant::now();
    let mut produced: f64 = 0.0;
    let mut last_send = started;
    while !stop.load(Ordering::Relaxed) {
        let n = if rate == 0.0 {
            batch
        } else {
            let now = Instant::now();
            let due = now.duration_since(started).as_secs_f64() * rate;
            let mut backlog = due - produced;
            // More than a second behind (the collector pushed back): skip, don't burst.
            let cap = rate.max(2.0 * batch as f64);
            if backlog > cap {
                let skip = (backlog - batch as f64).floor();
                produced += skip;
                backlog -= skip;
                stats.skipped(skip as u64);
            }
            if backlog >= batch as f64 {
                batch
            } else if replay.is_none()
                && backlog >= 1.0
                && now.duration_since(last_send) >= MAX_BATCH_WAIT
            {
                backlog.floor() as usize
            } else {
                let full_at = started + Duration::from_secs_f64((produced + batch as f64) / rate);
                let one_at = started + Duration::from_secs_f64((produced + 1.0) / rate);
                let flush_at = if replay.is_some() {
                    full_at
                } else {
                    (last_send + MAX_BATCH_WAIT).max(one_at)
                };
                let wake = full_at.min(flush_at).min(now + MAX_SLEEP);
                std::thread::sleep(wake.saturating_duration_since(now));
                continue;
            }
        };
        produced += n as f64;
        last_send = Instant::now();
        let (body, generated) = if let Some(replay) = &mut replay {
            let (body, generated) = replay.next_body(SystemTime::now());
            if config.gzip && config.protocol == Protocol::HttpProtobuf {
                (gzip_bytes(&body).into(), generated)
            } else {
                (body, generated)
            }
        } else {
            let generated = mix.fill_request(&mut req, n, SystemTime::now());
            match encode_body(&req, config.protocol, config.gzip) {
                Ok(b) => (b, generated),
                Err(e) => {
                    stats.error(e.to_string(), false);
                    continue;
                }
            }
        };
        if tx.blocking_send(Payload { body, generated }).is_err() {
            break;
        }
    }
}
