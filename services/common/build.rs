//! Embeds version, short commit and UTC build date (SPEC section 7).
//! `release/mark-vX-Y-Z` when HEAD is exactly a `vX.Y.Z` tag, else `dev`.
//! TELEGEN_VERSION / TELEGEN_COMMIT / TELEGEN_BUILD_DATE override (image builds
//! without a .git directory).
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

include!("src/release.rs");

/// A build-script directive to cargo (cargo reads them from stdout).
macro_rules! cargo {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), "cargo:{}", format_args!($($arg)*)).expect("stdout to cargo");
    }};
}

fn main() {
    let version = std::env::var("TELEGEN_VERSION").ok().unwrap_or_else(|| {
        git(&["describe", "--tags", "--exact-match", "HEAD"])
            .and_then(|t| release_name(&t))
            .unwrap_or_else(|| "dev".into())
    });
    let commit = std::env::var("TELEGEN_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = std::env::var("TELEGEN_BUILD_DATE").ok().unwrap_or_else(|| {
        Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    });
    cargo!("rustc-env=TELEGEN_BUILD_VERSION={version}");
    cargo!("rustc-env=TELEGEN_BUILD_COMMIT={commit}");
    cargo!("rustc-env=TELEGEN_BUILD_DATE={date}");
    for var in ["TELEGEN_VERSION", "TELEGEN_COMMIT", "TELEGEN_BUILD_DATE"] {
        cargo!("rerun-if-env-changed={var}");
    }
    // Re-run when HEAD moves or a tag appears.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        cargo!("rerun-if-changed={dir}/HEAD");
        cargo!("rerun-if-changed={dir}/refs/tags");
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            cargo!("rerun-if-changed={dir}/{head_ref}");
        }
    }
}
