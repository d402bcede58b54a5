//! The real telegen-gateway binary, run as an unprivileged user (nobody) on a
//! loopback port in front of a real probe, and a small blocking HTTP client.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Child,
    time::Duration,
};

use crate::{
    netns::{Netns, Veth},
    poll,
    probe::{bin_dir, Probe},
    unpriv,
};

/// uid/gid the gateway runs as in tests (nobody/nogroup).
pub const GATEWAY_ID: &str = unpriv::UNPRIVILEGED_ID;

pub struct Gateway {
    child: Option<Child>,
    bin: PathBuf,
    pub url: String,
    pub log: PathBuf,
    env: HashMap<String, String>,
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Gateway {
    /// Start the gateway as nobody, without capabilities, in front of `probe`,
    /// and wait until /healthz answers.
    pub async fn start(probe: &Probe, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let gw = Self::spawn(probe, extra)?;
        gw.wait_healthy().await?;
        Ok(gw)
    }

    /// Wait (up to 20 s) until /healthz answers 200.
    pub async fn wait_healthy(&self) -> anyhow::Result<()> {
        let url = self.url.clone();
        poll("gateway /healthz", Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                tokio::task::spawn_blocking(move || http("GET", &format!("{url}/healthz")).send())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .filter(|r| r.status == 200)
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; gateway log:\n{}", self.log_text()))?;
        Ok(())
    }

    /// Start the process without waiting for it (for start-up failure tests).
    pub fn spawn(probe: &Probe, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = probe.socket.parent().expect("socket has a dir");
        Self::spawn_at(&bin_dir(), &probe.socket, dir, extra)
    }

    /// Start `bin_dir/telegen-gateway` in front of the probe socket `socket`,
    /// logging into `log_dir`, without waiting for it.
    pub fn spawn_at(
        bin_dir: &Path,
        socket: &Path,
        log_dir: &Path,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        // An explicit listen address in `extra` decides the port to talk to.
        let port = match extra.iter().find(|(k, _)| *k == "TELEGEN_API_LISTEN") {
            Some((_, v)) => v.parse::<std::net::SocketAddr>().map_or(0, |a| a.port()),
            None => free_port()?,
        };
        let mut env: HashMap<String, String> = [
            ("TELEGEN_API_LISTEN", format!("127.0.0.1:{port}")),
            ("TELEGEN_PROBE_ADDR", format!("unix:{}", socket.display())),
            ("RUST_LOG", "info,telegen_gateway=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let mut gw = Gateway {
            child: None,
            bin: bin_dir.join("telegen-gateway"),
            url: format!("http://127.0.0.1:{port}"),
            log: log_dir.join(format!("gateway-{port}.log")),
            env,
        };
        gw.respawn()?;
        Ok(gw)
    }

    pub fn respawn(&mut self) -> anyhow::Result<()> {
        self.child = Some(unpriv::spawn(&self.bin, &self.env, &self.log)?);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (bounded) for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        http("GET", &format!("{}{path}", self.url))
            .send()
            .expect("HTTP GET")
    }

    pub fn post_json(&self, path: &str, body: &str) -> Resp {
        http("POST", &format!("{}{path}", self.url))
            .json(body)
            .send()
            .expect("HTTP POST")
    }

    pub fn req(&self, method: &str, path: &str) -> Req {
        http(method, &format!("{}{path}", self.url))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A probe (direct mode) in a namespace with a veth pair to a peer namespace,
/// and an unprivileged gateway in front of it.
pub struct Stack {
    pub gw: Gateway,
    pub probe: Probe,
    pub veth: Veth,
    pub peer: Netns,
    pub ns: Netns,
}

impl Stack {
    pub async fn start(
        probe_env: &[(&str, &str)],
        gw_env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let (ns, peer) = (Netns::new("tgg")?, Netns::new("tgh")?);
        let veth = Veth::new(&ns, &peer)?;
        let mut env = vec![("TELEGEN_PROBE_SOCKET_GROUP", GATEWAY_ID)];
        env.extend_from_slice(probe_env);
        let probe = Probe::start(&ns, &env).await?;
        let gw = Gateway::start(&probe, gw_env).await?;
        Ok(Stack {
            gw,
            probe,
            veth,
            peer,
            ns,
        })
    }
}

/// One HTTP answer: status, raw body and the body as JSON (Null if not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: serde_json::Value,
}

impl Resp {
    /// The `error` code of a JSON error body.
    pub fn code(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

pub struct Req {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An HTTP client that returns every status as a response (not an error) and
/// keeps connections alive between calls. Each phase of a call (connect, send,
/// wait for the answer, read its body) has 30 s. Not one deadline for the
/// whole call: with one, ureq resolves the host in a new thread on every call,
/// which costs the client more CPU than the gateway spends answering.
pub fn agent() -> ureq::Agent {
    let phase = Some(Duration::from_secs(30));
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(phase)
        .timeout_send_request(phase)
        .timeout_send_body(phase)
        .timeout_recv_response(phase)
        .timeout_recv_body(phase)
        .build()
        .into()
}

pub fn http(method: &str, url: &str) -> Req {
    Req {
        method: method.into(),
        url: url.into(),
        headers: vec![],
        body: vec![],
    }
}

impl Req {
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }

    pub fn json(self, b: &str) -> Self {
        self.header("Content-Type", "application/json").body(b)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Send on a fresh connection.
    pub fn send(self) -> anyhow::Result<Resp> {
        self.send_with(&agent())
    }

    /// Send through `agent`, reusing its kept-alive connections.
    pub fn send_with(self, agent: &ureq::Agent) -> anyhow::Result<Resp> {
        let mut b = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        let resp = agent.run(b.body(self.body)?)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.into_body().read_to_string()?;
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Ok(Resp {
            status,
            content_type,
            text,
            json,
        })
    }
}

/// The effective capability set and real uid of a process, from /proc.
pub fn cap_eff_and_uid(pid: u32) -> anyhow::Result<(u64, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/{pid}/status"))
    };
    let cap = u64::from_str_radix(field("CapEff:")?, 16)?;
    let uid = field("Uid:")?
        .split_whitespace()
        .next()
        .unwrap_or("")
        .parse()?;
    Ok((cap, uid))
}
