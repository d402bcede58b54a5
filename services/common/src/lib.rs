//! What two or more telegen-sonic services truly share: the embedded build
//! version, the probe address and how to connect to it, and logging setup.

pub mod addr;
pub mod version;

pub use addr::{connect_probe, ProbeAddr, DEFAULT_PROBE_ADDR};
pub use version::BuildInfo;

/// Initialise `tracing` from RUST_LOG (default `info`), logging to stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
