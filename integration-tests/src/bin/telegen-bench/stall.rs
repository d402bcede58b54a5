//! GetJob while a `sonic` start waits on a stalled redis (SIGSTOP): the
//! job lock must not be held across redis, so reads stay as fast as when
//! idle. Target: the stalled p99 within 2x the idle p99 of the same run.

use std::{
    fmt::Write as _,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

use crate::common::{met, ms_since, pct};
use crate::probe_proc::{BenchNetns, ProbeProc};

const RATIO_TARGET: f64 = 2.0;
const IDLE_CALLS: usize = 2000;
/// How long GetJob is measured while the start is stuck on redis (less
/// than the probe's redis timeouts, so the start is stuck throughout).
const STALL: Duration = Duration::from_millis(1500);

/// A redis-server on a unix socket, killed when dropped.
struct Redis {
    child: Child,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start() -> Result<(Self, String)> {
        let dir =
            std::path::PathBuf::from(format!("/tmp/telegen-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sock = dir.join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&sock)
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server (scripts/install-deps.sh installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok((Redis { child, dir }, format!("unix://{}", sock.display())))
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GetJob latencies (ms) until `calls` calls or `until`, whichever first.
async fn get_jobs(
    c: &mut ProbeClient<Channel>,
    id: &str,
    calls: usize,
    until: Option<Instant>,
) -> Result<Vec<f64>> {
    let mut v = Vec::with_capacity(calls.min(100_000));
    while v.len() < calls && until.is_none_or(|u| Instant::now() < u) {
        let t = Instant::now();
        c.get_job(pb::GetJobRequest {
            job_id: id.to_string(),
        })
        .await?;
        v.push(ms_since(t));
    }
    Ok(v)
}

pub async fn bench(bin_dir: &Path) -> Result<String> {
    let (redis, url) = Redis::start()?;
    let (ns, port) = BenchNetns::create(std::process::id())?;
    let (probe, _) = ProbeProc::start(
        bin_dir,
        "stall",
        Some(&ns.path()),
        &[
            ("TELEGEN_MIRROR_MODE", "sonic"),
            ("TELEGEN_ERSPAN_LOCAL", "192.0.2.10"),
            ("TELEGEN_ERSPAN_REMOTE", "192.0.2.100"),
            ("TELEGEN_REDIS", url.as_str()),
            ("TELEGEN_MAX_JOBS", "4"),
        ],
    )
    .await?;
    let mut c = probe.client();
    let job = c
        .start_job(pb::StartJobRequest {
            port: port.clone(),
            direction: "ingress".into(),
            mirror_mode: "placeholder".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut idle = get_jobs(&mut c, &job.job_id, IDLE_CALLS, None).await?;

    redis.signal(libc::SIGSTOP);
    let mut starter = probe.client();
    let stuck_port = port.clone();
    let start = tokio::spawn(async move {
        let t = Instant::now();
        let r = starter
            .start_job(pb::StartJobRequest {
                port: stuck_port,
                direction: "ingress".into(),
                ..Default::default()
            })
            .await;
        (ms_since(t), r.map(|_| ()).map_err(|s| s.code()))
    });
    // Let the start reach redis before measuring.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut stalled = get_jobs(
        &mut c,
        &job.job_id,
        usize::MAX,
        Some(Instant::now() + STALL),
    )
    .await?;
    let start_was_running = !start.is_finished();
    redis.signal(libc::SIGCONT);
    let (start_ms, start_result) = start.await?;

    // The first filtered job of this probe: the filter program is
    // verified (about a second) before it attaches, without the job lock.
    let mut deep_client = probe.client();
    let deep_port = port.clone();
    let deep = tokio::spawn(async move {
        let t = Instant::now();
        let j = deep_client
            .start_job(pb::StartJobRequest {
                port: deep_port,
                direction: "ingress".into(),
                mirror_mode: "direct".into(),
                filters: Some(pb::Filters {
                    ip_proto: vec!["udp".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        loop {
            let r = deep_client
                .get_job(pb::GetJobRequest {
                    job_id: j.job_id.clone(),
                })
                .await?
                .into_inner();
            if r.status != "starting" {
                anyhow::ensure!(r.status == "running", "filtered job {}", r.status);
                return Ok(ms_since(t));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut verifying = Vec::new();
    while !deep.is_finished() {
        verifying.extend(get_jobs(&mut c, &job.job_id, 1, None).await?);
    }
    let deep_ms = deep.await??;
    probe.shutdown().await;
    drop(ns);
    drop(redis);

    for v in [&mut idle, &mut stalled, &mut verifying] {
        v.sort_by(f64::total_cmp);
    }
    let (i99, s99) = (pct(&idle, 99.0), pct(&stalled, 99.0));
    let ratio = s99 / i99;
    let mut s = String::new();
    writeln!(
        s,
        "GetJob (gRPC, unix socket) on one job: {IDLE_CALLS} sequential calls idle, then for {} ms while a `sonic` StartJob waits on a redis stopped with SIGSTOP (the start took {start_ms:.0} ms and ended {start_result:?}; it was still waiting when the measurement ended: {start_was_running}).\n",
        STALL.as_millis()
    )?;
    writeln!(s, "| | calls | p50 | p99 | max |")?;
    writeln!(s, "|---|---:|---:|---:|---:|")?;
    for (what, v) in [
        ("idle", &idle),
        ("redis stalled", &stalled),
        ("filter program verifying", &verifying),
    ] {
        writeln!(
            s,
            "| {what} | {} | {:.3} ms | {:.3} ms | {:.3} ms |",
            v.len(),
            pct(v, 50.0),
            pct(v, 99.0),
            v.last().copied().unwrap_or(0.0)
        )?;
    }
    writeln!(
        s,
        "\nStalled p99 / idle p99: {ratio:.2}x (target <= {RATIO_TARGET}x): {}.",
        met(ratio <= RATIO_TARGET && start_was_running)
    )?;
    writeln!(
        s,
        "The first filtered job took {deep_ms:.0} ms to run (the filter program's verification); GetJob p99 meanwhile / idle p99: {:.2}x.",
        pct(&verifying, 99.0) / i99
    )?;
    Ok(s)
}
