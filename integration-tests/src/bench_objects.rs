//! The baselines of `make bench` (telegen-bench), compiled by build.rs from
//! ebpf/bench/: kept out of the probe, which never loads them.

/// The empty classifier (program `empty`): the harness's own per-run cost.
pub static EMPTY: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/empty.bpf.o"));
/// The seed project's program shape (program `seed_like`: per-proto array +
/// per-ifindex per-CPU hash), the second baseline.
pub static SEED_LIKE: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/seed_like.bpf.o"));

/// telegen.bpf.c cut at each stage (integration-tests/build.rs), in order:
/// parse and classify only; then the interface config lookup; then the
/// hook's counter (everything but GRE sequence tracking); everything.
pub static STAGES: [(&str, &[u8]); 4] = [
    (
        "classify",
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stage_classify.bpf.o")),
    ),
    (
        "ifcfg",
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stage_ifcfg.bpf.o")),
    ),
    (
        "count",
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stage_count.bpf.o")),
    ),
    (
        "full",
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stage_full.bpf.o")),
    ),
];
