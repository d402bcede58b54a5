//! Section 4, gateway: the REST gateway, run unprivileged as in production in front of one
//! probe: start -> running over REST against the same cycle over gRPC,
//! GET /jobs/{id} throughput against gRPC GetJob and GET /healthz, and the
//! gateway's RSS against a trivial process.

mod load;
mod report;

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{anyhow, ensure, Context, Result};
use telegen_integration_tests::gateway::{agent, http, Gateway, Req, GATEWAY_ID};
use telegen_proto::v1 as pb;

use crate::common::{baseline_rss_kib, mem_kib, ms_since, tail, ServiceMem};
use crate::latency::{
    check_starting, check_stopped, grpc_cycle, grpc_run, start_req, Cycle, Latencies,
};
use crate::probe_proc::{ensure_datapath, BenchNetns, ProbeProc};
use load::{throughput, Load, Target};

const GATEWAY_RSS_TARGET_KIB: u64 = 15 * 1024;

/// The throughput load: `clients` concurrent clients, `secs` seconds per target.
#[derive(Clone, Copy)]
pub struct LoadSpec {
    pub secs: u32,
    pub clients: usize,
}

/// The gateway binary run as in production; dropping it kills it and removes
/// its log.
struct GatewayProc(Gateway);

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0.log);
    }
}

/// A bench probe in a namespace and the gateway in front of it.
struct GatewayStack {
    /// First, so that it is gone before the probe stops.
    gw: GatewayProc,
    probe: ProbeProc,
    info: pb::Info,
}

impl GatewayStack {
    /// The probe in `ns` (direct mode, TELEGEN_ATTACH_MODE=`attach`, socket
    /// group nobody's), then the release gateway as uid/gid 65534 without
    /// capabilities (setpriv), logging at the production default (info).
    async fn start(bin_dir: &Path, ns: &BenchNetns, attach: &str) -> Result<Self> {
        let env = [
            ("TELEGEN_PROBE_SOCKET_GROUP", GATEWAY_ID),
            ("TELEGEN_ATTACH_MODE", attach),
        ];
        let tag = format!("gateway-{attach}");
        let (probe, info) = ProbeProc::start(bin_dir, &tag, Some(&ns.path()), &env).await?;
        ensure_datapath(&info)?;
        let gw = Gateway::spawn_at(bin_dir, &probe.socket, &probe.dir, &[("RUST_LOG", "info")])
            .context("starting telegen-gateway")?;
        let gw = GatewayProc(gw);
        gw.0.wait_healthy().await?;
        Ok(GatewayStack { gw, probe, info })
    }

    fn url(&self) -> &str {
        &self.gw.0.url
    }

    fn gw_pid(&self) -> Result<u32> {
        self.gw
            .0
            .pid()
            .ok_or_else(|| anyhow!("gateway not running"))
    }

    fn probe_pid(&self) -> Result<u32> {
        self.probe.pid().ok_or_else(|| anyhow!("probe not running"))
    }

    /// `e` with the tails of both logs.
    fn with_logs(&self, e: anyhow::Error) -> anyhow::Error {
        anyhow!(
            "{:#}; gateway log:\n{}",
            self.probe.with_log(e),
            tail(&self.gw.0.log_text())
        )
    }

    async fn shutdown(self) {
        drop(self.gw);
        self.probe.shutdown().await;
    }
}

/// Send `req` through `agent`; its JSON body, if the status is `want`.
fn rest_json(req: Req, agent: &ureq::Agent, want: u16) -> Result<serde_json::Value> {
    let r = req.send_with(agent)?;
    ensure!(
        r.status == want,
        "HTTP {} (expected {want}): {}",
        r.status,
        r.text
    );
    Ok(r.json)
}

fn json_str<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// Job #`i` through the gateway, on `agent`'s kept-alive connection: POST
/// /jobs/start, GET /jobs/{id} polled in a tight loop until running, POST
/// /jobs/{id}/stop.
fn rest_cycle(agent: &ureq::Agent, url: &str, port: &str, i: usize) -> Result<Cycle> {
    let body = serde_json::json!({"port": port, "direction": "ingress", "mirror_mode": "direct"});
    let start = http("POST", &format!("{url}/jobs/start")).json(&body.to_string());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(10);
    let mut job = rest_json(start, agent, 201).with_context(|| format!("POST /jobs/start #{i}"))?;
    let id = json_str(&job, "job_id").to_string();
    while json_str(&job, "status") != "running" {
        check_starting(
            i,
            json_str(&job, "status"),
            json_str(&job, "error"),
            deadline,
        )?;
        job = rest_json(http("GET", &format!("{url}/jobs/{id}")), agent, 200)
            .with_context(|| format!("GET /jobs/{{id}} #{i}"))?;
    }
    let run_ms = ms_since(t0);
    let t1 = Instant::now();
    let stopped = rest_json(http("POST", &format!("{url}/jobs/{id}/stop")), agent, 200)
        .with_context(|| format!("POST /jobs/{{id}}/stop #{i}"))?;
    let stop_ms = ms_since(t1);
    check_stopped(i, json_str(&stopped, "status"), json_str(&stopped, "error"))?;
    Ok(Cycle {
        run_ms,
        stop_ms,
        attach_mode: json_str(&job, "attach_mode").into(),
    })
}

/// `jobs` cycles over gRPC and `jobs` over REST on the same probe,
/// interleaved (alternating which goes first) so that drift from other work
/// on the machine hits both alike; (gRPC, REST).
async fn start_latencies(
    stack: &GatewayStack,
    port: &str,
    jobs: usize,
) -> Result<(Latencies, Latencies)> {
    let mode = &stack.info.attach_mode;
    let (mut grpc, mut rest) = (Latencies::new(mode, jobs), Latencies::new(mode, jobs));
    let mut client = stack.probe.client();
    let agent = agent();
    for i in 0..jobs {
        for rest_turn in [i % 2 == 1, i % 2 == 0] {
            if rest_turn {
                let (agent, url, port) = (agent.clone(), stack.url().to_string(), port.to_string());
                let c = tokio::task::spawn_blocking(move || rest_cycle(&agent, &url, &port, i))
                    .await??;
                rest.record(i, &c)?;
            } else {
                grpc.record(i, &grpc_cycle(&mut client, port, i).await?)?;
            }
        }
    }
    grpc.sort();
    rest.sort();
    Ok((grpc, rest))
}

/// A long-lived job for the GET load: started over gRPC, until stopped.
async fn load_job(stack: &GatewayStack, port: &str) -> Result<String> {
    let req = pb::StartJobRequest {
        duration_sec: Some(0),
        ..start_req(port)
    };
    Ok(grpc_run(&mut stack.probe.client(), req, 0).await?.job_id)
}

/// GET /jobs/{id} through the gateway against gRPC GetJob straight to the
/// probe and GET /healthz (no probe hop); in this order.
async fn get_throughput(stack: &GatewayStack, port: &str, spec: LoadSpec) -> Result<Vec<Load>> {
    let job_id = load_job(stack, port).await?;
    let url = stack.url();
    let targets = vec![
        Target::Grpc {
            socket: stack.probe.socket.clone(),
            job_id: job_id.clone(),
        },
        Target::Http {
            url: format!("{url}/jobs/{job_id}"),
        },
        Target::Http {
            url: format!("{url}/healthz"),
        },
    ];
    let pids = [std::process::id(), stack.gw_pid()?, stack.probe_pid()?];
    let loads = tokio::task::spawn_blocking(move || throughput(&targets, spec, pids)).await??;
    stack
        .probe
        .client()
        .stop_job(pb::StopJobRequest { job_id })
        .await
        .context("stopping the load job")?;
    Ok(loads)
}

/// What the gateway section measures on the tc probe.
struct GatewayRun {
    version: String,
    grpc: Latencies,
    rest: Latencies,
    loads: Vec<Load>,
    mem: ServiceMem,
}

/// Everything on one probe (attach forced to tc) and one gateway.
async fn gateway_run(
    stack: &mut GatewayStack,
    port: &str,
    jobs: usize,
    spec: LoadSpec,
) -> Result<GatewayRun> {
    let gw_pid = stack.gw_pid()?;
    let start = mem_kib(gw_pid)?;
    let version = rest_json(
        http("GET", &format!("{}/version", stack.url())),
        &agent(),
        200,
    )?;
    let (grpc, rest) = start_latencies(stack, port, jobs).await?;
    let loads = get_throughput(stack, port, spec).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.probe.check_alive()?;
    let idle = mem_kib(gw_pid)?;
    Ok(GatewayRun {
        version: format!(
            "{} (commit {})",
            json_str(&version, "version"),
            json_str(&version, "commit")
        ),
        grpc,
        rest,
        loads,
        mem: ServiceMem {
            start,
            idle,
            base_rss: baseline_rss_kib().await?,
        },
    })
}

/// The same start->running comparison on a probe left in auto mode (TCX on
/// this kernel); None when auto is not TCX here.
async fn tcx_latencies(
    bin_dir: &Path,
    ns: &BenchNetns,
    port: &str,
    jobs: usize,
) -> Result<Option<(Latencies, Latencies)>> {
    let stack = GatewayStack::start(bin_dir, ns, "auto").await?;
    if stack.info.attach_mode != "tcx" {
        stack.shutdown().await;
        return Ok(None);
    }
    let r = start_latencies(&stack, port, jobs)
        .await
        .map_err(|e| stack.with_logs(e));
    stack.shutdown().await;
    r.map(Some)
}

pub async fn bench(bin_dir: &Path, jobs: usize, spec: LoadSpec) -> Result<String> {
    let (ns, port) = BenchNetns::create(std::process::id())?;
    let mut stack = GatewayStack::start(bin_dir, &ns, "tc").await?;
    let run = gateway_run(&mut stack, &port, jobs, spec)
        .await
        .map_err(|e| stack.with_logs(e))?;
    stack.shutdown().await;
    let tcx = tcx_latencies(bin_dir, &ns, &port, jobs).await?;
    drop(ns);
    report::gateway_report(&run, tcx.as_ref(), jobs, spec)
}
