//! Run a service binary the way production does for the unprivileged
//! services: another uid (nobody), no supplementary groups, no capabilities
//! in any set and no way to regain them.

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, Stdio},
};

/// uid/gid the unprivileged services run as in tests (nobody/nogroup); the
/// probe gives its socket to this group (TELEGEN_PROBE_SOCKET_GROUP).
pub const UNPRIVILEGED_ID: &str = "65534";

pub fn spawn(bin: &Path, env: &HashMap<String, String>, log: &Path) -> anyhow::Result<Child> {
    anyhow::ensure!(bin.exists(), "{} not built", bin.display());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = Command::new("setpriv")
        .args([
            &format!("--reuid={UNPRIVILEGED_ID}"),
            &format!("--regid={UNPRIVILEGED_ID}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
        ])
        .arg(bin)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}
