//! The routes over a fake probe on loopback TCP: what reaches the probe
//! and the JSON that comes back; and the OpenAPI document.

use axum::{body::Body, http::Request};
use serde_json::{json, Value};
use telegen_proto::v1::probe_server::ProbeServer;
use tonic::transport::server::TcpIncoming;
use tower::ServiceExt;

use super::*;
use crate::Config;

mod fake;
use fake::FakeProbe;

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

/// The status of `method uri` with an empty body.
async fn status(app: &Router, method: &str, uri: &str) -> u16 {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn each_route_answers_at_its_alias_with_the_alias_method_only() {
    let (app, _) = gateway().await;
    // The fake probe answers GetJob, ListJobs and GetResults, and refuses
    // StopJob (400 not_supported): either way the handler was reached.
    for (method, uri, want) in [
        ("GET", format!("/jobs/{ID}"), 200),
        ("GET", format!("/v1/monitor/jobs/{ID}"), 200),
        ("GET", "/jobs".to_string(), 200),
        ("GET", "/v1/monitor/jobs".to_string(), 200),
        ("GET", format!("/v1/monitor/jobs/{ID}/results"), 200),
        ("POST", format!("/jobs/{ID}/stop"), 400),
        ("DELETE", format!("/v1/monitor/jobs/{ID}"), 400),
        // Each path has only its own method.
        ("DELETE", format!("/jobs/{ID}"), 405),
        ("POST", format!("/v1/monitor/jobs/{ID}"), 405),
        ("DELETE", format!("/jobs/{ID}/stop"), 405),
        ("GET", "/jobs/start".to_string(), 405),
        ("DELETE", "/v1/monitor/jobs".to_string(), 405),
        ("POST", format!("/v1/monitor/jobs/{ID}/stop"), 404),
    ] {
        assert_eq!(status(&app, method, &uri).await, want, "{method} {uri}");
    }
}

#[test]
fn openapi_lists_each_alias_as_the_same_operation() {
    let doc = serde_json::to_value(openapi()).unwrap();
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    for (seed, alias, id) in [
        (
            ("/jobs/start", "post"),
            ("/v1/monitor/jobs", "post"),
            "create_job_v1",
        ),
        (
            ("/jobs", "get"),
            ("/v1/monitor/jobs", "get"),
            "list_jobs_v1",
        ),
        (
            ("/jobs/{job_id}", "get"),
            ("/v1/monitor/jobs/{job_id}", "get"),
            "get_job_v1",
        ),
        (
            ("/jobs/{job_id}/stop", "post"),
            ("/v1/monitor/jobs/{job_id}", "delete"),
            "delete_job_v1",
        ),
        (
            ("/jobs/{job_id}/results", "get"),
            ("/v1/monitor/jobs/{job_id}/results", "get"),
            "job_results_v1",
        ),
    ] {
        let (mut s, mut a) = (op(seed.0, seed.1), op(alias.0, alias.1));
        assert_eq!(s["tags"], json!(["jobs"]), "{seed:?}");
        assert_eq!(a["tags"], json!(["v1"]), "{alias:?}");
        assert_eq!(a["operationId"], id, "{alias:?}");
        for o in [&mut s, &mut a] {
            let o = o.as_object_mut().unwrap();
            o.remove("tags");
            o.remove("operationId");
        }
        assert_eq!(s, a, "{seed:?} and {alias:?} differ");
    }
    let ops: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        ops, 15,
        "5 job routes twice, the capture route, 4 system routes"
    );
}

#[test]
fn openapi_declares_the_rules_the_probe_enforces() {
    use telegen_common::rest::limits::*;
    let doc = serde_json::to_value(openapi()).unwrap();
    let s = &doc["components"]["schemas"];
    let param = &doc["paths"]["/jobs/{job_id}"]["get"]["parameters"][0];
    assert_eq!(param["schema"]["$ref"], "#/components/schemas/JobId");
    assert_eq!(s["JobId"]["format"], "uuid");
    assert_eq!(s["PortName"]["maxLength"], MAX_PORT_NAME_LEN);
    assert_eq!(s["PortName"]["minLength"], 1);
    assert_eq!(s["PortName"]["pattern"], PORT_NAME_PATTERN);
    for (name, values) in [
        ("Direction", &DIRECTIONS[..]),
        ("MirrorMode", &MIRROR_MODES),
        ("JobMirrorMode", &JOB_MIRROR_MODES),
        ("SpanMethod", &SPAN_METHODS),
        ("ResultDetail", &RESULT_DETAILS),
        ("JobStatus", &STATUSES),
        ("AttachMode", &ATTACH_MODES),
    ] {
        assert_eq!(s[name]["enum"], json!(values), "{name}");
    }
    for (name, min, max) in [
        ("DurationSec", 0, MAX_DURATION_SEC),
        ("SampleRate", 1, MAX_SAMPLE_RATE),
        ("Vlan", 0, MAX_VLAN),
    ] {
        assert_eq!(
            (&s[name]["minimum"], &s[name]["maximum"]),
            (&json!(min), &json!(max))
        );
    }
    for (name, max_items, item_max) in [
        ("L4Ports", MAX_FILTER_PORTS, Some(MAX_L4_PORT)),
        ("DscpList", MAX_FILTER_DSCP, Some(MAX_DSCP)),
        ("Cidrs", MAX_FILTER_CIDRS, None),
        ("IpProtos", MAX_FILTER_PROTOS, None),
    ] {
        assert_eq!(s[name]["maxItems"], max_items, "{name}");
        if let Some(max) = item_max {
            assert_eq!(s[name]["items"]["maximum"], max, "{name}");
        }
    }
    // The request's fields point at them, and its aliases must agree.
    let start = &s["StartRequest"];
    assert_eq!(start["additionalProperties"], false);
    assert_eq!(
        start["properties"]["port"]["$ref"],
        "#/components/schemas/PortName"
    );
    assert_eq!(
        start["allOf"].as_array().unwrap().len(),
        SPAN_METHODS.len() + 1
    );
    // The response's fields too, and they are never null.
    let job = &s["Job"]["properties"];
    assert_eq!(job["status"]["$ref"], "#/components/schemas/JobStatus");
    assert_eq!(job["sample_rate"]["type"], "integer");
}
