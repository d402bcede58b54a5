//! Loading the classifier: one load of the object at start (load and
//! verify take ~100 ms; jobs only attach) over the pin directory that
//! pins.rs prepares and checks; the deep program on first need; degraded
//! mode on the pinned maps alone.

use std::{fs, path::PathBuf};

use aya::{maps::ProgramArray, programs::SchedClassifier, Ebpf, EbpfLoader};
use tracing::info;

pub use super::error::DatapathError;
pub use super::info::{KernelInfo, TcxUnsupported};
use super::maps::{layout::*, Maps};
use super::pins::{
    check_capabilities, check_pinned_layout, checked_meta, ensure_bpffs, lock_pin_dir, statfs_type,
    BPF_FS_MAGIC,
};
use crate::config::Config;
use crate::domain::AttachMode;
use crate::timefmt::now_ns;

/// The classifier object, compiled by build.rs from ebpf/.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/telegen.bpf.o"));

pub const PROG_NAMES: [&str; 2] = ["telegen_ingress", "telegen_egress"];
/// Tail-called on hooks where a job filters or tracks flows (maps.h,
/// deep_progs_v2); loaded on first need: its verification takes about a
/// second, which plain jobs and probe restarts need not wait for.
pub const DEEP_PROG: &str = "telegen_deep";

pub struct Datapath {
    /// The loaded object; None in degraded mode (only the pinned maps).
    ebpf: Option<Ebpf>,
    /// Degraded mode: why the programs could not be loaded.
    pub off: Option<String>,
    pub maps: Maps,
    pub pin_dir: PathBuf,
    pub mode: AttachMode,
    /// When the pinned counters were created (a new value means a reset).
    pub epoch_ns: u64,
    /// The layout the pins say they have (an older one is upgraded by
    /// LiveKernel::upgrade_pins).
    pub pinned_layout: u32,
    /// telegen_deep is loaded and in deep_progs_v2 (shared with the loader
    /// that does it off the job lock: deep_loader).
    deep_ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The pin directory, open with an exclusive flock for as long as this
    /// probe lives: one probe per pin directory.
    _lock: fs::File,
}

impl Datapath {
    pub fn open(cfg: &Config, kernel: &KernelInfo) -> Result<Self, DatapathError> {
        let mode = kernel.resolve(cfg.attach)?;
        check_capabilities()?;
        ensure_bpffs(&cfg.pin_dir)?;
        fs::create_dir_all(cfg.pin_dir.join("links"))
            .map_err(|e| DatapathError::Io(format!("creating {}: {e}", cfg.pin_dir.display())))?;
        let lock = lock_pin_dir(&cfg.pin_dir)?;
        check_pinned_layout(&cfg.pin_dir)?;
        let memlock = if super::rlimit::kernel_charges_memlock() {
            let m = super::rlimit::raise()
                .map_err(|e| DatapathError::Io(format!("getrlimit(RLIMIT_MEMLOCK): {e}")))?;
            info!(memlock = %m, kernel = %kernel.release, "this kernel charges BPF maps to RLIMIT_MEMLOCK");
            Some(m)
        } else {
            None
        };
        // A failed memlock charge is a bare EPERM: say which limit it was.
        let memlock_err = |e: &(dyn std::error::Error + 'static)| match memlock {
            Some(limit) if limit.soft.is_some() && super::rlimit::is_eperm(e) => {
                Some(DatapathError::Memlock {
                    release: kernel.release.clone(),
                    limit,
                    cause: e.to_string(),
                })
            }
            _ => None,
        };
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&cfg.pin_dir)
            .load(OBJECT)
            .map_err(|e| memlock_err(&e).unwrap_or(DatapathError::Load(e)))?;
        for name in PROG_NAMES {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or_else(|| DatapathError::Io(format!("program {name} missing from object")))?
                .try_into()
                .map_err(|e| DatapathError::Program(name, e))?;
            prog.load()
                .map_err(|e| memlock_err(&e).unwrap_or(DatapathError::Program(name, e)))?;
        }
        let mut maps = Maps::take(&mut ebpf)?;
        let mut meta = checked_meta(&mut maps, &cfg.pin_dir)?;
        if meta.layout_version == 0 {
            meta = Meta {
                created_unix_ns: now_ns(),
                layout_version: LAYOUT_VERSION,
                pad: 0,
            };
            maps.set_meta(&meta)?;
            info!(pin_dir = %cfg.pin_dir.display(), "created pinned maps");
        } else {
            info!(pin_dir = %cfg.pin_dir.display(), layout = meta.layout_version, "reusing pinned maps; counters continue");
        }
        Ok(Datapath {
            ebpf: Some(ebpf),
            off: None,
            maps,
            pin_dir: cfg.pin_dir.clone(),
            mode,
            epoch_ns: meta.created_unix_ns,
            pinned_layout: meta.layout_version,
            deep_ready: Default::default(),
            _lock: lock,
        })
    }

    /// Degraded mode, when `open` failed for `why`: the maps an earlier
    /// probe pinned, without the programs. Recorded jobs are adopted (their
    /// hooks keep counting into these maps), listed, stopped and expired;
    /// nothing can be attached. Fails when there are no pins to adopt, or
    /// they cannot be read safely (layout, version, privileges).
    pub fn open_degraded(cfg: &Config, why: &str) -> Result<Self, DatapathError> {
        let dir = &cfg.pin_dir;
        if statfs_type(dir) != Some(BPF_FS_MAGIC) || !dir.join("meta").exists() {
            return Err(DatapathError::Io(format!(
                "no pinned state in {}",
                dir.display()
            )));
        }
        let lock = lock_pin_dir(dir)?;
        check_pinned_layout(dir)?;
        let mut maps = Maps::from_pins(dir)?;
        let meta = checked_meta(&mut maps, dir)?;
        if meta.layout_version == 0 {
            return Err(DatapathError::Io(
                "the pinned maps were never set up".into(),
            ));
        }
        Ok(Datapath {
            ebpf: None,
            off: Some(why.to_string()),
            maps,
            pin_dir: dir.clone(),
            // Nothing is attached in this mode; detaching goes by each
            // hook's recorded mode.
            mode: AttachMode::Tc,
            epoch_ns: meta.created_unix_ns,
            pinned_layout: meta.layout_version,
            deep_ready: Default::default(),
            _lock: lock,
        })
    }

    /// The loaded object, or why there is none.
    fn object(&mut self) -> Result<&mut Ebpf, DatapathError> {
        match (&mut self.ebpf, &self.off) {
            (Some(e), _) => Ok(e),
            (None, why) => Err(DatapathError::Off(why.clone().unwrap_or_default())),
        }
    }

    /// Load telegen_deep and publish it in deep_progs_v2, once per process
    /// (an entry left by an earlier probe keeps serving until replaced).
    /// Normally done already by `deep_loader`, off the job lock.
    pub fn ensure_deep(&mut self) -> Result<(), DatapathError> {
        use std::sync::atomic::Ordering::Acquire;
        if self.deep_ready.load(Acquire) {
            return Ok(());
        }
        let ready = self.deep_ready.clone();
        publish_deep(self.object()?, &ready)
    }

    /// What `ensure_deep` does, as a task to run without the job lock (the
    /// verifier takes about a second, more on old kernels): on a second
    /// instance of the object, whose maps are the pinned ones (its own
    /// facts_scratch is telegen_deep's alone). None when already done or
    /// nothing can be loaded.
    pub fn deep_loader(&self) -> Option<impl FnOnce() -> Result<(), DatapathError> + Send> {
        if self.off.is_some() || self.deep_ready.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let (pin_dir, ready) = (self.pin_dir.clone(), self.deep_ready.clone());
        Some(move || {
            let mut ebpf = EbpfLoader::new()
                .default_map_pin_directory(&pin_dir)
                .load(OBJECT)?;
            // The program stays alive in the pinned deep_progs_v2 once `ebpf`
            // is dropped.
            publish_deep(&mut ebpf, &ready)
        })
    }

    /// The classifier of hook direction `dir` (an error in degraded mode).
    pub fn program(&mut self, dir: usize) -> Result<&mut SchedClassifier, DatapathError> {
        self.object()?
            .program_mut(PROG_NAMES[dir])
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| DatapathError::Io(format!("program {} missing", PROG_NAMES[dir])))
    }

    pub fn link_pin(&self, ifindex: u32, dir: usize) -> PathBuf {
        self.pin_dir
            .join("links")
            .join(format!("tcx_{ifindex}_{}", ["ingress", "egress"][dir]))
    }
}

/// Load telegen_deep from `ebpf` and put it in its deep_progs_v2.
fn publish_deep(
    ebpf: &mut Ebpf,
    ready: &std::sync::atomic::AtomicBool,
) -> Result<(), DatapathError> {
    let started = std::time::Instant::now();
    let prog: &mut SchedClassifier = ebpf
        .program_mut(DEEP_PROG)
        .ok_or_else(|| DatapathError::Io(format!("program {DEEP_PROG} missing from object")))?
        .try_into()
        .map_err(|e| DatapathError::Program(DEEP_PROG, e))?;
    prog.load()
        .map_err(|e| DatapathError::Program(DEEP_PROG, e))?;
    let fd = prog
        .fd()
        .map_err(|e| DatapathError::Program(DEEP_PROG, e))?
        .try_clone()
        .map_err(|e| DatapathError::Io(format!("{DEEP_PROG} fd: {e}")))?;
    let mut progs: ProgramArray<_> = ProgramArray::try_from(
        ebpf.map_mut("deep_progs_v2")
            .ok_or_else(|| DatapathError::Io("map deep_progs_v2 missing".into()))?,
    )?;
    progs.set(0, &fd, 0)?;
    ready.store(true, std::sync::atomic::Ordering::Release);
    info!(
        ms = started.elapsed().as_millis() as u64,
        "loaded the filter and flow program"
    );
    Ok(())
}

/// A verifier refusal carries its whole log (megabytes when the program is
/// too complex): keep the head and the last lines, where the verifier says
/// why, so the message fits in a gRPC status and a log line.
pub fn brief(msg: &str) -> String {
    const HEAD: usize = 240;
    const TAIL: usize = 600;
    if msg.len() <= HEAD + TAIL {
        return msg.to_string();
    }
    let head: String = msg.chars().take(HEAD).collect();
    // The reason comes before the kernel's three lines of statistics.
    let tail_lines: Vec<&str> = msg.lines().rev().take(6).collect();
    let tail = tail_lines.into_iter().rev().collect::<Vec<_>>().join(" / ");
    let cut = tail
        .char_indices()
        .rev()
        .nth(TAIL - 1)
        .map_or(0, |(i, _)| i);
    format!("{head} [...] {}", &tail[cut..])
}

#[cfg(test)]
mod tests {
    use super::brief;

    #[test]
    fn brief_keeps_short_messages_and_the_end_of_long_ones() {
        assert_eq!(brief("short"), "short");
        let log: String = (0..20000)
            .map(|i| format!("{i}: insn\n"))
            .collect::<String>()
            + "BPF program is too large. Processed 1000001 insn\nverification time 1 usec";
        let b = brief(&log);
        assert!(b.len() < 900, "{}", b.len());
        assert!(b.starts_with("0: insn"));
        assert!(b.ends_with("verification time 1 usec"), "{b}");
        assert!(b.contains("too large"), "{b}");
    }
}
