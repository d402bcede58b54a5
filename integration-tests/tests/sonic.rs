//! Mirror mode `sonic` against a real redis-server started by each test (on
//! a unix socket in a temp dir, no persistence). The test plays SONiC's
//! orchestration: it waits for the probe's CONFIG_DB session and sets the
//! STATE_DB status. On a kernel without ip_gre (these machines) the erspan
//! netdev cannot be created, so the job counts on the port itself (the
//! classifier decapsulates ERSPAN) and says so in fallback_reason; on a
//! kernel with ip_gre it counts on erspan0.

use std::{process::Command, time::Duration};

use telegen_integration_tests::{
    netns::{Netns, Veth},
    poll,
    probe::{wait_job_where, Probe},
    redis::Redis,
    sonic::{session, session_fields, sonic_probe, LOCAL, REMOTE},
};
use telegen_proto::v1 as pb;
use tonic::Code;

fn sorted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// An operator's own session, which the probe must never touch.
fn seed_operator_session(redis: &Redis) -> Vec<(String, String)> {
    redis.cli(
        4,
        &[
            "hset",
            "MIRROR_SESSION|operator-1",
            "type",
            "ERSPAN",
            "src_ip",
            "10.1.1.1",
            "dst_ip",
            "10.2.2.2",
            "gre_type",
            "0x88be",
            "src_port",
            "Ethernet0",
        ],
    );
    redis.cli(
        6,
        &[
            "hset",
            "MIRROR_SESSION_TABLE|operator-1",
            "status",
            "active",
        ],
    );
    redis.hgetall(4, "MIRROR_SESSION|operator-1")
}

fn req(port: &str, direction: &str, duration_sec: u32) -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: port.into(),
        direction: direction.into(),
        duration_sec: (duration_sec > 0).then_some(duration_sec),
        ..Default::default()
    }
}

/// The test as orchestration: wait for the probe's session, mark it active.
async fn orchestrate(redis: &Redis, job_id: &str) -> Vec<(String, String)> {
    let key = format!("MIRROR_SESSION|{}", session(job_id));
    let fields = poll(
        "the probe's CONFIG_DB session",
        Duration::from_secs(10),
        || {
            let f = redis.hgetall(4, &key);
            async move { (!f.is_empty()).then_some(f) }
        },
    )
    .await
    .unwrap();
    redis.cli(
        6,
        &[
            "hset",
            &format!("MIRROR_SESSION_TABLE|{}", session(job_id)),
            "status",
            "active",
        ],
    );
    fields
}

fn links(ns: &Netns) -> String {
    ns.exec("ip", &["-o", "link", "show"]).unwrap()
}

/// The session has exactly the documented fields; the job runs once
/// STATE_DB says active; stop deletes the key; the operator's session is
/// untouched throughout.
#[tokio::test]
async fn sonic_session_written_activated_and_deleted() {
    let redis = Redis::start().await;
    let operator = seed_operator_session(&redis);
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[("TELEGEN_ERSPAN_TOS", "32")]).await;
    let job = probe
        .client()
        .start_job(req(&veth.port, "both", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.mirror_mode, "sonic", "{}", job.fallback_reason);
    assert_eq!(job.status, "starting");
    let fields = orchestrate(&redis, &job.job_id).await;
    assert_eq!(fields, session_fields(Some((&veth.port, "BOTH"))));
    let job = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(job.mirror_mode, "sonic");
    assert!(!job.attach_mode.is_empty(), "the classifier is attached");
    if links(&ns).contains("erspan0") {
        assert_eq!(job.interface, "erspan0");
        assert!(job.fallback_reason.is_empty(), "{}", job.fallback_reason);
    } else {
        // No ip_gre: the session stays useful, the classifier decapsulates.
        assert_eq!(job.interface, veth.port);
        let why = &job.fallback_reason;
        assert!(
            why.starts_with("erspan netdev erspan0 could not be created"),
            "{why}"
        );
        assert!(
            why.contains(&format!("counting on {} itself", veth.port)),
            "{why}"
        );
    }
    let stopped = probe.stop_job(&job.job_id).await.unwrap();
    assert_eq!(stopped.status, "stopped");
    assert!(stopped.error.is_empty(), "{}", stopped.error);
    assert_eq!(
        redis.keys(4, "MIRROR_SESSION|*"),
        vec!["MIRROR_SESSION|operator-1".to_string()]
    );
    assert_eq!(redis.hgetall(4, "MIRROR_SESSION|operator-1"), operator);
    assert_eq!(
        redis.hgetall(6, "MIRROR_SESSION_TABLE|operator-1"),
        sorted(&[("status", "active")])
    );
    assert!(!links(&ns).contains("erspan0"), "no netdev left");
}

/// Direction maps to RX / TX; an expired job's session is deleted too.
#[tokio::test]
async fn sonic_direction_and_expiry() {
    let redis = Redis::start().await;
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[]).await;
    for (direction, want) in [("ingress", "RX"), ("egress", "TX")] {
        let job = probe
            .client()
            .start_job(req(&veth.port, direction, 1))
            .await
            .unwrap()
            .into_inner();
        let fields = orchestrate(&redis, &job.job_id).await;
        assert!(
            fields.contains(&("direction".to_string(), want.to_string())),
            "{fields:?}"
        );
        let running = probe.wait_status(&job.job_id, "running").await;
        if running.is_ok_and(|j| j.interface == veth.port) {
            // The mirrored copies arrive on the port's ingress whatever the
            // session mirrors: the classifier counts there, not on egress.
            let snap = probe.snapshot().await.unwrap();
            let hooks: Vec<&str> = snap
                .interfaces
                .iter()
                .filter(|i| i.interface == veth.port)
                .map(|i| i.direction.as_str())
                .collect();
            assert_eq!(hooks, ["ingress"], "{direction}");
        }
        probe.wait_status(&job.job_id, "expired").await.unwrap();
        assert!(
            redis.keys(4, "MIRROR_SESSION|*").is_empty(),
            "expiry deletes the session"
        );
    }
}

/// STATE_DB never says active: the job fails saying `inactive`, and its
/// session is removed.
#[tokio::test]
async fn sonic_session_never_active_fails_and_cleans_up() {
    let redis = Redis::start().await;
    let operator = seed_operator_session(&redis);
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[("TELEGEN_SONIC_WAIT_SEC", "1")]).await;
    let job = probe
        .client()
        .start_job(req(&veth.port, "ingress", 0))
        .await
        .unwrap()
        .into_inner();
    let key = format!("MIRROR_SESSION|{}", session(&job.job_id));
    let job = probe.wait_status(&job.job_id, "failed").await.unwrap();
    assert!(
        job.error.starts_with("SONiC mirror session inactive:"),
        "{}",
        job.error
    );
    assert!(job.error.contains("status is absent"), "{}", job.error);
    assert!(redis.hgetall(4, &key).is_empty(), "session removed");
    assert_eq!(redis.hgetall(4, "MIRROR_SESSION|operator-1"), operator);
    assert!(!links(&ns).contains("erspan0"));
    let snap = probe.snapshot().await.unwrap();
    assert!(
        snap.interfaces.iter().all(|i| i.interface != veth.port),
        "nothing attached: {:?}",
        snap.interfaces
    );
}

/// Redis down (killed) or wedged (SIGSTOP): StartJob fails UNAVAILABLE and
/// leaves no session and no netdev behind once redis answers (the start's
/// record owns what it may have written until then); nothing of the
/// operator's changes.
#[tokio::test]
async fn sonic_redis_down_or_slow_is_unavailable_and_leaves_nothing() {
    let mut redis = Redis::start().await;
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[]).await;

    // Wedged: the socket accepts, nothing answers.
    let operator = seed_operator_session(&redis);
    redis.signal(libc::SIGSTOP);
    let t0 = std::time::Instant::now();
    let err = probe
        .client()
        .start_job(req(&veth.port, "ingress", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("unavailable"), "{}", err.message());
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    redis.signal(libc::SIGCONT);
    assert_eq!(
        redis.keys(4, "MIRROR_SESSION|*"),
        vec!["MIRROR_SESSION|operator-1".to_string()]
    );
    assert_eq!(redis.hgetall(4, "MIRROR_SESSION|operator-1"), operator);
    assert!(!links(&ns).contains("erspan0"));

    // Down.
    redis.kill();
    let err = probe
        .client()
        .start_job(req(&veth.port, "ingress", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains(&redis.url()), "{}", err.message());
    assert!(!links(&ns).contains("erspan0"));
    // A write that timed out may have landed: the start's record keeps
    // owning the session it may have made, as a failed job (stopping while
    // the delete waits for redis), never a running one.
    let list = |probe: &Probe| {
        let mut c = probe.client();
        async move {
            c.list_jobs(pb::ListJobsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .jobs
        }
    };
    for j in list(&probe).await {
        assert!(
            (j.status == "failed" || j.status == "stopping") && j.error.contains("unavailable"),
            "{j:?}"
        );
    }
    redis.spawn().await;
    poll(
        "every abandoned start to end failed once redis answers",
        Duration::from_secs(20),
        || async {
            let jobs = list(&probe).await;
            jobs.iter().all(|j| j.status == "failed").then_some(())
        },
    )
    .await
    .unwrap();
    assert!(redis.keys(4, "*").is_empty(), "no leftover key");

    // Back up: the same probe works again.
    let job = probe
        .client()
        .start_job(req(&veth.port, "ingress", 0))
        .await
        .unwrap()
        .into_inner();
    orchestrate(&redis, &job.job_id).await;
    probe.wait_status(&job.job_id, "running").await.unwrap();
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(redis.keys(4, "*").is_empty());
}

/// TELEGEN_REDIS is validated at start-up, naming the variable.
#[tokio::test]
async fn sonic_bad_redis_address_stops_the_probe() {
    let out = Command::new(telegen_integration_tests::probe::bin_dir().join("telegen-probe"))
        .env("TELEGEN_REDIS", "tcp://localhost:6379")
        .env("TELEGEN_PROBE_ADDR", "unix:/nonexistent/probe.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TELEGEN_REDIS"), "{stderr}");
}

/// Over REST: redis down answers 503 (the gateway's mapping of UNAVAILABLE).
#[tokio::test]
async fn sonic_redis_down_is_503_over_rest() {
    let mut redis = Redis::start().await;
    let url = redis.url();
    let stack = telegen_integration_tests::gateway::Stack::start(
        &[
            ("TELEGEN_MIRROR_MODE", "sonic"),
            ("TELEGEN_ERSPAN_LOCAL", LOCAL),
            ("TELEGEN_ERSPAN_REMOTE", REMOTE),
            ("TELEGEN_REDIS", url.as_str()),
        ],
        &[],
    )
    .await
    .unwrap();
    redis.kill();
    let body = format!(r#"{{"port":"{}","direction":"ingress"}}"#, stack.veth.port);
    let gw = &stack.gw;
    let r = gw.post_json("/jobs/start", &body);
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(!links(&stack.ns).contains("erspan0"));
    redis.spawn().await;
    assert!(redis.keys(4, "*").is_empty(), "no leftover key");
}

/// A probe restart adopts the running sonic job; its stop still deletes
/// the session (ownership survives in the pinned jobs map).
#[tokio::test]
async fn sonic_session_survives_a_probe_restart_and_is_deleted_at_stop() {
    let redis = Redis::start().await;
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let mut probe = sonic_probe(&ns, &redis, &[]).await;
    let job = probe
        .client()
        .start_job(req(&veth.port, "ingress", 0))
        .await
        .unwrap()
        .into_inner();
    orchestrate(&redis, &job.job_id).await;
    probe.wait_status(&job.job_id, "running").await.unwrap();
    probe.kill_process();
    probe.spawn(&[]).await.unwrap();
    let key = format!("MIRROR_SESSION|{}", session(&job.job_id));
    assert!(
        !redis.hgetall(4, &key).is_empty(),
        "kept across the restart"
    );
    let adopted = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(adopted.mirror_mode, "sonic");
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(redis.hgetall(4, &key).is_empty(), "deleted at stop");
}

/// Redis wedged (SIGSTOP) as a sonic job expires: the job does not end
/// while its session is still in CONFIG_DB; it stays `stopping`, says what
/// is pending and why, and once redis answers again the retry deletes the
/// session and the job ends `expired`. (Before, the job read `expired` and
/// the switch kept mirroring the port forever.)
#[tokio::test]
async fn a_session_redis_cannot_delete_keeps_its_job_stopping_until_it_is_gone() {
    let redis = Redis::start().await;
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[]).await;
    // Time enough for the redis to be wedged before the job expires, even
    // on a loaded machine (a 3 s job once expired before it was).
    let job = probe
        .client()
        .start_job(req(&veth.port, "ingress", 10))
        .await
        .unwrap()
        .into_inner();
    orchestrate(&redis, &job.job_id).await;
    probe.wait_status(&job.job_id, "running").await.unwrap();
    redis.signal(libc::SIGSTOP);
    let stopping = wait_job_where(
        &probe.client(),
        &job.job_id,
        "to report its pending delete",
        Duration::from_secs(30),
        |j| j.status == "stopping" && !j.pending.is_empty(),
    )
    .await
    .unwrap();
    assert!(
        stopping.pending.contains("SONiC mirror session"),
        "{}",
        stopping.pending
    );
    // Still stopping while redis stays wedged (several retries).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut c = probe.client();
    let still = c
        .get_job(pb::GetJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.status, "stopping", "{still:?}");
    redis.signal(libc::SIGCONT);
    let ended = probe.wait_status(&job.job_id, "expired").await.unwrap();
    assert!(ended.pending.is_empty(), "{ended:?}");
    assert!(
        redis.keys(4, "MIRROR_SESSION|*").is_empty(),
        "the session is gone"
    );
    assert!(!links(&ns).contains("erspan0"), "{}", links(&ns));
}

/// A sonic job waits for STATE_DB before it counts; a probe restart in that
/// window must not lose its filter (it is recorded with the job, not at
/// activation): the adopted job echoes it and counts only what matches.
#[tokio::test]
async fn a_starting_jobs_filter_survives_a_probe_restart() {
    let redis = Redis::start().await;
    let (ns, peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let mut probe = sonic_probe(&ns, &redis, &[("TELEGEN_SONIC_WAIT_SEC", "60")]).await;
    let mut r = req(&veth.port, "ingress", 0);
    r.filters = Some(pb::Filters {
        l4_dport: vec![443],
        ..Default::default()
    });
    let job = probe.client().start_job(r).await.unwrap().into_inner();
    assert_eq!(job.status, "starting");
    probe.kill_process();
    probe.spawn(&[]).await.unwrap();
    orchestrate(&redis, &job.job_id).await;
    let running = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(
        running.filters.map(|f| f.l4_dport),
        Some(vec![443]),
        "the filter was lost"
    );
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(redis.keys(4, "MIRROR_SESSION|*").is_empty());
}

/// At start-up the probe deletes the sessions named like its own
/// (`MIRROR_SESSION|tg-<uuid in base32>`, and older probes'
/// `MIRROR_SESSION|telegen-<uuid>`) that no job of its owns: left by a
/// probe that lost its records (here: a fresh pin directory). The
/// operator's sessions, and keys merely resembling ours, stay.
#[tokio::test]
async fn orphaned_telegen_sessions_are_swept_at_start_up() {
    let redis = Redis::start().await;
    let operator = seed_operator_session(&redis);
    let orphans = [
        format!(
            "MIRROR_SESSION|{}",
            session(&uuid::Uuid::new_v4().to_string())
        ),
        format!("MIRROR_SESSION|telegen-{}", uuid::Uuid::new_v4()),
    ];
    for orphan in &orphans {
        redis.cli(
            4,
            &["hset", orphan, "type", "ERSPAN", "src_port", "Ethernet0"],
        );
    }
    redis.cli(4, &["hset", "MIRROR_SESSION|tg-notours", "type", "ERSPAN"]);
    redis.cli(
        4,
        &[
            "hset",
            "MIRROR_SESSION|telegen-not-a-uuid",
            "type",
            "ERSPAN",
        ],
    );
    let (ns, _peer) = (Netns::new("tsp").unwrap(), Netns::new("tsq").unwrap());
    let _probe = sonic_probe(&ns, &redis, &[]).await;
    poll(
        "the orphaned sessions to go",
        Duration::from_secs(20),
        || {
            let gone = orphans.iter().all(|o| redis.keys(4, o).is_empty());
            async move { gone.then_some(()) }
        },
    )
    .await
    .unwrap();
    let mut left = redis.keys(4, "MIRROR_SESSION|*");
    left.sort();
    assert_eq!(
        left,
        vec![
            "MIRROR_SESSION|operator-1".to_string(),
            "MIRROR_SESSION|telegen-not-a-uuid".to_string(),
            "MIRROR_SESSION|tg-notours".to_string(),
        ]
    );
    assert_eq!(redis.hgetall(4, "MIRROR_SESSION|operator-1"), operator);
}

/// What ACL mirroring (issue 17) reads of a switch, from a real redis laid
/// out as SONiC's orchagent and `config` write it: the capabilities (in
/// STATE_DB's 202111+ place, and in the older one) and CONFIG_DB's ACL
/// tables; a plan then names the operator's EVERFLOW, which holds the one
/// MIRROR table allowed at ingress.
#[tokio::test]
async fn acl_capabilities_and_tables_are_read_as_sonic_writes_them() {
    use telegen_probe::domain::acl::{self, Platform};
    use telegen_probe::mirror::sonic::{Sonic, SonicSettings};
    let redis = Redis::start().await;
    let url = redis.url();
    let settings =
        SonicSettings::from_vars(|k| (k == "TELEGEN_REDIS").then(|| url.clone())).unwrap();
    let sonic = Sonic { settings };
    let none = Platform {
        mirror_v6: false,
        egress_mirror: false,
    };
    assert_eq!(
        sonic.acl_platform().await.unwrap(),
        none,
        "nothing reported"
    );
    // Before 202111: the action lists in SWITCH_CAPABILITY|switch.
    redis.cli(
        6,
        &[
            "hset",
            "SWITCH_CAPABILITY|switch",
            "MIRROR",
            "true",
            "MIRRORV6",
            "false",
            "ACL_ACTIONS|EGRESS",
            "PACKET_ACTION,MIRROR_EGRESS_ACTION",
        ],
    );
    let p = sonic.acl_platform().await.unwrap();
    assert_eq!((p.mirror_v6, p.egress_mirror), (false, true));
    // From 202111: ACL_STAGE_CAPABILITY_TABLE decides.
    redis.cli(6, &["hset", "SWITCH_CAPABILITY|switch", "MIRRORV6", "true"]);
    redis.cli(
        6,
        &[
            "hset",
            "ACL_STAGE_CAPABILITY_TABLE|EGRESS",
            "action_list",
            "PACKET_ACTION",
            "is_action_list_mandatory",
            "false",
        ],
    );
    let p = sonic.acl_platform().await.unwrap();
    assert_eq!((p.mirror_v6, p.egress_mirror), (true, false));

    redis.cli(
        4,
        &[
            "hset",
            "ACL_TABLE|EVERFLOW",
            "type",
            "MIRROR",
            "policy_desc",
            "EVERFLOW",
            "ports@",
            "Ethernet0,Ethernet4",
            "stage",
            "ingress",
        ],
    );
    redis.cli(
        4,
        &[
            "hset",
            "ACL_TABLE|DATAACL",
            "type",
            "L3",
            "policy_desc",
            "DATAACL",
            "ports@",
            "PortChannel0001",
        ],
    );
    let tables = sonic.acl_tables().await.unwrap();
    let t = |n: &str, k: &str, s: &str| (n.to_string(), k.to_string(), s.to_string());
    assert_eq!(
        tables,
        vec![
            t("DATAACL", "L3", "ingress"),
            t("EVERFLOW", "MIRROR", "ingress")
        ]
    );
    let filter = telegen_probe::domain::filter::parse(&telegen_probe::domain::FilterSpec {
        dscp: vec![46],
        ..Default::default()
    })
    .unwrap();
    let id = uuid::Uuid::new_v4();
    let plan = acl::plan(
        id,
        "Ethernet16",
        telegen_probe::domain::Direction::Ingress,
        &filter,
        "tg-x",
        p,
        acl::DEFAULT_MAX_RULES,
    )
    .unwrap();
    let why = acl::conflict(&plan, &tables).expect("EVERFLOW is in the way");
    assert!(why.0.ends_with("it is EVERFLOW"), "{}", why.0);
}

/// A job's ACL tables and rules in a real redis: written with exactly the
/// keys and fields SONiC's tools write, waited for as orchagent reports
/// them (or told apart when the release does not), found by the sweep,
/// and deleted, ours only: the operator's EVERFLOW rules stay.
#[tokio::test]
async fn acl_tables_and_rules_are_written_waited_for_and_deleted_ours_only() {
    use telegen_probe::domain::acl::AclStatus;
    use telegen_probe::domain::acl::{self, Platform};
    use telegen_probe::mirror::sonic::{Sonic, SonicSettings};
    let redis = Redis::start().await;
    let url = redis.url();
    let settings = SonicSettings::from_vars(|k| match k {
        "TELEGEN_REDIS" => Some(url.clone()),
        "TELEGEN_SONIC_WAIT_SEC" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let sonic = Sonic { settings };
    redis.cli(
        4,
        &[
            "hset",
            "ACL_TABLE|EVERFLOW_EGRESS",
            "type",
            "MIRROR",
            "stage",
            "egress",
        ],
    );
    redis.cli(
        4,
        &[
            "hset",
            "ACL_RULE|EVERFLOW_EGRESS|RULE_1",
            "PRIORITY",
            "9999",
            "DSCP",
            "8",
            "MIRROR_EGRESS_ACTION",
            "operator-1",
        ],
    );
    let filter = telegen_probe::domain::filter::parse(&telegen_probe::domain::FilterSpec {
        dscp: vec![46],
        dst_cidr: vec!["192.0.2.0/24".into()],
        ..Default::default()
    })
    .unwrap();
    let id = uuid::Uuid::new_v4();
    let all = Platform {
        mirror_v6: true,
        egress_mirror: true,
    };
    let plan = acl::plan(
        id,
        "Ethernet16",
        telegen_probe::domain::Direction::Ingress,
        &filter,
        "tg-session",
        all,
        acl::DEFAULT_MAX_RULES,
    )
    .unwrap();
    sonic.write_acl(id, &plan).await.unwrap();
    let table = format!("TELEGEN_{}_IN", id.simple());
    let mut fields = redis.hgetall(4, &format!("ACL_TABLE|{table}"));
    fields.sort();
    let f = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        fields,
        vec![
            f("policy_desc", &format!("telegen-sonic job {id}")),
            f("ports@", "Ethernet16"),
            f("stage", "ingress"),
            f("type", "MIRROR"),
        ]
    );
    let mut rule = redis.hgetall(4, &format!("ACL_RULE|{table}|RULE_1"));
    rule.sort();
    assert_eq!(
        rule,
        vec![
            f("DSCP", "46"),
            f("DST_IP", "192.0.2.0/24"),
            f("MIRROR_INGRESS_ACTION", "tg-session"),
            f("PRIORITY", "10000"),
        ]
    );
    assert_eq!(
        redis.keys(4, "ACL_*TELEGEN_*").len(),
        2,
        "one table, one rule: v4 only"
    );
    assert_eq!(sonic.acl_jobs().await.unwrap(), vec![id]);

    // Orchagent says nothing (a release before 202211): told apart.
    assert_eq!(sonic.wait_acl(&plan).await.unwrap(), AclStatus::NotReported);
    // It reports ours inactive: an error naming the key.
    redis.cli(
        6,
        &[
            "hset",
            &format!("ACL_TABLE_TABLE|{table}"),
            "status",
            "Inactive",
        ],
    );
    let e = sonic.wait_acl(&plan).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("ACL_TABLE_TABLE|{table}")) && e.contains("Inactive"),
        "{e}"
    );
    // Active, table and rule.
    redis.cli(
        6,
        &[
            "hset",
            &format!("ACL_TABLE_TABLE|{table}"),
            "status",
            "Active",
        ],
    );
    redis.cli(
        6,
        &[
            "hset",
            &format!("ACL_RULE_TABLE|{table}|RULE_1"),
            "status",
            "Active",
        ],
    );
    assert_eq!(sonic.wait_acl(&plan).await.unwrap(), AclStatus::Active);

    assert!(sonic.delete_acl(id).await.unwrap());
    assert!(!sonic.delete_acl(id).await.unwrap(), "idempotent");
    let mut left = redis.keys(4, "ACL_*");
    left.sort();
    assert_eq!(
        left,
        vec![
            "ACL_RULE|EVERFLOW_EGRESS|RULE_1".to_string(),
            "ACL_TABLE|EVERFLOW_EGRESS".to_string(),
        ]
    );
    assert!(sonic.acl_jobs().await.unwrap().is_empty());
}
