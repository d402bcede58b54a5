//! Input validation shared by every entry point. Errors are typed so the API
//! layer maps them to INVALID_ARGUMENT with a message for a person.

use telegen_common::rest::limits;

use super::filter::{FilterError, FilterSpec, JobFilter};
use super::modes::{Direction, MirrorMode};

/// Longest accepted duration: a week. Longer jobs should use 0 (until stopped).
pub const MAX_DURATION_SEC: u32 = limits::MAX_DURATION_SEC;
pub const DEFAULT_DURATION_SEC: u32 = limits::DEFAULT_DURATION_SEC;
pub const MAX_SAMPLE_RATE: u32 = limits::MAX_SAMPLE_RATE;
/// Top flows returned by default, and at most.
pub const DEFAULT_TOP_FLOWS: u32 = limits::DEFAULT_TOP;
pub const MAX_TOP_FLOWS: u32 = limits::MAX_TOP;
const IFNAMSIZ: usize = limits::MAX_PORT_NAME_LEN + 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("port is required")]
    PortMissing,
    #[error("port name is {0} bytes long; interface names are at most 15 bytes")]
    PortTooLong(usize),
    #[error("port name {0:?} contains characters other than letters, digits, '_', '.', '-'")]
    PortChars(String),
    #[error("port {0:?} does not exist on this host")]
    PortUnknown(String),
    #[error("direction {0:?} is not one of ingress, egress, both")]
    Direction(String),
    #[error(
        "duration_sec {0} is above the maximum of {MAX_DURATION_SEC} (use 0 to run until stopped)"
    )]
    Duration(u32),
    #[error(transparent)]
    MirrorMode(#[from] super::modes::UnknownMirrorMode),
    #[error("sample_rate {0} is not from 1 to {MAX_SAMPLE_RATE} (1 = every packet)")]
    SampleRate(u32),
    #[error("top {0} is above the maximum of {MAX_TOP_FLOWS}")]
    Top(u32),
    #[error("result_detail {0:?} is not one of summary, flows, pcaplike (or capture)")]
    ResultDetail(String),
    #[error(transparent)]
    Capture(#[from] super::capture::CaptureError),
    #[error("capture options are for result_detail pcaplike only")]
    CaptureWithoutPcaplike,
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("job id {0:?} is not a UUID")]
    JobId(String),
}

/// A StartJob request as it arrives, before validation.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub port: String,
    pub direction: String,
    pub duration_sec: Option<u32>,
    pub mirror_mode: String,
    pub otlp_export: Option<bool>,
    pub result_detail: String,
    pub sample_rate: Option<u32>,
    pub filters: Option<FilterSpec>,
    pub capture: Option<super::capture::CaptureRequest>,
}

/// A validated StartJob request.
#[derive(Debug, Clone)]
pub struct StartSpec {
    pub port: String,
    pub direction: Direction,
    pub duration_sec: u32,
    pub mirror: MirrorMode,
    pub otlp_export: bool,
    pub filter: JobFilter,
    pub flows: bool,
    pub sample_rate: u32,
    pub capture: Option<super::capture::CaptureSpec>,
}

/// Every field of a start request checked; `default_mode` is the operator's
/// TELEGEN_MIRROR_MODE, used when the request names none.
pub fn start(req: &StartRequest, default_mode: MirrorMode) -> Result<StartSpec, InvalidInput> {
    let port = ifname(&req.port)?.to_string();
    let direction = direction(&req.direction)?;
    let duration_sec = duration(req.duration_sec)?;
    let mirror = mirror_mode(&req.mirror_mode, default_mode)?;
    let sample_rate = sample_rate(req.sample_rate)?;
    let (flows, pcaplike) = match req.result_detail.as_str() {
        "" | "summary" => (false, false),
        "flows" => (true, false),
        "pcaplike" | "capture" => (false, true),
        other => return Err(InvalidInput::ResultDetail(other.chars().take(32).collect())),
    };
    let capture = match (&req.capture, pcaplike) {
        (None, false) => None,
        (Some(_), false) => return Err(InvalidInput::CaptureWithoutPcaplike),
        (c, true) => Some(super::capture::parse(&c.clone().unwrap_or_default())?),
    };
    let filter = match &req.filters {
        Some(f) => super::filter::parse(f)?,
        None => JobFilter::default(),
    };
    Ok(StartSpec {
        port,
        direction,
        duration_sec,
        mirror,
        otlp_export: req.otlp_export.unwrap_or(true),
        filter,
        flows,
        capture,
        sample_rate,
    })
}

/// A Linux interface name we are willing to handle: 1..=15 bytes of
/// `[A-Za-z0-9_.-]`, not `.` or `..`. Stricter than the kernel on purpose: no
/// shell or path metacharacters ever reach a log line, a pin path or netlink.
pub fn ifname(name: &str) -> Result<&str, InvalidInput> {
    if name.is_empty() {
        return Err(InvalidInput::PortMissing);
    }
    if name.len() >= IFNAMSIZ {
        return Err(InvalidInput::PortTooLong(name.len()));
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok || name == "." || name == ".." {
        return Err(InvalidInput::PortChars(truncate(name, 64)));
    }
    Ok(name)
}

pub fn sample_rate(r: Option<u32>) -> Result<u32, InvalidInput> {
    match r {
        None => Ok(1),
        Some(r) if (1..=MAX_SAMPLE_RATE).contains(&r) => Ok(r),
        Some(r) => Err(InvalidInput::SampleRate(r)),
    }
}

pub fn top(n: u32) -> Result<usize, InvalidInput> {
    match n {
        0 => Ok(DEFAULT_TOP_FLOWS as usize),
        n if n <= MAX_TOP_FLOWS => Ok(n as usize),
        n => Err(InvalidInput::Top(n)),
    }
}

pub fn direction(s: &str) -> Result<Direction, InvalidInput> {
    Direction::parse(s).ok_or_else(|| InvalidInput::Direction(truncate(s, 64)))
}

pub fn duration(d: Option<u32>) -> Result<u32, InvalidInput> {
    match d {
        None => Ok(DEFAULT_DURATION_SEC),
        Some(d) if d > MAX_DURATION_SEC => Err(InvalidInput::Duration(d)),
        Some(d) => Ok(d),
    }
}

pub fn mirror_mode(s: &str, default: MirrorMode) -> Result<MirrorMode, InvalidInput> {
    if s.is_empty() {
        return Ok(default);
    }
    Ok(MirrorMode::parse(s)?)
}

pub fn job_id(s: &str) -> Result<uuid::Uuid, InvalidInput> {
    uuid::Uuid::parse_str(s).map_err(|_| InvalidInput::JobId(truncate(s, 64)))
}

/// Echo user input in errors without letting it grow the message unbounded.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_string();
    if end < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(ifname("Ethernet0").is_ok());
        assert!(ifname("PortChannel0001").is_ok());
        assert!(ifname("veth-a.10").is_ok());
        assert_eq!(ifname(""), Err(InvalidInput::PortMissing));
        assert_eq!(ifname(&"x".repeat(16)), Err(InvalidInput::PortTooLong(16)));
        assert_eq!(
            ifname(&"x".repeat(200)),
            Err(InvalidInput::PortTooLong(200))
        );
        for bad in ["eth0;rm", "a b", "$(id)", "a/b", "..", "`x`", "é"] {
            assert!(
                matches!(ifname(bad), Err(InvalidInput::PortChars(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_and_directions() {
        assert_eq!(duration(None), Ok(120));
        assert_eq!(duration(Some(0)), Ok(0));
        assert!(duration(Some(MAX_DURATION_SEC + 1)).is_err());
        assert_eq!(direction("both"), Ok(Direction::Both));
        assert!(direction("sideways").is_err());
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
