//! A job's life after its start was accepted: activation (starting ->
//! running or failed), the end (stop, expiry, failure), and the one path
//! that gives back what a job held: its hooks, the erspan netdev, its SONiC
//! session.

use std::sync::Arc;

use tracing::{error, info, warn};
use uuid::Uuid;

use super::ports::SessionError;
use super::{Inner, JobManager};
use crate::domain::{Job, JobState, MirrorMode};

/// What a job holds that must be given back when it ends.
struct Holdings {
    id: Uuid,
    /// Its hooks on this interface (reconciled without it).
    ifindex: Option<u32>,
    /// It may be the last user of the erspan netdev.
    erspan: bool,
    /// Its SONiC mirror session.
    session: bool,
}

impl Holdings {
    fn of(job: &Job) -> Self {
        Holdings {
            id: job.id,
            ifindex: job.mirror_mode.attaches().then_some(job.ifindex),
            erspan: job.mirror_mode.uses_erspan_netdev(),
            session: job.mirror_mode == MirrorMode::Sonic,
        }
    }
}

impl JobManager {
    /// Give back what a job that no longer wants anything held. Every step
    /// runs even when one fails; the first failure is returned, for the
    /// job's error.
    async fn release(&self, inner: &mut Inner, h: Holdings) -> Option<String> {
        let mut err = None;
        if let Some(ifindex) = h.ifindex {
            if let Err(e) = inner.reconcile(ifindex).await {
                warn!(job_id = %h.id, error = %e, "detaching");
                err.get_or_insert(e.to_string());
            }
        }
        if h.erspan {
            self.release_erspan_if_unused(inner).await;
        }
        if h.session {
            if let Err(e) = self.delete_session(h.id).await {
                err.get_or_insert(format!("deleting the SONiC mirror session: {e}"));
            }
        }
        err
    }

    /// starting -> running (or failed): a sonic job first waits (without
    /// the job lock) for STATE_DB to report its session active; then attach
    /// where the job needs it.
    pub(super) async fn activate(self: &Arc<Self>, slot: u32, id: Uuid) {
        let sonic_job = {
            let inner = self.inner.lock().await;
            inner.slots.get(slot, id).is_some_and(|j| {
                j.state == JobState::Starting && j.mirror_mode == MirrorMode::Sonic
            })
        };
        let session = if sonic_job {
            self.sonic.wait_active(id).await.map_err(|e| match e {
                SessionError::Inactive(e) => format!("SONiC mirror session {e}"),
                e => format!("waiting for the SONiC mirror session: {e}"),
            })
        } else {
            Ok(())
        };
        let mut inner = self.inner.lock().await;
        let Some(job) = inner
            .slots
            .get(slot, id)
            .filter(|j| j.state == JobState::Starting)
            .cloned()
        else {
            return;
        };
        let mut result = session.map(|_| None);
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
        let mut job = job;
        match result {
            Ok(mode) => {
                job.state = JobState::Running;
                job.attach_mode = mode;
                info!(job_id = %id, interface = %job.iface, attach_mode = mode.map_or("none", |m| m.as_str()), "job running");
                inner.persist(&job);
            }
            Err(e) => {
                error!(job_id = %id, error = %e, "job failed to start");
                job.state = JobState::Failed;
                job.stopped_ns = Some(self.now());
                job.error = Some(e);
                inner.persist(&job);
                // Take back whatever part of the start succeeded.
                self.release(&mut inner, Holdings::of(&job)).await;
            }
        }
    }

    /// Move an active job to a final state, giving back what it alone
    /// held. A job already final is returned unchanged (stop is idempotent).
    pub(super) async fn finish(
        &self,
        inner: &mut Inner,
        slot: u32,
        id: Uuid,
        state: JobState,
    ) -> Job {
        let mut job = inner
            .slots
            .get(slot, id)
            .cloned()
            .expect("caller found the job");
        if job.state.is_final() {
            return job;
        }
        job.state = JobState::Stopping;
        inner.persist(&job);
        let err = self.release(inner, Holdings::of(&job)).await;
        job.state = state;
        job.stopped_ns = Some(self.now());
        if err.is_some() {
            job.error = err;
        }
        inner.persist(&job);
        info!(job_id = %id, status = state.as_str(), "job ended");
        job
    }

    /// Stop running jobs whose duration has passed (status `expired`).
    pub async fn expire_due(&self) {
        let now = self.now();
        let mut inner = self.inner.lock().await;
        let due = inner
            .slots
            .select(|j| j.state == JobState::Running && j.expires_ns.is_some_and(|e| e <= now));
        for (slot, id) in due {
            self.finish(&mut inner, slot, id, JobState::Expired).await;
        }
    }

    /// The jobs counting on `ifindex` fail with `why` (their hooks could not
    /// be adopted); what they held is given back.
    pub(super) async fn fail_jobs_on(&self, inner: &mut Inner, ifindex: u32, why: &str) {
        let failing = inner
            .slots
            .select(|j| j.ifindex == ifindex && j.wants_attachment());
        for (slot, id) in failing {
            let Some(mut job) = inner.slots.get(slot, id).cloned() else {
                continue;
            };
            job.state = JobState::Failed;
            job.error = Some(why.to_string());
            job.stopped_ns = Some(self.now());
            inner.persist(&job);
            self.release(inner, Holdings::of(&job)).await;
        }
    }
}
