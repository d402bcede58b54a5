//! telegen-exporter: subscribes to the probe's counter stream and pushes the
//! kernel counters to an OTLP/gRPC backend (and, optionally, serves them as
//! Prometheus text). Unprivileged; keeps only the newest snapshot.

pub mod config;
pub mod export;
pub mod otlp;
pub mod prom;
pub mod resource;
pub mod series;
pub mod stats;
pub mod watch;

use std::sync::Arc;

use telegen_proto::v1::CounterSnapshot;

pub use config::Config;
use series::{Collected, JobGrace};
use stats::Stats;

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How old the counters a scrape shows may be: older, /metrics takes a
/// fresh snapshot first (at most one a second, then), so Prometheus rates
/// are right at any scrape interval.
pub const SCRAPE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// What the watcher, the export loop and /metrics share.
pub struct Shared {
    latest: tokio::sync::watch::Receiver<Option<Arc<CounterSnapshot>>>,
    publish: watch::Latest,
    probe: telegen_common::ProbeAddr,
    /// One fresh snapshot at a time; concurrent scrapes share it.
    refreshing: tokio::sync::Mutex<()>,
    grace: JobGrace,
    pub stats: Arc<Stats>,
}

impl Shared {
    pub fn new(cfg: &Config) -> (Arc<Self>, watch::Latest) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let tx = Arc::new(tx);
        let shared = Shared {
            latest: rx,
            publish: Arc::clone(&tx),
            probe: cfg.probe.clone(),
            refreshing: tokio::sync::Mutex::new(()),
            grace: JobGrace::new(cfg.finished_grace),
            stats: Arc::new(Stats::default()),
        };
        (Arc::new(shared), tx)
    }

    /// The newest snapshot's age, None before the first.
    fn age(&self) -> Option<std::time::Duration> {
        let t = self.latest.borrow().as_ref()?.time_unix_nano;
        Some(std::time::Duration::from_nanos(now_ns().saturating_sub(t)))
    }

    /// Make the newest snapshot at most SCRAPE_FRESH old, asking the probe
    /// for one when it is older; a probe that does not answer within that
    /// time leaves the older one (and /metrics says when it was taken).
    pub async fn fresh(&self) {
        if self.age().is_some_and(|a| a <= SCRAPE_FRESH) {
            return;
        }
        let _one = self.refreshing.lock().await;
        // Another scrape may have refreshed it meanwhile.
        if self.age().is_some_and(|a| a <= SCRAPE_FRESH) {
            return;
        }
        if let Some(snap) = watch::snapshot_now(&self.probe, SCRAPE_FRESH).await {
            // Never replace a newer snapshot the stream brought meanwhile.
            self.publish.send_if_modified(|cur| {
                let newer = cur
                    .as_ref()
                    .is_none_or(|c| c.time_unix_nano < snap.time_unix_nano);
                if newer {
                    *cur = Some(Arc::new(snap));
                }
                newer
            });
        }
    }

    /// The series of the newest snapshot, if the probe has sent one.
    pub fn collect(&self) -> Option<Collected> {
        let snap = self.latest.borrow().clone()?;
        Some(series::collect(&snap, &self.grace))
    }
}

/// Run until `shutdown` resolves (then export once more).
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (shared, latest) = Shared::new(&cfg);
    tokio::spawn(watch::run(
        cfg.probe.clone(),
        cfg.interval,
        latest,
        Arc::clone(&shared.stats),
    ));
    tokio::spawn(watch::report_failures(
        cfg.probe.clone(),
        Arc::clone(&shared.stats),
        std::time::Duration::from_secs(1),
    ));
    if let Some(addr) = cfg.prom_listen {
        let shared = Arc::clone(&shared);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(async move {
            if let Err(e) = prom::serve_on(listener, shared).await {
                tracing::error!(error = %e, "Prometheus endpoint failed");
            }
        });
    }
    tracing::info!(
        endpoint = %cfg.endpoint,
        interval = ?cfg.interval,
        probe = %cfg.probe,
        tls = cfg.tls(),
        "exporting the probe's counters over OTLP/gRPC"
    );
    export::Exporter::new(cfg, resource::build(), shared)?
        .run(shutdown)
        .await;
    Ok(())
}
