//! Mirror mode `erspan` on this host's kernel: configuration errors stop the
//! probe naming the variable; a job falls back to placeholder, saying why,
//! when erspan is not configured or the netdev cannot be provisioned (these
//! machines' kernel has no ip_gre); a netdev in the way is refused (409).
//! Real ERSPAN (a kernel with ip_gre) is tested in a VM: integration-tests/vm/.

use std::process::{Command, Stdio};

use telegen_integration_tests::{
    netns::{Netns, Veth},
    probe::{bin_dir, Probe},
};
use telegen_proto::v1 as pb;
use tonic::Code;

const ENDPOINTS: [(&str, &str); 3] = [
    ("TELEGEN_MIRROR_MODE", "erspan"),
    ("TELEGEN_ERSPAN_LOCAL", "192.0.2.10"),
    ("TELEGEN_ERSPAN_REMOTE", "192.0.2.100"),
];

fn req(port: &str) -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: port.into(),
        direction: "ingress".into(),
        ..Default::default()
    }
}

/// Whether this kernel can create erspan netdevs (tried in a scratch netns).
fn kernel_has_erspan() -> bool {
    let ns = Netns::new("tge").unwrap();
    ns.exec(
        "ip",
        &[
            "link",
            "add",
            "e0",
            "type",
            "erspan",
            "key",
            "1",
            "local",
            "192.0.2.1",
            "remote",
            "192.0.2.2",
        ],
    )
    .is_ok()
}

fn links(ns: &Netns) -> String {
    ns.exec("ip", &["-o", "link", "show"]).unwrap()
}

/// erspan configured, on a kernel without ip_gre: the job runs in
/// placeholder mode; its status and the log name the failure; nothing was
/// attached or created. (On a kernel with ip_gre the job runs in erspan mode
/// on a netdev the probe creates, and removes at stop.)
#[tokio::test]
async fn erspan_provisioning_failure_falls_back_to_placeholder() {
    let has_erspan = kernel_has_erspan();
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &ENDPOINTS).await.unwrap();
    let job = probe
        .client()
        .start_job(req(&veth.port))
        .await
        .unwrap()
        .into_inner();
    let job = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(job.interface, "erspan0");
    assert_eq!(job.port, veth.port);
    if has_erspan {
        eprintln!("this kernel has ip_gre: checking real provisioning instead");
        assert_eq!(job.mirror_mode, "erspan", "{}", job.fallback_reason);
        assert!(job.fallback_reason.is_empty());
        let link = ns.exec("ip", &["-d", "link", "show", "erspan0"]).unwrap();
        assert!(
            link.contains("erspan remote 192.0.2.100 local 192.0.2.10"),
            "{link}"
        );
        assert!(link.contains("alias telegen-sonic"), "{link}");
        probe.stop_job(&job.job_id).await.unwrap();
        assert!(!links(&ns).contains("erspan0"), "netdev removed at stop");
        return;
    }
    assert_eq!(job.mirror_mode, "placeholder");
    assert_eq!(job.attach_mode, "");
    let why = &job.fallback_reason;
    assert!(why.starts_with("erspan provisioning failed"), "{why}");
    assert!(why.contains("no ip_gre"), "{why}");
    assert!(why.contains("Operation not supported"), "{why}");
    assert!(why.ends_with("fell back to placeholder"), "{why}");
    let log = probe.log_text();
    assert!(
        log.contains("mirror fallback") && log.contains("no ip_gre"),
        "{log}"
    );
    // Placeholder: zero counters, no netdev, no hook on the port.
    let r = probe.results(&job.job_id).await.unwrap();
    assert_eq!(r.packets_total, 0);
    assert!(!links(&ns).contains("erspan0"));
    let qdiscs = ns
        .exec("tc", &["qdisc", "show", "dev", &veth.port])
        .unwrap();
    assert!(!qdiscs.contains("clsact"), "{qdiscs}");
    assert_eq!(probe.stop_job(&job.job_id).await.unwrap().status, "stopped");
}

/// erspan without TELEGEN_ERSPAN_LOCAL/_REMOTE: "not configured", naming
/// what is missing; the placeholder job reports TELEGEN_ERSPAN_NAME.
#[tokio::test]
async fn erspan_not_configured_falls_back_to_placeholder() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(
        &ns,
        &[
            ("TELEGEN_MIRROR_MODE", "erspan"),
            ("TELEGEN_ERSPAN_LOCAL", "192.0.2.10"),
            ("TELEGEN_ERSPAN_NAME", "mirror7"),
        ],
    )
    .await
    .unwrap();
    let job = probe
        .client()
        .start_job(req(&veth.port))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.mirror_mode, "placeholder");
    assert_eq!(job.interface, "mirror7");
    let why = &job.fallback_reason;
    assert!(why.starts_with("erspan mode is not configured"), "{why}");
    assert!(why.contains("TELEGEN_ERSPAN_REMOTE unset"), "{why}");
    assert!(!why.contains("TELEGEN_ERSPAN_LOCAL unset"), "{why}");
    probe.wait_status(&job.job_id, "running").await.unwrap();
    assert!(probe.log_text().contains("is not configured"));
    assert!(!links(&ns).contains("mirror7"));

    // The default mode is erspan too; neither endpoint set names both.
    let probe = Probe::start(&ns, &[("TELEGEN_MIRROR_MODE", "")])
        .await
        .unwrap();
    let job = probe
        .client()
        .start_job(req(&veth.port))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.mirror_mode, "placeholder");
    assert_eq!(job.interface, "erspan0");
    assert!(
        job.fallback_reason
            .contains("TELEGEN_ERSPAN_LOCAL and TELEGEN_ERSPAN_REMOTE unset"),
        "{}",
        job.fallback_reason
    );
}

/// A device called TELEGEN_ERSPAN_NAME that is not an erspan netdev is
/// never touched: the start is refused with FAILED_PRECONDITION (REST 409).
#[tokio::test]
async fn a_foreign_device_with_the_name_is_refused() {
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    ns.exec("ip", &["link", "add", "erspan0", "type", "bridge"])
        .unwrap();
    let probe = Probe::start(&ns, &ENDPOINTS).await.unwrap();
    let e = probe.client().start_job(req(&veth.port)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message()
            .contains("erspan0 exists but is a bridge device, not erspan"),
        "{}",
        e.message()
    );
    assert!(probe
        .client()
        .list_jobs(pb::ListJobsRequest {})
        .await
        .unwrap()
        .into_inner()
        .jobs
        .is_empty());
    let link = ns.exec("ip", &["-d", "link", "show", "erspan0"]).unwrap();
    assert!(link.contains("bridge"), "left as it was: {link}");
    // A link device that does not exist is a provisioning failure: fallback.
    let probe2 = Probe::start(
        &ns,
        &[
            ENDPOINTS[0],
            ENDPOINTS[1],
            ENDPOINTS[2],
            ("TELEGEN_ERSPAN_NAME", "erspan9"),
            ("TELEGEN_ERSPAN_DEV", "nosuchdev0"),
        ],
    )
    .await
    .unwrap();
    let job = probe2
        .client()
        .start_job(req(&veth.port))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.mirror_mode, "placeholder");
    assert!(
        job.fallback_reason.contains("\"nosuchdev0\"")
            && job.fallback_reason.contains("does not exist"),
        "{}",
        job.fallback_reason
    );
}

/// Every bad TELEGEN_ERSPAN_* value stops the probe at start, and the
/// message names the variable.
#[test]
fn bad_erspan_settings_stop_the_probe_naming_the_variable() {
    let probe = bin_dir().join("telegen-probe");
    assert!(probe.exists(), "{} not built", probe.display());
    let dir = std::env::temp_dir().join(format!("telegen-mirror-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (var, val, why) in [
        ("TELEGEN_ERSPAN_LOCAL", "192.0.2", "not an IPv4 address"),
        ("TELEGEN_ERSPAN_LOCAL", "2001:db8::1", "not an IPv4 address"),
        ("TELEGEN_ERSPAN_REMOTE", "255.255.255.255", "not a unicast"),
        ("TELEGEN_ERSPAN_KEY", "1024", "from 0 to 1023"),
        ("TELEGEN_ERSPAN_KEY", "ten", "from 0 to 1023"),
        ("TELEGEN_ERSPAN_TTL", "300", "TTL"),
        ("TELEGEN_ERSPAN_TOS", "inherit-ish", "neither \"inherit\""),
        ("TELEGEN_ERSPAN_TOS", "256", "neither \"inherit\""),
        ("TELEGEN_ERSPAN_DEV", "eth0;reboot", "contains characters"),
        (
            "TELEGEN_ERSPAN_NAME",
            "a-name-too-long-0",
            "at most 15 bytes",
        ),
    ] {
        let out = Command::new(&probe)
            .env(
                "TELEGEN_PROBE_ADDR",
                format!("unix:{}/probe.sock", dir.display()),
            )
            .env("TELEGEN_BPF_PIN_DIR", "/sys/fs/bpf/telegen-mirror-cfg")
            .env("TELEGEN_MIRROR_MODE", "erspan")
            .env(var, val)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={val} was accepted");
        assert!(
            err.contains(&format!("{var}: ")) && err.contains(why),
            "{var}={val}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Nothing was created: the probe stopped before touching anything.
    assert!(!std::path::Path::new("/sys/fs/bpf/telegen-mirror-cfg").exists());
}
