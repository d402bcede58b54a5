//! The job routes, each one probe call. Each handler is documented at the
//! seed's path (`/jobs/...`); `super::routes` also serves and documents it at
//! the original design's `/v1/monitor/jobs/...` alias.

use axum::{
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        Extension, Path, Query, State,
    },
    http::StatusCode,
    Json,
};
use telegen_common::rest::{paths, schema::JobId, ErrorBody, Job, JobList, Results, StartRequest};
use telegen_proto::v1 as pb;
use utoipa::{IntoParams, IntoResponses};

use crate::{
    error::ApiError,
    query::{CaptureQuery, ResultsQuery},
    tokens::Identity,
    AppState,
};

/// The errors any job route can answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // only read by the OpenAPI derive
pub enum JobErrors {
    /// Invalid input (invalid_request, invalid_json) or a feature this
    /// build does not have (not_supported).
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// Missing or wrong bearer token (only when TELEGEN_API_TOKEN is set).
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// The probe is down or not answering (probe_unavailable).
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// The errors of the routes that name a job.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum UnknownJob {
    /// Unknown job (not_found).
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
}

/// Errors of the routes that take a body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    #[response(
        status = 403,
        description = "Refused by the probe's policy, which the message names (forbidden)"
    )]
    Forbidden(#[to_schema] ErrorBody),
    #[response(
        status = 409,
        description = "Conflicts with the switch's state (conflict)"
    )]
    Conflict(#[to_schema] ErrorBody),
    #[response(status = 413, description = "Body too large (payload_too_large)")]
    TooLarge(#[to_schema] ErrorBody),
    #[response(
        status = 415,
        description = "Body is not JSON (unsupported_media_type)"
    )]
    NotJson(#[to_schema] ErrorBody),
    #[response(
        status = 429,
        description = "TELEGEN_MAX_JOBS jobs are already starting or running, or the flow tables are full (concurrency_limit)"
    )]
    Limit(#[to_schema] ErrorBody),
}

/// The `{job_id}` of a route, for the document (the handlers take it as a
/// string: a malformed id is the probe's to refuse, as over gRPC).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct JobPath {
    #[param(value_type = JobId)]
    job_id: String,
}

pub(crate) async fn call<T>(
    st: &AppState,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(st.rpc_timeout, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(s.into()),
        Err(_) => Err(ApiError::unavailable(format!(
            "the probe did not answer within {} ms",
            st.rpc_timeout.as_millis()
        ))),
    }
}

/// Start a job.
#[utoipa::path(post, path = paths::START, tag = "jobs", request_body = StartRequest,
    responses((status = 201, description = "Accepted; poll the job until running", body = Job),
              JobErrors, BodyErrors))]
pub async fn start_job(
    State(st): State<AppState>,
    who: Option<Extension<Identity>>,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let Json(req) = body?;
    let req = st.as_caller(req.into_proto()?, who.as_deref());
    let job = call(&st, st.probe().start_job(req)).await?;
    tracing::info!(job_id = %job.job_id, port = %job.port, status = %job.status, "job started");
    Ok((StatusCode::CREATED, Json(job.into())))
}

/// All jobs the probe keeps (running and recent), oldest first.
#[utoipa::path(get, path = paths::JOBS, tag = "jobs",
    responses((status = 200, body = JobList), JobErrors))]
pub async fn list_jobs(State(st): State<AppState>) -> Result<Json<JobList>, ApiError> {
    let r = call(&st, st.probe().list_jobs(pb::ListJobsRequest {})).await?;
    Ok(Json(r.into()))
}

/// A job's status.
#[utoipa::path(get, path = paths::JOB, tag = "jobs", params(JobPath),
    responses((status = 200, body = Job), UnknownJob, JobErrors))]
pub async fn get_job(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    let job_id = p?.0;
    let job = call(&st, st.probe().get_job(pb::GetJobRequest { job_id })).await?;
    Ok(Json(job.into()))
}

/// Stop a job; stopping a finished job is not an error (it answers the job
/// as it is).
#[utoipa::path(post, path = paths::STOP, tag = "jobs", params(JobPath),
    responses((status = 200, body = Job), UnknownJob, JobErrors))]
pub async fn stop_job(
    State(st): State<AppState>,
    who: Option<Extension<Identity>>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    let job_id = p?.0;
    let req = st.as_caller(pb::StopJobRequest { job_id }, who.as_deref());
    let job = call(&st, st.probe().stop_job(req)).await?;
    tracing::info!(job_id = %job.job_id, status = %job.status, "job stop requested");
    Ok(Json(job.into()))
}

/// What the job counted since it started; `top` limits the top flows,
/// `format` may only be json.
#[utoipa::path(get, path = paths::RESULTS, tag = "jobs", params(JobPath, ResultsQuery),
    responses((status = 200, body = Results), UnknownJob, JobErrors))]
pub async fn job_results(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<Results>, ApiError> {
    let job_id = p?.0;
    let Query(q) = q?;
    let top = q.top()?;
    let r = call(
        &st,
        st.probe()
            .get_results(pb::GetResultsRequest { job_id, top }),
    )
    .await?;
    Ok(Json(r.into()))
}

/// A capture job's packets (result_detail pcaplike) as a pcapng download:
/// what was captured so far, then each packet as it is captured, until the
/// job has ended (`from=now`: only packets from now on). Needs role
/// operate when tokens are on: packets are more than counters.
#[utoipa::path(get, path = paths::CAPTURE, tag = "jobs", params(JobPath, CaptureQuery),
    responses((status = 200, description = "pcapng, streamed while the job runs",
               content_type = "application/x-pcapng", body = Vec<u8>),
              (status = 409, description = "The job does not capture (conflict)", body = ErrorBody),
              UnknownJob, JobErrors))]
pub async fn job_capture(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<CaptureQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    use axum::response::IntoResponse;
    use tokio_stream::StreamExt;
    let job_id = p?.0;
    let Query(q) = q?;
    let from_now = q.from_now()?;
    let chunks = call(
        &st,
        st.probe().stream_capture(pb::StreamCaptureRequest {
            job_id: job_id.clone(),
            from_now,
        }),
    )
    .await?;
    // The probe found the job: its id is a UUID, safe in a header.
    let name = format!("attachment; filename=\"{job_id}.pcapng\"");
    let body = axum::body::Body::from_stream(chunks.map(|c| {
        c.map(|c| axum::body::Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(s.message().to_string()))
    }));
    Ok((
        [
            (CONTENT_TYPE, "application/x-pcapng".to_string()),
            (CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}
