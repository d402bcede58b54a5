//! The structs layout 2 added (types.h): the bases of the derived figures,
//! GRE sequence tracking and the exporters' failed exports.

use super::{Counters, N_CLASSES, N_JOB_ERRORS};

/// struct hook_counts: a hook's figures at one moment (summed over CPUs).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookCounts {
    pub c: [Counters; N_CLASSES as usize],
    pub err: [u64; N_JOB_ERRORS],
}

impl HookCounts {
    pub fn add(&mut self, o: &HookCounts) {
        for (a, b) in self.c.iter_mut().zip(o.c.iter()) {
            a.add(b);
        }
        for (a, b) in self.err.iter_mut().zip(o.err.iter()) {
            *a += b;
        }
    }

    /// `self - base`, never below zero (a base from a slot's earlier life
    /// is never larger, but a wrong one must not wrap).
    pub fn since(&self, base: &HookCounts) -> HookCounts {
        let mut out = *self;
        for (a, b) in out.c.iter_mut().zip(base.c.iter()) {
            a.packets = a.packets.saturating_sub(b.packets);
            a.bytes = a.bytes.saturating_sub(b.bytes);
            for (x, y) in a.hist.iter_mut().zip(b.hist.iter()) {
                *x = x.saturating_sub(*y);
            }
        }
        for (a, b) in out.err.iter_mut().zip(base.err.iter()) {
            *a = a.saturating_sub(*b);
        }
        out
    }
}

/// struct iface_base.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfaceBase {
    pub dir: [HookCounts; 2],
}

/// struct job_base: how a plain job is counted from its hooks' series.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobBase {
    pub valid: u32,
    pub if_slot: u32,
    pub base: [HookCounts; 2],
    pub folded: HookCounts,
    /// [GRE packets, lost, late on the job's interface, failed exports].
    pub cov_base: [u64; 4],
    pub cov_folded: [u64; 4],
    pub cov_valid: u8,
    pub pad: [u8; 7],
}

pub const EXPORT_RECS: u32 = 9;

/// struct export_rec.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportRec {
    pub instance: [u8; 16],
    pub failed: u64,
    pub updated_unix_ns: u64,
}

/// struct gre_seq_key.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GreSeqKey {
    pub src: [u32; 4],
    pub key: u32,
    pub ifindex: u32,
}

/// struct gre_seq_val.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreSeqVal {
    pub packets: u64,
    pub lost: u64,
    pub late: u64,
    pub last: u32,
    /// Set when a hook is attached again: the next packet resynchronises.
    pub resync: u32,
}

/// struct gre_seq_entry: free while `k.ifindex` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreSeqEntry {
    pub k: GreSeqKey,
    pub v: GreSeqVal,
}

// SAFETY: repr(C), integers and arrays of integers only, no implicit
// padding (asserted below).
unsafe impl aya::Pod for HookCounts {}
unsafe impl aya::Pod for IfaceBase {}
unsafe impl aya::Pod for JobBase {}
unsafe impl aya::Pod for GreSeqKey {}
unsafe impl aya::Pod for GreSeqVal {}
unsafe impl aya::Pod for ExportRec {}
unsafe impl aya::Pod for GreSeqEntry {}

const _: () = assert!(std::mem::size_of::<HookCounts>() == 4 * 88 + 72);
const _: () = assert!(std::mem::size_of::<IfaceBase>() == 2 * 424);
const _: () = assert!(std::mem::size_of::<JobBase>() == 8 + 3 * 424 + 64 + 8);
const _: () = assert!(std::mem::size_of::<ExportRec>() == 32);
const _: () = assert!(std::mem::size_of::<GreSeqKey>() == 24);
const _: () = assert!(std::mem::size_of::<GreSeqVal>() == 32);
const _: () = assert!(std::mem::size_of::<GreSeqEntry>() == 56);

/// The coverage figures a job takes a base of: [GRE packets, lost, late]
/// on an interface (gre_seq), and the failed exports (export_recs).
pub type CoverageTotals = [u64; 4];
