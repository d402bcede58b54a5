//! REST bodies (SPEC section 2) and their translation to and from the probe's
//! protobuf messages. The gateway checks shapes and types only; what a value
//! means (does the port exist, is 300 a valid DSCP) is the probe's to say.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telegen_proto::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// Start a job. Only `port` and `direction` are required. Unknown fields are
/// refused, so a typo never silently changes what a job does.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Switch port (Linux interface name, at most 15 bytes), e.g. Ethernet0.
    #[schema(example = "Ethernet0")]
    pub port: String,
    /// ingress, egress or both.
    #[schema(example = "ingress")]
    pub direction: String,
    /// Seconds until the job stops by itself (status `expired`); 0 = until
    /// stopped. Default 120.
    pub duration_sec: Option<u32>,
    /// erspan, sonic, direct (alias span) or placeholder; overrides
    /// TELEGEN_MIRROR_MODE for this job.
    pub mirror_mode: Option<String>,
    /// The original design's name for mirror_mode: erspan or span (= direct).
    pub span_method: Option<String>,
    /// Flow tracking looks at one packet in N; counters stay exact.
    pub sample_rate: Option<u32>,
    pub filters: Option<Filters>,
    /// The original design's top-level VLAN filter; the same as filters.vlan.
    pub vlan: Option<u32>,
    /// Whether this job's own series are exported over OTLP (default true).
    pub otlp_export: Option<bool>,
    /// summary or flows.
    pub result_detail: Option<String>,
}

/// Which packets a job counts. Every field narrows the match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Protocol names (tcp, udp, icmp, icmp6) or numbers.
    #[serde(default)]
    pub ip_proto: Vec<ProtoSpec>,
    #[serde(default)]
    pub l4_sport: Vec<u32>,
    #[serde(default)]
    pub l4_dport: Vec<u32>,
    #[serde(default)]
    pub src_cidr: Vec<String>,
    #[serde(default)]
    pub dst_cidr: Vec<String>,
    #[serde(default)]
    pub dscp: Vec<u32>,
    pub vlan: Option<u32>,
}

/// A protocol by name or by number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ProtoSpec {
    Name(String),
    Number(u32),
}

impl StartRequest {
    pub fn into_proto(self) -> Result<pb::StartJobRequest, ApiError> {
        let mirror_mode = match (self.mirror_mode, self.span_method) {
            (Some(m), Some(s)) if m != s => {
                return Err(ApiError::invalid(
                    "mirror_mode and span_method disagree; give only one of them",
                ))
            }
            (m, s) => m.or(s).unwrap_or_default(),
        };
        let mut filters = self.filters;
        if let Some(v) = self.vlan {
            let f = filters.get_or_insert_with(Filters::default);
            match f.vlan {
                Some(fv) if fv != v => {
                    return Err(ApiError::invalid(
                        "vlan and filters.vlan disagree; give only one of them",
                    ))
                }
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
        })
    }
}

impl Filters {
    fn into_proto(self) -> pb::Filters {
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

/// A job's status. Times are RFC 3339 UTC, null until they happen.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Job {
    #[schema(example = "9b4e87cb-6f0e-4a59-9c1e-2f1d3c4b5a69")]
    pub job_id: String,
    /// starting, running, stopping, stopped, expired or failed.
    #[schema(example = "starting")]
    pub status: String,
    pub port: String,
    pub direction: String,
    /// The interface the counter is attached to: the port in direct mode,
    /// the ERSPAN netdev (e.g. erspan0) in erspan/sonic/placeholder mode.
    #[schema(example = "erspan0")]
    pub interface: String,
    pub mirror_mode: String,
    /// tcx or tc once attached.
    pub attach_mode: Option<String>,
    pub started_at: Option<String>,
    pub expires_at: Option<String>,
    pub stopped_at: Option<String>,
    pub error: Option<String>,
    /// Why the job runs in placeholder mode instead of the mode asked for.
    pub fallback_reason: Option<String>,
    pub duration_sec: u32,
    pub ifindex: u32,
    pub otlp_export: bool,
    pub result_detail: String,
    pub sample_rate: u32,
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<pb::Job> for Job {
    fn from(j: pb::Job) -> Self {
        Job {
            job_id: j.job_id,
            status: j.status,
            port: j.port,
            direction: j.direction,
            interface: j.interface,
            mirror_mode: j.mirror_mode,
            attach_mode: opt(j.attach_mode),
            started_at: opt(j.started_at),
            expires_at: opt(j.expires_at),
            stopped_at: opt(j.stopped_at),
            error: opt(j.error),
            fallback_reason: opt(j.fallback_reason),
            duration_sec: j.duration_sec,
            ifindex: j.ifindex,
            otlp_export: j.otlp_export,
            result_detail: j.result_detail,
            sample_rate: j.sample_rate,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProtoCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// Packet sizes: `counts[i]` packets of at most `bounds[i]` bytes (and more
/// than the bound before); the last count is above the last bound.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SizeHistogram {
    pub bounds: Vec<u64>,
    pub counts: Vec<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Flow {
    /// `src:port->dst:port/PROTO`
    pub five_tuple: String,
    pub pkts: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OtelExport {
    pub exported: bool,
    pub endpoint: String,
}

/// What one job counted since it started (only its own packets, even when
/// other jobs watch the same port).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Results {
    pub job_id: String,
    pub status: String,
    pub window_sec: f64,
    pub packets_total: u64,
    pub bytes_total: u64,
    /// Keyed by ipv4, ipv6, icmp6, other.
    pub by_proto: BTreeMap<String, ProtoCounters>,
    pub size_histogram: SizeHistogram,
    pub top_flows: Vec<Flow>,
    /// Packets or parts of their accounting that could not be recorded.
    pub errors: BTreeMap<String, u64>,
    pub otel_export: OtelExport,
}

impl From<pb::Results> for Results {
    fn from(r: pb::Results) -> Self {
        let hist = r.size_histogram.unwrap_or_default();
        let otel = r.otel_export.unwrap_or_default();
        Results {
            job_id: r.job_id,
            status: r.status,
            window_sec: r.window_sec,
            packets_total: r.packets_total,
            bytes_total: r.bytes_total,
            by_proto: r
                .by_proto
                .into_iter()
                .map(|(k, c)| {
                    (
                        k,
                        ProtoCounters {
                            packets: c.packets,
                            bytes: c.bytes,
                        },
                    )
                })
                .collect(),
            size_histogram: SizeHistogram {
                bounds: hist.bounds,
                counts: hist.counts,
            },
            top_flows: r
                .top_flows
                .into_iter()
                .map(|f| Flow {
                    five_tuple: f.five_tuple,
                    pkts: f.pkts,
                    bytes: f.bytes,
                })
                .collect(),
            errors: r.errors.into_iter().collect(),
            otel_export: OtelExport {
                exported: otel.exported,
                endpoint: otel.endpoint,
            },
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// Only json.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    pub probe: ProbeInfo,
}

/// What the probe says about itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProbeInfo {
    pub version: String,
    pub commit: String,
    pub build_date: String,
    pub kernel: String,
    pub datapath_enabled: bool,
    pub datapath_reason: Option<String>,
    pub attach_mode: String,
    pub mirror_mode: String,
    pub max_jobs: u32,
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

/// The gateway's embedded build (SPEC section 7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Version {
    #[schema(example = "release/mark-v0-1-0")]
    pub version: String,
    pub commit: String,
    pub build_date: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StartRequest, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn seed_body_is_enough() {
        let r = parse(r#"{"port":"Ethernet0","direction":"ingress"}"#)
            .unwrap()
            .into_proto()
            .unwrap();
        assert_eq!(
            (r.port.as_str(), r.direction.as_str()),
            ("Ethernet0", "ingress")
        );
        assert_eq!(r.duration_sec, None);
        assert!(r.filters.is_none());
    }

    #[test]
    fn design_fields_translate() {
        let r = parse(
            r#"{"port":"Ethernet16","direction":"both","duration_sec":120,"span_method":"span",
                "sample_rate":100,"vlan":10,"result_detail":"flows",
                "filters":{"ip_proto":["tcp",17],"dscp":[46],"src_cidr":["10.0.0.0/8"]}}"#,
        )
        .unwrap()
        .into_proto()
        .unwrap();
        assert_eq!(r.mirror_mode, "span");
        let f = r.filters.unwrap();
        assert_eq!(f.ip_proto, vec!["tcp", "17"]);
        assert_eq!(f.vlan, Some(10));
        assert_eq!(f.dscp, vec![46]);
    }

    #[test]
    fn refuses_unknown_missing_and_contradictory_fields() {
        assert!(parse(r#"{"port":"a","direction":"ingress","prot":"x"}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown field `prot`"));
        assert!(parse(r#"{"direction":"ingress"}"#)
            .unwrap_err()
            .to_string()
            .contains("missing field `port`"));
        assert!(parse(r#"{"port":"a","direction":"ingress","duration_sec":-1}"#).is_err());
        assert!(parse(r#"{"port":"a","direction":"ingress","filters":{"tos":1}}"#).is_err());
        let e =
            parse(r#"{"port":"a","direction":"in","mirror_mode":"erspan","span_method":"span"}"#)
                .unwrap()
                .into_proto()
                .unwrap_err();
        assert!(e.message.contains("disagree"));
        let e = parse(r#"{"port":"a","direction":"in","vlan":1,"filters":{"vlan":2}}"#)
            .unwrap()
            .into_proto()
            .unwrap_err();
        assert!(e.message.contains("disagree"));
    }

    #[test]
    fn empty_strings_become_null() {
        let j = Job::from(pb::Job {
            job_id: "x".into(),
            status: "starting".into(),
            ..Default::default()
        });
        let v = serde_json::to_value(&j).unwrap();
        assert!(v["stopped_at"].is_null());
        assert!(v["error"].is_null());
        assert_eq!(v["status"], "starting");
    }
}
