//! The job core against fakes (fakes.rs): start, stop, expiry and adoption,
//! each with a fault injected at every step of every port, and after each
//! the invariant that nothing is left without an owner except what the
//! failing step itself kept (which the job's error names). Restarts,
//! sweeps and lost hooks: recovery.rs.

use std::time::Duration;

use super::fakes::{self, Shared, Step, ALL_STEPS, NETDEV_IFINDEX, PORT_IFINDEX};
use super::{JobError, JobManager};
use crate::domain::{Job, JobState, MirrorMode, MirrorScope, StartRequest};

/// `sonic-acl`: mode sonic with a filter the switch's ACL rules carry.
const MODES: [&str; 5] = ["direct", "erspan", "sonic", "sonic-acl", "placeholder"];

fn req(mode: &str, duration: u32) -> StartRequest {
    let acl = mode == "sonic-acl";
    StartRequest {
        port: "Ethernet0".into(),
        direction: "ingress".into(),
        duration_sec: Some(duration),
        mirror_mode: if acl { "sonic" } else { mode }.into(),
        filters: acl.then(|| crate::domain::FilterSpec {
            dscp: vec![46],
            ..Default::default()
        }),
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

/// Nothing without an owner: every hook, session and netdev belongs to a
/// job that is not final (a `stopping` one still owns what it gives back),
/// every running job has what it needs, and the pinned records say what
/// the core says.
async fn check_owned(world: &Shared, mgr: &JobManager) {
    let jobs = mgr.list().await;
    let w = world.world();
    for j in &jobs {
        let mut rec = w.records.get(&j.slot).cloned();
        // `pending` is the core's word on a retry, and the boot-clock
        // deadline is derived at adoption: neither is in the record.
        if let Some(r) = rec.as_mut() {
            r.pending = j.pending.clone();
            r.expires_boot_ns = j.expires_boot_ns;
        }
        assert_eq!(rec.as_ref(), Some(j), "record of {}", j.id);
    }
    let owners: Vec<&Job> = jobs.iter().filter(|j| !j.state.is_final()).collect();
    for (ifindex, want) in &w.hooks {
        for slot in want.slots.iter().flatten() {
            assert!(
                owners
                    .iter()
                    .any(|j| j.slot == u32::from(*slot) && j.ifindex == *ifindex),
                "hook slot {slot} on {ifindex} has no owner"
            );
        }
    }
    for j in jobs.iter().filter(|j| j.state == JobState::Running) {
        assert_eq!(
            w.hooks.contains_key(&j.ifindex),
            j.mirror_mode.attaches(),
            "hook of {}",
            j.id
        );
    }
    for s in w.acls.keys() {
        assert!(
            owners
                .iter()
                .any(|j| j.id == *s && j.mirror_scope == Some(MirrorScope::Acl(String::new()))),
            "ACL of {s} has no owner"
        );
    }
    for s in &w.sessions {
        assert!(
            owners
                .iter()
                .any(|j| j.id == *s && j.mirror_mode == MirrorMode::Sonic),
            "session {s} has no owner"
        );
    }
    if w.netdev {
        assert!(
            owners
                .iter()
                .any(|j| j.mirror_mode.uses_erspan_netdev() && j.ifindex == NETDEV_IFINDEX),
            "the netdev has no owner"
        );
    }
}

/// Heal every fault, retry what is pending: everything converges.
async fn converge(world: &Shared, mgr: &JobManager) {
    world.heal();
    mgr.retry_pending().await;
    for j in mgr.list().await {
        assert_ne!(j.state, JobState::Stopping, "{}: {:?}", j.id, j.pending);
        assert_eq!(j.pending, None);
    }
    check_owned(world, mgr).await;
}

#[tokio::test]
async fn every_mode_starts_runs_and_stops_clean() {
    for mode in MODES {
        let world = Shared::default();
        let mgr = fakes::manager(&world).await;
        let job = mgr.start(&req(mode, 0)).await.unwrap();
        let job = settled(&mgr, &job.id.to_string()).await;
        assert_eq!(job.state, JobState::Running, "{mode}: {:?}", job.error);
        assert_eq!(job.mirror_mode.as_str(), mode.trim_end_matches("-acl"));
        if mode == "sonic-acl" {
            assert_eq!(job.mirror_scope, Some(MirrorScope::Acl(String::new())));
            // DSCP 46 of either family: a MIRROR and a MIRRORV6 rule.
            assert_eq!(world.world().acls.get(&job.id), Some(&2));
        }
        check_owned(&world, &mgr).await;
        let stopped = mgr.stop(&job.id.to_string()).await.unwrap();
        assert_eq!((stopped.state, stopped.error), (JobState::Stopped, None));
        check_owned(&world, &mgr).await;
        let w = world.world();
        assert!(
            w.hooks.is_empty() && w.sessions.is_empty() && w.acls.is_empty() && !w.netdev,
            "{mode}: {w:?}"
        );
    }
}

#[tokio::test]
async fn a_fault_at_any_step_of_a_start_leaves_nothing_unowned() {
    for mode in ["direct", "erspan", "sonic", "sonic-acl"] {
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
                                | (JobError::Unavailable(_), Step::WriteAcl)
                        ),
                        "{mode}/{step:?}: {e}"
                    );
                    assert!(mgr.list().await.is_empty());
                    None
                }
            };
            if step != Step::Persist {
                check_owned(&world, &mgr).await;
            }
            converge(&world, &mgr).await;
            let Some(job) = job else { continue };
            let job = mgr.get(&job.id.to_string()).await.unwrap();
            let mode = if mode == "sonic-acl" { "sonic" } else { mode };
            match (mode, step) {
                (_, Step::Prepare | Step::Reconcile) | ("sonic", Step::WaitActive) => {
                    assert_eq!(job.state, JobState::Failed, "{mode}/{step:?}");
                    let err = job.error.unwrap_or_default();
                    assert!(err.contains("injected"), "{err}");
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
    let want = if expire {
        JobState::Expired
    } else {
        JobState::Stopped
    };
    // A step that gives something back failed: the job says what is
    // pending, still owns it, and is retried.
    let gives_back = match step {
        // Recording the end is part of the end.
        Step::Persist => true,
        Step::Reconcile => mode != "placeholder",
        Step::Delete => mode.starts_with("sonic"),
        Step::Release => mode == "erspan" || mode.starts_with("sonic"),
        _ => false,
    };
    if gives_back {
        assert_eq!(ended.state, JobState::Stopping, "{mode}/{step:?}");
        let pending = ended.pending.clone().unwrap_or_default();
        assert!(pending.contains("injected"), "{mode}/{step:?}: {pending:?}");
        if step != Step::Persist {
            check_owned(&world, &mgr).await;
        }
    } else {
        assert_eq!(
            (ended.state, &ended.pending),
            (want, &None),
            "{mode}/{step:?}"
        );
    }
    converge(&world, &mgr).await;
    let end = mgr.get(&id).await.unwrap();
    assert_eq!((end.state, end.error), (want, None), "{mode}/{step:?}");
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
    check_owned(&world, &mgr).await;
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

#[tokio::test]
async fn flow_tables_are_capped_in_total_while_jobs_run() {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    let flows = StartRequest {
        result_detail: "flows".into(),
        ..req("direct", 0)
    };
    // The fakes' cap: two tables of 1024.
    let a = mgr.start(&flows).await.unwrap();
    let b = mgr.start(&flows).await.unwrap();
    let refused = mgr.start(&flows).await.unwrap_err();
    assert!(
        matches!(
            refused,
            JobError::FlowCapacity {
                total: 3072,
                max: 2048,
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("TELEGEN_FLOW_ENTRIES_MAX"));
    assert_eq!(mgr.list().await.len(), 2, "a refused start records nothing");
    // Jobs without a table are not counted against it.
    mgr.start(&req("direct", 0)).await.unwrap();
    // An ended job's table no longer counts.
    settled(&mgr, &a.id.to_string()).await;
    mgr.stop(&a.id.to_string()).await.unwrap();
    mgr.start(&flows).await.unwrap();
    assert_eq!(b.flow_table_size, 1024);
}

mod capture;
mod crash;
mod recovery;
