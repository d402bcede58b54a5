//! The probe over TCP, for real: loopback only, under the same allow-list
//! as the socket (the client socket's owner, from the kernel's table); a
//! non-loopback address needs mutual TLS, and then only clients holding a
//! certificate from the configured CA are served. grpcurl throughout, as
//! an operator would use it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use telegen_integration_tests::{
    gateway::free_port, grpcurl, netns::Netns, poll, probe::bin_dir, unique_id,
};

/// The probe binary in `ns` with `env`; its log goes to `log`, its pins
/// to `<log's dir>/pins`'s name under /sys/fs/bpf.
fn spawn(ns: &Netns, env: &[(&str, &str)], log: &std::path::Path) -> Child {
    let id = log.parent().unwrap().file_name().unwrap().to_string_lossy();
    let logf = std::fs::File::create(log).unwrap();
    Command::new("nsenter")
        .arg(format!("--net={}", ns.path()))
        .arg(bin_dir().join("telegen-probe"))
        .env(
            "TELEGEN_BPF_PIN_DIR",
            format!("/sys/fs/bpf/telegen-test-{id}"),
        )
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap()
}

/// grpcurl in `ns` until it succeeds (the probe is up), or the deadline.
async fn until_served(ns: &Netns, args: &[&str]) -> String {
    let path = ns.path();
    poll("the probe to answer", Duration::from_secs(20), || {
        let out = grpcurl::run(Some(&path), None, args);
        async move {
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        }
    })
    .await
    .unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn tcp_is_loopback_only_under_the_allow_list_unless_mutual_tls() {
    let ns = Netns::new("tga").unwrap();
    let dir = std::path::PathBuf::from(format!("/tmp/telegen-test-{}", unique_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port().unwrap();

    // Refused at start-up: the privileged API on the network in clear.
    let wide = format!("0.0.0.0:{port}");
    let mut open = spawn(&ns, &[("TELEGEN_PROBE_ADDR", &wide)], &dir.join("open.log"));
    let st = open.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("open.log")).unwrap();
    assert!(!st.success());
    assert!(
        log.contains("TELEGEN_PROBE_ADDR") && log.contains("mutual TLS"),
        "{log}"
    );

    // Loopback: root is served, nobody (not in TELEGEN_PROBE_ALLOW) is not.
    let lo = format!("127.0.0.1:{port}");
    let probe = Killed(spawn(
        &ns,
        &[("TELEGEN_PROBE_ADDR", &lo)],
        &dir.join("lo.log"),
    ));
    let out = until_served(&ns, &["-plaintext", &lo, "telegen.v1.Probe/ListJobs"]).await;
    assert!(out.contains('{'), "{out}");
    let nobody = grpcurl::run(
        Some(&ns.path()),
        Some("65534"),
        &["-plaintext", &lo, "telegen.v1.Probe/ListJobs"],
    );
    let err = String::from_utf8_lossy(&nobody.stderr);
    assert!(!nobody.status.success());
    assert!(
        err.contains("PermissionDenied") && err.contains("uid 65534 may not use this probe"),
        "{err}"
    );
    drop(probe);

    // Mutual TLS on every address: a certificate from the CA is required.
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_cert, client_key) = leaf(vec!["operator".into()]);
    let (cert, key) = (
        file("server.pem", &server_cert),
        file("server.key", &server_key),
    );
    let ca_file = file("ca.pem", &ca.pem());
    let (ccert, ckey) = (
        file("client.pem", &client_cert),
        file("client.key", &client_key),
    );
    let _probe = Killed(spawn(
        &ns,
        &[
            ("TELEGEN_PROBE_ADDR", &wide),
            ("TELEGEN_PROBE_TLS_CERT", &cert),
            ("TELEGEN_PROBE_TLS_KEY", &key),
            ("TELEGEN_PROBE_TLS_CLIENT_CA", &ca_file),
        ],
        &dir.join("tls.log"),
    ));
    let with_cert = [
        "-cacert",
        &ca_file,
        "-cert",
        &ccert,
        "-key",
        &ckey,
        &lo,
        "telegen.v1.Probe/GetInfo",
    ];
    let out = until_served(&ns, &with_cert).await;
    assert!(out.contains("datapathEnabled"), "{out}");
    // Without a client certificate: no handshake, nothing served.
    let bare = grpcurl::run(
        Some(&ns.path()),
        None,
        &["-cacert", &ca_file, &lo, "telegen.v1.Probe/GetInfo"],
    );
    assert!(
        !bare.status.success(),
        "{}",
        String::from_utf8_lossy(&bare.stdout)
    );
    // In clear: refused too.
    let clear = grpcurl::run(
        Some(&ns.path()),
        None,
        &["-plaintext", &lo, "telegen.v1.Probe/GetInfo"],
    );
    assert!(!clear.status.success());
    let log = std::fs::read_to_string(dir.join("tls.log")).unwrap();
    assert!(log.contains("mutual_tls=true"), "{log}");
    drop(_probe);
    let _ = std::fs::remove_dir_all(format!(
        "/sys/fs/bpf/{}",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// proto/examples/python/probe_client.py with `args`, in the namespace at
/// `netns` when given; (success, stdout, stderr).
fn python(netns: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto/examples/python/probe_client.py");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={ns}")).arg("python3");
            c
        }
        None => Command::new("python3"),
    };
    let out = cmd.arg(script).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Python grpcio, the language of SONiC's own tools: the shipped example
/// client drives a job over the unix socket (with its one setting,
/// grpc.default_authority) and over the loopback TCP listener
/// (TELEGEN_PROBE_LOCAL_TCP, grpcio's defaults), and counts real packets.
#[tokio::test]
async fn the_python_grpcio_example_works_over_the_socket_and_local_tcp() {
    use telegen_integration_tests::{frames, netns::Veth, probe::Probe};
    let (ns, peer) = (Netns::new("tgp").unwrap(), Netns::new("tgq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let port = free_port().unwrap();
    let local = format!("127.0.0.1:{port}");
    let probe = Probe::start(&ns, &[("TELEGEN_PROBE_LOCAL_TCP", &local)])
        .await
        .unwrap();
    let unix = format!("unix:{}", probe.socket.display());
    // The TCP listener is in the probe's namespace: reach it from there.
    let ns_path = ns.path();
    let in_ns = |args: &[&str]| python(Some(&ns_path), args);
    let python = |args: &[&str]| python(None, args);
    let (ok, out, err) = python(&["--target", &unix, "info"]);
    assert!(
        ok && out.starts_with("probe ") && out.ends_with("datapath true"),
        "{out} {err}"
    );
    let (ok, out, err) = in_ns(&["--target", &local, "info"]);
    assert!(ok && out.starts_with("probe "), "{out} {err}");

    let (ok, job, err) = python(&["--target", &unix, "start", &veth.port, "--seconds", "60"]);
    assert!(ok, "{err}");
    poll("running", Duration::from_secs(20), || {
        let r = python(&["--target", &unix, "status", &job]);
        async move { (r.1 == "running").then_some(()) }
    })
    .await
    .unwrap();
    frames::send(&peer.path(), &veth.peer, &vec![frames::ipv4_udp(100); 5]).unwrap();
    poll("5 packets over local TCP", Duration::from_secs(20), || {
        let r = in_ns(&["--target", &local, "results", &job]);
        async move { (r.1 == "packets 5 bytes 500").then_some(()) }
    })
    .await
    .unwrap();
    let (ok, out, _) = in_ns(&["--target", &local, "stop", &job]);
    assert!(ok && out == "stopped", "{out}");
    // The same rules over TCP: a policy refusal is an error, named.
    let (ok, _, err) = python(&["--target", &unix, "start", "eth0"]);
    assert!(!ok && err.contains("PERMISSION_DENIED"), "{err}");
}
