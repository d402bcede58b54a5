//! Fakes of every port, sharing one world that tests look at, and a set of
//! steps that fail while listed: a fault can be injected at any step of a
//! job's life without a kernel, a redis or a netdev.

mod mirror;
mod world;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use uuid::Uuid;

use super::ports::{
    Clock, FlowSource, HookWant, Hooked, Interfaces, JobCounters, Kernel, KernelCounters,
    KernelError, Ports, RawFlow,
};
use super::{DatapathStatus, JobManager, Settings};
use crate::domain::{AttachMode, Direction, Job, JobFilter, JobState, MirrorMode};
use mirror::{FakeCaptures, FakeErspan, FakeSonic};
pub use world::{Shared, Step, ALL_STEPS, NETDEV_IFINDEX, PORT_IFINDEX};

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
