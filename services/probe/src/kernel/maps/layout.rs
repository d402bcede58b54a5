//! Rust mirrors of ebpf/include/types.h. Sizes are asserted at compile time
//! and checked against existing pins at start-up.

/// 2: one counter set per packet, per interface slot and hook direction
/// (hook_stats_percpu); the global, interface and plain jobs' figures are
/// derived (maps/hooks.rs). Pins of layout 1 are upgraded (migrate.rs).
pub const LAYOUT_VERSION: u32 = 2;

mod v2;
pub use v2::*;
/// What the attached classifier does, recorded per hook: 1 = hands deep
/// hooks to telegen_deep (filters, flows); 2 = counts layout 2's hook
/// series. A probe replaces an older generation's program in place when it
/// upgrades the pins.
pub const PROG_GENERATION: u16 = 2;
pub use crate::domain::limits::{
    CLASS_NAMES, HIST_BOUNDS, MAX_IF_SLOTS, MAX_JOBS_PER_HOOK, MAX_JOB_SLOTS,
};
pub const N_CLASSES: u32 = CLASS_NAMES.len() as u32;
pub const HIST_BUCKETS: usize = HIST_BOUNDS.len() + 1;
pub const IFCFG_ARRAY_SIZE: u32 = 4096;
pub const N_ERRORS: u32 = 11;
pub const GRE_SEQ_ENTRIES: u32 = 256;
/// Per-job errors: enum telegen_err plus the IPv4 header checksum.
pub const N_JOB_ERRORS: usize = 9;
pub const FILTER_MAX_PORTS: usize = 8;
pub const FILTER_MAX_CIDRS: usize = 4;

/// enum filter_flags.
pub const F_PROTO: u32 = 1 << 0;
pub const F_SPORT: u32 = 1 << 1;
pub const F_DPORT: u32 = 1 << 2;
pub const F_SRC: u32 = 1 << 3;
pub const F_DST: u32 = 1 << 4;
pub const F_DSCP: u32 = 1 << 5;
pub const F_VLAN: u32 = 1 << 6;
pub const F_MATCH: u32 = 0x7f;
pub const F_FLOWS: u32 = 1 << 8;
pub const F_CAPTURE: u32 = 1 << 9;
pub const F_CAPTURE_OUTER: u32 = 1 << 10;
/// capture_limits' entry of the probe-wide limit (after the jobs').
pub const CAPTURE_PROBE_SLOT: u32 = MAX_JOB_SLOTS;
pub const CAPTURE_RING_BYTES: u32 = 8 << 20;

/// Error counter names, indexed by enum telegen_err.
pub const ERROR_NAMES: [&str; N_ERRORS as usize] = [
    "truncated",
    "ipv6_exthdr_limit",
    "no_iface_config",
    "iface_slot_overflow",
    "job_slot_overflow",
    "global_lookup",
    "tunnel_malformed",
    "tunnel_unknown_payload",
    "deep_program_missing",
    "filter_lookup",
    "gre_untracked",
];

/// Where each per-job error results show (JOB_ERROR_NAMES) is counted in
/// job_aux.err: the packet parse errors at their enum telegen_err index,
/// the IPv4 header checksum after them (types.h).
pub const JOB_ERROR_INDEX: [usize; 5] = [0, 1, 6, 7, 8];
const _: () = assert!(JOB_ERROR_INDEX.len() == crate::domain::limits::JOB_ERROR_NAMES.len());

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
    /// Bit per direction: a job on that hook filters or tracks flows.
    pub deep: u8,
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
    /// PROG_GENERATION of the attached classifier (0: before filters).
    pub generation: u16,
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
    /// The final state a `stopping` job moves to (a state code; 0: stopped).
    pub ending: u8,
    /// Sonic jobs: 1 acl (the switch selects), 2 port; 0 otherwise.
    pub mirror_scope: u8,
    pub duration_sec: u32,
    pub sample_rate: u32,
    pub flow_table_size: u32,
    pub seq: u64,
    pub started_unix_ns: u64,
    pub expires_unix_ns: u64,
    pub stopped_unix_ns: u64,
    pub error: [u8; 160],
    pub fallback: [u8; 160],
}

/// struct job_note: prose the probe keeps about a job (probe-only).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobNote {
    pub scope_reason: [u8; 192],
}

impl Default for JobNote {
    fn default() -> Self {
        JobNote {
            scope_reason: [0; 192],
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KCidr {
    /// Network order; IPv4 in [0].
    pub addr: [u32; 4],
    pub mask: [u32; 4],
    pub family: u8,
    pub pad: [u8; 3],
}

/// struct job_filter.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KJobFilter {
    pub flags: u32,
    pub sample_rate: u32,
    pub dscp_mask: u64,
    pub proto_mask: [u64; 4],
    pub sport: [u16; FILTER_MAX_PORTS],
    pub dport: [u16; FILTER_MAX_PORTS],
    pub nsport: u8,
    pub ndport: u8,
    pub nsrc: u8,
    pub ndst: u8,
    pub vlan: u16,
    /// Capture jobs: bytes kept of a packet.
    pub snaplen: u16,
    pub src: [KCidr; FILTER_MAX_CIDRS],
    pub dst: [KCidr; FILTER_MAX_CIDRS],
}

/// struct flow_key: addresses in network order, ports in host order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub pad: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowVal {
    pub packets: u64,
    pub bytes: u64,
}

/// struct capture_hdr: a capture ring record's header.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureHdr {
    pub ts_ns: u64,
    pub slot: u32,
    pub orig_len: u32,
    pub cap_len: u32,
    pub dir: u8,
    pub outer: u8,
    pub pad: u16,
}

/// struct capture_limit (`lock` is the kernel's bpf_spin_lock, which the
/// kernel skips when user space reads or writes the value).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureLimit {
    pub lock: u32,
    pub pad: u32,
    pub max_packets: u64,
    pub max_bytes: u64,
    pub rate_pps: u64,
    pub tokens: u64,
    pub last_ns: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// struct capture_drops (per CPU).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureDrops {
    pub ring_full: u64,
    pub rate_limited: u64,
    pub cap_reached: u64,
    pub copy_failed: u64,
}

/// struct job_aux (per CPU).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobAux {
    pub err: [u64; N_JOB_ERRORS],
    pub sampled: u64,
    pub flows_new: u64,
    pub flow_fail: u64,
    pub countdown: u32,
    pub pad: u32,
}

impl JobAux {
    pub fn add(&mut self, o: &JobAux) {
        for (a, b) in self.err.iter_mut().zip(o.err.iter()) {
            *a += b;
        }
        self.sampled += o.sampled;
        self.flows_new += o.flows_new;
        self.flow_fail += o.flow_fail;
    }
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
unsafe impl aya::Pod for JobNote {}
unsafe impl aya::Pod for CaptureLimit {}
unsafe impl aya::Pod for CaptureDrops {}
unsafe impl aya::Pod for KCidr {}
unsafe impl aya::Pod for KJobFilter {}
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for FlowVal {}
unsafe impl aya::Pod for JobAux {}

const _: () = assert!(std::mem::size_of::<Counters>() == 88);
const _: () = assert!(std::mem::size_of::<LabeledCounters>() == 96);
const _: () = assert!(std::mem::size_of::<IfCfg>() == 24);
const _: () = assert!(std::mem::size_of::<Meta>() == 16);
const _: () = assert!(std::mem::size_of::<HookRec>() == 12);
const _: () = assert!(std::mem::size_of::<IfaceRec>() == 56);
const _: () = assert!(std::mem::size_of::<JobRec>() == 424);
const _: () = assert!(std::mem::size_of::<KCidr>() == 36);
const _: () = assert!(std::mem::size_of::<KJobFilter>() == 376);
const _: () = assert!(std::mem::size_of::<FlowKey>() == 40);
const _: () = assert!(std::mem::size_of::<FlowVal>() == 16);
const _: () = assert!(std::mem::size_of::<JobAux>() == 104);

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
