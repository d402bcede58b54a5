//! What a job counted: `GET /jobs/{job_id}/results`.
//!
//! As in [`Job`](super::Job), scalars are `Option`s so that a client reads
//! any gateway's answer; the gateway always sends the required ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;
#[cfg(feature = "openapi")]
use super::schema;

/// What one job counted since it started (only its own packets, even when
/// other jobs watch the same port).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Results {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::JobId))]
    pub job_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::JobStatus))]
    pub status: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub window_sec: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub packets_total: Option<u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub bytes_total: Option<u64>,
    /// Keyed by ipv4, ipv6, icmp6, other.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub by_proto: BTreeMap<String, ProtoCounters>,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub size_histogram: SizeHistogram,
    /// The job's largest flows by bytes (result_detail flows), at most `top`.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub top_flows: Vec<Flow>,
    /// This job's packets with a parse problem: truncated, ipv6_exthdr_limit,
    /// tunnel_malformed, tunnel_unknown_payload, ipv4_checksum.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub errors: BTreeMap<String, u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = OtelExport))]
    pub otel_export: Option<OtelExport>,
    /// The flow table's state (result_detail flows); omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_stats: Option<FlowStats>,
    /// Jobs with filters: packets that reached the job's hook and its
    /// filter rejected (with mirror_scope `acl`, how far the switch's match
    /// and the kernel's disagree). Omitted for jobs without filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_rejected: Option<u64>,
    /// result_detail pcaplike: what was captured, and what was let go and
    /// why. Omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureStats>,
    /// What the job's figures may lack, and why (complete: nothing lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// What a job's figures may lack. `complete` is false whenever one of the
/// loss counts is non-zero; counters are never sampled (sample_rate
/// concerns flows and captures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    pub sample_rate: u32,
    /// The error of sampled flow estimates ("" when not sampled).
    pub error_bound: String,
    /// GRE/ERSPAN packets with sequence numbers on the job's interface,
    /// those their sequence numbers say were lost upstream (the switch's
    /// CoPP, the network), and those that came late (reordered).
    pub tunnel_sequenced: u64,
    pub upstream_lost: u64,
    pub upstream_late: u64,
    pub flow_evictions: u64,
    pub flow_update_failures: u64,
    /// Capture jobs: packets let go (ring, rate, caps, copy, spool).
    pub capture_dropped: u64,
    /// Jobs exported over OTLP: exports reported failed since the start.
    pub exports_failed: u64,
    pub complete: bool,
}

/// A capture job's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaptureStats {
    pub snaplen: u32,
    /// inner or outer.
    pub frame: String,
    /// Packets and bytes (cut at snaplen) in the job's pcapng.
    pub packets: u64,
    pub bytes: u64,
    /// Let go in the kernel: the ring to the probe was full; over the
    /// job's or the probe's rate; past the job's or the probe's caps; the
    /// packet could not be read.
    pub ring_full: u64,
    pub rate_limited: u64,
    pub cap_reached: u64,
    pub copy_failed: u64,
    /// Let go by the probe: the spool directory was full, or a write failed.
    pub spool_dropped: u64,
    pub max_packets: u64,
    pub max_bytes: u64,
    pub max_pps: u32,
    /// The pcapng file's size now.
    pub file_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtoCounters {
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub packets: Option<u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub bytes: Option<u64>,
}

/// Packet sizes: `counts[i]` packets of at most `bounds[i]` bytes (and more
/// than the bound before); the last count is above the last bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SizeHistogram {
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub bounds: Vec<u64>,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub counts: Vec<u64>,
}

/// One of the job's top flows (by bytes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Flow {
    /// `src:port->dst:port/PROTO`, IPv6 addresses in brackets. Read from any
    /// JSON value (shown as its text), so a client shows what it gets.
    #[serde(default, deserialize_with = "lenient::text")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, example = "10.0.0.1:40000->10.0.0.2:443/TCP"))]
    pub five_tuple: Option<String>,
    /// Packets; scaled by the sample rate when `estimated`.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub pkts: Option<u64>,
    /// Bytes; scaled by the sample rate when `estimated`.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub bytes: Option<u64>,
    /// pkts and bytes are estimates (sampled at 1 in sample_rate).
    #[cfg_attr(feature = "openapi", schema(value_type = bool))]
    pub estimated: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub src_addr: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub src_port: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dst_addr: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub dst_port: Option<u32>,
    /// TCP, UDP, ICMP, ICMP6, GRE, SCTP, or the protocol number.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "TCP"))]
    pub protocol: Option<String>,
}

/// The job's flow table (result_detail flows): how it sampled and whether it
/// overflowed. Evictions are flows the table pushed out to make room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowStats {
    /// Flow tracking looked at one packet in this many.
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub sample_rate: Option<u32>,
    /// How packets are chosen for flow tracking.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sampling: Option<String>,
    /// Flow counts are estimates (sample_rate > 1).
    #[cfg_attr(feature = "openapi", schema(value_type = bool))]
    pub estimated: Option<bool>,
    /// Entries the table holds at most.
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub table_size: Option<u32>,
    /// Flows in the table now.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub table_entries: Option<u64>,
    /// Flows ever inserted since the job started.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub flows_seen: Option<u64>,
    /// Flows pushed out of the full table to make room.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub evictions: Option<u64>,
    /// Packets that went through the flow table (before scaling).
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub sampled_packets: Option<u64>,
    /// Updates the kernel refused (e.g. out of memory).
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub update_failures: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtelExport {
    #[cfg_attr(feature = "openapi", schema(value_type = bool))]
    pub exported: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub endpoint: Option<String>,
}
