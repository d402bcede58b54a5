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
use telegen_common::rest::paths;
use tower_http::trace::TraceLayer;
use utoipa::{
    openapi::{path::HttpMethod, PathItem, Paths},
    OpenApi,
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
    r.routes(routes!(system::healthz))
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

#[cfg(test)]
mod tests {
    //! The routes over a fake probe on loopback TCP: what reaches the probe
    //! and the JSON that comes back.

    use std::sync::{Arc, Mutex};

    use axum::{body::Body, http::Request};
    use serde_json::{json, Value};
    use telegen_proto::v1::{
        self as pb,
        probe_server::{Probe, ProbeServer},
    };
    use tonic::{transport::server::TcpIncoming, Request as GrpcRequest, Response, Status};
    use tower::ServiceExt;

    use super::*;
    use crate::Config;

    /// Answers GetJob and GetResults; records every GetResults request.
    #[derive(Clone, Default)]
    struct FakeProbe {
        results_calls: Arc<Mutex<Vec<pb::GetResultsRequest>>>,
    }

    #[tonic::async_trait]
    impl Probe for FakeProbe {
        async fn start_job(
            &self,
            _: GrpcRequest<pb::StartJobRequest>,
        ) -> Result<Response<pb::Job>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn get_job(
            &self,
            r: GrpcRequest<pb::GetJobRequest>,
        ) -> Result<Response<pb::Job>, Status> {
            Ok(Response::new(pb::Job {
                job_id: r.into_inner().job_id,
                status: "running".into(),
                result_detail: "flows".into(),
                sample_rate: 10,
                flow_table_size: 4096,
                filters: Some(pb::Filters {
                    ip_proto: vec!["tcp".into(), "udp".into()],
                    l4_dport: vec![443],
                    dscp: vec![46],
                    vlan: Some(100),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        }
        async fn list_jobs(
            &self,
            _: GrpcRequest<pb::ListJobsRequest>,
        ) -> Result<Response<pb::ListJobsResponse>, Status> {
            Ok(Response::new(pb::ListJobsResponse::default()))
        }
        async fn stop_job(
            &self,
            _: GrpcRequest<pb::StopJobRequest>,
        ) -> Result<Response<pb::Job>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn get_results(
            &self,
            r: GrpcRequest<pb::GetResultsRequest>,
        ) -> Result<Response<pb::Results>, Status> {
            let r = r.into_inner();
            self.results_calls.lock().unwrap().push(r.clone());
            if r.top > 100 {
                return Err(Status::invalid_argument("top: at most 100"));
            }
            Ok(Response::new(pb::Results {
                job_id: r.job_id,
                status: "running".into(),
                top_flows: vec![pb::Flow {
                    five_tuple: "10.0.0.1:1->10.0.0.2:443/TCP".into(),
                    pkts: 10,
                    bytes: 1000,
                    estimated: true,
                    protocol: "TCP".into(),
                    ..Default::default()
                }],
                flow_stats: Some(pb::FlowStats {
                    sample_rate: 10,
                    table_size: 4096,
                    evictions: 2,
                    ..Default::default()
                }),
                ..Default::default()
            }))
        }
        type WatchCountersStream =
            tonic::codegen::tokio_stream::Empty<Result<pb::CounterSnapshot, Status>>;
        async fn watch_counters(
            &self,
            _: GrpcRequest<pb::WatchCountersRequest>,
        ) -> Result<Response<Self::WatchCountersStream>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn get_info(
            &self,
            _: GrpcRequest<pb::GetInfoRequest>,
        ) -> Result<Response<pb::Info>, Status> {
            Ok(Response::new(pb::Info::default()))
        }
    }

    /// The gateway's router in front of a fresh fake probe.
    async fn gateway() -> (Router, FakeProbe) {
        let fake = FakeProbe::default();
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(ProbeServer::new(fake.clone()))
            .serve_with_incoming(incoming);
        tokio::spawn(server);
        let cfg =
            Config::from_lookup(|k| (k == "TELEGEN_PROBE_ADDR").then(|| addr.to_string())).unwrap();
        let state = AppState::new(&cfg).unwrap();
        (router(state, cfg.body_limit), fake)
    }

    async fn get(app: &Router, uri: &str) -> (u16, Value) {
        let req = Request::get(uri).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    const ID: &str = "9b4e87cb-6f0e-4a59-9c1e-2f1d3c4b5a69";

    #[tokio::test]
    async fn top_reaches_the_probe_on_both_results_routes() {
        let (app, fake) = gateway().await;
        for (query, top) in [
            ("", 0),
            ("?top=0", 0),
            ("?top=5", 5),
            ("?top=100", 100),
            ("?format=json&top=7", 7),
        ] {
            for route in ["/jobs", "/v1/monitor/jobs"] {
                let uri = format!("{route}/{ID}/results{query}");
                let (status, v) = get(&app, &uri).await;
                assert_eq!(status, 200, "{uri}: {v}");
                assert_eq!(v["flow_stats"]["evictions"], 2, "{uri}: {v}");
                assert_eq!(v["top_flows"][0]["estimated"], true, "{uri}: {v}");
                let last = fake.results_calls.lock().unwrap().pop().unwrap();
                assert_eq!((last.job_id.as_str(), last.top), (ID, top), "{uri}");
            }
        }
    }

    #[tokio::test]
    async fn a_bad_top_is_refused_before_the_probe_is_asked() {
        let (app, fake) = gateway().await;
        for query in [
            "top=101",
            "top=-1",
            "top=x",
            "top=",
            "top=1&top=2",
            "top=1.0",
        ] {
            for route in ["/jobs", "/v1/monitor/jobs"] {
                let uri = format!("{route}/{ID}/results?{query}");
                let (status, v) = get(&app, &uri).await;
                assert_eq!(status, 400, "{uri}: {v}");
                assert_eq!(v["error"], "invalid_request", "{uri}: {v}");
                assert!(v["message"].as_str().unwrap().contains("top"), "{uri}: {v}");
            }
        }
        let (status, v) = get(&app, &format!("/jobs/{ID}/results?format=csv")).await;
        assert_eq!((status, v["error"].as_str()), (400, Some("not_supported")));
        assert!(fake.results_calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn job_status_echoes_filters_and_flow_table_size() {
        let (app, _) = gateway().await;
        let (status, v) = get(&app, &format!("/jobs/{ID}")).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["filters"],
            json!({"ip_proto": ["tcp", "udp"], "l4_dport": [443], "dscp": [46], "vlan": 100})
        );
        assert_eq!(v["flow_table_size"], 4096);
    }

    #[test]
    fn openapi_documents_top_filters_and_flow_stats() {
        let doc = serde_json::to_value(openapi()).unwrap();
        for path in [
            "/jobs/{job_id}/results",
            "/v1/monitor/jobs/{job_id}/results",
        ] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let top = params
                .iter()
                .find(|p| p["name"] == "top")
                .unwrap_or_else(|| panic!("{path}: no top in {params:?}"));
            assert_eq!(top["in"], "query", "{top}");
            assert_ne!(top["required"], true, "{top}");
            assert_eq!(top["schema"]["maximum"], 100, "{top}");
            assert!(
                top["schema"]["type"].to_string().contains("integer"),
                "{top}"
            );
            assert!(params.iter().any(|p| p["name"] == "format"), "{path}");
        }
        let schemas = &doc["components"]["schemas"];
        let required = |name: &str| -> Vec<String> {
            schemas[name]["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        // Omitted when unset, so never required.
        assert!(schemas["Job"]["properties"]["filters"].is_object());
        assert!(!required("Job").contains(&"filters".to_string()));
        assert!(required("Job").contains(&"flow_table_size".to_string()));
        assert!(schemas["Results"]["properties"]["flow_stats"].is_object());
        assert!(!required("Results").contains(&"flow_stats".to_string()));
        for f in ["estimated", "src_addr", "dst_port", "protocol"] {
            assert!(required("Flow").contains(&f.to_string()), "Flow.{f}");
        }
        for f in ["sample_rate", "evictions", "table_size", "flows_seen"] {
            assert!(
                required("FlowStats").contains(&f.to_string()),
                "FlowStats.{f}"
            );
        }
        assert!(schemas["JobFilters"]["properties"]["ip_proto"].is_object());
        assert!(schemas["JobFilters"]["required"].is_null());
    }
}
