//! Test support for telegen-sonic's integration tests: network namespaces
//! with veth pairs, hand-built frames sent through raw sockets, and the real
//! probe binary run inside a namespace and spoken to over its unix socket.
//!
//! Everything here is real: the kernel, the BPF programs, the traffic.

pub mod bench_objects;
pub mod exporter;
pub mod frames;
pub mod gateway;
pub mod grpcurl;
pub mod lab;
pub mod netns;
pub mod otlp;
pub mod pcapng;
pub mod probe;
pub mod redis;
pub mod sonic;
pub mod unpriv;

use std::time::{Duration, Instant};

/// A unique short id for names (interfaces allow 15 bytes).
pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{}", std::process::id() % 0xfffff, n)
}

/// Poll `f` until it returns Some or the deadline passes.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run a command (test tooling may use ip/tc; the product never does).
pub fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
