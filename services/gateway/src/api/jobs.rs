//! The job routes: the seed's (`/jobs/...`) and the original design's
//! (`/v1/monitor/jobs/...`), each one probe call.

use axum::{
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        Path, Query, State,
    },
    http::StatusCode,
    Json,
};
use telegen_proto::v1 as pb;
use utoipa::IntoResponses;

use crate::{
    error::{ApiError, ErrorBody},
    model::{Job, JobList, Results, ResultsQuery, StartRequest},
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

/// Errors of the routes that take a body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
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
        description = "TELEGEN_MAX_JOBS jobs are already starting or running (concurrency_limit)"
    )]
    Limit(#[to_schema] ErrorBody),
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

async fn start(
    st: AppState,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let Json(req) = body?;
    let req = req.into_proto()?;
    let job = call(&st, st.probe().start_job(req)).await?;
    tracing::info!(job_id = %job.job_id, port = %job.port, status = %job.status, "job started");
    Ok((StatusCode::CREATED, Json(job.into())))
}

fn id(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    Ok(p?.0)
}

async fn get(st: AppState, job_id: String) -> Result<Json<Job>, ApiError> {
    let job = call(&st, st.probe().get_job(pb::GetJobRequest { job_id })).await?;
    Ok(Json(job.into()))
}

async fn stop(st: AppState, job_id: String) -> Result<Json<Job>, ApiError> {
    let job = call(&st, st.probe().stop_job(pb::StopJobRequest { job_id })).await?;
    tracing::info!(job_id = %job.job_id, status = %job.status, "job stop requested");
    Ok(Json(job.into()))
}

async fn results(
    st: AppState,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<Results>, ApiError> {
    let job_id = id(p)?;
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

async fn list(st: AppState) -> Result<Json<JobList>, ApiError> {
    let r = call(&st, st.probe().list_jobs(pb::ListJobsRequest {})).await?;
    Ok(Json(JobList {
        jobs: r.jobs.into_iter().map(Job::from).collect(),
    }))
}

/// Start a job (the seed's route).
#[utoipa::path(post, path = "/jobs/start", tag = "jobs", request_body = StartRequest,
    responses((status = 201, description = "Accepted; poll the job until running", body = Job),
              JobErrors, BodyErrors))]
pub async fn start_job(
    State(st): State<AppState>,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    start(st, body).await
}

/// Start a job (the original design's route).
#[utoipa::path(post, path = "/v1/monitor/jobs", tag = "v1", request_body = StartRequest,
    responses((status = 201, description = "Accepted; poll the job until running", body = Job),
              JobErrors, BodyErrors))]
pub async fn create_job_v1(
    State(st): State<AppState>,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    start(st, body).await
}

/// All jobs the probe keeps (running and recent), oldest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    responses((status = 200, body = JobList), JobErrors))]
pub async fn list_jobs(State(st): State<AppState>) -> Result<Json<JobList>, ApiError> {
    list(st).await
}

/// All jobs the probe keeps (running and recent), oldest first.
#[utoipa::path(get, path = "/v1/monitor/jobs", tag = "v1",
    responses((status = 200, body = JobList), JobErrors))]
pub async fn list_jobs_v1(State(st): State<AppState>) -> Result<Json<JobList>, ApiError> {
    list(st).await
}

/// A job's status.
#[utoipa::path(get, path = "/jobs/{job_id}", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses((status = 200, body = Job),
              (status = 404, description = "Unknown job (not_found)", body = ErrorBody),
              JobErrors))]
pub async fn get_job(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    get(st, id(p)?).await
}

/// A job's status.
#[utoipa::path(get, path = "/v1/monitor/jobs/{job_id}", tag = "v1",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses((status = 200, body = Job),
              (status = 404, description = "Unknown job (not_found)", body = ErrorBody),
              JobErrors))]
pub async fn get_job_v1(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    get(st, id(p)?).await
}

/// Stop a job; stopping a finished job is not an error (it answers the job
/// as it is).
#[utoipa::path(post, path = "/jobs/{job_id}/stop", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses((status = 200, body = Job),
              (status = 404, description = "Unknown job (not_found)", body = ErrorBody),
              JobErrors))]
pub async fn stop_job(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    stop(st, id(p)?).await
}

/// Stop a job (the original design's route); idempotent.
#[utoipa::path(delete, path = "/v1/monitor/jobs/{job_id}", tag = "v1",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses((status = 200, body = Job),
              (status = 404, description = "Unknown job (not_found)", body = ErrorBody),
              JobErrors))]
pub async fn delete_job_v1(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    stop(st, id(p)?).await
}

/// What the job counted since it started; `top` limits the top flows (0 to
/// 100, default 10), `format` may only be json.
#[utoipa::path(get, path = "/jobs/{job_id}/results", tag = "jobs",
    params(("job_id" = String, Path, description = "The job's UUID"), ResultsQuery),
    responses((status = 200, body = Results),
              (status = 404, description = "Unknown job (not_found)", body = ErrorBody),
              JobErrors))]
pub async fn job_results(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<Results>, ApiError> {
    results(st, p, q).await
}

/// What the job counted since it started; `top` limits the top flows (0 to
/// 100, default 10), `format` may only be json.
#[utoipa::path(get, path = "/v1/monitor/jobs/{job_id}/results", tag = "v1",
    params(("job_id" = String, Path, description = "The job's UUID"), ResultsQuery),
    responses((status = 200, body = Results),
              (status = 404, description = "Unknown job (not_found)", body = ErrorBody),
              JobErrors))]
pub async fn job_results_v1(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<Results>, ApiError> {
    results(st, p, q).await
}
