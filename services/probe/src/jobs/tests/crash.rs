//! A probe SIGKILLed right after any effect of a start, a stop or an
//! expiry (the fakes of a dead probe do nothing more, and their async
//! steps never return, as a killed process's syscalls): a restarted core
//! over the same world converges, with nothing left unowned, and the job
//! ends in a state that follows from how far the dead probe got.

use std::future::Future;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Start,
    Stop,
    Expire,
}

/// Run `op` until it is done or the probe of generation `life` dies;
/// whether it died.
async fn until_death(world: &Shared, life: u64, op: impl Future<Output = ()>) -> bool {
    let dead = || world.world().generation != life;
    let death = async {
        while !dead() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        () = op => dead(),
        () = death => true,
    }
}

/// One crash: after `k` effects of `op` on a `mode` job. Whether the probe
/// died (false: `op` has fewer effects than `k`).
async fn crash_at(mode: &str, op: Op, k: u64) -> bool {
    let world = Shared::default();
    let mgr = fakes::manager(&world).await;
    // Seen through the first probe's eyes, to tell when it dies.
    let first = world.world().generation;
    let mut id = None;
    if op != Op::Start {
        let j = mgr.start(&req(mode, 5)).await.unwrap();
        assert_eq!(
            settled(&mgr, &j.id.to_string()).await.state,
            JobState::Running
        );
        id = Some(j.id.to_string());
    }
    world.crash_after(k);
    let dead = || world.world().generation != first;
    let died = {
        let (mgr, id, world) = (&mgr, &mut id, &world);
        let run = async move {
            match op {
                Op::Start => {
                    if let Ok(j) = mgr.start(&req(mode, 0)).await {
                        let jid = j.id.to_string();
                        settled(mgr, &jid).await;
                        *id = Some(jid);
                    }
                }
                Op::Stop => {
                    let _ = mgr.stop(id.as_ref().unwrap()).await;
                }
                Op::Expire => {
                    world.advance(6);
                    mgr.expire_due().await;
                }
            }
        };
        until_death(world, first, run).await
    };
    assert_eq!(died, dead());
    if !died {
        world.world().crash_after = None;
        return false;
    }
    if op == Op::Expire && world.world().boot_ns == 0 {
        world.advance(6);
    }
    // The restart: the dead probe's tasks stay stuck; a new core adopts.
    let mgr = fakes::manager(&world).await;
    for j in mgr.list().await {
        settled(&mgr, &j.id.to_string()).await;
    }
    converge(&world, &mgr).await;
    let jobs = mgr.list().await;
    let what = format!("{mode}/{op:?} crash after effect {k}");
    match op {
        // A start gets no further (no record, or failed) or runs.
        Op::Start => assert!(
            jobs.iter()
                .all(|j| matches!(j.state, JobState::Running | JobState::Failed)),
            "{what}: {jobs:?}"
        ),
        // A stop not yet recorded did not happen: the job runs on and a
        // second stop ends it; one recorded completes.
        Op::Stop => {
            let id = id.unwrap();
            let state = mgr.get(&id).await.unwrap().state;
            assert!(
                matches!(state, JobState::Running | JobState::Stopped),
                "{what}: {state:?}"
            );
            assert_eq!(
                mgr.stop(&id).await.unwrap().state,
                JobState::Stopped,
                "{what}"
            );
        }
        // Its time is up whatever the dead probe got to.
        Op::Expire => {
            mgr.expire_due().await;
            let state = mgr.get(&id.unwrap()).await.unwrap().state;
            assert_eq!(state, JobState::Expired, "{what}");
        }
    }
    converge(&world, &mgr).await;
    true
}

#[tokio::test]
async fn a_crash_after_any_effect_converges_after_a_restart() {
    let mut crashes = 0;
    for mode in ["direct", "erspan", "sonic", "sonic-acl"] {
        for op in [Op::Start, Op::Stop, Op::Expire] {
            let mut k = 1;
            while crash_at(mode, op, k).await {
                k += 1;
                crashes += 1;
            }
            assert!(k > 1, "{mode}/{op:?} has effects");
        }
    }
    // Every effect of every path was a crash point.
    assert!(crashes >= 30, "{crashes}");
}
