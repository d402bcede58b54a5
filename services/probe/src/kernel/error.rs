//! Why the datapath could not be had, typed by what the operator must do.

use super::info::TcxUnsupported;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("{0}")]
    Privileges(String),
    #[error("{0}")]
    Bpffs(String),
    #[error("pinned map {path} has another layout (key {key}/value {value}/entries {entries} bytes, expected {ekey}/{evalue}/{eentries}); it was left by an incompatible probe version: stop its jobs and remove {dir}")]
    Layout {
        path: String,
        dir: String,
        key: u32,
        value: u32,
        entries: u32,
        ekey: u32,
        evalue: u32,
        eentries: u32,
    },
    #[error("loading the BPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("loading program {0}: {1}")]
    Program(&'static str, aya::programs::ProgramError),
    #[error("opening maps: {0}")]
    Maps(#[from] aya::maps::MapError),
    #[error("{0}")]
    Io(String),
    #[error("the pins in {dir} were written by a newer probe (layout {found}; this one knows up to {known}): run that version or a newer one; this one would misread them")]
    NewerLayout { dir: String, found: u32, known: u32 },
    /// Another probe owns the pin directory: starting would make two
    /// probes adopt and edit the same maps.
    #[error("another telegen-probe holds {0} (an exclusive lock on the directory); stop it first, or give this one its own TELEGEN_BPF_PIN_DIR")]
    Locked(String),
    #[error(transparent)]
    Attach(#[from] TcxUnsupported),
    /// Degraded mode: the pinned maps only.
    #[error("the BPF programs are not loaded ({0}); jobs recorded before are kept, nothing new can be attached")]
    Off(String),
    #[error("kernel {release} charges BPF maps to RLIMIT_MEMLOCK and creating them failed at its limit ({limit}): raise the hard limit (systemd LimitMEMLOCK=infinity, docker/podman --ulimit memlock=-1:-1) or grant CAP_SYS_RESOURCE; kernels 5.11+ need neither ({cause})")]
    Memlock {
        release: String,
        limit: super::rlimit::Memlock,
        cause: String,
    },
}
