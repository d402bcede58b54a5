//! Turning kernel counters into the API's results and counter snapshots.

use std::collections::HashMap;

use aya::maps::MapError;
use telegen_proto::v1 as pb;

use super::model::Job;
use super::Inner;
use crate::attach::DIR_NAMES;
use crate::filters::words_ip;
use crate::maps::layout::{
    get_str, job_error_name, Counters, FlowKey, JobAux, CLASS_NAMES, ERROR_NAMES, HIST_BOUNDS,
    HIST_BUCKETS, TUNNEL_NAMES,
};
use crate::maps::ClassCounters;
use crate::timefmt::now_ns;

fn counters(c: &Counters) -> pb::Counters {
    pb::Counters {
        packets: c.packets,
        bytes: c.bytes,
        hist: c.hist.to_vec(),
    }
}

fn series(cc: &ClassCounters) -> Vec<pb::Series> {
    cc.iter()
        .zip(CLASS_NAMES)
        .map(|(c, name)| pb::Series {
            proto: name.into(),
            counters: Some(counters(c)),
        })
        .collect()
}

fn errors(inner: &Inner) -> Result<HashMap<String, u64>, MapError> {
    let Some(dp) = inner.dp.as_ref() else {
        return Ok(HashMap::new());
    };
    let raw = dp.maps.errors()?;
    Ok(ERROR_NAMES
        .iter()
        .zip(raw)
        .map(|(n, v)| (n.to_string(), v))
        .collect())
}

/// Counters of one job, since it started (zero for a job that attaches nothing).
fn job_counters(inner: &Inner, job: &Job) -> Result<ClassCounters, MapError> {
    match inner.dp.as_ref() {
        Some(dp) if job.mirror_mode.attaches() && job.attach_mode.is_some() => {
            dp.maps.job_counters(job.slot)
        }
        _ => Ok(ClassCounters::default()),
    }
}

/// The per-job error counters a result shows: the parse errors (the other
/// enum telegen_err entries are about the agent's maps, not packets).
const JOB_ERRORS_SHOWN: [usize; 5] = [0, 1, 6, 7, 8];

fn job_aux(inner: &Inner, job: &Job) -> Result<JobAux, MapError> {
    match inner.dp.as_ref() {
        Some(dp) if job.mirror_mode.attaches() && job.attach_mode.is_some() => {
            dp.maps.job_aux(job.slot)
        }
        _ => Ok(JobAux::default()),
    }
}

fn addr(family: u8, words: &[u32; 4]) -> std::net::IpAddr {
    // The classifier keys only IPv4 and IPv6 packets.
    words_ip(family, words).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
}

/// `src:port->dst:port/PROTO`, IPv6 addresses in brackets.
fn flow(k: &FlowKey, pkts: u64, bytes: u64, estimated: bool) -> pb::Flow {
    let (src, dst) = (addr(k.family, &k.src), addr(k.family, &k.dst));
    let protocol = crate::filters::proto_name(k.proto).to_ascii_uppercase();
    let end = |a: std::net::IpAddr, port: u16| match a {
        std::net::IpAddr::V6(_) => format!("[{a}]:{port}"),
        std::net::IpAddr::V4(_) => format!("{a}:{port}"),
    };
    pb::Flow {
        five_tuple: format!("{}->{}/{protocol}", end(src, k.sport), end(dst, k.dport)),
        pkts,
        bytes,
        estimated,
        src_addr: src.to_string(),
        src_port: k.sport.into(),
        dst_addr: dst.to_string(),
        dst_port: k.dport.into(),
        protocol,
    }
}

/// The job's top `top` flows by bytes (scaled by the sample rate) and how
/// its flow table fared.
fn flows(
    inner: &Inner,
    job: &Job,
    aux: &JobAux,
    top: usize,
) -> Result<(Vec<pb::Flow>, Option<pb::FlowStats>), MapError> {
    if !job.flows_detail {
        return Ok((Vec::new(), None));
    }
    let table = match inner.dp.as_ref() {
        Some(dp) if job.attach_mode.is_some() => dp.maps.flow_table(job.slot)?,
        _ => None,
    };
    let (size, mut entries) = match table {
        Some(t) => (t.size, t.flows),
        None => (job.flow_table_size, Vec::new()),
    };
    let rate = u64::from(job.sample_rate.max(1));
    let estimated = rate > 1;
    entries.sort_by(|a, b| {
        (b.1.bytes, b.1.packets)
            .cmp(&(a.1.bytes, a.1.packets))
            .then_with(|| {
                (a.0.src, a.0.dst, a.0.sport, a.0.dport)
                    .cmp(&(b.0.src, b.0.dst, b.0.sport, b.0.dport))
            })
    });
    let stats = pb::FlowStats {
        sample_rate: job.sample_rate,
        sampling: if estimated {
            format!("1 in {rate} packets on average: a per-CPU countdown restarted at a random gap in [1, {}]; flow packets and bytes are scaled by {rate}", 2 * rate - 1)
        } else {
            "every packet".into()
        },
        estimated,
        table_size: size,
        table_entries: entries.len() as u64,
        flows_seen: aux.flows_new,
        evictions: aux.flows_new.saturating_sub(entries.len() as u64),
        sampled_packets: aux.sampled,
        update_failures: aux.flow_fail,
    };
    let top = entries
        .iter()
        .take(top)
        .map(|(k, v)| flow(k, v.packets * rate, v.bytes * rate, estimated))
        .collect();
    Ok((top, Some(stats)))
}

pub fn results(
    inner: &Inner,
    job: &Job,
    endpoint: &str,
    top: usize,
) -> Result<pb::Results, MapError> {
    let cc = job_counters(inner, job)?;
    let aux = job_aux(inner, job)?;
    let (top_flows, flow_stats) = flows(inner, job, &aux, top)?;
    let mut total = Counters::default();
    cc.iter().for_each(|c| total.add(c));
    let end = job.stopped_ns.unwrap_or_else(now_ns);
    Ok(pb::Results {
        job_id: job.id.to_string(),
        status: job.state.as_str().into(),
        window_sec: end.saturating_sub(job.started_ns) as f64 / 1e9,
        packets_total: total.packets,
        bytes_total: total.bytes,
        by_proto: cc
            .iter()
            .zip(CLASS_NAMES)
            .map(|(c, n)| (n.to_string(), counters(c)))
            .collect(),
        size_histogram: Some(pb::Histogram {
            bounds: HIST_BOUNDS.to_vec(),
            counts: total.hist.to_vec(),
        }),
        top_flows,
        errors: JOB_ERRORS_SHOWN
            .iter()
            .map(|&i| (job_error_name(i).to_string(), aux.err[i]))
            .collect(),
        otel_export: Some(pb::OtelExport {
            exported: job.otlp_export,
            endpoint: endpoint.into(),
        }),
        flow_stats,
    })
}

pub fn snapshot(inner: &Inner) -> Result<pb::CounterSnapshot, MapError> {
    let mut snap = pb::CounterSnapshot {
        time_unix_nano: now_ns(),
        hist_bounds: HIST_BOUNDS.to_vec(),
        ..Default::default()
    };
    let Some(dp) = inner.dp.as_ref() else {
        snap.global = series(&ClassCounters::default());
        return Ok(snap);
    };
    snap.start_time_unix_nano = dp.epoch_ns;
    snap.global = series(&dp.maps.global()?);
    for (slot, rec) in inner.ifaces.iter().enumerate().filter(|(_, r)| r.used != 0) {
        let dirs: Vec<&str> = (0..2)
            .filter(|&d| rec.hook[d].attached != 0)
            .map(|d| DIR_NAMES[d])
            .collect();
        snap.interfaces.push(pb::InterfaceSeries {
            ifindex: rec.ifindex,
            interface: get_str(&rec.name),
            direction: if dirs.len() == 2 {
                "both".into()
            } else {
                dirs.concat()
            },
            start_time_unix_nano: rec.start_unix_ns,
            series: series(&dp.maps.iface_counters(slot as u32)?),
        });
    }
    let mut jobs: Vec<&Job> = inner.jobs.iter().flatten().collect();
    jobs.sort_by_key(|j| j.seq);
    for job in jobs {
        snap.jobs.push(pb::JobSeries {
            job_id: job.id.to_string(),
            interface: job.iface.clone(),
            direction: job.direction.as_str().into(),
            status: job.state.as_str().into(),
            otlp_export: job.otlp_export,
            start_time_unix_nano: job.started_ns,
            stopped_time_unix_nano: job.stopped_ns.unwrap_or(0),
            series: series(&job_counters(inner, job)?),
        });
    }
    snap.errors = errors(inner)?;
    snap.tunnel = TUNNEL_NAMES
        .iter()
        .zip(dp.maps.tunnel()?)
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    debug_assert_eq!(HIST_BUCKETS, HIST_BOUNDS.len() + 1);
    Ok(snap)
}
