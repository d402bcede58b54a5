//! The exporter section's report.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use telegen_integration_tests::unpriv::UNPRIVILEGED_ID;

use super::{ExportRun, EXPORTER_RSS_TARGET_KIB, EXPORT_INTERVAL_MS};
use crate::common::{mem_report, met, ServiceMem};

pub fn exporter_report(
    version: &str,
    runs: &[ExportRun],
    secs: u64,
    base_rss: u64,
) -> Result<String> {
    let [small, _, full] = runs else {
        bail!("expected three exporter runs, got {}", runs.len());
    };
    let mut s = String::new();
    writeln!(
        s,
        "{version} run as in production: release build, `setpriv` uid/gid {UNPRIVILEGED_ID} with no \
         supplementary groups, no capabilities in any set and no_new_privs, RUST_LOG=info, \
         OTEL_METRIC_EXPORT_INTERVAL={EXPORT_INTERVAL_MS}. It is fed by a synthetic probe in this process \
         (the Probe service's WatchCounters on a unix socket of group {UNPRIVILEGED_ID}; a real probe only has \
         series for interfaces with jobs): one snapshot per interval as the exporter asks, 4 protocol series \
         per owner (global, each interface, each running job), counters of ~1e8 packets growing every \
         snapshot, 9 histogram buckets (bounds 64 ... 9216), every error and tunnel counter, fixed start \
         times. It \
         exports to a real OTLP/gRPC receiver in this process on 127.0.0.1 (opentelemetry-proto's tonic \
         server, recording every request). Each case has its own probe, receiver and exporter; the three \
         run at the same time.\n"
    )?;
    export_table(&mut s, runs, secs)?;
    let against: Vec<String> = runs[1..]
        .iter()
        .map(|r| {
            format!(
                "{} {:.1} µs = {:.2}x ({:+.2} µs per added series), {:.0} bytes = {:.1}x",
                r.shape.label(),
                r.cpu_per_export(),
                r.cpu_per_export() / small.cpu_per_export().max(1e-9),
                (r.cpu_per_export() - small.cpu_per_export())
                    / (r.shape.series() - small.shape.series()) as f64,
                r.bytes,
                r.bytes / small.bytes.max(1.0),
            )
        })
        .collect();
    writeln!(
        s,
        "\nExporter CPU and request size per export against the global-only snapshot's {:.1} µs and {:.0} \
         bytes: {}.",
        small.cpu_per_export(),
        small.bytes,
        against.join("; ")
    )?;
    writeln!(
        s,
        "One request per interval, carrying every series: {}.",
        met(runs.iter().all(ExportRun::one_per_interval))
    )?;
    let mem = ServiceMem {
        start: full.mem.0,
        idle: full.mem.1,
        base_rss,
    };
    let rows = [
        format!(
            "telegen-exporter ({}), just after its first export",
            full.shape.label()
        ),
        format!(
            "the same, after its {} measured exports and 1 s more",
            full.exports
        ),
    ];
    mem_report(
        &mut s,
        "Exporter memory",
        [&rows[0], &rows[1]],
        "Exporter VmRSS after the load",
        &mem,
        EXPORTER_RSS_TARGET_KIB,
    )?;
    Ok(s)
}

fn export_table(s: &mut String, runs: &[ExportRun], secs: u64) -> Result<()> {
    writeln!(s, "### CPU and size per export\n")?;
    writeln!(
        s,
        "The window runs from one export's arrival at the receiver to another's, {secs} s or a little more \
         after the first export that carried every series. Requests per interval: requests received / \
         (elapsed / {EXPORT_INTERVAL_MS} ms); the exporter sleeps an interval after each export, so a \
         little under 1. Bytes: the request's protobuf encoded length (prost). CPU: the exporter's \
         utime + stime over the window, divided by the exports; it includes receiving the probe's \
         snapshot of each interval. The figures come from its process CPU clock \
         (clock_getcpuclockid: the sum /proc/<pid>/stat reports in 10 ms ticks, at ns resolution); \
         the /proc column is the same sum in ticks, as a cross-check (one tick over the window is \
         10 ms / exports).\n"
    )?;
    writeln!(
        s,
        "| snapshot | series | exports | elapsed | requests per interval | data points / request | bytes / request | CPU / export | CPU / export (/proc ticks) | CPU share |"
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for r in runs {
        let (lo, hi) = r.points;
        let points = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        writeln!(
            s,
            "| {} | {} | {} | {:.2} s | {:.3} | {points} | {:.0} | {:.1} µs | {:.0} µs | {:.2} % |",
            r.shape.label(),
            r.shape.series(),
            r.exports,
            r.secs,
            r.per_interval(),
            r.bytes,
            r.cpu_per_export(),
            r.proc_cpu_per_export(),
            r.cpu_us / (r.secs * 1e4),
        )?;
    }
    Ok(())
}
