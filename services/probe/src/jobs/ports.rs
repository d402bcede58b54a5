//! What the job core needs from the world, as traits: the kernel (pinned
//! records, counters, hooks), interface look-up, the two mirror backends
//! and the clock. The probe plugs in the real ones (kernel::LiveKernel,
//! kernel::netlink, mirror::*); the core's unit tests plug in fakes that
//! can fail at any step.

use std::net::Ipv4Addr;

use uuid::Uuid;

use crate::domain::acl::{AclPlan, AclStatus, Platform};
use crate::domain::{AttachMode, ClassCounts, Job};

/// The job slots that want each hook of one interface (0 ingress, 1
/// egress), and which hooks must run the deep program (bit per hook).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookWant {
    pub slots: [Vec<u8>; 2],
    pub deep: u8,
}

impl HookWant {
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Vec::is_empty)
    }
}

/// What a reconcile found and left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooked {
    /// The attach mode in use there, None when nothing is attached.
    pub mode: Option<AttachMode>,
    /// Hooks ("ingress", "egress") that were recorded as ours but found
    /// gone or taken by someone else, and attached again if wanted.
    pub lost: Vec<&'static str>,
}

/// A failure of the kernel side, typed by what failed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("{what}: {source}")]
    Map {
        what: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("{what}: {source}")]
    Netlink {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("interface {0} disappeared")]
    InterfaceGone(u32),
    #[error("all interface slots are in use")]
    NoInterfaceSlot,
    #[error("the classifier on {iface} {dir} was attached by an older probe that cannot filter or track flows; stop the jobs on this interface first, so it is re-attached")]
    OldClassifier { iface: String, dir: &'static str },
    #[error("loading the filter and flow program: {0}")]
    DeepProgram(String),
    #[error("{0}")]
    Attach(String),
}

/// One flow of a job's table as the kernel keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFlow {
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub packets: u64,
    pub bytes: u64,
}

/// A flows job's table and how it fared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowTableRead {
    /// None: the job has no table (any more).
    pub table_size: Option<u32>,
    /// The best flows asked for, best first (report::walk_flows).
    pub entries: Vec<RawFlow>,
    /// The entries the table holds (held at the job's end, once it ended).
    pub table_entries: u64,
    pub flows_seen: u64,
    pub sampled_packets: u64,
    pub update_failures: u64,
}

/// A job's flow table, open: taken under the job lock, walked after it
/// (a 1M-entry walk takes seconds of syscalls).
pub trait FlowSource: Send {
    /// Entries the job's table holds at most.
    fn size(&self) -> u32;
    /// For the small table kept at a job's end: the entries it replaced.
    fn kept_of(&self) -> Option<u64>;
    fn for_each(&self, f: &mut dyn FnMut(RawFlow));
}

/// Everything the kernel counted for one job since it started (the flow
/// entries aside: `Kernel::flow_table`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounters {
    /// Per class, in `CLASS_NAMES` order.
    pub classes: Vec<ClassCounts>,
    /// The per-job packet errors results show, by name.
    pub errors: Vec<(&'static str, u64)>,
    pub flows: FlowTableRead,
    /// Packets on the job's hook that its filter rejected.
    pub filter_rejected: u64,
    /// Capture jobs: what the kernel let through and let go.
    pub capture: Option<KernelCapture>,
    /// Since the job started: [GRE sequenced, lost upstream, late] on its
    /// interface, and the exports reported failed.
    pub coverage: [u64; 4],
}

/// A capture job's kernel figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCapture {
    /// Packets put in the ring.
    pub packets: u64,
    pub ring_full: u64,
    pub rate_limited: u64,
    pub cap_reached: u64,
    pub copy_failed: u64,
}

/// A capture job's file, as the probe wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureFileStats {
    pub packets: u64,
    /// Captured bytes (as cut at snaplen).
    pub bytes: u64,
    /// Records the spool had no room for, or could not write.
    pub spool_dropped: u64,
    pub file_bytes: u64,
}

/// Where captures are written (capture::Spool): one pcapng file per
/// capture job, in a directory of bounded size.
pub trait CaptureStore: Send + Sync {
    /// Start a job's file (or continue it, after a restart; `ended`: the
    /// job ended already and writes nothing more).
    fn open(&self, job: &Job, ended: bool) -> std::io::Result<()>;
    /// The job counts no more; the kernel put `kernel_packets` in the ring
    /// for it in all (the file is complete once they are written).
    fn close(&self, job: Uuid, kernel_packets: u64);
    /// Delete the job's file (its record is gone).
    fn remove(&self, job: Uuid);
    fn stats(&self, job: Uuid) -> Option<CaptureFileStats>;
    /// TELEGEN_CAPTURE_DIR_MAX_BYTES.
    fn max_bytes(&self) -> u64;
    /// The job's file as pcapng chunks, live (capture::follow); None when
    /// it has none.
    fn follow(&self, job: Uuid, from_now: bool) -> Option<CaptureChunks>;
}

/// A capture being sent, chunk by chunk.
pub type CaptureChunks = tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>;

/// One interface's counters, for the counter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceCounters {
    pub ifindex: u32,
    pub name: String,
    /// The hooks attached there ("ingress", "egress" or "both").
    pub hooks: String,
    pub start_ns: u64,
    pub classes: Vec<ClassCounts>,
}

/// The kernel's side of a counter snapshot (jobs are added by the core).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// When the pinned counters were created.
    pub epoch_ns: u64,
    pub global: Vec<ClassCounts>,
    pub interfaces: Vec<IfaceCounters>,
    pub errors: Vec<(&'static str, u64)>,
    pub tunnel: Vec<(&'static str, u64)>,
}

/// See `Kernel::deep_loader`.
pub type DeepLoader = Box<dyn FnOnce() -> Result<(), KernelError> + Send>;

/// The pinned datapath: job records, per-job kernel state, hooks, counters.
/// Every write is persisted before it returns (a restarted probe sees it).
#[tonic::async_trait]
pub trait Kernel: Send + Sync {
    /// The job records an earlier probe left (with their filters).
    fn load_jobs(&self) -> Vec<Job>;
    /// Write a job's record (and its filter, so that a job recorded but not
    /// yet counting keeps it across a restart).
    fn persist(&mut self, job: &Job) -> Result<(), KernelError>;
    /// Free a slot's record: a start that got no further owns nothing.
    fn forget(&mut self, slot: u32) -> Result<(), KernelError>;
    /// Everything a job's slot needs before it is counted: zeroed counters,
    /// its filter, a fresh flow table (or none).
    fn prepare_job(&mut self, job: &Job) -> Result<(), KernelError>;
    /// Loading (verifying) the filter and flow program, as a task to run
    /// without the job lock before a reconcile that needs it; None when it
    /// is loaded already (or cannot be).
    fn deep_loader(&self) -> Option<DeepLoader> {
        None
    }
    /// Make the hooks of `ifindex` match `want` (attach, detach, config),
    /// after checking that what the records say is attached still is, and
    /// is ours (a hook lost to an operator's `tc` is attached again; one
    /// that is not ours is never detached).
    async fn reconcile(&mut self, ifindex: u32, want: &HookWant) -> Result<Hooked, KernelError>;
    /// Interfaces with a recorded attachment.
    fn hooked_ifindexes(&self) -> Vec<u32>;
    /// Unpin TCX links no record mentions (a crash mid-attach).
    fn remove_unrecorded_links(&mut self);
    fn job_counters(&self, job: &Job) -> Result<JobCounters, KernelError>;
    /// A flows job's table, open; None when it has none.
    fn flow_table(&self, job: &Job) -> Result<Option<Box<dyn FlowSource>>, KernelError>;
    /// At a job's end: replace its table by one holding only `top` (and a
    /// note of its `size` and the entries it `held`), freeing the memory.
    fn keep_flows(
        &mut self,
        job: &Job,
        top: &[RawFlow],
        size: u32,
        held: u64,
    ) -> Result<(), KernelError>;
    fn counters(&self) -> Result<KernelCounters, KernelError>;
    /// An exporter `instance` has failed `failed` exports since it began;
    /// returns the total the probe knows of.
    fn report_exports(&mut self, _instance: [u8; 16], _failed: u64) -> Result<u64, KernelError> {
        Ok(0)
    }
}

/// Interface look-up by name.
#[tonic::async_trait]
pub trait Interfaces: Send + Sync {
    async fn ifindex(&self, name: &str) -> std::io::Result<Option<u32>>;
}

/// A netdev ready to count on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub ifindex: u32,
    /// This probe created it now (false: reused).
    pub created: bool,
    /// It carries our owner mark (created now or by an earlier run).
    pub ours: bool,
}

/// Why the erspan netdev could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    /// A device is in the way that must not be changed: the operator has
    /// to act (FAILED_PRECONDITION), rather than a job silently elsewhere.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
}

/// The erspan netdev a job counts on (mirror modes erspan and sonic).
#[tonic::async_trait]
pub trait ErspanBackend: Send + Sync {
    /// Create the netdev, or reuse a matching one; `port` is the job's port.
    async fn ensure(
        &self,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        port: &str,
    ) -> Result<Provisioned, NetdevError>;
    /// Remove the netdev if this probe created it; whether it did.
    async fn release(&self) -> Result<bool, NetdevError>;
}

/// What a job's mirror session asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub dscp: u8,
    pub ttl: u8,
    pub queue: u8,
    /// The mirrored port and direction (RX, TX or BOTH); None when ACL
    /// rules select what is mirrored (SONiC's ACL-based Everflow session
    /// has neither).
    pub src_port: Option<(String, &'static str)>,
}

/// Why a mirror session could not be written, activated or deleted.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The switch's database did not answer: UNAVAILABLE, REST 503.
    #[error("{0}")]
    Unavailable(String),
    /// A session of that name exists and is not ours.
    #[error("{0}")]
    Refused(String),
    /// The switch did not activate it in time.
    #[error("{0}")]
    Inactive(String),
}

/// What ACL mirroring can do on the switch and what is in its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclContext {
    pub platform: Platform,
    /// Every ACL table configured: (name, type, stage).
    pub tables: Vec<(String, String, String)>,
}

/// SONiC's CONFIG_DB / STATE_DB mirror sessions (mirror mode sonic), and
/// the ACL tables and rules that select what a session mirrors. Everything
/// a job writes carries its id in its name: that is how it is owned.
#[tonic::async_trait]
pub trait SonicBackend: Send + Sync {
    async fn create(&self, job: Uuid, spec: &SessionSpec) -> Result<(), SessionError>;
    /// The switch's ACL capabilities and tables.
    async fn acl_context(&self) -> Result<AclContext, SessionError>;
    /// Write a job's ACL tables and rules (after its session: the rules
    /// name it).
    async fn write_acl(&self, job: Uuid, plan: &AclPlan) -> Result<(), SessionError>;
    /// Wait for the session, and the job's ACL tables and rules if it has
    /// any, to be active; whether the release reports ACL status.
    async fn wait_active(&self, job: Uuid) -> Result<AclStatus, SessionError>;
    /// Delete the job's ACL rules, tables, then its session (the session
    /// cannot go while rules name it); whether there was any.
    async fn delete(&self, job: Uuid) -> Result<bool, SessionError>;
    /// The jobs with a session, ACL table or rule of ours in CONFIG_DB (by
    /// name).
    async fn sessions(&self) -> Result<Vec<Uuid>, SessionError>;
}

/// Time: the wall clock (ns since the epoch: what jobs report) and the
/// boot clock (ns since boot, suspend included: what expiry goes by, since
/// no NTP step moves it).
pub trait Clock: Send + Sync {
    fn now_ns(&self) -> u64;
    fn boot_ns(&self) -> u64;
}

/// The system's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        crate::timefmt::now_ns()
    }
    fn boot_ns(&self) -> u64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime fills the struct it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    }
}

/// The job core's backends.
pub struct Ports {
    /// None: the datapath is off (jobs run in placeholder mode).
    pub kernel: Option<Box<dyn Kernel>>,
    pub interfaces: Box<dyn Interfaces>,
    pub erspan: Box<dyn ErspanBackend>,
    pub sonic: Box<dyn SonicBackend>,
    pub clock: Box<dyn Clock>,
    pub capture: std::sync::Arc<dyn CaptureStore>,
}
