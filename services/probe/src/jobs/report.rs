//! Turning kernel counters into the API's results and counter snapshots.

use std::collections::HashMap;

use aya::maps::MapError;
use telegen_proto::v1 as pb;

use super::model::Job;
use super::Inner;
use crate::attach::DIR_NAMES;
use crate::maps::layout::{
    get_str, Counters, CLASS_NAMES, ERROR_NAMES, HIST_BOUNDS, HIST_BUCKETS, TUNNEL_NAMES,
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

pub fn results(inner: &Inner, job: &Job, endpoint: &str) -> Result<pb::Results, MapError> {
    let cc = job_counters(inner, job)?;
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
        top_flows: Vec::new(),
        errors: errors(inner)?,
        otel_export: Some(pb::OtelExport {
            exported: job.otlp_export,
            endpoint: endpoint.into(),
        }),
        flow_stats: None,
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
