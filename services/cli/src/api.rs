//! The gateway's REST shapes as telegenctl reads them, and its routes.
//!
//! Reading is tolerant: unknown fields are ignored, and every field may be
//! missing or null (it is then shown as `-`).

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Deserializer, Serialize};

use crate::filters::Filters;

/// Bytes of a job id sent as they are; everything else is percent-encoded,
/// `/`, `?`, `#`, `%` and `.` included, so an id is always exactly one path
/// segment (`..` becomes `%2E%2E`, which no client or server resolves).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// A job id as one escaped path segment.
pub fn escape_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub const START: &str = "/jobs/start";
pub const LIST: &str = "/jobs";

pub fn job_path(id: &str) -> String {
    format!("/jobs/{}", escape_segment(id))
}

/// `GET /jobs/{id}/results`, with `?top=N` when `top` is given.
pub fn results_path(id: &str, top: Option<u32>) -> String {
    let path = format!("/jobs/{}/results", escape_segment(id));
    match top {
        Some(n) => format!("{path}?top={n}"),
        None => path,
    }
}

pub fn stop_path(id: &str) -> String {
    format!("/jobs/{}/stop", escape_segment(id))
}

/// `POST /jobs/start` body; options not given are omitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartRequest {
    pub port: String,
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_export: Option<bool>,
}

/// A null where a collection is expected reads as empty.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Job {
    pub job_id: Option<String>,
    pub status: Option<String>,
    pub port: Option<String>,
    pub direction: Option<String>,
    pub interface: Option<String>,
    pub mirror_mode: Option<String>,
    pub attach_mode: Option<String>,
    pub started_at: Option<String>,
    pub expires_at: Option<String>,
    pub stopped_at: Option<String>,
    pub error: Option<String>,
    pub fallback_reason: Option<String>,
    pub duration_sec: Option<u64>,
    pub ifindex: Option<u64>,
    pub otlp_export: Option<bool>,
    pub result_detail: Option<String>,
    pub sample_rate: Option<u64>,
    /// The filters in effect (the start request's `filters` shape), kept as
    /// JSON so any value the gateway sends can be shown.
    pub filters: Option<serde_json::Value>,
    pub flow_table_size: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct JobList {
    #[serde(deserialize_with = "null_default")]
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Counter {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Histogram {
    #[serde(deserialize_with = "null_default")]
    pub bounds: Vec<u64>,
    #[serde(deserialize_with = "null_default")]
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Flow {
    /// A string or an object, shown as given.
    pub five_tuple: serde_json::Value,
    pub pkts: Option<u64>,
    pub bytes: Option<u64>,
    /// pkts and bytes are scaled from sampled packets.
    pub estimated: Option<bool>,
}

/// The job's flow table (result_detail flows).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FlowStats {
    pub sample_rate: Option<u64>,
    pub sampling: Option<String>,
    pub estimated: Option<bool>,
    pub table_size: Option<u64>,
    pub table_entries: Option<u64>,
    pub flows_seen: Option<u64>,
    pub evictions: Option<u64>,
    pub sampled_packets: Option<u64>,
    pub update_failures: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct OtelExport {
    pub exported: Option<bool>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Results {
    pub job_id: Option<String>,
    pub status: Option<String>,
    pub window_sec: Option<f64>,
    pub packets_total: Option<u64>,
    pub bytes_total: Option<u64>,
    #[serde(deserialize_with = "null_default")]
    pub by_proto: BTreeMap<String, Counter>,
    #[serde(deserialize_with = "null_default")]
    pub size_histogram: Histogram,
    #[serde(deserialize_with = "null_default")]
    pub top_flows: Vec<Flow>,
    #[serde(deserialize_with = "null_default")]
    pub errors: BTreeMap<String, u64>,
    pub otel_export: Option<OtelExport>,
    pub flow_stats: Option<FlowStats>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_ids_stay_one_path_segment() {
        let id = "3f0c2a9e-1b2c-4d5e-8f90-0123456789ab";
        assert_eq!(job_path(id), format!("/jobs/{id}"));
        assert_eq!(results_path(id, None), format!("/jobs/{id}/results"));
        assert_eq!(
            results_path(id, Some(25)),
            format!("/jobs/{id}/results?top=25")
        );
        assert_eq!(
            results_path("a?top=1", Some(0)),
            "/jobs/a%3Ftop%3D1/results?top=0"
        );
        assert_eq!(stop_path(id), format!("/jobs/{id}/stop"));
        assert_eq!(stop_path("a/../../x"), "/jobs/a%2F%2E%2E%2F%2E%2E%2Fx/stop");
        assert_eq!(job_path("start"), "/jobs/start");
        assert_eq!(job_path("x?y=1#z"), "/jobs/x%3Fy%3D1%23z");
        assert_eq!(job_path(".."), "/jobs/%2E%2E");
        assert_eq!(job_path("."), "/jobs/%2E");
        assert_eq!(job_path("50%"), "/jobs/50%25");
        assert_eq!(job_path("a b\n"), "/jobs/a%20b%0A");
        assert_eq!(job_path("é"), "/jobs/%C3%A9");
        assert_eq!(job_path("A_z~-9"), "/jobs/A_z~-9");
    }

    #[test]
    fn start_request_omits_what_was_not_given() {
        let r = StartRequest {
            port: "Ethernet0".into(),
            direction: "ingress".into(),
            duration_sec: None,
            mirror_mode: None,
            sample_rate: None,
            filters: None,
            result_detail: None,
            otlp_export: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"port": "Ethernet0", "direction": "ingress"})
        );
    }

    #[test]
    fn reading_is_tolerant() {
        let j: Job = serde_json::from_value(json!({
            "job_id": "x", "status": "running", "attach_mode": null,
            "something_new": {"a": 1}
        }))
        .unwrap();
        assert_eq!(j.job_id.as_deref(), Some("x"));
        assert_eq!(j.attach_mode, None);
        assert_eq!(j.port, None);
        let r: Results = serde_json::from_value(json!({
            "top_flows": null, "errors": null, "by_proto": null, "size_histogram": null
        }))
        .unwrap();
        assert!(r.top_flows.is_empty() && r.errors.is_empty() && r.by_proto.is_empty());
        let l: JobList = serde_json::from_value(json!({})).unwrap();
        assert!(l.jobs.is_empty());
    }
}
