//! `tern-chdb`: serves a data directory with the embedded ClickHouse engine on the
//! ClickHouse HTTP interface, for tests and for any ClickHouse tool.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use tern_chdb::{Engine, EngineOptions, Front, FrontConfig};

/// Serve a chDB data directory over the ClickHouse HTTP interface.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The data directory (created if missing; one process per directory).
    #[arg(long, env = "TERN_CHDB_PATH")]
    path: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8123")]
    listen: SocketAddr,
    /// libchdb.so to load (default: $TERN_CHDB_LIB, else the cache path setup uses).
    #[arg(long)]
    lib: Option<PathBuf>,
    /// Most statements running at once.
    #[arg(long, default_value_t = 16)]
    max_connections: usize,
    /// Most bytes of one request body.
    #[arg(long, default_value_t = 1 << 30)]
    max_body_bytes: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let options = EngineOptions {
        lib: args.lib.clone(),
        max_connections: args.max_connections,
        ..EngineOptions::new(&args.path)
    };
    let engine = tokio::task::spawn_blocking(move || Engine::open_with(options))
        .await?
        .with_context(|| format!("opening {}", args.path.display()))?;
    let config = FrontConfig {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        ..FrontConfig::default()
    };
    let front = Front::bind(engine, config)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    // The bound address on stdout, for scripts that asked for port 0.
    println!("{}", front.url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    front.shutdown().await;
    tern_chdb::exit_now(0)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
