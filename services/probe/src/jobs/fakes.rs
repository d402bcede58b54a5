//! Fakes of every port, sharing one world that tests look at, and a set of
//! steps that fail while listed: a fault can be injected at any step of a
//! job's life without a kernel, a redis or a netdev.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::ports::{
    AclContext, CaptureFileStats, CaptureStore, Clock, ErspanBackend, FlowSource, HookWant, Hooked,
    Interfaces, JobCounters, Kernel, KernelCounters, KernelError, NetdevError, Ports, Provisioned,
    RawFlow, SessionError, SessionSpec, SonicBackend,
};
use super::{DatapathStatus, JobManager, Settings};
use crate::domain::acl::{AclPlan, AclStatus, Platform};
use crate::domain::{AttachMode, Direction, Job, JobFilter, JobState, MirrorMode};

/// A step of a port that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Lookup,
    Persist,
    Prepare,
    Reconcile,
    Ensure,
    Release,
    Create,
    WriteAcl,
    WaitActive,
    Delete,
}

pub const ALL_STEPS: [Step; 10] = [
    Step::Lookup,
    Step::Persist,
    Step::Prepare,
    Step::Reconcile,
    Step::Ensure,
    Step::Release,
    Step::Create,
    Step::WriteAcl,
    Step::WaitActive,
    Step::Delete,
];

pub const PORT_IFINDEX: u32 = 7;
pub const NETDEV_IFINDEX: u32 = 20;

/// What the fakes have done to the world.
#[derive(Debug, Default)]
pub struct World {
    /// Pinned job records by slot.
    pub records: BTreeMap<u32, Job>,
    /// Hooks attached, by ifindex: the job slots they count.
    pub hooks: BTreeMap<u32, HookWant>,
    /// SONiC sessions in CONFIG_DB, by job.
    pub sessions: BTreeSet<Uuid>,
    /// Jobs with ACL tables and rules in CONFIG_DB (with their rule count).
    pub acls: BTreeMap<Uuid, usize>,
    /// Capture files by job: whether closed.
    pub captures: BTreeMap<Uuid, bool>,
    /// The erspan netdev exists (created by us).
    pub netdev: bool,
    /// Interfaces whose hook an operator removed (reconcile finds it lost).
    pub lost: BTreeSet<u32>,
    pub failing: BTreeSet<Step>,
    pub now_ns: u64,
    pub boot_ns: u64,
    /// The probe's life: fakes of an older one (a crashed probe) have no
    /// effect any more, and their async steps never return.
    pub generation: u64,
    /// Effects (writes, creates, deletes, waits) done so far.
    pub effects: u64,
    /// The probe "is SIGKILLed" right after this many effects.
    pub crash_after: Option<u64>,
}

/// The world, as seen by the fakes of one probe's life (`.1`).
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<World>>, u64);

impl Shared {
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }
    /// Whether step `s` fails now: injected, or this probe is dead.
    fn fails(&self, s: Step) -> bool {
        let w = self.world();
        w.generation != self.1 || w.failing.contains(&s)
    }
    /// An async step: never returns once this probe is dead (as a killed
    /// process's syscall never does); else whether it fails.
    async fn gate(&self, s: Step) -> bool {
        if self.world().generation != self.1 {
            std::future::pending::<()>().await;
        }
        self.fails(s)
    }
    /// After an effect: counted; the probe dies if it was the last one.
    fn done(&self) {
        let mut w = self.world();
        w.effects += 1;
        if w.crash_after == Some(w.effects) {
            w.generation += 1;
            w.crash_after = None;
        }
    }
    /// The probe dies right after `n` more effects.
    pub fn crash_after(&self, n: u64) {
        let mut w = self.world();
        w.crash_after = Some(w.effects + n);
    }
    /// The fakes' view for a probe started now.
    fn life(&self) -> Shared {
        Shared(self.0.clone(), self.world().generation)
    }

    pub fn fail(&self, s: Step) {
        self.world().failing.insert(s);
    }
    pub fn heal(&self) {
        self.world().failing.clear();
    }
    /// Time passes: both clocks move.
    pub fn advance(&self, secs: u64) {
        let mut w = self.world();
        w.now_ns += secs * 1_000_000_000;
        w.boot_ns += secs * 1_000_000_000;
    }
    /// An NTP step: only the wall clock jumps.
    pub fn step_wall(&self, secs: i64) {
        let mut w = self.world();
        w.now_ns = w.now_ns.saturating_add_signed(secs * 1_000_000_000);
    }
}

fn io_fault(s: Step) -> std::io::Error {
    std::io::Error::other(format!("injected fault at {s:?}"))
}

fn kernel_fault(s: Step) -> KernelError {
    KernelError::Attach(format!("injected fault at {s:?}"))
}

pub struct FakeKernel(pub Shared);

#[tonic::async_trait]
impl Kernel for FakeKernel {
    fn load_jobs(&self) -> Vec<Job> {
        self.0.world().records.values().cloned().collect()
    }
    fn persist(&mut self, job: &Job) -> Result<(), KernelError> {
        if self.0.fails(Step::Persist) {
            return Err(kernel_fault(Step::Persist));
        }
        self.0.world().records.insert(job.slot, job.clone());
        self.0.done();
        Ok(())
    }
    fn forget(&mut self, slot: u32) -> Result<(), KernelError> {
        if self.0.fails(Step::Persist) {
            return Err(kernel_fault(Step::Persist));
        }
        self.0.world().records.remove(&slot);
        self.0.done();
        Ok(())
    }
    fn prepare_job(&mut self, _job: &Job) -> Result<(), KernelError> {
        if self.0.fails(Step::Prepare) {
            return Err(kernel_fault(Step::Prepare));
        }
        self.0.done();
        Ok(())
    }
    async fn reconcile(&mut self, ifindex: u32, want: &HookWant) -> Result<Hooked, KernelError> {
        if self.0.gate(Step::Reconcile).await {
            return Err(kernel_fault(Step::Reconcile));
        }
        let hooked = {
            let mut w = self.0.world();
            let lost = if w.lost.remove(&ifindex) {
                vec!["ingress"]
            } else {
                vec![]
            };
            if want.is_empty() {
                w.hooks.remove(&ifindex);
                Hooked { mode: None, lost }
            } else {
                w.hooks.insert(ifindex, want.clone());
                Hooked {
                    mode: Some(AttachMode::Tc),
                    lost,
                }
            }
        };
        self.0.done();
        Ok(hooked)
    }
    fn hooked_ifindexes(&self) -> Vec<u32> {
        self.0.world().hooks.keys().copied().collect()
    }
    fn remove_unrecorded_links(&mut self) {}
    fn job_counters(&self, _job: &Job) -> Result<JobCounters, KernelError> {
        Ok(JobCounters::default())
    }
    fn flow_table(&self, _job: &Job) -> Result<Option<Box<dyn FlowSource>>, KernelError> {
        Ok(None)
    }
    fn keep_flows(
        &mut self,
        _job: &Job,
        _top: &[RawFlow],
        _size: u32,
        _held: u64,
    ) -> Result<(), KernelError> {
        Ok(())
    }
    fn counters(&self) -> Result<KernelCounters, KernelError> {
        Ok(KernelCounters::default())
    }
}

pub struct FakeInterfaces(pub Shared);

#[tonic::async_trait]
impl Interfaces for FakeInterfaces {
    async fn ifindex(&self, name: &str) -> std::io::Result<Option<u32>> {
        if self.0.fails(Step::Lookup) {
            return Err(io_fault(Step::Lookup));
        }
        Ok(match name {
            "Ethernet0" => Some(PORT_IFINDEX),
            "erspan0" if self.0.world().netdev => Some(NETDEV_IFINDEX),
            _ => None,
        })
    }
}

pub struct FakeErspan(pub Shared);

#[tonic::async_trait]
impl ErspanBackend for FakeErspan {
    async fn ensure(
        &self,
        _local: Ipv4Addr,
        _remote: Ipv4Addr,
        _port: &str,
    ) -> Result<Provisioned, NetdevError> {
        if self.0.gate(Step::Ensure).await {
            return Err(NetdevError::Failed("injected".into()));
        }
        let created = !std::mem::replace(&mut self.0.world().netdev, true);
        self.0.done();
        Ok(Provisioned {
            ifindex: NETDEV_IFINDEX,
            created,
            ours: true,
        })
    }
    async fn release(&self) -> Result<bool, NetdevError> {
        if self.0.gate(Step::Release).await {
            return Err(NetdevError::Failed("injected".into()));
        }
        let had = std::mem::take(&mut self.0.world().netdev);
        self.0.done();
        Ok(had)
    }
}

pub struct FakeSonic(pub Shared);

fn redis_down() -> SessionError {
    SessionError::Unavailable("injected: redis down".into())
}

#[tonic::async_trait]
impl SonicBackend for FakeSonic {
    async fn create(&self, job: Uuid, _spec: &SessionSpec) -> Result<(), SessionError> {
        if self.0.gate(Step::Create).await {
            return Err(redis_down());
        }
        self.0.world().sessions.insert(job);
        self.0.done();
        Ok(())
    }
    async fn acl_context(&self) -> Result<AclContext, SessionError> {
        if self.0.gate(Step::WriteAcl).await {
            return Err(redis_down());
        }
        Ok(AclContext {
            platform: Platform {
                mirror_v6: true,
                egress_mirror: true,
            },
            tables: Vec::new(),
        })
    }
    async fn write_acl(&self, job: Uuid, plan: &AclPlan) -> Result<(), SessionError> {
        if self.0.gate(Step::WriteAcl).await {
            return Err(redis_down());
        }
        self.0.world().acls.insert(job, plan.rules.len());
        self.0.done();
        Ok(())
    }
    async fn wait_active(&self, _job: Uuid) -> Result<AclStatus, SessionError> {
        if self.0.gate(Step::WaitActive).await {
            return Err(SessionError::Inactive("injected: inactive".into()));
        }
        self.0.done();
        Ok(AclStatus::Active)
    }
    async fn sessions(&self) -> Result<Vec<Uuid>, SessionError> {
        if self.0.fails(Step::Delete) {
            return Err(redis_down());
        }
        let w = self.0.world();
        let mut ids: BTreeSet<Uuid> = w.sessions.clone();
        ids.extend(w.acls.keys());
        Ok(ids.into_iter().collect())
    }
    async fn delete(&self, job: Uuid) -> Result<bool, SessionError> {
        if self.0.gate(Step::Delete).await {
            return Err(redis_down());
        }
        // Rules and tables, then the session: a crash between leaves the
        // session alone, as the real backend's order does.
        let acl = self.0.world().acls.remove(&job).is_some();
        if acl {
            self.0.done();
            if self.0.gate(Step::Delete).await {
                return Err(redis_down());
            }
        }
        let had = self.0.world().sessions.remove(&job);
        self.0.done();
        Ok(had || acl)
    }
}

/// Capture files, by job: opened, closed.
pub struct FakeCaptures(pub Shared);

impl CaptureStore for FakeCaptures {
    fn open(&self, job: &Job, _ended: bool) -> std::io::Result<()> {
        self.0.world().captures.insert(job.id, false);
        Ok(())
    }
    fn close(&self, job: Uuid, _kernel_packets: u64) {
        if let Some(c) = self.0.world().captures.get_mut(&job) {
            *c = true;
        }
    }
    fn remove(&self, job: Uuid) {
        self.0.world().captures.remove(&job);
    }
    fn stats(&self, job: Uuid) -> Option<CaptureFileStats> {
        self.0
            .world()
            .captures
            .contains_key(&job)
            .then(CaptureFileStats::default)
    }
    fn max_bytes(&self) -> u64 {
        64 << 20
    }
    fn follow(&self, _job: Uuid, _from_now: bool) -> Option<super::ports::CaptureChunks> {
        None
    }
}

pub struct FakeClock(pub Shared, pub AtomicU64);

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        // Strictly increasing within one reading of the world's time.
        self.0.world().now_ns + self.1.fetch_add(1, Ordering::Relaxed)
    }
    fn boot_ns(&self) -> u64 {
        self.0.world().boot_ns
    }
}

pub fn settings() -> Settings {
    Settings {
        max_jobs: 4,
        mirror_mode: MirrorMode::Direct,
        policy: crate::domain::policy::Policy::from_vars(
            |k| (k == "TELEGEN_POLICY_MIRROR_MODES").then(|| "*".into()),
            MirrorMode::Direct,
        )
        .unwrap(),
        erspan_name: "erspan0".into(),
        erspan_endpoints: Ok((Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))),
        erspan_dev: None,
        session_dscp: 8,
        session_ttl: 255,
        flow_table_size: 1024,
        flow_entries_max: 2048,
        acl_max_rules: 64,
        otlp_endpoint: "http://collector:4317".into(),
    }
}

/// A core over fakes sharing `world` (the datapath on): a probe started
/// now (fakes of any earlier one are dead).
pub async fn manager(world: &Shared) -> Arc<JobManager> {
    let world = &world.life();
    let ports = Ports {
        kernel: Some(Box::new(FakeKernel(world.clone()))),
        interfaces: Box::new(FakeInterfaces(world.clone())),
        erspan: Box::new(FakeErspan(world.clone())),
        sonic: Box::new(FakeSonic(world.clone())),
        clock: Box::new(FakeClock(world.clone(), AtomicU64::new(0))),
        capture: Arc::new(FakeCaptures(world.clone())),
    };
    JobManager::new(settings(), DatapathStatus::On, ports).await
}

/// A plain job, for tests that need one.
pub fn job_template() -> Job {
    Job {
        slot: 0,
        id: Uuid::new_v4(),
        port: "Ethernet0".into(),
        iface: "Ethernet0".into(),
        ifindex: PORT_IFINDEX,
        state: JobState::Running,
        direction: Direction::Ingress,
        mirror_mode: MirrorMode::Direct,
        attach_mode: Some(AttachMode::Tc),
        otlp_export: true,
        flows_detail: false,
        duration_sec: 0,
        sample_rate: 1,
        seq: 1,
        started_ns: 0,
        expires_ns: None,
        expires_boot_ns: None,
        stopped_ns: None,
        error: None,
        fallback: None,
        mirror_scope: None,
        filter: JobFilter::default(),
        capture: None,
        flow_table_size: 0,
        ending: None,
        pending: None,
    }
}
