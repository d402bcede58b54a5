//! Rust mirrors of ebpf/include/types.h. Sizes are asserted at compile time
//! and checked against existing pins at start-up.

pub const LAYOUT_VERSION: u32 = 1;
pub const N_CLASSES: u32 = 4;
pub const HIST_BUCKETS: usize = 9;
pub const MAX_IF_SLOTS: u32 = 64;
pub const MAX_JOB_SLOTS: u32 = 64;
pub const MAX_JOBS_PER_HOOK: usize = 8;
pub const IFCFG_ARRAY_SIZE: u32 = 4096;
pub const N_ERRORS: u32 = 8;

/// Upper bounds (bytes, inclusive) of the size histogram; one more bucket, +Inf.
pub const HIST_BOUNDS: [u64; HIST_BUCKETS - 1] = [64, 128, 256, 512, 1024, 1518, 4096, 9216];

/// Class names, indexed by class number.
pub const CLASS_NAMES: [&str; N_CLASSES as usize] = ["ipv4", "ipv6", "icmp6", "other"];

/// Error counter names, indexed by enum telegen_err.
pub const ERROR_NAMES: [&str; 8] = [
    "truncated",
    "ipv6_exthdr_limit",
    "no_iface_config",
    "iface_slot_overflow",
    "job_slot_overflow",
    "global_lookup",
    "tunnel_malformed",
    "tunnel_unknown_payload",
];

/// Entries of tunnel_percpu (enum telegen_tun).
pub const N_TUN_KINDS: u32 = 8;

/// How tunnelled packets were counted, indexed by enum telegen_tun: by the
/// packet inside (per tunnel kind), or as the outer packet.
pub const TUNNEL_NAMES: [&str; 6] = [
    "outer_unopened",
    "erspan1",
    "erspan2",
    "erspan3",
    "gre_eth",
    "gre_ip",
];

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub hist: [u64; HIST_BUCKETS],
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        for (a, b) in self.hist.iter_mut().zip(o.hist.iter()) {
            *a += b;
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LabeledCounters {
    pub owner: u32,
    pub proto: u32,
    pub c: Counters,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfCfg {
    pub slot: u32,
    pub valid: u8,
    pub njobs: [u8; 2],
    pub pad: u8,
    pub jobs: [[u8; MAX_JOBS_PER_HOOK]; 2],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    pub created_unix_ns: u64,
    pub layout_version: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookRec {
    pub attached: u8,
    pub mode: u8,
    pub pad: u16,
    pub priority: u32,
    pub handle: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IfaceRec {
    pub ifindex: u32,
    pub used: u8,
    pub created_qdisc: u8,
    pub pad: u16,
    pub name: [u8; 16],
    pub start_unix_ns: u64,
    pub hook: [HookRec; 2],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct JobRec {
    pub id: [u8; 16],
    pub port: [u8; 16],
    pub iface: [u8; 16],
    pub ifindex: u32,
    pub state: u8,
    pub direction: u8,
    pub mirror_mode: u8,
    pub attach_mode: u8,
    pub otlp_export: u8,
    pub result_detail: u8,
    pub pad: u16,
    pub duration_sec: u32,
    pub sample_rate: u32,
    pub pad2: u32,
    pub seq: u64,
    pub started_unix_ns: u64,
    pub expires_unix_ns: u64,
    pub stopped_unix_ns: u64,
    pub error: [u8; 160],
    pub fallback: [u8; 160],
}

impl Default for JobRec {
    fn default() -> Self {
        // SAFETY: JobRec is plain old data; all-zero is its "free slot" value.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: all of these are repr(C), contain only integers and arrays of
// integers, and have no implicit padding (asserted below).
unsafe impl aya::Pod for Counters {}
unsafe impl aya::Pod for LabeledCounters {}
unsafe impl aya::Pod for IfCfg {}
unsafe impl aya::Pod for Meta {}
unsafe impl aya::Pod for IfaceRec {}
unsafe impl aya::Pod for JobRec {}

const _: () = assert!(std::mem::size_of::<Counters>() == 88);
const _: () = assert!(std::mem::size_of::<LabeledCounters>() == 96);
const _: () = assert!(std::mem::size_of::<IfCfg>() == 24);
const _: () = assert!(std::mem::size_of::<Meta>() == 16);
const _: () = assert!(std::mem::size_of::<HookRec>() == 12);
const _: () = assert!(std::mem::size_of::<IfaceRec>() == 56);
const _: () = assert!(std::mem::size_of::<JobRec>() == 424);

/// Copy `s` into a fixed, NUL-padded field (truncating on a char boundary).
pub fn put_str<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let mut end = s.len().min(N - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

pub fn get_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_strings_round_trip() {
        let f: [u8; 16] = put_str("Ethernet0");
        assert_eq!(get_str(&f), "Ethernet0");
        let long: [u8; 4] = put_str("abcdef");
        assert_eq!(get_str(&long), "abc");
    }
}
