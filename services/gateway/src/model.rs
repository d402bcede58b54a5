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
    /// summary or flows.
    pub result_detail: String,
    /// Flow tracking looks at one packet in this many (1 = every packet).
    pub sample_rate: u32,
    /// The filters in effect, normalised by the probe (protocol names,
    /// prefixes without host bits); omitted when the job counts everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<JobFilters>,
    /// Entries of the job's flow table (result_detail flows), else 0.
    pub flow_table_size: u32,
}

/// The filters a job applies, in the shape of the start request's `filters`
/// object; only the fields that are set appear.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobFilters {
    /// Protocol names (tcp, udp, icmp, icmp6, gre, sctp) or numbers, as strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["tcp", "udp"]))]
    pub ip_proto: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l4_sport: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!([443]))]
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
    /// `None` for an unset or empty message: the job counts everything.
    fn from_proto(f: Option<pb::Filters>) -> Option<Self> {
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
        (f != JobFilters::default()).then_some(f)
    }
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
            filters: JobFilters::from_proto(j.filters),
            flow_table_size: j.flow_table_size,
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

/// One of the job's top flows (by bytes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Flow {
    /// `src:port->dst:port/PROTO`, IPv6 addresses in brackets.
    #[schema(example = "10.0.0.1:40000->10.0.0.2:443/TCP")]
    pub five_tuple: String,
    /// Packets; scaled by the sample rate when `estimated`.
    pub pkts: u64,
    /// Bytes; scaled by the sample rate when `estimated`.
    pub bytes: u64,
    /// pkts and bytes are estimates (sampled at 1 in sample_rate).
    pub estimated: bool,
    pub src_addr: String,
    pub src_port: u32,
    pub dst_addr: String,
    pub dst_port: u32,
    /// TCP, UDP, ICMP, ICMP6, GRE, SCTP, or the protocol number.
    #[schema(example = "TCP")]
    pub protocol: String,
}

impl From<pb::Flow> for Flow {
    fn from(f: pb::Flow) -> Self {
        Flow {
            five_tuple: f.five_tuple,
            pkts: f.pkts,
            bytes: f.bytes,
            estimated: f.estimated,
            src_addr: f.src_addr,
            src_port: f.src_port,
            dst_addr: f.dst_addr,
            dst_port: f.dst_port,
            protocol: f.protocol,
        }
    }
}

/// The job's flow table (result_detail flows): how it sampled and whether it
/// overflowed. Evictions are flows the table pushed out to make room.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FlowStats {
    /// Flow tracking looked at one packet in this many.
    pub sample_rate: u32,
    /// How packets are chosen for flow tracking.
    pub sampling: String,
    /// Flow counts are estimates (sample_rate > 1).
    pub estimated: bool,
    /// Entries the table holds at most.
    pub table_size: u32,
    /// Flows in the table now.
    pub table_entries: u64,
    /// Flows ever inserted since the job started.
    pub flows_seen: u64,
    /// Flows pushed out of the full table to make room.
    pub evictions: u64,
    /// Packets that went through the flow table (before scaling).
    pub sampled_packets: u64,
    /// Updates the kernel refused (e.g. out of memory).
    pub update_failures: u64,
}

impl From<pb::FlowStats> for FlowStats {
    fn from(s: pb::FlowStats) -> Self {
        FlowStats {
            sample_rate: s.sample_rate,
            sampling: s.sampling,
            estimated: s.estimated,
            table_size: s.table_size,
            table_entries: s.table_entries,
            flows_seen: s.flows_seen,
            evictions: s.evictions,
            sampled_packets: s.sampled_packets,
            update_failures: s.update_failures,
        }
    }
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
    /// The job's largest flows by bytes (result_detail flows), at most `top`.
    pub top_flows: Vec<Flow>,
    /// This job's packets with a parse problem: truncated, ipv6_exthdr_limit,
    /// tunnel_malformed, tunnel_unknown_payload, ipv4_checksum.
    pub errors: BTreeMap<String, u64>,
    pub otel_export: OtelExport,
    /// The flow table's state (result_detail flows); omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_stats: Option<FlowStats>,
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
            top_flows: r.top_flows.into_iter().map(Flow::from).collect(),
            errors: r.errors.into_iter().collect(),
            otel_export: OtelExport {
                exported: otel.exported,
                endpoint: otel.endpoint,
            },
            flow_stats: r.flow_stats.map(FlowStats::from),
        }
    }
}

/// The most top flows a results request may ask for.
pub const MAX_TOP: u32 = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Only json.
    pub format: Option<String>,
    /// How many top flows to return, by bytes: 0 to 100; 0 or absent = 10.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 100)]
    pub top: Option<String>,
}

impl ResultsQuery {
    /// Check the query: `format` must be json, `top` a decimal integer in
    /// 0..=100. Returns `top` for GetResultsRequest (0 = the probe's default).
    pub fn top(&self) -> Result<u32, ApiError> {
        match self.format.as_deref() {
            None | Some("json") => {}
            Some(f) => {
                return Err(ApiError::not_supported(format!(
                    "format {:?} is not supported; use json",
                    f.chars().take(32).collect::<String>()
                )))
            }
        }
        let Some(t) = self.top.as_deref() else {
            return Ok(0);
        };
        let bad = || {
            ApiError::invalid(format!(
                "top must be an integer from 0 to {MAX_TOP} (0 = 10), not {:?}",
                t.chars().take(32).collect::<String>()
            ))
        };
        if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match t.parse::<u32>() {
            Ok(n) if n <= MAX_TOP => Ok(n),
            _ => Err(bad()),
        }
    }
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
        // No filters: the key is omitted; no flow table: 0.
        assert!(v.get("filters").is_none(), "{v}");
        assert_eq!(v["flow_table_size"], 0);
    }

    #[test]
    fn job_echoes_filters_in_the_request_shape() {
        let j = Job::from(pb::Job {
            job_id: "x".into(),
            result_detail: "flows".into(),
            sample_rate: 100,
            flow_table_size: 4096,
            filters: Some(pb::Filters {
                ip_proto: vec!["tcp".into(), "17".into()],
                l4_dport: vec![443],
                src_cidr: vec!["10.0.0.0/8".into()],
                dscp: vec![46],
                vlan: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        });
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(
            v["filters"],
            serde_json::json!({
                "ip_proto": ["tcp", "17"], "l4_dport": [443], "src_cidr": ["10.0.0.0/8"],
                "dscp": [46], "vlan": 0
            })
        );
        assert_eq!(v["flow_table_size"], 4096);
        assert_eq!(v["sample_rate"], 100);
        // The echo reads back as a start request's filters object.
        let echoed: Filters = serde_json::from_value(v["filters"].clone()).unwrap();
        assert_eq!(echoed.into_proto().l4_dport, vec![443]);
        // An empty message means the same as none: counts everything.
        let j = Job::from(pb::Job {
            filters: Some(pb::Filters::default()),
            ..Default::default()
        });
        assert!(serde_json::to_value(&j).unwrap().get("filters").is_none());
    }

    #[test]
    fn results_carry_flows_and_flow_stats() {
        let r = Results::from(pb::Results {
            job_id: "x".into(),
            top_flows: vec![pb::Flow {
                five_tuple: "[2001:db8::1]:40000->[2001:db8::2]:443/TCP".into(),
                pkts: 300,
                bytes: 450_000,
                estimated: true,
                src_addr: "2001:db8::1".into(),
                src_port: 40000,
                dst_addr: "2001:db8::2".into(),
                dst_port: 443,
                protocol: "TCP".into(),
            }],
            errors: [
                ("ipv4_checksum".to_string(), 2),
                ("truncated".to_string(), 0),
            ]
            .into(),
            flow_stats: Some(pb::FlowStats {
                sample_rate: 100,
                sampling: "random 1 in N".into(),
                estimated: true,
                table_size: 4096,
                table_entries: 12,
                flows_seen: 15,
                evictions: 3,
                sampled_packets: 3,
                update_failures: 1,
            }),
            ..Default::default()
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["top_flows"][0],
            serde_json::json!({
                "five_tuple": "[2001:db8::1]:40000->[2001:db8::2]:443/TCP",
                "pkts": 300, "bytes": 450000, "estimated": true,
                "src_addr": "2001:db8::1", "src_port": 40000,
                "dst_addr": "2001:db8::2", "dst_port": 443, "protocol": "TCP"
            })
        );
        assert_eq!(
            v["flow_stats"],
            serde_json::json!({
                "sample_rate": 100, "sampling": "random 1 in N", "estimated": true,
                "table_size": 4096, "table_entries": 12, "flows_seen": 15,
                "evictions": 3, "sampled_packets": 3, "update_failures": 1
            })
        );
        assert_eq!(
            v["errors"],
            serde_json::json!({"ipv4_checksum": 2, "truncated": 0})
        );
        // A summary job: no flow_stats key, an empty top_flows list.
        let v = serde_json::to_value(Results::from(pb::Results::default())).unwrap();
        assert!(v.get("flow_stats").is_none(), "{v}");
        assert_eq!(v["top_flows"], serde_json::json!([]));
    }

    /// What axum's `Query` extractor makes of a query string.
    fn query(q: &str) -> Result<ResultsQuery, String> {
        use axum::extract::Query;
        let uri: axum::http::Uri = format!("/x?{q}").parse().unwrap();
        Query::<ResultsQuery>::try_from_uri(&uri)
            .map(|Query(q)| q)
            .map_err(|e| e.body_text())
    }

    #[test]
    fn top_is_an_integer_from_0_to_100() {
        for (q, top) in [
            ("", 0),
            ("top=0", 0),
            ("top=1", 1),
            ("top=10", 10),
            ("top=100", 100),
            ("top=007", 7),
            ("format=json&top=25", 25),
            ("format=json", 0),
        ] {
            let parsed = query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(parsed.top().unwrap(), top, "{q}");
        }
        for q in [
            "top=101",
            "top=-1",
            "top=+5",
            "top=1.5",
            "top=ten",
            "top=",
            "top=%20",
            "top=4294967296",
            "top=99999999999999999999",
            "top=1e2",
            "top=0x10",
        ] {
            let e = query(q).unwrap().top().expect_err(q);
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_request"), "{q}");
            assert!(e.message.starts_with("top must be"), "{q}: {}", e.message);
        }
        // Echoed input is bounded.
        let long = format!("top={}", "9".repeat(500));
        let e = query(&long).unwrap().top().unwrap_err();
        assert!(e.message.len() < 100, "{}", e.message);
        // Repeated or unknown keys are refused by the extractor, naming them.
        assert!(query("top=1&top=2").unwrap_err().contains("top"));
        assert!(query("tpo=1").unwrap_err().contains("tpo"));
        // format is checked as before.
        let e = query("format=csv&top=5").unwrap().top().unwrap_err();
        assert_eq!((e.code, e.message.contains("csv")), ("not_supported", true));
    }
}
