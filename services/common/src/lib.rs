//! What two or more telegen-sonic services truly share: the embedded build
//! version, the probe address and how to connect to it, logging setup, and
//! the REST model ([`rest`]).

pub mod addr;
pub mod release;
pub mod rest;
pub mod version;

pub use addr::{connect_probe, ProbeAddr, DEFAULT_PROBE_ADDR};
pub use version::BuildInfo;

/// A configuration value a service refuses at start-up; the message always
/// names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {msg}")]
pub struct ConfigError {
    pub var: &'static str,
    pub msg: String,
}

impl ConfigError {
    pub fn new(var: &'static str, msg: impl Into<String>) -> Self {
        ConfigError {
            var,
            msg: msg.into(),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C: how every service is asked to stop.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Initialise `tracing` from RUST_LOG (default `info`), logging to stderr,
/// and log that `service` is starting, with its embedded build.
pub fn init_logging(service: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs in files and journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let b = BuildInfo::CURRENT;
    tracing::info!(
        version = b.version,
        commit = b.commit,
        built = b.date,
        "{service} starting"
    );
}

#[cfg(test)]
mod tests {
    use super::release::release_name;

    #[test]
    fn release_tags_map_to_release_mark() {
        assert_eq!(
            release_name("v1.2.3").as_deref(),
            Some("release/mark-v1-2-3")
        );
        assert_eq!(
            release_name("v10.0.12").as_deref(),
            Some("release/mark-v10-0-12")
        );
        for not in ["1.2.3", "v1.2", "v1.2.3-rc1", "v1..3", "vx.y.z", "v1.2.3.4"] {
            assert_eq!(release_name(not), None, "{not}");
        }
    }
}
