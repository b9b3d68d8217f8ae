//! `tern-agent`: the PHP forwarder. Wiring only; see `tern_agent::forwarder`.
//!
//! ```text
//! tern-agent [--socket PATH] [--active PATH] [--endpoint URL] [--nice N]
//! ```

use std::process::ExitCode;

use tern_agent::forwarder::{Config, Forwarder};

const USAGE: &str = "usage: tern-agent [--socket PATH] [--active PATH] [--endpoint URL] [--nice N]

Forwards the Tern PHP extension's transactions to a Tern collector.

  --socket PATH    unix socket PHP workers write to (default /tmp/tern-agent.sock)
  --active PATH    the extension's active-transaction shared memory
                   (default /dev/shm/tern-active)
  --endpoint URL   the collector's OTLP gRPC URL (default http://127.0.0.1:4317)
  --nice N         scheduling niceness, 0-19 (default 10): the forwarder gives way
                   to the application it serves whenever both want a CPU

Environment: TERN_LOG = error, warn, info (default) or debug.";

/// The forwarder's niceness unless `--nice` says otherwise.
const DEFAULT_NICE: i32 = 10;

/// Parses the command line: the forwarder's settings and niceness, `Ok(None)` for
/// `--help` / `--version`.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<(Config, i32)>, String> {
    let mut config = Config::default();
    let mut nice = DEFAULT_NICE;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--socket" => config.socket = value()?.into(),
            "--active" => config.active = value()?.into(),
            "--endpoint" => {
                let url = value()?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "--endpoint {url:?}: expected an http:// or https:// URL"
                    ));
                }
                config.endpoint = url.trim_end_matches('/').to_string();
            }
            "--nice" => {
                let v = value()?;
                nice = v
                    .parse()
                    .ok()
                    .filter(|n| (0..=19).contains(n))
                    .ok_or_else(|| format!("--nice {v:?}: expected a number from 0 to 19"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("tern-agent {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some((config, nice)))
}

/// Lowers this process's scheduling priority to `nice` (before any thread starts, so
/// every thread has it). A forwarder that shares its CPUs with PHP workers should not
/// delay them: at nice 10 a worker woken while the forwarder runs takes the CPU at
/// once, and the forwarder still gets about a tenth of a CPU under full load — a
/// hundred times what it needs.
fn lower_priority(nice: i32) {
    // SAFETY: plain calls on this process.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if nice <= current {
        return;
    }
    // SAFETY: as above; raising niceness needs no privilege.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the forwarder's priority");
    }
}

fn main() -> ExitCode {
    let level = match std::env::var("TERN_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let config = match parse(std::env::args().skip(1)) {
        Ok(Some((c, nice))) => {
            lower_priority(nice);
            c
        }
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern-agent: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let forwarder = match Forwarder::start(config).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the forwarder");
                return ExitCode::FAILURE;
            }
        };
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch SIGTERM");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        forwarder.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Option<(Config, i32)>, String> {
        parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn reads_the_three_flags_in_both_forms() {
        let c = args(&[
            "--socket",
            "/run/t.sock",
            "--active=/dev/shm/x",
            "--endpoint",
            "http://c:4317/",
        ])
        .unwrap()
        .unwrap();
        let (c, nice) = c;
        assert_eq!(nice, DEFAULT_NICE);
        assert_eq!(c.socket.to_str(), Some("/run/t.sock"));
        assert_eq!(c.active.to_str(), Some("/dev/shm/x"));
        assert_eq!(c.endpoint, "http://c:4317");
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        assert!(args(&["--sockt", "x"]).unwrap_err().contains("--sockt"));
        assert!(args(&["--socket"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--endpoint", "c:4317"])
            .unwrap_err()
            .contains("http://"));
        assert!(args(&["--nice", "20"]).unwrap_err().contains("0 to 19"));
        assert!(args(&["--nice", "-5"]).unwrap_err().contains("0 to 19"));
        assert_eq!(args(&["--nice=0"]).unwrap().unwrap().1, 0);
    }
}
