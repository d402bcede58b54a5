//! The job model: enumerations with their wire strings, and the job record
//! with its conversions to the pinned `jobs` map and to the gRPC message.

use telegen_proto::v1 as pb;
use uuid::Uuid;

use crate::attach::AttachMode;
use crate::filters::JobFilter;
use crate::maps::layout::{get_str, put_str, JobRec};
use crate::timefmt::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingress" => Some(Self::Ingress),
            "egress" => Some(Self::Egress),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
            Self::Both => "both",
        }
    }
    /// Bit 0 ingress, bit 1 egress (as in job_rec.direction).
    pub fn bits(self) -> u8 {
        match self {
            Self::Ingress => 1,
            Self::Egress => 2,
            Self::Both => 3,
        }
    }
    pub fn from_bits(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Ingress),
            2 => Some(Self::Egress),
            3 => Some(Self::Both),
            _ => None,
        }
    }
    /// Whether this direction includes hook `dir` (0 ingress, 1 egress).
    pub fn has(self, dir: usize) -> bool {
        self.bits() & (1 << dir) != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorMode {
    Erspan,
    Sonic,
    Direct,
    Placeholder,
}

impl MirrorMode {
    /// Accepts the SPEC names, and the original design's `span` for direct.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "erspan" => Ok(Self::Erspan),
            "sonic" => Ok(Self::Sonic),
            "direct" | "span" => Ok(Self::Direct),
            "placeholder" => Ok(Self::Placeholder),
            other => Err(format!(
                "mirror mode {:?} is not one of erspan, sonic, direct (span), placeholder",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Erspan => "erspan",
            Self::Sonic => "sonic",
            Self::Direct => "direct",
            Self::Placeholder => "placeholder",
        }
    }
    fn code(self) -> u8 {
        match self {
            Self::Erspan => 1,
            Self::Sonic => 2,
            Self::Direct => 3,
            Self::Placeholder => 4,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::Erspan),
            2 => Some(Self::Sonic),
            3 => Some(Self::Direct),
            4 => Some(Self::Placeholder),
            _ => None,
        }
    }
    /// Whether jobs in this mode attach the classifier somewhere.
    pub fn attaches(self) -> bool {
        !matches!(self, Self::Placeholder)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Starting = 1,
    Running = 2,
    Stopping = 3,
    Stopped = 4,
    Expired = 5,
    Failed = 6,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::Starting,
            2 => Self::Running,
            3 => Self::Stopping,
            4 => Self::Stopped,
            5 => Self::Expired,
            6 => Self::Failed,
            _ => return None,
        })
    }
    /// Counted against the concurrency cap.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Starting | Self::Running)
    }
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Expired | Self::Failed)
    }
}

/// See [`Job::hook_direction`].
pub fn hook_direction(mode: MirrorMode, direction: Direction) -> Direction {
    if matches!(mode, MirrorMode::Sonic | MirrorMode::Erspan) {
        Direction::Ingress
    } else {
        direction
    }
}

#[derive(Debug, Clone)]
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
    pub stopped_ns: Option<u64>,
    pub error: String,
    pub fallback: String,
    /// Empty: the job counts everything. Persisted in the pinned
    /// job_filters map (the classifier's copy), not in the job record.
    pub filter: JobFilter,
    /// Entries of the job's flow table (flows jobs), else 0.
    pub flow_table_size: u32,
}

impl Job {
    /// Whether the classifier must parse this job's packets beyond their
    /// class (the hook's if_cfg.deep bit).
    pub fn is_deep(&self) -> bool {
        self.flows_detail || !self.filter.is_empty()
    }

    /// The classifier's filter record of this job.
    pub fn kernel_filter(&self) -> crate::maps::layout::KJobFilter {
        self.filter.to_kernel(self.flows_detail, self.sample_rate)
    }

    /// The hooks the classifier counts this job on. An `erspan` or `sonic`
    /// job's mirrored copies arrive (as ERSPAN, or decapsulated on the erspan
    /// netdev) on the counted interface's ingress whatever direction the
    /// switch mirrors (a sonic session's `direction` carries the job's);
    /// other modes count the job's own direction.
    pub fn hook_direction(&self) -> Direction {
        hook_direction(self.mirror_mode, self.direction)
    }

    /// Whether the classifier must count this job now.
    pub fn wants_attachment(&self) -> bool {
        self.state.is_active() && self.mirror_mode.attaches()
    }

    pub fn to_rec(&self) -> JobRec {
        JobRec {
            id: *self.id.as_bytes(),
            port: put_str(&self.port),
            iface: put_str(&self.iface),
            ifindex: self.ifindex,
            state: self.state as u8,
            direction: self.direction.bits(),
            mirror_mode: self.mirror_mode.code(),
            attach_mode: self.attach_mode.map_or(0, |m| m as u8),
            otlp_export: self.otlp_export as u8,
            result_detail: self.flows_detail as u8,
            duration_sec: self.duration_sec,
            sample_rate: self.sample_rate,
            flow_table_size: self.flow_table_size,
            seq: self.seq,
            started_unix_ns: self.started_ns,
            expires_unix_ns: self.expires_ns.unwrap_or(0),
            stopped_unix_ns: self.stopped_ns.unwrap_or(0),
            error: put_str(&self.error),
            fallback: put_str(&self.fallback),
            ..JobRec::default()
        }
    }

    /// A job from its pinned record; None for a free or unreadable slot.
    pub fn from_rec(slot: u32, r: &JobRec) -> Option<Job> {
        Some(Job {
            slot,
            id: Uuid::from_bytes(r.id),
            port: get_str(&r.port),
            iface: get_str(&r.iface),
            ifindex: r.ifindex,
            state: JobState::from_code(r.state)?,
            direction: Direction::from_bits(r.direction)?,
            mirror_mode: MirrorMode::from_code(r.mirror_mode)?,
            attach_mode: AttachMode::from_code(r.attach_mode),
            otlp_export: r.otlp_export != 0,
            flows_detail: r.result_detail != 0,
            duration_sec: r.duration_sec,
            sample_rate: r.sample_rate,
            seq: r.seq,
            started_ns: r.started_unix_ns,
            expires_ns: (r.expires_unix_ns != 0).then_some(r.expires_unix_ns),
            stopped_ns: (r.stopped_unix_ns != 0).then_some(r.stopped_unix_ns),
            error: get_str(&r.error),
            fallback: get_str(&r.fallback),
            filter: JobFilter::default(),
            flow_table_size: r.flow_table_size,
        })
    }

    pub fn to_proto(&self) -> pb::Job {
        pb::Job {
            job_id: self.id.to_string(),
            status: self.state.as_str().into(),
            port: self.port.clone(),
            direction: self.direction.as_str().into(),
            interface: self.iface.clone(),
            mirror_mode: self.mirror_mode.as_str().into(),
            attach_mode: self
                .attach_mode
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            started_at: rfc3339(self.started_ns),
            expires_at: self.expires_ns.map(rfc3339).unwrap_or_default(),
            stopped_at: self.stopped_ns.map(rfc3339).unwrap_or_default(),
            error: self.error.clone(),
            duration_sec: self.duration_sec,
            ifindex: self.ifindex,
            fallback_reason: self.fallback.clone(),
            otlp_export: self.otlp_export,
            result_detail: if self.flows_detail {
                "flows"
            } else {
                "summary"
            }
            .into(),
            sample_rate: self.sample_rate,
            filters: (!self.filter.is_empty()).then(|| self.filter.to_proto()),
            flow_table_size: self.flow_table_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let job = Job {
            slot: 3,
            id: Uuid::new_v4(),
            port: "Ethernet0".into(),
            iface: "Ethernet0".into(),
            ifindex: 7,
            state: JobState::Running,
            direction: Direction::Both,
            mirror_mode: MirrorMode::Direct,
            attach_mode: Some(AttachMode::Tc),
            otlp_export: true,
            flows_detail: false,
            duration_sec: 120,
            sample_rate: 1,
            seq: 9,
            started_ns: 1_700_000_000_000_000_000,
            expires_ns: Some(1_700_000_120_000_000_000),
            stopped_ns: None,
            error: String::new(),
            fallback: "why".into(),
            filter: JobFilter::default(),
            flow_table_size: 0,
        };
        let back = Job::from_rec(3, &job.to_rec()).unwrap();
        assert_eq!(back.to_proto(), job.to_proto());
        assert!(Job::from_rec(0, &JobRec::default()).is_none());
    }

    #[test]
    fn mirror_modes() {
        assert_eq!(MirrorMode::parse("span"), Ok(MirrorMode::Direct));
        assert!(MirrorMode::parse("bogus").is_err());
    }
}
