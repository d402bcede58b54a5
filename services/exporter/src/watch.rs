//! The probe's counter stream (WatchCounters), kept subscribed: on any error
//! the exporter reconnects with backoff. Only the latest snapshot is kept;
//! counters are cumulative, so nothing older is ever needed.

use std::{sync::Arc, time::Duration};

use telegen_common::{connect_probe, ProbeAddr};
use telegen_proto::v1::{probe_client::ProbeClient, CounterSnapshot, WatchCountersRequest};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::stats::Stats;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The newest snapshot: the stream's, or a scrape's fresh one (fresh()).
pub type Latest = Arc<watch::Sender<Option<Arc<CounterSnapshot>>>>;

/// One snapshot taken now: a counter stream opened for its first message
/// (the probe sends one at once), bounded by `timeout`.
pub async fn snapshot_now(probe: &ProbeAddr, timeout: Duration) -> Option<CounterSnapshot> {
    let mut client = ProbeClient::new(connect_probe(probe));
    let first = async {
        let mut s = client
            .watch_counters(WatchCountersRequest {
                interval_ms: 3_600_000,
            })
            .await
            .ok()?
            .into_inner();
        s.message().await.ok()?
    };
    tokio::time::timeout(timeout, first).await.ok()?
}

pub async fn run(probe: ProbeAddr, interval: Duration, latest: Latest, stats: Arc<Stats>) {
    let mut client = ProbeClient::new(connect_probe(&probe));
    let interval_ms = interval.as_millis().clamp(100, 3_600_000) as u32;
    let mut backoff = BACKOFF_MIN;
    let mut down_logged = false;
    loop {
        match client
            .watch_counters(WatchCountersRequest { interval_ms })
            .await
        {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(snap)) => {
                            if !stats.get().probe_connected {
                                info!(probe = %probe, "receiving counters from the probe");
                                stats.set_probe_connected(true);
                                down_logged = false;
                            }
                            backoff = BACKOFF_MIN;
                            stats.snapshot_received();
                            latest.send_replace(Some(Arc::new(snap)));
                        }
                        Ok(None) => {
                            warn!(probe = %probe, "the probe ended the counter stream; reconnecting");
                            break;
                        }
                        Err(e) => {
                            warn!(probe = %probe, error = %e.message(), "counter stream lost; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) if !down_logged => {
                warn!(probe = %probe, code = ?e.code(), error = %e.message(),
                      "cannot reach the probe; retrying with backoff");
                down_logged = true;
            }
            Err(_) => {}
        }
        stats.set_probe_connected(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Tell the probe how many exports have failed whenever that changes, so
/// that jobs' coverage says so (checked every `every`; a report the probe
/// did not take is sent again: the probe keeps each instance's last total,
/// so a repeat adds nothing).
pub async fn report_failures(probe: ProbeAddr, stats: Arc<Stats>, every: Duration) {
    let instance = *uuid::Uuid::new_v4().as_bytes();
    let mut client = ProbeClient::new(connect_probe(&probe));
    let mut reported = 0;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let failed = stats.get().exports_failed;
        if failed == reported {
            continue;
        }
        let req = telegen_proto::v1::ReportExportsRequest {
            instance: instance.to_vec(),
            failed_total: failed,
        };
        match client.report_exports(req).await {
            Ok(_) => reported = failed,
            Err(e) => {
                debug!(error = %e.message(), "reporting failed exports to the probe; retrying")
            }
        }
    }
}
