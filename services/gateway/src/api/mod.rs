//! The HTTP surface: job routes, system routes, JSON fallbacks, and the
//! OpenAPI document generated from the same handlers (so it cannot drift).

pub mod jobs;
pub mod system;

use axum::{
    extract::DefaultBodyLimit,
    http::{Method, StatusCode, Uri},
    middleware, Router,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::ApiError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "telegen-sonic gateway",
        description = "On-demand data-plane telemetry jobs on a SONiC switch. Every call is \
                       translated to the privileged probe's gRPC API; the gateway keeps no state.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "jobs", description = "The seed's job routes"),
        (name = "v1", description = "The original design's /v1/monitor routes"),
        (name = "system", description = "Health, readiness, version, this document")
    )
)]
struct ApiDoc;

/// The routes and their OpenAPI document, built together.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(jobs::start_job))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::stop_job))
        .routes(routes!(jobs::job_results))
        .routes(routes!(jobs::create_job_v1, jobs::list_jobs_v1))
        .routes(routes!(jobs::get_job_v1, jobs::delete_job_v1))
        .routes(routes!(jobs::job_results_v1))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::version))
        .routes(routes!(system::openapi_json))
        .split_for_parts()
}

/// The OpenAPI 3 document of this gateway.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

pub fn router(state: AppState, body_limit: usize) -> Router {
    let (routes, _) = routes();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
