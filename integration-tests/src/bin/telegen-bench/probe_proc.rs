//! The probe process of the rss, latency and gateway sections, and the
//! network namespace it runs in.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, ensure, Context, Result};
use telegen_common::{connect_probe, ProbeAddr};
use telegen_integration_tests::sh;
use telegen_proto::v1::{self as pb, probe_client::ProbeClient};
use tonic::transport::Channel;

use crate::common::tail;

/// A telegen-probe process with its own socket and pin directory; dropping it
/// stops it (SIGTERM, then SIGKILL after 5 s) and removes both.
pub struct ProbeProc {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pin_dir: PathBuf,
    log: PathBuf,
}

impl ProbeProc {
    /// Start `bin_dir/telegen-probe` (inside the netns at `netns`, if any),
    /// in direct mode, with `extra` environment; wait until it answers.
    pub async fn start(
        bin_dir: &Path,
        tag: &str,
        netns: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<(Self, pb::Info)> {
        let probe = bin_dir.join("telegen-probe");
        ensure!(
            probe.exists(),
            "{} not found: build it (cargo build --release --workspace) or set TELEGEN_BIN_DIR",
            probe.display()
        );
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/tmp/telegen-bench-{pid}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let socket = dir.join(format!("{tag}.sock"));
        let _ = fs::remove_file(&socket);
        let log = dir.join(format!("{tag}.log"));
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/telegen-bench-probe-{pid}"));
        let _ = fs::remove_dir_all(&pin_dir);
        let logf = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg(&probe);
                c
            }
            None => Command::new(&probe),
        };
        cmd.env("TELEGEN_PROBE_ADDR", format!("unix:{}", socket.display()))
            .env("TELEGEN_BPF_PIN_DIR", &pin_dir)
            .env("TELEGEN_MIRROR_MODE", "direct")
            .env("TELEGEN_POLICY_MIRROR_MODES", "*")
            .env_remove("TELEGEN_ATTACH_MODE")
            .env("RUST_LOG", "info")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", probe.display()))?;
        let mut p = ProbeProc {
            child: Some(child),
            dir,
            socket,
            pin_dir,
            log,
        };
        let info = p.wait_ready().await?;
        Ok((p, info))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        tail(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// `e` with the tail of the probe's log.
    pub fn with_log(&self, e: anyhow::Error) -> anyhow::Error {
        anyhow!("{e:#}; probe log:\n{}", self.log_tail())
    }

    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                self.child = None;
                bail!("telegen-probe exited ({st}); log:\n{}", self.log_tail());
            }
        }
        Ok(())
    }

    pub fn client(&self) -> ProbeClient<Channel> {
        client_at(&self.socket)
    }

    async fn wait_ready(&mut self) -> Result<pb::Info> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            self.check_alive()?;
            ensure!(
                Instant::now() < deadline,
                "telegen-probe did not create {} within 20 s; log:\n{}",
                self.socket.display(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut client = self.client();
        loop {
            match client.get_info(pb::GetInfoRequest {}).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(e) => {
                    self.check_alive()?;
                    ensure!(
                        Instant::now() < deadline,
                        "telegen-probe did not answer GetInfo within 20 s ({e}); log:\n{}",
                        self.log_tail()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// SIGTERM and wait while letting the runtime run, so that this
    /// process's own gRPC connections can take part in the probe's graceful
    /// shutdown (a connection whose peer is not polled holds it up).
    pub async fn shutdown(mut self) {
        if let Some(deadline) = self.terminate() {
            while !self.exited() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.kill();
        // Drop removes the socket and the pins.
    }

    /// `shutdown` without a runtime.
    fn stop(&mut self) {
        if let Some(deadline) = self.terminate() {
            while !self.exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    /// SIGTERM to a running probe; how long it has to exit.
    fn terminate(&self) -> Option<Instant> {
        let child = self.child.as_ref()?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        Some(Instant::now() + Duration::from_secs(5))
    }

    /// Whether the probe is gone (exited, or cannot be waited for).
    fn exited(&mut self) -> bool {
        let gone = self
            .child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
        if gone {
            self.child = None;
        }
        gone
    }

    /// SIGKILL a probe that outlived its SIGTERM.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            eprintln!("telegen-bench: probe ignored SIGTERM for 5 s; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ProbeProc {
    fn drop(&mut self) {
        self.stop();
        // The probe leaves its pins on exit by design; they are ours to remove.
        let _ = fs::remove_dir_all(&self.pin_dir);
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(&self.log);
        let _ = fs::remove_dir(&self.dir); // only once empty
    }
}

/// A network namespace with a veth pair (one end inside), deleted when dropped.
pub struct BenchNetns {
    pub name: String,
    pub host_if: String,
}

impl BenchNetns {
    pub fn create(pid: u32) -> Result<(Self, String)> {
        let name = format!("tgbench{pid}");
        let host_if = format!("tgbh{pid}");
        let ns_if = format!("tgbn{pid}");
        let _ = sh("ip", &["netns", "del", &name]);
        let _ = sh("ip", &["link", "del", &host_if]);
        sh("ip", &["netns", "add", &name])?;
        let ns = BenchNetns { name, host_if };
        for knob in ["all", "default"] {
            sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns.name,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{knob}.disable_ipv6=1"),
                ],
            )?;
        }
        sh(
            "ip",
            &[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns_if,
                "netns",
                &ns.name,
            ],
        )?;
        sh("ip", &["link", "set", &ns.host_if, "up"])?;
        sh("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        sh("ip", &["-n", &ns.name, "link", "set", &ns_if, "up"])?;
        Ok((ns, ns_if))
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for BenchNetns {
    fn drop(&mut self) {
        if let Err(e) = sh("ip", &["netns", "del", &self.name]) {
            eprintln!("telegen-bench: {e:#}");
        }
        // Normally gone with its peer; make sure.
        let _ = sh("ip", &["link", "del", &self.host_if]);
    }
}

/// A Probe client on the unix socket `socket`.
pub fn client_at(socket: &Path) -> ProbeClient<Channel> {
    ProbeClient::new(connect_probe(&ProbeAddr::Unix(socket.to_path_buf())))
}

pub fn ensure_datapath(info: &pb::Info) -> Result<()> {
    ensure!(
        info.datapath_enabled,
        "the probe's datapath is off: {}",
        info.datapath_reason
    );
    Ok(())
}
