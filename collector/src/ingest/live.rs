//! `tern.v1.LiveService`: what OTLP cannot carry. Agents say hello, send heartbeats, and
//! report the transactions running right now; the collector keeps the latest snapshot
//! per agent (expired after `live.snapshot_ttl_secs`) and hands back settings.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::Serialize;
use tern_proto::v1::live_service_server::{LiveService, LiveServiceServer};
use tern_proto::v1::{
    ActiveAck, ActiveSnapshot, ActivityKind, AgentHeartbeat, AgentHello, RemoteSettings,
};
use tonic::{Request, Response, Status};

use crate::server::config::LiveConfig;
use crate::server::metrics::Metrics;

/// Live state from all agents. Shared between the gRPC service and the query API.
pub struct LiveState {
    config: LiveConfig,
    metrics: Arc<Metrics>,
    agents: RwLock<HashMap<String, AgentEntry>>,
    snapshots: RwLock<HashMap<String, (Instant, ActiveSnapshot)>>,
}

struct AgentEntry {
    hello: AgentHello,
    last_seen: Instant,
    heartbeat: Option<AgentHeartbeat>,
}

/// One running transaction, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveView {
    pub service: String,
    pub instance: String,
    pub agent_id: String,
    pub trace_id: String,
    pub span_id: String,
    pub endpoint: String,
    pub http_method: String,
    pub start_ms: i64,
    /// Elapsed at the moment of the agent's snapshot.
    pub elapsed_ms: f64,
    pub client_address: String,
    pub worker: String,
    /// `method`, `sql`, `external` or empty.
    pub current_kind: &'static str,
    pub current_detail: String,
    pub current_elapsed_ms: f64,
}

/// An agent, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub agent_id: String,
    pub service: String,
    pub instance: String,
    pub language: String,
    pub agent_version: String,
    pub host_name: String,
    pub pid: u32,
    pub seconds_since_seen: f64,
    pub exported_spans: u64,
    pub dropped_spans: u64,
    pub retried_batches: u64,
}

impl LiveState {
    pub fn new(config: LiveConfig, metrics: Arc<Metrics>) -> Arc<LiveState> {
        Arc::new(LiveState {
            config,
            metrics,
            agents: RwLock::new(HashMap::new()),
            snapshots: RwLock::new(HashMap::new()),
        })
    }

    fn settings(&self) -> RemoteSettings {
        RemoteSettings {
            sample_ratio: self.config.sample_ratio,
            profile_threshold_ms: self.config.profile_threshold_ms,
            capture_sql_params: self.config.capture_sql_params,
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.config.snapshot_ttl_secs)
    }

    /// Running transactions from every fresh snapshot, longest-running first.
    pub fn active(&self, service: Option<&str>) -> Vec<ActiveView> {
        let ttl = self.ttl();
        let mut out = Vec::new();
        let snapshots = self.snapshots.read();
        for (agent_id, (received, snap)) in snapshots.iter() {
            if received.elapsed() > ttl || service.is_some_and(|s| s != snap.service_name) {
                continue;
            }
            for t in &snap.transactions {
                let ms = |from: u64| snap.time_unix_nano.saturating_sub(from) as f64 / 1e6;
                out.push(ActiveView {
                    service: snap.service_name.clone(),
                    instance: snap.instance.clone(),
                    agent_id: agent_id.clone(),
                    trace_id: hex::encode(&t.trace_id),
                    span_id: hex::encode(&t.span_id),
                    endpoint: t.endpoint.clone(),
                    http_method: t.http_method.clone(),
                    start_ms: (t.start_time_unix_nano / 1_000_000) as i64,
                    elapsed_ms: ms(t.start_time_unix_nano),
                    client_address: t.client_address.clone(),
                    worker: t.worker.clone(),
                    current_kind: match ActivityKind::try_from(t.current_kind) {
                        Ok(ActivityKind::Method) => "method",
                        Ok(ActivityKind::Sql) => "sql",
                        Ok(ActivityKind::External) => "external",
                        _ => "",
                    },
                    current_detail: t.current_detail.clone(),
                    current_elapsed_ms: if t.current_start_unix_nano > 0 {
                        ms(t.current_start_unix_nano)
                    } else {
                        0.0
                    },
                });
            }
        }
        out.sort_by(|a, b| b.elapsed_ms.total_cmp(&a.elapsed_ms));
        out
    }

    /// Agents seen since the collector started.
    pub fn agents(&self) -> Vec<AgentView> {
        let mut out: Vec<AgentView> = self
            .agents
            .read()
            .values()
            .map(|a| {
                let hb = a.heartbeat.clone().unwrap_or_default();
                AgentView {
                    agent_id: a.hello.agent_id.clone(),
                    service: a.hello.service_name.clone(),
                    instance: a.hello.instance.clone(),
                    language: a.hello.language.clone(),
                    agent_version: a.hello.agent_version.clone(),
                    host_name: a.hello.host_name.clone(),
                    pid: a.hello.pid,
                    seconds_since_seen: a.last_seen.elapsed().as_secs_f64(),
                    exported_spans: hb.exported_spans,
                    dropped_spans: hb.dropped_spans,
                    retried_batches: hb.retried_batches,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.agent_id).cmp(&(&b.service, &b.agent_id)));
        out
    }

    fn expire(&self) {
        let ttl = self.ttl();
        self.snapshots
            .write()
            .retain(|_, (t, _)| t.elapsed() <= ttl);
    }
}

/// The gRPC face of [`LiveState`].
pub struct Live(pub Arc<LiveState>);

fn require_agent_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > 256 {
        return Err(Status::invalid_argument("agent_id must be 1 to 256 bytes"));
    }
    Ok(())
}

#[tonic::async_trait]
impl LiveService for Live {
    async fn hello(
        &self,
        request: Request<AgentHello>,
    ) -> Result<Response<RemoteSettings>, Status> {
        let hello = request.into_inner();
        require_agent_id(&hello.agent_id)?;
        tracing::info!(agent_id = %hello.agent_id, service = %hello.service_name, language = %hello.language, "agent connected");
        self.0.agents.write().insert(
            hello.agent_id.clone(),
            AgentEntry {
                hello,
                last_seen: Instant::now(),
                heartbeat: None,
            },
        );
        Ok(Response::new(self.0.settings()))
    }

    async fn heartbeat(
        &self,
        request: Request<AgentHeartbeat>,
    ) -> Result<Response<RemoteSettings>, Status> {
        let hb = request.into_inner();
        require_agent_id(&hb.agent_id)?;
        match self.0.agents.write().get_mut(&hb.agent_id) {
            Some(agent) => {
                agent.last_seen = Instant::now();
                agent.heartbeat = Some(hb);
            }
            None => {
                return Err(Status::failed_precondition(
                    "unknown agent_id: call Hello first",
                ))
            }
        }
        Ok(Response::new(self.0.settings()))
    }

    async fn report_active(
        &self,
        request: Request<ActiveSnapshot>,
    ) -> Result<Response<ActiveAck>, Status> {
        let snap = request.into_inner();
        require_agent_id(&snap.agent_id)?;
        if snap.service_name.is_empty() {
            return Err(Status::invalid_argument("service_name must not be empty"));
        }
        self.0.metrics.live_snapshots.fetch_add(1, Relaxed);
        self.0.expire();
        if let Some(agent) = self.0.agents.write().get_mut(&snap.agent_id) {
            agent.last_seen = Instant::now();
        }
        self.0
            .snapshots
            .write()
            .insert(snap.agent_id.clone(), (Instant::now(), snap));
        Ok(Response::new(ActiveAck {}))
    }
}

pub fn live_server(state: Arc<LiveState>) -> LiveServiceServer<Live> {
    LiveServiceServer::new(Live(state))
}
