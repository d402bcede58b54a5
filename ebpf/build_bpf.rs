// The clang command for the C programs in ebpf/, shared by the build scripts
// that compile them (services/probe/build.rs: the classifier;
// integration-tests/build.rs: the bench baselines) through `include!`.

/// A build-script directive to cargo (cargo reads them from stdout).
macro_rules! cargo {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), "cargo:{}", format_args!($($arg)*)).expect("stdout to cargo");
    }};
}

/// Compile `ebpf/<src>` with clang (-target bpf, BTF on; CLANG names another
/// clang) into `obj`.
#[allow(dead_code)]
fn compile_bpf(ebpf: &std::path::Path, src: &str, obj: &std::path::Path) {
    compile_bpf_with(ebpf, src, obj, &[]);
}

/// Like compile_bpf, with `-D` definitions (the bench's variants).
fn compile_bpf_with(ebpf: &std::path::Path, src: &str, obj: &std::path::Path, defines: &[&str]) {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64",
        _ => "x86_64",
    };
    let status = std::process::Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{}", ebpf.join("include").display()))
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-c")
        .arg(ebpf.join(src))
        .arg("-o")
        .arg(obj)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang}: {e}; install clang and libbpf-dev (`make deps`)")
        });
    assert!(status.success(), "clang failed on ebpf/{src}");
}
