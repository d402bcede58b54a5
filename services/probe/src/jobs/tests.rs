//! The job core against fakes (fakes.rs): start, stop, expiry and adoption,
//! each with a fault injected at every step of every port, and after each
//! the invariant that nothing is left without an owner except what the
//! failing step itself kept (which the job's error names).

use std::sync::Arc;
use std::time::Duration;

use super::fakes::{self, Shared, Step, ALL_STEPS, NETDEV_IFINDEX, PORT_IFINDEX};
use super::{JobError, JobManager};
use crate::domain::{Job, JobState, MirrorMode, StartRequest};

const MODES: [&str; 4] = ["direct", "erspan", "sonic", "placeholder"];

fn req(mode: &str, duration: u32) -> StartRequest {
    StartRequest {
        port: "Ethernet0".into(),
        direction: "ingress".into(),
        duration_sec: Some(duration),
        mirror_mode: mode.into(),
        ..Default::default()
    }
}

/// The job once it has left `starting` (activation runs in a task).
async fn settled(mgr: &JobManager, id: &str) -> Job {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let j = mgr.get(id).await.expect("job exists");
            if j.state != JobState::Starting {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("activation finished")
}

/// Nothing without an owner: every hook, session and netdev belongs to an
/// active job, every active job has what it needs, and the pinned records
/// say what the core says. `kept` lists what a failing step was allowed to
/// leave behind.
async fn check_owned(world: &Shared, mgr: &JobManager, kept: &[Step]) {
    let jobs = mgr.list().await;
    let w = world.world();
    for j in &jobs {
        assert_eq!(w.records.get(&j.slot), Some(j), "record of {}", j.id);
    }
    let active: Vec<&Job> = jobs.iter().filter(|j| j.state.is_active()).collect();
    if !kept.contains(&Step::Reconcile) {
        for (ifindex, want) in &w.hooks {
            let mut slots: Vec<u8> = want.slots[0].clone();
            slots.sort_unstable();
            let mut expect: Vec<u8> = active
                .iter()
                .filter(|j| j.ifindex == *ifindex && j.mirror_mode.attaches())
                .map(|j| j.slot as u8)
                .collect();
            expect.sort_unstable();
            assert_eq!(slots, expect, "hooks on {ifindex}");
        }
        for j in active.iter().filter(|j| j.state == JobState::Running) {
            assert_eq!(
                w.hooks.contains_key(&j.ifindex),
                j.mirror_mode.attaches(),
                "hook of {}",
                j.id
            );
        }
    }
    if !kept.contains(&Step::Delete) {
        for s in &w.sessions {
            assert!(
                active
                    .iter()
                    .any(|j| j.id == *s && j.mirror_mode == MirrorMode::Sonic),
                "session {s} has no active job"
            );
        }
    }
    let needs_netdev = active
        .iter()
        .any(|j| j.mirror_mode.uses_erspan_netdev() && j.ifindex == NETDEV_IFINDEX);
    if !kept.contains(&Step::Release) {
        assert_eq!(w.netdev, needs_netdev, "netdev");
    }
}

#[tokio::test]
async fn every_mode_starts_runs_and_stops_clean() {
    for mode in MODES {
        let world = Shared::default();
        let mgr = fakes::manager(&world).await;
        let job = mgr.start(&req(mode, 0)).await.unwrap();
        let job = settled(&mgr, &job.id.to_string()).await;
        assert_eq!(job.state, JobState::Running, "{mode}: {:?}", job.error);
        assert_eq!(job.mirror_mode.as_str(), mode);
        check_owned(&world, &mgr, &[]).await;
        let stopped = mgr.stop(&job.id.to_string()).await.unwrap();
        assert_eq!((stopped.state, stopped.error), (JobState::Stopped, None));
        check_owned(&world, &mgr, &[]).await;
        let w = world.world();
        assert!(
            w.hooks.is_empty() && w.sessions.is_empty() && !w.netdev,
            "{mode}: {w:?}"
        );
    }
}

#[tokio::test]
async fn a_fault_at_any_step_of_a_start_leaves_nothing_unowned() {
    for mode in ["direct", "erspan", "sonic"] {
        for step in ALL_STEPS {
            let world = Shared::default();
            let mgr = fakes::manager(&world).await;
            world.fail(step);
            let started = mgr.start(&req(mode, 0)).await;
            let job = match started {
                Ok(j) => Some(settled(&mgr, &j.id.to_string()).await),
                Err(e) => {
                    // Refused up front: nothing was created or recorded.
                    assert!(
                        matches!(
                            (&e, step),
                            (JobError::Lookup(_), Step::Lookup)
                                | (JobError::Kernel(_), Step::Persist)
                                | (JobError::Unavailable(_), Step::Create)
                        ),
                        "{mode}/{step:?}: {e}"
                    );
                    assert!(mgr.list().await.is_empty());
                    None
                }
            };
            world.heal();
            check_owned(&world, &mgr, &[]).await;
            let Some(job) = job else { continue };
            match (mode, step) {
                (_, Step::Prepare | Step::Reconcile) | ("sonic", Step::WaitActive) => {
                    assert_eq!(job.state, JobState::Failed, "{mode}/{step:?}");
                    let err = job.error.unwrap_or_default();
                    assert!(
                        err.contains("injected") || err.contains("inactive"),
                        "{err}"
                    );
                }
                ("erspan", Step::Ensure) => {
                    // The seed's rule: erspan failing falls back to placeholder.
                    assert_eq!(job.mirror_mode, MirrorMode::Placeholder);
                    assert!(job.fallback.unwrap().contains("provisioning failed"));
                }
                ("sonic", Step::Ensure) => {
                    // Counts on the port itself, where the classifier decaps.
                    assert_eq!((job.state, job.ifindex), (JobState::Running, PORT_IFINDEX));
                    assert!(job.fallback.is_some());
                }
                _ => assert_eq!(
                    job.state,
                    JobState::Running,
                    "{mode}/{step:?}: {:?}",
                    job.error
                ),
            }
        }
    }
}

/// Ends a running job of `mode` with a fault at `step`, by `end` (stop or
/// expiry), and checks the job is final, says what was kept, and that
/// nothing else is.
async fn end_with_fault(mode: &str, step: Step, expire: bool) {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let job = mgr.start(&req(mode, 5)).await.unwrap();
    let id = job.id.to_string();
    assert_eq!(settled(&mgr, &id).await.state, JobState::Running);
    world.fail(step);
    let ended = if expire {
        world.advance(6);
        mgr.expire_due().await;
        mgr.get(&id).await.unwrap()
    } else {
        mgr.stop(&id).await.unwrap()
    };
    world.heal();
    let want = if expire {
        JobState::Expired
    } else {
        JobState::Stopped
    };
    assert_eq!(ended.state, want, "{mode}/{step:?}");
    let err = ended.error.clone().unwrap_or_default();
    // What the step kept, and whether the job says so.
    let kept: &[Step] = match (mode, step) {
        ("direct" | "erspan" | "sonic", Step::Reconcile) => {
            assert!(err.contains("injected"), "{mode}/{step:?}: {err:?}");
            &[Step::Reconcile]
        }
        ("sonic", Step::Delete) => {
            assert!(err.contains("SONiC mirror session"), "{err:?}");
            &[Step::Delete]
        }
        ("erspan" | "sonic", Step::Release) => &[Step::Release],
        _ => {
            assert_eq!(ended.error, None, "{mode}/{step:?}");
            &[]
        }
    };
    // Records follow the core unless persisting was the fault.
    if step != Step::Persist {
        check_owned(&world, &mgr, kept).await;
    }
}

#[tokio::test]
async fn a_fault_at_any_step_of_a_stop_still_ends_the_job() {
    for mode in MODES {
        for step in ALL_STEPS {
            end_with_fault(mode, step, false).await;
        }
    }
}

#[tokio::test]
async fn a_fault_at_any_step_of_an_expiry_still_ends_the_job() {
    for mode in MODES {
        for step in ALL_STEPS {
            end_with_fault(mode, step, true).await;
        }
    }
}

#[tokio::test]
async fn expiry_follows_the_clock() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let job = mgr.start(&req("direct", 5)).await.unwrap();
    let id = job.id.to_string();
    settled(&mgr, &id).await;
    world.advance(4);
    mgr.expire_due().await;
    assert_eq!(mgr.get(&id).await.unwrap().state, JobState::Running);
    world.advance(2);
    mgr.expire_due().await;
    assert_eq!(mgr.get(&id).await.unwrap().state, JobState::Expired);
    check_owned(&world, &mgr, &[]).await;
}

/// A restarted core over the same world: running jobs are adopted,
/// interrupted stops complete, interrupted starts resume.
async fn restart(world: &Shared) -> Arc<JobManager> {
    fakes::manager(world).await
}

#[tokio::test]
async fn adoption_finishes_what_was_interrupted() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let mut ids = Vec::new();
    for mode in ["direct", "sonic", "erspan"] {
        let j = mgr.start(&req(mode, 0)).await.unwrap();
        settled(&mgr, &j.id.to_string()).await;
        ids.push(j.id);
    }
    drop(mgr);
    {
        // A crash mid-stop of the direct job, and mid-start of the sonic one.
        let mut w = world.world();
        let recs: Vec<_> = w.records.values().cloned().collect();
        for mut r in recs {
            if r.id == ids[0] {
                r.state = JobState::Stopping;
            } else if r.id == ids[1] {
                r.state = JobState::Starting;
                r.attach_mode = None;
            }
            w.records.insert(r.slot, r);
        }
    }
    let mgr = restart(&world).await;
    assert_eq!(
        mgr.get(&ids[0].to_string()).await.unwrap().state,
        JobState::Stopped
    );
    assert_eq!(
        mgr.get(&ids[1].to_string()).await.unwrap().state,
        JobState::Running
    );
    assert_eq!(
        mgr.get(&ids[2].to_string()).await.unwrap().state,
        JobState::Running
    );
    check_owned(&world, &mgr, &[]).await;
}

#[tokio::test]
async fn a_fault_at_any_step_of_an_adoption_ends_in_a_known_state() {
    for step in ALL_STEPS {
        let world = Shared::default();
        let mgr = fakes::manager(&world).await;
        let mut ids = Vec::new();
        for mode in ["direct", "sonic"] {
            let j = mgr.start(&req(mode, 0)).await.unwrap();
            settled(&mgr, &j.id.to_string()).await;
            ids.push(j.id.to_string());
        }
        drop(mgr);
        world.fail(step);
        let mgr = restart(&world).await;
        world.heal();
        for id in &ids {
            let j = mgr.get(id).await.unwrap();
            if step == Step::Reconcile {
                // The hooks could not be re-adopted: the jobs fail, saying why.
                assert_eq!(j.state, JobState::Failed, "{step:?}");
                assert!(j.error.unwrap().contains("injected"));
            } else {
                assert_eq!(j.state, JobState::Running, "{step:?}: {:?}", j.error);
            }
        }
        let kept: &[Step] = match step {
            Step::Reconcile => &[Step::Reconcile],
            _ => &[],
        };
        if step != Step::Persist {
            check_owned(&world, &mgr, kept).await;
        }
    }
}

#[tokio::test]
async fn the_cap_counts_active_jobs_and_results_follow_the_id() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let mut first = None;
    for _ in 0..4 {
        let j = mgr.start(&req("placeholder", 0)).await.unwrap();
        first.get_or_insert(j.id.to_string());
    }
    assert!(matches!(
        mgr.start(&req("placeholder", 0)).await,
        Err(JobError::Capacity(4))
    ));
    let first = first.unwrap();
    mgr.stop(&first).await.unwrap();
    assert_eq!(
        mgr.results(&first, 0).await.unwrap().job.id.to_string(),
        first
    );
    // Recycle every finished slot: the old id is gone, not answered with
    // another job's counters.
    for _ in 0..64 {
        let j = mgr.start(&req("placeholder", 0)).await.unwrap();
        mgr.stop(&j.id.to_string()).await.unwrap();
    }
    assert!(matches!(
        mgr.results(&first, 0).await,
        Err(JobError::NotFound(_))
    ));
}
