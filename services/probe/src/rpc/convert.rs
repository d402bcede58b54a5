//! protobuf <-> domain, and the core's errors as gRPC status codes.

use telegen_proto::v1 as pb;
use tonic::Status;

use crate::domain::capture::{CaptureRequest, CaptureSpec};
use crate::domain::results::{CaptureResults, IfaceSeries, JobSeries};
use crate::domain::{
    ClassCounts, FilterSpec, Flow, FlowStats, Job, Results, Snapshot, StartRequest,
};
use crate::jobs::JobError;
use crate::timefmt::rfc3339;

impl From<JobError> for Status {
    fn from(e: JobError) -> Status {
        let msg = e.to_string();
        match e {
            JobError::Invalid(_) => Status::invalid_argument(msg),
            JobError::NotFound(_) => Status::not_found(msg),
            JobError::Denied(_) => Status::permission_denied(msg),
            JobError::Capacity(_)
            | JobError::FlowCapacity { .. }
            | JobError::SpoolCapacity { .. } => Status::resource_exhausted(msg),
            JobError::Precondition(_) => Status::failed_precondition(msg),
            JobError::Unavailable(_) => Status::unavailable(msg),
            JobError::Lookup(_) | JobError::NoSlot | JobError::Kernel(_) => Status::internal(msg),
        }
    }
}

pub fn filter_spec(f: pb::Filters) -> FilterSpec {
    FilterSpec {
        ip_proto: f.ip_proto,
        l4_sport: f.l4_sport,
        l4_dport: f.l4_dport,
        src_cidr: f.src_cidr,
        dst_cidr: f.dst_cidr,
        dscp: f.dscp,
        vlan: f.vlan,
    }
}

fn filters(f: FilterSpec) -> pb::Filters {
    pb::Filters {
        ip_proto: f.ip_proto,
        l4_sport: f.l4_sport,
        l4_dport: f.l4_dport,
        src_cidr: f.src_cidr,
        dst_cidr: f.dst_cidr,
        dscp: f.dscp,
        vlan: f.vlan,
    }
}

pub fn start_request(r: pb::StartJobRequest) -> StartRequest {
    StartRequest {
        port: r.port,
        direction: r.direction,
        duration_sec: r.duration_sec,
        mirror_mode: r.mirror_mode,
        otlp_export: r.otlp_export,
        result_detail: r.result_detail,
        sample_rate: r.sample_rate,
        filters: r.filters.map(filter_spec),
        capture: r.capture.map(|c| CaptureRequest {
            snaplen: c.snaplen,
            max_packets: c.max_packets,
            max_bytes: c.max_bytes,
            max_pps: c.max_pps,
            frame: c.frame,
        }),
    }
}

fn capture_options(c: &CaptureSpec) -> pb::CaptureOptions {
    pb::CaptureOptions {
        snaplen: Some(c.snaplen),
        max_packets: Some(c.max_packets),
        max_bytes: Some(c.max_bytes),
        max_pps: Some(c.max_pps),
        frame: c.frame().into(),
    }
}

fn capture_stats(c: &CaptureResults) -> pb::CaptureStats {
    pb::CaptureStats {
        snaplen: c.spec.snaplen,
        frame: c.spec.frame().into(),
        packets: c.packets,
        bytes: c.bytes,
        ring_full: c.ring_full,
        rate_limited: c.rate_limited,
        cap_reached: c.cap_reached,
        spool_dropped: c.spool_dropped,
        max_packets: c.spec.max_packets,
        max_bytes: c.spec.max_bytes,
        max_pps: c.spec.max_pps,
        file_bytes: c.file_bytes,
        copy_failed: c.copy_failed,
    }
}

pub fn job(j: &Job) -> pb::Job {
    pb::Job {
        job_id: j.id.to_string(),
        status: j.state.as_str().into(),
        port: j.port.clone(),
        direction: j.direction.as_str().into(),
        interface: j.iface.clone(),
        mirror_mode: j.mirror_mode.as_str().into(),
        attach_mode: j
            .attach_mode
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
        started_at: rfc3339(j.started_ns),
        expires_at: j.expires_ns.map(rfc3339).unwrap_or_default(),
        stopped_at: j.stopped_ns.map(rfc3339).unwrap_or_default(),
        error: j.error.clone().unwrap_or_default(),
        duration_sec: j.duration_sec,
        ifindex: j.ifindex,
        fallback_reason: j.fallback.clone().unwrap_or_default(),
        otlp_export: j.otlp_export,
        result_detail: match (j.flows_detail, j.capture.is_some()) {
            (_, true) => "pcaplike",
            (true, _) => "flows",
            _ => "summary",
        }
        .into(),
        capture: j.capture.as_ref().map(capture_options),
        sample_rate: j.sample_rate,
        filters: (!j.filter.is_empty()).then(|| filters(j.filter.to_spec())),
        flow_table_size: j.flow_table_size,
        pending: j.pending.clone().unwrap_or_default(),
        mirror_scope: j
            .mirror_scope
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        mirror_scope_reason: j
            .mirror_scope
            .as_ref()
            .map(|s| s.reason().to_string())
            .unwrap_or_default(),
    }
}

fn counters(c: &ClassCounts) -> pb::Counters {
    pb::Counters {
        packets: c.packets,
        bytes: c.bytes,
        hist: c.hist.clone(),
    }
}

fn series(by_class: &[(&'static str, ClassCounts)]) -> Vec<pb::Series> {
    by_class
        .iter()
        .map(|(name, c)| pb::Series {
            proto: (*name).into(),
            counters: Some(counters(c)),
        })
        .collect()
}

fn named(v: Vec<(&'static str, u64)>) -> std::collections::HashMap<String, u64> {
    v.into_iter().map(|(n, c)| (n.to_string(), c)).collect()
}

fn flow(f: &Flow) -> pb::Flow {
    pb::Flow {
        five_tuple: f.five_tuple(),
        pkts: f.packets,
        bytes: f.bytes,
        estimated: f.estimated,
        src_addr: f.src.to_string(),
        src_port: f.sport.into(),
        dst_addr: f.dst.to_string(),
        dst_port: f.dport.into(),
        protocol: f.protocol(),
    }
}

fn flow_stats(s: &FlowStats) -> pb::FlowStats {
    let rate = u64::from(s.sample_rate.max(1));
    pb::FlowStats {
        sample_rate: s.sample_rate,
        sampling: if s.estimated {
            format!("1 in {rate} packets on average: a per-CPU countdown restarted at a random gap in [1, {}]; flow packets and bytes are scaled by {rate}", 2 * rate - 1)
        } else {
            "every packet".into()
        },
        estimated: s.estimated,
        table_size: s.table_size,
        table_entries: s.table_entries,
        flows_seen: s.flows_seen,
        evictions: s.evictions,
        sampled_packets: s.sampled_packets,
        update_failures: s.update_failures,
    }
}

pub fn results(r: Results) -> pb::Results {
    pb::Results {
        job_id: r.job.id.to_string(),
        status: r.job.state.as_str().into(),
        window_sec: r.window_sec,
        packets_total: r.total.packets,
        bytes_total: r.total.bytes,
        by_proto: r
            .by_class
            .iter()
            .map(|(n, c)| (n.to_string(), counters(c)))
            .collect(),
        size_histogram: Some(pb::Histogram {
            bounds: r.hist_bounds,
            counts: r.total.hist,
        }),
        top_flows: r.top_flows.iter().map(flow).collect(),
        errors: named(r.errors),
        otel_export: Some(pb::OtelExport {
            exported: r.job.otlp_export,
            endpoint: r.otlp_endpoint,
        }),
        flow_stats: r.flow_stats.as_ref().map(flow_stats),
        filter_rejected: r.filter_rejected,
        capture: r.capture.as_ref().map(capture_stats),
        coverage: Some(coverage(r.coverage)),
    }
}

fn coverage(c: crate::domain::coverage::Coverage) -> pb::Coverage {
    pb::Coverage {
        sample_rate: c.sample_rate,
        error_bound: c.error_bound,
        tunnel_sequenced: c.tunnel_sequenced,
        upstream_lost: c.upstream_lost,
        upstream_late: c.upstream_late,
        flow_evictions: c.flow_evictions,
        flow_update_failures: c.flow_update_failures,
        capture_dropped: c.capture_dropped,
        exports_failed: c.exports_failed,
        complete: c.complete,
    }
}

fn iface_series(i: IfaceSeries) -> pb::InterfaceSeries {
    pb::InterfaceSeries {
        ifindex: i.ifindex,
        interface: i.name,
        direction: i.direction,
        start_time_unix_nano: i.start_ns,
        series: series(&i.by_class),
    }
}

fn job_series(s: JobSeries) -> pb::JobSeries {
    let j = &s.job;
    pb::JobSeries {
        job_id: j.id.to_string(),
        interface: j.iface.clone(),
        direction: j.direction.as_str().into(),
        status: j.state.as_str().into(),
        otlp_export: j.otlp_export,
        start_time_unix_nano: j.started_ns,
        stopped_time_unix_nano: j.stopped_ns.unwrap_or(0),
        series: series(&s.by_class),
    }
}

pub fn snapshot(s: Snapshot) -> pb::CounterSnapshot {
    pb::CounterSnapshot {
        time_unix_nano: s.time_ns,
        start_time_unix_nano: s.start_ns,
        global: series(&s.global),
        interfaces: s.interfaces.into_iter().map(iface_series).collect(),
        jobs: s.jobs.into_iter().map(job_series).collect(),
        errors: named(s.errors),
        hist_bounds: s.hist_bounds,
        tunnel: named(s.tunnel),
    }
}
