//! The job core: start, stop, get, list, results and the counter snapshot,
//! over the ports of ports.rs (kernel, interfaces, mirror backends, clock),
//! so it runs the same against the real kernel and against the fakes of its
//! unit tests.
//!
//! All state changes happen under one async mutex, so the cap check and the
//! slot reservation are atomic. Each change is written to the pinned
//! records before the call returns, so a restarted probe sees it
//! (adopt.rs). lifecycle.rs moves jobs through their states with one undo
//! path; mirror.rs resolves where a job counts.

mod adopt;
#[cfg(test)]
pub(crate) mod fakes;
mod lifecycle;
mod mirror;
pub mod ports;
mod report;
mod slots;
mod start;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::domain::limits::{MAX_JOBS_PER_HOOK, MAX_JOB_SLOTS};
use crate::domain::validate::{self, InvalidInput};
use crate::domain::{Job, JobState, MirrorMode, Results, Snapshot};
use ports::{
    CaptureStore, Clock, ErspanBackend, HookWant, Interfaces, Kernel, KernelError, Ports,
    SonicBackend,
};
use slots::Slots;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The operator's policy refuses the request: PERMISSION_DENIED.
    #[error(transparent)]
    Denied(#[from] crate::domain::policy::Denied),
    #[error("job {0} not found")]
    NotFound(String),
    #[error("At most {0} concurrent jobs are allowed. Try again later.")]
    Capacity(u32),
    #[error("a flow table of {asked} entries would put the running jobs' flow tables at {total}, over TELEGEN_FLOW_ENTRIES_MAX ({max}); stop a flows job or try again later")]
    FlowCapacity { asked: u32, total: u64, max: u64 },
    #[error("a capture of up to {asked} bytes would put the capture spool at {total} bytes, over TELEGEN_CAPTURE_DIR_MAX_BYTES ({max}); lower capture.max_bytes, or wait for older captures to be recycled")]
    SpoolCapacity { asked: u64, total: u64, max: u64 },
    /// Something on the host is in the way (a foreign netdev, a session we
    /// did not write, the datapath off): the operator must act.
    #[error("{0}")]
    Precondition(String),
    /// A dependency (SONiC's redis) did not answer: UNAVAILABLE, REST 503.
    #[error("{0}")]
    Unavailable(String),
    #[error("interface lookup: {0}")]
    Lookup(#[source] std::io::Error),
    #[error("no free job slot")]
    NoSlot,
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// What the core needs of the probe's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_jobs: u32,
    /// TELEGEN_MIRROR_MODE: the mode of requests that name none.
    pub mirror_mode: MirrorMode,
    /// What requests may ask for (TELEGEN_POLICY_*).
    pub policy: crate::domain::policy::Policy,
    /// The erspan netdev's name.
    pub erspan_name: String,
    /// Tunnel endpoints (local, remote), or the names of the unset variables.
    pub erspan_endpoints: Result<(Ipv4Addr, Ipv4Addr), Vec<&'static str>>,
    /// TELEGEN_ERSPAN_DEV: where a sonic job counts without the netdev.
    pub erspan_dev: Option<String>,
    /// DSCP and TTL of SONiC mirror sessions.
    pub session_dscp: u8,
    pub session_ttl: u8,
    pub flow_table_size: u32,
    /// The most flow table entries the jobs not yet ended hold together.
    pub flow_entries_max: u64,
    /// The most ACL rules a sonic job's filter may expand to (0: no ACL
    /// mirroring).
    pub acl_max_rules: usize,
    pub otlp_endpoint: String,
}

/// Whether the BPF datapath loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatapathStatus {
    On,
    Off(String),
}

pub(crate) struct Inner {
    kernel: Option<Box<dyn Kernel>>,
    slots: Slots,
}

pub struct JobManager {
    settings: Settings,
    /// Retry passes since the last sweep of orphaned sessions (swept at
    /// start-up, then every SWEEP_EVERY passes: a session write that a
    /// wedged redis ran late, after its start was given up, goes too).
    since_sweep: std::sync::atomic::AtomicU32,
    datapath: DatapathStatus,
    interfaces: Box<dyn Interfaces>,
    erspan: Box<dyn ErspanBackend>,
    sonic: Box<dyn SonicBackend>,
    clock: Box<dyn Clock>,
    /// Held from reading the switch's ACL tables to writing a job's: two
    /// filtered starts at once must not both find a stage free (orchagent
    /// takes one mirror table per stage). Not the job lock: redis is slow.
    acl_writes: Mutex<()>,
    capture: std::sync::Arc<dyn CaptureStore>,
    inner: Mutex<Inner>,
}

impl JobManager {
    /// The core over `ports`; adopts what the kernel's records hold.
    pub async fn new(settings: Settings, datapath: DatapathStatus, ports: Ports) -> Arc<Self> {
        let mgr = Arc::new(JobManager {
            since_sweep: std::sync::atomic::AtomicU32::new(u32::MAX),
            settings,
            datapath,
            interfaces: ports.interfaces,
            erspan: ports.erspan,
            sonic: ports.sonic,
            clock: ports.clock,
            acl_writes: Mutex::new(()),
            capture: ports.capture,
            inner: Mutex::new(Inner {
                kernel: ports.kernel,
                slots: Slots::new(MAX_JOB_SLOTS as usize),
            }),
        });
        mgr.adopt().await;
        mgr.open_captures().await;
        mgr
    }

    /// After a restart: the capture files of the jobs recorded, continued
    /// for those still counting, readable for the others.
    async fn open_captures(&self) {
        let inner = self.inner.lock().await;
        for j in inner.slots.iter().filter(|j| j.capture.is_some()) {
            let ended = !j.wants_attachment();
            if let Err(e) = self.capture.open(j, ended) {
                tracing::warn!(job_id = %j.id, error = %e, "opening the capture file of a recorded job");
            }
            if ended {
                self.capture.close(j.id, 0);
            }
        }
    }

    /// A capture job's pcapng, live (StreamCapture).
    pub async fn capture_stream(
        &self,
        id: &str,
        from_now: bool,
    ) -> Result<ports::CaptureChunks, JobError> {
        let job = self.get(id).await?;
        if job.capture.is_none() {
            return Err(JobError::Precondition(format!(
                "job {id} does not capture packets (result_detail {})",
                if job.flows_detail { "flows" } else { "summary" }
            )));
        }
        self.capture.follow(job.id, from_now).ok_or_else(|| {
            JobError::Precondition(format!(
                "job {id} has no capture file (it never counted, or its file is gone)"
            ))
        })
    }

    pub fn datapath(&self) -> &DatapathStatus {
        &self.datapath
    }

    pub fn datapath_enabled(&self) -> bool {
        self.datapath == DatapathStatus::On
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    pub async fn get(&self, id: &str) -> Result<Job, JobError> {
        let uuid = validate::job_id(id)?;
        let inner = self.inner.lock().await;
        inner
            .slots
            .find(uuid)
            .cloned()
            .ok_or_else(|| JobError::NotFound(id.into()))
    }

    pub async fn list(&self) -> Vec<Job> {
        let inner = self.inner.lock().await;
        inner.slots.by_start().into_iter().cloned().collect()
    }

    pub async fn stop(&self, id: &str) -> Result<Job, JobError> {
        let uuid = validate::job_id(id)?;
        let not_found = || JobError::NotFound(id.into());
        let slot = self
            .inner
            .lock()
            .await
            .slots
            .find(uuid)
            .map(|j| j.slot)
            .ok_or_else(not_found)?;
        self.finish(slot, uuid, JobState::Stopped)
            .await
            .ok_or_else(not_found)
    }

    /// A job's results. The job, its counters and its flow table are
    /// taken under one lock (a start in between cannot recycle the slot
    /// under the id); the table is walked after it.
    pub async fn results(&self, id: &str, top: u32) -> Result<Results, JobError> {
        let top = validate::top(top)?;
        let uuid = validate::job_id(id)?;
        let (job, mut counters, table) = {
            let inner = self.inner.lock().await;
            let job = inner
                .slots
                .find(uuid)
                .cloned()
                .ok_or_else(|| JobError::NotFound(id.into()))?;
            let kernel = inner.kernel.as_deref();
            let counters = report::job_counters(kernel, &job)?;
            let table = report::flow_table(kernel, &job)?;
            (job, counters, table)
        };
        if let Some(table) = table {
            let (top, held, size) = report::read_flows(table, top).await;
            counters.flows.entries = top;
            counters.flows.table_entries = held;
            counters.flows.table_size = Some(size);
        }
        let endpoint = &self.settings.otlp_endpoint;
        let file = self.capture.stats(job.id);
        Ok(report::results(&job, counters, file, endpoint, self.now()))
    }

    /// An exporter's failed exports (ReportExports); 0 without a datapath.
    pub async fn report_exports(&self, instance: [u8; 16], failed: u64) -> Result<u64, JobError> {
        let mut inner = self.inner.lock().await;
        match inner.kernel.as_deref_mut() {
            Some(k) => Ok(k.report_exports(instance, failed)?),
            None => Ok(0),
        }
    }

    pub async fn snapshot(&self) -> Result<Snapshot, JobError> {
        let inner = self.inner.lock().await;
        Ok(report::snapshot(
            inner.kernel.as_deref(),
            &inner.slots.by_start(),
            self.now(),
        )?)
    }
}

impl Inner {
    /// The job slots that want each hook of `ifindex` now.
    fn want(&self, ifindex: u32) -> HookWant {
        let mut want = HookWant::default();
        for job in self
            .slots
            .iter()
            .filter(|j| j.ifindex == ifindex && j.wants_attachment())
        {
            for (dir, slots) in want.slots.iter_mut().enumerate() {
                if job.hook_direction().has(dir) && slots.len() < MAX_JOBS_PER_HOOK {
                    slots.push(job.slot as u8);
                    if job.is_deep() {
                        want.deep |= 1 << dir;
                    }
                }
            }
        }
        want
    }

    /// Attach, detach and configure `ifindex` as its jobs want. A hook found
    /// lost (an operator's `tc qdisc del`) is attached again, and the jobs
    /// counting there say that they missed packets.
    async fn reconcile(
        &mut self,
        ifindex: u32,
    ) -> Result<Option<crate::domain::AttachMode>, KernelError> {
        let want = self.want(ifindex);
        let Some(k) = self.kernel.as_mut() else {
            return Ok(None);
        };
        let hooked = k.reconcile(ifindex, &want).await?;
        if !hooked.lost.is_empty() {
            let hooks = hooked.lost.join(" and ");
            for (slot, id) in self
                .slots
                .select(|j| j.ifindex == ifindex && j.wants_attachment())
            {
                if let Some(mut j) = self.slots.get(slot, id).cloned() {
                    tracing::warn!(job_id = %id, interface = %j.iface, hooks = %hooks, "the classifier was removed outside telegen-sonic; attached again");
                    j.error = Some(format!(
                        "the classifier on {} {hooks} was removed outside telegen-sonic (tc) and attached again; packets in between were not counted",
                        j.iface
                    ));
                    let _ = self.persist(&j);
                }
            }
        }
        Ok(hooked.mode)
    }

    /// Free the record of a start that went no further.
    fn forget(&mut self, slot: u32, id: uuid::Uuid) -> Result<(), KernelError> {
        if self.slots.get(slot, id).is_none() {
            return Ok(());
        }
        if let Some(k) = self.kernel.as_mut() {
            k.forget(slot)?;
        }
        self.slots.remove(slot, id);
        Ok(())
    }

    /// Record a new job: its pinned record, then the table.
    fn record(&mut self, job: Job) -> Result<(), KernelError> {
        if let Some(k) = self.kernel.as_mut() {
            k.persist(&job)?;
        }
        self.slots.put(job);
        Ok(())
    }

    /// Update the table and write the job's record (no-op without
    /// datapath); a failed write is logged and returned.
    fn persist(&mut self, job: &Job) -> Result<(), KernelError> {
        if let Some(j) = self.slots.get_mut(job.slot, job.id) {
            *j = job.clone();
        }
        match self.kernel.as_mut().map(|k| k.persist(job)) {
            Some(Err(e)) => {
                tracing::error!(job_id = %job.id, error = %e, "persisting job state");
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

/// Expire jobs on time, and retry pending ends, for as long as the probe
/// runs.
pub async fn expiry_loop(mgr: Arc<JobManager>) {
    const RETRY_EVERY: u32 = 10; // ticks: 2 s
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u32.. {
        tick.tick().await;
        mgr.expire_due().await;
        if n % RETRY_EVERY == 0 {
            mgr.retry_pending().await;
        }
    }
}
