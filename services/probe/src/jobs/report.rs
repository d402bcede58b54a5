//! Results and counter snapshots from the kernel's counters: totals, the
//! top flows (sorted, scaled by the sample rate), the flow table's health.

use super::ports::{FlowTableRead, JobCounters, Kernel, KernelError};
use crate::domain::limits::{CLASS_NAMES, HIST_BOUNDS, JOB_ERROR_NAMES};
use crate::domain::results::{IfaceSeries, JobSeries};
use crate::domain::{ClassCounts, Flow, FlowStats, Job, Results, Snapshot};

/// Counts per class with their names; zero counts without a datapath.
fn named(classes: Vec<ClassCounts>) -> Vec<(&'static str, ClassCounts)> {
    let mut classes = classes.into_iter();
    CLASS_NAMES
        .iter()
        .map(|n| {
            (
                *n,
                classes.next().unwrap_or_else(|| ClassCounts {
                    hist: vec![0; HIST_BOUNDS.len() + 1],
                    ..Default::default()
                }),
            )
        })
        .collect()
}

/// What the kernel counted for `job` (nothing for a job that attaches
/// nothing or never got attached).
fn job_counters(kernel: Option<&dyn Kernel>, job: &Job) -> Result<JobCounters, KernelError> {
    match kernel {
        Some(k) if job.mirror_mode.attaches() && job.attach_mode.is_some() => k.job_counters(job),
        _ => Ok(JobCounters::default()),
    }
}

/// The top `top` flows by bytes (ties: by packets, then by addresses and
/// ports), scaled by the sample rate, and how the table fared.
fn flows(job: &Job, read: FlowTableRead, top: usize) -> (Vec<Flow>, Option<FlowStats>) {
    if !job.flows_detail {
        return (Vec::new(), None);
    }
    let size = read.table_size.unwrap_or(job.flow_table_size);
    let mut entries = read.entries;
    let rate = u64::from(job.sample_rate.max(1));
    let estimated = rate > 1;
    entries.sort_by(|a, b| {
        (b.bytes, b.packets)
            .cmp(&(a.bytes, a.packets))
            .then_with(|| (a.src, a.dst, a.sport, a.dport).cmp(&(b.src, b.dst, b.sport, b.dport)))
    });
    let stats = FlowStats {
        sample_rate: job.sample_rate,
        estimated,
        table_size: size,
        table_entries: entries.len() as u64,
        flows_seen: read.flows_seen,
        evictions: read.flows_seen.saturating_sub(entries.len() as u64),
        sampled_packets: read.sampled_packets,
        update_failures: read.update_failures,
    };
    let top = entries
        .into_iter()
        .take(top)
        .map(|f| Flow {
            src: f.src,
            dst: f.dst,
            sport: f.sport,
            dport: f.dport,
            proto: f.proto,
            packets: f.packets * rate,
            bytes: f.bytes * rate,
            estimated,
        })
        .collect();
    (top, Some(stats))
}

pub(super) fn results(
    kernel: Option<&dyn Kernel>,
    job: &Job,
    endpoint: &str,
    top: usize,
    now_ns: u64,
) -> Result<Results, KernelError> {
    let c = job_counters(kernel, job)?;
    let (top_flows, flow_stats) = flows(job, c.flows, top);
    let by_class = named(c.classes);
    let mut total = ClassCounts {
        hist: vec![0; HIST_BOUNDS.len() + 1],
        ..Default::default()
    };
    by_class.iter().for_each(|(_, c)| total.add(c));
    let end = job.stopped_ns.unwrap_or(now_ns);
    let errors = if c.errors.is_empty() {
        JOB_ERROR_NAMES.iter().map(|name| (*name, 0)).collect()
    } else {
        c.errors
    };
    Ok(Results {
        job: job.clone(),
        window_sec: end.saturating_sub(job.started_ns) as f64 / 1e9,
        by_class,
        total,
        hist_bounds: HIST_BOUNDS.to_vec(),
        top_flows,
        flow_stats,
        errors,
        otlp_endpoint: endpoint.into(),
    })
}

pub(super) fn snapshot(
    kernel: Option<&dyn Kernel>,
    jobs: &[&Job],
    now_ns: u64,
) -> Result<Snapshot, KernelError> {
    let mut snap = Snapshot {
        time_ns: now_ns,
        start_ns: 0,
        global: named(Vec::new()),
        interfaces: Vec::new(),
        jobs: Vec::new(),
        errors: Vec::new(),
        tunnel: Vec::new(),
        hist_bounds: HIST_BOUNDS.to_vec(),
    };
    let Some(k) = kernel else {
        return Ok(snap);
    };
    let kc = k.counters()?;
    snap.start_ns = kc.epoch_ns;
    snap.global = named(kc.global);
    snap.interfaces = kc
        .interfaces
        .into_iter()
        .map(|i| IfaceSeries {
            ifindex: i.ifindex,
            name: i.name,
            direction: i.hooks,
            start_ns: i.start_ns,
            by_class: named(i.classes),
        })
        .collect();
    for job in jobs {
        snap.jobs.push(JobSeries {
            job: (*job).clone(),
            by_class: named(job_counters(kernel, job)?.classes),
        });
    }
    snap.errors = kc.errors;
    snap.tunnel = kc.tunnel;
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::ports::RawFlow;

    fn raw(sport: u16, packets: u64, bytes: u64) -> RawFlow {
        RawFlow {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            sport,
            dport: 9,
            proto: 17,
            packets,
            bytes,
        }
    }

    #[test]
    fn top_flows_are_sorted_scaled_and_counted() {
        let mut job = crate::jobs::fakes::job_template();
        job.flows_detail = true;
        job.sample_rate = 10;
        job.flow_table_size = 64;
        let read = FlowTableRead {
            table_size: Some(64),
            entries: vec![raw(1, 1, 100), raw(2, 3, 300), raw(3, 2, 300)],
            flows_seen: 5,
            sampled_packets: 6,
            update_failures: 0,
        };
        let (top, stats) = flows(&job, read, 2);
        assert_eq!(
            top.iter().map(|f| (f.sport, f.bytes)).collect::<Vec<_>>(),
            vec![(2, 3000), (3, 3000)]
        );
        assert!(top.iter().all(|f| f.estimated));
        let stats = stats.unwrap();
        assert_eq!((stats.table_entries, stats.evictions), (3, 2));
        job.flows_detail = false;
        assert_eq!(flows(&job, FlowTableRead::default(), 2), (vec![], None));
    }
}
