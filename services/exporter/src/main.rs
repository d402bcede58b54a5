use clap::Parser;
use telegen_common::{shutdown_signal, BuildInfo};
use telegen_exporter::Config;
use tracing::info;

/// telegen-exporter: streams the probe's kernel counters to an OTLP/gRPC
/// backend. Configured by the environment: TELEGEN_PROBE_ADDR,
/// OTEL_EXPORTER_OTLP_ENDPOINT (http://localhost:4317), OTEL_EXPORTER_OTLP_HEADERS,
/// OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_CERTIFICATE,
/// OTEL_METRIC_EXPORT_INTERVAL (10000 ms), OTEL_SERVICE_NAME,
/// OTEL_RESOURCE_ATTRIBUTES, TELEGEN_PROM_LISTEN (off).
#[derive(Parser)]
#[command(name = "telegen-exporter", version = BuildInfo::long_version())]
struct Cli {}

// One thread: the exporter wakes a few times per interval. Measured with
// `make bench` (exporter section): 0.2-0.4 ms less CPU per export than the
// multi-thread runtime, whose idle workers cost more than the work itself.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    telegen_common::init_logging("telegen-exporter");
    let cfg = Config::from_env()?;
    telegen_exporter::run(cfg, shutdown_signal()).await?;
    info!("stopped");
    Ok(())
}
