//! The real telegen-probe binary, run inside a test namespace with its own
//! socket and pin directory, and a gRPC client to it.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use telegen_common::{connect_probe, ProbeAddr};
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

use crate::{netns::Netns, poll, unique_id};

pub fn bin_dir() -> PathBuf {
    std::env::var_os("TELEGEN_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

pub struct Probe {
    child: Option<Child>,
    pub ns_path: String,
    pub socket: PathBuf,
    pub pin_dir: PathBuf,
    pub log: PathBuf,
    env: HashMap<String, String>,
    /// Another telegen-probe binary than bin_dir()'s (an older probe's).
    pub bin: Option<PathBuf>,
}

impl Probe {
    /// Start a probe in `ns` in direct mode, with `extra` environment.
    pub async fn start(ns: &Netns, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with(ns, extra, &[]).await
    }

    /// Like `start`, run through `wrapper` inside the namespace (e.g. setpriv
    /// to drop privileges); the socket directory is then world-writable.
    pub async fn start_with(
        ns: &Netns,
        extra: &[(&str, &str)],
        wrapper: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_binary(ns, extra, wrapper, None).await
    }

    /// Like `start_with`, running `bin` (None: bin_dir()'s probe).
    pub async fn start_binary(
        ns: &Netns,
        extra: &[(&str, &str)],
        wrapper: &[&str],
        bin: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let id = unique_id();
        let dir = PathBuf::from(format!("/tmp/telegen-test-{id}"));
        std::fs::create_dir_all(&dir)?;
        if !wrapper.is_empty() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        }
        let socket = dir.join("probe.sock");
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/telegen-test-{id}"));
        let mut env: HashMap<String, String> = [
            ("TELEGEN_PROBE_ADDR", format!("unix:{}", socket.display())),
            ("TELEGEN_BPF_PIN_DIR", pin_dir.display().to_string()),
            ("TELEGEN_MIRROR_MODE", "direct".into()),
            // Tests choose their mirror modes; the default policy (the
            // configured one only) is tested on its own.
            ("TELEGEN_POLICY_MIRROR_MODES", "*".into()),
            ("RUST_LOG", "info,telegen_probe=debug".into()),
            (
                "TELEGEN_CAPTURE_DIR",
                dir.join("captures").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let mut p = Probe {
            child: None,
            ns_path: ns.path(),
            socket,
            log: dir.join("probe.log"),
            pin_dir,
            env,
            bin,
        };
        p.spawn(wrapper).await?;
        Ok(p)
    }

    /// (Re)start the process; `wrapper` runs between nsenter and the probe.
    pub async fn spawn(&mut self, wrapper: &[&str]) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let probe = self
            .bin
            .clone()
            .unwrap_or_else(|| bin_dir().join("telegen-probe"));
        anyhow::ensure!(
            probe.exists(),
            "{} not built (cargo build --workspace)",
            probe.display()
        );
        let mut argv: Vec<String> = vec!["nsenter".into(), format!("--net={}", self.ns_path)];
        argv.extend(wrapper.iter().map(|s| s.to_string()));
        argv.push(probe.display().to_string());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(cmd.spawn()?);
        let client = self.client();
        poll("probe to answer GetInfo", Duration::from_secs(20), || {
            let mut c = client.clone();
            async move { c.get_info(pb::GetInfoRequest {}).await.ok() }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; probe log:\n{}", self.log_text()))?;
        Ok(())
    }

    pub fn channel(&self) -> Channel {
        connect_probe(&ProbeAddr::Unix(self.socket.clone()))
    }

    pub fn client(&self) -> ProbeClient<Channel> {
        ProbeClient::new(self.channel())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM and wait: the probe exits leaving its pins and attachments.
    pub fn stop_process(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// SIGKILL: a crash.
    pub fn kill_process(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn start_job(&self, port: &str, direction: &str) -> anyhow::Result<pb::Job> {
        let req = pb::StartJobRequest {
            port: port.into(),
            direction: direction.into(),
            ..Default::default()
        };
        let job = self.client().start_job(req).await?.into_inner();
        self.wait_status(&job.job_id, "running").await
    }

    /// GetInfo.
    pub async fn info(&self) -> anyhow::Result<pb::Info> {
        Ok(self
            .client()
            .get_info(pb::GetInfoRequest {})
            .await?
            .into_inner())
    }

    pub async fn wait_status(&self, id: &str, status: &str) -> anyhow::Result<pb::Job> {
        wait_job_status(&self.client(), id, status, Duration::from_secs(10)).await
    }

    pub async fn results(&self, id: &str) -> anyhow::Result<pb::Results> {
        Ok(self
            .client()
            .get_results(pb::GetResultsRequest {
                job_id: id.into(),
                top: 0,
            })
            .await?
            .into_inner())
    }

    /// Poll until the job's results reach `packets`, then return them.
    pub async fn results_at(&self, id: &str, packets: u64) -> anyhow::Result<pb::Results> {
        poll(
            &format!("job {id} to count {packets} packets"),
            Duration::from_secs(10),
            || async {
                self.results(id)
                    .await
                    .ok()
                    .filter(|r| r.packets_total >= packets)
            },
        )
        .await
    }

    /// A capture job's pcapng as StreamCapture sends it, to the end (the
    /// job must end for the stream to).
    pub async fn capture(&self, id: &str, from_now: bool) -> anyhow::Result<Vec<u8>> {
        let mut s = self
            .client()
            .stream_capture(pb::StreamCaptureRequest {
                job_id: id.into(),
                from_now,
            })
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(c) = s.message().await? {
            out.extend(c.data);
        }
        Ok(out)
    }

    pub async fn stop_job(&self, id: &str) -> anyhow::Result<pb::Job> {
        Ok(self
            .client()
            .stop_job(pb::StopJobRequest { job_id: id.into() })
            .await?
            .into_inner())
    }

    pub async fn snapshot(&self) -> anyhow::Result<pb::CounterSnapshot> {
        let mut stream = self
            .client()
            .watch_counters(pb::WatchCountersRequest { interval_ms: 100 })
            .await?
            .into_inner();
        stream
            .message()
            .await?
            .ok_or_else(|| anyhow::anyhow!("empty counter stream"))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.kill_process();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        if let Some(dir) = self.socket.parent() {
            if std::thread::panicking() {
                eprintln!("--- probe log ---\n{}", self.log_text());
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Counters of one class in results, as (packets, bytes, hist).
pub fn class(r: &pb::Results, name: &str) -> (u64, u64, Vec<u64>) {
    let c = r.by_proto.get(name).cloned().unwrap_or_default();
    (c.packets, c.bytes, c.hist)
}

/// Sum the counters of `series` for one class.
pub fn series_class(series: &[pb::Series], name: &str) -> (u64, u64, Vec<u64>) {
    let c = series
        .iter()
        .find(|s| s.proto == name)
        .and_then(|s| s.counters.clone())
        .unwrap_or_default();
    (c.packets, c.bytes, c.hist)
}

/// Poll GetJob until the job has `status`, for at most `timeout`.
pub async fn wait_job_status(
    client: &ProbeClient<Channel>,
    id: &str,
    status: &str,
    timeout: Duration,
) -> anyhow::Result<pb::Job> {
    wait_job_where(client, id, &format!("to be {status}"), timeout, |j| {
        j.status == status
    })
    .await
}

/// Poll GetJob until `ok` holds for the job (`what` says what is awaited),
/// for at most `timeout`.
pub async fn wait_job_where(
    client: &ProbeClient<Channel>,
    id: &str,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&pb::Job) -> bool,
) -> anyhow::Result<pb::Job> {
    let ok = &ok;
    poll(&format!("job {id} {what}"), timeout, || {
        let mut c = client.clone();
        let id = id.to_string();
        async move {
            let j = c
                .get_job(pb::GetJobRequest { job_id: id })
                .await
                .ok()?
                .into_inner();
            ok(&j).then_some(j)
        }
    })
    .await
}
