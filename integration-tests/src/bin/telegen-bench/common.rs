//! The harness the sections share: scratch directories, statistics, timing,
//! memory and CPU readings of processes, and the pieces of the report.

use std::{
    fmt::Write as _,
    fs,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, ensure, Context, Result};

/// A directory (of pins, of a socket and logs) created empty and removed
/// with its contents when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn fresh(path: PathBuf) -> Result<Self> {
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("telegen-bench: removing {}: {e}", self.0.display());
            }
        }
    }
}

// Statistics and timing.

pub fn median(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2] as f64
    } else {
        (s[n / 2 - 1] + s[n / 2]) as f64 / 2.0
    }
}

/// "median (min-max)" of per-round ns figures (integer ns).
pub fn cell(v: &[u64]) -> String {
    let (lo, hi) = (v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0));
    format!("{:.0} ({lo}-{hi})", median(v))
}

/// Nearest-rank percentile of sorted `v`.
pub fn pct(v: &[f64], p: f64) -> f64 {
    let n = v.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    v[rank.clamp(1, n) - 1]
}

/// "p50 | p99 | max" table cells of sorted ms figures.
pub fn dist_ms(v: &[f64]) -> String {
    format!(
        "{:.2} ms | {:.2} ms | {:.2} ms",
        pct(v, 50.0),
        pct(v, 99.0),
        v[v.len() - 1]
    )
}

pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

// Processes: logs, memory, CPU time.

/// The last 20 lines of a log.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// VmRSS and VmHWM of `pid`, in KiB.
pub fn mem_kib(pid: u32) -> Result<(u64, u64)> {
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

/// VmRSS of a trivial process (`sleep 5`), the floor memory figures compare to.
pub async fn baseline_rss_kib() -> Result<u64> {
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
    Ok(base?.0)
}

/// utime + stime of `pid` so far, in µs.
pub fn cpu_us(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces): state is field 3,
    // utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no field {} in /proc/{pid}/stat", i + 3))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((tick(11)? + tick(12)?) as f64 * 1e6 / hz)
}

/// utime + stime of `pid` so far, in µs, at ns resolution: its process
/// CPU-time clock, the same sum (sum_exec_runtime) `cpu_us` reads from
/// /proc in clock ticks.
pub fn cpu_clock_us(pid: u32) -> Result<f64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes the clock id into `clock`.
    let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    ensure!(
        rc == 0,
        "clock_getcpuclockid({pid}): {}",
        std::io::Error::from_raw_os_error(rc)
    );
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the time into `ts`.
    ensure!(
        unsafe { libc::clock_gettime(clock, &mut ts) } == 0,
        "reading the CPU clock of {pid}: {}",
        std::io::Error::last_os_error()
    );
    Ok(ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3)
}

// Report pieces.

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// "met" or "NOT met".
pub fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// "+0.42 ms (1.50x)": how much `b` adds to `a`.
pub fn added(a: f64, b: f64) -> String {
    format!("{:+.2} ms ({:.2}x)", b - a, b / a.max(1e-9))
}

/// VmRSS and VmHWM of each of `rows` (label, figures), then the `sleep`
/// baseline.
pub fn mem_table(s: &mut String, rows: &[(&str, (u64, u64))], base_rss: u64) -> Result<()> {
    writeln!(s, "| process | VmRSS | VmHWM |")?;
    writeln!(s, "|---|---:|---:|")?;
    for (label, (rss, hwm)) in rows {
        writeln!(s, "| {label} | {} | {} |", mib(*rss), mib(*hwm))?;
    }
    writeln!(s, "| `sleep 5` (baseline) | {} | |", mib(base_rss))?;
    Ok(())
}

/// "`what` = ...x a trivial process" and whether `rss` is below `target_kib`.
pub fn rss_verdict(
    s: &mut String,
    what: &str,
    rss: u64,
    base_rss: u64,
    target_kib: u64,
) -> Result<()> {
    writeln!(
        s,
        "\n{what} = {:.1}x a trivial process; target < {} MiB: {}.",
        rss as f64 / base_rss.max(1) as f64,
        target_kib / 1024,
        met(rss < target_kib)
    )?;
    Ok(())
}

/// A service's memory: just after start, and after the load and 1 s more;
/// the `sleep` baseline measured in the same run.
pub struct ServiceMem {
    pub start: (u64, u64),
    pub idle: (u64, u64),
    pub base_rss: u64,
}

/// "### `heading`": VmRSS and VmHWM at start and after the load (`rows`
/// labels them), the `sleep` baseline, then "`summary` = ...x a trivial
/// process" and whether the VmRSS after the load is below `target_kib`.
pub fn mem_report(
    s: &mut String,
    heading: &str,
    rows: [&str; 2],
    summary: &str,
    m: &ServiceMem,
    target_kib: u64,
) -> Result<()> {
    writeln!(s, "\n### {heading}\n")?;
    mem_table(s, &[(rows[0], m.start), (rows[1], m.idle)], m.base_rss)?;
    rss_verdict(s, summary, m.idle.0, m.base_rss, target_kib)
}
