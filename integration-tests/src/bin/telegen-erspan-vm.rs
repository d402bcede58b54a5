//! telegen-erspan-vm: the guest half of the real ERSPAN test
//! (integration-tests/vm/test-erspan-vm.sh boots a kernel with ip_gre and
//! runs this, statically linked, as root inside the VM).
//!
//! ```text
//!  ns h                ns sw (the "switch")                 ns col (the collector)
//!  hostp ── veth ── swp1 ─ tc matchall mirred ─► erspan1      erspan0 ◄─ telegen-probe
//!                        u0 10.99.0.1 ══ ERSPAN v2, key 100 ══ u1 10.99.0.2   (erspan mode)
//! ```
//!
//! The test tooling sets up h, sw and the underlay with ip/tc; the probe
//! creates erspan0 itself over rtnetlink. Known frames (IPv4/UDP, IPv6/TCP,
//! ICMPv6, ARP) are sent on hostp; the job on erspan0 must count exactly
//! those inner packets and bytes, per class. Stopping the job must remove
//! the netdev the probe created. Prints `telegen-erspan-vm: PASS|FAIL: ...`
//! lines; exits 0 only when every check passed.

use std::{
    collections::BTreeMap,
    fs::File,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use telegen_common::{connect_probe, ProbeAddr};
use telegen_integration_tests::{frames, poll};
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

const IP: &str = "/sbin/ip";
const TC: &str = "/sbin/tc";
const KEY: &str = "100";
const SOCKET: &str = "/run/telegen-vm/probe.sock";
const PROBE_LOG: &str = "/tmp/telegen-probe.log";

fn say(msg: &str) {
    println!("telegen-erspan-vm: {msg}");
}

/// Run a test-tooling command (ip, tc); the product itself never does.
fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &str) -> anyhow::Result<String> {
    run(IP, &args.split_whitespace().collect::<Vec<_>>())
}

fn tc(args: &str) -> anyhow::Result<String> {
    run(TC, &args.split_whitespace().collect::<Vec<_>>())
}

fn counter(ns: &str, dev: &str, what: &str) -> anyhow::Result<u64> {
    let out = ip(&format!("-n {ns} -s -j link show dev {dev}"))?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    v[0]["stats64"][what]["packets"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no {what} packets for {dev} in {ns}: {out}"))
}

/// The three namespaces, veth pairs, and the switch's mirror session.
fn topology() -> anyhow::Result<()> {
    for ns in ["h", "sw", "col"] {
        ip(&format!("netns add {ns}"))?;
        // No IPv6 of the kernel's own (ND, MLD): the mirrored traffic is
        // exactly the frames we send.
        for key in ["all", "default"] {
            sysctl_in(ns, &format!("net/ipv6/conf/{key}/disable_ipv6"), "1")?;
        }
        ip(&format!("-n {ns} link set lo up"))?;
    }
    ip("link add hostp netns h type veth peer name swp1 netns sw")?;
    ip("link add u0 netns sw type veth peer name u1 netns col")?;
    ip("-n sw addr add 10.99.0.1/24 dev u0")?;
    ip("-n col addr add 10.99.0.2/24 dev u1")?;
    for (ns, dev) in [("h", "hostp"), ("sw", "swp1"), ("sw", "u0"), ("col", "u1")] {
        ip(&format!("-n {ns} link set {dev} up"))?;
    }
    // The switch's port mirror: everything entering swp1, copied into an
    // ERSPAN v2 tunnel towards the collector (what a SONiC mirror session
    // makes the ASIC do).
    ip(&format!(
        "-n sw link add erspan1 type erspan local 10.99.0.1 remote 10.99.0.2 seq key {KEY} erspan_ver 2 erspan_dir ingress erspan_hwid 7"
    ))?;
    ip("-n sw link set erspan1 up")?;
    tc("-n sw qdisc add dev swp1 clsact")?;
    tc("-n sw filter add dev swp1 ingress matchall action mirred egress mirror dev erspan1")?;
    Ok(())
}

/// Write `value` to /proc/sys/`rel` of namespace `ns` (/proc/sys/net
/// follows the netns of the opener: a thread joins `ns` to write it).
fn sysctl_in(ns: &str, rel: &str, value: &'static str) -> anyhow::Result<()> {
    let (path, ns_path) = (format!("/proc/sys/{rel}"), format!("/run/netns/{ns}"));
    std::thread::spawn(move || -> anyhow::Result<()> {
        setns(&ns_path)?;
        std::fs::write(&path, value).map_err(|e| anyhow::anyhow!("{path}: {e}"))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("sysctl thread panicked"))?
}

fn setns(ns_path: &str) -> anyhow::Result<()> {
    let f = File::open(ns_path)?;
    // SAFETY: a plain syscall on an fd we own.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    anyhow::ensure!(
        rc == 0,
        "setns {ns_path}: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// telegen-probe (beside this binary) in namespace col, erspan mode.
fn spawn_probe() -> anyhow::Result<Child> {
    let me = std::env::current_exe()?;
    let probe = me.with_file_name("telegen-probe");
    anyhow::ensure!(probe.exists(), "{} is missing", probe.display());
    std::fs::create_dir_all(Path::new(SOCKET).parent().unwrap())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(PROBE_LOG)?;
    let ns = File::open("/run/netns/col")?;
    let mut cmd = Command::new(&probe);
    cmd.env_clear()
        .env("PATH", "/nonexistent") // it must need no tool
        .env("TELEGEN_PROBE_ADDR", format!("unix:{SOCKET}"))
        .env("TELEGEN_MIRROR_MODE", "erspan")
        .env("TELEGEN_ERSPAN_LOCAL", "10.99.0.2")
        .env("TELEGEN_ERSPAN_REMOTE", "10.99.0.1")
        .env("TELEGEN_ERSPAN_KEY", KEY)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let fd = ns.as_raw_fd();
    // SAFETY: only async-signal-safe setns between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(ns);
    Ok(child)
}

struct Checks {
    failed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            say(&format!("ok: {what}"));
        } else {
            say(&format!("FAIL: {what}"));
            self.failed += 1;
        }
    }
}

async fn job_status(c: &ProbeClient<Channel>, id: &str, status: &str) -> anyhow::Result<pb::Job> {
    telegen_integration_tests::probe::wait_job_status(c, id, status, Duration::from_secs(20)).await
}

async fn probe_up(client: &ProbeClient<Channel>) -> anyhow::Result<pb::Info> {
    Ok(poll("the probe to answer", Duration::from_secs(60), || {
        let mut c = client.clone();
        async move { c.get_info(pb::GetInfoRequest {}).await.ok() }
    })
    .await?
    .into_inner())
}

async fn scenario(checks: &mut Checks) -> anyhow::Result<()> {
    let t0 = Instant::now();
    topology()?;
    say(&format!(
        "topology up ({:.1}s): h/hostp -> sw/swp1 mirrored into ERSPAN v2 key {KEY} -> col/u1",
        t0.elapsed().as_secs_f64()
    ));
    checks.check(
        ip("-n col link show dev erspan0").is_err(),
        "no erspan0 in col before the probe",
    );
    let mut probe = spawn_probe()?;
    let client = ProbeClient::new(connect_probe(&ProbeAddr::Unix(SOCKET.into())));
    let info = probe_up(&client).await?;
    say(&format!(
        "probe up ({:.1}s): kernel {}, datapath {} {}",
        t0.elapsed().as_secs_f64(),
        info.kernel,
        info.datapath_enabled,
        info.datapath_reason
    ));
    let result = jobs(checks, &client, &mut probe).await;
    // No open connection to delay the probe's exit.
    drop(client);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(probe.id() as i32, libc::SIGTERM) };
    let _ = probe.wait();
    result
}

async fn jobs(
    checks: &mut Checks,
    client: &ProbeClient<Channel>,
    probe: &mut Child,
) -> anyhow::Result<()> {
    let mut c = client.clone();
    let job = c
        .start_job(pb::StartJobRequest {
            port: "u1".into(),
            direction: "ingress".into(),
            mirror_mode: "erspan".into(),
            duration_sec: Some(0),
            ..Default::default()
        })
        .await?
        .into_inner();
    let job = job_status(client, &job.job_id, "running").await?;
    checks.check(
        job.mirror_mode == "erspan" && job.fallback_reason.is_empty(),
        &format!(
            "job runs in erspan mode (mirror_mode {:?}, fallback {:?})",
            job.mirror_mode, job.fallback_reason
        ),
    );
    checks.check(
        job.interface == "erspan0" && job.attach_mode == "tc",
        &format!(
            "job counts on erspan0 via tc (interface {:?}, attach_mode {:?})",
            job.interface, job.attach_mode
        ),
    );
    // A second job on the same netdev with a filter and flows: the deep
    // program (telegen_deep) must verify on this kernel too.
    let t_deep = Instant::now();
    let filtered = c
        .start_job(pb::StartJobRequest {
            port: "u1".into(),
            direction: "ingress".into(),
            mirror_mode: "erspan".into(),
            duration_sec: Some(0),
            filters: Some(pb::Filters {
                ip_proto: vec!["udp".into()],
                ..Default::default()
            }),
            result_detail: "flows".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let filtered = telegen_integration_tests::probe::wait_job_status(
        client,
        &filtered.job_id,
        "running",
        Duration::from_secs(240),
    )
    .await;
    checks.check(
        filtered.is_ok(),
        &format!(
            "a filtered flows job runs (the filter program verified in {:.1}s): {:?}",
            t_deep.elapsed().as_secs_f64(),
            filtered.as_ref().err()
        ),
    );
    let filtered = filtered?;
    let link = ip("-n col -d link show dev erspan0").unwrap_or_default();
    say(&format!(
        "col: {}",
        link.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    checks.check(
        link.contains("erspan remote 10.99.0.1 local 10.99.0.2")
            && link.contains("ikey 0.0.0.100 okey 0.0.0.100 iseq oseq")
            && link.contains("erspan_ver 2")
            && link.contains("alias telegen-sonic")
            && link.contains(",UP"),
        "the probe created erspan0 (remote, local, key, ERSPAN v2, up, our alias)",
    );

    // Known traffic on the switch port.
    let sent: BTreeMap<&str, Vec<Vec<u8>>> = [
        (
            "ipv4",
            (0..7).map(|i| frames::ipv4_udp(100 + i * 10)).collect(),
        ),
        ("ipv6", (0..5).map(|i| frames::ipv6_tcp(200 + i)).collect()),
        ("icmp6", (0..3).map(|_| frames::icmp6(90)).collect()),
        ("other", (0..4).map(|_| frames::arp()).collect()),
    ]
    .into_iter()
    .collect();
    let all: Vec<Vec<u8>> = sent.values().flatten().cloned().collect();
    let total = all.len() as u64;
    let (tx0, rx0) = (
        counter("sw", "erspan1", "tx")?,
        counter("col", "erspan0", "rx")?,
    );
    frames::send("/run/netns/h", "hostp", &all)?;
    let r = poll(
        "the job to count every mirrored packet",
        Duration::from_secs(20),
        || {
            let mut c = client.clone();
            let id = job.job_id.clone();
            async move {
                let r = c
                    .get_results(pb::GetResultsRequest { job_id: id, top: 0 })
                    .await
                    .ok()?
                    .into_inner();
                (r.packets_total >= total).then_some(r)
            }
        },
    )
    .await;
    // A moment for anything extra to show up, then the exact figures.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let final_r = c
        .get_results(pb::GetResultsRequest {
            job_id: job.job_id.clone(),
            top: 0,
        })
        .await?
        .into_inner();
    if let Err(e) = r {
        say(&format!("{e}"));
    }
    let (tx, rx) = (
        counter("sw", "erspan1", "tx")? - tx0,
        counter("col", "erspan0", "rx")? - rx0,
    );
    checks.check(
        tx == total && rx == total,
        &format!("tunnel carried {total} frames (sw erspan1 tx {tx}, col erspan0 rx {rx})"),
    );
    for (class, frames) in &sent {
        let c = final_r.by_proto.get(*class).cloned().unwrap_or_default();
        let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
        checks.check(
            c.packets == frames.len() as u64 && c.bytes == bytes,
            &format!(
                "{class}: counted {} packets / {} bytes, sent {} / {bytes}",
                c.packets,
                c.bytes,
                frames.len()
            ),
        );
    }
    checks.check(
        final_r.packets_total == total,
        &format!("packets_total {} == {total} sent", final_r.packets_total),
    );
    let udp = &sent["ipv4"];
    let udp_bytes: u64 = udp.iter().map(|f| f.len() as u64).sum();
    let fr = c
        .get_results(pb::GetResultsRequest {
            job_id: filtered.job_id.clone(),
            top: 0,
        })
        .await?
        .into_inner();
    checks.check(
        (fr.packets_total, fr.bytes_total) == (udp.len() as u64, udp_bytes),
        &format!(
            "the udp-filtered job counted {} / {} bytes of the mirrored traffic, sent {} / {udp_bytes} udp",
            fr.packets_total,
            fr.bytes_total,
            udp.len()
        ),
    );
    let top = fr.top_flows.first();
    checks.check(
        top.is_some_and(|f| {
            f.five_tuple == "10.0.0.1:12345->10.0.0.2:9/UDP" && f.pkts == udp.len() as u64
        }) && fr.top_flows.len() == 1,
        &format!("its top flow is the mirrored udp flow: {:?}", fr.top_flows),
    );
    c.stop_job(pb::StopJobRequest {
        job_id: filtered.job_id.clone(),
    })
    .await?;

    // A crash and restart: the new probe adopts the job, and still knows
    // the netdev is its own (the owner mark is on the device).
    probe.kill()?;
    probe.wait()?;
    *probe = spawn_probe()?;
    probe_up(client).await?;
    let adopted = job_status(client, &job.job_id, "running").await;
    checks.check(
        adopted.is_ok() && ip("-n col link show dev erspan0").is_ok(),
        "after a probe crash and restart the job is still running on erspan0",
    );
    frames::send("/run/netns/h", "hostp", &[frames::ipv4_udp(64)])?;
    let more = poll("the adopted job to count", Duration::from_secs(20), || {
        let mut c = client.clone();
        let id = job.job_id.clone();
        async move {
            let r = c
                .get_results(pb::GetResultsRequest { job_id: id, top: 0 })
                .await
                .ok()?
                .into_inner();
            (r.packets_total > total).then_some(r.packets_total)
        }
    })
    .await;
    checks.check(
        more.as_ref().is_ok_and(|n| *n == total + 1),
        &format!("the adopted job counts on: {more:?} (want {})", total + 1),
    );

    let stopped = c
        .stop_job(pb::StopJobRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner();
    checks.check(stopped.status == "stopped", "job stopped");
    checks.check(
        ip("-n col link show dev erspan0").is_err(),
        "stop removed the erspan0 the probe created",
    );

    // A netdev of that name with other parameters is refused (409), and
    // never removed: it is not ours.
    ip("-n col link add erspan0 type erspan local 10.99.0.2 remote 10.99.0.1 seq key 5")?;
    let e = c
        .start_job(pb::StartJobRequest {
            port: "u1".into(),
            direction: "ingress".into(),
            mirror_mode: "erspan".into(),
            ..Default::default()
        })
        .await;
    let refused = matches!(&e, Err(s) if s.code() == tonic::Code::FailedPrecondition
        && s.message().contains("ikey 5 (want 100)"));
    checks.check(
        refused,
        &format!(
            "an erspan0 with another key is refused: {:?}",
            e.as_ref().map(|_| "accepted").map_err(|s| s.message())
        ),
    );
    // One that matches is reused, and left in place at stop.
    ip("-n col link del erspan0")?;
    ip(&format!(
        "-n col link add erspan0 type erspan local 10.99.0.2 remote 10.99.0.1 seq key {KEY} ttl 64 tos inherit dev u1"
    ))?;
    let job = c
        .start_job(pb::StartJobRequest {
            port: "u1".into(),
            direction: "ingress".into(),
            mirror_mode: "erspan".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let job = job_status(client, &job.job_id, "running").await?;
    checks.check(
        job.mirror_mode == "erspan",
        &format!("a matching erspan0 is reused ({:?})", job.fallback_reason),
    );
    c.stop_job(pb::StopJobRequest {
        job_id: job.job_id.clone(),
    })
    .await?;
    checks.check(
        ip("-n col link show dev erspan0").is_ok(),
        "a reused erspan0 (not ours) stays after stop",
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let t0 = Instant::now();
    let mut checks = Checks { failed: 0 };
    if let Err(e) = scenario(&mut checks).await {
        say(&format!("FAIL: {e:#}"));
        checks.failed += 1;
    }
    if checks.failed > 0 {
        let log = std::fs::read_to_string(PROBE_LOG).unwrap_or_default();
        println!("--- probe log ---\n{log}--- end of probe log ---");
        say(&format!(
            "FAIL: {} check(s) failed ({:.1}s)",
            checks.failed,
            t0.elapsed().as_secs_f64()
        ));
        std::process::exit(1);
    }
    say(&format!(
        "PASS: a real ERSPAN v2 mirror counted exactly, per class ({:.1}s)",
        t0.elapsed().as_secs_f64()
    ));
}
