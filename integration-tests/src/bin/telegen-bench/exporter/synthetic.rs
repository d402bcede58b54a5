//! The exporter section's synthetic probe: the Probe service with only
//! WatchCounters, streaming snapshots of a given shape from this process.
//! Its snapshot builder (`synthetic_template`, then `synthetic_snapshot` per
//! tick) also feeds the fleet section's simulated exporters.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use telegen_integration_tests::unpriv::UNPRIVILEGED_ID;
use telegen_probe::maps::layout::{CLASS_NAMES, ERROR_NAMES, HIST_BOUNDS, TUNNEL_NAMES};
use telegen_proto::v1 as pb;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};

use super::Shape;

/// Synthetic traffic per size bucket (64 ... 9216, +Inf): (share in %, the
/// frame size its packets count as).
const SIZE_MIX: [(u64, u64); HIST_BOUNDS.len() + 1] = [
    (30, 64),
    (10, 100),
    (8, 200),
    (6, 400),
    (6, 800),
    (30, 1500),
    (4, 3000),
    (6, 9000),
    (0, 9216),
];

/// How the counters of a synthetic probe grow.
#[derive(Clone, Copy)]
pub struct Growth {
    /// Every series' unit (~1e6, a 1 % bucket share) grows by this much
    /// (times 1 to 8) per tick.
    pub rate: u64,
    /// Every error and tunnel counter grows by this much (times the length
    /// of its name) per tick; 0 leaves them at 0.
    pub side: u64,
}

/// The exporter section's probe: series growing by 0.1 % of their unit per
/// tick, error and tunnel counters at 0.
const EXPORTER_GROWTH: Growth = Growth {
    rate: 1_000,
    side: 0,
};

/// Counters of synthetic series #`n` after `tick` snapshots: long-running
/// magnitudes (~1e8 packets), growing every tick, the buckets adding up to
/// the packets.
fn synthetic_counters(n: u64, tick: u64, rate: u64) -> pb::Counters {
    let unit = (1 + n % 8) * (1_000_000 + tick * rate);
    let hist: Vec<u64> = SIZE_MIX.iter().map(|(share, _)| unit * share).collect();
    let bytes = SIZE_MIX
        .iter()
        .map(|(share, size)| unit * share * size)
        .sum();
    pb::Counters {
        packets: hist.iter().sum(),
        bytes,
        hist,
    }
}

/// The four protocol series of an owner, their counters still to be set.
fn class_series() -> Vec<pb::Series> {
    CLASS_NAMES
        .iter()
        .map(|proto| pb::Series {
            proto: (*proto).into(),
            counters: None,
        })
        .collect()
}

pub fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a probe with `shape` whose counters started at `epoch_ns` sends,
/// but the time and the counters: SONiC port names (each with a series per
/// direction of `shape`), running jobs, every error and tunnel counter, the
/// kernel's bucket bounds, start times that never change.
pub fn synthetic_template(shape: Shape, epoch_ns: u64) -> pb::CounterSnapshot {
    let name = |i: u32| format!("Ethernet{}", 4 * i);
    let directions = &["ingress", "egress"][..shape.directions.clamp(1, 2) as usize];
    let interfaces = (0..shape.ifaces).flat_map(|i| {
        directions.iter().map(move |d| pb::InterfaceSeries {
            ifindex: 10 + i,
            interface: name(i),
            direction: (*d).into(),
            start_time_unix_nano: epoch_ns + u64::from(i) * 1_000_000,
            series: class_series(),
        })
    });
    let jobs = (0..shape.jobs).map(|j| pb::JobSeries {
        job_id: uuid::Uuid::from_u128(0x7e1e_9e00_0000_4000_8000_0000_0000_0000 + u128::from(j))
            .to_string(),
        interface: name(j),
        direction: "ingress".into(),
        status: "running".into(),
        otlp_export: true,
        start_time_unix_nano: epoch_ns + 3_600_000_000_000,
        series: class_series(),
        stopped_time_unix_nano: 0,
    });
    pb::CounterSnapshot {
        start_time_unix_nano: epoch_ns,
        global: class_series(),
        interfaces: interfaces.collect(),
        jobs: jobs.collect(),
        errors: ERROR_NAMES.iter().map(|e| (e.to_string(), 0)).collect(),
        tunnel: TUNNEL_NAMES.iter().map(|t| (t.to_string(), 0)).collect(),
        hist_bounds: HIST_BOUNDS.to_vec(),
        ..Default::default()
    }
}

/// Snapshot #`tick`: `template` stamped now, every series numbered in
/// order with its counters after `tick` snapshots, growing by `growth`.
pub fn synthetic_snapshot(
    template: &pb::CounterSnapshot,
    tick: u64,
    growth: Growth,
) -> pb::CounterSnapshot {
    let mut snap = template.clone();
    snap.time_unix_nano = now_unix_ns();
    let series = snap
        .global
        .iter_mut()
        .chain(snap.interfaces.iter_mut().flat_map(|i| &mut i.series))
        .chain(snap.jobs.iter_mut().flat_map(|j| &mut j.series));
    for (n, s) in (0..).zip(series) {
        s.counters = Some(synthetic_counters(n, tick, growth.rate));
    }
    for (name, v) in snap.errors.iter_mut().chain(snap.tunnel.iter_mut()) {
        *v = growth.side * tick * name.len() as u64;
    }
    snap
}

/// The Probe service with only WatchCounters, streaming synthetic snapshots.
struct FakeProbe {
    template: Arc<pb::CounterSnapshot>,
}

fn synthetic_only() -> tonic::Status {
    tonic::Status::unimplemented("the bench's synthetic probe only streams counters")
}

type Reply<T> = Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl pb::probe_server::Probe for FakeProbe {
    async fn start_job(&self, _: tonic::Request<pb::StartJobRequest>) -> Reply<pb::Job> {
        Err(synthetic_only())
    }

    async fn get_job(&self, _: tonic::Request<pb::GetJobRequest>) -> Reply<pb::Job> {
        Err(synthetic_only())
    }

    async fn list_jobs(
        &self,
        _: tonic::Request<pb::ListJobsRequest>,
    ) -> Reply<pb::ListJobsResponse> {
        Err(synthetic_only())
    }

    async fn stop_job(&self, _: tonic::Request<pb::StopJobRequest>) -> Reply<pb::Job> {
        Err(synthetic_only())
    }

    async fn get_results(&self, _: tonic::Request<pb::GetResultsRequest>) -> Reply<pb::Results> {
        Err(synthetic_only())
    }

    type StreamCaptureStream = ReceiverStream<Result<pb::CaptureChunk, tonic::Status>>;

    async fn stream_capture(
        &self,
        _: tonic::Request<pb::StreamCaptureRequest>,
    ) -> Reply<Self::StreamCaptureStream> {
        Err(synthetic_only())
    }

    type WatchCountersStream = ReceiverStream<Result<pb::CounterSnapshot, tonic::Status>>;

    /// One snapshot per interval (clamped like the probe's), until the
    /// client goes away.
    async fn watch_counters(
        &self,
        req: tonic::Request<pb::WatchCountersRequest>,
    ) -> Reply<Self::WatchCountersStream> {
        let ms = req.into_inner().interval_ms.clamp(100, 3_600_000);
        let template = Arc::clone(&self.template);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(ms.into()));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for tick in 0.. {
                every.tick().await;
                let snap = synthetic_snapshot(&template, tick, EXPORTER_GROWTH);
                if tx.send(Ok(snap)).await.is_err() {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(ReceiverStream::new(rx)))
    }

    async fn get_info(&self, _: tonic::Request<pb::GetInfoRequest>) -> Reply<pb::Info> {
        Err(synthetic_only())
    }

    async fn report_exports(
        &self,
        _: tonic::Request<pb::ReportExportsRequest>,
    ) -> Reply<pb::ReportExportsResponse> {
        Ok(tonic::Response::new(Default::default()))
    }
}

/// `FakeProbe` served in this process on `dir/probe.sock`, which the
/// unprivileged group may connect to (as TELEGEN_PROBE_SOCKET_GROUP makes
/// the real probe's); stops serving when dropped.
pub struct SyntheticProbe {
    pub socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl SyntheticProbe {
    pub fn start(dir: &Path, shape: Shape) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let socket = dir.join("probe.sock");
        let listener = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("binding {}", socket.display()))?;
        let gid: u32 = UNPRIVILEGED_ID.parse()?;
        std::os::unix::fs::chown(&socket, None, Some(gid))
            .with_context(|| format!("chown {}", socket.display()))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o660))?;
        // Counters "started" an hour ago, and stay so.
        let epoch_ns = now_unix_ns() - 3_600_000_000_000;
        let probe = FakeProbe {
            template: Arc::new(synthetic_template(shape, epoch_ns)),
        };
        let server = tonic::transport::Server::builder()
            .add_service(pb::probe_server::ProbeServer::new(probe))
            .serve_with_incoming(UnixListenerStream::new(listener));
        let task = tokio::spawn(async move {
            if let Err(e) = server.await {
                eprintln!("telegen-bench: synthetic probe: {e}");
            }
        });
        Ok(SyntheticProbe { socket, task })
    }
}

impl Drop for SyntheticProbe {
    fn drop(&mut self) {
        self.task.abort();
        let _ = fs::remove_file(&self.socket);
    }
}
