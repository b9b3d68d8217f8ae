//! Wiring: configuration, startup in order, and an ordered graceful shutdown.
//!
//! Start: write-ahead log → store (embedded engine or server) → writer (migrates, then
//! drains the log) → OTLP gRPC + HTTP ingest → query API and web UI. Shutdown: stop accepting,
//! let the writer insert what the log holds, then stop the store.

pub mod config;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_wal::{Wal, WalOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::aggregate::LiveWindows;
use crate::ingest::{self, live::LiveState, Ingestor};
use crate::model::derive::Deriver;
use crate::query::{self, ApiState};
use crate::store::{writer::Writer, Store, StoreError};
use crate::ui::{self, UiState};
use config::Config;
use metrics::Metrics;

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the write-ahead log in {dir}: {message}")]
    Wal { dir: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running collector.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// ClickHouse HTTP URL of the store (the embedded front, or the server).
    pub store_url: String,
    pub metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
}

async fn listen(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { what, addr, source })
}

/// Starts every part of the collector.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::default());
    let wal_dir = config.wal_dir();
    let wal = Wal::open(
        &wal_dir,
        WalOptions {
            segment_bytes: config.wal.segment_bytes.min(config.wal.max_bytes),
            ..config.wal.clone()
        },
    )
    .map_err(|e| StartError::Wal {
        dir: wal_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let wal = Arc::new(wal);
    let backlog = wal.stats().used_bytes;
    if backlog > 0 {
        tracing::info!(
            bytes = backlog,
            "replaying the write-ahead log into the store"
        );
    }

    let store = Store::open(&config).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let windows = Arc::new(LiveWindows::new());

    // The writer migrates first (retrying while a store server is down), then drains.
    let writer = tokio::spawn(
        Writer {
            wal: wal.clone(),
            store: store.clone(),
            deriver: Deriver::new(config.normalize.max_endpoints_per_service),
            metrics: metrics.clone(),
            config: config.writer.clone(),
            ttl_days: config.storage.retention_days,
            rollup_ttl_days: config.storage.rollup_retention_days,
            windows: windows.clone(),
        }
        .run(shutdown_rx.clone()),
    );

    let ingestor = Ingestor {
        wal: wal.clone(),
        metrics: metrics.clone(),
    };
    let live = LiveState::new(config.live.clone(), metrics.clone());
    let mut servers = Vec::new();

    // OTLP/gRPC (+ tern.v1 LiveService).
    let grpc_listener = listen("otlp grpc", config.otlp.grpc_listen).await?;
    let grpc_addr = grpc_listener.local_addr().expect("bound listener");
    let router = tonic::transport::Server::builder()
        .layer(ingest::otlp_grpc::decode_refusals(metrics.clone()))
        .add_service(ingest::otlp_grpc::trace_server(
            ingestor.clone(),
            config.otlp.max_request_bytes,
        ))
        .add_service(ingest::otlp_grpc::metrics_server(ingestor.clone()))
        .add_service(ingest::otlp_grpc::logs_server(ingestor.clone()))
        .add_service(ingest::live::live_server(live.clone()));
    let mut rx = shutdown_rx.clone();
    servers.push(tokio::spawn(async move {
        let stop = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), stop)
            .await
        {
            tracing::error!(error = %e, "otlp grpc server failed");
        }
    }));

    // OTLP/HTTP.
    let http_listener = listen("otlp http", config.otlp.http_listen).await?;
    let http_addr = http_listener.local_addr().expect("bound listener");
    let app = ingest::otlp_http::router(ingestor.clone(), config.otlp.max_request_bytes);
    servers.push(serve_http(
        http_listener,
        app,
        shutdown_rx.clone(),
        "otlp http",
    ));

    // Query API.
    let api_listener = listen("api", config.api.listen).await?;
    let api_addr = api_listener.local_addr().expect("bound listener");
    let api = query::router(Arc::new(ApiState {
        store: store.clone(),
        live: live.clone(),
        metrics: metrics.clone(),
        config: config.api.clone(),
    }))
    .merge(ui::router(UiState {
        windows,
        live,
        shutdown: shutdown_rx.clone(),
    }));
    servers.push(serve_http(api_listener, api, shutdown_rx.clone(), "api"));

    tracing::info!(
        otlp_grpc = %grpc_addr, otlp_http = %http_addr, api = %api_addr, store = %store.url(),
        embedded = config.storage.clickhouse.is_none(), "tern collector started"
    );
    Ok(Running {
        grpc_addr,
        http_addr,
        api_addr,
        store_url: store.url().to_string(),
        metrics,
        shutdown,
        servers,
        writer,
    })
}

fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    mut rx: watch::Receiver<bool>,
    what: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stop = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, server = what, "http server failed");
        }
    })
}

impl Running {
    /// Stops accepting, lets the writer insert what the log holds (bounded by
    /// `grace`), and returns. Whatever is not inserted stays in the log for next time.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        for s in self.servers {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
        if tokio::time::timeout(grace, self.writer).await.is_err() {
            tracing::warn!("writer did not finish in time; the write-ahead log keeps the rest");
        }
        tracing::info!("tern collector stopped");
    }
}
