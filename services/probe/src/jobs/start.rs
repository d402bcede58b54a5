//! Starting a job: validation, the cap, where it counts, its slot, its
//! record; activation continues in a task (lifecycle.rs).

use std::sync::Arc;

use tracing::{info, warn};
use uuid::Uuid;

use super::mirror::Resolved;
use super::{Inner, JobError, JobManager};
use crate::domain::job::hook_direction;
use crate::domain::limits::MAX_JOBS_PER_HOOK;
use crate::domain::validate::{self, InvalidInput, StartRequest};
use crate::domain::{Direction, Job, JobState};

impl JobManager {
    pub async fn start(self: &Arc<Self>, req: &StartRequest) -> Result<Job, JobError> {
        let spec = validate::start(req, self.settings.mirror_mode)?;
        let port_ifindex = self
            .interfaces
            .ifindex(&spec.port)
            .await
            .map_err(JobError::Lookup)?
            .ok_or_else(|| InvalidInput::PortUnknown(spec.port.clone()))?;

        let id = Uuid::new_v4();
        let mut inner = self.inner.lock().await;
        if inner.slots.active() as u32 >= self.settings.max_jobs {
            return Err(JobError::Capacity(self.settings.max_jobs));
        }
        let r = self
            .resolve_mirror(spec.mirror, &spec.port, port_ifindex, id, spec.direction)
            .await?;
        if let Some(why) = &r.fallback {
            warn!(port = %spec.port, requested = spec.mirror.as_str(), reason = %why, "mirror fallback");
        }
        let slot = match self.room_for(&inner, &r, spec.direction) {
            Ok(slot) => slot,
            Err(e) => {
                self.undo_resolve(&mut inner, id, &r).await;
                return Err(e);
            }
        };
        let now = self.now();
        let job = Job {
            slot,
            id,
            port: spec.port,
            iface: r.iface.clone(),
            ifindex: r.ifindex,
            state: JobState::Starting,
            direction: spec.direction,
            mirror_mode: r.mode,
            attach_mode: None,
            otlp_export: spec.otlp_export,
            flows_detail: spec.flows,
            duration_sec: spec.duration_sec,
            sample_rate: spec.sample_rate,
            seq: inner.slots.next_seq(),
            started_ns: now,
            expires_ns: (spec.duration_sec > 0)
                .then(|| now + spec.duration_sec as u64 * 1_000_000_000),
            stopped_ns: None,
            error: None,
            fallback: r.fallback.clone(),
            flow_table_size: if spec.flows && r.mode.attaches() {
                self.settings.flow_table_size
            } else {
                0
            },
            filter: spec.filter,
            ending: None,
            pending: None,
        };
        // The record first: a job nothing records would own what it holds.
        if let Err(e) = inner.record(job.clone()) {
            self.undo_resolve(&mut inner, id, &r).await;
            return Err(e.into());
        }
        drop(inner);
        info!(job_id = %job.id, port = %job.port, direction = job.direction.as_str(), mirror_mode = job.mirror_mode.as_str(), slot, "job starting");
        let mgr = Arc::clone(self);
        let (slot, id) = (job.slot, job.id);
        tokio::spawn(async move { mgr.activate(slot, id).await });
        Ok(job)
    }

    /// The slot a new job gets, if its hook has room for one more job.
    fn room_for(&self, inner: &Inner, r: &Resolved, direction: Direction) -> Result<u32, JobError> {
        if r.mode.attaches() {
            let hook = hook_direction(r.mode, direction);
            let same_hook = inner
                .slots
                .iter()
                .filter(|j| {
                    j.wants_attachment()
                        && j.ifindex == r.ifindex
                        && j.hook_direction().bits() & hook.bits() != 0
                })
                .count();
            if same_hook >= MAX_JOBS_PER_HOOK {
                return Err(JobError::Capacity(MAX_JOBS_PER_HOOK as u32));
            }
        }
        inner.slots.free_slot().ok_or(JobError::NoSlot)
    }
}
