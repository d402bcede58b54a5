//! Section 7, fleet: past one machine. Simulated exporters (the real
//! exporter's encoding, fed by synthetic snapshots of 64 ports x 2
//! directions and 2 jobs), one per switch, each on its own connection to one
//! OTLP/gRPC receiver on loopback, every 10 s: bytes per second and series
//! per switch, to size a collector tier.

mod report;
mod wire;

use std::{
    collections::HashMap,
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant},
};

use anyhow::{anyhow, ensure, Result};
use opentelemetry_proto::tonic::{
    collector::metrics::v1::{
        metrics_service_client::MetricsServiceClient, ExportMetricsServiceRequest,
    },
    resource::v1::Resource,
};
use prost::Message as _;
use telegen_exporter::{
    config::Config, now_ns, otlp, prom, resource, series, series::Attr, stats::Stats,
};
use telegen_integration_tests::otlp::{attr, Receiver};
use telegen_proto::v1 as pb;

use crate::common::cpu_clock_us;
use crate::exporter::{
    data_points, first_packets,
    synthetic::{now_unix_ns, synthetic_snapshot, synthetic_template, Growth},
    Shape,
};
use wire::Wire;

const SHAPE: Shape = Shape {
    ifaces: 64,
    directions: 2,
    jobs: 2,
};
/// Times the prost encoding of one request is measured, after the run.
const ENCODES: u32 = 50;

/// What every simulated exporter shares.
struct Fleet {
    switches: u32,
    intervals: u32,
    /// The exporter's configuration from its defaults, but the endpoint.
    cfg: Config,
    /// The snapshot every switch's probe sends, but the time and counters.
    template: pb::CounterSnapshot,
    /// The exporter's resource (`resource::build()`) on this machine.
    resource: Resource,
    wire: Arc<Wire>,
    /// When the first switch's first export is due.
    start: tokio::time::Instant,
}

/// What one simulated exporter saw: (first export of its connection?, ms)
/// per export that succeeded, what failed, the CPU its requests took to
/// build.
#[derive(Default)]
struct SwitchRun {
    latencies: Vec<(bool, f64)>,
    failed: Vec<String>,
    build_us: f64,
}

/// Switch #`k`: export.rs's `export_once` on a snapshot of its own, once
/// per interval, from the fleet's start + its share of the interval.
async fn switch(k: u32, fleet: Arc<Fleet>) -> Result<SwitchRun> {
    let cfg = &fleet.cfg;
    let mut resource = fleet.resource.clone();
    resource.attributes.retain(|a| a.key != "host.name");
    let host = Attr::Str(format!("switch-{k:04}"));
    resource.attributes.push(otlp::kv("host.name", &host));
    resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
    let mut client = MetricsServiceClient::new(wire::channel(cfg, &fleet.wire)?);
    let grace = series::JobGrace::new(cfg.finished_grace);
    let stats = Stats::default();
    let growth = Growth {
        rate: 100 + u64::from(k) * 7_919 % 2_000,
        side: 1 + u64::from(k % 5),
    };
    let offset = cfg.interval * k / fleet.switches;
    let mut run = SwitchRun::default();
    for i in 0..fleet.intervals {
        tokio::time::sleep_until(fleet.start + offset + cfg.interval * i).await;
        let snap = synthetic_snapshot(&fleet.template, u64::from(i) + 1, growth);
        let cpu = thread_cpu_us();
        let collected = series::collect(&snap, &grace);
        let mut metrics = otlp::kernel_metrics(&collected);
        metrics.extend(otlp::self_metrics(&stats.get(), now_ns()));
        let req = otlp::request(&resource, metrics);
        run.build_us += thread_cpu_us() - cpu;
        let t = Instant::now();
        let failure = match tokio::time::timeout(cfg.timeout, client.export(req)).await {
            Ok(Ok(_)) => None,
            Ok(Err(s)) => Some(format!("{:?}: {}", s.code(), s.message())),
            Err(_) => Some(format!("no answer within {:?}", cfg.timeout)),
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match failure {
            None => {
                stats.export_ok();
                run.latencies.push((i == 0, ms));
            }
            Some(e) => {
                stats.export_failed();
                run.failed.push(e);
            }
        }
    }
    Ok(run)
}

/// What the receiver got, tallied as it arrives (the requests then dropped).
#[derive(Default)]
struct Tally {
    requests: u64,
    bytes: u64,
    bytes_range: (u64, u64),
    points: u64,
    points_range: (usize, usize),
    /// The global ipv4 packets of each host's newest request.
    hosts: HashMap<String, i64>,
    /// Requests whose counters did not grow over their host's previous one.
    not_growing: u64,
    last: Option<ExportMetricsServiceRequest>,
}

impl Tally {
    fn add(&mut self, r: ExportMetricsServiceRequest) {
        let (bytes, points) = (r.encoded_len() as u64, data_points(&r).0);
        if self.requests == 0 {
            (self.bytes_range, self.points_range) = ((bytes, bytes), (points, points));
        }
        self.requests += 1;
        self.bytes += bytes;
        self.points += points as u64;
        let (b, p) = (self.bytes_range, self.points_range);
        self.bytes_range = (b.0.min(bytes), b.1.max(bytes));
        self.points_range = (p.0.min(points), p.1.max(points));
        let host = r
            .resource_metrics
            .first()
            .and_then(|rm| attr(&rm.resource.as_ref()?.attributes, "host.name"));
        let packets = first_packets(&r).unwrap_or(-1);
        if let Some(prev) = self.hosts.insert(host.unwrap_or_default(), packets) {
            self.not_growing += u64::from(packets <= prev);
        }
        self.last = Some(r);
    }
}

fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the time into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// Room for two sockets per switch (its own and the receiver's) in this
/// process.
fn raise_nofile(need: u64) -> Result<()> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        ensure!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0,
            "getrlimit"
        );
        if r.rlim_cur >= need {
            return Ok(());
        }
        r.rlim_cur = need;
        r.rlim_max = r.rlim_max.max(need);
        let rc = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        let e = std::io::Error::last_os_error();
        ensure!(rc == 0, "raising RLIMIT_NOFILE to {need}: {e}");
    }
    Ok(())
}

/// The receiver and the tally of what it gets, on threads of their own so
/// that the simulated exporters on this one do not delay them; the tally
/// drains it every 200 ms, and once more when `stop` says true.
async fn receive(
    rt: &tokio::runtime::Runtime,
) -> Result<(
    String,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Tally>,
)> {
    let rx = rt.spawn(Receiver::start()).await??;
    let endpoint = rx.endpoint();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let tally = rt.spawn(async move {
        let mut t = Tally::default();
        loop {
            let done = *stopped.borrow_and_update();
            rx.take_requests().into_iter().for_each(|r| t.add(r));
            if done {
                return t;
            }
            let wait = Duration::from_millis(200);
            let _ = tokio::time::timeout(wait, stopped.changed()).await;
        }
    });
    Ok((endpoint, stop, tally))
}

pub async fn bench(switches: u32, intervals: u32) -> Result<String> {
    raise_nofile(2 * u64::from(switches) + 1024)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (endpoint, stop, tally) = receive(&rt).await?;
    let fleet = Arc::new(Fleet {
        switches,
        intervals,
        cfg: Config::from_lookup(|k| {
            (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
        })?,
        template: synthetic_template(SHAPE, now_unix_ns() - 3_600_000_000_000),
        resource: resource::build(),
        wire: Arc::default(),
        start: tokio::time::Instant::now() + Duration::from_secs(1),
    });
    let (cpu0, main0) = (cpu_clock_us(std::process::id())?, thread_cpu_us());
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..switches)
        .map(|k| tokio::spawn(switch(k, Arc::clone(&fleet))))
        .collect();
    let mut runs = Vec::with_capacity(tasks.len());
    for t in tasks {
        runs.push(t.await??);
    }
    let cpu = cpu_clock_us(std::process::id())? - cpu0;
    let main = thread_cpu_us() - main0;
    let wall = t0.elapsed().as_secs_f64() - 1.0;
    let _ = stop.send(true);
    let tally = tally.await?;
    // The receiver went with the tally task.
    rt.shutdown_background();

    let sample = tally
        .last
        .as_ref()
        .ok_or_else(|| anyhow!("no request arrived"))?;
    let c0 = thread_cpu_us();
    for _ in 0..ENCODES {
        std::hint::black_box(sample.encode_to_vec());
    }
    let encode_us = (thread_cpu_us() - c0) / f64::from(ENCODES);
    let snap = synthetic_snapshot(&fleet.template, 1, Growth { rate: 1, side: 1 });
    let grace = series::JobGrace::new(fleet.cfg.finished_grace);
    let text = prom::render(
        Some(&series::collect(&snap, &grace)),
        &Stats::default().get(),
    );
    report::fleet_report(&report::Measured {
        switches,
        intervals,
        cfg: &fleet.cfg,
        runs: &runs,
        tally: &tally,
        wire: (
            fleet.wire.sent.load(Relaxed),
            fleet.wire.received.load(Relaxed),
        ),
        cpu: (cpu, main),
        wall,
        encode_us,
        prom_series: text.lines().filter(|l| !l.starts_with('#')).count(),
    })
}
