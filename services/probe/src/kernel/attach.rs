//! Attaching the classifier to one hook (interface + direction) and taking it
//! off again. Attachments outlive the probe: TCX links are pinned under
//! `<pin dir>/links/`, tc filters persist by themselves and are re-adopted
//! from the priority/handle recorded in the `ifaces` map.

use std::io;

use aya::programs::{
    links::{FdLink, Link, PinnedLink},
    tc::{self, NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle},
    LinkOrder, TcAttachType,
};
use tracing::{debug, info, warn};

use super::datapath::Datapath;
use super::maps::layout::{HookRec, PROG_GENERATION};
use super::records::{attach_code, attach_from_code};
use crate::domain::{AttachMode, DIR_NAMES};

/// An attach or detach step that failed, with the kernel's (or aya's) word.
#[derive(Debug, thiserror::Error)]
#[error("{step} {ifname} {dir}: {cause}")]
pub struct AttachError {
    pub step: &'static str,
    pub ifname: String,
    pub dir: &'static str,
    pub cause: String,
}

fn fail(step: &'static str, ifname: &str, dir: usize) -> impl FnOnce(String) -> AttachError {
    let ifname = ifname.to_string();
    move |cause| AttachError {
        step,
        ifname,
        dir: DIR_NAMES[dir],
        cause,
    }
}

fn attach_type(dir: usize) -> TcAttachType {
    if dir == 0 {
        TcAttachType::Ingress
    } else {
        TcAttachType::Egress
    }
}

/// Result of one attach: the hook record, and whether we created clsact.
pub struct Attached {
    pub hook: HookRec,
    pub created_qdisc: bool,
}

/// The handle of our tc filters. Chosen, with the priority, before the
/// filter exists, so that the record can name it first: a probe killed
/// between attaching and recording leaves a filter its successor finds
/// (at the recorded priority and handle, running our program) and adopts,
/// instead of attaching a second one that would count every packet twice.
pub const TC_HANDLE: u32 = 0x7e1e;
/// The kernel's default priority for a filter on an empty tc hook.
const TC_DEFAULT_PRIO: u16 = 0xc000;

/// Where our tc filter goes, given the lowest priority of the filters
/// already on the hook (netlink): in front of them, so that a filter which
/// ends the chain cannot hide packets from the counter. A foreign filter at
/// priority 1 cannot be preceded; we then run after it (and say so).
pub fn tc_priority(ifname: &str, dir: usize, first_prio: Option<u16>) -> u16 {
    match first_prio {
        None => TC_DEFAULT_PRIO,
        Some(p) if p > 1 => p - 1,
        Some(_) => {
            warn!(
                ifname,
                dir = DIR_NAMES[dir],
                "a filter at priority 1 runs before the counter; packets it ends are not counted"
            );
            TC_DEFAULT_PRIO
        }
    }
}

impl Datapath {
    /// `tc_prio`: the priority a tc filter gets (tc_priority), recorded by
    /// the caller before this call.
    pub fn attach_hook(
        &mut self,
        ifname: &str,
        ifindex: u32,
        dir: usize,
        tc_prio: u16,
    ) -> Result<Attached, AttachError> {
        match self.mode {
            AttachMode::Tcx => self.attach_tcx(ifname, ifindex, dir),
            AttachMode::Tc => self.attach_tc(ifname, dir, tc_prio),
        }
    }

    fn attach_tcx(
        &mut self,
        ifname: &str,
        ifindex: u32,
        dir: usize,
    ) -> Result<Attached, AttachError> {
        let pin = self.link_pin(ifindex, dir);
        // A stale pin for this hook (ifindex reused after the old interface
        // went away) would make pinning fail; it is ours, remove it.
        if pin.exists() {
            let _ = std::fs::remove_file(&pin);
        }
        let prog = self
            .program(dir)
            .map_err(|e| fail("tcx attach to", ifname, dir)(e.to_string()))?;
        // First in the TCX chain, so that programs which redirect or drop
        // cannot hide packets from the counter; we always pass them on.
        let id = prog
            .attach_with_options(
                ifname,
                attach_type(dir),
                TcAttachOptions::TcxOrder(LinkOrder::first()),
            )
            .map_err(|e| fail("tcx attach to", ifname, dir)(e.to_string()))?;
        let link = prog
            .take_link(id)
            .map_err(|e| fail("taking the tcx link of", ifname, dir)(e.to_string()))?;
        let fd_link: FdLink = link
            .try_into()
            .map_err(|e: aya::programs::links::LinkError| {
                fail("converting the tcx link of", ifname, dir)(e.to_string())
            })?;
        fd_link.pin(&pin).map_err(|e| {
            fail("pinning the tcx link of", ifname, dir)(format!("{}: {e}", pin.display()))
        })?;
        info!(ifname, dir = DIR_NAMES[dir], mode = "tcx", "attached");
        Ok(Attached {
            hook: HookRec {
                attached: 1,
                mode: attach_code(AttachMode::Tcx),
                generation: PROG_GENERATION,
                ..Default::default()
            },
            created_qdisc: false,
        })
    }

    fn attach_tc(
        &mut self,
        ifname: &str,
        dir: usize,
        priority: u16,
    ) -> Result<Attached, AttachError> {
        // First: no qdisc is added for a program that is not there.
        let prog = self
            .program(dir)
            .map_err(|e| fail("tc filter attach to", ifname, dir)(e.to_string()))?;
        let created_qdisc = match tc::qdisc_add_clsact(ifname) {
            Ok(()) => true,
            Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => false,
            Err(e) => return Err(fail("adding a clsact qdisc to", ifname, dir)(e.to_string())),
        };
        let opts = NlOptions {
            priority,
            handle: TcHandle::from(TC_HANDLE),
            classid: None,
        };
        let id = prog
            .attach_with_options(ifname, attach_type(dir), TcAttachOptions::Netlink(opts))
            .map_err(|e| fail("tc filter attach to", ifname, dir)(e.to_string()))?;
        let link = prog
            .take_link(id)
            .map_err(|e| fail("taking the tc link of", ifname, dir)(e.to_string()))?;
        let priority = link
            .priority()
            .map_err(|e| fail("reading the tc priority on", ifname, dir)(e.to_string()))?;
        let handle: u32 = link
            .handle()
            .map_err(|e| fail("reading the tc handle on", ifname, dir)(e.to_string()))?
            .into();
        // Dropping the link would detach the filter; the filter must outlive
        // this process, and is re-adopted from (priority, handle).
        std::mem::forget(link);
        info!(
            ifname,
            dir = DIR_NAMES[dir],
            mode = "tc",
            priority,
            handle,
            created_qdisc,
            "attached"
        );
        Ok(Attached {
            hook: HookRec {
                attached: 1,
                mode: attach_code(AttachMode::Tc),
                generation: PROG_GENERATION,
                priority: priority.into(),
                handle,
            },
            created_qdisc,
        })
    }

    /// Replace the program of one of our attachments by this probe's, in
    /// place: a TCX link update, a tc filter replaced at its priority and
    /// handle. The hook never runs two programs, nor none, so no packet is
    /// counted twice or missed. Returns the updated record.
    pub fn replace_hook(
        &mut self,
        ifname: &str,
        ifindex: u32,
        dir: usize,
        hook: &HookRec,
    ) -> Result<HookRec, AttachError> {
        let link = match attach_from_code(hook.mode) {
            Some(AttachMode::Tcx) => {
                let pin = self.link_pin(ifindex, dir);
                let fd: FdLink = PinnedLink::from_pin(&pin)
                    .map_err(|e| {
                        fail("opening the tcx link of", ifname, dir)(format!(
                            "{}: {e}",
                            pin.display()
                        ))
                    })?
                    .into();
                SchedClassifierLink::try_from(fd)
                    .map_err(|e| fail("opening the tcx link of", ifname, dir)(e.to_string()))?
            }
            Some(AttachMode::Tc) => SchedClassifierLink::attached(
                ifname,
                attach_type(dir),
                hook.priority as u16,
                TcHandle::from(hook.handle),
                None,
            )
            .map_err(|e| fail("addressing the tc filter of", ifname, dir)(e.to_string()))?,
            None => return Ok(*hook),
        };
        let prog = self
            .program(dir)
            .map_err(|e| fail("replacing the program on", ifname, dir)(e.to_string()))?;
        let id = prog
            .attach_to_link(link)
            .map_err(|e| fail("replacing the program on", ifname, dir)(e.to_string()))?;
        let link = prog
            .take_link(id)
            .map_err(|e| fail("taking the link of", ifname, dir)(e.to_string()))?;
        // Dropping the link would detach it: a TCX link stays pinned, a tc
        // filter persists by itself.
        if hook.mode == attach_code(AttachMode::Tcx) {
            let fd: Result<FdLink, _> = link.try_into();
            drop(fd);
        } else {
            std::mem::forget(link);
        }
        info!(ifname, dir = DIR_NAMES[dir], "program replaced in place");
        Ok(HookRec {
            generation: PROG_GENERATION,
            ..*hook
        })
    }

    /// Remove one of our attachments. A hook that is already gone (interface
    /// deleted, filter removed by hand) is not an error.
    pub fn detach_hook(
        &mut self,
        ifname: &str,
        ifindex: u32,
        dir: usize,
        hook: &HookRec,
    ) -> Result<(), AttachError> {
        match attach_from_code(hook.mode) {
            Some(AttachMode::Tcx) => {
                let pin = self.link_pin(ifindex, dir);
                match PinnedLink::from_pin(&pin) {
                    Ok(p) => {
                        let fd: FdLink = p.unpin().map_err(|e| {
                            fail("unpinning the tcx link of", ifname, dir)(format!(
                                "{}: {e}",
                                pin.display()
                            ))
                        })?;
                        // Closing the last fd of an unpinned link detaches it.
                        drop(fd);
                    }
                    Err(e) => warn!(path = %pin.display(), error = %e, "tcx link pin already gone"),
                }
            }
            Some(AttachMode::Tc) => {
                let prio = hook.priority as u16;
                match SchedClassifierLink::attached(
                    ifname,
                    attach_type(dir),
                    prio,
                    TcHandle::from(hook.handle),
                    None,
                ) {
                    Ok(link) => {
                        if let Err(e) = link.detach() {
                            warn!(ifname, prio, error = %e, "tc filter already gone");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        debug!(ifname, "interface gone; its filters went with it")
                    }
                    Err(e) => warn!(ifname, error = %e, "cannot address tc filter"),
                }
            }
            None => {}
        }
        info!(ifname, ifindex, dir = DIR_NAMES[dir], "detached");
        Ok(())
    }
}

/// The interface a pinned TCX link is attached to: None when the pin is
/// gone, Some(0) when the link was detached (e.g. `bpftool link detach`:
/// the pin stays, the hook does not). aya 0.14 does not expose the link's
/// tcx info, so bpf(2) directly: BPF_OBJ_GET, then BPF_OBJ_GET_INFO_BY_FD.
pub fn tcx_link_ifindex(pin: &std::path::Path) -> io::Result<Option<u32>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    #[repr(C)]
    struct ObjGet {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    #[repr(C)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let path = std::ffi::CString::new(pin.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let get = ObjGet {
        pathname: path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    // SAFETY: a valid bpf_attr prefix for BPF_OBJ_GET; `path` outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            &get as *const ObjGet,
            std::mem::size_of::<ObjGet>() as u32,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel just gave us this fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // struct bpf_link_info: type, id, prog_id (u32 each), then a union
    // aligned to 8 whose tcx member starts with the ifindex (offset 16).
    let mut info = [0u64; 16];
    let by_fd = InfoByFd {
        bpf_fd: std::os::fd::AsRawFd::as_raw_fd(&fd) as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: a valid bpf_attr prefix; `info` outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &by_fd as *const InfoByFd,
            std::mem::size_of::<InfoByFd>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(info[2] as u32))
}
