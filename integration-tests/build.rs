//! Compiles the `make bench` baselines in ebpf/bench/ into OUT_DIR with the
//! probe's clang command; `bench_objects` embeds them (the probe does not).
use std::{env, path::PathBuf};

include!("../ebpf/build_bpf.rs");

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let ebpf = manifest.join("../ebpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let objects = [
        ("bench/empty.bpf.c", "empty.bpf.o"),
        ("bench/seed_like.bpf.c", "seed_like.bpf.o"),
    ];
    for (src, obj) in objects {
        compile_bpf(&ebpf, src, &out.join(obj));
    }
    // The classifier cut at each stage, for the bench's breakdown of where
    // its nanoseconds go (the probe embeds only the whole one).
    let variants: [(&str, &[&str]); 4] = [
        (
            "stage_classify.bpf.o",
            &["TELEGEN_BENCH_STAGE=1", "TELEGEN_BENCH_NO_GRE_TRACK"],
        ),
        (
            "stage_ifcfg.bpf.o",
            &["TELEGEN_BENCH_STAGE=2", "TELEGEN_BENCH_NO_GRE_TRACK"],
        ),
        ("stage_count.bpf.o", &["TELEGEN_BENCH_NO_GRE_TRACK"]),
        ("stage_full.bpf.o", &[]),
    ];
    for (obj, defines) in variants {
        compile_bpf_with(&ebpf, "telegen.bpf.c", &out.join(obj), defines);
    }
    cargo!("rerun-if-changed={}", ebpf.join("include").display());
    cargo!("rerun-if-changed={}", ebpf.join("telegen.bpf.c").display());
    cargo!("rerun-if-changed={}", ebpf.join("bench").display());
    cargo!("rerun-if-changed={}", ebpf.join("build_bpf.rs").display());
    cargo!("rerun-if-env-changed=CLANG");
}
