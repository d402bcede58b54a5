//! The probe's gRPC contract: validation and status codes, the concurrency
//! cap under parallel calls, reflection and health, the datapath-less
//! (unprivileged) mode, and the embedded version.

use futures::future::join_all;
use telegen_integration_tests::{
    grpcurl,
    netns::{Netns, Veth},
    probe::{bin_dir, Probe},
    sh,
};
use telegen_proto::v1::{self as pb, Filters};
use tonic::Code;

fn req(port: &str, direction: &str) -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: port.into(),
        direction: direction.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn parallel_starts_respect_the_cap() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[("TELEGEN_MAX_JOBS", "2")])
        .await
        .unwrap();
    let calls = (0..10).map(|_| {
        let mut c = probe.client();
        let r = req(&veth.port, "ingress");
        async move { c.start_job(r).await }
    });
    let results = join_all(calls).await;
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(ok.len(), 2, "exactly two start");
    assert_eq!(refused.len(), 8);
    for e in refused {
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert_eq!(
            e.message(),
            "At most 2 concurrent jobs are allowed. Try again later."
        );
    }
    // The cap frees when a job stops.
    let first = ok[0].get_ref().job_id.clone();
    probe.wait_status(&first, "running").await.unwrap();
    assert_eq!(probe.stop_job(&first).await.unwrap().status, "stopped");
    probe.start_job(&veth.port, "egress").await.unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let mut c = probe.client();
    let long = "x".repeat(200);
    let port = veth.port.as_str();
    let cases: Vec<(pb::StartJobRequest, &str)> = vec![
        (req("", "ingress"), "port is required"),
        (req("nosuch0", "ingress"), "does not exist"),
        (req(&long, "ingress"), "at most 15 bytes"),
        (req("eth0;reboot", "ingress"), "contains characters"),
        (req("$(id)", "ingress"), "contains characters"),
        (req("a b", "ingress"), "contains characters"),
        (req("../etc", "ingress"), "contains characters"),
        (req(port, "sideways"), "direction"),
        (req(port, ""), "direction"),
        (
            pb::StartJobRequest {
                duration_sec: Some(u32::MAX),
                ..req(port, "ingress")
            },
            "duration_sec",
        ),
        (
            pb::StartJobRequest {
                mirror_mode: "bogus".into(),
                ..req(port, "ingress")
            },
            "mirror mode",
        ),
        (
            pb::StartJobRequest {
                sample_rate: Some(0),
                ..req(port, "ingress")
            },
            "sample_rate",
        ),
        (
            pb::StartJobRequest {
                result_detail: "pcaplike".into(),
                capture: Some(pb::CaptureOptions {
                    snaplen: Some(9217),
                    ..Default::default()
                }),
                ..req(port, "ingress")
            },
            "capture.snaplen",
        ),
        (
            pb::StartJobRequest {
                capture: Some(pb::CaptureOptions::default()),
                ..req(port, "ingress")
            },
            "for result_detail pcaplike only",
        ),
        (
            pb::StartJobRequest {
                sample_rate: Some(1_000_001),
                ..req(port, "ingress")
            },
            "sample_rate",
        ),
        (
            pb::StartJobRequest {
                filters: Some(Filters {
                    dscp: vec![64],
                    ..Default::default()
                }),
                ..req(port, "ingress")
            },
            "filters.dscp",
        ),
    ];
    for (r, needle) in cases {
        let what = format!(
            "{:?}/{:?}",
            r.port.chars().take(20).collect::<String>(),
            r.direction
        );
        let err = c.start_job(r).await.expect_err(&what);
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{what}: {}",
            err.message()
        );
        assert!(
            err.message().contains(needle),
            "{what}: {:?} lacks {needle:?}",
            err.message()
        );
        assert!(
            err.message().len() < 200,
            "bounded message: {}",
            err.message()
        );
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    let e = c
        .get_job(pb::GetJobRequest {
            job_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .stop_job(pb::StopJobRequest {
            job_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .get_results(pb::GetResultsRequest {
            job_id: unknown,
            top: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .get_job(pb::GetJobRequest {
            job_id: "not-a-uuid;ls".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Nothing was created: no job, no attachment, no qdisc, no counters.
    assert!(c
        .list_jobs(pb::ListJobsRequest {})
        .await
        .unwrap()
        .into_inner()
        .jobs
        .is_empty());
    assert_eq!(
        std::fs::read_dir(probe.pin_dir.join("links"))
            .unwrap()
            .count(),
        0
    );
    assert!(!ns
        .exec("tc", &["qdisc", "show", "dev", port])
        .unwrap()
        .contains("clsact"));
    assert!(probe.snapshot().await.unwrap().interfaces.is_empty());
}

#[tokio::test]
async fn valid_filters_flows_and_sampling_are_accepted() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let mut c = probe.client();
    let job = c
        .start_job(pb::StartJobRequest {
            sample_rate: Some(100),
            result_detail: "flows".into(),
            filters: Some(Filters {
                ip_proto: vec!["udp".into()],
                l4_dport: vec![53],
                dscp: vec![46],
                ..Default::default()
            }),
            ..req(&veth.port, "ingress")
        })
        .await
        .expect("a valid flows job with filters and sampling starts")
        .into_inner();
    assert_eq!(job.result_detail, "flows");
    assert_eq!(job.sample_rate, 100);
    let f = job.filters.clone().expect("the job echoes its filters");
    assert_eq!(
        (f.ip_proto, f.l4_dport, f.dscp),
        (vec!["udp".to_string()], vec![53], vec![46])
    );
    let running = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert!(running.flow_table_size > 0);
    let r = c
        .get_results(pb::GetResultsRequest {
            job_id: job.job_id.clone(),
            top: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let fs = r.flow_stats.expect("flows jobs report their flow table");
    assert_eq!((fs.sample_rate, fs.estimated), (100, true));
    assert_eq!(fs.table_size, running.flow_table_size);
    let e = c
        .get_results(pb::GetResultsRequest {
            job_id: job.job_id.clone(),
            top: 101,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(probe.stop_job(&job.job_id).await.unwrap().status, "stopped");
}

#[tokio::test]
async fn stop_is_idempotent_and_list_shows_history() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let job = probe.start_job(&veth.port, "both").await.unwrap();
    let first = probe.stop_job(&job.job_id).await.unwrap();
    let second = probe.stop_job(&job.job_id).await.unwrap();
    assert_eq!(
        (first.status.as_str(), second.status.as_str()),
        ("stopped", "stopped")
    );
    assert_eq!(first.stopped_at, second.stopped_at);
    let jobs = probe
        .client()
        .list_jobs(pb::ListJobsRequest {})
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, job.job_id);
}

#[tokio::test]
async fn reflection_and_health_answer() {
    let ns = Netns::new("tgp").unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(probe.channel());
    for service in ["", "telegen.v1.Probe"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }
    // Reflection v1, with a tonic client.
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let mut refl = ServerReflectionClient::new(probe.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("no service list")
    };
    assert!(list.service.iter().any(|s| s.name == "telegen.v1.Probe"));
    // Reflection v1alpha, with grpcurl as an operator would use it.
    let sock = probe.socket.display().to_string();
    let out = sh(
        "grpcurl",
        &[
            "-plaintext",
            "-authority",
            "localhost",
            "-unix",
            &sock,
            "list",
        ],
    )
    .unwrap();
    assert!(out.contains("telegen.v1.Probe"), "{out}");
    let out = sh(
        "grpcurl",
        &[
            "-plaintext",
            "-authority",
            "localhost",
            "-unix",
            &sock,
            "telegen.v1.Probe/GetInfo",
        ],
    )
    .unwrap();
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["datapathEnabled"], true);
}

/// Without privileges the probe still serves the whole API; GetInfo says why
/// the datapath is off; placeholder jobs run; direct jobs are refused.
#[tokio::test]
async fn unprivileged_probe_serves_placeholder_jobs() {
    let ns = Netns::new("tgp").unwrap();
    let drop_privs = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ];
    // Jobs on lo (the only port here): lift the policy's default denial.
    let env = [
        ("TELEGEN_MIRROR_MODE", "erspan"),
        ("TELEGEN_POLICY_DENY_PORTS", "none"),
    ];
    let probe = Probe::start_with(&ns, &env, &drop_privs).await.unwrap();
    let mut c = probe.client();
    let info = probe.info().await.unwrap();
    assert!(!info.datapath_enabled);
    assert!(
        info.datapath_reason.contains("CAP_BPF"),
        "{}",
        info.datapath_reason
    );
    // Seed rule: erspan not configured -> placeholder, and the job says why.
    let job = c
        .start_job(req("lo", "ingress"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.mirror_mode, "placeholder");
    assert_eq!(job.interface, "erspan0");
    assert!(
        job.fallback_reason.contains("TELEGEN_ERSPAN_LOCAL"),
        "{}",
        job.fallback_reason
    );
    let job = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(job.attach_mode, "");
    let r = probe.results(&job.job_id).await.unwrap();
    assert_eq!(r.packets_total, 0);
    assert_eq!(r.by_proto.len(), 4);
    let direct = pb::StartJobRequest {
        mirror_mode: "direct".into(),
        ..req("lo", "ingress")
    };
    let e = c.start_job(direct).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("datapath"), "{}", e.message());
    assert_eq!(probe.stop_job(&job.job_id).await.unwrap().status, "stopped");
}

#[test]
fn version_is_embedded_the_same_in_every_binary() {
    let mut seen = Vec::new();
    for bin in [
        "telegen-probe",
        "telegen-gateway",
        "telegen-exporter",
        "telegenctl",
    ] {
        let out = sh(bin_dir().join(bin).to_str().unwrap(), &["--version"]).unwrap();
        let line = out.trim().to_string();
        let rest = line
            .strip_prefix(&format!("{bin} "))
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        assert!(
            rest.starts_with("dev (commit ") || rest.starts_with("release/mark-v"),
            "{line}"
        );
        let date = rest.rsplit("built ").next().unwrap().trim_end_matches(')');
        assert!(
            date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
            "UTC date: {date}"
        );
        seen.push(rest);
    }
    // One build, one version: version, commit and date agree everywhere.
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

/// Runs a second probe to its exit (it must refuse to start), returning its
/// exit status and output.
fn second_probe(ns: &Netns, env: &[(&str, String)]) -> (std::process::ExitStatus, String) {
    use std::time::{Duration, Instant};
    let mut child = std::process::Command::new("nsenter")
        .arg(format!("--net={}", ns.path()))
        .arg(bin_dir().join("telegen-probe"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("TELEGEN_MIRROR_MODE", "direct")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the second probe kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (status, text)
}

/// A second probe on a live probe's pin directory, or on its socket,
/// refuses to start, saying why; the first keeps serving, its socket and
/// its job untouched.
#[tokio::test]
async fn a_second_probe_refuses_to_start_and_the_first_keeps_serving() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let job = probe.start_job(&veth.port, "ingress").await.unwrap();
    probe.wait_status(&job.job_id, "running").await.unwrap();

    let other_sock = format!("unix:/tmp/telegen-second-{}.sock", std::process::id());
    let (status, out) = second_probe(
        &ns,
        &[
            ("TELEGEN_BPF_PIN_DIR", probe.pin_dir.display().to_string()),
            ("TELEGEN_PROBE_ADDR", other_sock),
        ],
    );
    assert!(!status.success(), "{out}");
    assert!(out.contains("another telegen-probe holds"), "{out}");

    let other_pins = format!("/sys/fs/bpf/telegen-second-{}", std::process::id());
    let (status, out) = second_probe(
        &ns,
        &[
            ("TELEGEN_BPF_PIN_DIR", other_pins.clone()),
            (
                "TELEGEN_PROBE_ADDR",
                format!("unix:{}", probe.socket.display()),
            ),
        ],
    );
    let _ = std::fs::remove_dir_all(&other_pins);
    assert!(!status.success(), "{out}");
    assert!(out.contains("another process serves on"), "{out}");

    assert!(probe.socket.exists());
    let j = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert!(!j.attach_mode.is_empty());
    probe.stop_job(&job.job_id).await.unwrap();
}

/// Peer credentials decide on the socket: a process that can open it (the
/// socket's group) but is not in TELEGEN_PROBE_ALLOW is refused with
/// PERMISSION_DENIED; listed, it is served. Every state change is one
/// audit line naming the caller's uid, gid and pid, and what a front end
/// claims for its own caller.
#[tokio::test]
async fn unlisted_peers_are_refused_and_state_changes_are_audited() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let nobody = "65534";
    for (allow, served) in [("uid:0", false), ("uid:0,gid:65534", true)] {
        let probe = Probe::start(
            &ns,
            &[
                ("TELEGEN_PROBE_SOCKET_GROUP", nobody),
                ("TELEGEN_PROBE_ALLOW", allow),
            ],
        )
        .await
        .unwrap();
        let sock = probe.socket.display().to_string();
        let out = grpcurl::run(
            None,
            Some(nobody),
            &[
                "-plaintext",
                "-authority",
                "localhost",
                "-unix",
                &sock,
                "telegen.v1.Probe/ListJobs",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), served, "{allow}: {err}");
        if !served {
            assert!(
                err.contains("PermissionDenied")
                    && err.contains("uid 65534 gid 65534 may not use this probe")
                    && err.contains("TELEGEN_PROBE_ALLOW"),
                "{err}"
            );
        }
    }

    let probe = Probe::start(&ns, &[]).await.unwrap();
    let mut c = probe.client();
    let mut start = tonic::Request::new(req(&veth.port, "ingress"));
    start
        .metadata_mut()
        .insert("x-telegen-caller", "rest bearer ops-alice".parse().unwrap());
    let job = c.start_job(start).await.unwrap().into_inner();
    let refused = c.start_job(req("eth0", "ingress")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    c.stop_job(pb::StopJobRequest {
        job_id: job.job_id.clone(),
    })
    .await
    .unwrap();
    let me = format!("caller=\"uid=0 gid=0 pid={} via unix\"", std::process::id());
    let log = probe.log_text();
    let audit: Vec<&str> = log.lines().filter(|l| l.contains(" audit:")).collect();
    assert_eq!(audit.len(), 3, "{audit:#?}");
    for (line, want) in audit.iter().zip([
        vec![
            "action=\"start\"",
            &job.job_id,
            "result=\"ok\"",
            "claimed=\"rest bearer ops-alice\"",
        ],
        vec![
            "action=\"start\"",
            "PermissionDenied",
            "TELEGEN_POLICY_DENY_PORTS",
        ],
        vec![
            "action=\"stop\"",
            &job.job_id,
            "status=\"stopped\"",
            "result=\"ok\"",
        ],
    ]) {
        assert!(line.contains(&me), "{line}");
        for w in want {
            assert!(line.contains(w), "{w} in {line}");
        }
    }
}
