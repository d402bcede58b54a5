//! Chaos: under steady traffic, jobs in direct and sonic mode are started,
//! stopped and left to expire on one port while the probe is SIGKILLed at
//! random points of those calls and redis is SIGSTOPped around them, longer
//! than the probe's timeouts or not. Each round opens one of the windows
//! where a fault used to strand something (an expiry or a stop under a
//! wedged redis, a kill during a start waiting on redis, right after a
//! start, right after a stop), with seeded timings (CHAOS_SEED picks another
//! sequence, CHAOS_ROUNDS a longer run).
//! After everything heals and every job but the witness is stopped, the
//! state must converge: the witness (a direct job on a second port, started
//! first) counted exactly the packets sent, and netlink, tc and redis show
//! nothing that no live job owns.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use telegen_integration_tests::{
    frames,
    netns::{Netns, Veth},
    poll,
    probe::Probe,
    redis::Redis,
};
use telegen_proto::v1 as pb;

/// A small deterministic generator (xorshift), so a failing sequence can
/// be replayed with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SONiC's orchestration, played by a thread: every session the probe
/// writes to CONFIG_DB is marked active in STATE_DB (paused while redis is
/// stopped, so that it does not hang on it).
fn orchestrator(redis_sock: String, stop: Arc<AtomicBool>, paused: Arc<AtomicBool>) {
    let cli = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["-s", &redis_sock])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    while !stop.load(Ordering::Relaxed) {
        if !paused.load(Ordering::Relaxed) {
            for key in cli(&["-n", "4", "keys", "MIRROR_SESSION|tg-*"]).lines() {
                if let Some(name) = key.strip_prefix("MIRROR_SESSION|") {
                    let state = format!("MIRROR_SESSION_TABLE|{name}");
                    cli(&["-n", "6", "hset", &state, "status", "active"]);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn jobs_converge_after_random_kills_and_redis_stalls_under_traffic() {
    let seed = env_u64("CHAOS_SEED", 0x5eed_7e1e_9e11);
    let rounds = env_u64("CHAOS_ROUNDS", 10);
    let mut rng = Rng(seed | 1);
    eprintln!("chaos: seed {seed:#x}, {rounds} rounds (CHAOS_SEED, CHAOS_ROUNDS)");

    let redis = Redis::start().await;
    let sock = redis.url().trim_start_matches("unix://").to_string();
    let (ns, peer) = (Netns::new("tcp").unwrap(), Netns::new("tcq").unwrap());
    let witness_port = Veth::new(&ns, &peer).unwrap();
    let churn_port = Veth::new(&ns, &peer).unwrap();
    let url = redis.url();
    let env = [
        ("TELEGEN_MIRROR_MODE", "sonic"),
        ("TELEGEN_ERSPAN_LOCAL", "192.0.2.10"),
        ("TELEGEN_ERSPAN_REMOTE", "192.0.2.100"),
        ("TELEGEN_REDIS", url.as_str()),
        ("TELEGEN_MAX_JOBS", "12"),
        ("TELEGEN_SONIC_WAIT_SEC", "3"),
        ("TELEGEN_ATTACH_MODE", "tc"),
    ];
    let mut probe = Probe::start(&ns, &env).await.unwrap();
    let (stop_orch, paused) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let orch = {
        let (s, p) = (stop_orch.clone(), paused.clone());
        std::thread::spawn(move || orchestrator(sock, s, p))
    };

    let witness = probe
        .client()
        .start_job(pb::StartJobRequest {
            port: witness_port.port.clone(),
            direction: "ingress".into(),
            mirror_mode: "direct".into(),
            duration_sec: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    probe.wait_status(&witness.job_id, "running").await.unwrap();

    // Steady traffic into the witness's port: one frame every 5 ms.
    let (stop_traffic, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let traffic = {
        let (stop, sent) = (stop_traffic.clone(), sent.clone());
        let (path, ifname) = (peer.path(), witness_port.peer.clone());
        std::thread::spawn(move || {
            let frame = frames::ipv4_udp(100);
            while !stop.load(Ordering::Relaxed) {
                frames::send(&path, &ifname, std::slice::from_ref(&frame)).unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let mut ids: Vec<String> = Vec::new();
    let ms = Duration::from_millis;
    for round in 0..rounds {
        // Each round opens one of the windows where a fault used to strand
        // something, with seeded timings; the kind is drawn too.
        let kind = rng.next(5);
        let mode = if rng.next(2) == 0 { "sonic" } else { "direct" };
        let req = |duration: u32, mode: &str| pb::StartJobRequest {
            port: churn_port.port.clone(),
            direction: ["ingress", "egress", "both"][(round % 3) as usize].into(),
            mirror_mode: mode.into(),
            duration_sec: Some(duration),
            ..Default::default()
        };
        // A wedged redis that outlasts the probe's timeouts (2 s a reply,
        // 4 s a connection), or not.
        let long_stall = ms(5000 + rng.next(2500));
        let short_stall = ms(300 + rng.next(700));
        let kill_after = ms(rng.next(25));
        eprintln!("chaos: round {round}: kind {kind}, {mode}, kill after {kill_after:?}, stalls {short_stall:?}/{long_stall:?}");
        let stall = |on: bool| {
            paused.store(on, Ordering::Relaxed);
            redis.signal(if on { libc::SIGSTOP } else { libc::SIGCONT });
        };
        let mut c = probe.client();
        match kind {
            // A sonic job expires while redis is wedged.
            0 => {
                if let Ok(j) = c.start_job(req(1, "sonic")).await {
                    let id = j.into_inner().job_id;
                    let _ = probe.wait_status(&id, "running").await;
                    stall(true);
                    tokio::time::sleep(long_stall).await;
                    stall(false);
                    ids.push(id);
                }
            }
            // The probe is killed while a start waits on a wedged redis.
            1 => {
                stall(true);
                let r = req(0, "sonic");
                let call = tokio::spawn(async move { c.start_job(r).await });
                tokio::time::sleep(short_stall).await;
                probe.kill_process();
                let _ = call.await;
                stall(false);
                probe.spawn(&[]).await.unwrap();
            }
            // The probe is killed just after a start is asked for.
            2 => {
                let r = req(0, mode);
                let call = tokio::spawn(async move { c.start_job(r).await });
                tokio::time::sleep(kill_after).await;
                probe.kill_process();
                if let Ok(Ok(j)) = call.await {
                    ids.push(j.into_inner().job_id);
                }
                probe.spawn(&[]).await.unwrap();
            }
            // The probe is killed just after a stop is asked for.
            3 => {
                if let Ok(j) = c.start_job(req(0, mode)).await {
                    let id = j.into_inner().job_id;
                    let _ = probe.wait_status(&id, "running").await;
                    let stop = pb::StopJobRequest { job_id: id.clone() };
                    let call = tokio::spawn(async move { c.stop_job(stop).await });
                    tokio::time::sleep(kill_after).await;
                    probe.kill_process();
                    let _ = call.await;
                    probe.spawn(&[]).await.unwrap();
                    ids.push(id);
                }
            }
            // A stop while redis is wedged, with a client that gives up.
            _ => {
                if let Ok(j) = c.start_job(req(0, mode)).await {
                    let id = j.into_inner().job_id;
                    let _ = probe.wait_status(&id, "running").await;
                    stall(true);
                    let stop = pb::StopJobRequest { job_id: id.clone() };
                    let _ = tokio::time::timeout(short_stall, c.stop_job(stop)).await;
                    tokio::time::sleep(long_stall).await;
                    stall(false);
                    ids.push(id);
                }
            }
        }
    }

    // Heal, then stop everything but the witness; all must converge.
    let list = |probe: &Probe| {
        let mut c = probe.client();
        async move {
            c.list_jobs(pb::ListJobsRequest::default())
                .await
                .map(|r| r.into_inner().jobs)
                .unwrap_or_default()
        }
    };
    for j in list(&probe).await {
        if j.job_id != witness.job_id {
            let _ = probe
                .client()
                .stop_job(pb::StopJobRequest { job_id: j.job_id })
                .await;
        }
    }
    let jobs = poll(
        "every job but the witness to end",
        Duration::from_secs(40),
        || async {
            let jobs = list(&probe).await;
            jobs.iter()
                .all(|j| {
                    j.job_id == witness.job_id
                        || matches!(j.status.as_str(), "stopped" | "expired" | "failed")
                })
                .then_some(jobs)
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; jobs: {:#?}",
            futures::executor::block_on(list(&probe))
        )
    });
    eprintln!(
        "chaos: {} jobs recorded, {} started by the test",
        jobs.len(),
        ids.len()
    );
    assert!(jobs.iter().all(|j| j.pending.is_empty()), "{jobs:#?}");

    stop_traffic.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    let r = probe.results_at(&witness.job_id, sent).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r2 = probe.results(&witness.job_id).await.unwrap();
    assert_eq!(
        (r.packets_total, r2.packets_total),
        (sent, sent),
        "the witness counted every packet sent, once"
    );

    stop_orch.store(true, Ordering::Relaxed);
    orch.join().unwrap();
    assert!(
        redis.keys(4, "MIRROR_SESSION|*").is_empty(),
        "no session without a live job: {:?}",
        redis.keys(4, "MIRROR_SESSION|*")
    );
    for hook in ["ingress", "egress"] {
        let churn = ns
            .exec("tc", &["filter", "show", "dev", &churn_port.port, hook])
            .unwrap_or_default();
        assert!(!churn.contains("telegen"), "churn port {hook}: {churn}");
    }
    let w = ns
        .exec(
            "tc",
            &["filter", "show", "dev", &witness_port.port, "ingress"],
        )
        .unwrap();
    assert_eq!(
        w.lines().filter(|l| l.contains("telegen_ingress")).count(),
        1,
        "exactly one classifier on the witness's hook: {w}"
    );
    let links = ns.exec("ip", &["-o", "link", "show"]).unwrap();
    assert!(
        !links.contains("erspan"),
        "no netdev without a job: {links}"
    );
    probe.stop_job(&witness.job_id).await.unwrap();
}
