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
    cargo!("rerun-if-changed={}", ebpf.join("bench").display());
    cargo!("rerun-if-changed={}", ebpf.join("build_bpf.rs").display());
    cargo!("rerun-if-env-changed=CLANG");
}
