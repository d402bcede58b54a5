//! Section 5, exporter: the OTLP exporter, run unprivileged as in production between a
//! synthetic probe (WatchCounters only, 4 series per owner) and a real
//! OTLP/gRPC receiver: exports, requests per interval, data points and bytes
//! per request, CPU per export with 64 interfaces and 2 jobs against a
//! global-only snapshot (and 2 interfaces), and its RSS.

mod report;
pub mod synthetic;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, ensure, Context, Result};
use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest, metrics::v1::metric::Data,
};
use telegen_integration_tests::{
    exporter::Exporter,
    otlp::{self, Receiver},
    sh,
};
use telegen_probe::maps::layout::CLASS_NAMES;

use crate::common::{baseline_rss_kib, cpu_clock_us, cpu_us, mem_kib, tail, ScratchDir};
use synthetic::SyntheticProbe;

/// Every export the exporter is asked for, in ms (its WatchCounters interval
/// too: one snapshot per export).
const EXPORT_INTERVAL_MS: u64 = 100;
const EXPORTER_RSS_TARGET_KIB: u64 = 15 * 1024;

/// What a synthetic snapshot holds, besides the global series.
#[derive(Clone, Copy)]
pub struct Shape {
    pub ifaces: u32,
    /// Series per interface: 1 (ingress) or 2 (ingress and egress).
    pub directions: u32,
    pub jobs: u32,
}

impl Shape {
    pub fn label(self) -> String {
        match (self.ifaces, self.directions, self.jobs) {
            (0, _, 0) => "global only (0 interfaces, 0 jobs)".into(),
            (i, 1, j) => format!("{i} interfaces, {j} jobs"),
            (i, d, j) => format!("{i} interfaces x {d} directions, {j} jobs"),
        }
    }

    /// Counter series: one per protocol class of each owner.
    pub fn series(self) -> usize {
        CLASS_NAMES.len() * (1 + self.ifaces * self.directions + self.jobs) as usize
    }

    /// Data points of bpf.packets and bpf.bytes in one complete export.
    fn kernel_points(self) -> usize {
        2 * self.series()
    }
}

/// Data points in one OTLP request: in every metric, and in bpf.packets and
/// bpf.bytes (the series of the snapshot).
pub fn data_points(r: &ExportMetricsServiceRequest) -> (usize, usize) {
    let metrics = r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics);
    let (mut all, mut kernel) = (0, 0);
    for m in metrics {
        let n = match &m.data {
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            _ => 0,
        };
        all += n;
        if matches!(m.name.as_str(), "bpf.packets" | "bpf.bytes") {
            kernel += n;
        }
    }
    (all, kernel)
}

/// The first packets value of a request (the global ipv4 series).
pub fn first_packets(r: &ExportMetricsServiceRequest) -> Option<i64> {
    let m = r
        .resource_metrics
        .first()?
        .scope_metrics
        .first()?
        .metrics
        .first()?;
    match &m.data {
        Some(Data::Sum(s)) => s.data_points.first().map(otlp::int_value),
        _ => None,
    }
}

/// Wait (up to 20 s) for the first export with every series of `shape`.
async fn first_full_export(rx: &Receiver, exporter: &mut Exporter, shape: Shape) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        exporter.check_running()?;
        let got = rx.requests().last().map_or(0, |r| data_points(r).1);
        ensure!(
            got <= shape.kernel_points(),
            "an export carried {got} bpf.packets/bpf.bytes points, expected {} for {}",
            shape.kernel_points(),
            shape.label()
        );
        if got == shape.kernel_points() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "no export with every series within 20 s; exporter log:\n{}",
            tail(&exporter.log_text())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait (up to 5 s, polling every ms) until request #`n` (counting from 1)
/// has arrived; the instant it was seen.
async fn export_arrival(rx: &Receiver, n: usize) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while rx.count() < n {
        ensure!(
            Instant::now() < deadline,
            "export #{n} did not arrive within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(Instant::now())
}

/// One exporter's exports over a measured window.
struct ExportRun {
    shape: Shape,
    exports: usize,
    secs: f64,
    /// The exporter's CPU time over the window, µs: from its CPU clock, and
    /// from /proc (10 ms ticks).
    cpu_us: f64,
    proc_cpu_us: f64,
    /// Fewest and most data points in one request.
    points: (usize, usize),
    /// Whether every request carried every series of the snapshot.
    complete: bool,
    /// Mean encoded size of a request.
    bytes: f64,
    /// Memory just after the first export and 1 s after the window.
    mem: ((u64, u64), (u64, u64)),
}

impl ExportRun {
    /// Requests received per export interval elapsed.
    fn per_interval(&self) -> f64 {
        self.exports as f64 / (self.secs * 1e3 / EXPORT_INTERVAL_MS as f64)
    }

    fn cpu_per_export(&self) -> f64 {
        self.cpu_us / self.exports.max(1) as f64
    }

    fn proc_cpu_per_export(&self) -> f64 {
        self.proc_cpu_us / self.exports.max(1) as f64
    }

    /// Every request in the window carried every series, one request per
    /// interval (the exporter sleeps an interval after each export, so
    /// slightly fewer).
    fn one_per_interval(&self) -> bool {
        self.complete && (0.9..=1.0 + 1e-9).contains(&self.per_interval())
    }
}

/// What the requests of a window carried.
struct WindowStats {
    /// Fewest and most data points in one request.
    points: (usize, usize),
    /// Whether each had `kernel_points` in bpf.packets and bpf.bytes.
    complete: bool,
    /// Mean encoded size.
    bytes: f64,
}

/// `reqs` against `shape`; an error if the exported counters did not grow
/// across them.
fn window_stats(reqs: &[ExportMetricsServiceRequest], shape: Shape) -> Result<WindowStats> {
    let (Some(first), Some(last)) = (reqs.first(), reqs.last()) else {
        bail!("no export in the window");
    };
    ensure!(
        first_packets(last) > first_packets(first),
        "the exported counters did not grow over the window"
    );
    let points: Vec<(usize, usize)> = reqs.iter().map(data_points).collect();
    let all = points.iter().map(|p| p.0);
    let bytes: usize = reqs.iter().map(prost::Message::encoded_len).sum();
    Ok(WindowStats {
        points: (all.clone().min().unwrap_or(0), all.max().unwrap_or(0)),
        complete: points.iter().all(|p| p.1 == shape.kernel_points()),
        bytes: bytes as f64 / reqs.len() as f64,
    })
}

/// The release exporter, unprivileged, between a synthetic probe of `shape`
/// and a real receiver: from the first full export, `secs` seconds of
/// exports, from one export's arrival to another's.
async fn export_run(bin_dir: &Path, shape: Shape, secs: u64) -> Result<ExportRun> {
    let dir = ScratchDir::fresh(PathBuf::from(format!(
        "/tmp/telegen-bench-{}-exporter-{}-{}",
        std::process::id(),
        shape.ifaces,
        shape.jobs
    )))?;
    let probe = SyntheticProbe::start(&dir.0, shape)?;
    let rx = Receiver::start().await?;
    let interval = EXPORT_INTERVAL_MS.to_string();
    let env = [
        ("OTEL_METRIC_EXPORT_INTERVAL", interval.as_str()),
        ("RUST_LOG", "info"),
    ];
    let mut exporter = Exporter::start_at(bin_dir, &probe.socket, &dir.0, &rx.endpoint(), &env)
        .context("starting telegen-exporter")?;
    let pid = exporter
        .pid()
        .ok_or_else(|| anyhow!("exporter not running"))?;
    first_full_export(&rx, &mut exporter, shape).await?;
    let mem_start = mem_kib(pid)?;
    let n0 = rx.count() + 1;
    let t0 = export_arrival(&rx, n0).await?;
    let cpu0 = [cpu_clock_us(pid)?, cpu_us(pid)?];
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let n1 = rx.count() + 1;
    let t1 = export_arrival(&rx, n1).await?;
    let cpu1 = [cpu_clock_us(pid)?, cpu_us(pid)?];
    exporter.check_running()?;
    let w = window_stats(&rx.requests()[n0..n1], shape)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    exporter.check_running()?;
    let mem_idle = mem_kib(pid)?;
    Ok(ExportRun {
        shape,
        exports: n1 - n0,
        secs: (t1 - t0).as_secs_f64(),
        cpu_us: cpu1[0] - cpu0[0],
        proc_cpu_us: cpu1[1] - cpu0[1],
        points: w.points,
        complete: w.complete,
        bytes: w.bytes,
        mem: (mem_start, mem_idle),
    })
}

pub async fn bench(bin_dir: &Path, secs: u64) -> Result<String> {
    let bin = bin_dir.join("telegen-exporter");
    let version = sh(&bin.display().to_string(), &["--version"])
        .with_context(|| format!("{} --version", bin.display()))?;
    // All at once, so that other work on the machine weighs on every case alike.
    let runs = futures::future::try_join_all([(0, 0), (2, 2), (64, 2)].map(|(ifaces, jobs)| {
        let shape = Shape {
            ifaces,
            directions: 1,
            jobs,
        };
        export_run(bin_dir, shape, secs)
    }))
    .await?;
    let base_rss = baseline_rss_kib().await?;
    report::exporter_report(version.trim(), &runs, secs, base_rss)
}
