//! Section 2, rss: the probe's idle RSS, against a trivial process measured in the same run.

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::{anyhow, Result};

use crate::common::{baseline_rss_kib, mem_kib, mem_table, rss_verdict};
use crate::probe_proc::ProbeProc;

const RSS_TARGET_KIB: u64 = 20 * 1024;

pub async fn bench(bin_dir: &Path) -> Result<String> {
    let (mut probe, info) = ProbeProc::start(bin_dir, "rss", None, &[]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    probe.check_alive()?;
    let pid = probe.pid().ok_or_else(|| anyhow!("probe not running"))?;
    let (rss, hwm) = mem_kib(pid)?;
    probe.shutdown().await;
    let base_rss = baseline_rss_kib().await?;

    let mut s = String::new();
    writeln!(
        s,
        "telegen-probe {} (datapath {}, attach mode {}), idle 1 s after its first GetInfo answer, \
         classifier loaded and pinned, no jobs.\n",
        info.version,
        if info.datapath_enabled { "on" } else { "OFF" },
        info.attach_mode
    )?;
    mem_table(&mut s, &[("telegen-probe", (rss, hwm))], base_rss)?;
    rss_verdict(&mut s, "Probe VmRSS", rss, base_rss, RSS_TARGET_KIB)?;
    if !info.datapath_enabled {
        writeln!(
            s,
            "\n**The datapath was off ({}): this is not the RSS of a working probe.**",
            info.datapath_reason
        )?;
    }
    Ok(s)
}
