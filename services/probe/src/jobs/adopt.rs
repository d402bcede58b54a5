//! After a restart: take over the jobs and attachments recorded in the
//! pinned maps; finish what was interrupted; remove orphans (ours only).

use std::sync::Arc;

use tracing::{info, warn};

use super::slots::Slots;
use super::JobManager;
use crate::domain::limits::MAX_JOB_SLOTS;
use crate::domain::JobState;

impl JobManager {
    pub(super) async fn adopt(self: &Arc<Self>) {
        let (mut ifindexes, stopping) = {
            let mut inner = self.inner.lock().await;
            let Some(kernel) = inner.kernel.as_mut() else {
                return;
            };
            let (wall, boot) = (self.clock.now_ns(), self.clock.boot_ns());
            let mut jobs = kernel.load_jobs();
            // Deadlines on the boot clock, from what is left of each.
            for j in &mut jobs {
                j.expires_boot_ns = j.expires_ns.map(|e| boot + e.saturating_sub(wall));
            }
            kernel.remove_unrecorded_links();
            let ifindexes = kernel.hooked_ifindexes();
            inner.slots = Slots::from_jobs(MAX_JOB_SLOTS as usize, jobs);
            let adopted = inner.slots.active();
            if adopted > 0 {
                info!(jobs = adopted, "adopted running jobs from the pinned state");
            }
            // A start the last probe did not finish placing: it ends
            // `failed`, giving back the session or netdev it may have made.
            for (slot, id) in inner.slots.select(|j| j.state == JobState::Resolving) {
                if let Some(mut j) = inner.slots.get(slot, id).cloned() {
                    j.error = Some("the probe stopped while the job was being placed".into());
                    j.state = JobState::Stopping;
                    j.ending = Some(JobState::Failed);
                    let _ = inner.persist(&j);
                }
            }
            let stopping = inner.slots.select(|j| j.state == JobState::Stopping);
            (ifindexes, stopping)
        };
        // Interrupted stops complete (in the state they were ending in);
        // starts resume below.
        for (slot, id) in stopping {
            self.finish(slot, id, JobState::Stopped).await;
        }
        let mut lost = Vec::new();
        let starting = {
            let mut inner = self.inner.lock().await;
            ifindexes.extend(
                inner
                    .slots
                    .iter()
                    .filter(|j| j.wants_attachment())
                    .map(|j| j.ifindex),
            );
            ifindexes.sort_unstable();
            ifindexes.dedup();
            for ifindex in ifindexes {
                if let Err(e) = inner.reconcile(ifindex).await {
                    warn!(ifindex, error = %e, "re-adopting attachments");
                    lost.push((ifindex, e.to_string()));
                }
            }
            inner.slots.select(|j| j.state == JobState::Starting)
        };
        for (ifindex, why) in lost {
            self.fail_jobs_on(ifindex, &why).await;
        }
        // A netdev of ours that no job wants any more (a stop interrupted
        // between detach and delete) goes now.
        let _ = self
            .release_erspan_if_unused(&*self.inner.lock().await)
            .await;
        // In tasks: a sonic job may wait for STATE_DB for minutes, and
        // serving must not wait for it.
        for (slot, id) in starting {
            let mgr = Arc::clone(self);
            tokio::spawn(async move { mgr.activate(slot, id).await });
        }
        self.expire_due().await;
        // Pending ends and the sweep of orphaned sessions: the expiry
        // loop's first pass, once serving (redis may be slow).
    }
}
