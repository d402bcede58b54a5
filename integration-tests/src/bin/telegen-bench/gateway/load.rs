//! The GET throughput load of the gateway section: concurrent clients on
//! their own connections and threads, in 1 s slices rotating through the
//! targets, with the CPU time of client, gateway and probe.

use std::{
    path::{Path, PathBuf},
    sync::Barrier,
    time::{Duration, Instant},
};

use anyhow::{anyhow, ensure, Result};
use telegen_integration_tests::gateway::agent;
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

use super::LoadSpec;
use crate::common::{cpu_us, ms_since};
use crate::probe_proc::client_at;

/// One measured stretch of load on one target.
#[derive(Default)]
pub struct Load {
    pub requests: u64,
    pub secs: f64,
    /// Per-request latency, ms (sorted once the load is over).
    pub lat_ms: Vec<f64>,
    /// req/s of each slice.
    pub slices: Vec<f64>,
    /// CPU time (utime + stime) used meanwhile by the client (this
    /// process), the gateway and the probe, µs.
    pub cpu_us: [f64; 3],
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }

    /// CPU µs per request of the client, the gateway and the probe.
    pub fn cpu_per_req(&self) -> [f64; 3] {
        self.cpu_us.map(|us| us / self.requests.max(1) as f64)
    }
}

/// What the throughput clients call.
pub enum Target {
    /// GetJob `job_id`, straight to the probe's socket.
    Grpc { socket: PathBuf, job_id: String },
    /// GET `url`, expecting 200.
    Http { url: String },
}

/// A gRPC client on its own connection and its own single-thread runtime, so
/// that it can be driven from a plain thread like the HTTP clients.
struct GrpcClient {
    rt: tokio::runtime::Runtime,
    client: ProbeClient<Channel>,
}

impl GrpcClient {
    fn connect(socket: &Path) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = {
            let _in = rt.enter(); // the lazy channel spawns its worker here
            client_at(socket)
        };
        Ok(GrpcClient { rt, client })
    }
}

impl Target {
    /// Run `clients` clients against this target for `dur`.
    pub fn slice(&self, clients: usize, dur: Duration) -> Result<(u64, f64, Vec<f64>)> {
        match self {
            Target::Http { url } => load_slice(
                clients,
                dur,
                || Ok(agent()),
                |a| {
                    let mut r = a.get(url).call()?;
                    ensure!(r.status() == 200, "GET {url}: HTTP {}", r.status());
                    r.body_mut().read_to_vec()?;
                    Ok(())
                },
            ),
            Target::Grpc { socket, job_id } => load_slice(
                clients,
                dur,
                || GrpcClient::connect(socket),
                |c| {
                    let req = pb::GetJobRequest {
                        job_id: job_id.clone(),
                    };
                    c.rt.block_on(c.client.get_job(req))?;
                    Ok(())
                },
            ),
        }
    }
}

/// `clients` threads, each with its own client from `connect` (warmed up by
/// one `call`), released together, calling `call` in a loop for `dur`;
/// (requests, seconds, per-request ms).
fn load_slice<C>(
    clients: usize,
    dur: Duration,
    connect: impl Fn() -> Result<C> + Sync,
    call: impl Fn(&mut C) -> Result<()> + Sync,
) -> Result<(u64, f64, Vec<f64>)> {
    let barrier = Barrier::new(clients + 1);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| -> Result<Vec<f64>> {
                    let client = connect().and_then(|mut c| call(&mut c).map(|()| c));
                    barrier.wait(); // even on error, or the others wait forever
                    let mut c = client?;
                    let mut lat = Vec::with_capacity(16 * 1024);
                    let deadline = Instant::now() + dur;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        call(&mut c)?;
                        lat.push(ms_since(t));
                    }
                    Ok(lat)
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let mut all = Vec::new();
        for t in threads {
            let lat = t.join().map_err(|_| anyhow!("a load client panicked"))??;
            all.extend(lat);
        }
        Ok((all.len() as u64, t0.elapsed().as_secs_f64(), all))
    })
}

fn cpus_us(pids: [u32; 3]) -> Result<[f64; 3]> {
    Ok([cpu_us(pids[0])?, cpu_us(pids[1])?, cpu_us(pids[2])?])
}

/// Every target under the same load for `spec.secs` seconds in all, in 1 s
/// slices rotating through the targets (so drift from other work on the
/// machine spreads over all of them), with the CPU time of the processes
/// `pids` (client, gateway, probe) over each target's slices.
pub fn throughput(targets: &[Target], spec: LoadSpec, pids: [u32; 3]) -> Result<Vec<Load>> {
    let mut loads: Vec<Load> = targets.iter().map(|_| Load::default()).collect();
    let n = targets.len();
    for round in 0..spec.secs as usize {
        for k in 0..n {
            let ti = (k + round) % n;
            let cpu0 = cpus_us(pids)?;
            let (reqs, secs, lat) = targets[ti].slice(spec.clients, Duration::from_secs(1))?;
            let cpu1 = cpus_us(pids)?;
            let l = &mut loads[ti];
            for (acc, (a, b)) in l.cpu_us.iter_mut().zip(cpu0.iter().zip(cpu1)) {
                *acc += b - a;
            }
            l.requests += reqs;
            l.secs += secs;
            l.slices.push(reqs as f64 / secs);
            l.lat_ms.extend(lat);
        }
    }
    for l in &mut loads {
        l.lat_ms.sort_by(f64::total_cmp);
        l.slices.sort_by(f64::total_cmp);
    }
    Ok(loads)
}
