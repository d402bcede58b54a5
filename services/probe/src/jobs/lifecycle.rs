//! A job's life after its start was accepted: activation (starting ->
//! running, or the end), and the end (stop, expiry, failure) through the one
//! path that gives back what a job held: its hooks, the erspan netdev, its
//! SONiC session.
//!
//! A job is final only when everything it held is given back. Until then
//! it stays `stopping`, says what is pending (`pending`), and the expiry
//! loop retries; the state it will end in is recorded (`ending`), so a
//! restarted probe finishes it too. The SONiC delete, the one step that can
//! wait seconds on redis, runs without the job lock.

use std::sync::Arc;

use tracing::{error, info, warn};
use uuid::Uuid;

use super::ports::SessionError;
use super::{report, Inner, JobManager};
use crate::domain::acl::{self, AclStatus};
use crate::domain::validate::MAX_TOP_FLOWS;
use crate::domain::{Job, JobState, MirrorMode, MirrorScope};

impl JobManager {
    /// The kernel and netdev half of giving back what `job` held (under the
    /// job lock: both are local and fast). Every step runs even when one
    /// fails; the first failure is returned.
    async fn release_local(&self, inner: &mut Inner, job: &Job) -> Option<String> {
        let mut err = None;
        if job.mirror_mode.attaches() {
            if let Err(e) = inner.reconcile(job.ifindex).await {
                warn!(job_id = %job.id, error = %e, "detaching");
                err = Some(format!("detaching: {e}"));
            }
        }
        if job.mirror_mode.uses_erspan_netdev() {
            if let Err(e) = self.release_erspan_if_unused(inner).await {
                err.get_or_insert(format!("removing the erspan netdev we created: {e}"));
            }
        }
        err
    }

    /// starting -> running: a sonic job first waits (without the job lock)
    /// for STATE_DB to report its session active; then attach where the job
    /// needs it. On failure the job ends `failed`, giving back what it took.
    pub(super) async fn activate(self: &Arc<Self>, slot: u32, id: Uuid) {
        let (sonic_job, deep_loader) = {
            let inner = self.inner.lock().await;
            let job = inner
                .slots
                .get(slot, id)
                .filter(|j| j.state == JobState::Starting);
            let deep = job.is_some_and(|j| j.is_deep() && j.mirror_mode.attaches());
            (
                job.is_some_and(|j| j.mirror_mode == MirrorMode::Sonic),
                inner
                    .kernel
                    .as_ref()
                    .filter(|_| deep)
                    .and_then(|k| k.deep_loader()),
            )
        };
        // The verifier's second (more on old kernels) holds no lock; a
        // failure is met again, and reported, by the attach below.
        if let Some(load) = deep_loader {
            if let Ok(Err(e)) = tokio::task::spawn_blocking(load).await {
                warn!(job_id = %id, error = %e, "loading the filter and flow program");
            }
        }
        let session = if sonic_job {
            self.sonic.wait_active(id).await.map_err(|e| match e {
                SessionError::Inactive(e) => format!("SONiC {e}"),
                e => format!("waiting for the SONiC mirror session: {e}"),
            })
        } else {
            Ok(AclStatus::Active)
        };
        let failure = {
            let mut inner = self.inner.lock().await;
            let Some(mut job) = inner
                .slots
                .get(slot, id)
                .filter(|j| j.state == JobState::Starting)
                .cloned()
            else {
                return;
            };
            if session == Ok(AclStatus::NotReported) {
                if let Some(MirrorScope::Acl(note)) = &mut job.mirror_scope {
                    *note = acl::NOT_REPORTED.into();
                }
            }
            let mut result = session.map(|_| None);
            if job.mirror_mode.attaches() && result.is_ok() {
                // The file before the kernel writes a packet for it.
                if job.capture.is_some() {
                    if let Err(e) = self.capture.open(&job, false) {
                        result = Err(format!("opening the job's capture file: {e}"));
                    }
                }
            }
            if job.mirror_mode.attaches() && result.is_ok() {
                if let Some(k) = inner.kernel.as_mut() {
                    result = k.prepare_job(&job).map(|_| None).map_err(|e| e.to_string());
                }
                if result.is_ok() {
                    result = inner
                        .reconcile(job.ifindex)
                        .await
                        .map_err(|e| e.to_string());
                }
            }
            match result {
                Ok(mode) => {
                    job.state = JobState::Running;
                    job.attach_mode = mode;
                    info!(job_id = %id, interface = %job.iface, attach_mode = mode.map_or("none", |m| m.as_str()), "job running");
                    // A record left at `starting` is activated again by the
                    // next probe: harmless.
                    let _ = inner.persist(&job);
                    None
                }
                Err(e) => {
                    error!(job_id = %id, error = %e, "job failed to start");
                    job.error = Some(e);
                    let _ = inner.persist(&job);
                    Some(())
                }
            }
        };
        if failure.is_some() {
            // Take back whatever part of the start succeeded.
            self.finish(slot, id, JobState::Failed).await;
        }
    }

    /// Move a job to `state` (stopped, expired, failed), giving back what it
    /// alone held. A job already final is returned unchanged (stop is
    /// idempotent); one whose release is still pending stays `stopping`,
    /// saying why, and is retried. None when the slot holds another job.
    pub(super) async fn finish(&self, slot: u32, id: Uuid, state: JobState) -> Option<Job> {
        let job = {
            let mut inner = self.inner.lock().await;
            let mut job = inner.slots.get(slot, id)?.clone();
            if job.state.is_final() {
                return Some(job);
            }
            if job.state != JobState::Stopping {
                job.state = JobState::Stopping;
                job.ending = Some(state);
                // Retried below with the end itself.
                let _ = inner.persist(&job);
            }
            job.pending = self.release_local(&mut inner, &job).await;
            if job.pending.is_none() && job.capture.is_some() {
                // Nothing counts the job now: the kernel's figure is final.
                let sent = inner
                    .kernel
                    .as_ref()
                    .and_then(|k| k.job_counters(&job).ok())
                    .and_then(|c| c.capture)
                    .map_or(0, |c| c.packets);
                self.capture.close(job.id, sent);
            }
            job
        };
        if job.flows_detail && job.pending.is_none() {
            self.keep_top_flows(slot, id).await;
        }
        // Outside the lock: redis may take seconds to answer, or not at all.
        let mut pending = job.pending.clone();
        if job.mirror_mode == MirrorMode::Sonic {
            if let Err(e) = self.delete_session(id).await {
                pending.get_or_insert(format!("deleting the SONiC mirror session: {e}"));
            }
        }
        let mut inner = self.inner.lock().await;
        let mut job = inner.slots.get(slot, id)?.clone();
        if job.state.is_final() {
            return Some(job); // another finisher got there first
        }
        job.pending = pending;
        if job.pending.is_none() {
            let mut end = job.clone();
            end.state = job.ending.unwrap_or(JobState::Stopped);
            end.stopped_ns = Some(self.now());
            match inner.persist(&end) {
                Ok(()) => {
                    info!(job_id = %id, status = end.state.as_str(), "job ended");
                    return Some(end);
                }
                // Final only once recorded: a restart must not revive it.
                Err(e) => job.pending = Some(format!("recording the job's end: {e}")),
            }
        }
        if let Some(why) = &job.pending {
            warn!(job_id = %id, pending = %why, "job end pending; retrying");
        }
        let _ = inner.persist(&job);
        Some(job)
    }

    /// Once a flows job no longer counts: replace its table (up to 1M
    /// entries) by one holding its top flows, read without the job lock.
    /// Done once (a kept table says so); a failure keeps the whole table,
    /// freed when the slot is reused.
    async fn keep_top_flows(&self, slot: u32, id: Uuid) {
        let table = {
            let inner = self.inner.lock().await;
            let Some(job) = inner.slots.get(slot, id) else {
                return;
            };
            match report::flow_table(inner.kernel.as_deref(), job) {
                Ok(Some(t)) if t.kept_of().is_none() => t,
                Ok(_) => return,
                Err(e) => {
                    warn!(job_id = %id, error = %e, "opening the flow table to keep its top flows");
                    return;
                }
            }
        };
        let (top, held, size) = report::read_flows(table, MAX_TOP_FLOWS as usize).await;
        let mut inner = self.inner.lock().await;
        let Some(job) = inner.slots.get(slot, id).cloned() else {
            return;
        };
        if let Some(k) = inner.kernel.as_mut().filter(|_| !job.state.is_final()) {
            match k.keep_flows(&job, &top, size, held) {
                Ok(()) => {
                    info!(job_id = %id, kept = top.len(), held, "flow table released; top flows kept")
                }
                Err(e) => {
                    warn!(job_id = %id, error = %e, "keeping the top flows; the whole table stays until its slot is reused")
                }
            }
        }
    }

    /// Stop running jobs whose duration has passed (status `expired`), by
    /// the boot clock (a wall-clock step ends no job early or late).
    pub async fn expire_due(&self) {
        let now = self.clock.boot_ns();
        let due = self.inner.lock().await.slots.select(|j| {
            j.state == JobState::Running && j.expires_boot_ns.is_some_and(|e| e <= now)
        });
        for (slot, id) in due {
            self.finish(slot, id, JobState::Expired).await;
        }
    }

    /// Finish the jobs whose end is pending (a failed detach or delete, an
    /// interrupted stop), check hooks, and now and then sweep orphaned
    /// sessions.
    pub async fn retry_pending(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        /// Retry passes between sweeps (the loop retries every 2 s).
        const SWEEP_EVERY: u32 = 15;
        let passes = self.since_sweep.load(Relaxed);
        if passes >= SWEEP_EVERY && self.sweep_sessions().await {
            self.since_sweep.store(0, Relaxed);
        } else {
            self.since_sweep.store(passes.saturating_add(1), Relaxed);
        }
        self.verify_hooks().await;
        let stopping = self
            .inner
            .lock()
            .await
            .slots
            .select(|j| j.state == JobState::Stopping);
        for (slot, id) in stopping {
            self.finish(slot, id, JobState::Stopped).await;
        }
    }

    /// Check that the hooks running jobs count on are still attached and
    /// ours; a lost one is attached again and its jobs say so (reconcile).
    async fn verify_hooks(&self) {
        let mut inner = self.inner.lock().await;
        let mut ifindexes: Vec<u32> = inner
            .slots
            .iter()
            .filter(|j| j.state == JobState::Running && j.mirror_mode.attaches())
            .map(|j| j.ifindex)
            .collect();
        ifindexes.sort_unstable();
        ifindexes.dedup();
        for ifindex in ifindexes {
            if let Err(e) = inner.reconcile(ifindex).await {
                warn!(ifindex, error = %e, "checking the hooks of running jobs");
            }
        }
    }

    /// Delete the SONiC sessions of ours (by name) that no job owns: left by
    /// an older probe, or by a record overwritten since. Only when sonic
    /// mode is in use; whether the sweep is done.
    async fn sweep_sessions(&self) -> bool {
        let in_use = self.settings.mirror_mode == MirrorMode::Sonic
            || self
                .inner
                .lock()
                .await
                .slots
                .iter()
                .any(|j| j.mirror_mode == MirrorMode::Sonic);
        if !in_use {
            return true;
        }
        let ids = match self.sonic.sessions().await {
            Ok(ids) => ids,
            Err(e) => {
                warn!(error = %e, "looking for orphaned SONiC sessions; retrying");
                return false;
            }
        };
        for id in ids {
            // Under the lock: a start records its job before it writes.
            let owned = self
                .inner
                .lock()
                .await
                .slots
                .find(id)
                .is_some_and(|j| !j.state.is_final());
            if !owned && self.delete_session(id).await.is_ok() {
                warn!(job_id = %id, "deleted a SONiC mirror session of ours that no job owned");
            }
        }
        true
    }

    /// The jobs counting on `ifindex` fail with `why` (their hooks could not
    /// be adopted); what they held is given back.
    pub(super) async fn fail_jobs_on(&self, ifindex: u32, why: &str) {
        let failing = {
            let mut inner = self.inner.lock().await;
            let failing = inner
                .slots
                .select(|j| j.ifindex == ifindex && j.wants_attachment());
            for &(slot, id) in &failing {
                if let Some(mut job) = inner.slots.get(slot, id).cloned() {
                    job.error = Some(why.to_string());
                    let _ = inner.persist(&job);
                }
            }
            failing
        };
        for (slot, id) in failing {
            self.finish(slot, id, JobState::Failed).await;
        }
    }
}
