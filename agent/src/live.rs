//! One agent's session with the collector's `tern.v1.LiveService`: hello (again after
//! any failure, since the collector may have restarted), then per report the active
//! snapshot and a heartbeat. Shared by the Rust layer's exporter and the PHP forwarder
//! (which keeps one session per PHP service it serves).

use tern_proto::v1::live_service_client::LiveServiceClient;
use tern_proto::v1::{
    ActiveSnapshot, ActiveTransaction, AgentHeartbeat, AgentHello, RemoteSettings,
};
use tonic::transport::Channel;

use crate::layer::now_unix_nano;

/// An agent's counters for a heartbeat (since it started).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Beat {
    pub exported_spans: u64,
    pub dropped_spans: u64,
    pub retried_batches: u64,
}

/// A live session; cheap to keep, reconnects lazily through the shared channel.
pub(crate) struct LiveSession {
    client: LiveServiceClient<Channel>,
    hello: AgentHello,
    said_hello: bool,
}

impl LiveSession {
    /// A session for the agent described by `hello` (its `agent_id` must be unique).
    pub(crate) fn new(channel: Channel, hello: AgentHello) -> LiveSession {
        LiveSession {
            client: LiveServiceClient::new(channel),
            hello,
            said_hello: false,
        }
    }

    fn snapshot(&self, transactions: Vec<ActiveTransaction>) -> ActiveSnapshot {
        ActiveSnapshot {
            agent_id: self.hello.agent_id.clone(),
            service_name: self.hello.service_name.clone(),
            instance: self.hello.instance.clone(),
            time_unix_nano: now_unix_nano(),
            transactions,
        }
    }

    /// Says hello when needed, then reports `transactions` (the full running set) and a
    /// heartbeat. Answers the settings the collector handed back, if it answered; a
    /// failure means saying hello again next time.
    pub(crate) async fn report(
        &mut self,
        transactions: Vec<ActiveTransaction>,
        beat: Beat,
    ) -> Option<RemoteSettings> {
        let mut settings = None;
        if !self.said_hello {
            let r = self.client.hello(self.hello.clone()).await.ok()?;
            settings = Some(r.into_inner());
            self.said_hello = true;
        }
        let heartbeat = AgentHeartbeat {
            agent_id: self.hello.agent_id.clone(),
            time_unix_nano: now_unix_nano(),
            exported_spans: beat.exported_spans,
            dropped_spans: beat.dropped_spans,
            retried_batches: beat.retried_batches,
        };
        let snapshot = self.snapshot(transactions);
        let ok = self.client.report_active(snapshot).await.is_ok()
            && match self.client.heartbeat(heartbeat).await {
                Ok(r) => {
                    settings = Some(r.into_inner());
                    true
                }
                Err(_) => false,
            };
        self.said_hello = ok;
        settings
    }

    /// Leaving: reports that nothing of this agent runs any more.
    pub(crate) async fn leave(&mut self) {
        if self.said_hello {
            let snapshot = self.snapshot(Vec::new());
            let _ = self.client.report_active(snapshot).await;
        }
    }
}
