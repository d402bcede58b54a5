//! One capture job's file as the spool keeps it: where it is, how far it
//! has been written, whether more will come; what followers wait on.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::jobs::ports::CaptureFileStats;

/// A job's capture file.
pub struct Capture {
    pub job: Uuid,
    pub path: PathBuf,
    /// The section header and interface description, as the file starts.
    pub header: Vec<u8>,
    /// Records older than the job (CLOCK_MONOTONIC) belong to a slot's
    /// earlier job.
    pub(super) since_mono_ns: u64,
    pub(super) state: Mutex<FileState>,
    /// The file's length, bumped on every write and at the end: what
    /// followers wait on.
    pub(super) grown: tokio::sync::watch::Sender<u64>,
}

pub(super) struct FileState {
    pub(super) file: Option<File>,
    pub(super) stats: CaptureFileStats,
    /// Set once the job counts no more: the packets the kernel let through.
    pub(super) expected: Option<u64>,
    pub(super) ended_at: Option<Instant>,
}

/// How long a file may wait, once its job ended, for records the kernel
/// let through but that never arrive (a ring reader that died with a
/// probe): then it is complete as it is.
const SETTLE: Duration = Duration::from_secs(2);

impl Capture {
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.grown.subscribe()
    }

    /// Whether nothing more will be written.
    pub fn complete(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (s.expected, s.ended_at) {
            (Some(n), _) if s.stats.packets + s.stats.spool_dropped >= n => true,
            (_, Some(t)) => t.elapsed() >= SETTLE,
            _ => false,
        }
    }

    pub fn stats(&self) -> CaptureFileStats {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }
}
