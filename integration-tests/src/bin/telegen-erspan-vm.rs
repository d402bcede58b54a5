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
//! the netdev the probe created.
//!
//! The scenario runs once per variant, chosen by the guest's kernel (the
//! kernel matrix, `make test-vm`): `root` (attach mode auto: TCX expected
//! from 6.6, tc below), `root-tc` (6.6+: TELEGEN_ATTACH_MODE=tc), `no-btf`
//! (an empty tmpfs over /sys/kernel/btf), `caps` (below 6.6, SONiC's
//! kernels: uid 1000 with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, and
//! a 64 KiB soft RLIMIT_MEMLOCK the probe must raise itself on < 5.11) and
//! `memlock-low` (< 5.11: a 64 KiB hard limit, which the probe must name;
//! after a probe that could load, it runs degraded on the pinned maps).
//! Prints `telegen-erspan-vm: ok|FAIL: ...` lines and one
//! `VARIANT-RESULT: <name> PASS|FAIL <seconds>` line per variant; exits 0
//! only when every check of every variant passed.

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
const PROBE_LOG: &str = "/tmp/telegen-probe.log";
/// The unprivileged probe's user (no /etc/passwd entry needed).
const PROBE_UID: u32 = 1000;
const CAP_NET_ADMIN: u32 = 12;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const KIB64: u64 = 64 * 1024;

/// One run of the scenario: how the probe is started and what it must do.
#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    /// TELEGEN_ATTACH_MODE, when forced.
    attach: Option<&'static str>,
    /// The attach mode the jobs must report.
    expect_attach: &'static str,
    /// An empty tmpfs over /sys/kernel/btf while the probe runs.
    hide_btf: bool,
    /// uid 1000 with only CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN.
    unprivileged: bool,
    /// RLIMIT_MEMLOCK (soft, hard) set before the probe starts.
    memlock: Option<(u64, u64)>,
}

impl Variant {
    fn socket(&self) -> String {
        format!("/run/telegen-vm-{}/probe.sock", self.name)
    }
    fn pin_dir(&self) -> String {
        format!("/sys/fs/bpf/telegen-{}", self.name)
    }
}

/// (major, minor) of the running kernel.
fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.trim().split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The variants this kernel gets (module doc).
fn variants(k: (u32, u32)) -> Vec<Variant> {
    let tcx = k >= (6, 6);
    let auto = if tcx { "tcx" } else { "tc" };
    let root = Variant {
        name: "root",
        attach: None,
        expect_attach: auto,
        hide_btf: false,
        unprivileged: false,
        memlock: None,
    };
    let mut v = vec![root];
    if tcx {
        v.push(Variant {
            name: "root-tc",
            attach: Some("tc"),
            expect_attach: "tc",
            ..root
        });
    }
    v.push(Variant {
        name: "no-btf",
        hide_btf: true,
        ..root
    });
    if !tcx {
        // Below 5.11 the probe must raise the soft limit to the hard one;
        // from 5.11 a 64 KiB hard limit must not matter at all.
        let memlock = if k < (5, 11) {
            (KIB64, libc::RLIM_INFINITY)
        } else {
            (KIB64, KIB64)
        };
        v.push(Variant {
            name: "caps",
            unprivileged: true,
            memlock: Some(memlock),
            ..root
        });
    }
    if k < (5, 11) {
        v.push(Variant {
            name: "memlock-low",
            unprivileged: true,
            memlock: Some((KIB64, KIB64)),
            ..root
        });
    }
    v
}

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

/// telegen-probe (beside this binary) in namespace col, erspan mode, as
/// the variant says.
fn spawn_probe(v: &Variant) -> anyhow::Result<Child> {
    let me = std::env::current_exe()?;
    let probe = me.with_file_name("telegen-probe");
    anyhow::ensure!(probe.exists(), "{} is missing", probe.display());
    let sock = v.socket();
    let sock_dir = Path::new(&sock).parent().unwrap();
    std::fs::create_dir_all(sock_dir)?;
    std::fs::create_dir_all(v.pin_dir())?;
    if v.unprivileged {
        // What an operator prepares for a non-root probe: its own socket
        // and pin directories (bpffs itself is mounted by root).
        std::os::unix::fs::chown(sock_dir, Some(PROBE_UID), Some(PROBE_UID))?;
        std::os::unix::fs::chown(v.pin_dir(), Some(PROBE_UID), Some(PROBE_UID))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions("/sys/fs/bpf", std::fs::Permissions::from_mode(0o711))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(PROBE_LOG)?;
    let ns = File::open("/run/netns/col")?;
    let mut cmd = Command::new(&probe);
    cmd.env_clear()
        .env("PATH", "/nonexistent") // it must need no tool
        .env("TELEGEN_PROBE_ADDR", format!("unix:{sock}"))
        .env("TELEGEN_BPF_PIN_DIR", v.pin_dir())
        .env("TELEGEN_MIRROR_MODE", "erspan")
        .env("TELEGEN_ERSPAN_LOCAL", "10.99.0.2")
        .env("TELEGEN_ERSPAN_REMOTE", "10.99.0.1")
        .env("TELEGEN_ERSPAN_KEY", KEY)
        .env("TELEGEN_MAX_JOBS", "4")
        .env("TELEGEN_POLICY_MIRROR_MODES", "erspan,direct")
        .env("TELEGEN_CAPTURE_DIR", sock_dir.join("captures"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(mode) = v.attach {
        cmd.env("TELEGEN_ATTACH_MODE", mode);
    }
    let fd = ns.as_raw_fd();
    let (unprivileged, memlock) = (v.unprivileged, v.memlock);
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some((soft, hard)) = memlock {
                let r = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if unprivileged {
                drop_to_caps(PROBE_UID, &[CAP_NET_ADMIN, CAP_PERFMON, CAP_BPF])?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(ns);
    Ok(child)
}

/// Become `uid` keeping only `caps`, as ambient capabilities so that they
/// survive exec (what systemd's User= + AmbientCapabilities= does). Runs
/// between fork and exec: syscalls only.
fn drop_to_caps(uid: u32, caps: &[u32]) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const PR_CAP_AMBIENT: libc::c_int = 47;
    const PR_CAP_AMBIENT_RAISE: libc::c_ulong = 2;
    let mask: u64 = caps.iter().fold(0, |m, c| m | (1u64 << c));
    let half = |m: u32| Data {
        effective: m,
        permitted: m,
        inheritable: m,
    };
    let data = [half(mask as u32), half((mask >> 32) as u32)];
    let hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let err = std::io::Error::last_os_error;
    // SAFETY: plain syscalls on values that live across each call.
    unsafe {
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0
            || libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(uid, uid, uid) != 0
            || libc::setresuid(uid, uid, uid) != 0
        {
            return Err(err());
        }
        if libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) != 0 {
            return Err(err());
        }
        for &c in caps {
            if libc::prctl(
                PR_CAP_AMBIENT,
                PR_CAP_AMBIENT_RAISE,
                c as libc::c_ulong,
                0,
                0,
            ) != 0
            {
                return Err(err());
            }
        }
    }
    Ok(())
}

/// (uid, CapEff) of a running process, from /proc.
fn proc_creds(pid: u32) -> (Option<u32>, Option<u64>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let uid = field("Uid:").and_then(|v| v.split_whitespace().next()?.parse().ok());
    let eff = field("CapEff:").and_then(|v| u64::from_str_radix(&v, 16).ok());
    (uid, eff)
}

/// Mount an empty tmpfs over /sys/kernel/btf (a kernel without
/// CONFIG_DEBUG_INFO_BTF, as far as any reader can tell); undone on drop.
struct HiddenBtf;

impl HiddenBtf {
    fn new() -> anyhow::Result<Self> {
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let (src, target, fstype) = (c("tmpfs"), c("/sys/kernel/btf"), c("tmpfs"));
        // SAFETY: valid NUL-terminated strings; no data argument.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        anyhow::ensure!(
            rc == 0,
            "mounting a tmpfs over /sys/kernel/btf: {}",
            std::io::Error::last_os_error()
        );
        anyhow::ensure!(
            !Path::new("/sys/kernel/btf/vmlinux").exists(),
            "/sys/kernel/btf/vmlinux still visible"
        );
        Ok(HiddenBtf)
    }
}

impl Drop for HiddenBtf {
    fn drop(&mut self) {
        let target = std::ffi::CString::new("/sys/kernel/btf").unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
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

/// A job's results (all classes, no flows).
async fn results(c: &ProbeClient<Channel>, id: &str) -> anyhow::Result<pb::Results> {
    let req = pb::GetResultsRequest {
        job_id: id.to_string(),
        top: 0,
    };
    Ok(c.clone().get_results(req).await?.into_inner())
}

/// A plain erspan job on the switch port's mirror.
fn erspan_job() -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: "u1".into(),
        direction: "ingress".into(),
        mirror_mode: "erspan".into(),
        ..Default::default()
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

async fn scenario(checks: &mut Checks, v: &Variant) -> anyhow::Result<()> {
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
    let _btf = if v.hide_btf {
        Some(HiddenBtf::new()?)
    } else {
        None
    };
    if v.name == "memlock-low" {
        return memlock_low(checks, v).await;
    }
    let mut probe = spawn_probe(v)?;
    let client = ProbeClient::new(connect_probe(&ProbeAddr::Unix(v.socket().into())));
    let result = async {
        let info = probe_up(&client).await?;
        say(&format!(
            "probe up ({:.1}s): kernel {}, btf {}, datapath {} {}",
            t0.elapsed().as_secs_f64(),
            info.kernel,
            info.btf,
            info.datapath_enabled,
            info.datapath_reason
        ));
        checks.check(
            info.datapath_enabled,
            &format!("the datapath loaded ({:?})", info.datapath_reason),
        );
        checks.check(
            info.btf != v.hide_btf,
            &format!("GetInfo btf {} (vmlinux BTF hidden: {})", info.btf, v.hide_btf),
        );
        if v.unprivileged {
            let (uid, eff) = proc_creds(probe.id());
            let want = [CAP_NET_ADMIN, CAP_PERFMON, CAP_BPF]
                .iter()
                .fold(0u64, |m, c| m | (1 << c));
            checks.check(
                uid == Some(PROBE_UID) && eff == Some(want),
                &format!("the probe runs as uid {uid:?} with CapEff {eff:x?} (want {PROBE_UID}, {want:#x}: BPF, PERFMON, NET_ADMIN)"),
            );
        }
        jobs(checks, &client, &mut probe, v).await
    }
    .await;
    // No open connection to delay the probe's exit.
    drop(client);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(probe.id() as i32, libc::SIGTERM) };
    let _ = probe.wait();
    result
}

/// Below 5.11 with a 64 KiB hard RLIMIT_MEMLOCK the probe cannot load; it
/// must keep serving and say which limit to raise. Degraded, not blind:
/// restarted so after a probe that could (a real fault: a unit file's
/// limit lowered), it still lists the job that probe started, whose
/// classifier still counts, and stops it, giving back what it held.
async fn memlock_low(checks: &mut Checks, v: &Variant) -> anyhow::Result<()> {
    let able = Variant {
        memlock: Some((KIB64, libc::RLIM_INFINITY)),
        ..*v
    };
    let mut probe = spawn_probe(&able)?;
    let client = ProbeClient::new(connect_probe(&ProbeAddr::Unix(v.socket().into())));
    let mut c = client.clone();
    let result = async {
        probe_up(&client).await?;
        let job = c
            .start_job(erspan_job())
            .await?
            .into_inner();
        job_status(&client, &job.job_id, "running").await?;
        let first: Vec<Vec<u8>> = (0..6).map(|i| frames::ipv4_udp(100 + i)).collect();
        frames::send("/run/netns/h", "hostp", &first)?;
        let counted = |want: u64| {
            let client = client.clone();
            let id = job.job_id.clone();
            poll("the job to count", Duration::from_secs(20), move || {
                let c = client.clone();
                let id = id.clone();
                async move {
                    let r = results(&c, &id).await.ok()?;
                    (r.packets_total >= want).then_some(r.packets_total)
                }
            })
        };
        counted(6).await?;
        probe.kill()?;
        probe.wait()?;
        probe = spawn_probe(v)?;
        let info = probe_up(&client).await?;
        checks.check(
            !info.datapath_enabled
                && info.datapath_reason.contains("RLIMIT_MEMLOCK")
                && info.datapath_reason.contains("LimitMEMLOCK=infinity")
                && info.datapath_reason.contains("degraded"),
            &format!(
                "with a 64 KiB hard memlock limit the datapath is off, says why, and runs degraded: {:?}",
                info.datapath_reason
            ),
        );
        let listed = c.list_jobs(pb::ListJobsRequest {}).await?.into_inner().jobs;
        checks.check(
            listed.iter().any(|j| j.job_id == job.job_id && j.status == "running"),
            "degraded: the job the last probe started is listed, running",
        );
        frames::send("/run/netns/h", "hostp", &first[..4])?;
        let n = counted(10).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let exact = results(&c, &job.job_id).await?
            .packets_total;
        checks.check(
            n.is_ok() && exact == 10,
            &format!("degraded: its classifier counts on, read from the pinned maps ({exact}, want 10)"),
        );
        let other = c
            .start_job(erspan_job())
            .await?
            .into_inner();
        checks.check(
            other.mirror_mode == "placeholder",
            &format!("degraded: a new erspan job falls back to placeholder ({:?})", other.fallback_reason),
        );
        let stopped = c
            .stop_job(pb::StopJobRequest {
                job_id: job.job_id.clone(),
            })
            .await?
            .into_inner();
        checks.check(
            stopped.status == "stopped" && ip("-n col link show dev erspan0").is_err(),
            &format!("degraded: stop ends the job ({}) and removes the erspan0 it created", stopped.status),
        );
        anyhow::Ok(())
    }
    .await;
    drop((client, c));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(probe.id() as i32, libc::SIGTERM) };
    let _ = probe.wait();
    result
}

/// Undo a variant: namespaces (and so every netdev and tc filter in
/// them), the probe's pins and socket directory.
fn teardown(v: &Variant) {
    for ns in ["h", "sw", "col"] {
        let _ = ip(&format!("netns del {ns}"));
    }
    let _ = std::fs::remove_dir_all(v.pin_dir());
    let _ = std::fs::remove_dir_all(Path::new(&v.socket()).parent().unwrap());
}

async fn jobs(
    checks: &mut Checks,
    client: &ProbeClient<Channel>,
    probe: &mut Child,
    v: &Variant,
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
        job.interface == "erspan0" && job.attach_mode == v.expect_attach,
        &format!(
            "job counts on erspan0 via {} (interface {:?}, attach_mode {:?})",
            v.expect_attach, job.interface, job.attach_mode
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
    // A capture on the underlay itself, where the ERSPAN arrives: the
    // classifier opens the tunnel, and the capture keeps the inner frames.
    let capture = c
        .start_job(pb::StartJobRequest {
            port: "u1".into(),
            direction: "ingress".into(),
            mirror_mode: "direct".into(),
            duration_sec: Some(0),
            filters: Some(pb::Filters {
                ip_proto: vec!["udp".into()],
                ..Default::default()
            }),
            result_detail: "pcaplike".into(),
            capture: Some(pb::CaptureOptions {
                snaplen: Some(256),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    let capture = job_status(client, &capture.job_id, "running").await;
    checks.check(
        capture.is_ok(),
        &format!(
            "a capture job runs on the ERSPAN underlay: {:?}",
            capture.as_ref().err()
        ),
    );
    let capture = capture?;
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
            let c = client.clone();
            let id = job.job_id.clone();
            async move {
                let r = results(&c, &id).await.ok()?;
                (r.packets_total >= total).then_some(r)
            }
        },
    )
    .await;
    // A moment for anything extra to show up, then the exact figures.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let final_r = results(&c, &job.job_id).await?;
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
    let fr = results(&c, &filtered.job_id).await?;
    checks.check(
        (fr.packets_total, fr.bytes_total) == (udp.len() as u64, udp_bytes),
        &format!(
            "the udp-filtered job counted {} / {} bytes of the mirrored traffic, sent {} / {udp_bytes} udp",
            fr.packets_total,
            fr.bytes_total,
            udp.len()
        ),
    );
    let rejected = total - udp.len() as u64;
    checks.check(
        fr.filter_rejected == Some(rejected),
        &format!(
            "its filter rejected the {rejected} other mirrored packets: filter_rejected {:?}",
            fr.filter_rejected
        ),
    );
    // The underlay job sees the ERSPAN itself: the sequence numbers
    // the kernel's erspan netdev writes (oseq) say nothing was lost.
    let cov = |r: &pb::Results| r.coverage.clone().unwrap_or_default();
    let under = cov(&results(&c, &capture.job_id).await?);
    checks.check(
        under.tunnel_sequenced >= total && under.upstream_lost == 0 && under.complete,
        &format!(
            "the underlay job follows the kernel's ERSPAN sequence numbers: {} sequenced (>= {total}), {} lost, complete {}",
            under.tunnel_sequenced, under.upstream_lost, under.complete
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
    c.stop_job(pb::StopJobRequest {
        job_id: capture.job_id.clone(),
    })
    .await?;
    let mut stream = c
        .stream_capture(pb::StreamCaptureRequest {
            job_id: capture.job_id.clone(),
            from_now: false,
        })
        .await?
        .into_inner();
    let mut pcap = Vec::new();
    while let Some(chunk) = stream.message().await? {
        pcap.extend(chunk.data);
    }
    let got = telegen_integration_tests::pcapng::parse(&pcap)?;
    let inner: Vec<&Vec<u8>> = got.packets.iter().map(|p| &p.data).collect();
    let want: Vec<&Vec<u8>> = udp.iter().collect();
    checks.check(
        inner == want && got.packets.iter().all(|p| p.orig_len as usize == p.data.len()),
        &format!(
            "the capture holds the {} mirrored udp frames as sent, not their ERSPAN (got {} packets of {:?} bytes)",
            udp.len(),
            got.packets.len(),
            got.packets.iter().map(|p| p.data.len()).collect::<Vec<_>>()
        ),
    );

    // A crash and restart: the new probe adopts the job, and still knows
    // the netdev is its own (the owner mark is on the device).
    probe.kill()?;
    probe.wait()?;
    *probe = spawn_probe(v)?;
    probe_up(client).await?;
    let adopted = job_status(client, &job.job_id, "running").await;
    checks.check(
        adopted.is_ok() && ip("-n col link show dev erspan0").is_ok(),
        "after a probe crash and restart the job is still running on erspan0",
    );
    frames::send("/run/netns/h", "hostp", &[frames::ipv4_udp(64)])?;
    let more = poll("the adopted job to count", Duration::from_secs(20), || {
        let c = client.clone();
        let id = job.job_id.clone();
        async move {
            let r = results(&c, &id).await.ok()?;
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

    // A real loss upstream, seen by a plain job on the underlay: the
    // switch's underlay drops the mirrored copies of 4 frames (their
    // sequence numbers are spent) between 1 and 3 it lets through.
    let seq_job = c
        .start_job(pb::StartJobRequest {
            port: "u1".into(),
            direction: "ingress".into(),
            mirror_mode: "direct".into(),
            duration_sec: Some(0),
            ..Default::default()
        })
        .await?
        .into_inner();
    job_status(client, &seq_job.job_id, "running").await?;
    // One copy through first: a newly attached hook's first packet of a
    // tunnel resynchronises (numbers passed unseen before it are no loss).
    frames::send("/run/netns/h", "hostp", &[frames::ipv4_udp(80)])?;
    poll("the first copy", Duration::from_secs(20), || {
        let c = client.clone();
        let id = seq_job.job_id.clone();
        async move {
            let r = results(&c, &id).await.ok()?;
            (r.coverage?.tunnel_sequenced >= 1).then_some(())
        }
    })
    .await?;
    tc("-n sw qdisc add dev u0 clsact")?;
    tc("-n sw filter add dev u0 egress matchall action drop")?;
    frames::send("/run/netns/h", "hostp", &vec![frames::ipv4_udp(80); 4])?;
    // What the drop took: ours, and anything else h sent meanwhile (an
    // IPv6 neighbour solicitation is mirrored too).
    let stats: serde_json::Value =
        serde_json::from_str(&tc("-n sw -s -j filter show dev u0 egress")?)?;
    let dropped = stats
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| {
            f["options"]["actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|a| a["stats"]["packets"].as_u64())
        .sum::<u64>();
    tc("-n sw qdisc del dev u0 clsact")?;
    frames::send("/run/netns/h", "hostp", &vec![frames::ipv4_udp(80); 3])?;
    let lossy = poll("the gap to show", Duration::from_secs(20), || {
        let c = client.clone();
        let id = seq_job.job_id.clone();
        async move {
            let r = results(&c, &id).await.ok()?;
            let v = r.coverage.unwrap_or_default();
            (v.tunnel_sequenced >= 4).then_some(v)
        }
    })
    .await
    .unwrap_or_default();
    checks.check(
        dropped >= 4
            && lossy.upstream_lost == dropped
            && lossy.tunnel_sequenced >= 4
            && !lossy.complete,
        &format!(
            "the copies dropped upstream are reported lost: {} lost of {} sequenced (want {dropped}, the drop's count, of at least 4), complete {}",
            lossy.upstream_lost, lossy.tunnel_sequenced, lossy.complete
        ),
    );
    c.stop_job(pb::StopJobRequest {
        job_id: seq_job.job_id.clone(),
    })
    .await?;

    // A netdev of that name with other parameters is refused (409), and
    // never removed: it is not ours.
    ip("-n col link add erspan0 type erspan local 10.99.0.2 remote 10.99.0.1 seq key 5")?;
    let e = c.start_job(erspan_job()).await;
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
    let job = c.start_job(erspan_job()).await?.into_inner();
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
    let k = kernel_version();
    let only = std::env::args().nth(1);
    let mut failed = 0;
    for v in variants(k) {
        if only.as_deref().is_some_and(|o| o != v.name) {
            continue;
        }
        let tv = Instant::now();
        say(&format!(
            "=== variant {} (kernel {}.{}) ===",
            v.name, k.0, k.1
        ));
        let _ = std::fs::remove_file(PROBE_LOG);
        let mut checks = Checks { failed: 0 };
        if let Err(e) = scenario(&mut checks, &v).await {
            say(&format!("FAIL: {e:#}"));
            checks.failed += 1;
        }
        teardown(&v);
        let secs = tv.elapsed().as_secs_f64();
        if checks.failed > 0 {
            let log = std::fs::read_to_string(PROBE_LOG).unwrap_or_default();
            println!("--- probe log ---\n{log}--- end of probe log ---");
            say(&format!("FAIL: {} check(s) failed", checks.failed));
            failed += 1;
        }
        let verdict = if checks.failed == 0 { "PASS" } else { "FAIL" };
        println!("VARIANT-RESULT: {} {verdict} {secs:.1}", v.name);
    }
    if failed > 0 {
        say(&format!(
            "FAIL: {failed} variant(s) failed ({:.1}s)",
            t0.elapsed().as_secs_f64()
        ));
        std::process::exit(1);
    }
    say(&format!(
        "PASS: a real ERSPAN v2 mirror counted exactly, per class, in every variant ({:.1}s)",
        t0.elapsed().as_secs_f64()
    ));
}
