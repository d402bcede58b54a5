//! Compiles the C classifier in ebpf/ with clang (-target bpf, BTF on) into
//! OUT_DIR; the probe embeds the objects, so images need no compiler.
use std::{env, path::PathBuf, process::Command};

/// A build-script directive to cargo (cargo reads them from stdout).
macro_rules! cargo {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), "cargo:{}", format_args!($($arg)*)).expect("stdout to cargo");
    }};
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let ebpf = manifest.join("../../ebpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64",
        _ => "x86_64",
    };
    let objects = [
        ("telegen.bpf.c", "telegen.bpf.o"),
        ("bench/empty.bpf.c", "empty.bpf.o"),
        ("bench/seed_like.bpf.c", "seed_like.bpf.o"),
    ];
    for (src, obj) in objects {
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I{}", ebpf.join("include").display()))
            .arg(format!("-I/usr/include/{arch}-linux-gnu"))
            .arg("-c")
            .arg(ebpf.join(src))
            .arg("-o")
            .arg(out.join(obj))
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {clang}: {e}; install clang and libbpf-dev (`make deps`)")
            });
        assert!(status.success(), "clang failed on ebpf/{src}");
    }
    cargo!("rerun-if-changed={}", ebpf.display());
    cargo!("rerun-if-env-changed=CLANG");
}
