//! The routes. Each job route has the seed's path and the original design's
//! `/v1/monitor` alias; both answer the same.

/// `{job_id}` in the paths below.
pub const JOB_ID: &str = "{job_id}";

pub const START: &str = "/jobs/start";
pub const JOBS: &str = "/jobs";
pub const JOB: &str = "/jobs/{job_id}";
pub const STOP: &str = "/jobs/{job_id}/stop";
pub const RESULTS: &str = "/jobs/{job_id}/results";
/// A capture job's packets, as pcapng.
pub const CAPTURE: &str = "/jobs/{job_id}/capture";

/// `POST` starts a job, `GET` lists them.
pub const V1_JOBS: &str = "/v1/monitor/jobs";
/// `GET` a job's status, `DELETE` stops it.
pub const V1_JOB: &str = "/v1/monitor/jobs/{job_id}";
pub const V1_RESULTS: &str = "/v1/monitor/jobs/{job_id}/results";

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const VERSION: &str = "/version";
pub const OPENAPI: &str = "/openapi.json";
