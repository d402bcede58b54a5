//! The HTTP surface: job routes, system routes, JSON fallbacks, and the
//! OpenAPI document generated from the same handlers (so it cannot drift).

pub mod jobs;
pub mod system;

use axum::{
    extract::DefaultBodyLimit,
    handler::Handler,
    http::{Method, StatusCode, Uri},
    middleware,
    routing::{on, MethodFilter},
    Router,
};
use telegen_common::rest::{paths, schema};
use tower_http::trace::TraceLayer;
use utoipa::{
    openapi::{path::HttpMethod, PathItem, Paths},
    Modify, OpenApi,
};
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouter},
    routes,
};

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

/// Serve `handler` at its documented path (`seed`, from `routes!`) and at
/// the original design's `path` with `method`, documenting the alias as the
/// same operation under the `v1` tag with operation id `id`.
fn with_alias<H, T>(
    router: OpenApiRouter<AppState>,
    seed: UtoipaMethodRouter<AppState>,
    handler: H,
    (method, path, id): (HttpMethod, &str, &str),
) -> OpenApiRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let (schemas, seed_paths, seed_router) = seed;
    let mut op = seed_paths
        .paths
        .values()
        .flat_map(|item| [&item.get, &item.post, &item.delete])
        .find_map(|op| op.clone())
        .expect("routes! of one GET, POST or DELETE handler");
    op.tags = Some(vec!["v1".into()]);
    op.operation_id = Some(id.into());
    let filter = match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Delete => MethodFilter::DELETE,
        _ => unreachable!("aliases are GET, POST or DELETE"),
    };
    let mut alias = Paths::new();
    alias.paths.insert(path.into(), PathItem::new(method, op));
    router.routes((schemas, seed_paths, seed_router)).routes((
        Vec::new(),
        alias,
        on(filter, handler),
    ))
}

/// A job route and its `/v1/monitor` alias.
macro_rules! job_route {
    ($router:expr, $handler:path, $method:ident $path:expr, $id:literal) => {
        with_alias(
            $router,
            routes!($handler),
            $handler,
            (HttpMethod::$method, $path, $id),
        )
    };
}

/// The routes and their OpenAPI document, built together.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let r = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let r = job_route!(r, jobs::start_job, Post paths::V1_JOBS, "create_job_v1");
    let r = job_route!(r, jobs::list_jobs, Get paths::V1_JOBS, "list_jobs_v1");
    let r = job_route!(r, jobs::get_job, Get paths::V1_JOB, "get_job_v1");
    let r = job_route!(r, jobs::stop_job, Delete paths::V1_JOB, "delete_job_v1");
    let r = job_route!(r, jobs::job_results, Get paths::V1_RESULTS, "job_results_v1");
    let (router, mut doc) = r
        .routes(routes!(jobs::job_capture))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::version))
        .routes(routes!(system::openapi_json))
        .split_for_parts();
    // After the routes, which bring the components it amends.
    schema::AliasRules.modify(&mut doc);
    (router, doc)
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

#[cfg(test)]
mod tests;
