//! Section 3, latency: StartJob -> running and StopJob latency in direct mode, TCX and forced
//! tc, with the probe in a network namespace on a veth; the kernel's own
//! attach and detach times as the floor. The job cycle over gRPC is shared
//! with the gateway section.

use std::{
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use aya::programs::{
    links::LinkOrder,
    tc::{self, NlOptions, TcAttachOptions, TcAttachType},
};
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

use crate::common::{dist_ms, mem_kib, met, mib, ms_since, pct};
use crate::probe_proc::{ensure_datapath, BenchNetns, ProbeProc};
use crate::testrun::Prog;

const LATENCY_P50_TARGET_MS: f64 = 10.0;

/// Start->running and stop times of a series of jobs in one attach mode, ms.
pub struct Latencies {
    pub mode: String,
    pub start_to_running: Vec<f64>,
    pub stop: Vec<f64>,
    pub first: f64,
    pub rss_after: Option<(u64, u64)>,
}

impl Latencies {
    pub fn new(mode: &str, n: usize) -> Self {
        Latencies {
            mode: mode.into(),
            start_to_running: Vec::with_capacity(n),
            stop: Vec::with_capacity(n),
            first: 0.0,
            rss_after: None,
        }
    }

    pub fn push(&mut self, run_ms: f64, stop_ms: f64) {
        if self.start_to_running.is_empty() {
            self.first = run_ms;
        }
        self.start_to_running.push(run_ms);
        self.stop.push(stop_ms);
    }

    /// Add job #`i`'s cycle, which must have attached in this mode.
    pub fn record(&mut self, i: usize, c: &Cycle) -> Result<()> {
        ensure!(
            c.attach_mode == self.mode,
            "job #{i} attached with {:?}, the probe said {:?}",
            c.attach_mode,
            self.mode
        );
        self.push(c.run_ms, c.stop_ms);
        Ok(())
    }

    pub fn sort(&mut self) {
        self.start_to_running.sort_by(f64::total_cmp);
        self.stop.sort_by(f64::total_cmp);
    }
}

/// One job from start to stopped: start->running and stop times, in ms.
pub struct Cycle {
    pub run_ms: f64,
    pub stop_ms: f64,
    pub attach_mode: String,
}

/// While job #`i` is polled: any status but starting, or the deadline
/// passing, is a failure.
pub fn check_starting(i: usize, status: &str, error: &str, deadline: Instant) -> Result<()> {
    ensure!(
        status == "starting",
        "job #{i} went {status:?} instead of running: {error}"
    );
    ensure!(Instant::now() < deadline, "job #{i} not running after 10 s");
    Ok(())
}

pub fn check_stopped(i: usize, status: &str, error: &str) -> Result<()> {
    ensure!(
        status == "stopped",
        "stopping job #{i} answered status {status:?}: {error}"
    );
    Ok(())
}

/// A direct-mode ingress job on `port`.
pub fn start_req(port: &str) -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: port.into(),
        direction: "ingress".into(),
        mirror_mode: "direct".into(),
        ..Default::default()
    }
}

/// StartJob, then GetJob polled in a tight loop until the job runs.
pub async fn grpc_run(
    client: &mut ProbeClient<Channel>,
    req: pb::StartJobRequest,
    i: usize,
) -> Result<pb::Job> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut job = client
        .start_job(req)
        .await
        .with_context(|| format!("StartJob #{i}"))?
        .into_inner();
    while job.status != "running" {
        check_starting(i, &job.status, &job.error, deadline)?;
        job = client
            .get_job(pb::GetJobRequest {
                job_id: job.job_id.clone(),
            })
            .await
            .with_context(|| format!("GetJob #{i}"))?
            .into_inner();
    }
    Ok(job)
}

/// Job #`i` straight over gRPC: `grpc_run`, then StopJob.
pub async fn grpc_cycle(client: &mut ProbeClient<Channel>, port: &str, i: usize) -> Result<Cycle> {
    let t0 = Instant::now();
    let job = grpc_run(client, start_req(port), i).await?;
    let run_ms = ms_since(t0);
    let t1 = Instant::now();
    let stopped = client
        .stop_job(pb::StopJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .with_context(|| format!("StopJob #{i}"))?
        .into_inner();
    let stop_ms = ms_since(t1);
    check_stopped(i, &stopped.status, &stopped.error)?;
    Ok(Cycle {
        run_ms,
        stop_ms,
        attach_mode: job.attach_mode,
    })
}

async fn job_cycles(
    bin_dir: &Path,
    ns: &BenchNetns,
    port: &str,
    forced: Option<&str>,
    jobs: usize,
) -> Result<Latencies> {
    let extra: Vec<(&str, &str)> = forced
        .map(|m| vec![("TELEGEN_ATTACH_MODE", m)])
        .unwrap_or_default();
    let tag = format!("latency-{}", forced.unwrap_or("auto"));
    let (mut probe, info) = ProbeProc::start(bin_dir, &tag, Some(&ns.path()), &extra).await?;
    ensure_datapath(&info)?;
    let mut client = probe.client();
    let mut lat = Latencies::new(&info.attach_mode, jobs);
    for i in 0..jobs {
        let c = grpc_cycle(&mut client, port, i)
            .await
            .map_err(|e| probe.with_log(e))?;
        lat.record(i, &c)?;
    }
    probe.check_alive()?;
    if let Some(pid) = probe.pid() {
        lat.rss_after = mem_kib(pid).ok();
    }
    drop(client);
    probe.shutdown().await;
    Ok(lat)
}

/// The kernel's own floor: attach and detach the empty classifier with aya,
/// without the probe, `n` times on `ifname` (in this process's namespace).
fn bare_attach(ifname: &str, tcx: bool, n: usize) -> Result<Latencies> {
    let mut empty = Prog::empty()?;
    let prog = empty.classifier_mut()?;
    if !tcx {
        match tc::qdisc_add_clsact(ifname) {
            Ok(()) => {}
            Err(tc::TcError::IoError(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).context(format!("adding clsact to {ifname}")),
        }
    }
    let mut lat = Latencies::new(if tcx { "tcx" } else { "tc" }, n);
    for _ in 0..n {
        let opts = if tcx {
            TcAttachOptions::TcxOrder(LinkOrder::default())
        } else {
            TcAttachOptions::Netlink(NlOptions::default())
        };
        let t0 = Instant::now();
        let id = prog
            .attach_with_options(ifname, TcAttachType::Ingress, opts)
            .with_context(|| format!("attaching ({}) to {ifname}", lat.mode))?;
        let attach_ms = ms_since(t0);
        let t1 = Instant::now();
        prog.detach(id)
            .with_context(|| format!("detaching ({}) from {ifname}", lat.mode))?;
        let detach_ms = ms_since(t1);
        lat.push(attach_ms, detach_ms);
    }
    Ok(lat)
}

pub async fn bench(bin_dir: &Path, jobs: usize) -> Result<String> {
    let (ns, port) = BenchNetns::create(std::process::id())?;
    let mut results = Vec::new();
    for forced in [None, Some("tc")] {
        results.push((
            "probe",
            job_cycles(bin_dir, &ns, &port, forced, jobs).await?,
        ));
    }
    // The host end of the veth lives in our namespace.
    for tcx in [true, false] {
        results.push(("bare kernel", bare_attach(&ns.host_if, tcx, jobs)?));
    }
    drop(ns);

    let mut s = String::new();
    writeln!(
        s,
        "{jobs} sequential jobs per mode on a veth inside a network namespace (probe run with nsenter --net): \
         StartJob {{port, ingress, direct}} call until GetJob (polled in a tight loop) says running, then StopJob. \
         All iterations counted (the first one included).\n"
    )?;
    writeln!(
        s,
        "Bare kernel rows: the empty classifier attached and detached with aya directly (no probe, no gRPC), \
         {jobs} times on the veth's host end: the kernel's own floor for each mode \
         (start->running = attach call, StopJob = detach call).\n"
    )?;
    writeln!(
        s,
        "| attach mode | start->running p50 | p99 | max | first | StopJob p50 | p99 | max | probe VmRSS / VmHWM after |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let mut all_met = true;
    for (who, l) in &mut results {
        l.sort();
        let (a, b) = (&l.start_to_running, &l.stop);
        let mode = if l.mode == "tc" {
            "tc (clsact)"
        } else {
            l.mode.as_str()
        };
        if *who == "probe" {
            all_met &= pct(a, 50.0) < LATENCY_P50_TARGET_MS;
        }
        writeln!(
            s,
            "| {who}, {mode} | {} | {:.2} ms | {} | {} |",
            dist_ms(a),
            l.first,
            dist_ms(b),
            l.rss_after
                .map(|(r, h)| format!("{} / {}", mib(r), mib(h)))
                .unwrap_or_else(|| "-".into())
        )?;
    }
    writeln!(
        s,
        "\nTarget (probe) start->running p50 < {LATENCY_P50_TARGET_MS} ms: {}.",
        met(all_met)
    )?;
    Ok(s)
}
