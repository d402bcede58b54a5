//! The bounds and names of the REST API, each stated once. The probe
//! enforces them all (so gRPC and REST clients get the same answers); the
//! gateway checks `top` itself and declares the rest in its OpenAPI document;
//! telegenctl checks what it can before sending and quotes them in `--help`.

/// Top flows a results request may ask for.
pub const MAX_TOP: u32 = 100;
/// Top flows returned for `top` 0 or absent.
pub const DEFAULT_TOP: u32 = 10;

/// Longest job: a week. A longer one should run until stopped (0).
pub const MAX_DURATION_SEC: u32 = 7 * 24 * 3600;
/// A job's duration when the request gives none.
pub const DEFAULT_DURATION_SEC: u32 = 120;

/// Flow tracking looks at one packet in `sample_rate`: 1 (every packet) to
/// this many. Counters stay exact whatever the rate.
pub const MAX_SAMPLE_RATE: u32 = 1_000_000;

/// A port is a Linux interface name: shorter than IFNAMSIZ (16) bytes.
pub const MAX_PORT_NAME_LEN: usize = 15;
/// A port name as an ECMA-262 pattern (OpenAPI): bytes of `[A-Za-z0-9_.-]`,
/// but not `.` or `..` (stricter than the kernel on purpose: no shell or path
/// metacharacters ever reach a log line, a pin path or netlink). Its length,
/// 1 to [`MAX_PORT_NAME_LEN`], is stated apart.
pub const PORT_NAME_PATTERN: &str = r"^(?:[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.{3,})$";

/// Filter list lengths, which keep the classifier's match loops short.
pub const MAX_FILTER_PROTOS: usize = 8;
pub const MAX_FILTER_PORTS: usize = 8;
pub const MAX_FILTER_CIDRS: usize = 4;
pub const MAX_FILTER_DSCP: usize = 8;

/// Largest value of a filter's item.
pub const MAX_IP_PROTO: u32 = 255;
pub const MAX_L4_PORT: u32 = 65535;
pub const MAX_DSCP: u32 = 63;
pub const MAX_VLAN: u32 = 4095;

/// `direction` of a start request and a job.
pub const DIRECTIONS: [&str; 3] = ["ingress", "egress", "both"];
/// `mirror_mode` of a start request; `span` is the design's name for `direct`.
pub const MIRROR_MODES: [&str; 5] = ["erspan", "sonic", "direct", "span", "placeholder"];
/// `mirror_mode` a job reports (`span` reads back as `direct`).
pub const JOB_MIRROR_MODES: [&str; 4] = ["erspan", "sonic", "direct", "placeholder"];
/// `span_method`, the design's older name for `mirror_mode`.
pub const SPAN_METHODS: [&str; 2] = ["erspan", "span"];
/// `result_detail` a job can have.
pub const RESULT_DETAILS: [&str; 4] = ["summary", "flows", "pcaplike", "capture"];
/// A job's `status`.
pub const STATUSES: [&str; 6] = [
    "starting", "running", "stopping", "stopped", "expired", "failed",
];
/// How a job's counter is attached.
pub const ATTACH_MODES: [&str; 2] = ["tcx", "tc"];
/// What a sonic job's mirror session copies.
pub const MIRROR_SCOPES: [&str; 2] = ["acl", "port"];
/// Protocol names a filter takes (any case), besides numbers 0 to
/// [`MAX_IP_PROTO`]; icmpv6 and ipv6-icmp are icmp6.
pub const PROTO_NAMES: [&str; 8] = [
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "icmpv6",
    "ipv6-icmp",
    "gre",
    "sctp",
];
/// The results routes' `format`.
pub const RESULT_FORMATS: [&str; 1] = ["json"];
