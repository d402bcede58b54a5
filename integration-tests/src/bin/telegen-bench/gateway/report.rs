//! The gateway section's report.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use telegen_integration_tests::gateway::GATEWAY_ID;

use super::{load::Load, GatewayRun, LoadSpec, GATEWAY_RSS_TARGET_KIB};
use crate::common::{added, dist_ms, mem_report, pct};
use crate::latency::Latencies;

pub fn gateway_report(
    run: &GatewayRun,
    tcx: Option<&(Latencies, Latencies)>,
    jobs: usize,
    spec: LoadSpec,
) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "telegen-gateway {} run as in production: release build, `setpriv` uid/gid {GATEWAY_ID} with no \
         supplementary groups, no capabilities in any set and no_new_privs, RUST_LOG=info, on 127.0.0.1; \
         in front of one telegen-probe (direct mode) in a network namespace on a veth, whose socket belongs to \
         group {GATEWAY_ID}. Client, gateway and probe share this machine's CPUs.\n",
        run.version
    )?;
    latency_report(&mut s, run, tcx, jobs)?;
    throughput_report(&mut s, &run.loads, spec)?;
    mem_report(
        &mut s,
        "Gateway memory",
        [
            "telegen-gateway, just after /healthz first answered",
            "telegen-gateway, after the runs above and 1 s idle",
        ],
        "Gateway idle VmRSS after load",
        &run.mem,
        GATEWAY_RSS_TARGET_KIB,
    )?;
    Ok(s)
}

fn latency_report(
    s: &mut String,
    run: &GatewayRun,
    tcx: Option<&(Latencies, Latencies)>,
    jobs: usize,
) -> Result<()> {
    writeln!(s, "### Start -> running, REST against gRPC\n")?;
    writeln!(
        s,
        "{jobs} jobs per path on the same probe, interleaved (one gRPC and one REST cycle per iteration, \
         alternating which goes first); all iterations counted. \
         gRPC: StartJob {{port, ingress, direct}}, GetJob polled in a tight loop until running, StopJob. \
         REST: POST /jobs/start, GET /jobs/{{id}} polled in a tight loop until running, POST /jobs/{{id}}/stop, \
         on one kept-alive HTTP/1.1 connection. \
         The probe runs with TELEGEN_ATTACH_MODE=tc: under TCX the kernel's attach alone waits ~16 ms \
         (RCU, see the latency section), which would drown the gateway's own cost.\n"
    )?;
    writeln!(
        s,
        "| path | attach mode | start->running p50 | p99 | max | stop p50 | p99 | max |"
    )?;
    writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|")?;
    for (label, l) in [
        ("gRPC straight to the probe", &run.grpc),
        ("REST through the gateway", &run.rest),
    ] {
        writeln!(
            s,
            "| {label} | {} | {} | {} |",
            l.mode,
            dist_ms(&l.start_to_running),
            dist_ms(&l.stop)
        )?;
    }
    let (g, r) = (&run.grpc, &run.rest);
    writeln!(
        s,
        "\nThe gateway adds to start->running: p50 {}, p99 {}; to stop: p50 {}, p99 {}.",
        added(
            pct(&g.start_to_running, 50.0),
            pct(&r.start_to_running, 50.0)
        ),
        added(
            pct(&g.start_to_running, 99.0),
            pct(&r.start_to_running, 99.0)
        ),
        added(pct(&g.stop, 50.0), pct(&r.stop, 50.0)),
        added(pct(&g.stop, 99.0), pct(&r.stop, 99.0)),
    )?;
    match tcx {
        Some((g, r)) => writeln!(
            s,
            "\nTCX (a second probe left in auto mode, and its own gateway; {jobs} jobs per path, same method): \
             start->running p50 gRPC {:.2} ms, REST {:.2} ms: {}. The kernel's attach dominates under TCX \
             and varies from run to run; the tc figures above are the gateway's cost.",
            pct(&g.start_to_running, 50.0),
            pct(&r.start_to_running, 50.0),
            added(pct(&g.start_to_running, 50.0), pct(&r.start_to_running, 50.0)),
        )?,
        None => writeln!(s, "\nTCX: not measured (auto mode is not TCX on this kernel).")?,
    }
    Ok(())
}

fn throughput_report(s: &mut String, loads: &[Load], spec: LoadSpec) -> Result<()> {
    let LoadSpec { secs, clients } = spec;
    writeln!(s, "\n### GET /jobs/{{id}} throughput\n")?;
    writeln!(
        s,
        "{clients} concurrent clients, each on its own kept-alive connection and its own thread, calling in a \
         loop for {secs} s per target, in 1 s slices rotating through the targets; all on one running job. \
         HTTP clients: ureq (status checked, body read). gRPC clients: tonic, each on its own single-thread \
         runtime. The gateway itself sends every probe call over one shared gRPC connection. \
         CPU per request: utime + stime of each process over the target's slices (/proc), divided by the \
         requests; the client is this bench process.\n"
    )?;
    writeln!(
        s,
        "| target | requests | req/s | slice min-max req/s | p50 | p99 | CPU / req: client | gateway | probe |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let labels = [
        "gRPC GetJob straight to the probe (baseline)",
        "REST GET /jobs/{id} (gateway, then GetJob)",
        "REST GET /healthz (gateway only, no probe hop)",
    ];
    for (label, l) in labels.iter().zip(loads) {
        let [client, gw, probe] = l.cpu_per_req();
        writeln!(
            s,
            "| {label} | {} | {:.0} | {:.0}-{:.0} | {:.3} ms | {:.3} ms | {client:.1} µs | {gw:.1} µs | {probe:.1} µs |",
            l.requests,
            l.rate(),
            l.slices[0],
            l.slices[l.slices.len() - 1],
            pct(&l.lat_ms, 50.0),
            pct(&l.lat_ms, 99.0),
        )?;
    }
    let [grpc, job, health] = loads else {
        bail!("expected three loads, got {}", loads.len());
    };
    writeln!(
        s,
        "\nGET /jobs/{{id}} through the gateway: {:.2}x the requests/s of gRPC GetJob straight to the probe, \
         {:.2}x those of GET /healthz; p50 latency {} over gRPC, p99 {}.",
        job.rate() / grpc.rate().max(1e-9),
        job.rate() / health.rate().max(1e-9),
        added(pct(&grpc.lat_ms, 50.0), pct(&job.lat_ms, 50.0)),
        added(pct(&grpc.lat_ms, 99.0), pct(&job.lat_ms, 99.0)),
    )?;
    let server_cpu = |l: &Load| l.cpu_per_req()[1] + l.cpu_per_req()[2];
    writeln!(
        s,
        "Server-side CPU per request (gateway + probe; less sensitive than req/s to other work on the \
         machine): GET /jobs/{{id}} {:.1} µs = {:.2}x gRPC GetJob's {:.1} µs; GET /healthz {:.1} µs.",
        server_cpu(job),
        server_cpu(job) / server_cpu(grpc).max(1e-9),
        server_cpu(grpc),
        server_cpu(health),
    )?;
    Ok(())
}
