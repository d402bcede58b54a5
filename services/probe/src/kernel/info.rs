//! What the running kernel offers (GetInfo), and the attach mode a
//! preference resolves to there.

use std::path::Path;

use aya::util::KernelVersion;

use crate::config::AttachPref;
use crate::domain::AttachMode;

/// TELEGEN_ATTACH_MODE=tcx on a kernel without TCX.
#[derive(Debug, Clone, thiserror::Error)]
#[error("TELEGEN_ATTACH_MODE=tcx needs kernel 6.6 or later; this is {release}")]
pub struct TcxUnsupported {
    pub release: String,
}

/// What the kernel offers, reported by GetInfo.
#[derive(Debug, Clone)]
pub struct KernelInfo {
    pub release: String,
    pub btf: bool,
    pub tcx: bool,
}

impl KernelInfo {
    pub fn probe() -> Self {
        // SAFETY: uname fills the struct it is given.
        let release = unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            if libc::uname(&mut u) == 0 {
                std::ffi::CStr::from_ptr(u.release.as_ptr())
                    .to_string_lossy()
                    .into_owned()
            } else {
                String::from("unknown")
            }
        };
        let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
        KernelInfo {
            release,
            btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
            tcx,
        }
    }

    pub fn attach_modes(&self) -> Vec<&'static str> {
        if self.tcx {
            vec!["tcx", "tc"]
        } else {
            vec!["tc"]
        }
    }

    pub fn resolve(&self, pref: AttachPref) -> Result<AttachMode, TcxUnsupported> {
        match pref {
            AttachPref::Tc => Ok(AttachMode::Tc),
            AttachPref::Auto if self.tcx => Ok(AttachMode::Tcx),
            AttachPref::Auto => Ok(AttachMode::Tc),
            AttachPref::Tcx if self.tcx => Ok(AttachMode::Tcx),
            AttachPref::Tcx => Err(TcxUnsupported {
                release: self.release.clone(),
            }),
        }
    }
}
