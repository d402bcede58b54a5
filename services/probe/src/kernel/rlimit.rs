//! RLIMIT_MEMLOCK on kernels before 5.11, which charge BPF maps and
//! programs to it (5.11+ charge the memory cgroup instead). A non-root probe
//! (CAP_BPF + CAP_NET_ADMIN, no CAP_SYS_RESOURCE) may raise its soft limit
//! only up to the hard one, so the hard limit is the operator's to set.

use aya::util::KernelVersion;

/// The limit in force after [`raise`], in bytes (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memlock {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl std::fmt::Display for Memlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show =
            |v: Option<u64>| v.map_or("unlimited".to_string(), |b| format!("{} KiB", b / 1024));
        write!(f, "soft {}, hard {}", show(self.soft), show(self.hard))
    }
}

/// Whether this kernel charges BPF objects to RLIMIT_MEMLOCK.
pub fn kernel_charges_memlock() -> bool {
    KernelVersion::current().is_ok_and(|v| v < KernelVersion::new(5, 11, 0))
}

fn limit(v: libc::rlim_t) -> Option<u64> {
    (v != libc::RLIM_INFINITY).then_some(v)
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

fn set(r: &libc::rlimit) -> bool {
    // SAFETY: setrlimit reads the struct it is given.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, r) == 0 }
}

/// Raise RLIMIT_MEMLOCK as far as this process may: unlimited with
/// CAP_SYS_RESOURCE, else the soft limit up to the hard one.
pub fn raise() -> std::io::Result<Memlock> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    if !set(&unlimited) {
        let r = get()?;
        if r.rlim_cur != r.rlim_max {
            set(&libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            });
        }
    }
    let r = get()?;
    Ok(Memlock {
        soft: limit(r.rlim_cur),
        hard: limit(r.rlim_max),
    })
}

/// True when an error chain ends in EPERM (what bpf(2) returns when the
/// memlock charge fails on kernels < 5.11).
pub fn is_eperm(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::EPERM) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_is_found_through_the_chain() {
        let e = aya::maps::MapError::CreateError {
            name: "stats_percpu".into(),
            io_error: std::io::Error::from_raw_os_error(libc::EPERM),
        };
        assert!(is_eperm(&e));
        let e = aya::maps::MapError::CreateError {
            name: "stats_percpu".into(),
            io_error: std::io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert!(!is_eperm(&e));
    }

    #[test]
    fn limits_read_back() {
        let m = raise().expect("getrlimit");
        if let (Some(s), Some(h)) = (m.soft, m.hard) {
            assert!(s <= h);
        }
        assert!(m.to_string().starts_with("soft "));
    }
}
