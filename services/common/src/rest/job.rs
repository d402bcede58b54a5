//! Starting a job, and a job as the API shows it.

use serde::{Deserialize, Serialize};

use super::lenient;
#[cfg(feature = "openapi")]
use super::schema;

/// Start a job. Only `port` and `direction` are required. Unknown fields are
/// refused, so a typo never silently changes what a job does. Options not
/// given are omitted when a client writes one. Numbers may be written `8` or
/// `8.0` (both are JSON Schema integers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Switch port; it must exist on the switch.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::PortName))]
    pub port: String,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::Direction))]
    pub direction: String,
    /// Seconds until the job stops by itself (status `expired`).
    #[serde(default, deserialize_with = "lenient::whole_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::DurationSec>))]
    pub duration_sec: Option<u32>,
    /// Overrides TELEGEN_MIRROR_MODE for this job.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::MirrorMode>))]
    pub mirror_mode: Option<String>,
    /// The original design's name for mirror_mode; when both are given they
    /// must be equal.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::SpanMethod>))]
    pub span_method: Option<String>,
    #[serde(default, deserialize_with = "lenient::whole_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::SampleRate>))]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
    /// The original design's top-level VLAN filter, the same as filters.vlan;
    /// when both are given they must be equal.
    #[serde(default, deserialize_with = "lenient::whole_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::Vlan>))]
    pub vlan: Option<u32>,
    /// Whether this job's own series are exported over OTLP (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_export: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::ResultDetail>))]
    pub result_detail: Option<String>,
    /// result_detail pcaplike: what is kept of each packet, and how much.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureOptions>,
}

/// What a capture keeps (result_detail pcaplike). Every limit is enforced
/// in the kernel before a byte is copied; what is let go is counted in the
/// results' `capture`, by why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaptureOptions {
    /// Bytes kept of each packet: default 128, 14 to 9216.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<u32>,
    /// The most packets kept: default 10000, at most 10000000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packets: Option<u64>,
    /// The most pcapng bytes of packet blocks (32 each and the data padded
    /// to 4): default 16777216, at most 1073741824.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Packets per second at most: default 1000, at most 100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pps: Option<u32>,
    /// ERSPAN/GRE: inner (default: the mirrored frame) or outer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

/// Which packets a job counts. Every field narrows the match; lists are
/// sets (any item matches).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = schema::IpProtos))]
    pub ip_proto: Vec<ProtoSpec>,
    #[serde(default, deserialize_with = "lenient::whole_list")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = schema::L4Ports))]
    pub l4_sport: Vec<u32>,
    #[serde(default, deserialize_with = "lenient::whole_list")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = schema::L4Ports))]
    pub l4_dport: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = schema::Cidrs))]
    pub src_cidr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = schema::Cidrs))]
    pub dst_cidr: Vec<String>,
    #[serde(default, deserialize_with = "lenient::whole_list")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = schema::DscpList))]
    pub dscp: Vec<u32>,
    #[serde(default, deserialize_with = "lenient::whole_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::Vlan>))]
    pub vlan: Option<u32>,
}

/// A protocol by name or by number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProtoSpec {
    Name(String),
    Number(#[serde(deserialize_with = "lenient::whole")] u32),
}

/// A job's status. Times are RFC 3339 UTC, null until they happen.
///
/// Every field is an `Option` so that a client reads any gateway's answer
/// (telegenctl shows a missing value as `-`); the gateway always sends the
/// fields the document marks required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::JobId))]
    pub job_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::JobStatus))]
    pub status: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub port: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::Direction))]
    pub direction: Option<String>,
    /// The interface the counter is attached to: the port in direct mode,
    /// the ERSPAN netdev (e.g. erspan0) in erspan/sonic/placeholder mode.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "erspan0"))]
    pub interface: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::JobMirrorMode))]
    pub mirror_mode: Option<String>,
    /// How the counter is attached, once it is.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::AttachMode>))]
    pub attach_mode: Option<String>,
    pub started_at: Option<String>,
    pub expires_at: Option<String>,
    pub stopped_at: Option<String>,
    pub error: Option<String>,
    /// Why the job runs in placeholder mode instead of the mode asked for.
    pub fallback_reason: Option<String>,
    /// 0 = until stopped.
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub duration_sec: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub ifindex: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(value_type = bool))]
    pub otlp_export: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::ResultDetail))]
    pub result_detail: Option<String>,
    /// Flow tracking looks at one packet in this many (1 = every packet).
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub sample_rate: Option<u32>,
    /// The filters in effect, normalised by the probe (protocol names,
    /// prefixes without host bits); omitted when the job counts everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<JobFilters>,
    /// Entries of the job's flow table (result_detail flows), else 0.
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub flow_table_size: Option<u32>,
    /// A `stopping` job's release still waiting, and why (a SONiC session
    /// redis did not delete, a hook not yet detached): retried until done,
    /// then the job ends. Omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// Mirror mode sonic: what the switch's session copies. `acl`: ACL
    /// rules in the switch select the job's filter; `port`: the whole port
    /// is mirrored and the kernel filter selects. Omitted for other modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::MirrorScope>))]
    pub mirror_scope: Option<String>,
    /// Why the scope is `port` (no filter, too many rules, a field or
    /// stage the switch cannot match, another mirror ACL table in the way);
    /// for `acl`, what is not confirmed. Omitted when there is nothing to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_scope_reason: Option<String>,
    /// result_detail pcaplike: the capture's settings, defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureOptions>,
}

/// The filters a job applies, in the shape of the start request's `filters`
/// object; only the fields that are set appear.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobFilters {
    /// Protocol names (tcp, udp, icmp, icmp6, gre, sctp) or numbers, as strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(example = json!(["tcp", "udp"])))]
    pub ip_proto: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l4_sport: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(example = json!([443])))]
    pub l4_dport: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_cidr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_cidr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dscp: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u32>,
}

impl JobFilters {
    /// Nothing set: the job counts everything.
    pub fn is_empty(&self) -> bool {
        *self == JobFilters::default()
    }
}

/// All jobs the probe keeps, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobList {
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub jobs: Vec<Job>,
}
