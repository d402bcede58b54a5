//! The series one export carries, taken from a probe snapshot: the single
//! source both the OTLP request and the Prometheus text are rendered from, so
//! the two always agree.

use std::time::Duration;

use telegen_proto::v1::{self as pb, CounterSnapshot};

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attr::Str(s) => f.write_str(s),
            Attr::Int(i) => write!(f, "{i}"),
        }
    }
}

/// One counter series: packets, bytes and the size histogram of one protocol
/// class of one owner (everything, an interface, a job).
#[derive(Debug, Clone)]
pub struct Point {
    /// OTLP attribute names (`job.id` style); Prometheus renders `_` for `.`.
    pub attrs: Vec<(&'static str, Attr)>,
    /// Fixed for the life of the counter; a new value means it was reset.
    pub start_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Non-cumulative bucket counts, one more than the bounds (+Inf last).
    pub hist: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub time_ns: u64,
    pub bounds: Vec<u64>,
    pub points: Vec<Point>,
    /// Error counters (reason, count) since the pins' epoch.
    pub errors: Vec<(String, u64)>,
    /// Tunnelled packets (how they were counted, count) since the epoch.
    pub tunnel: Vec<(String, u64)>,
    pub errors_start_ns: u64,
}

/// Which finished jobs are still exported: a job that ended keeps its series
/// for a grace period after it stopped, so its final counts reach the
/// backend, then drops out (bounded cardinality).
#[derive(Debug)]
pub struct JobGrace {
    grace_ns: u64,
}

impl JobGrace {
    pub fn new(grace: Duration) -> Self {
        JobGrace {
            grace_ns: grace.as_nanos().min(u128::from(u64::MAX)) as u64,
        }
    }

    fn keep(&self, job: &pb::JobSeries, now_ns: u64) -> bool {
        if !job.otlp_export {
            return false;
        }
        if matches!(job.status.as_str(), "starting" | "running" | "stopping") {
            return true;
        }
        // A finished job without a stop time (failed before it started)
        // counted nothing worth keeping.
        job.stopped_time_unix_nano != 0
            && now_ns.saturating_sub(job.stopped_time_unix_nano) <= self.grace_ns
    }
}

fn push_series(
    out: &mut Vec<Point>,
    base: &[(&'static str, Attr)],
    start_ns: u64,
    series: &[pb::Series],
) {
    for s in series {
        let c = s.counters.clone().unwrap_or_default();
        let mut attrs = vec![("proto", Attr::Str(s.proto.clone()))];
        attrs.extend_from_slice(base);
        out.push(Point {
            attrs,
            start_ns,
            packets: c.packets,
            bytes: c.bytes,
            hist: c.hist,
        });
    }
}

pub fn collect(snap: &CounterSnapshot, grace: &JobGrace) -> Collected {
    // The snapshot's own clock: the probe's, not this process's.
    let now = snap.time_unix_nano;
    let mut points = Vec::new();
    push_series(&mut points, &[], snap.start_time_unix_nano, &snap.global);
    for i in &snap.interfaces {
        let base = [
            ("ifindex", Attr::Int(i64::from(i.ifindex))),
            ("interface", Attr::Str(i.interface.clone())),
            ("direction", Attr::Str(i.direction.clone())),
        ];
        push_series(&mut points, &base, i.start_time_unix_nano, &i.series);
    }
    for j in &snap.jobs {
        if !grace.keep(j, now) {
            continue;
        }
        let base = [
            ("job.id", Attr::Str(j.job_id.clone())),
            ("interface", Attr::Str(j.interface.clone())),
            ("direction", Attr::Str(j.direction.clone())),
        ];
        push_series(&mut points, &base, j.start_time_unix_nano, &j.series);
    }
    let sorted = |m: &std::collections::HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort();
        v
    };
    Collected {
        time_ns: snap.time_unix_nano,
        bounds: snap.hist_bounds.clone(),
        points,
        errors: sorted(&snap.errors),
        tunnel: sorted(&snap.tunnel),
        errors_start_ns: snap.start_time_unix_nano,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn counters(packets: u64, bytes: u64) -> pb::Counters {
        let mut hist = vec![0; 9];
        hist[1] = packets;
        pb::Counters {
            packets,
            bytes,
            hist,
        }
    }

    pub fn snapshot() -> CounterSnapshot {
        let series = |p| {
            vec![
                pb::Series {
                    proto: "ipv4".into(),
                    counters: Some(counters(p, p * 100)),
                },
                pb::Series {
                    proto: "other".into(),
                    counters: Some(counters(1, 60)),
                },
            ]
        };
        let job = |id: &str, status: &str, export| pb::JobSeries {
            job_id: id.into(),
            interface: "eth0".into(),
            direction: "ingress".into(),
            status: status.into(),
            otlp_export: export,
            start_time_unix_nano: 2_000,
            stopped_time_unix_nano: if status == "stopped" { 5_000 } else { 0 },
            series: series(3),
        };
        CounterSnapshot {
            time_unix_nano: 9_000,
            start_time_unix_nano: 1_000,
            global: series(10),
            interfaces: vec![pb::InterfaceSeries {
                ifindex: 7,
                interface: "eth0".into(),
                direction: "ingress".into(),
                start_time_unix_nano: 1_500,
                series: series(5),
            }],
            jobs: vec![
                job("a", "running", true),
                job("b", "running", false),
                job("c", "stopped", true),
            ],
            errors: [("truncated".to_string(), 2)].into_iter().collect(),
            tunnel: [("erspan2".to_string(), 4)].into_iter().collect(),
            hist_bounds: vec![64, 128, 256, 512, 1024, 1518, 4096, 9216],
        }
    }

    #[test]
    fn series_per_owner_and_class_with_fixed_start_times() {
        let g = JobGrace::new(Duration::from_secs(60));
        let c = collect(&snapshot(), &g);
        // global 2 + interface 2 + jobs a and c (b opted out) 2 each.
        assert_eq!(c.points.len(), 8);
        let job_a: Vec<_> = c
            .points
            .iter()
            .filter(|p| p.attrs.contains(&("job.id", Attr::Str("a".into()))))
            .collect();
        assert_eq!(job_a.len(), 2);
        assert_eq!(job_a[0].start_ns, 2_000);
        assert_eq!(job_a[0].packets, 3);
        let iface = c
            .points
            .iter()
            .find(|p| p.attrs.contains(&("ifindex", Attr::Int(7))))
            .unwrap();
        assert_eq!(iface.start_ns, 1_500);
        assert_eq!(c.errors, vec![("truncated".to_string(), 2)]);
    }

    #[test]
    fn finished_jobs_drop_out_after_the_grace() {
        let has_c = |c: &Collected| {
            c.points
                .iter()
                .any(|p| p.attrs.contains(&("job.id", Attr::Str("c".into()))))
        };
        // Job c stopped at 5_000; the snapshot is at 9_000.
        let g = JobGrace::new(Duration::from_nanos(4_000));
        assert!(has_c(&collect(&snapshot(), &g)));
        let g = JobGrace::new(Duration::from_nanos(3_999));
        assert!(!has_c(&collect(&snapshot(), &g)));
    }
}
