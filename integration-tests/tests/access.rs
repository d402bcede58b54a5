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
