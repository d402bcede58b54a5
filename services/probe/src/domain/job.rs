//! The job: what was asked, where it counts, and where it is in its life.

use uuid::Uuid;

use super::filter::JobFilter;
use super::modes::{AttachMode, Direction, JobState, MirrorMode};

/// See [`Job::hook_direction`].
pub fn hook_direction(mode: MirrorMode, direction: Direction) -> Direction {
    if mode.uses_erspan_netdev() {
        Direction::Ingress
    } else {
        direction
    }
}

/// What a sonic job's mirror session copies (issue 17): only what the
/// job's filter selects, by ACL rules in the switch, or the whole port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorScope {
    /// The switch's ACL rules select; the note says what is known of their
    /// state (empty when STATE_DB reported them active).
    Acl(String),
    /// The whole port is mirrored, and why.
    Port(String),
}

impl MirrorScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            MirrorScope::Acl(_) => "acl",
            MirrorScope::Port(_) => "port",
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            MirrorScope::Acl(r) | MirrorScope::Port(r) => r,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub slot: u32,
    pub id: Uuid,
    pub port: String,
    pub iface: String,
    pub ifindex: u32,
    pub state: JobState,
    pub direction: Direction,
    pub mirror_mode: MirrorMode,
    pub attach_mode: Option<AttachMode>,
    pub otlp_export: bool,
    pub flows_detail: bool,
    pub duration_sec: u32,
    pub sample_rate: u32,
    pub seq: u64,
    pub started_ns: u64,
    pub expires_ns: Option<u64>,
    /// The same deadline on the boot clock, which no NTP step moves: what
    /// expiry goes by (not recorded: derived from `expires_ns` at adoption).
    pub expires_boot_ns: Option<u64>,
    pub stopped_ns: Option<u64>,
    /// Why the job failed or did not end cleanly; None when all went well.
    pub error: Option<String>,
    /// Why the job runs in another mode than asked; None when it does not.
    pub fallback: Option<String>,
    /// Sonic jobs: what the session copies; None for other modes.
    pub mirror_scope: Option<MirrorScope>,
    /// Empty: the job counts everything.
    pub filter: JobFilter,
    /// result_detail pcaplike: what it captures.
    pub capture: Option<super::capture::CaptureSpec>,
    /// Entries of the job's flow table (flows jobs), else 0.
    pub flow_table_size: u32,
    /// The final state a `stopping` job moves to once everything it held
    /// is given back (stopped, expired or failed).
    pub ending: Option<JobState>,
    /// What a `stopping` job still waits for, and why (retried until done).
    pub pending: Option<String>,
}

impl Job {
    /// Whether the classifier must parse this job's packets beyond their
    /// class (the hook's if_cfg.deep bit).
    pub fn is_deep(&self) -> bool {
        self.flows_detail || !self.filter.is_empty() || self.capture.is_some()
    }

    /// The hooks the classifier counts this job on. An `erspan` or `sonic`
    /// job's mirrored copies arrive (as ERSPAN, or decapsulated on the erspan
    /// netdev) on the counted interface's ingress whatever direction the
    /// switch mirrors (a sonic session's `direction` carries the job's);
    /// other modes count the job's own direction.
    pub fn hook_direction(&self) -> Direction {
        hook_direction(self.mirror_mode, self.direction)
    }

    /// Whether the classifier must count this job now (a job still being
    /// placed does not know where yet).
    pub fn wants_attachment(&self) -> bool {
        matches!(self.state, JobState::Starting | JobState::Running) && self.mirror_mode.attaches()
    }
}
