//! A sender task: takes encoded requests from the queue and exports each, retrying
//! with backoff on backpressure and retryable errors until the run stops.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch, Mutex};

use super::stats::Stats;
use super::Payload;
use crate::send::{Backoff, Exporter, Outcome};

pub(super) struct Sender {
    pub(super) exporter: Exporter,
    pub(super) rx: Arc<Mutex<mpsc::Receiver<Payload>>>,
    pub(super) stats: Arc<Stats>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) target: String,
}

impl Sender {
    pub(super) async fn run(mut self) {
        loop {
            let next = self.rx.lock().await.recv().await;
            let Some(payload) = next else { return };
            self.send(payload).await;
        }
    }

    async fn send(&mut self, payload: Payload) {
        let mut backoff = Backoff::default();
        loop {
            let t = Instant::now();
            let wait = match self.exporter.export(payload.body.clone()).await {
                Outcome::Accepted { rejected_spans } => {
                    self.stats
                        .accepted(payload.generated, rejected_spans, t.elapsed());
                    return;
                }
                Outcome::Throttled { retry_after, .. } => {
                    self.stats.throttled();
                    backoff.wait(retry_after)
                }
                Outcome::Unreachable { error } => {
                    if self.stats.error(error.clone(), true) {
                        eprintln!(
                            "warning: cannot reach {}: {error} (retrying with backoff)",
                            self.target
                        );
                    }
                    backoff.wait(None)
                }
                Outcome::Failed { error, retryable } => {
                    self.stats.error(error, false);
                    if !retryable {
                        self.stats.dropped();
                        return;
                    }
                    backoff.wait(None)
                }
            };
            if *self.stop.borrow() {
                self.stats.dropped();
                return;
            }
            self.stats.retry();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.changed() => {
                    self.stats.dropped();
                    return;
                }
            }
        }
    }
}
