//! tern.v1 LiveService: agents, settings, and the transactions running right now.

mod common;

use common::{now_ns, Collector, StoreMode};
use tern_proto::v1::live_service_client::LiveServiceClient;
use tern_proto::v1::{ActiveSnapshot, ActiveTransaction, ActivityKind, AgentHeartbeat, AgentHello};

#[test]
fn active_transactions_reported_by_an_agent_are_listed_until_they_expire() {
    let c = Collector::start(StoreMode::Embedded, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = LiveServiceClient::connect(c.otlp_grpc.clone())
            .await
            .unwrap();
        let settings = client
            .hello(AgentHello {
                agent_id: "agent-1".into(),
                service_name: "php-shop".into(),
                instance: "web-1".into(),
                language: "php".into(),
                agent_version: "0.1.0".into(),
                host_name: "web-1".into(),
                pid: 4242,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(settings.sample_ratio, 1.0);

        let err = client
            .heartbeat(AgentHeartbeat {
                agent_id: "stranger".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);

        let now = now_ns();
        client
            .report_active(ActiveSnapshot {
                agent_id: "agent-1".into(),
                service_name: "php-shop".into(),
                instance: "web-1".into(),
                time_unix_nano: now,
                transactions: vec![ActiveTransaction {
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    endpoint: "GET /cart".into(),
                    http_method: "GET".into(),
                    start_time_unix_nano: now - 4_000_000_000,
                    worker: "pid 31".into(),
                    current_kind: ActivityKind::Sql as i32,
                    current_detail: "SELECT SLEEP(10)".into(),
                    current_start_unix_nano: now - 1_500_000_000,
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
    });
    let active = c.api("/api/v1/active");
    assert_eq!(active["count"], 1);
    let a = &active["active"][0];
    assert_eq!(a["service"], "php-shop");
    assert_eq!(a["current_kind"], "sql");
    assert_eq!(a["current_detail"], "SELECT SLEEP(10)");
    assert_eq!(a["elapsed_ms"], 4000.0);
    assert_eq!(a["current_elapsed_ms"], 1500.0);
    assert_eq!(c.api("/api/v1/active?service=other")["count"], 0);
    let agents = c.api("/api/v1/agents");
    assert_eq!(agents["agents"][0]["pid"], 4242);
}
