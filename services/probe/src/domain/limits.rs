//! What the classifier counts by, and how many of each thing there can be.
//! One definition each: the kernel layout (kernel::maps::layout) takes its
//! numbers from here, and types.h must agree (the layout asserts sizes).

/// Job records kept (the oldest finished one is recycled).
pub const MAX_JOB_SLOTS: u32 = 64;
/// Interfaces with attached hooks at once.
pub const MAX_IF_SLOTS: u32 = 64;
/// Jobs counted on one hook (interface and direction).
pub const MAX_JOBS_PER_HOOK: usize = 8;

/// Traffic classes, in the classifier's class order.
pub const CLASS_NAMES: [&str; 4] = ["ipv4", "ipv6", "icmp6", "other"];

/// Upper bounds (bytes, inclusive) of the size histogram; one more bucket, +Inf.
pub const HIST_BOUNDS: [u64; 8] = [64, 128, 256, 512, 1024, 1518, 4096, 9216];

/// The per-job packet errors results show, in that order.
pub const JOB_ERROR_NAMES: [&str; 5] = [
    "truncated",
    "ipv6_exthdr_limit",
    "tunnel_malformed",
    "tunnel_unknown_payload",
    "ipv4_checksum",
];
