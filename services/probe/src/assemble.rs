//! Putting the probe together: the real ports of the job core (the loaded
//! datapath, netlink, the mirror backends, the system clock) from the
//! configuration, and what the gRPC layer reports and listens on.

use std::sync::Arc;

use tracing::{info, warn};

use crate::capture::{self, Spool};
use crate::config::Config;
use crate::jobs::ports::{Kernel, Ports, SystemClock};
use crate::jobs::{DatapathStatus, JobManager};
use crate::kernel::datapath::{brief, Datapath, DatapathError, KernelInfo};
use crate::kernel::maps::layout::{CaptureLimit, CAPTURE_PROBE_SLOT, HIST_BOUNDS};
use crate::kernel::netlink::Netlink;
use crate::kernel::LiveKernel;
use crate::mirror::{erspan::Erspan, sonic::Sonic};
use crate::rpc::serve::Listen;
use crate::rpc::ProbeInfo;

pub struct Probe {
    pub mgr: Arc<JobManager>,
    pub info: ProbeInfo,
    pub listen: Listen,
}

/// Load the datapath (or record why it is off), build the core over the
/// real ports, and adopt what an earlier probe left.
pub async fn assemble(cfg: Config) -> anyhow::Result<Probe> {
    let kinfo = KernelInfo::probe();
    let netlink = Arc::new(Netlink::new()?);
    let spool = Arc::new(Spool::new(
        cfg.capture_dir.clone(),
        cfg.capture_dir_max_bytes,
    ));
    // The capture ring, read once the core knows its capture jobs (records a
    // killed probe left wait in it), and the limit of all captures together.
    let mut ring = None;
    let mut with_captures = |mut dp: Datapath| {
        ring = dp
            .maps
            .has_capture_ring()
            .then(|| dp.pin_dir.join("capture_ring"));
        let all = CaptureLimit {
            rate_pps: cfg.capture_max_pps.into(),
            ..Default::default()
        };
        if let Err(e) = dp.maps.set_capture_limit(CAPTURE_PROBE_SLOT, &all) {
            warn!(error = %e, "setting the probe's capture rate limit");
        }
        dp
    };
    let (kernel, datapath): (Option<Box<dyn Kernel>>, _) = match Datapath::open(&cfg, &kinfo)
        .map(&mut with_captures)
    {
        // Never serve beside another probe on the same pins: it would
        // adopt and edit the same maps, and remove this one's socket.
        Err(e @ DatapathError::Locked(_)) => return Err(e.into()),
        Ok(dp) => {
            info!(pin_dir = %dp.pin_dir.display(), attach_mode = dp.mode.as_str(), kernel = %kinfo.release, "datapath loaded");
            let mut live = LiveKernel::new(dp, Arc::clone(&netlink));
            // Before the job core adopts anything: jobs of an older layout
            // keep running, their counts continuing.
            if let Err(e) = live.upgrade_pins().await {
                warn!(error = %e, "upgrading the pinned maps; the next start tries again");
            }
            (Some(Box::new(live)), DatapathStatus::On)
        }
        Err(e) => {
            let e = brief(&e.to_string());
            // Degraded, not blind: what an earlier probe recorded is still
            // listed, stopped, expired and cleaned up.
            match Datapath::open_degraded(&cfg, &e).map(&mut with_captures) {
                Ok(dp) => {
                    warn!(error = %e, pin_dir = %dp.pin_dir.display(), "datapath off: recorded jobs adopted from the pinned maps (listed, stoppable, expiring; their hooks keep counting); new jobs run in placeholder mode");
                    (
                        Some(Box::new(LiveKernel::new(dp, Arc::clone(&netlink)))),
                        DatapathStatus::Off(format!(
                            "{e} (degraded: jobs recorded before are kept and can be stopped)"
                        )),
                    )
                }
                Err(why) => {
                    warn!(error = %e, pins = %why, "datapath off: jobs run in placeholder mode only");
                    (None, DatapathStatus::Off(e))
                }
            }
        }
    };
    let info = ProbeInfo {
        kernel: kinfo.release.clone(),
        btf: kinfo.btf,
        attach_modes: kinfo.attach_modes(),
        attach_mode: kinfo
            .resolve(cfg.attach)
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        pin_dir: cfg.pin_dir.display().to_string(),
        hist_bounds: HIST_BOUNDS.to_vec(),
    };
    let ports = Ports {
        kernel,
        interfaces: Box::new((*netlink).clone()),
        erspan: Box::new(Erspan {
            netlink,
            settings: cfg.erspan.clone(),
        }),
        sonic: Box::new(Sonic {
            settings: cfg.sonic.clone(),
        }),
        clock: Box::new(SystemClock),
        capture: Arc::clone(&spool) as Arc<dyn crate::jobs::ports::CaptureStore>,
    };
    let listen = Listen {
        addr: cfg.listen.clone(),
        socket_gid: cfg.socket_gid,
        allow: cfg.allow.clone(),
        tls: cfg.tls.clone(),
        local_tcp: cfg.local_tcp,
    };
    let mgr = JobManager::new(cfg.job_settings(), datapath, ports).await;
    if let Some(pin) = ring {
        capture::ring::spawn_reader(pin, spool);
    }
    Ok(Probe { mgr, info, listen })
}
