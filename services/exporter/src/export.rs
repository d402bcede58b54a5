//! The export loop: every OTEL_METRIC_EXPORT_INTERVAL, one OTLP request with
//! the latest snapshot. A failed export is retried with backoff (at most one
//! request in flight, each with OTEL_EXPORTER_OTLP_TIMEOUT); since values are
//! cumulative the retry simply sends the newest snapshot, so an outage costs
//! no count and no memory.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use opentelemetry_proto::tonic::{
    collector::metrics::v1::metrics_service_client::MetricsServiceClient, resource::v1::Resource,
};
use tonic::{
    metadata::{MetadataKey, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};
use tracing::{debug, info, warn};

use crate::{config::Config, now_ns, otlp, Shared};

const RETRY_MIN: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the collector answered {code:?}: {message}")]
    Status { code: tonic::Code, message: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

pub struct Exporter {
    client: MetricsServiceClient<Channel>,
    cfg: Config,
    resource: Resource,
    shared: Arc<Shared>,
}

fn channel(cfg: &Config) -> anyhow::Result<Channel> {
    let mut ep = Endpoint::from_shared(cfg.endpoint.clone())
        .with_context(|| format!("endpoint {}", cfg.endpoint))?
        // The call deadline is export_once's own timeout (one clear error).
        .connect_timeout(cfg.timeout);
    if cfg.tls() {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep.tls_config(tls).context("TLS configuration")?;
    }
    // Lazy: a collector that is down at start is an outage like any other.
    Ok(ep.connect_lazy())
}

impl Exporter {
    pub fn new(cfg: Config, resource: Resource, shared: Arc<Shared>) -> anyhow::Result<Self> {
        Ok(Exporter {
            client: MetricsServiceClient::new(channel(&cfg)?),
            cfg,
            resource,
            shared,
        })
    }

    /// One request with the newest snapshot; Ok(None) when the probe has not
    /// sent one yet.
    pub async fn export_once(&mut self) -> Result<Option<usize>, ExportError> {
        let Some(collected) = self.shared.collect() else {
            return Ok(None);
        };
        let series = collected.points.len();
        let mut metrics = otlp::kernel_metrics(&collected);
        metrics.extend(otlp::self_metrics(&self.shared.stats.get(), now_ns()));
        let mut req = tonic::Request::new(otlp::request(&self.resource, metrics));
        for (k, v) in &self.cfg.headers {
            // Validated at start-up.
            if let (Ok(k), Ok(v)) = (
                MetadataKey::from_bytes(k.as_bytes()),
                MetadataValue::try_from(v.as_str()),
            ) {
                req.metadata_mut().insert(k, v);
            }
        }
        let call = self.client.export(req);
        match tokio::time::timeout(self.cfg.timeout, call).await {
            Err(_) => Err(ExportError::Timeout(self.cfg.timeout)),
            Ok(Err(s)) => Err(ExportError::Status {
                code: s.code(),
                message: s.message().chars().take(200).collect(),
            }),
            Ok(Ok(resp)) => {
                if let Some(p) = resp.into_inner().partial_success {
                    if p.rejected_data_points > 0 {
                        warn!(rejected = p.rejected_data_points, message = %p.error_message,
                              "the collector rejected part of the export");
                    }
                }
                Ok(Some(series))
            }
        }
    }

    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let interval = self.cfg.interval;
        let mut retry: Option<Duration> = None;
        let mut failures = 0u64;
        let mut waiting_logged = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(retry.unwrap_or(interval)) => {}
                _ = &mut shutdown => break,
            }
            match self.export_once().await {
                Ok(Some(series)) => {
                    self.shared.stats.export_ok();
                    if failures > 0 {
                        info!(endpoint = %self.cfg.endpoint, failed_attempts = failures,
                              "export recovered; the backend has the current totals again");
                    } else {
                        debug!(series, "exported");
                    }
                    failures = 0;
                    retry = None;
                }
                Ok(None) => {
                    if !waiting_logged {
                        info!("no counters from the probe yet; nothing to export");
                        waiting_logged = true;
                    }
                }
                Err(e) => {
                    self.shared.stats.export_failed();
                    failures += 1;
                    let next = retry.map_or(RETRY_MIN, |r| (r * 2).min(interval));
                    // First failure and then every tenth: an outage is visible
                    // without flooding the log.
                    if failures == 1 || failures.is_multiple_of(10) {
                        warn!(endpoint = %self.cfg.endpoint, error = %e, failed_attempts = failures,
                              retry_in = ?next, "OTLP export failed; will retry with the newest totals");
                    }
                    retry = Some(next);
                }
            }
        }
        // A last export on the way out, so the final counts are not lost.
        match self.export_once().await {
            Ok(_) => info!("final export sent"),
            Err(e) => warn!(error = %e, "final export failed"),
        }
    }
}
