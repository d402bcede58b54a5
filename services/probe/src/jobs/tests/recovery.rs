//! The job core after a restart and in its background passes: adoption
//! (with a fault at every step), interrupted placements, recorded filters,
//! the boot clock, orphaned sessions, lost hooks.

use std::sync::Arc;

use super::*;

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
    // Activation resumes in a task (serving does not wait for it).
    assert_eq!(
        settled(&mgr, &ids[1].to_string()).await.state,
        JobState::Running
    );
    assert_eq!(
        mgr.get(&ids[2].to_string()).await.unwrap().state,
        JobState::Running
    );
    check_owned(&world, &mgr).await;
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
        converge(&world, &mgr).await;
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
    }
}

/// A probe that died while a start was being placed (its record says
/// `resolving`, its SONiC session was written): the next probe ends the job
/// `failed`, saying why, and deletes the session.
#[tokio::test]
async fn a_start_interrupted_while_placing_ends_failed_and_gives_back() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let job = mgr.start(&req("sonic", 0)).await.unwrap();
    settled(&mgr, &job.id.to_string()).await;
    drop(mgr);
    {
        let mut w = world.world();
        let r = w.records.get_mut(&job.slot).unwrap();
        r.state = JobState::Resolving;
        r.attach_mode = None;
        w.hooks.clear();
    }
    let mgr = restart(&world).await;
    let j = mgr.get(&job.id.to_string()).await.unwrap();
    assert_eq!(j.state, JobState::Failed);
    assert!(j.error.unwrap().contains("being placed"));
    converge(&world, &mgr).await;
    assert!(world.world().sessions.is_empty());
}

/// The filter is recorded with the job's first record, so a job the last
/// probe had recorded but not yet activated keeps it.
#[tokio::test]
async fn a_recorded_filter_survives_a_restart_before_activation() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let mut r = req("direct", 0);
    r.filters = Some(crate::domain::FilterSpec {
        l4_dport: vec![443],
        ..Default::default()
    });
    let job = mgr.start(&r).await.unwrap();
    settled(&mgr, &job.id.to_string()).await;
    drop(mgr);
    world.world().records.get_mut(&job.slot).unwrap().state = JobState::Starting;
    let mgr = restart(&world).await;
    let j = settled(&mgr, &job.id.to_string()).await;
    assert_eq!(j.state, JobState::Running);
    assert_eq!(j.filter.l4_dport, vec![443]);
}

/// Expiry goes by the boot clock: an NTP step of the wall clock ends no
/// job early (nor late).
#[tokio::test]
async fn a_wall_clock_step_does_not_move_expiry() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let job = mgr.start(&req("direct", 5)).await.unwrap();
    let id = job.id.to_string();
    settled(&mgr, &id).await;
    world.step_wall(3600);
    mgr.expire_due().await;
    assert_eq!(mgr.get(&id).await.unwrap().state, JobState::Running);
    world.step_wall(-7200);
    world.advance(6);
    mgr.expire_due().await;
    assert_eq!(mgr.get(&id).await.unwrap().state, JobState::Expired);
}

/// A session of ours that no job owns (an older probe's, a record
/// overwritten since) is deleted at start-up; one a job owns is kept.
#[tokio::test]
async fn orphaned_sessions_are_swept_and_owned_ones_kept() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let job = mgr.start(&req("sonic", 0)).await.unwrap();
    settled(&mgr, &job.id.to_string()).await;
    drop(mgr);
    let orphan = uuid::Uuid::new_v4();
    world.world().sessions.insert(orphan);
    world.fail(Step::Delete); // redis not answering yet
    let mgr = restart(&world).await;
    mgr.retry_pending().await;
    assert!(world.world().sessions.contains(&orphan));
    world.heal();
    mgr.retry_pending().await;
    let sessions = world.world().sessions.clone();
    assert_eq!(sessions.into_iter().collect::<Vec<_>>(), vec![job.id]);
    check_owned(&world, &mgr).await;
}

/// A hook removed outside telegen-sonic (an operator's `tc qdisc del`) is
/// found by the periodic check, attached again, and its job says it missed
/// packets.
#[tokio::test]
async fn a_lost_hook_is_attached_again_and_the_job_says_so() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let job = mgr.start(&req("direct", 0)).await.unwrap();
    let id = job.id.to_string();
    settled(&mgr, &id).await;
    {
        let mut w = world.world();
        w.hooks.clear();
        w.lost.insert(PORT_IFINDEX);
    }
    mgr.retry_pending().await;
    let j = mgr.get(&id).await.unwrap();
    assert_eq!(j.state, JobState::Running);
    assert!(j.error.unwrap().contains("attached again"));
    assert!(world.world().hooks.contains_key(&PORT_IFINDEX));
    check_owned(&world, &mgr).await;
}
