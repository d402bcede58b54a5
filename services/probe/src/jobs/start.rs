//! Starting a job, intent first: the cap, a slot and a record that owns
//! whatever the start creates next (state `resolving`); then the SONiC
//! session (without the job lock: redis may take seconds), the erspan
//! netdev, the room on the hook; then the job as placed (`starting`), and
//! activation in a task (lifecycle.rs). A start that gets no further gives
//! back what it made and frees its record; a probe that dies in between
//! finds the record and ends the job, giving back what it holds (adopt.rs).

use std::sync::Arc;

use tracing::{info, warn};
use uuid::Uuid;

use super::mirror::Resolved;
use super::{Inner, JobError, JobManager};
use crate::domain::job::hook_direction;
use crate::domain::limits::MAX_JOBS_PER_HOOK;
use crate::domain::validate::{self, InvalidInput, StartRequest, StartSpec};
use crate::domain::{Direction, Job, JobState, MirrorMode};

impl JobManager {
    pub async fn start(self: &Arc<Self>, req: &StartRequest) -> Result<Job, JobError> {
        let spec = validate::start(req, self.settings.mirror_mode)?;
        // Before anything is looked up or created.
        self.settings.policy.check(&spec)?;
        let port_ifindex = self
            .interfaces
            .ifindex(&spec.port)
            .await
            .map_err(JobError::Lookup)?
            .ok_or_else(|| InvalidInput::PortUnknown(spec.port.clone()))?;
        let job = self.intent(&spec, port_ifindex).await?;
        let (slot, id) = (job.slot, job.id);
        let scope = if spec.mirror == MirrorMode::Sonic {
            match self.write_session(id, &spec).await {
                Ok(scope) => scope,
                Err(e) => {
                    self.abandon(slot, id, None, &e).await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        let session = scope.is_some();
        let mut inner = self.inner.lock().await;
        let resolved = self
            .resolve_mirror(spec.mirror, &spec.port, port_ifindex, id)
            .await;
        let r = match resolved {
            Ok(r) => r,
            Err(e) => {
                // resolve_sonic gave the session back already.
                drop(inner);
                self.abandon(slot, id, None, &e).await;
                return Err(e);
            }
        };
        if let Some(why) = &r.fallback {
            warn!(port = %spec.port, requested = spec.mirror.as_str(), reason = %why, "mirror fallback");
        }
        debug_assert!(session == r.session || r.mode == MirrorMode::Placeholder);
        let placed = room_on_hook(&inner, &r, spec.direction).and_then(|()| {
            let job = Job {
                state: JobState::Starting,
                iface: r.iface.clone(),
                ifindex: r.ifindex,
                mirror_mode: r.mode,
                mirror_scope: scope.filter(|_| r.mode == MirrorMode::Sonic),
                fallback: r.fallback.clone(),
                flow_table_size: if spec.flows && r.mode.attaches() {
                    self.settings.flow_table_size
                } else {
                    0
                },
                ..job
            };
            inner.persist(&job)?;
            Ok(job)
        });
        let job = match placed {
            Ok(job) => job,
            Err(e) => {
                drop(inner);
                self.abandon(slot, id, Some(r), &e).await;
                return Err(e);
            }
        };
        drop(inner);
        info!(job_id = %id, port = %job.port, direction = job.direction.as_str(), mirror_mode = job.mirror_mode.as_str(), slot, "job starting");
        let mgr = Arc::clone(self);
        tokio::spawn(async move { mgr.activate(slot, id).await });
        Ok(job)
    }

    /// The cap, a slot, and the job's record in state `resolving`.
    async fn intent(&self, spec: &StartSpec, port_ifindex: u32) -> Result<Job, JobError> {
        let mut inner = self.inner.lock().await;
        if inner.slots.active() as u32 >= self.settings.max_jobs {
            return Err(JobError::Capacity(self.settings.max_jobs));
        }
        let table = if spec.flows {
            self.settings.flow_table_size
        } else {
            0
        };
        let total = inner
            .slots
            .iter()
            .filter(|j| !j.state.is_final())
            .map(|j| u64::from(j.flow_table_size))
            .sum::<u64>()
            + u64::from(table);
        if table > 0 && total > self.settings.flow_entries_max {
            return Err(JobError::FlowCapacity {
                asked: table,
                total,
                max: self.settings.flow_entries_max,
            });
        }
        if let Some(c) = &spec.capture {
            // Reserved for every capture not yet ended, held by the files
            // of those that ended (until their slot is reused).
            let held: u64 = inner
                .slots
                .iter()
                .filter(|j| j.capture.is_some())
                .map(|j| match (&j.capture, j.state.is_final()) {
                    (Some(c), false) => crate::capture::reserve_bytes(c.max_bytes),
                    _ => self.capture.stats(j.id).map_or(0, |s| s.file_bytes),
                })
                .sum();
            let asked = crate::capture::reserve_bytes(c.max_bytes);
            let max = self.capture.max_bytes();
            // The slot this start takes gives its file back.
            let freed = inner
                .slots
                .free_slot()
                .and_then(|s| inner.slots.iter().find(|j| j.slot == s))
                .filter(|j| j.capture.is_some())
                .and_then(|j| self.capture.stats(j.id))
                .map_or(0, |s| s.file_bytes);
            let total = (held + asked).saturating_sub(freed);
            if total > max {
                return Err(JobError::SpoolCapacity { asked, total, max });
            }
        }
        let slot = inner.slots.free_slot().ok_or(JobError::NoSlot)?;
        // A reused slot's old job goes, and with it its capture file.
        if let Some(old) = inner.slots.iter().find(|j| j.slot == slot) {
            if old.capture.is_some() {
                self.capture.remove(old.id);
            }
        }
        let now = self.now();
        let job = Job {
            slot,
            id: Uuid::new_v4(),
            port: spec.port.clone(),
            iface: spec.port.clone(),
            ifindex: port_ifindex,
            state: JobState::Resolving,
            direction: spec.direction,
            mirror_mode: spec.mirror,
            attach_mode: None,
            otlp_export: spec.otlp_export,
            flows_detail: spec.flows,
            duration_sec: spec.duration_sec,
            sample_rate: spec.sample_rate,
            seq: inner.slots.next_seq(),
            started_ns: now,
            expires_ns: (spec.duration_sec > 0)
                .then(|| now + spec.duration_sec as u64 * 1_000_000_000),
            expires_boot_ns: (spec.duration_sec > 0)
                .then(|| self.clock.boot_ns() + spec.duration_sec as u64 * 1_000_000_000),
            stopped_ns: None,
            error: None,
            fallback: None,
            mirror_scope: None,
            filter: spec.filter.clone(),
            capture: spec.capture,
            // Counted against the cap from now; 0 once placed where
            // nothing attaches.
            flow_table_size: table,
            ending: None,
            pending: None,
        };
        inner.record(job.clone())?;
        Ok(job)
    }

    /// A start that goes no further: give back what resolving made (`r`),
    /// the session (whatever `r` says: a write that failed may have landed),
    /// and free the record. What cannot be given back now stays owned by
    /// the record, which then ends as a failed job saying `why` (retried).
    async fn abandon(&self, slot: u32, id: Uuid, r: Option<Resolved>, why: &JobError) {
        let mut inner = self.inner.lock().await;
        if let Some(r) = &r {
            self.undo_resolve(&mut inner, id, r).await;
        }
        let Some(job) = inner.slots.get(slot, id).cloned() else {
            return;
        };
        drop(inner);
        if job.mirror_mode == MirrorMode::Sonic && self.delete_session(id).await.is_err() {
            {
                let mut inner = self.inner.lock().await;
                let failed = Job {
                    error: Some(why.to_string()),
                    ..job
                };
                let _ = inner.persist(&failed);
            }
            self.finish(slot, id, JobState::Failed).await;
            return;
        }
        let mut inner = self.inner.lock().await;
        if let Err(e) = inner.forget(slot, id) {
            warn!(job_id = %id, error = %e, "freeing the record of an abandoned start");
        }
    }
}

/// Whether the job's hook has room for one more job.
fn room_on_hook(inner: &Inner, r: &Resolved, direction: Direction) -> Result<(), JobError> {
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
    Ok(())
}
