//! The REST bodies to and from the probe's protobuf messages (the gateway's
//! translation). Values pass through unchecked: what they mean is the
//! probe's to say, so gRPC and REST clients get the same answers.

use telegen_proto::v1 as pb;

use super::*;

/// A start request whose design-era alias contradicts the field it aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AliasConflict {
    #[error("mirror_mode and span_method disagree; give only one of them")]
    MirrorMode,
    #[error("vlan and filters.vlan disagree; give only one of them")]
    Vlan,
}

impl StartRequest {
    /// The probe's request, with `span_method` folded into `mirror_mode` and
    /// the top-level `vlan` into `filters.vlan`.
    pub fn into_proto(self) -> Result<pb::StartJobRequest, AliasConflict> {
        let mirror_mode = match (self.mirror_mode, self.span_method) {
            (Some(m), Some(s)) if m != s => return Err(AliasConflict::MirrorMode),
            (m, s) => m.or(s).unwrap_or_default(),
        };
        let mut filters = self.filters;
        if let Some(v) = self.vlan {
            let f = filters.get_or_insert_with(Filters::default);
            match f.vlan {
                Some(fv) if fv != v => return Err(AliasConflict::Vlan),
                _ => f.vlan = Some(v),
            }
        }
        Ok(pb::StartJobRequest {
            port: self.port,
            direction: self.direction,
            duration_sec: self.duration_sec,
            mirror_mode,
            sample_rate: self.sample_rate,
            filters: filters.map(Filters::into_proto),
            otlp_export: self.otlp_export,
            result_detail: self.result_detail.unwrap_or_default(),
            capture: self.capture.map(|c| pb::CaptureOptions {
                snaplen: c.snaplen,
                max_packets: c.max_packets,
                max_bytes: c.max_bytes,
                max_pps: c.max_pps,
                frame: c.frame.unwrap_or_default(),
            }),
        })
    }
}

impl Filters {
    pub fn into_proto(self) -> pb::Filters {
        pb::Filters {
            ip_proto: self
                .ip_proto
                .into_iter()
                .map(|p| match p {
                    ProtoSpec::Name(n) => n,
                    ProtoSpec::Number(n) => n.to_string(),
                })
                .collect(),
            l4_sport: self.l4_sport,
            l4_dport: self.l4_dport,
            src_cidr: self.src_cidr,
            dst_cidr: self.dst_cidr,
            dscp: self.dscp,
            vlan: self.vlan,
        }
    }
}

/// `None` for an unset or empty message: the job counts everything.
fn job_filters(f: Option<pb::Filters>) -> Option<JobFilters> {
    let f = f?;
    let f = JobFilters {
        ip_proto: f.ip_proto,
        l4_sport: f.l4_sport,
        l4_dport: f.l4_dport,
        src_cidr: f.src_cidr,
        dst_cidr: f.dst_cidr,
        dscp: f.dscp,
        vlan: f.vlan,
    };
    (!f.is_empty()).then_some(f)
}

/// Protobuf has no null: an empty string is "not yet" (null in JSON).
fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<pb::Job> for Job {
    fn from(j: pb::Job) -> Self {
        Job {
            job_id: Some(j.job_id),
            status: Some(j.status),
            port: Some(j.port),
            direction: Some(j.direction),
            interface: Some(j.interface),
            mirror_mode: Some(j.mirror_mode),
            attach_mode: opt(j.attach_mode),
            started_at: opt(j.started_at),
            expires_at: opt(j.expires_at),
            stopped_at: opt(j.stopped_at),
            error: opt(j.error),
            fallback_reason: opt(j.fallback_reason),
            duration_sec: Some(j.duration_sec),
            ifindex: Some(j.ifindex),
            otlp_export: Some(j.otlp_export),
            result_detail: Some(j.result_detail),
            sample_rate: Some(j.sample_rate),
            filters: job_filters(j.filters),
            flow_table_size: Some(j.flow_table_size),
            pending: opt(j.pending),
            mirror_scope: opt(j.mirror_scope),
            mirror_scope_reason: opt(j.mirror_scope_reason),
            capture: j.capture.map(|c| CaptureOptions {
                snaplen: c.snaplen,
                max_packets: c.max_packets,
                max_bytes: c.max_bytes,
                max_pps: c.max_pps,
                frame: opt(c.frame),
            }),
        }
    }
}

impl From<pb::ListJobsResponse> for JobList {
    fn from(r: pb::ListJobsResponse) -> Self {
        JobList {
            jobs: r.jobs.into_iter().map(Job::from).collect(),
        }
    }
}

impl From<pb::Flow> for Flow {
    fn from(f: pb::Flow) -> Self {
        Flow {
            five_tuple: Some(f.five_tuple),
            pkts: Some(f.pkts),
            bytes: Some(f.bytes),
            estimated: Some(f.estimated),
            src_addr: Some(f.src_addr),
            src_port: Some(f.src_port),
            dst_addr: Some(f.dst_addr),
            dst_port: Some(f.dst_port),
            protocol: Some(f.protocol),
        }
    }
}

impl From<pb::FlowStats> for FlowStats {
    fn from(s: pb::FlowStats) -> Self {
        FlowStats {
            sample_rate: Some(s.sample_rate),
            sampling: Some(s.sampling),
            estimated: Some(s.estimated),
            table_size: Some(s.table_size),
            table_entries: Some(s.table_entries),
            flows_seen: Some(s.flows_seen),
            evictions: Some(s.evictions),
            sampled_packets: Some(s.sampled_packets),
            update_failures: Some(s.update_failures),
        }
    }
}

impl From<pb::Results> for Results {
    fn from(r: pb::Results) -> Self {
        let hist = r.size_histogram.unwrap_or_default();
        let otel = r.otel_export.unwrap_or_default();
        Results {
            job_id: Some(r.job_id),
            status: Some(r.status),
            window_sec: Some(r.window_sec),
            packets_total: Some(r.packets_total),
            bytes_total: Some(r.bytes_total),
            by_proto: r
                .by_proto
                .into_iter()
                .map(|(k, c)| {
                    let c = ProtoCounters {
                        packets: Some(c.packets),
                        bytes: Some(c.bytes),
                    };
                    (k, c)
                })
                .collect(),
            size_histogram: SizeHistogram {
                bounds: hist.bounds,
                counts: hist.counts,
            },
            top_flows: r.top_flows.into_iter().map(Flow::from).collect(),
            errors: r.errors.into_iter().collect(),
            otel_export: Some(OtelExport {
                exported: Some(otel.exported),
                endpoint: Some(otel.endpoint),
            }),
            flow_stats: r.flow_stats.map(FlowStats::from),
            filter_rejected: r.filter_rejected,
            capture: r.capture.map(|c| CaptureStats {
                snaplen: c.snaplen,
                frame: c.frame,
                packets: c.packets,
                bytes: c.bytes,
                ring_full: c.ring_full,
                rate_limited: c.rate_limited,
                cap_reached: c.cap_reached,
                copy_failed: c.copy_failed,
                spool_dropped: c.spool_dropped,
                max_packets: c.max_packets,
                max_bytes: c.max_bytes,
                max_pps: c.max_pps,
                file_bytes: c.file_bytes,
            }),
            coverage: r.coverage.map(|c| Coverage {
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
            }),
        }
    }
}

impl From<pb::Info> for ProbeInfo {
    fn from(i: pb::Info) -> Self {
        ProbeInfo {
            version: i.version,
            commit: i.commit,
            build_date: i.build_date,
            kernel: i.kernel,
            datapath_enabled: i.datapath_enabled,
            datapath_reason: opt(i.datapath_reason),
            attach_mode: i.attach_mode,
            mirror_mode: i.mirror_mode,
            max_jobs: i.max_jobs,
        }
    }
}
