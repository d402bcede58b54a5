//! Compiles the C classifier in ebpf/ with clang (-target bpf, BTF on) into
//! OUT_DIR; the probe embeds the objects, so images need no compiler.
use std::{env, path::PathBuf};

include!("../../ebpf/build_bpf.rs");

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let ebpf = manifest.join("../../ebpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let objects = [("telegen.bpf.c", "telegen.bpf.o")];
    for (src, obj) in objects {
        compile_bpf(&ebpf, src, &out.join(obj));
    }
    cargo!("rerun-if-changed={}", ebpf.display());
    cargo!("rerun-if-env-changed=CLANG");
}
