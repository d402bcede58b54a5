//! The REST gateway, for real: an unprivileged telegen-gateway process in front
//! of a real probe in a network namespace, real HTTP, real traffic on a veth.

use std::{process::Command, time::Duration};

use serde_json::{json, Value};
use telegen_integration_tests::{
    frames,
    gateway::{cap_eff_and_uid, http, Gateway, Stack, GATEWAY_ID},
    poll,
};

const CAP_MSG: &str = "At most 2 concurrent jobs are allowed. Try again later.";

/// Runs a blocking HTTP call off the async test's thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// curl, exactly as an operator types it; returns (HTTP status, JSON body).
fn curl(args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (
        code.trim().parse().expect("status"),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

async fn wait_job(url: &str, id: &str, status: &str) -> Value {
    let (url, id, status) = (url.to_string(), id.to_string(), status.to_string());
    poll(
        &format!("job {id} {status}"),
        Duration::from_secs(20),
        || {
            let (url, id, status) = (url.clone(), id.clone(), status.clone());
            async move {
                let (code, v) = blocking(move || curl(&[&format!("{url}/jobs/{id}")])).await;
                (code == 200 && v["status"] == status.as_str()).then_some(v)
            }
        },
    )
    .await
    .unwrap()
}

async fn wait_results(url: &str, path: &str, packets: u64) -> Value {
    let target = format!("{url}{path}");
    poll(
        &format!("{path} packets_total {packets}"),
        Duration::from_secs(20),
        || {
            let target = target.clone();
            async move {
                let (code, v) = blocking(move || curl(&[&target])).await;
                (code == 200 && v["packets_total"] == packets).then_some(v)
            }
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn seed_curl_flow_end_to_end_as_an_unprivileged_process() {
    let s = Stack::start(&[], &[]).await.unwrap();
    let url = s.gw.url.clone();

    // Least privilege, checked on the live process: not root, no capability.
    let (cap, uid) = cap_eff_and_uid(s.gw.pid().unwrap()).unwrap();
    assert_eq!(cap, 0, "gateway CapEff must be empty");
    assert_eq!(uid.to_string(), GATEWAY_ID);

    // The seed README's three commands, with this host's port.
    let body = format!(
        "{{\n\"port\": \"{}\",\n\"direction\": \"ingress\"\n}}",
        s.veth.port
    );
    let (code, job) = curl(&[
        "-X",
        "POST",
        &format!("{url}/jobs/start"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
    ]);
    assert_eq!(code, 201, "{job}");
    assert_eq!(job["status"], "starting");
    assert_eq!(job["interface"], s.veth.port.as_str());
    let id = job["job_id"].as_str().unwrap().to_string();
    uuid::Uuid::parse_str(&id).unwrap();
    let running = wait_job(&url, &id, "running").await;
    assert_eq!(running["mirror_mode"], "direct");
    assert!(matches!(
        running["attach_mode"].as_str(),
        Some("tcx" | "tc")
    ));

    // Real traffic: 7 IPv4 of 100 B, 3 IPv6 of 200 B, 2 ARP.
    let arp = frames::arp().len() as u64;
    let mut batch = vec![frames::ipv4_udp(100); 7];
    batch.extend(vec![frames::ipv6_tcp(200); 3]);
    batch.extend(vec![frames::arp(); 2]);
    frames::send(&s.peer.path(), &s.veth.peer, &batch).unwrap();
    let r = wait_results(&url, &format!("/jobs/{id}/results"), 12).await;
    assert_eq!(r["bytes_total"], 7 * 100 + 3 * 200 + 2 * arp);
    assert_eq!(r["by_proto"]["ipv4"], json!({"packets": 7, "bytes": 700}));
    assert_eq!(r["by_proto"]["ipv6"], json!({"packets": 3, "bytes": 600}));
    assert_eq!(r["by_proto"]["icmp6"], json!({"packets": 0, "bytes": 0}));
    assert_eq!(
        r["by_proto"]["other"],
        json!({"packets": 2, "bytes": 2 * arp})
    );
    assert_eq!(
        r["size_histogram"]["bounds"],
        json!([64, 128, 256, 512, 1024, 1518, 4096, 9216])
    );
    assert_eq!(
        r["size_histogram"]["counts"],
        json!([2, 7, 3, 0, 0, 0, 0, 0, 0])
    );
    assert!(r["window_sec"].as_f64().unwrap() > 0.0);
    assert!(r["errors"].as_object().unwrap().values().all(|v| v == 0));
    assert_eq!(r["otel_export"]["exported"], true);

    let (code, stopped) = curl(&["-X", "POST", &format!("{url}/jobs/{id}/stop")]);
    assert_eq!(code, 200);
    assert_eq!(stopped["job_id"], id.as_str());
    assert_eq!(stopped["status"], "stopped");
    let (code, after) = curl(&[&format!("{url}/jobs/{id}")]);
    assert_eq!((code, after["status"].as_str()), (200, Some("stopped")));
    assert!(after["stopped_at"].as_str().unwrap().ends_with('Z'));
    // Stopping a stopped job is not an error.
    let (code, again) = curl(&["-X", "POST", &format!("{url}/jobs/{id}/stop")]);
    assert_eq!((code, again["status"].as_str()), (200, Some("stopped")));

    // The original design's routes, same job semantics.
    let (code, v1) = curl(&[
        "-X",
        "POST",
        &format!("{url}/v1/monitor/jobs"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(
            r#"{{"port":"{}","direction":"both","duration_sec":60,"span_method":"span","result_detail":"summary"}}"#,
            s.veth.port
        ),
    ]);
    assert_eq!(code, 201, "{v1}");
    let id1 = v1["job_id"].as_str().unwrap().to_string();
    wait_job(&url, &id1, "running").await;
    frames::send(&s.peer.path(), &s.veth.peer, &vec![frames::icmp6(90); 5]).unwrap();
    let r = wait_results(
        &url,
        &format!("/v1/monitor/jobs/{id1}/results?format=json"),
        5,
    )
    .await;
    assert_eq!(r["by_proto"]["icmp6"], json!({"packets": 5, "bytes": 450}));
    let (code, list) = curl(&[&format!("{url}/v1/monitor/jobs")]);
    assert_eq!(code, 200);
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2);
    let (code, del) = curl(&["-X", "DELETE", &format!("{url}/v1/monitor/jobs/{id1}")]);
    assert_eq!((code, del["status"].as_str()), (200, Some("stopped")));
    let (code, _) = curl(&[&format!("{url}/v1/monitor/jobs/{id1}")]);
    assert_eq!(code, 200);
}

#[tokio::test]
async fn every_error_path_is_a_clear_json_error_and_changes_nothing() {
    let s = Stack::start(&[], &[]).await.unwrap();
    let gw = &s.gw;
    let port = s.veth.port.clone();
    let start = |body: &str| gw.post_json("/jobs/start", body);
    let seed = |p: &str, d: &str| format!(r#"{{"port":"{p}","direction":"{d}"}}"#);
    let long = "x".repeat(200);
    let unknown = uuid::Uuid::new_v4().to_string();
    let big = format!(
        r#"{{"port":"{port}","direction":"ingress","mirror_mode":"{}"}}"#,
        "a".repeat(100 * 1024)
    );

    let cases: Vec<(&str, crate_resp::Resp, u16, &str, &str)> = vec![
        (
            "invalid JSON",
            start("{\"port\":"),
            400,
            "invalid_json",
            "JSON",
        ),
        (
            "not JSON at all",
            start("port=eth0"),
            400,
            "invalid_json",
            "",
        ),
        (
            "wrong content type",
            gw.req("POST", "/jobs/start")
                .header("Content-Type", "text/plain")
                .body(seed(&port, "ingress"))
                .send()
                .unwrap(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "no content type",
            gw.req("POST", "/jobs/start")
                .body(seed(&port, "ingress"))
                .send()
                .unwrap(),
            415,
            "unsupported_media_type",
            "",
        ),
        (
            "missing field",
            start(r#"{"direction":"ingress"}"#),
            400,
            "invalid_request",
            "missing field `port`",
        ),
        (
            "unknown field",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","prto":1}}"#
            )),
            400,
            "invalid_request",
            "unknown field `prto`",
        ),
        (
            "wrong type",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","duration_sec":"x"}}"#
            )),
            400,
            "invalid_request",
            "duration_sec",
        ),
        (
            "bad direction",
            start(&seed(&port, "sideways")),
            400,
            "invalid_request",
            "direction",
        ),
        (
            "200-byte port",
            start(&seed(&long, "ingress")),
            400,
            "invalid_request",
            "at most 15 bytes",
        ),
        (
            "shell metacharacters",
            start(&seed("eth0;reboot", "ingress")),
            400,
            "invalid_request",
            "characters",
        ),
        (
            "command substitution",
            start(&seed("$(id)", "ingress")),
            400,
            "invalid_request",
            "characters",
        ),
        (
            "unknown port",
            start(&seed("nosuch0", "ingress")),
            400,
            "invalid_request",
            "does not exist",
        ),
        (
            "invalid filter",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","filters":{{"dscp":[64]}}}}"#
            )),
            400,
            "invalid_request",
            "filters.dscp",
        ),
        (
            "capture snaplen above 9216",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","result_detail":"pcaplike","capture":{{"snaplen":9217}}}}"#
            )),
            400,
            "invalid_request",
            "capture.snaplen",
        ),
        (
            "capture options without pcaplike",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","capture":{{"max_pps":10}}}}"#
            )),
            400,
            "invalid_request",
            "for result_detail pcaplike only",
        ),
        (
            "sample_rate 0",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","sample_rate":0}}"#
            )),
            400,
            "invalid_request",
            "sample_rate",
        ),
        (
            "sample_rate above 1000000",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","sample_rate":1000001}}"#
            )),
            400,
            "invalid_request",
            "sample_rate",
        ),
        (
            "contradictory mirror fields",
            start(&format!(
                r#"{{"port":"{port}","direction":"ingress","mirror_mode":"erspan","span_method":"span"}}"#
            )),
            400,
            "invalid_request",
            "disagree",
        ),
        (
            "oversized body",
            start(&big),
            413,
            "payload_too_large",
            "larger",
        ),
        (
            "unknown job",
            gw.get(&format!("/jobs/{unknown}")),
            404,
            "not_found",
            &unknown,
        ),
        (
            "unknown job stop",
            gw.req("POST", &format!("/jobs/{unknown}/stop"))
                .send()
                .unwrap(),
            404,
            "not_found",
            "",
        ),
        (
            "unknown job results",
            gw.get(&format!("/jobs/{unknown}/results")),
            404,
            "not_found",
            "",
        ),
        (
            "unknown job delete",
            gw.req("DELETE", &format!("/v1/monitor/jobs/{unknown}"))
                .send()
                .unwrap(),
            404,
            "not_found",
            "",
        ),
        (
            "malformed job id",
            gw.get("/jobs/not-a-uuid;ls"),
            400,
            "invalid_request",
            "not a UUID",
        ),
        (
            "escaped slash id",
            gw.get("/jobs/..%2F..%2Fetc"),
            400,
            "invalid_request",
            "not a UUID",
        ),
        (
            "results format",
            gw.get(&format!("/v1/monitor/jobs/{unknown}/results?format=csv")),
            400,
            "not_supported",
            "csv",
        ),
        (
            "unknown query",
            gw.get(&format!("/v1/monitor/jobs/{unknown}/results?x=1")),
            400,
            "invalid_request",
            "",
        ),
        (
            "top above 100",
            gw.get(&format!("/jobs/{unknown}/results?top=101")),
            400,
            "invalid_request",
            "top",
        ),
        (
            "top not a number",
            gw.get(&format!("/v1/monitor/jobs/{unknown}/results?top=ten")),
            400,
            "invalid_request",
            "top",
        ),
        (
            "negative top",
            gw.get(&format!("/jobs/{unknown}/results?format=json&top=-1")),
            400,
            "invalid_request",
            "top",
        ),
        (
            "unknown route",
            gw.get("/jobs/a/b/c"),
            404,
            "not_found",
            "no route",
        ),
        (
            "wrong method",
            gw.req("PUT", "/jobs/start").send().unwrap(),
            405,
            "method_not_allowed",
            "PUT",
        ),
    ];
    for (what, r, status, code, needle) in &cases {
        assert_eq!(r.status, *status, "{what}: {}", r.text);
        assert_eq!(r.code(), *code, "{what}: {}", r.text);
        assert!(r.content_type.starts_with("application/json"), "{what}");
        let msg = r.json["message"].as_str().unwrap_or("");
        assert!(
            !msg.is_empty() && msg.contains(needle),
            "{what}: {msg:?} lacks {needle:?}"
        );
        assert!(msg.len() < 400, "{what}: bounded message");
    }

    // Nothing was started or attached by any of them.
    let list = gw.get("/jobs");
    assert_eq!(list.json["jobs"], json!([]));
    let filters =
        s.ns.exec("tc", &["filter", "show", "dev", &port, "ingress"])
            .unwrap();
    assert!(!filters.contains("telegen"), "{filters}");

    // Double stop: both 200, both stopped.
    let job = start(&seed(&port, "ingress"));
    assert_eq!(job.status, 201, "{}", job.text);
    let id = job.json["job_id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let r = gw.req("POST", &format!("/jobs/{id}/stop")).send().unwrap();
        assert_eq!(
            (r.status, r.json["status"].as_str()),
            (200, Some("stopped")),
            "{}",
            r.text
        );
    }
}

/// So the case table above can name the response type briefly.
mod crate_resp {
    pub use telegen_integration_tests::gateway::Resp;
}

#[tokio::test]
async fn probe_hung_or_down_is_503_and_the_gateway_recovers_by_itself() {
    let mut s = Stack::start(&[], &[("TELEGEN_API_TIMEOUT_MS", "800")])
        .await
        .unwrap();
    assert_eq!(s.gw.get("/readyz").status, 200);
    let seed = format!(r#"{{"port":"{}","direction":"ingress"}}"#, s.veth.port);
    let job = s.gw.post_json("/jobs/start", &seed);
    assert_eq!(job.status, 201, "{}", job.text);
    let id = job.json["job_id"].as_str().unwrap().to_string();
    wait_job(&s.gw.url, &id, "running").await;

    // A hung probe (stopped, socket still accepting): 503 within the timeout.
    let pid = s.probe.pid().unwrap() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // kill(2) returns before every thread has stopped: wait until they have
    // (state T), or a thread still running answers the request.
    poll("the probe to be stopped", Duration::from_secs(5), || {
        let stopped = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks.filter_map(Result::ok).all(|t| {
                    std::fs::read_to_string(t.path().join("stat")).is_ok_and(|st| {
                        st.rsplit(')')
                            .next()
                            .is_some_and(|r| r.trim_start().starts_with('T'))
                    })
                })
            })
            .unwrap_or(false);
        async move { stopped.then_some(()) }
    })
    .await
    .unwrap();
    let t0 = std::time::Instant::now();
    let r = s.gw.get("/jobs");
    let waited = t0.elapsed();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(
        (r.status, r.code()),
        (503, "probe_unavailable"),
        "{}",
        r.text
    );
    assert!(
        r.json["message"].as_str().unwrap().contains("800 ms"),
        "{}",
        r.text
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert_eq!(s.gw.get("/jobs").status, 200);

    // A probe that is gone: 503 on every route that needs it.
    s.probe.stop_process();
    for path in ["/jobs", "/readyz", &format!("/jobs/{id}")] {
        let r = s.gw.get(path);
        assert_eq!(
            (r.status, r.code()),
            (503, "probe_unavailable"),
            "{path}: {}",
            r.text
        );
    }
    let r = s.gw.post_json("/jobs/start", &seed);
    assert_eq!(
        (r.status, r.code()),
        (503, "probe_unavailable"),
        "{}",
        r.text
    );
    // Liveness does not depend on the probe.
    assert_eq!(s.gw.get("/healthz").status, 200);

    // Back: the gateway reconnects by itself and the job was not lost.
    s.probe.spawn(&[]).await.unwrap();
    let url = s.gw.url.clone();
    let path = format!("{url}/jobs/{id}");
    let back = poll(
        "gateway to reach the restarted probe",
        Duration::from_secs(20),
        || {
            let path = path.clone();
            async move {
                blocking(move || http("GET", &path).send().ok())
                    .await
                    .filter(|r| r.status == 200)
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(back.json["status"], "running", "{}", back.text);
    assert_eq!(s.gw.get("/readyz").status, 200);
}

#[tokio::test]
async fn twenty_parallel_starts_with_the_cap_at_two() {
    let s = Stack::start(&[("TELEGEN_MAX_JOBS", "2")], &[])
        .await
        .unwrap();
    let (url, port) = (s.gw.url.clone(), s.veth.port.clone());
    let body = format!(r#"{{"port":"{port}","direction":"ingress"}}"#);
    let answers: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                let (url, body) = (&url, &body);
                sc.spawn(move || {
                    http("POST", &format!("{url}/jobs/start"))
                        .json(body)
                        .send()
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: Vec<_> = answers.iter().filter(|r| r.status == 201).collect();
    let limited: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(created.len(), 2, "{answers:?}");
    assert_eq!(limited.len(), 18, "{answers:?}");
    for r in &limited {
        assert_eq!(r.code(), "concurrency_limit");
        assert_eq!(r.json["message"], CAP_MSG);
    }

    // The cap frees when a job stops...
    let first = created[0].json["job_id"].as_str().unwrap().to_string();
    assert_eq!(s.gw.post_json("/jobs/start", &body).status, 429);
    let r =
        s.gw.req("POST", &format!("/jobs/{first}/stop"))
            .send()
            .unwrap();
    assert_eq!(r.status, 200);
    // ...and when one expires.
    let short = format!(r#"{{"port":"{port}","direction":"egress","duration_sec":1}}"#);
    let r = s.gw.post_json("/jobs/start", &short);
    assert_eq!(r.status, 201, "{}", r.text);
    let short_id = r.json["job_id"].as_str().unwrap().to_string();
    assert_eq!(s.gw.post_json("/jobs/start", &body).status, 429);
    wait_job(&url, &short_id, "expired").await;
    let r = s.gw.post_json("/jobs/start", &body);
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn token_guards_every_route_but_healthz_and_non_loopback_needs_one() {
    let s = Stack::start(&[], &[]).await.unwrap();
    // Refused at start-up: a non-loopback listen address without a token.
    let mut open = Gateway::spawn(&s.probe, &[("TELEGEN_API_LISTEN", "0.0.0.0:0")]).unwrap();
    let status = open
        .wait_exit(Duration::from_secs(10))
        .expect("gateway must refuse to start");
    assert!(!status.success());
    assert!(
        open.log_text().contains("TELEGEN_API_TOKEN"),
        "{}",
        open.log_text()
    );

    let token = "s3cr3t-t0ken-0123456789";
    let gw = Gateway::start(&s.probe, &[("TELEGEN_API_TOKEN", token)])
        .await
        .unwrap();
    assert_eq!(gw.get("/healthz").status, 200);
    for path in ["/jobs", "/readyz", "/version", "/openapi.json"] {
        let r = gw.get(path);
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{path}");
        let r = gw
            .req("GET", path)
            .bearer("wrong-token-0123456789")
            .send()
            .unwrap();
        assert_eq!(r.status, 401, "{path}");
        let r = gw.req("GET", path).bearer(token).send().unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    let r = gw
        .req("POST", "/jobs/start")
        .json(&format!(
            r#"{{"port":"{}","direction":"ingress"}}"#,
            s.veth.port
        ))
        .send()
        .unwrap();
    assert_eq!(r.status, 401, "no job without the token");
    assert_eq!(s.gw.get("/jobs").json["jobs"], json!([]));

    // A token alone is not enough beyond loopback: it would cross the
    // network in clear (TLS: https_with_tokens_beyond_loopback...).
    let port = telegen_integration_tests::gateway::free_port().unwrap();
    let mut wide = Gateway::spawn(
        &s.probe,
        &[
            ("TELEGEN_API_TOKEN", token),
            ("TELEGEN_API_LISTEN", &format!("0.0.0.0:{port}")),
        ],
    )
    .unwrap();
    assert!(!wide
        .wait_exit(Duration::from_secs(10))
        .expect("refused")
        .success());
    assert!(
        wide.log_text().contains("missing: TLS"),
        "{}",
        wide.log_text()
    );
}

/// A CA and a server certificate for 127.0.0.1 it signed, as PEM files in
/// `dir` named after `tag`: (ca, cert, key) paths.
fn tls_files(dir: &std::path::Path, tag: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    // Distinct names: OpenSSL (curl) takes a leaf named like its issuer for
    // a self-signed certificate.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("telegen test CA {tag}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "telegen-gateway");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let write = |name: String, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        // The gateway runs as nobody.
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        p.display().to_string()
    };
    (
        write(format!("{tag}-ca.pem"), ca.pem()),
        write(format!("{tag}-cert.pem"), cert.pem()),
        write(format!("{tag}-key.pem"), key.serialize_pem()),
    )
}

/// Beyond loopback: https (rustls) and a token, together. curl and
/// telegenctl verify the certificate against the CA given; the token is
/// never sent in clear. A renewed certificate is taken on SIGHUP, without
/// a restart; a broken one keeps the one in use.
#[tokio::test]
async fn https_with_tokens_beyond_loopback_and_the_certificate_reloads_on_sighup() {
    let s = Stack::start(&[], &[]).await.unwrap();
    let dir = s.probe.socket.parent().unwrap().to_path_buf();
    let (ca1, cert, key) = tls_files(&dir, "one");
    let token = "https-token-0123456789";
    let port = telegen_integration_tests::gateway::free_port().unwrap();
    let mut gw = Gateway::spawn(
        &s.probe,
        &[
            ("TELEGEN_API_LISTEN", &format!("0.0.0.0:{port}")),
            ("TELEGEN_API_TOKEN", token),
            ("TELEGEN_API_TLS_CERT", &cert),
            ("TELEGEN_API_TLS_KEY", &key),
        ],
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let auth = format!("Authorization: Bearer {token}");
    let get = |ca: &str| {
        let (ca, auth, url) = (ca.to_string(), auth.clone(), url.clone());
        move || curl(&["--cacert", &ca, "-H", &auth, &format!("{url}/jobs")])
    };
    poll("https /jobs", Duration::from_secs(20), || {
        let get = get(&ca1);
        async move { (blocking(get).await.0 == 200).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", gw.log_text()));
    // Plain http gets no answer it could read; no token is 401 even so.
    let (code, _) = blocking(move || curl(&[&format!("http://127.0.0.1:{port}/jobs")])).await;
    assert_ne!(code, 200);
    let ca = ca1.clone();
    let u = url.clone();
    let (code, _) = blocking(move || curl(&["--cacert", &ca, &format!("{u}/jobs")])).await;
    assert_eq!(code, 401);

    // telegenctl over https, its token from a file.
    let token_file = dir.join("ctl-token");
    std::fs::write(&token_file, token).unwrap();
    let ctl = |ca: &str| {
        std::process::Command::new(telegen_integration_tests::probe::bin_dir().join("telegenctl"))
            .env_clear()
            .args([
                "--api",
                &url,
                "--cacert",
                ca,
                "--token-file",
                token_file.to_str().unwrap(),
                "list",
            ])
            .output()
            .unwrap()
    };
    let out = ctl(&ca1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no jobs\n");

    // Renewal: a certificate from another CA, then SIGHUP.
    let (ca2, cert2, key2) = tls_files(&dir, "two");
    let pid = gw.pid().unwrap() as i32;
    std::fs::write(&key, "not a key").unwrap();
    // SAFETY: signalling the gateway this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    poll(
        "the broken key refused",
        Duration::from_secs(10),
        || async {
            gw.log_text()
                .contains("keeping the TLS certificate in use")
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        blocking(get(&ca1)).await.0,
        200,
        "still the old certificate"
    );
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    poll(
        "the new certificate served",
        Duration::from_secs(10),
        || {
            let get = get(&ca2);
            async move { (blocking(get).await.0 == 200).then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", gw.log_text()));
    assert_ne!(
        blocking(get(&ca1)).await.0,
        200,
        "the old CA no longer verifies"
    );
    assert!(!ctl(&ca1).status.success());
    assert!(ctl(&ca2).status.success());
    assert_eq!(gw.wait_exit(Duration::from_millis(1)), None, "no restart");
}

#[tokio::test]
async fn version_readyz_and_openapi_describe_what_is_served() {
    let s = Stack::start(&[], &[]).await.unwrap();
    let gw = &s.gw;
    let v = gw.get("/version");
    assert_eq!(v.status, 200);
    let out = Command::new(telegen_integration_tests::probe::bin_dir().join("telegen-gateway"))
        .arg("--version")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    for k in ["version", "commit", "build_date"] {
        let val = v.json[k].as_str().unwrap();
        assert!(!val.is_empty());
        assert!(line.contains(val), "--version {line:?} lacks {k} {val}");
    }
    let r = gw.get("/readyz");
    assert_eq!(r.json["status"], "ready");
    assert_eq!(r.json["probe"]["datapath_enabled"], true);

    // Walk the document: every operation it lists answers with a status it
    // documents, and every 2xx body has the properties its schema requires.
    let doc = gw.get("/openapi.json").json;
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    let job = gw.post_json(
        "/jobs/start",
        &format!(r#"{{"port":"{}","direction":"ingress"}}"#, s.veth.port),
    );
    let id = job.json["job_id"].as_str().unwrap().to_string();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{job_id}", &id);
            let mut req = gw.req(&method.to_uppercase(), &concrete);
            if op.get("requestBody").is_some() {
                // A valid body for a second job would hit the cap; send the
                // documented example shape with a port that does not exist.
                req = req.json(r#"{"port":"nosuch0","direction":"ingress"}"#);
            }
            let r = req.send().unwrap();
            let documented = &op["responses"][r.status.to_string()];
            assert!(
                documented.is_object(),
                "{method} {path} answered {} which it does not document: {}",
                r.status,
                r.text
            );
            if let Some(reference) = documented
                .pointer("/content/application~1json/schema/$ref")
                .and_then(Value::as_str)
            {
                let name = reference.rsplit('/').next().unwrap();
                let schema = &doc["components"]["schemas"][name];
                for req_field in schema["required"].as_array().into_iter().flatten() {
                    let f = req_field.as_str().unwrap();
                    assert!(
                        r.json.get(f).is_some(),
                        "{method} {path}: {name}.{f} missing in {}",
                        r.text
                    );
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 12, "walked only {walked} operations");
    // And the routes the seed README documents are all in it.
    for p in [
        "/jobs/start",
        "/jobs/{job_id}",
        "/jobs/{job_id}/stop",
        "/v1/monitor/jobs",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} not documented");
    }
}

#[tokio::test]
async fn invalid_filters_get_a_400_naming_the_field_and_change_nothing() {
    let s = Stack::start(&[], &[]).await.unwrap();
    let port = s.veth.port.clone();
    let start = |filters: &str| {
        s.gw.post_json(
            "/jobs/start",
            &format!(r#"{{"port":"{port}","direction":"ingress","filters":{filters}}}"#),
        )
    };
    let cases = [
        (r#"{"ip_proto":["tpc"]}"#, "filters.ip_proto", "tpc"),
        (r#"{"l4_dport":[70000]}"#, "filters.l4_dport", "70000"),
        (r#"{"l4_sport":[65536]}"#, "filters.l4_sport", "65536"),
        (
            r#"{"src_cidr":["10.0.0.0/33"]}"#,
            "filters.src_cidr",
            "10.0.0.0/33",
        ),
        (
            r#"{"dst_cidr":["10.1.2.3/8"]}"#,
            "filters.dst_cidr",
            "10.0.0.0/8",
        ),
        (r#"{"dscp":[64]}"#, "filters.dscp", "64"),
        (r#"{"vlan":4096}"#, "filters.vlan", "4096"),
    ];
    for (filters, field, needle) in cases {
        let r = start(filters);
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_request"),
            "{filters}: {}",
            r.text
        );
        let msg = r.json["message"].as_str().unwrap();
        assert!(
            msg.starts_with(field) && msg.contains(needle),
            "{filters}: {msg}"
        );
    }
    // The top-level vlan of the original design is validated the same way.
    let r = s.gw.post_json(
        "/jobs/start",
        &format!(r#"{{"port":"{port}","direction":"ingress","vlan":5000}}"#),
    );
    assert_eq!(r.code(), "invalid_request", "{}", r.text);
    // None of them started anything.
    assert_eq!(s.gw.get("/jobs").json["jobs"], json!([]));
    let filters =
        s.ns.exec("tc", &["filter", "show", "dev", &port, "ingress"])
            .unwrap();
    assert!(!filters.contains("telegen"), "{filters}");

    // A valid filter starts a job, which echoes the filters in effect.
    let r =
        start(r#"{"ip_proto":["tcp"],"l4_dport":[443],"dscp":[46],"src_cidr":["2001:db8::/32"]}"#);
    assert_eq!(r.status, 201, "{}", r.text);
    let want = json!({
        "ip_proto": ["tcp"], "l4_dport": [443], "dscp": [46], "src_cidr": ["2001:db8::/32"]
    });
    assert_eq!(r.json["filters"], want, "{}", r.text);
    let id = r.json["job_id"].as_str().unwrap().to_string();
    let job = wait_job(&s.gw.url, &id, "running").await;
    assert_eq!(job["filters"], want, "{job}");
    let r =
        s.gw.req("POST", &format!("/jobs/{id}/stop"))
            .send()
            .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn flows_jobs_and_sampling_are_accepted_and_results_take_top() {
    let s = Stack::start(&[], &[]).await.unwrap();
    let port = s.veth.port.clone();
    let r = s.gw.post_json(
        "/v1/monitor/jobs",
        &format!(
            r#"{{"port":"{port}","direction":"ingress","result_detail":"flows","sample_rate":100,"filters":{{"ip_proto":["udp"]}}}}"#
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["result_detail"], "flows", "{}", r.text);
    assert_eq!(r.json["sample_rate"], 100, "{}", r.text);
    assert_eq!(
        r.json["filters"],
        json!({"ip_proto": ["udp"]}),
        "{}",
        r.text
    );
    let id = r.json["job_id"].as_str().unwrap().to_string();
    let job = wait_job(&s.gw.url, &id, "running").await;
    assert!(job["flow_table_size"].as_u64().unwrap() > 0, "{job}");

    for path in [
        format!("/jobs/{id}/results"),
        format!("/jobs/{id}/results?top=1"),
        format!("/v1/monitor/jobs/{id}/results?format=json&top=100"),
    ] {
        let r = s.gw.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(r.json["top_flows"].is_array(), "{path}: {}", r.text);
        let fs = &r.json["flow_stats"];
        assert_eq!(fs["sample_rate"], 100, "{path}: {}", r.text);
        assert_eq!(fs["estimated"], true, "{path}: {}", r.text);
        assert_eq!(
            fs["table_size"], job["flow_table_size"],
            "{path}: {}",
            r.text
        );
        assert!(r.json["errors"].is_object(), "{path}: {}", r.text);
    }
    let r = s.gw.get(&format!("/jobs/{id}/results?top=101"));
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);

    // A summary job has no flow table.
    let r = s.gw.post_json(
        "/jobs/start",
        &format!(r#"{{"port":"{port}","direction":"egress"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["flow_table_size"], 0, "{}", r.text);
    assert!(r.json.get("filters").is_none(), "{}", r.text);
    let summary = r.json["job_id"].as_str().unwrap().to_string();
    wait_job(&s.gw.url, &summary, "running").await;
    let r = s.gw.get(&format!("/jobs/{summary}/results"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json.get("flow_stats").is_none(), "{}", r.text);
    assert_eq!(r.json["top_flows"], json!([]), "{}", r.text);
}

/// The operator's policy, enforced in the probe: each refused start is a
/// 403 `forbidden` naming the rule, and creates nothing (no job, no
/// clsact or filter on the port); an allowed one runs. Defaults: only the
/// configured mirror mode, the management interface and loopback denied.
#[tokio::test]
async fn policy_refusals_are_403_naming_the_rule_and_create_nothing() {
    let s = Stack::start(
        &[
            // Back to the default: only the configured mode (direct).
            ("TELEGEN_POLICY_MIRROR_MODES", ""),
            ("TELEGEN_POLICY_MAX_DURATION_SEC", "60"),
        ],
        &[],
    )
    .await
    .unwrap();
    let port = s.veth.port.clone();
    let start = |body: String| s.gw.req("POST", "/jobs/start").json(&body).send().unwrap();
    for (body, rule) in [
        (
            format!(
                r#"{{"port":"{port}","direction":"ingress","mirror_mode":"erspan","duration_sec":30}}"#
            ),
            "TELEGEN_POLICY_MIRROR_MODES",
        ),
        (
            format!(r#"{{"port":"{port}","direction":"ingress","duration_sec":0}}"#),
            "TELEGEN_POLICY_MAX_DURATION_SEC",
        ),
        (
            format!(r#"{{"port":"{port}","direction":"ingress","duration_sec":61}}"#),
            "TELEGEN_POLICY_MAX_DURATION_SEC",
        ),
        (
            r#"{"port":"lo","direction":"ingress","duration_sec":30}"#.to_string(),
            "TELEGEN_POLICY_DENY_PORTS",
        ),
    ] {
        let r = start(body.clone());
        assert_eq!(
            (r.status, r.code()),
            (403, "forbidden"),
            "{body}: {}",
            r.text
        );
        assert!(r.text.contains(rule), "{body}: {}", r.text);
    }
    assert_eq!(s.gw.get("/jobs").json["jobs"], json!([]));
    for dev in [port.as_str(), "lo"] {
        let qdiscs = s.ns.exec("tc", &["qdisc", "show", "dev", dev]).unwrap();
        assert!(!qdiscs.contains("clsact"), "{dev}: {qdiscs}");
    }
    let r = start(format!(
        r#"{{"port":"{port}","direction":"ingress","duration_sec":30}}"#
    ));
    assert_eq!(r.status, 201, "{}", r.text);
    // The probe's audit trail: the gateway's own credentials (nobody),
    // and what it says of its caller.
    let log = s.probe.log_text();
    let audit: Vec<&str> = log.lines().filter(|l| l.contains(" audit:")).collect();
    assert_eq!(audit.len(), 5, "{audit:#?}");
    assert!(audit.iter().all(|l| l.contains("uid=65534 gid=65534")
        && l.contains(r#"claimed="rest anonymous (no token configured)""#)));
    assert!(audit[4].contains(r#"result="ok""#), "{}", audit[4]);
}

/// Named tokens with roles from a file: `read` lists and reads but may not
/// start (403, naming the role), `operate` starts; the probe's audit line
/// names the token. A token file every user may read is refused.
#[tokio::test]
async fn token_file_roles_and_the_audit_names_the_token() {
    use std::os::unix::fs::{chown, PermissionsExt};
    let s = Stack::start(&[], &[]).await.unwrap();
    let dir = s.probe.socket.parent().unwrap().to_path_buf();
    let file = dir.join("tokens");
    std::fs::write(
        &file,
        "# name:role:token\nalice:operate:alice-0123456789abcdef\nmonitor:read:monitor-0123456789abcdef\n",
    )
    .unwrap();
    let path = file.display().to_string();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut open = Gateway::spawn(&s.probe, &[("TELEGEN_API_TOKEN_FILE", &path)]).unwrap();
    assert!(!open
        .wait_exit(Duration::from_secs(10))
        .expect("refused")
        .success());
    assert!(
        open.log_text().contains("readable by every user"),
        "{}",
        open.log_text()
    );

    chown(&file, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    let gw = Gateway::start(&s.probe, &[("TELEGEN_API_TOKEN_FILE", &path)])
        .await
        .unwrap();
    let body = format!(r#"{{"port":"{}","direction":"ingress"}}"#, s.veth.port);
    let r = gw
        .req("GET", "/jobs")
        .bearer("monitor-0123456789abcdef")
        .send()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let r = gw
        .req("POST", "/jobs/start")
        .bearer("monitor-0123456789abcdef")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    assert!(
        r.text.contains("\\\"monitor\\\" has role read"),
        "{}",
        r.text
    );
    assert_eq!(gw.get("/jobs").status, 401);
    let r = gw
        .req("POST", "/jobs/start")
        .bearer("alice-0123456789abcdef")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text);
    let log = s.probe.log_text();
    let started: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" audit:") && l.contains(r#"action="start""#))
        .collect();
    assert_eq!(
        started.len(),
        1,
        "the read token's start never reached the probe"
    );
    assert!(
        started[0].contains(r#"claimed="rest token alice (operate)""#),
        "{}",
        started[0]
    );
    assert!(!log.contains("0123456789abcdef") && !gw.log_text().contains("0123456789abcdef"));
}
