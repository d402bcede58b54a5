use clap::Parser;
use telegen_common::{shutdown_signal, BuildInfo};
use telegen_gateway::Config;
use tracing::info;

/// telegen-gateway: the REST job API (SPEC section 2) over the probe's gRPC.
/// Configured by the environment: TELEGEN_API_LISTEN (127.0.0.1:8080),
/// TELEGEN_PROBE_ADDR (unix:/run/telegen-sonic/probe.sock), TELEGEN_API_TOKEN,
/// TELEGEN_API_TIMEOUT_MS (10000).
#[derive(Parser)]
#[command(name = "telegen-gateway", version = BuildInfo::long_version())]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    telegen_common::init_logging("telegen-gateway");
    let cfg = Config::from_env()?;
    telegen_gateway::serve(cfg, shutdown_signal()).await?;
    info!("stopped");
    Ok(())
}
