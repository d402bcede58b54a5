use clap::Parser;
use telegen_common::{shutdown_signal, BuildInfo};
use telegen_probe::{assemble::assemble, config::Config, jobs, rpc};
use tracing::{info, warn};

/// telegen-probe: loads the telegen-sonic classifier, runs jobs, serves gRPC.
/// Configured by the environment (TELEGEN_PROBE_ADDR, TELEGEN_BPF_PIN_DIR,
/// TELEGEN_MAX_JOBS, TELEGEN_ATTACH_MODE, TELEGEN_MIRROR_MODE, ...).
#[derive(Parser)]
#[command(name = "telegen-probe", version = BuildInfo::long_version())]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    telegen_common::init_logging("telegen-probe");
    let cfg = Config::from_env()?;
    let probe = assemble(cfg).await?;
    if let jobs::DatapathStatus::Off(reason) = probe.mgr.datapath() {
        info!(%reason, "datapath off: the API works, jobs run in placeholder mode");
    }
    tokio::spawn(jobs::expiry_loop(probe.mgr.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut serving = tokio::spawn(rpc::serve(
        probe.mgr,
        probe.info,
        probe.listen,
        async move {
            let _ = stop_rx.await;
        },
    ));
    tokio::select! {
        r = &mut serving => r??,
        _ = shutdown_signal() => {
            let _ = stop_tx.send(());
            // Graceful shutdown waits for clients; an open WatchCounters
            // stream must not keep a probe that was told to stop alive.
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await {
                Ok(r) => r??,
                Err(_) => warn!(grace = ?SHUTDOWN_GRACE, "clients still connected; exiting anyway"),
            }
        }
    }
    info!("stopped; attachments, counters and jobs stay pinned for the next probe");
    Ok(())
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
