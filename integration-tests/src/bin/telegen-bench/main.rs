//! `make bench`: benchmarks with figures, not timed tests. Run as root.
//!
//! 1. Classifier per-packet cost under BPF_PROG_TEST_RUN: the real classifier,
//!    the empty baseline and a reproduction of the seed project's program
//!    shape, on hand-built frames of six packet classes, in interleaved rounds.
//!    Then the cost of job filters and flow tracking: 1 and 2 plain jobs, 1
//!    and 2 filtered jobs, and a filtered job tracking flows at sample_rate 1
//!    and 100, each above the empty program in the same interleaved rounds.
//! 2. The probe's idle RSS, against a trivial process measured in the same run.
//! 3. StartJob -> running and StopJob latency in direct mode, TCX and forced
//!    tc, with the probe in a network namespace on a veth.
//! 4. GetJob latency while a `sonic` StartJob waits on a redis stopped with
//!    SIGSTOP, against idle GetJob in the same run (no lock across redis).
//! 5. The REST gateway, run unprivileged as in production in front of one
//!    probe: start -> running over REST against the same cycle over gRPC,
//!    GET /jobs/{id} throughput against gRPC GetJob and GET /healthz, and
//!    the gateway's RSS against a trivial process.
//! 6. The OTLP exporter, run unprivileged as in production between a
//!    synthetic probe (WatchCounters only, 4 series per owner) and a real
//!    OTLP/gRPC receiver: exports, requests per interval, data points and
//!    bytes per request, CPU per export with 64 interfaces and 2 jobs
//!    against a global-only snapshot (and 2 interfaces), and its RSS.
//! 7. Past one machine, `fleet`: 1,000 simulated exporters (the exporter
//!    library's encoding of synthetic snapshots of 64 ports x 2 directions
//!    and 2 jobs, one tonic channel each) sending to one OTLP/gRPC receiver
//!    on loopback every 10 s: series per switch, bytes per request and per
//!    second, data points per second, export latency and CPU per export, to
//!    size a collector tier. Needs no BPF.
//!
//! Prints a markdown report and writes it to `bench-results/latest.md`.
//! Environment: BENCH_REPEAT (test-run repeat, default 2000000), BENCH_ROUNDS
//! (default 5), BENCH_JOBS (start/stop iterations, default 100),
//! BENCH_HTTP_SECS (seconds of load per throughput target, default 5),
//! BENCH_HTTP_CLIENTS (concurrent clients, default 8),
//! BENCH_EXPORT_SECS (seconds of exports measured per exporter case, default
//! 10), BENCH_FLEET_SWITCHES (simulated exporters of the fleet section,
//! default 1000), BENCH_FLEET_INTERVALS (10 s export intervals it runs,
//! default 2), BENCH_SECTIONS (comma list of
//! classifier,filters,capture,rss,latency,stall,gateway,exporter,fleet;
//! default all; `filters` is the filter and flow cost, `stall` GetJob under
//! a stalled redis), BENCH_OBJECT (another
//! build of ebpf/telegen.bpf.c for the filters section to measure instead),
//! TELEGEN_BIN_DIR (where telegen-probe, telegen-gateway and
//! telegen-exporter are; default <workspace>/target/release).
//!
//! One module per section (classifier, filters, rss, latency, stall,
//! gateway, exporter, fleet); `common` is the harness they share (scratch directories,
//! statistics, timing, memory and CPU readings, report pieces), `testrun` the
//! BPF_PROG_TEST_RUN programs and frames of classifier and filters, and
//! `probe_proc` the probe process (and its network namespace) of rss, latency
//! and gateway. The bench baselines come from
//! `telegen_integration_tests::bench_objects`.

mod breakdown;
mod capture;
mod classifier;
mod common;
mod exporter;
mod filters;
mod fleet;
mod gateway;
mod latency;
mod probe_proc;
mod rss;
mod stall;
mod testrun;

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::{anyhow, ensure, Context, Result};
use telegen_integration_tests::sh;

use crate::gateway::LoadSpec;

const BPF_FS_MAGIC: i64 = 0xcafe4a11;

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
    let load = LoadSpec {
        secs: env_num("BENCH_HTTP_SECS", 5, 1)? as u32,
        clients: env_num("BENCH_HTTP_CLIENTS", 8, 1)? as usize,
    };
    let export_secs = env_num("BENCH_EXPORT_SECS", 10, 1)?;
    let fleet_switches = env_num("BENCH_FLEET_SWITCHES", 1000, 1)?;
    let fleet_switches = u32::try_from(fleet_switches).context("BENCH_FLEET_SWITCHES")?;
    let fleet_intervals = env_num("BENCH_FLEET_INTERVALS", 2, 1)?;
    let fleet_intervals = u32::try_from(fleet_intervals).context("BENCH_FLEET_INTERVALS")?;
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
            classifier::bench(repeat, rounds),
        );
    }
    if want("filters") {
        eprintln!("telegen-bench: filter and flow cost ({rounds} rounds x repeat {repeat})...");
        section(
            "Job filters and flow tracking per-packet cost (BPF_PROG_TEST_RUN)",
            filters::bench(repeat, rounds),
        );
    }
    if want("breakdown") {
        eprintln!("telegen-bench: where the classifier's time goes ({rounds} rounds x repeat {repeat})...");
        section(
            "Classifier breakdown: cost per stage, and the verifier's figures",
            breakdown::bench(repeat, rounds),
        );
    }
    if want("capture") {
        eprintln!(
            "telegen-bench: capture cost ({rounds} rounds x repeat {})...",
            capture::CAPTURE_REPEAT
        );
        section(
            "Packet capture per-packet cost (BPF_PROG_TEST_RUN)",
            capture::bench(rounds),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if want("rss") {
        eprintln!("telegen-bench: probe RSS...");
        section("Probe memory (idle)", rt.block_on(rss::bench(&bin_dir)));
    }
    if want("latency") {
        eprintln!("telegen-bench: StartJob/StopJob latency ({jobs} jobs per mode)...");
        section(
            "StartJob -> running latency (direct mode)",
            rt.block_on(latency::bench(&bin_dir, jobs)),
        );
    }
    if want("stall") {
        eprintln!("telegen-bench: GetJob while a sonic start waits on a stalled redis...");
        section(
            "GetJob while redis stalls a start",
            rt.block_on(stall::bench(&bin_dir)),
        );
    }
    if want("gateway") {
        eprintln!(
            "telegen-bench: REST gateway ({jobs} jobs per path, {} clients x {} s per target)...",
            load.clients, load.secs
        );
        section(
            "REST gateway (telegen-gateway, unprivileged)",
            rt.block_on(gateway::bench(&bin_dir, jobs, load)),
        );
    }
    if want("exporter") {
        eprintln!("telegen-bench: OTLP exporter ({export_secs} s of exports per case)...");
        section(
            "OTLP exporter (telegen-exporter, unprivileged)",
            rt.block_on(exporter::bench(&bin_dir, export_secs)),
        );
    }
    if want("fleet") {
        eprintln!(
            "telegen-bench: fleet of {fleet_switches} simulated exporters ({fleet_intervals} x 10 s)..."
        );
        section(
            "Past one machine: a fleet of exporters into one OTLP receiver",
            rt.block_on(fleet::bench(fleet_switches, fleet_intervals)),
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
