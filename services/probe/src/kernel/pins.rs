//! The pin directory: bpffs mounted under it, one probe holding it (a
//! flock), the privileges bpf(2) needs, and the layout and version of the
//! maps an earlier probe pinned there, checked before they are reused.

use std::{ffi::CString, fs, os::unix::ffi::OsStrExt, path::Path};

use aya::maps::MapInfo;
use tracing::warn;

use super::error::DatapathError;
use super::maps::{layout::*, Maps, PINNED_MAPS};

pub(super) const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// The pinned layout's version, checked: sizes can agree while meanings
/// differ, and a newer probe's pins would be misread.
pub(super) fn checked_meta(maps: &mut Maps, dir: &Path) -> Result<Meta, DatapathError> {
    let meta = maps.meta()?;
    if meta.layout_version > LAYOUT_VERSION {
        return Err(DatapathError::NewerLayout {
            dir: dir.display().to_string(),
            found: meta.layout_version,
            known: LAYOUT_VERSION,
        });
    }
    maps.pin_flow_tables(dir.join("flows"))
        .map_err(|e| DatapathError::Io(format!("creating {}/flows: {e}", dir.display())))?;
    Ok(meta)
}

pub(super) fn statfs_type(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into the zeroed struct it is given.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut s) == 0).then_some(s.f_type as i64)
    }
}

/// The pin directory must be on bpffs. On a fresh host /sys/fs/bpf exists but
/// nothing is mounted there: mount it (under a lock, so that two probes
/// starting together do not stack two instances).
pub(super) fn ensure_bpffs(pin_dir: &Path) -> Result<(), DatapathError> {
    let existing = pin_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if statfs_type(existing) == Some(BPF_FS_MAGIC) {
        return Ok(());
    }
    let root = Path::new("/sys/fs/bpf");
    if !pin_dir.starts_with(root) {
        return Err(DatapathError::Bpffs(format!(
            "TELEGEN_BPF_PIN_DIR {} is not on a bpf filesystem",
            pin_dir.display()
        )));
    }
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/telegen-sonic-bpffs.lock")
        .map_err(|e| DatapathError::Bpffs(format!("lock for mounting bpffs: {e}")))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an fd we own; released when `lock` is dropped.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if statfs_type(root) == Some(BPF_FS_MAGIC) {
        return Ok(());
    }
    warn!("bpffs is not mounted at /sys/fs/bpf; mounting it");
    let src = CString::new("bpf").unwrap();
    let target = CString::new("/sys/fs/bpf").unwrap();
    let opts = CString::new("mode=0700").unwrap();
    // SAFETY: all pointers are valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(DatapathError::Bpffs(format!(
            "bpffs is not mounted at /sys/fs/bpf and mounting it failed: {} (mount it: mount -t bpf bpf /sys/fs/bpf, or give the container -v /sys/fs/bpf:/sys/fs/bpf)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Take the pin directory for this process (flock, released when the
/// process ends, however it ends).
pub(super) fn lock_pin_dir(dir: &Path) -> Result<fs::File, DatapathError> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(dir)
        .map_err(|e| DatapathError::Io(format!("opening {}: {e}", dir.display())))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(DatapathError::Locked(dir.display().to_string()));
        }
        return Err(DatapathError::Io(format!("locking {}: {e}", dir.display())));
    }
    Ok(f)
}

/// Say plainly when the process lacks the privileges (a bare EPERM from
/// bpf(2) tells an operator nothing).
pub(super) fn check_capabilities() -> Result<(), DatapathError> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(eff) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Ok(()); // cannot tell; let the syscalls decide
    };
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        return Ok(());
    }
    Err(DatapathError::Privileges(format!(
        "the probe lacks CAP_BPF and CAP_NET_ADMIN (effective capabilities {eff:#x}); run it as root or with --cap-add BPF --cap-add NET_ADMIN (CAP_SYS_ADMIN on kernels < 5.8)"
    )))
}

/// Pinned maps that hold only counters of the agent's own health, no job
/// state: one of another layout (an older probe's) is replaced, its counts
/// restart, rather than refused. A hook attached by the older probe keeps
/// counting into the old map until it is re-attached.
const REPLACEABLE: [&str; 1] = ["errors_percpu"];

/// aya reuses pinned maps without checking their layout: check it here.
pub(super) fn check_pinned_layout(dir: &Path) -> Result<(), DatapathError> {
    for (name, ekey, evalue, eentries) in PINNED_MAPS {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&path)?;
        let (key, value, entries) = (info.key_size(), info.value_size(), info.max_entries());
        if (key, value, entries) != (ekey, evalue, eentries) && REPLACEABLE.contains(&name) {
            warn!(path = %path.display(), entries, expected = eentries, "replacing a pinned counter map of another layout; its counts restart");
            fs::remove_file(&path)
                .map_err(|e| DatapathError::Io(format!("removing {}: {e}", path.display())))?;
            continue;
        }
        if (key, value, entries) != (ekey, evalue, eentries) {
            return Err(DatapathError::Layout {
                path: path.display().to_string(),
                dir: dir.display().to_string(),
                key,
                value,
                entries,
                ekey,
                evalue,
                eentries,
            });
        }
    }
    Ok(())
}
