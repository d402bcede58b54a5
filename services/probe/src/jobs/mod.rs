//! Job lifecycle: validation, the concurrency cap, slots, activation, stop
//! and expiry, and re-adoption of jobs and attachments after a restart.
//!
//! All state changes happen under one async mutex, so the cap check and the
//! slot reservation are atomic. Each change is written to the pinned `jobs`
//! and `ifaces` maps before the call returns, so a restarted probe sees it.

pub mod model;
mod reconcile;
pub mod report;

use std::sync::Arc;

use telegen_proto::v1 as pb;
use tokio::sync::Mutex;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::config::Config;
use crate::datapath::{Datapath, KernelInfo};
use crate::maps::layout::{IfaceRec, MAX_IF_SLOTS, MAX_JOBS_PER_HOOK, MAX_JOB_SLOTS};
use crate::mirror::erspan::{Erspan, Tos};
use crate::mirror::sonic::{self, SessionSpec, Sonic, SonicError};
use crate::netlink::Netlink;
use crate::timefmt::now_ns;
use crate::validate::{self, InvalidInput};
use model::{Job, JobState, MirrorMode};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("job {0} not found")]
    NotFound(String),
    #[error("At most {0} concurrent jobs are allowed. Try again later.")]
    Capacity(u32),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Internal(String),
    /// A dependency (SONiC's redis) did not answer: UNAVAILABLE, REST 503.
    #[error("{0}")]
    Unavailable(String),
}

pub struct Inner {
    pub dp: Option<Datapath>,
    pub jobs: Vec<Option<Job>>,
    pub ifaces: Vec<IfaceRec>,
    seq: u64,
}

pub struct JobManager {
    pub cfg: Config,
    pub kernel: KernelInfo,
    /// Why the datapath is off ("" when it is on).
    pub dp_reason: String,
    netlink: Netlink,
    inner: Mutex<Inner>,
}

/// The mode a job runs in and where it counts.
struct Resolved {
    mode: MirrorMode,
    iface: String,
    ifindex: u32,
    fallback: String,
    /// The erspan netdev was created for this start.
    created_netdev: bool,
    /// A SONiC mirror session was written for this start.
    session: bool,
}

/// A validated StartJob request.
struct StartSpec {
    port: String,
    direction: model::Direction,
    duration_sec: u32,
    mirror: MirrorMode,
    otlp_export: bool,
    filter: crate::filters::JobFilter,
    flows: bool,
    sample_rate: u32,
}

fn validate_start(
    req: &pb::StartJobRequest,
    default_mode: MirrorMode,
) -> Result<StartSpec, InvalidInput> {
    let port = validate::ifname(&req.port)?.to_string();
    let direction = validate::direction(&req.direction)?;
    let duration_sec = validate::duration(req.duration_sec)?;
    let mirror = validate::mirror_mode(&req.mirror_mode, default_mode)?;
    let sample_rate = validate::sample_rate(req.sample_rate)?;
    let flows = match req.result_detail.as_str() {
        "" | "summary" => false,
        "flows" => true,
        "pcaplike" => return Err(InvalidInput::NotSupported(req.result_detail.clone())),
        other => return Err(InvalidInput::ResultDetail(other.chars().take(32).collect())),
    };
    let filter = match &req.filters {
        Some(f) => crate::filters::parse(f).map_err(|e| InvalidInput::Filter(e.to_string()))?,
        None => Default::default(),
    };
    Ok(StartSpec {
        port,
        direction,
        duration_sec,
        mirror,
        otlp_export: req.otlp_export.unwrap_or(true),
        filter,
        flows,
        sample_rate,
    })
}

impl JobManager {
    /// Load the datapath (or record why it is off) and adopt what an earlier
    /// probe left: jobs, attachments, counters.
    pub async fn new(cfg: Config) -> anyhow::Result<Arc<Self>> {
        let kernel = KernelInfo::probe();
        let (dp, dp_reason) = match Datapath::open(&cfg, &kernel) {
            Ok(dp) => {
                info!(pin_dir = %dp.pin_dir.display(), attach_mode = dp.mode.as_str(), kernel = %kernel.release, "datapath loaded");
                (Some(dp), String::new())
            }
            Err(e) => {
                let e = crate::datapath::brief(&e.to_string());
                warn!(error = %e, "datapath off: jobs run in placeholder mode only");
                (None, e)
            }
        };
        let netlink = Netlink::new()?;
        let mgr = Arc::new(JobManager {
            cfg,
            kernel,
            dp_reason,
            netlink,
            inner: Mutex::new(Inner {
                dp,
                jobs: vec![None; MAX_JOB_SLOTS as usize],
                ifaces: vec![IfaceRec::default(); MAX_IF_SLOTS as usize],
                seq: 0,
            }),
        });
        mgr.adopt().await;
        Ok(mgr)
    }

    pub fn datapath_enabled(&self) -> bool {
        self.dp_reason.is_empty()
    }

    fn sonic(&self) -> Sonic<'_> {
        Sonic {
            settings: &self.cfg.sonic,
        }
    }

    /// Delete a sonic job's mirror session (best effort: logged).
    async fn delete_session(&self, id: Uuid) -> Result<(), String> {
        match self.sonic().delete(id).await {
            Ok(true) => {
                info!(job_id = %id, session = %sonic::session_name(id), "deleted the SONiC mirror session");
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => {
                warn!(job_id = %id, error = %e, "deleting the SONiC mirror session");
                Err(format!("deleting the SONiC mirror session: {e}"))
            }
        }
    }

    /// The CONFIG_DB session of a sonic job.
    fn session_spec(
        &self,
        local: std::net::Ipv4Addr,
        remote: std::net::Ipv4Addr,
        port: &str,
        direction: model::Direction,
    ) -> SessionSpec {
        let e = &self.cfg.erspan;
        SessionSpec {
            src_ip: local,
            dst_ip: remote,
            dscp: match e.tos {
                Tos::Value(t) => t >> 2,
                Tos::Inherit => sonic::DEFAULT_DSCP,
            },
            ttl: if e.ttl == 0 { 255 } else { e.ttl },
            queue: 0,
            src_port: port.to_string(),
            direction: match direction {
                model::Direction::Ingress => "RX",
                model::Direction::Egress => "TX",
                model::Direction::Both => "BOTH",
            },
        }
    }

    fn erspan(&self) -> Erspan<'_> {
        Erspan {
            handle: self.netlink.handle(),
            settings: &self.cfg.erspan,
        }
    }

    /// The mode a job really runs in, the interface it counts on, and why
    /// when the mode differs from the request (seed rule: erspan not
    /// configured or failing falls back to placeholder, which does nothing
    /// privileged). Called under the job mutex, so provisioning the erspan
    /// netdev is serialised with the stops that may remove it.
    async fn resolve_mirror(
        &self,
        requested: MirrorMode,
        port: &str,
        port_ifindex: u32,
        id: Uuid,
        direction: model::Direction,
    ) -> Result<Resolved, JobError> {
        let name = &self.cfg.erspan.name;
        let placeholder = |why: String| {
            Ok(Resolved {
                mode: MirrorMode::Placeholder,
                iface: name.clone(),
                ifindex: port_ifindex,
                fallback: if why.is_empty() {
                    why
                } else {
                    format!("{why}; fell back to placeholder")
                },
                created_netdev: false,
                session: false,
            })
        };
        match requested {
            MirrorMode::Placeholder => placeholder(String::new()),
            MirrorMode::Direct if self.datapath_enabled() => Ok(Resolved {
                mode: MirrorMode::Direct,
                iface: port.to_string(),
                ifindex: port_ifindex,
                fallback: String::new(),
                created_netdev: false,
                session: false,
            }),
            MirrorMode::Direct => Err(JobError::Precondition(format!(
                "mirror mode direct needs the BPF datapath, which is off: {}",
                self.dp_reason
            ))),
            MirrorMode::Erspan | MirrorMode::Sonic => {
                let mode = requested.as_str();
                let (local, remote) = match self.cfg.erspan.endpoints() {
                    Ok(e) => e,
                    Err(missing) => {
                        return placeholder(format!(
                            "{mode} mode is not configured ({} unset; TELEGEN_ERSPAN_LOCAL and TELEGEN_ERSPAN_REMOTE are required)",
                            missing.join(" and ")
                        ))
                    }
                };
                if !self.datapath_enabled() {
                    return placeholder(format!(
                        "{mode} mode needs the BPF datapath, which is off: {}",
                        self.dp_reason
                    ));
                }
                if requested == MirrorMode::Sonic {
                    return self
                        .resolve_sonic(local, remote, port, port_ifindex, id, direction)
                        .await;
                }
                match self.erspan().ensure(local, remote, port).await {
                    Ok(p) => {
                        info!(interface = %name, ifindex = p.ifindex, created = p.created, ours = p.ours, "erspan netdev ready");
                        Ok(Resolved {
                            mode: MirrorMode::Erspan,
                            iface: name.clone(),
                            ifindex: p.ifindex,
                            fallback: String::new(),
                            created_netdev: p.created,
                            session: false,
                        })
                    }
                    Err(e) if e.is_conflict() => Err(JobError::Precondition(e.to_string())),
                    Err(e) => placeholder(format!("erspan provisioning failed: {e}")),
                }
            }
        }
    }

    /// Mode `sonic`: the SONiC mirror session first (redis down: UNAVAILABLE,
    /// nothing created), then the erspan netdev as in `erspan`. When the
    /// netdev cannot be created (a kernel without ip_gre), the job counts on
    /// the device the tunnel arrives on instead (TELEGEN_ERSPAN_DEV, else the
    /// port): the classifier decapsulates ERSPAN itself, so the session is
    /// still useful; the job's fallback_reason says so.
    async fn resolve_sonic(
        &self,
        local: std::net::Ipv4Addr,
        remote: std::net::Ipv4Addr,
        port: &str,
        port_ifindex: u32,
        id: Uuid,
        direction: model::Direction,
    ) -> Result<Resolved, JobError> {
        let name = &self.cfg.erspan.name;
        let spec = self.session_spec(local, remote, port, direction);
        match self.sonic().create(id, &spec).await {
            Ok(()) => {
                info!(job_id = %id, session = %sonic::session_name(id), "wrote the SONiC mirror session")
            }
            Err(e @ SonicError::Unavailable { .. }) => {
                return Err(JobError::Unavailable(e.to_string()))
            }
            Err(e) => return Err(JobError::Precondition(e.to_string())),
        }
        match self.erspan().ensure(local, remote, port).await {
            Ok(p) => {
                info!(interface = %name, ifindex = p.ifindex, created = p.created, ours = p.ours, "erspan netdev ready");
                Ok(Resolved {
                    mode: MirrorMode::Sonic,
                    iface: name.clone(),
                    ifindex: p.ifindex,
                    fallback: String::new(),
                    created_netdev: p.created,
                    session: true,
                })
            }
            Err(e) if e.is_conflict() => {
                let _ = self.delete_session(id).await;
                Err(JobError::Precondition(e.to_string()))
            }
            Err(e) => {
                let dev = self.cfg.erspan.dev.as_deref().unwrap_or(port);
                let ifindex = if dev == port {
                    Some(port_ifindex)
                } else {
                    self.netlink.ifindex(dev).await.ok().flatten()
                };
                let Some(ifindex) = ifindex else {
                    let _ = self.delete_session(id).await;
                    return Err(JobError::Precondition(format!(
                        "erspan provisioning failed ({e}) and TELEGEN_ERSPAN_DEV {dev} does not exist"
                    )));
                };
                Ok(Resolved {
                    mode: MirrorMode::Sonic,
                    iface: dev.to_string(),
                    ifindex,
                    fallback: format!(
                        "erspan netdev {name} could not be created ({e}); counting on {dev} itself, where the classifier decapsulates the mirrored ERSPAN"
                    ),
                    created_netdev: false,
                    session: true,
                })
            }
        }
    }

    /// Delete the erspan netdev when no active erspan or sonic job counts on
    /// it and this probe created it (it carries our owner mark); a reused
    /// one stays.
    async fn release_erspan_if_unused(&self, inner: &Inner) {
        let name = &self.cfg.erspan.name;
        let in_use = inner.jobs.iter().flatten().any(|j| {
            matches!(j.mirror_mode, MirrorMode::Erspan | MirrorMode::Sonic)
                && j.iface == *name
                && j.wants_attachment()
        });
        if in_use {
            return;
        }
        match self.erspan().release().await {
            Ok(true) => {
                info!(interface = %self.cfg.erspan.name, "removed the erspan netdev we created")
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "removing the erspan netdev we created"),
        }
    }

    pub async fn start(self: &Arc<Self>, req: pb::StartJobRequest) -> Result<Job, JobError> {
        let spec = validate_start(&req, self.cfg.mirror_mode)?;
        let port_ifindex = self
            .netlink
            .ifindex(&spec.port)
            .await
            .map_err(|e| JobError::Internal(format!("interface lookup: {e}")))?
            .ok_or_else(|| InvalidInput::PortUnknown(spec.port.clone()))?;

        let id = Uuid::new_v4();
        let mut inner = self.inner.lock().await;
        let active = inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.state.is_active())
            .count() as u32;
        if active >= self.cfg.max_jobs {
            return Err(JobError::Capacity(self.cfg.max_jobs));
        }
        let Resolved {
            mode: mirror,
            iface,
            ifindex,
            fallback,
            created_netdev,
            session,
        } = self
            .resolve_mirror(spec.mirror, &spec.port, port_ifindex, id, spec.direction)
            .await?;
        if !fallback.is_empty() {
            warn!(port = %spec.port, requested = spec.mirror.as_str(), reason = %fallback, "mirror fallback");
        }
        if mirror.attaches() {
            let hook = model::hook_direction(mirror, spec.direction);
            let same_hook = inner
                .jobs
                .iter()
                .flatten()
                .filter(|j| {
                    j.wants_attachment()
                        && j.ifindex == ifindex
                        && j.hook_direction().bits() & hook.bits() != 0
                })
                .count();
            if same_hook >= MAX_JOBS_PER_HOOK {
                if created_netdev {
                    self.release_erspan_if_unused(&inner).await;
                }
                if session {
                    let _ = self.delete_session(id).await;
                }
                return Err(JobError::Capacity(MAX_JOBS_PER_HOOK as u32));
            }
        }
        let Some(slot) = inner.free_slot() else {
            if created_netdev {
                self.release_erspan_if_unused(&inner).await;
            }
            if session {
                let _ = self.delete_session(id).await;
            }
            return Err(JobError::Internal("no free job slot".into()));
        };
        inner.seq += 1;
        let now = now_ns();
        let job = Job {
            slot,
            id,
            port: spec.port,
            iface,
            ifindex,
            state: JobState::Starting,
            direction: spec.direction,
            mirror_mode: mirror,
            attach_mode: None,
            otlp_export: spec.otlp_export,
            flows_detail: spec.flows,
            duration_sec: spec.duration_sec,
            sample_rate: spec.sample_rate,
            seq: inner.seq,
            started_ns: now,
            expires_ns: (spec.duration_sec > 0)
                .then(|| now + spec.duration_sec as u64 * 1_000_000_000),
            stopped_ns: None,
            error: String::new(),
            fallback,
            flow_table_size: if spec.flows && mirror.attaches() {
                self.cfg.flow_table_size
            } else {
                0
            },
            filter: spec.filter,
        };
        inner.put(job.clone());
        drop(inner);
        info!(job_id = %job.id, port = %job.port, direction = job.direction.as_str(), mirror_mode = job.mirror_mode.as_str(), slot, "job starting");
        let mgr = Arc::clone(self);
        tokio::spawn(async move { mgr.activate(slot, job.id).await });
        Ok(job)
    }

    /// starting -> running (or failed): a sonic job first waits (without
    /// the job lock) for STATE_DB to report its session active; then attach
    /// where the job needs it.
    async fn activate(&self, slot: u32, id: Uuid) {
        let sonic_job = {
            let inner = self.inner.lock().await;
            inner.job(slot, id).is_some_and(|j| {
                j.state == JobState::Starting && j.mirror_mode == MirrorMode::Sonic
            })
        };
        let session = if sonic_job {
            self.sonic().wait_active(id).await.map_err(|e| match e {
                SonicError::Inactive { .. } => format!("SONiC mirror session {e}"),
                e => format!("waiting for the SONiC mirror session: {e}"),
            })
        } else {
            Ok(())
        };
        let mut inner = self.inner.lock().await;
        let Some(job) = inner
            .job(slot, id)
            .filter(|j| j.state == JobState::Starting)
        else {
            return;
        };
        let (attaches, ifindex) = (job.mirror_mode.attaches(), job.ifindex);
        let (kfilter, table) = (job.kernel_filter(), job.flow_table_size);
        let mut result = session.map(|_| None);
        if attaches && result.is_ok() {
            if let Some(dp) = inner.dp.as_mut() {
                result = dp.maps.prepare_job(slot, &kfilter, table).map(|_| None);
            }
            if result.is_ok() {
                result = self.reconcile(&mut inner, ifindex).await;
            }
        }
        let job = inner.job_mut(slot, id).expect("checked above, lock held");
        match result {
            Ok(mode) => {
                job.state = JobState::Running;
                job.attach_mode = mode;
                info!(job_id = %id, interface = %job.iface, attach_mode = mode.map_or("none", |m| m.as_str()), "job running");
            }
            Err(e) => {
                error!(job_id = %id, error = %e, "job failed to start");
                job.state = JobState::Failed;
                job.stopped_ns = Some(now_ns());
                job.error = e;
            }
        }
        let failed = job.state == JobState::Failed;
        let job = job.clone();
        inner.persist(&job);
        if failed && attaches {
            // Take back whatever part of the attachment succeeded.
            if let Err(e) = self.reconcile(&mut inner, ifindex).await {
                warn!(error = %e, "cleanup after failed start");
            }
            if matches!(job.mirror_mode, MirrorMode::Erspan | MirrorMode::Sonic) {
                self.release_erspan_if_unused(&inner).await;
            }
        }
        if failed && job.mirror_mode == MirrorMode::Sonic {
            let _ = self.delete_session(id).await;
        }
    }

    pub async fn get(&self, id: &str) -> Result<Job, JobError> {
        let uuid = validate::job_id(id)?;
        let inner = self.inner.lock().await;
        inner
            .find(uuid)
            .cloned()
            .ok_or_else(|| JobError::NotFound(id.into()))
    }

    pub async fn list(&self) -> Vec<Job> {
        let inner = self.inner.lock().await;
        let mut jobs: Vec<Job> = inner.jobs.iter().flatten().cloned().collect();
        jobs.sort_by_key(|j| j.seq);
        jobs
    }

    pub async fn stop(&self, id: &str) -> Result<Job, JobError> {
        let uuid = validate::job_id(id)?;
        let mut inner = self.inner.lock().await;
        let slot = inner
            .find(uuid)
            .map(|j| j.slot)
            .ok_or_else(|| JobError::NotFound(id.into()))?;
        Ok(self.finish(&mut inner, slot, JobState::Stopped).await)
    }

    /// Move an active job to a final state, detaching what it alone needed.
    /// A job already final is returned unchanged (stop is idempotent).
    async fn finish(&self, inner: &mut Inner, slot: u32, state: JobState) -> Job {
        let job = inner.jobs[slot as usize]
            .as_mut()
            .expect("caller found the job");
        if job.state.is_final() {
            return job.clone();
        }
        job.state = JobState::Stopping;
        let (id, ifindex, mirror) = (job.id, job.ifindex, job.mirror_mode);
        let snapshot = job.clone();
        inner.persist(&snapshot);
        let mut err = String::new();
        if mirror.attaches() {
            if let Err(e) = self.reconcile(inner, ifindex).await {
                warn!(job_id = %id, error = %e, "detach while stopping");
                err = e;
            }
        }
        if matches!(mirror, MirrorMode::Erspan | MirrorMode::Sonic) {
            self.release_erspan_if_unused(inner).await;
        }
        if mirror == MirrorMode::Sonic {
            if let Err(e) = self.delete_session(id).await {
                if err.is_empty() {
                    err = e;
                }
            }
        }
        let job = inner.jobs[slot as usize]
            .as_mut()
            .expect("still there, lock held");
        job.state = state;
        job.stopped_ns = Some(now_ns());
        if !err.is_empty() {
            job.error = err;
        }
        let job = job.clone();
        inner.persist(&job);
        info!(job_id = %id, status = state.as_str(), "job ended");
        job
    }

    /// Stop running jobs whose duration has passed (status `expired`).
    pub async fn expire_due(&self) {
        let now = now_ns();
        let mut inner = self.inner.lock().await;
        let due: Vec<u32> = inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.state == JobState::Running && j.expires_ns.is_some_and(|e| e <= now))
            .map(|j| j.slot)
            .collect();
        for slot in due {
            self.finish(&mut inner, slot, JobState::Expired).await;
        }
    }

    pub async fn results(&self, id: &str, top: u32) -> Result<pb::Results, JobError> {
        let top = validate::top(top)?;
        let job = self.get(id).await?;
        let inner = self.inner.lock().await;
        report::results(&inner, &job, &self.cfg.otlp_endpoint, top)
            .map_err(|e| JobError::Internal(e.to_string()))
    }

    pub async fn snapshot(&self) -> Result<pb::CounterSnapshot, JobError> {
        let inner = self.inner.lock().await;
        report::snapshot(&inner).map_err(|e| JobError::Internal(e.to_string()))
    }

    /// After a restart: take over the jobs and attachments recorded in the
    /// pinned maps; finish what was interrupted; remove orphans (ours only).
    async fn adopt(self: &Arc<Self>) {
        let mut inner = self.inner.lock().await;
        let Some(dp) = inner.dp.as_ref() else { return };
        let mut jobs = vec![None; MAX_JOB_SLOTS as usize];
        let mut ifaces = vec![IfaceRec::default(); MAX_IF_SLOTS as usize];
        for slot in 0..MAX_JOB_SLOTS {
            if let Ok(rec) = dp.maps.job_rec(slot) {
                jobs[slot as usize] = Job::from_rec(slot, &rec).map(|mut j| {
                    if let Ok(k) = dp.maps.job_filter(slot) {
                        j.filter = crate::filters::JobFilter::from_kernel(&k);
                    }
                    j
                });
            }
        }
        for slot in 0..MAX_IF_SLOTS {
            if let Ok(rec) = dp.maps.iface_rec(slot) {
                ifaces[slot as usize] = rec;
            }
        }
        inner.seq = jobs.iter().flatten().map(|j| j.seq).max().unwrap_or(0);
        inner.jobs = jobs;
        inner.ifaces = ifaces;
        self.remove_unrecorded_links(&inner);
        let adopted = inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.state.is_active())
            .count();
        if adopted > 0 {
            info!(jobs = adopted, "adopted running jobs from the pinned state");
        }
        // Interrupted stops complete; starts resume below.
        let stopping: Vec<u32> = inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.state == JobState::Stopping)
            .map(|j| j.slot)
            .collect();
        for slot in stopping {
            inner.jobs[slot as usize].as_mut().unwrap().state = JobState::Running;
            self.finish(&mut inner, slot, JobState::Stopped).await;
        }
        let mut ifindexes: Vec<u32> = inner
            .ifaces
            .iter()
            .filter(|r| r.used != 0)
            .map(|r| r.ifindex)
            .collect();
        ifindexes.extend(
            inner
                .jobs
                .iter()
                .flatten()
                .filter(|j| j.wants_attachment())
                .map(|j| j.ifindex),
        );
        ifindexes.sort_unstable();
        ifindexes.dedup();
        for ifindex in ifindexes {
            if let Err(e) = self.reconcile(&mut inner, ifindex).await {
                warn!(ifindex, error = %e, "re-adopting attachments");
                self.fail_jobs_on(&mut inner, ifindex, &e).await;
            }
        }
        let starting: Vec<(u32, Uuid)> = inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.state == JobState::Starting)
            .map(|j| (j.slot, j.id))
            .collect();
        // A netdev of ours that no job wants any more (a stop interrupted
        // between detach and delete) goes now.
        self.release_erspan_if_unused(&inner).await;
        drop(inner);
        for (slot, id) in starting {
            self.activate(slot, id).await;
        }
        self.expire_due().await;
    }

    async fn fail_jobs_on(&self, inner: &mut Inner, ifindex: u32, why: &str) {
        let slots: Vec<u32> = inner
            .jobs
            .iter()
            .flatten()
            .filter(|j| j.ifindex == ifindex && j.wants_attachment())
            .map(|j| j.slot)
            .collect();
        for slot in slots {
            let job = inner.jobs[slot as usize].as_mut().unwrap();
            job.state = JobState::Failed;
            job.error = why.to_string();
            job.stopped_ns = Some(now_ns());
            let job = job.clone();
            inner.persist(&job);
            if job.mirror_mode == MirrorMode::Sonic {
                let _ = self.delete_session(job.id).await;
            }
        }
        let _ = self.reconcile(inner, ifindex).await;
    }
}

impl Inner {
    fn find(&self, id: Uuid) -> Option<&Job> {
        self.jobs.iter().flatten().find(|j| j.id == id)
    }

    fn job(&self, slot: u32, id: Uuid) -> Option<&Job> {
        self.jobs
            .get(slot as usize)?
            .as_ref()
            .filter(|j| j.id == id)
    }

    fn job_mut(&mut self, slot: u32, id: Uuid) -> Option<&mut Job> {
        self.jobs
            .get_mut(slot as usize)?
            .as_mut()
            .filter(|j| j.id == id)
    }

    /// A free slot, else the slot of the oldest finished job (its record
    /// and counters are recycled: the probe keeps the last 64 jobs).
    fn free_slot(&self) -> Option<u32> {
        if let Some(i) = self.jobs.iter().position(Option::is_none) {
            return Some(i as u32);
        }
        self.jobs
            .iter()
            .flatten()
            .filter(|j| j.state.is_final())
            .min_by_key(|j| j.seq)
            .map(|j| j.slot)
    }

    fn put(&mut self, job: Job) {
        let slot = job.slot as usize;
        self.persist(&job);
        self.jobs[slot] = Some(job);
    }

    /// Write a job's record to the pinned `jobs` map (no-op without datapath).
    fn persist(&mut self, job: &Job) {
        if let Some(dp) = self.dp.as_mut() {
            if let Err(e) = dp.maps.set_job_rec(job.slot, &job.to_rec()) {
                error!(job_id = %job.id, error = %e, "persisting job state");
            }
        }
        if let Some(slot) = self.jobs.get_mut(job.slot as usize) {
            if slot.as_ref().is_some_and(|j| j.id == job.id) {
                *slot = Some(job.clone());
            }
        }
    }
}

/// Run until `shutdown` resolves: expire jobs on time.
pub async fn expiry_loop(mgr: Arc<JobManager>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        mgr.expire_due().await;
    }
}
