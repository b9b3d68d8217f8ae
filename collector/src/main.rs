//! `tern-collector`: runs the collector until SIGINT/SIGTERM, then shuts down in order.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tern_collector::server::{self, config::Config};

/// Tern's collector: OTLP in, ClickHouse (embedded by default) out, query API.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML config file (every key optional; environment variables TERN_* override it).
    #[arg(long, env = "TERN_CONFIG")]
    config: Option<PathBuf>,
    /// Write the listening addresses as JSON to this file once started (for scripts and tests).
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    let running = server::start(config).await?;
    if let Some(path) = &args.ready_file {
        let ready = serde_json::json!({
            "otlp_grpc": running.grpc_addr.to_string(),
            "otlp_http": running.http_addr.to_string(),
            "api": running.api_addr.to_string(),
            "store": running.store_url,
            "pid": std::process::id(),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, ready.to_string()).context("writing the ready file")?;
        std::fs::rename(&tmp, path).context("writing the ready file")?;
    }
    wait_for_signal().await;
    running.shutdown(Duration::from_secs(30)).await;
    tracing::info!("stopped");
    // The embedded engine's C++ destructors must not race its threads at exit.
    tern_chdb::exit_now(0)
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
