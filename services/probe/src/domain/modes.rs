//! The enumerations of a job, with their API strings: direction, mirror
//! mode, attach mode, state. (Their codes in the pinned records are
//! kernel::records' business.)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
    Both,
}

/// Hook names by index: 0 ingress, 1 egress.
pub const DIR_NAMES: [&str; 2] = ["ingress", "egress"];

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
    /// Bit 0 ingress, bit 1 egress.
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

/// A mirror mode name that is none of the known ones (shown cut to 32
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mirror mode {0:?} is not one of erspan, sonic, direct (span), placeholder")]
pub struct UnknownMirrorMode(pub String);

impl MirrorMode {
    /// Accepts the SPEC names, and the original design's `span` for direct.
    pub fn parse(s: &str) -> Result<Self, UnknownMirrorMode> {
        match s {
            "erspan" => Ok(Self::Erspan),
            "sonic" => Ok(Self::Sonic),
            "direct" | "span" => Ok(Self::Direct),
            "placeholder" => Ok(Self::Placeholder),
            other => Err(UnknownMirrorMode(other.chars().take(32).collect())),
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
    /// Whether jobs in this mode attach the classifier somewhere.
    pub fn attaches(self) -> bool {
        !matches!(self, Self::Placeholder)
    }
    /// Whether jobs in this mode count on the erspan netdev (when it could
    /// be made).
    pub fn uses_erspan_netdev(self) -> bool {
        matches!(self, Self::Erspan | Self::Sonic)
    }
}

/// How the classifier is attached to a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    Tcx,
    Tc,
}

impl AttachMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcx => "tcx",
            Self::Tc => "tc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Recorded, not yet placed: its SONiC session or erspan netdev may be
    /// in the making (the record owns them). Shown as `starting`.
    Resolving,
    Starting,
    Running,
    Stopping,
    Stopped,
    Expired,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolving | Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }
    /// Counted against the concurrency cap.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Resolving | Self::Starting | Self::Running)
    }
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Expired | Self::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_modes() {
        assert_eq!(MirrorMode::parse("span"), Ok(MirrorMode::Direct));
        assert!(MirrorMode::parse("bogus").is_err());
    }

    #[test]
    fn directions_are_bit_sets() {
        for d in [Direction::Ingress, Direction::Egress, Direction::Both] {
            assert_eq!(Direction::from_bits(d.bits()), Some(d));
            assert_eq!(Direction::parse(d.as_str()), Some(d));
        }
        assert!(Direction::Both.has(0) && Direction::Both.has(1));
        assert!(!Direction::Ingress.has(1));
    }
}
