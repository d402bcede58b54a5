//! Results and counter snapshots from the kernel's counters: totals, the
//! top flows (sorted, scaled by the sample rate), the flow table's health.

use super::ports::{
    CaptureFileStats, FlowSource, FlowTableRead, JobCounters, Kernel, KernelError, RawFlow,
};
use crate::domain::coverage::Coverage;
use crate::domain::limits::{CLASS_NAMES, HIST_BOUNDS, JOB_ERROR_NAMES};
use crate::domain::results::{CaptureResults, IfaceSeries, JobSeries};
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

/// Whether the kernel counted for `job` (not a job that attaches nothing
/// or never got attached: its slot's maps may hold an older job's).
fn counted(job: &Job) -> bool {
    job.mirror_mode.attaches() && job.attach_mode.is_some()
}

/// What the kernel counted for `job`.
pub(super) fn job_counters(
    kernel: Option<&dyn Kernel>,
    job: &Job,
) -> Result<JobCounters, KernelError> {
    match kernel {
        Some(k) if counted(job) => k.job_counters(job),
        _ => Ok(JobCounters::default()),
    }
}

/// `job`'s flow table, open (None: no flows job, or nothing counted).
pub(super) fn flow_table(
    kernel: Option<&dyn Kernel>,
    job: &Job,
) -> Result<Option<Box<dyn FlowSource>>, KernelError> {
    match kernel {
        Some(k) if counted(job) && job.flows_detail => k.flow_table(job),
        _ => Ok(None),
    }
}

/// The best `n` flows of `table` (walked off the async workers: a full
/// table is a million syscall pairs), how many it holds, its size.
pub(super) async fn read_flows(table: Box<dyn FlowSource>, n: usize) -> (Vec<RawFlow>, u64, u32) {
    let size = table.size();
    let walked = tokio::task::spawn_blocking(move || walk_flows(&*table, n)).await;
    let (top, held) = walked.unwrap_or_default();
    (top, held, size)
}

/// Which of two flows ranks first: more bytes, then more packets, then
/// by addresses and ports (a stable order for ties).
fn rank(a: &RawFlow, b: &RawFlow) -> std::cmp::Ordering {
    (b.bytes, b.packets)
        .cmp(&(a.bytes, a.packets))
        .then_with(|| (a.src, a.dst, a.sport, a.dport).cmp(&(b.src, b.dst, b.sport, b.dport)))
}

struct Ranked(RawFlow);

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        rank(&self.0, &o.0).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        rank(&self.0, &o.0)
    }
}

/// The best `n` flows of a table, best first, and how many entries it
/// holds (held at the job's end, for a kept table): one walk, holding no
/// more than `n + 1` flows.
pub(super) fn walk_flows(table: &dyn FlowSource, n: usize) -> (Vec<RawFlow>, u64) {
    let mut best = std::collections::BinaryHeap::with_capacity(n + 1);
    let mut count = 0u64;
    table.for_each(&mut |f| {
        count += 1;
        best.push(Ranked(f));
        if best.len() > n {
            best.pop(); // the worst
        }
    });
    let top = best.into_sorted_vec().into_iter().map(|r| r.0).collect();
    (top, table.kept_of().unwrap_or(count))
}

/// The top flows as results show them (scaled by the sample rate), and
/// how the table fared.
fn flows(job: &Job, read: FlowTableRead) -> (Vec<Flow>, Option<FlowStats>) {
    if !job.flows_detail {
        return (Vec::new(), None);
    }
    let size = read.table_size.unwrap_or(job.flow_table_size);
    let rate = u64::from(job.sample_rate.max(1));
    let estimated = rate > 1;
    let stats = FlowStats {
        sample_rate: job.sample_rate,
        estimated,
        table_size: size,
        table_entries: read.table_entries,
        flows_seen: read.flows_seen,
        evictions: read.flows_seen.saturating_sub(read.table_entries),
        sampled_packets: read.sampled_packets,
        update_failures: read.update_failures,
    };
    let top = read
        .entries
        .into_iter()
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

/// A job's results from its counters (`c.flows` with the top flows read).
pub(super) fn results(
    job: &Job,
    c: JobCounters,
    file: Option<CaptureFileStats>,
    endpoint: &str,
    now_ns: u64,
) -> Results {
    let (top_flows, flow_stats) = flows(job, c.flows);
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
    let capture = job.capture.map(|spec| {
        let k = c.capture.unwrap_or_default();
        let f = file.unwrap_or_default();
        CaptureResults {
            spec,
            packets: f.packets,
            bytes: f.bytes,
            ring_full: k.ring_full,
            rate_limited: k.rate_limited,
            cap_reached: k.cap_reached,
            copy_failed: k.copy_failed,
            spool_dropped: f.spool_dropped,
            file_bytes: f.file_bytes,
        }
    });
    let coverage = Coverage::of(
        job,
        c.coverage,
        flow_stats
            .as_ref()
            .map_or((0, 0), |f| (f.evictions, f.update_failures)),
        capture.as_ref().map_or(0, |c| {
            c.ring_full + c.rate_limited + c.cap_reached + c.copy_failed + c.spool_dropped
        }),
    );
    Results {
        job: job.clone(),
        window_sec: end.saturating_sub(job.started_ns) as f64 / 1e9,
        by_class,
        total,
        hist_bounds: HIST_BOUNDS.to_vec(),
        top_flows,
        flow_stats,
        errors,
        filter_rejected: (!job.filter.is_empty()).then_some(c.filter_rejected),
        capture,
        coverage,
        otlp_endpoint: endpoint.into(),
    }
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

    struct Table(Vec<RawFlow>, Option<u64>);

    impl FlowSource for Table {
        fn size(&self) -> u32 {
            64
        }
        fn kept_of(&self) -> Option<u64> {
            self.1
        }
        fn for_each(&self, f: &mut dyn FnMut(RawFlow)) {
            self.0.iter().cloned().for_each(f)
        }
    }

    #[test]
    fn top_flows_are_sorted_scaled_and_counted() {
        let mut job = crate::jobs::fakes::job_template();
        job.flows_detail = true;
        job.sample_rate = 10;
        job.flow_table_size = 64;
        let table = Table(vec![raw(1, 1, 100), raw(2, 3, 300), raw(3, 2, 300)], None);
        let (entries, held) = walk_flows(&table, 2);
        assert_eq!(held, 3);
        let read = FlowTableRead {
            table_size: Some(64),
            entries,
            table_entries: held,
            flows_seen: 5,
            sampled_packets: 6,
            update_failures: 0,
        };
        let (top, stats) = flows(&job, read);
        assert_eq!(
            top.iter().map(|f| (f.sport, f.bytes)).collect::<Vec<_>>(),
            vec![(2, 3000), (3, 3000)]
        );
        assert!(top.iter().all(|f| f.estimated));
        let stats = stats.unwrap();
        assert_eq!((stats.table_entries, stats.evictions), (3, 2));
        // A kept table says what the job's table held at its end.
        assert_eq!(walk_flows(&Table(vec![raw(1, 1, 1)], Some(40)), 10).1, 40);
        assert_eq!(walk_flows(&table, 0).0, vec![]);
        job.flows_detail = false;
        assert_eq!(flows(&job, FlowTableRead::default()), (vec![], None));
    }
}
