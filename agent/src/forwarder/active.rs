//! Once a second: the running PHP transactions, read from the extension's shared-memory
//! slots (`tern_php_wire::ActiveMap`), reported per PHP service over
//! `tern.v1.LiveService` with the agent's [`LiveSession`] (one session, so one agent
//! entry in the collector, per service), with the forwarder's counters as heartbeat.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tern_php_wire::{ActiveMap, SlotSnapshot};
use tern_proto::v1::{ActiveTransaction, ActivityKind, AgentHello};
use tokio::sync::watch;
use tonic::transport::Channel;

use super::{Config, Counters};
use crate::live::{Beat, LiveSession};

/// The PHP services seen so far (in frames or slots).
#[derive(Debug, Default)]
pub(crate) struct Services(Mutex<BTreeSet<String>>);

impl Services {
    pub(crate) fn saw(&self, service: &str) {
        let mut s = self.0.lock();
        if !s.contains(service) {
            s.insert(service.to_string());
        }
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().iter().cloned().collect()
    }
}

/// One running slot as a `tern.v1` active transaction.
pub(crate) fn transaction(s: &SlotSnapshot) -> ActiveTransaction {
    ActiveTransaction {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        endpoint: s.uri.clone(),
        http_method: s.method.clone(),
        start_time_unix_nano: s.start_ns,
        client_address: s.client.clone(),
        worker: format!("pid {}", s.pid),
        current_kind: match s.activity_kind {
            tern_php_wire::ActivityKind::Sql => ActivityKind::Sql,
            tern_php_wire::ActivityKind::External => ActivityKind::External,
            tern_php_wire::ActivityKind::Method | tern_php_wire::ActivityKind::None => {
                ActivityKind::Method
            }
        } as i32,
        current_detail: s.activity_text.clone(),
        current_start_unix_nano: if s.activity_start_ns > 0 {
            s.activity_start_ns
        } else {
            s.start_ns
        },
    }
}

/// Running transactions by service, from the shared memory at `map` (opened lazily: the
/// extension may create it after the forwarder starts).
fn read(map: &mut Option<ActiveMap>, config: &Config) -> HashMap<String, Vec<ActiveTransaction>> {
    let mut out: HashMap<String, Vec<ActiveTransaction>> = HashMap::new();
    if map.is_none() && config.active.exists() {
        match ActiveMap::open(&config.active, tern_php_wire::active::DEFAULT_SLOTS) {
            Ok(m) => *map = Some(m),
            Err(e) => tracing::debug!(error = %e, "active-transaction file not readable yet"),
        }
    }
    let Some(m) = map else { return out };
    m.reap_dead();
    for slot in m.snapshot() {
        if slot.alive && !slot.service.is_empty() {
            out.entry(slot.service.clone())
                .or_default()
                .push(transaction(&slot));
        }
    }
    for txs in out.values_mut() {
        txs.sort_by_key(|t| t.start_time_unix_nano);
    }
    out
}

/// The live task.
pub(crate) async fn report(
    config: Config,
    channel: Channel,
    services: Arc<Services>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut map = None;
    let mut sessions: HashMap<String, LiveSession> = HashMap::new();
    loop {
        let mut running = read(&mut map, &config);
        for service in running.keys() {
            services.saw(service);
        }
        let s = counters.stats();
        let beat = Beat {
            exported_spans: s.exported_spans,
            dropped_spans: s.dropped_spans,
            retried_batches: s.retried_batches,
        };
        for service in services.all() {
            let session = sessions
                .entry(service.clone())
                .or_insert_with(|| LiveSession::new(channel.clone(), hello(&config, &service)));
            session
                .report(running.remove(&service).unwrap_or_default(), beat)
                .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.live_interval) => {}
            _ = stop.changed() => break,
        }
    }
    for session in sessions.values_mut() {
        session.leave().await;
    }
}

fn hello(config: &Config, service: &str) -> AgentHello {
    let pid = std::process::id();
    AgentHello {
        agent_id: format!("{}:{pid}/{service}", config.instance),
        service_name: service.to_string(),
        instance: config.instance.clone(),
        language: "php".into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        host_name: config.instance.clone(),
        pid,
    }
}
