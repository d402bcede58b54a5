//! The exporter's own telemetry: exports sent and failed, the last success,
//! whether the probe stream is up. Shown in the log, on /metrics and in the
//! OTLP request itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::now_ns;

#[derive(Debug)]
pub struct Stats {
    started_ns: u64,
    exports_ok: AtomicU64,
    exports_failed: AtomicU64,
    last_success_ns: AtomicU64,
    probe_connected: AtomicBool,
    snapshots: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
pub struct StatsSnapshot {
    pub started_ns: u64,
    pub exports_ok: u64,
    pub exports_failed: u64,
    pub last_success_ns: Option<u64>,
    pub probe_connected: bool,
    pub snapshots: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started_ns: now_ns(),
            exports_ok: AtomicU64::new(0),
            exports_failed: AtomicU64::new(0),
            last_success_ns: AtomicU64::new(0),
            probe_connected: AtomicBool::new(false),
            snapshots: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub fn export_ok(&self) {
        self.exports_ok.fetch_add(1, Relaxed);
        self.last_success_ns.store(now_ns(), Relaxed);
    }

    pub fn export_failed(&self) {
        self.exports_failed.fetch_add(1, Relaxed);
    }

    pub fn snapshot_received(&self) {
        self.snapshots.fetch_add(1, Relaxed);
    }

    pub fn set_probe_connected(&self, up: bool) {
        self.probe_connected.store(up, Relaxed);
    }

    pub fn get(&self) -> StatsSnapshot {
        let last = self.last_success_ns.load(Relaxed);
        StatsSnapshot {
            started_ns: self.started_ns,
            exports_ok: self.exports_ok.load(Relaxed),
            exports_failed: self.exports_failed.load(Relaxed),
            last_success_ns: (last != 0).then_some(last),
            probe_connected: self.probe_connected.load(Relaxed),
            snapshots: self.snapshots.load(Relaxed),
        }
    }
}
