//! The pinned maps by name, with the sizes existing pins must have.

use super::layout::*;

/// Names of every map the object pins, with the expected key/value sizes and
/// entry counts (checked against existing pins before they are reused).
pub const PINNED_MAPS: [(&str, u32, u32, u32); 25] = [
    (
        "stats_percpu",
        4,
        std::mem::size_of::<Counters>() as u32,
        N_CLASSES,
    ),
    (
        "if_stats_percpu",
        4,
        std::mem::size_of::<LabeledCounters>() as u32,
        MAX_IF_SLOTS * N_CLASSES,
    ),
    (
        "job_stats_percpu",
        4,
        std::mem::size_of::<LabeledCounters>() as u32,
        MAX_JOB_SLOTS * N_CLASSES,
    ),
    ("errors_percpu", 4, 8, N_ERRORS),
    ("tunnel_percpu", 4, 8, N_TUN_KINDS),
    (
        "ifcfg",
        4,
        std::mem::size_of::<IfCfg>() as u32,
        IFCFG_ARRAY_SIZE,
    ),
    ("ifcfg_hash", 4, std::mem::size_of::<IfCfg>() as u32, 256),
    ("meta", 4, std::mem::size_of::<Meta>() as u32, 1),
    (
        "ifaces",
        4,
        std::mem::size_of::<IfaceRec>() as u32,
        MAX_IF_SLOTS,
    ),
    (
        "jobs",
        4,
        std::mem::size_of::<JobRec>() as u32,
        MAX_JOB_SLOTS,
    ),
    (
        "job_filters",
        4,
        std::mem::size_of::<KJobFilter>() as u32,
        MAX_JOB_SLOTS,
    ),
    (
        "job_aux_percpu",
        4,
        std::mem::size_of::<JobAux>() as u32,
        MAX_JOB_SLOTS,
    ),
    ("job_flows", 4, 4, MAX_JOB_SLOTS),
    ("job_rejected_percpu", 4, 8, MAX_JOB_SLOTS),
    ("capture_ring", 0, 0, CAPTURE_RING_BYTES),
    (
        "capture_limits",
        4,
        std::mem::size_of::<CaptureLimit>() as u32,
        MAX_JOB_SLOTS + 1,
    ),
    (
        "capture_drops_percpu",
        4,
        std::mem::size_of::<CaptureDrops>() as u32,
        MAX_JOB_SLOTS,
    ),
    (
        "job_notes",
        4,
        std::mem::size_of::<JobNote>() as u32,
        MAX_JOB_SLOTS,
    ),
    ("deep_progs_v2", 4, 4, 1),
    (
        "hook_stats_percpu",
        4,
        std::mem::size_of::<Counters>() as u32,
        MAX_IF_SLOTS * 2 * N_CLASSES,
    ),
    (
        "hook_errors_percpu",
        4,
        8,
        MAX_IF_SLOTS * 2 * N_JOB_ERRORS as u32,
    ),
    (
        "gre_seq",
        4,
        std::mem::size_of::<GreSeqEntry>() as u32,
        GRE_SEQ_ENTRIES,
    ),
    (
        "iface_base",
        4,
        std::mem::size_of::<IfaceBase>() as u32,
        MAX_IF_SLOTS,
    ),
    (
        "job_base",
        4,
        std::mem::size_of::<JobBase>() as u32,
        MAX_JOB_SLOTS,
    ),
    (
        "export_recs",
        4,
        std::mem::size_of::<ExportRec>() as u32,
        EXPORT_RECS,
    ),
];

/// Layout 1's prog array of the deep program, which layout-1 classifiers
/// tail-call: unpinned once every hook runs a layout-2 classifier.
pub const V1_DEEP_PROGS: &str = "deep_progs";

/// Maps added since the first layout, which pins of an earlier probe lack
/// (optional in degraded mode, which cannot create them).
pub(super) const ADDED_MAPS: [&str; 11] = [
    "job_rejected_percpu",
    "job_notes",
    "capture_ring",
    "capture_limits",
    "capture_drops_percpu",
    "hook_stats_percpu",
    "hook_errors_percpu",
    "gre_seq",
    "iface_base",
    "job_base",
    "export_recs",
];
