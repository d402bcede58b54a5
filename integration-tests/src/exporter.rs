//! The real telegen-exporter binary, unprivileged, between a real probe and
//! a real OTLP receiver.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Child,
};

use crate::{
    probe::{bin_dir, Probe},
    unpriv,
};

pub struct Exporter {
    child: Option<Child>,
    bin: PathBuf,
    pub log: PathBuf,
    env: HashMap<String, String>,
}

impl Exporter {
    /// Export `probe`'s counters to `endpoint` every 200 ms, with `extra` env.
    pub fn start(probe: &Probe, endpoint: &str, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = probe.socket.parent().expect("socket has a dir");
        Self::start_at(&bin_dir(), &probe.socket, dir, endpoint, extra)
    }

    /// Start `bin_dir/telegen-exporter` on the probe socket `socket`,
    /// exporting to `endpoint` every 200 ms, logging into `log_dir`, with
    /// `extra` env (which overrides the defaults).
    pub fn start_at(
        bin_dir: &Path,
        socket: &Path,
        log_dir: &Path,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut env: HashMap<String, String> = [
            ("TELEGEN_PROBE_ADDR", format!("unix:{}", socket.display())),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_string()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".into()),
            ("RUST_LOG", "info,telegen_exporter=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let mut e = Exporter {
            child: None,
            bin: bin_dir.join("telegen-exporter"),
            log: log_dir.join(format!("exporter-{}.log", crate::unique_id())),
            env,
        };
        e.spawn()?;
        Ok(e)
    }

    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let child = unpriv::spawn(&self.bin, &self.env, &self.log)?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An error with the log if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                self.child = None;
                anyhow::bail!("telegen-exporter exited ({st}); log:\n{}", self.log_text());
            }
        }
        Ok(())
    }

    /// SIGTERM and wait: the exporter sends a last export on the way out.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().ok()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
