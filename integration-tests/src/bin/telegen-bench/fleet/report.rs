//! The fleet section's report.

use std::{
    collections::{BTreeMap, HashSet},
    fmt::Write as _,
    io::Write as _,
    process::{Command, Stdio},
};

use anyhow::{anyhow, bail, ensure, Context, Result};
use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest, metrics::v1::metric::Data,
};
use prost::Message as _;
use telegen_exporter::config::Config;

use super::{SwitchRun, Tally, ENCODES, SHAPE};
use crate::common::{dist_ms, met};

/// What a fleet run measured.
pub struct Measured<'a> {
    pub switches: u32,
    pub intervals: u32,
    pub cfg: &'a Config,
    pub runs: &'a [SwitchRun],
    pub tally: &'a Tally,
    /// Bytes on the simulated exporters' connections: sent, received.
    pub wire: (u64, u64),
    /// CPU time of this process and of this thread over the run, µs.
    pub cpu: (f64, f64),
    /// From the first export due to the last answered, s.
    pub wall: f64,
    /// prost encode_to_vec of the newest request, µs.
    pub encode_us: f64,
    /// Samples in the exporter's /metrics text of one switch.
    pub prom_series: usize,
}

/// (metric, data points) of a request; its distinct (metric, attribute set).
fn by_metric(r: &ExportMetricsServiceRequest) -> (Vec<String>, usize) {
    let mut distinct = HashSet::new();
    let mut per_metric = BTreeMap::new();
    let metrics = r.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics);
    for m in metrics.flat_map(|sm| &sm.metrics) {
        let attrs: Vec<String> = match &m.data {
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .map(|p| format!("{:?}", p.attributes))
                .collect(),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| format!("{:?}", p.attributes))
                .collect(),
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .map(|p| format!("{:?}", p.attributes))
                .collect(),
            _ => vec![],
        };
        *per_metric.entry(m.name.clone()).or_insert(0) += attrs.len();
        distinct.extend(attrs.into_iter().map(|a| (m.name.clone(), a)));
    }
    let names = per_metric.iter().map(|(m, n)| format!("{m} {n}")).collect();
    (names, distinct.len())
}

/// How many bytes `prog args` makes of `data`.
fn compressed(prog: &str, args: &[&str], data: &[u8]) -> Result<usize> {
    let mut c = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {prog}"))?;
    let mut stdin = c.stdin.take().ok_or_else(|| anyhow!("{prog}: no stdin"))?;
    stdin.write_all(data)?;
    drop(stdin);
    let out = c.wait_with_output()?;
    ensure!(out.status.success(), "{prog} failed");
    Ok(out.stdout.len())
}

pub fn fleet_report(m: &Measured) -> Result<String> {
    let (cfg, t, switches) = (m.cfg, m.tally, m.switches);
    let sample = t
        .last
        .as_ref()
        .ok_or_else(|| anyhow!("no request arrived"))?;
    let encoded = sample.encode_to_vec();
    let pc = |b: usize| format!("{b} ({:.1} %)", 100.0 * b as f64 / encoded.len() as f64);
    let gzip = compressed("gzip", &["-c", "-6"], &encoded).map_or_else(|e| e.to_string(), pc);
    let zstd = compressed("zstd", &["-c", "-3", "-q"], &encoded).map_or_else(|e| e.to_string(), pc);
    let failed: Vec<&String> = m.runs.iter().flat_map(|r| &r.failed).collect();
    let mut lat: [Vec<f64>; 2] = [vec![], vec![]];
    for &(first, ms) in m.runs.iter().flat_map(|r| &r.latencies) {
        lat[usize::from(first)].push(ms);
    }
    lat.iter_mut().for_each(|v| v.sort_by(f64::total_cmp));
    let ok = lat[0].len() + lat[1].len();
    let exports = (ok + failed.len()).max(1) as f64;
    let build_us = m.runs.iter().map(|r| r.build_us).sum::<f64>() / exports;
    let secs = f64::from(m.intervals) * cfg.interval.as_secs_f64();
    let req = t.requests.max(1) as f64;
    let (bytes_s, wire_s) = (t.bytes as f64 / secs, m.wire.0 as f64 / secs);
    let points_s = t.points as f64 / secs;
    let (per_metric, distinct) = by_metric(sample);
    let per_switch = f64::from(switches);

    let mut s = String::new();
    writeln!(
        s,
        "{switches} simulated exporters in this process, one per switch, each with its own tonic channel (its \
         own TCP and HTTP/2 connection, as separate machines have), send to one OTLP/gRPC receiver on \
         127.0.0.1 (the tests' `Receiver`, opentelemetry-proto's tonic server, here keeping nothing: each \
         request is tallied and dropped) every {:?} (the exporter's default interval) for {} intervals, the first \
         exports spread uniformly across the interval, each switch on fixed ticks after that. An export is \
         export.rs's `export_once`: a synthetic snapshot ({}: {} counter series, every protocol class, 9 \
         histogram buckets, every error and tunnel counter; growing at every export, differently per switch) \
         through `series::collect` (grace {:?}), `otlp::kernel_metrics`, `otlp::self_metrics` and \
         `otlp::request` with the exporter's `resource::build()` but host.name = switch-0000 ...; cumulative \
         temporality, no compression (the exporter has none), timeout {:?}, no retry. The exporters share \
         this thread (a current-thread runtime); the receiver has 2 threads of its own.\n",
        cfg.interval, m.intervals, SHAPE.label(), SHAPE.series(), cfg.finished_grace, cfg.timeout
    )?;
    writeln!(s, "### Per switch\n")?;
    writeln!(
        s,
        "| one request (one per switch per {:?}) | |\n|---|---:|",
        cfg.interval
    )?;
    let (pr, br) = (t.points_range, t.bytes_range);
    let rows = [
        ("counter series in the snapshot".into(), SHAPE.series().to_string()),
        (
            format!("OTLP data points ({})", per_metric.join(", ")),
            if pr.0 == pr.1 {
                pr.0.to_string()
            } else {
                format!("{}-{} (a first export has no last_success)", pr.0, pr.1)
            },
        ),
        ("distinct (metric, attribute set)".into(), distinct.to_string()),
        (
            "Prometheus series of the same counters (the exporter's /metrics text: a histogram is 9 `le` \
             buckets, sum and count)"
                .into(),
            m.prom_series.to_string(),
        ),
        (
            "protobuf bytes at the receiver (prost encoded_len), mean (min-max)".into(),
            format!("{:.0} ({}-{})", t.bytes as f64 / req, br.0, br.1),
        ),
        (
            "bytes on the wire to the receiver (HTTP/2 and gRPC framing, headers, connection set-up; no \
             TCP/IP headers)"
                .into(),
            format!("{:.0}", m.wire.0 as f64 / req),
        ),
        ("bytes on the wire back (answers, HTTP/2 window updates)".into(), format!("{:.0}", m.wire.1 as f64 / req)),
        ("the newest request compressed, as it is not sent: gzip -6".into(), gzip),
        ("the same, zstd -3".into(), zstd),
        (
            "exporter CPU to build it (collect, kernel_metrics, self_metrics, request; thread CPU clock)".into(),
            format!("{build_us:.0} µs"),
        ),
        (
            format!("exporter CPU to encode it (prost encode_to_vec of the newest request, {ENCODES} times after the run)"),
            format!("{:.0} µs", m.encode_us),
        ),
    ];
    for (k, v) in rows {
        writeln!(s, "| {k} | {v} |")?;
    }
    writeln!(s, "\n### The fleet at the receiver\n")?;
    writeln!(
        s,
        "Rates: what the receiver got over the {} scheduled intervals ({secs:.0} s; the last answer came {:.1} s \
         after the first export was due). Latency: from the call to its answer, as the simulated exporter saw \
         it; a switch's first export includes its TCP and HTTP/2 set-up. CPU per export: this process's CPU \
         clock over the run, all of it (synthetic snapshots, exporters, receiver, tally), this thread's \
         (the {switches} exporters with their snapshots, build, encoding and HTTP/2) and the rest (the \
         receiver's threads: HTTP/2, decoding, the tally). MB = 10^6 bytes.\n",
        m.intervals, m.wall
    )?;
    writeln!(
        s,
        "| switches | exports ok | failed | requests/s | protobuf MB/s | wire MB/s | data points/s | latency \
         p50 / p99 / max | first exports | CPU / export | exporters' thread | receiver's threads |"
    )?;
    writeln!(
        s,
        "|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"
    )?;
    let d = |v: &[f64]| {
        if v.is_empty() {
            "-".into()
        } else {
            dist_ms(v).replace(" |", " /")
        }
    };
    writeln!(
        s,
        "| {switches} | {ok} | {} | {:.1} | {:.2} | {:.2} | {points_s:.0} | {} | {} | {:.0} µs | {:.0} µs | {:.0} µs |",
        failed.len(),
        t.requests as f64 / secs,
        bytes_s / 1e6,
        wire_s / 1e6,
        d(&lat[0]),
        d(&lat[1]),
        m.cpu.0 / exports,
        m.cpu.1 / exports,
        (m.cpu.0 - m.cpu.1) / exports
    )?;
    writeln!(
        s,
        "\nSizing: at {:?} one switch sends {:.1} kB/s of protobuf ({:.1} kB/s on the wire) and {:.0} data \
         points/s, so a collector tier ingesting 10 MB/s on the wire serves {:.0} switches, and {switches} \
         switches need {:.1} MB/s, {:.0} requests/s and {points_s:.0} data points/s. This receiver took \
         them with {:.0} % of one core of this machine, but it only decodes: a collector's processing and \
         export cost more CPU per request.",
        cfg.interval,
        bytes_s / 1e3 / per_switch,
        wire_s / 1e3 / per_switch,
        points_s / per_switch,
        10e6 / (wire_s / per_switch),
        wire_s / 1e6,
        t.requests as f64 / secs,
        100.0 * (m.cpu.0 - m.cpu.1) / (m.wall * 1e6)
    )?;
    let grew = t.not_growing == 0 && t.hosts.len() == switches as usize;
    writeln!(
        s,
        "Every switch's counters grew from one export to its next: {} ({} hosts seen, {} requests without \
         growth).",
        met(grew),
        t.hosts.len(),
        t.not_growing
    )?;
    if let Some(e) = failed.first() {
        bail!(
            "{} of {exports} exports failed, first: {e}\n\n{s}",
            failed.len()
        );
    }
    ensure!(
        t.requests as usize == ok,
        "{ok} exports succeeded, the receiver got {}\n\n{s}",
        t.requests
    );
    ensure!(grew, "the counters did not grow per switch\n\n{s}");
    Ok(s)
}
