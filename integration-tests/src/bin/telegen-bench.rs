//! `make bench`: benchmarks with figures, not timed tests. Run as root.
//!
//! 1. Classifier per-packet cost under BPF_PROG_TEST_RUN: the real classifier,
//!    the empty baseline and a reproduction of the seed project's program
//!    shape, on hand-built frames of six packet classes, in interleaved rounds.
//! 2. The probe's idle RSS, against a trivial process measured in the same run.
//! 3. StartJob -> running and StopJob latency in direct mode, TCX and forced
//!    tc, with the probe in a network namespace on a veth.
//!
//! Prints a markdown report and writes it to `bench-results/latest.md`.
//! Environment: BENCH_REPEAT (test-run repeat, default 2000000), BENCH_ROUNDS
//! (default 5), BENCH_JOBS (start/stop iterations, default 100),
//! BENCH_SECTIONS (comma list of classifier,rss,latency; default all),
//! TELEGEN_BIN_DIR (where telegen-probe is; default <workspace>/target/release).

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, ensure, Context, Result};
use aya::{
    maps::{Array, PerCpuArray},
    programs::{
        links::LinkOrder,
        tc::{self, NlOptions, TcAttachOptions, TcAttachType},
        SchedClassifier, TestRun, TestRunOptions,
    },
    Ebpf, EbpfLoader,
};
use telegen_common::{connect_probe, ProbeAddr};
use telegen_probe::{
    datapath::{EMPTY_OBJECT, OBJECT, SEED_LIKE_OBJECT},
    maps::layout::{Counters, IfCfg, LabeledCounters, CLASS_NAMES, N_CLASSES, N_ERRORS},
};
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

const BPF_FS_MAGIC: i64 = 0xcafe4a11;
/// TC_ACT_UNSPEC (-1) as the u32 BPF_PROG_TEST_RUN reports.
const TC_ACT_UNSPEC: u32 = u32::MAX;
const RSS_TARGET_KIB: u64 = 20 * 1024;
const LATENCY_P50_TARGET_MS: f64 = 10.0;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("telegen-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_num(name: &str, default: u64, min: u64) -> Result<u64> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| anyhow!("{name}={v:?} is not a number"))?;
            ensure!(n >= min, "{name}={n} is below the minimum {min}");
            Ok(n)
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Returns whether every section succeeded.
fn run() -> Result<bool> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "telegen-bench needs root (BPF, netns): run it with sudo -E"
    );
    let repeat = env_num("BENCH_REPEAT", 2_000_000, 1)?;
    let repeat = u32::try_from(repeat).context("BENCH_REPEAT does not fit in u32")?;
    let rounds = env_num("BENCH_ROUNDS", 5, 1)? as usize;
    let jobs = env_num("BENCH_JOBS", 100, 1)? as usize;
    let sections = std::env::var("BENCH_SECTIONS").unwrap_or_default();
    let want = |s: &str| sections.trim().is_empty() || sections.split(',').any(|x| x.trim() == s);
    let bin_dir = std::env::var_os("TELEGEN_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release"));

    ensure_bpffs()?;

    let mut report = header()?;
    let mut ok = true;
    let started = Instant::now();

    let mut section = |title: &str, r: Result<String>| {
        let _ = writeln!(report, "\n## {title}\n");
        match r {
            Ok(body) => report.push_str(&body),
            Err(e) => {
                ok = false;
                eprintln!("telegen-bench: {title}: {e:#}");
                let _ = writeln!(report, "**FAILED**: {e:#}");
            }
        }
    };

    if want("classifier") {
        eprintln!("telegen-bench: classifier test runs ({rounds} rounds x repeat {repeat})...");
        section(
            "Classifier per-packet cost (BPF_PROG_TEST_RUN)",
            bench_classifier(repeat, rounds),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if want("rss") {
        eprintln!("telegen-bench: probe RSS...");
        section("Probe memory (idle)", rt.block_on(bench_rss(&bin_dir)));
    }
    if want("latency") {
        eprintln!("telegen-bench: StartJob/StopJob latency ({jobs} jobs per mode)...");
        section(
            "StartJob -> running latency (direct mode)",
            rt.block_on(bench_latency(&bin_dir, jobs)),
        );
    }
    let _ = writeln!(
        report,
        "\n_Bench run took {:.1} s._",
        started.elapsed().as_secs_f64()
    );

    println!("{report}");
    let dir = workspace().join("bench-results");
    let file = dir.join("latest.md");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(&file, &report).with_context(|| format!("writing {}", file.display()))?;
    give_to_sudo_user(&dir);
    give_to_sudo_user(&file);
    eprintln!("telegen-bench: report written to {}", file.display());
    Ok(ok)
}

/// Under sudo, leave the results owned by the invoking user.
fn give_to_sudo_user(path: &Path) {
    let id = |v: &str| std::env::var(v).ok().and_then(|s| s.parse::<u32>().ok());
    if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
        let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
}

fn statfs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into the zeroed struct it is given.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut s) == 0).then_some(s.f_type as i64)
    }
}

fn ensure_bpffs() -> Result<()> {
    let root = Path::new("/sys/fs/bpf");
    if statfs_type(root) == Some(BPF_FS_MAGIC) {
        return Ok(());
    }
    eprintln!("telegen-bench: bpffs is not mounted at /sys/fs/bpf; mounting it");
    sh("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"])?;
    Ok(())
}

fn sh(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd}"))?;
    ensure!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn header() -> Result<String> {
    let mut s = String::from("# telegen-sonic bench\n\n");
    let date = sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_default();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let ncpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let ws = workspace();
    let commit = sh(
        "git",
        &[
            "-C",
            &ws.display().to_string(),
            "describe",
            "--always",
            "--dirty",
        ],
    )
    .unwrap_or_else(|_| "unknown".into());
    writeln!(s, "- date: {}", date.trim())?;
    writeln!(s, "- commit: {}", commit.trim())?;
    writeln!(s, "- kernel: {}", kernel.trim())?;
    writeln!(s, "- cpu: {cpu} x {ncpus}")?;
    writeln!(
        s,
        "- load average at start: {} (other work on the machine inflates absolute figures; compare within one run)",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )?;
    Ok(s)
}

// ---------------------------------------------------------------------------
// 1. Classifier per-packet cost
// ---------------------------------------------------------------------------

const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IP6_SRC: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const IP6_DST: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// The Internet checksum of the concatenation of `parts` (each even-sized
/// except possibly the last).
fn csum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for p in parts {
        for ch in p.chunks(2) {
            let w = if ch.len() == 2 {
                u16::from_be_bytes([ch[0], ch[1]])
            } else {
                u16::from_be_bytes([ch[0], 0])
            };
            sum += u32::from(w);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth(dst: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.extend(dst);
    v.extend(MAC_SRC);
    v.extend(ethertype.to_be_bytes());
    v
}

/// IPv4 header + UDP header + `payload` bytes.
fn ipv4_udp(payload: usize) -> Vec<u8> {
    let total = (20 + 8 + payload) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = csum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend(40000u16.to_be_bytes());
    ip.extend(5001u16.to_be_bytes());
    ip.extend(((8 + payload) as u16).to_be_bytes());
    ip.extend([0, 0]); // no UDP checksum (allowed over IPv4)
    ip.extend(std::iter::repeat_n(0xab, payload));
    ip
}

/// IPv6 header with `nexthdr`, then `payload`. `l4` is the offset inside the
/// payload of the upper-layer header whose checksum (at `l4 + csum_at`, with
/// protocol `l4_proto`) is filled in.
fn ipv6(nexthdr: u8, mut payload: Vec<u8>, l4: usize, l4_proto: u8, csum_at: usize) -> Vec<u8> {
    let upper_len = (payload.len() - l4) as u32;
    let pseudo_tail: Vec<u8> = upper_len
        .to_be_bytes()
        .into_iter()
        .chain([0, 0, 0, l4_proto])
        .collect();
    let c = csum(&[&IP6_SRC, &IP6_DST, &pseudo_tail, &payload[l4..]]);
    payload[l4 + csum_at..l4 + csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut v = vec![0x60, 0, 0, 0];
    v.extend((payload.len() as u16).to_be_bytes());
    v.extend([nexthdr, 64]);
    v.extend(IP6_SRC);
    v.extend(IP6_DST);
    v.extend(payload);
    v
}

fn icmp6_echo() -> Vec<u8> {
    vec![128, 0, 0, 0, 0x12, 0x34, 0, 1]
}

struct Frame {
    name: &'static str,
    /// The class the real classifier must count it in.
    class: usize,
    bytes: Vec<u8>,
}

fn frames() -> Vec<Frame> {
    let mut v4 = eth(MAC_DST, 0x0800);
    v4.extend(ipv4_udp(22));

    let mut tcp = Vec::with_capacity(20);
    tcp.extend(40000u16.to_be_bytes());
    tcp.extend(443u16.to_be_bytes());
    tcp.extend(1u32.to_be_bytes()); // seq
    tcp.extend(1u32.to_be_bytes()); // ack
    tcp.extend([0x50, 0x10]); // data offset 5, ACK
    tcp.extend(65535u16.to_be_bytes());
    tcp.extend([0, 0, 0, 0]); // checksum, urgent
    let mut v6tcp = eth(MAC_DST, 0x86dd);
    v6tcp.extend(ipv6(6, tcp, 0, 6, 16));

    let mut icmp = eth(MAC_DST, 0x86dd);
    icmp.extend(ipv6(58, icmp6_echo(), 0, 58, 2));

    // Hop-by-hop (next: destination options), destination options (next:
    // ICMPv6), each 8 bytes with a PadN option.
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0];
    ext.extend(icmp6_echo());
    let mut icmp_ext = eth(MAC_DST, 0x86dd);
    icmp_ext.extend(ipv6(0, ext, 16, 58, 2));

    let mut arp = eth([0xff; 6], 0x0806);
    arp.extend([0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    arp.extend(MAC_SRC);
    arp.extend([10, 0, 0, 1]);
    arp.extend([0; 6]);
    arp.extend([10, 0, 0, 2]);
    arp.resize(60, 0); // minimum frame (without FCS)

    let mut vlan = eth(MAC_DST, 0x8100);
    vlan.extend(100u16.to_be_bytes()); // PCP 0, VID 100
    vlan.extend(0x0800u16.to_be_bytes());
    vlan.extend(ipv4_udp(22));

    vec![
        Frame {
            name: "IPv4/UDP",
            class: 0,
            bytes: v4,
        },
        Frame {
            name: "IPv6/TCP",
            class: 1,
            bytes: v6tcp,
        },
        Frame {
            name: "ICMPv6 echo",
            class: 2,
            bytes: icmp,
        },
        Frame {
            name: "ICMPv6 behind HBH+DstOpts",
            class: 2,
            bytes: icmp_ext,
        },
        Frame {
            name: "ARP (other)",
            class: 3,
            bytes: arp,
        },
        Frame {
            name: "802.1Q IPv4/UDP",
            class: 0,
            bytes: vlan,
        },
    ]
}

struct Prog {
    label: &'static str,
    prog: &'static str,
    ebpf: Ebpf,
}

impl Prog {
    fn load(label: &'static str, prog: &'static str, mut ebpf: Ebpf) -> Result<Self> {
        let p: &mut SchedClassifier = ebpf
            .program_mut(prog)
            .ok_or_else(|| anyhow!("program {prog} missing from the {label} object"))?
            .try_into()?;
        p.load()
            .with_context(|| format!("loading program {prog} ({label})"))?;
        Ok(Prog { label, prog, ebpf })
    }

    /// ns per run, as the kernel measured it.
    fn test_run(&self, frame: &[u8], repeat: u32) -> Result<u64> {
        let p: &SchedClassifier = self
            .ebpf
            .program(self.prog)
            .ok_or_else(|| anyhow!("program {} missing", self.prog))?
            .try_into()?;
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .with_context(|| format!("BPF_PROG_TEST_RUN of {}", self.label))?;
        ensure!(
            r.return_value == TC_ACT_UNSPEC,
            "{} returned {} instead of TC_ACT_UNSPEC",
            self.label,
            r.return_value as i32
        );
        Ok(r.duration.as_nanos() as u64)
    }
}

/// A pin directory removed when dropped.
struct PinDir(PathBuf);

impl PinDir {
    fn fresh(path: PathBuf) -> Result<Self> {
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(PinDir(path))
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("telegen-bench: removing {}: {e}", self.0.display());
            }
        }
    }
}

fn median(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2] as f64
    } else {
        (s[n / 2 - 1] + s[n / 2]) as f64 / 2.0
    }
}

fn bench_classifier(repeat: u32, rounds: usize) -> Result<String> {
    let pins = PinDir::fresh(PathBuf::from(format!(
        "/sys/fs/bpf/telegen-bench-{}",
        std::process::id()
    )))?;
    let real = EbpfLoader::new()
        .default_map_pin_directory(&pins.0)
        .load(OBJECT)
        .context("loading the telegen object")?;
    let mut real = Prog::load("telegen", "telegen_ingress", real)?;
    // Test-run skbs arrive on loopback (ifindex 1): configure it as an
    // interface in slot 0 with one ingress job in slot 0, so each packet
    // updates the global, the per-interface and one per-job counter.
    {
        let mut ifcfg: Array<_, IfCfg> = Array::try_from(
            real.ebpf
                .map_mut("ifcfg")
                .ok_or_else(|| anyhow!("map ifcfg missing"))?,
        )?;
        let mut cfg = IfCfg {
            slot: 0,
            valid: 1,
            njobs: [1, 0],
            ..Default::default()
        };
        cfg.jobs[0][0] = 0;
        ifcfg.set(1, cfg, 0).context("writing ifcfg[1]")?;
    }
    let empty = Prog::load(
        "empty",
        "empty",
        EbpfLoader::new()
            .load(EMPTY_OBJECT)
            .context("loading the empty object")?,
    )?;
    let seed = Prog::load(
        "seed-like",
        "seed_like",
        EbpfLoader::new()
            .load(SEED_LIKE_OBJECT)
            .context("loading the seed-like object")?,
    )?;
    let progs = [&empty, &real, &seed];
    let frames = frames();

    // samples[prog][frame] = ns per run, one per round
    let mut samples = vec![vec![Vec::with_capacity(rounds); frames.len()]; progs.len()];
    for r in 0..rounds {
        for (fi, f) in frames.iter().enumerate() {
            // Rotate the program order so none always runs first.
            for k in 0..progs.len() {
                let pi = (k + r) % progs.len();
                samples[pi][fi].push(progs[pi].test_run(&f.bytes, repeat)?);
            }
        }
    }

    let mut s = String::new();
    writeln!(
        s,
        "repeat {repeat} per run, {rounds} interleaved rounds (each round runs every program on every frame once); \
         figures are the median over rounds of the kernel's ns/packet (integer ns), with min-max over rounds. \
         telegen = `telegen_ingress` with loopback configured as a monitored interface with one ingress job \
         (global + per-interface + per-job counter updated per packet); \
         seed-like = per-proto per-CPU array + per-{{ifindex,proto}} per-CPU hash, ICMPv6 counted twice.\n"
    )?;
    writeln!(
        s,
        "| packet | bytes | empty ns | telegen ns | telegen above empty | seed-like ns | seed-like above empty | seed-like / telegen (above empty) |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let cell = |v: &[u64]| {
        let (lo, hi) = (v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0));
        format!("{:.0} ({lo}-{hi})", median(v))
    };
    let mut ipv4_above = None;
    for (fi, f) in frames.iter().enumerate() {
        let e = median(&samples[0][fi]);
        let t = median(&samples[1][fi]);
        let sd = median(&samples[2][fi]);
        let (ta, sa) = (t - e, sd - e);
        if fi == 0 {
            ipv4_above = Some(ta);
        }
        let ratio = if ta >= 1.0 {
            format!("{:.1}x", sa / ta)
        } else {
            "n/a (telegen < 1 ns above empty)".into()
        };
        writeln!(
            s,
            "| {} | {} | {} | {} | {:+.0} | {} | {:+.0} | {ratio} |",
            f.name,
            f.bytes.len(),
            cell(&samples[0][fi]),
            cell(&samples[1][fi]),
            ta,
            cell(&samples[2][fi]),
            sa
        )?;
    }
    if let Some(a) = ipv4_above {
        writeln!(
            s,
            "\nTelegen IPv4 cost above empty: {a:+.0} ns ({}).",
            if a <= 15.0 {
                "within the 15 ns budget"
            } else {
                "ABOVE the 15 ns budget"
            }
        )?;
    }

    // Sanity: the real program took the counting path, in the right classes.
    writeln!(
        s,
        "\nSanity checks (telegen's pinned counters after the runs):\n"
    )?;
    let per = u64::from(repeat) * rounds as u64;
    let mut expected = [0u64; N_CLASSES as usize];
    for f in &frames {
        expected[f.class] += per;
    }
    let sum_global = |ebpf: &Ebpf| -> Result<Vec<u64>> {
        let m: PerCpuArray<_, Counters> = PerCpuArray::try_from(
            ebpf.map("stats_percpu")
                .ok_or_else(|| anyhow!("map stats_percpu missing"))?,
        )?;
        (0..N_CLASSES)
            .map(|c| Ok(m.get(&c, 0)?.iter().map(|v| v.packets).sum()))
            .collect()
    };
    let sum_labeled = |ebpf: &Ebpf, name: &str| -> Result<Vec<u64>> {
        let m: PerCpuArray<_, LabeledCounters> = PerCpuArray::try_from(
            ebpf.map(name)
                .ok_or_else(|| anyhow!("map {name} missing"))?,
        )?;
        (0..N_CLASSES)
            .map(|c| Ok(m.get(&c, 0)?.iter().map(|v| v.c.packets).sum()))
            .collect()
    };
    let checks = [
        ("stats_percpu (global)", sum_global(&real.ebpf)?),
        (
            "if_stats_percpu slot 0",
            sum_labeled(&real.ebpf, "if_stats_percpu")?,
        ),
        (
            "job_stats_percpu slot 0",
            sum_labeled(&real.ebpf, "job_stats_percpu")?,
        ),
    ];
    let mut all_ok = true;
    for (name, got) in &checks {
        let total: u64 = got.iter().sum();
        let good = got.as_slice() == expected.as_slice();
        all_ok &= good;
        let by_class: Vec<String> = got
            .iter()
            .zip(CLASS_NAMES)
            .map(|(n, c)| format!("{c}={n}"))
            .collect();
        if total == 0 {
            writeln!(
                s,
                "- **{name}: all zero: the program did NOT run its counting path**"
            )?;
        } else if good {
            writeln!(s, "- {name}: ok ({})", by_class.join(", "))?;
        } else {
            writeln!(
                s,
                "- **{name}: MISMATCH**: {} (expected {})",
                by_class.join(", "),
                expected
                    .iter()
                    .zip(CLASS_NAMES)
                    .map(|(n, c)| format!("{c}={n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    let errors: Vec<u64> = {
        let m: PerCpuArray<_, u64> = PerCpuArray::try_from(
            real.ebpf
                .map("errors_percpu")
                .ok_or_else(|| anyhow!("map errors_percpu missing"))?,
        )?;
        (0..N_ERRORS)
            .map(|i| Ok(m.get(&i, 0)?.iter().sum()))
            .collect::<Result<_>>()?
    };
    if errors.iter().all(|&e| e == 0) {
        writeln!(s, "- errors_percpu: all zero (ok)")?;
    } else {
        all_ok = false;
        writeln!(s, "- **errors_percpu not zero**: {errors:?}")?;
    }
    if !all_ok {
        writeln!(
            s,
            "\n**The telegen figures above may not measure the full counting path.**"
        )?;
    }
    drop(real);
    drop(pins);
    Ok(s)
}

// ---------------------------------------------------------------------------
// 2 and 3. The probe process
// ---------------------------------------------------------------------------

/// A telegen-probe process with its own socket and pin directory; dropping it
/// stops it (SIGTERM, then SIGKILL after 5 s) and removes both.
struct ProbeProc {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    pin_dir: PathBuf,
    log: PathBuf,
}

impl ProbeProc {
    /// Start `bin_dir/telegen-probe` (inside the netns at `netns`, if any),
    /// in direct mode, with `extra` environment; wait until it answers.
    async fn start(
        bin_dir: &Path,
        tag: &str,
        netns: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<(Self, pb::Info)> {
        let probe = bin_dir.join("telegen-probe");
        ensure!(
            probe.exists(),
            "{} not found: build it (cargo build --release --workspace) or set TELEGEN_BIN_DIR",
            probe.display()
        );
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/tmp/telegen-bench-{pid}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let socket = dir.join(format!("{tag}.sock"));
        let _ = fs::remove_file(&socket);
        let log = dir.join(format!("{tag}.log"));
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/telegen-bench-probe-{pid}"));
        let _ = fs::remove_dir_all(&pin_dir);
        let logf = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg(&probe);
                c
            }
            None => Command::new(&probe),
        };
        cmd.env("TELEGEN_PROBE_ADDR", format!("unix:{}", socket.display()))
            .env("TELEGEN_BPF_PIN_DIR", &pin_dir)
            .env("TELEGEN_MIRROR_MODE", "direct")
            .env_remove("TELEGEN_ATTACH_MODE")
            .env("RUST_LOG", "info")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", probe.display()))?;
        let mut p = ProbeProc {
            child: Some(child),
            dir,
            socket,
            pin_dir,
            log,
        };
        let info = p.wait_ready().await?;
        Ok((p, info))
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                self.child = None;
                bail!("telegen-probe exited ({st}); log:\n{}", self.log_tail());
            }
        }
        Ok(())
    }

    fn client(&self) -> ProbeClient<Channel> {
        ProbeClient::new(connect_probe(&ProbeAddr::Unix(self.socket.clone())))
    }

    async fn wait_ready(&mut self) -> Result<pb::Info> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            self.check_alive()?;
            ensure!(
                Instant::now() < deadline,
                "telegen-probe did not create {} within 20 s; log:\n{}",
                self.socket.display(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut client = self.client();
        loop {
            match client.get_info(pb::GetInfoRequest {}).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(e) => {
                    self.check_alive()?;
                    ensure!(
                        Instant::now() < deadline,
                        "telegen-probe did not answer GetInfo within 20 s ({e}); log:\n{}",
                        self.log_tail()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// SIGTERM and wait while letting the runtime run, so that this
    /// process's own gRPC connections can take part in the probe's graceful
    /// shutdown (a connection whose peer is not polled holds it up).
    async fn shutdown(mut self) {
        if let Some(child) = self.child.as_mut() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    self.child = None;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if let Some(mut child) = self.child.take() {
            eprintln!("telegen-bench: probe ignored SIGTERM for 5 s; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
        // Drop removes the socket and the pins.
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        eprintln!("telegen-bench: probe ignored SIGTERM for 5 s; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

impl Drop for ProbeProc {
    fn drop(&mut self) {
        self.stop();
        // The probe leaves its pins on exit by design; they are ours to remove.
        let _ = fs::remove_dir_all(&self.pin_dir);
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(&self.log);
        let _ = fs::remove_dir(&self.dir); // only once empty
    }
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn mem_kib(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn bench_rss(bin_dir: &Path) -> Result<String> {
    let (mut probe, info) = ProbeProc::start(bin_dir, "rss", None, &[]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    probe.check_alive()?;
    let pid = probe.pid().ok_or_else(|| anyhow!("probe not running"))?;
    let (rss, hwm) = mem_kib(pid)?;
    probe.shutdown().await;

    // A trivial process, measured the same way, as the floor.
    let mut sleep = Command::new("sleep")
        .arg("5")
        .stdin(Stdio::null())
        .spawn()
        .context("starting sleep")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = mem_kib(sleep.id());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sleep.id() as i32, libc::SIGTERM) };
    let _ = sleep.wait();
    let (base_rss, _) = base?;

    let mut s = String::new();
    writeln!(
        s,
        "telegen-probe {} (datapath {}, attach mode {}), idle 1 s after its first GetInfo answer, \
         classifier loaded and pinned, no jobs.\n",
        info.version,
        if info.datapath_enabled { "on" } else { "OFF" },
        info.attach_mode
    )?;
    writeln!(s, "| process | VmRSS | VmHWM |")?;
    writeln!(s, "|---|---:|---:|")?;
    writeln!(s, "| telegen-probe | {} | {} |", mib(rss), mib(hwm))?;
    writeln!(s, "| `sleep 5` (baseline) | {} | |", mib(base_rss))?;
    writeln!(
        s,
        "\nProbe VmRSS = {:.1}x a trivial process; target < 20 MiB: {}.",
        rss as f64 / base_rss.max(1) as f64,
        if rss < RSS_TARGET_KIB {
            "met"
        } else {
            "NOT met"
        }
    )?;
    if !info.datapath_enabled {
        writeln!(
            s,
            "\n**The datapath was off ({}): this is not the RSS of a working probe.**",
            info.datapath_reason
        )?;
    }
    Ok(s)
}

/// A network namespace with a veth pair (one end inside), deleted when dropped.
struct BenchNetns {
    name: String,
    host_if: String,
}

impl BenchNetns {
    fn create(pid: u32) -> Result<(Self, String)> {
        let name = format!("tgbench{pid}");
        let host_if = format!("tgbh{pid}");
        let ns_if = format!("tgbn{pid}");
        let _ = sh("ip", &["netns", "del", &name]);
        let _ = sh("ip", &["link", "del", &host_if]);
        sh("ip", &["netns", "add", &name])?;
        let ns = BenchNetns { name, host_if };
        for knob in ["all", "default"] {
            sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns.name,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{knob}.disable_ipv6=1"),
                ],
            )?;
        }
        sh(
            "ip",
            &[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns_if,
                "netns",
                &ns.name,
            ],
        )?;
        sh("ip", &["link", "set", &ns.host_if, "up"])?;
        sh("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        sh("ip", &["-n", &ns.name, "link", "set", &ns_if, "up"])?;
        Ok((ns, ns_if))
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for BenchNetns {
    fn drop(&mut self) {
        if let Err(e) = sh("ip", &["netns", "del", &self.name]) {
            eprintln!("telegen-bench: {e:#}");
        }
        // Normally gone with its peer; make sure.
        let _ = sh("ip", &["link", "del", &self.host_if]);
    }
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[f64], p: f64) -> f64 {
    let n = v.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    v[rank.clamp(1, n) - 1]
}

struct Latencies {
    mode: String,
    start_to_running: Vec<f64>,
    stop: Vec<f64>,
    first: f64,
    rss_after: Option<(u64, u64)>,
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
    ensure!(
        info.datapath_enabled,
        "the probe's datapath is off: {}",
        info.datapath_reason
    );
    let mode = info.attach_mode.clone();
    let mut client = probe.client();
    let mut lat = Latencies {
        mode: mode.clone(),
        start_to_running: Vec::with_capacity(jobs),
        stop: Vec::with_capacity(jobs),
        first: 0.0,
        rss_after: None,
    };
    for i in 0..jobs {
        let req = pb::StartJobRequest {
            port: port.into(),
            direction: "ingress".into(),
            mirror_mode: "direct".into(),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut job = client
            .start_job(req)
            .await
            .with_context(|| format!("StartJob #{i}"))?
            .into_inner();
        let deadline = t0 + Duration::from_secs(10);
        while job.status != "running" {
            ensure!(
                matches!(job.status.as_str(), "starting"),
                "job #{i} went {:?} instead of running: {}",
                job.status,
                job.error
            );
            ensure!(
                Instant::now() < deadline,
                "job #{i} not running after 10 s; probe log:\n{}",
                probe.log_tail()
            );
            job = client
                .get_job(pb::GetJobRequest {
                    job_id: job.job_id.clone(),
                })
                .await
                .with_context(|| format!("GetJob #{i}"))?
                .into_inner();
        }
        let run_ms = t0.elapsed().as_secs_f64() * 1e3;
        ensure!(
            job.attach_mode == mode,
            "job #{i} attached with {:?}, the probe said {mode:?}",
            job.attach_mode
        );
        let t2 = Instant::now();
        let stopped = client
            .stop_job(pb::StopJobRequest {
                job_id: job.job_id.clone(),
            })
            .await
            .with_context(|| format!("StopJob #{i}"))?
            .into_inner();
        let stop_ms = t2.elapsed().as_secs_f64() * 1e3;
        ensure!(
            stopped.status == "stopped",
            "StopJob #{i} answered status {:?}: {}",
            stopped.status,
            stopped.error
        );
        if i == 0 {
            lat.first = run_ms;
        }
        lat.start_to_running.push(run_ms);
        lat.stop.push(stop_ms);
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
    let mut ebpf = EbpfLoader::new()
        .load(EMPTY_OBJECT)
        .context("loading the empty object")?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut("empty")
        .ok_or_else(|| anyhow!("program empty missing"))?
        .try_into()?;
    prog.load()?;
    if !tcx {
        match tc::qdisc_add_clsact(ifname) {
            Ok(()) => {}
            Err(tc::TcError::IoError(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).context(format!("adding clsact to {ifname}")),
        }
    }
    let mut lat = Latencies {
        mode: if tcx { "tcx" } else { "tc" }.into(),
        start_to_running: Vec::with_capacity(n),
        stop: Vec::with_capacity(n),
        first: 0.0,
        rss_after: None,
    };
    for i in 0..n {
        let opts = if tcx {
            TcAttachOptions::TcxOrder(LinkOrder::default())
        } else {
            TcAttachOptions::Netlink(NlOptions::default())
        };
        let t0 = Instant::now();
        let id = prog
            .attach_with_options(ifname, TcAttachType::Ingress, opts)
            .with_context(|| format!("attaching ({}) to {ifname}", lat.mode))?;
        let attach_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        prog.detach(id)
            .with_context(|| format!("detaching ({}) from {ifname}", lat.mode))?;
        let detach_ms = t1.elapsed().as_secs_f64() * 1e3;
        if i == 0 {
            lat.first = attach_ms;
        }
        lat.start_to_running.push(attach_ms);
        lat.stop.push(detach_ms);
    }
    Ok(lat)
}

async fn bench_latency(bin_dir: &Path, jobs: usize) -> Result<String> {
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
    let mut met = true;
    for (who, l) in &mut results {
        l.start_to_running.sort_by(f64::total_cmp);
        l.stop.sort_by(f64::total_cmp);
        let (a, b) = (&l.start_to_running, &l.stop);
        let mode = if l.mode == "tc" {
            "tc (clsact)"
        } else {
            l.mode.as_str()
        };
        let label = if *who == "probe" {
            met &= pct(a, 50.0) < LATENCY_P50_TARGET_MS;
            format!("probe, {mode}")
        } else {
            format!("bare kernel, {mode}")
        };
        writeln!(
            s,
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
            pct(a, 50.0),
            pct(a, 99.0),
            a[a.len() - 1],
            l.first,
            pct(b, 50.0),
            pct(b, 99.0),
            b[b.len() - 1],
            l.rss_after
                .map(|(r, h)| format!("{} / {}", mib(r), mib(h)))
                .unwrap_or_else(|| "-".into())
        )?;
    }
    writeln!(
        s,
        "\nTarget (probe) start->running p50 < {LATENCY_P50_TARGET_MS} ms: {}.",
        if met { "met" } else { "NOT met" }
    )?;
    Ok(s)
}
