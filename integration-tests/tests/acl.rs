//! ACL mirroring (issue 17) end to end: a probe in mode sonic against a real
//! redis-server, the test playing orchagent through STATE_DB. A filtered job
//! writes its session without `src_port` and the ACL tables and rules that
//! carry its filter, exactly as SONiC's tools write them; it runs once
//! STATE_DB reports them active; the ERSPAN copies the switch sends are
//! counted exactly, and what the kernel filter rejects is reported; stop,
//! expiry, a failed activation, a kill -9 and the start-up sweep leave no
//! table, rule or session, and the operator's ACLs are never touched.

use std::time::Duration;

use telegen_integration_tests::{
    frames::{self, concat, erspan2_header, gre, ipv4_gre, Pkt},
    netns::{Netns, Veth},
    poll,
    probe::Probe,
    redis::Redis,
    sonic::{acl_prefix, capable_switch, orchestrate, session, session_fields, sonic_probe},
};
use telegen_proto::v1 as pb;

const ERSPAN2: u16 = 0x88be;
const SEQ: u16 = 0x1000;

fn sorted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// The operator's own ACLs: a data ACL and the EVERFLOW egress mirror
/// table with a rule; never touched.
fn seed_operator_acls(redis: &Redis) -> Vec<(String, Vec<(String, String)>)> {
    let seed: [(&str, &[&str]); 3] = [
        (
            "ACL_TABLE|DATAACL",
            &[
                "type",
                "L3",
                "policy_desc",
                "DATAACL",
                "ports@",
                "Ethernet0",
            ],
        ),
        (
            "ACL_RULE|DATAACL|RULE_1",
            &[
                "PRIORITY",
                "9999",
                "SRC_IP",
                "10.9.0.0/16",
                "PACKET_ACTION",
                "DROP",
            ],
        ),
        (
            "ACL_TABLE|EVERFLOW_EGRESS",
            &["type", "MIRROR", "stage", "egress", "ports@", "Ethernet0"],
        ),
    ];
    let mut out = Vec::new();
    for (key, fields) in seed {
        let mut args = vec!["hset", key];
        args.extend_from_slice(fields);
        redis.cli(4, &args);
        out.push((key.to_string(), redis.hgetall(4, key)));
    }
    out
}

fn assert_operator_acls(redis: &Redis, seeded: &[(String, Vec<(String, String)>)]) {
    for (key, fields) in seeded {
        assert_eq!(&redis.hgetall(4, key), fields, "{key} untouched");
    }
}

/// Nothing of `job_id`'s left in CONFIG_DB.
fn assert_nothing_left(redis: &Redis, job_id: &str) {
    let prefix = acl_prefix(job_id);
    assert!(
        redis.keys(4, &format!("ACL_*|{prefix}*")).is_empty(),
        "ACL keys left"
    );
    assert!(
        redis
            .keys(4, &format!("MIRROR_SESSION|{}", session(job_id)))
            .is_empty(),
        "session left"
    );
}

fn filtered(port: &str, direction: &str, filters: pb::Filters) -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: port.into(),
        direction: direction.into(),
        filters: Some(filters),
        ..Default::default()
    }
}

fn dscp46_udp() -> pb::Filters {
    pb::Filters {
        ip_proto: vec!["udp".into()],
        dscp: vec![46],
        ..Default::default()
    }
}

async fn start(probe: &Probe, req: pb::StartJobRequest) -> pb::Job {
    probe.client().start_job(req).await.unwrap().into_inner()
}

/// An ERSPAN II copy of `inner`, as the switch sends it to the collector.
fn erspan_copy(inner: &Pkt) -> Vec<u8> {
    ipv4_gre(&concat(&[
        &gre(SEQ, ERSPAN2),
        &erspan2_header(),
        &inner.frame(),
    ]))
}

/// The worked example of the README: DSCP 46 (UDP) on a port, ingress.
/// Exact keys and fields; running once STATE_DB says Active; the copies the
/// switch mirrors (matching, and some that a wider ASIC match let through)
/// counted exactly, the latter as filter_rejected; stop leaves nothing.
#[tokio::test]
async fn a_filtered_sonic_job_mirrors_through_acl_rules_and_counts_exactly() {
    let redis = Redis::start().await;
    capable_switch(&redis);
    let operator = seed_operator_acls(&redis);
    let (ns, peer) = (Netns::new("tap").unwrap(), Netns::new("taq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[]).await;
    let job = start(&probe, filtered(&veth.port, "ingress", dscp46_udp())).await;
    let id = job.job_id.clone();
    let (sess, prefix) = (session(&id), acl_prefix(&id));
    let keys = orchestrate(&redis, &id, Some("Active"));
    let want_keys = {
        let mut k = vec![
            format!("ACL_RULE|{prefix}IN_V6|RULE_1"),
            format!("ACL_RULE|{prefix}IN|RULE_1"),
            format!("ACL_TABLE|{prefix}IN"),
            format!("ACL_TABLE|{prefix}IN_V6"),
            format!("MIRROR_SESSION|{sess}"),
        ];
        k.sort();
        k
    };
    assert_eq!(keys, want_keys);
    // An ACL-fed session: no src_port, no direction (as `config
    // mirror_session erspan add` writes one for Everflow).
    assert_eq!(
        redis.hgetall(4, &format!("MIRROR_SESSION|{sess}")),
        session_fields(None)
    );
    let desc = format!("telegen-sonic job {id}");
    for (suffix, kind) in [("IN", "MIRROR"), ("IN_V6", "MIRRORV6")] {
        assert_eq!(
            redis.hgetall(4, &format!("ACL_TABLE|{prefix}{suffix}")),
            sorted(&[
                ("type", kind),
                ("policy_desc", &desc),
                ("ports@", &veth.port),
                ("stage", "ingress"),
            ]),
            "{suffix}"
        );
    }
    assert_eq!(
        redis.hgetall(4, &format!("ACL_RULE|{prefix}IN|RULE_1")),
        sorted(&[
            ("PRIORITY", "10000"),
            ("IP_PROTOCOL", "17"),
            ("DSCP", "46"),
            ("MIRROR_INGRESS_ACTION", &sess),
        ])
    );
    assert_eq!(
        redis.hgetall(4, &format!("ACL_RULE|{prefix}IN_V6|RULE_1")),
        sorted(&[
            ("PRIORITY", "10000"),
            ("NEXT_HEADER", "17"),
            ("DSCP", "46"),
            ("MIRROR_INGRESS_ACTION", &sess),
        ])
    );
    let job = probe.wait_status(&id, "running").await.unwrap();
    assert_eq!(
        (job.mirror_scope.as_str(), job.mirror_scope_reason.as_str()),
        ("acl", "")
    );

    // The switch's copies, replayed into the port: 5 matching IPv4, 3
    // matching IPv6, and 4 the ASIC should not have sent (DSCP 0, TCP).
    let mut v4 = Pkt::new("10.0.0.1", "10.0.0.2", 17, 4000, 5000, 120);
    v4.dscp = 46;
    let mut v6 = Pkt::new("2001:db8::1", "2001:db8::2", 17, 4000, 5000, 140);
    v6.dscp = 46;
    let mut wrong_dscp = v4.clone();
    wrong_dscp.dscp = 0;
    let mut tcp = Pkt::new("10.0.0.1", "10.0.0.2", 6, 4000, 5000, 120);
    tcp.dscp = 46;
    let mut sent = vec![erspan_copy(&v4); 5];
    sent.extend(vec![erspan_copy(&v6); 3]);
    sent.extend(vec![erspan_copy(&wrong_dscp); 2]);
    sent.extend(vec![erspan_copy(&tcp); 2]);
    frames::send(&peer.path(), &veth.peer, &sent).unwrap();
    let r = probe.results_at(&id, 8).await.unwrap();
    let rejected = poll("4 rejected copies", Duration::from_secs(10), || async {
        let r = probe.results(&id).await.ok()?;
        (r.filter_rejected == Some(4)).then_some(r)
    })
    .await
    .unwrap();
    assert_eq!(r.packets_total, 8, "matching copies only");
    assert_eq!(rejected.packets_total, 8);
    assert_eq!(r.bytes_total, 5 * 120 + 3 * 140, "the inner packets' sizes");

    let stopped = probe.stop_job(&id).await.unwrap();
    assert_eq!(stopped.status, "stopped");
    assert!(stopped.error.is_empty(), "{}", stopped.error);
    assert_nothing_left(&redis, &id);
    assert_operator_acls(&redis, &operator);
    // Results outlive the job's ACL.
    assert_eq!(probe.results(&id).await.unwrap().filter_rejected, Some(4));
}

/// (table suffix, rule, fields besides PRIORITY and the action)
type Rule = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// Each filter shape and direction writes the rules it expands to: v4 and
/// v6 prefixes (one table of the family each), L4 ports, VLAN, egress with
/// the egress action, both directions as two stages.
#[tokio::test]
async fn filter_shapes_expand_to_sonic_rules() {
    let redis = Redis::start().await;
    capable_switch(&redis);
    let (ns, peer) = (Netns::new("tap").unwrap(), Netns::new("taq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[("TELEGEN_MAX_JOBS", "8")]).await;
    struct Case {
        direction: &'static str,
        filters: pb::Filters,
        /// (table suffix, rule, fields besides PRIORITY and the action)
        rules: Vec<Rule>,
    }
    let cases = [
        Case {
            direction: "ingress",
            filters: pb::Filters {
                src_cidr: vec!["10.1.0.0/16".into()],
                dst_cidr: vec!["192.0.2.7".into(), "198.51.100.0/24".into()],
                ..Default::default()
            },
            rules: vec![
                (
                    "IN",
                    "RULE_1",
                    vec![("SRC_IP", "10.1.0.0/16"), ("DST_IP", "192.0.2.7/32")],
                ),
                (
                    "IN",
                    "RULE_2",
                    vec![("SRC_IP", "10.1.0.0/16"), ("DST_IP", "198.51.100.0/24")],
                ),
            ],
        },
        Case {
            direction: "ingress",
            filters: pb::Filters {
                dst_cidr: vec!["2001:db8::/32".into()],
                ip_proto: vec!["tcp".into()],
                l4_dport: vec![443],
                ..Default::default()
            },
            rules: vec![(
                "IN_V6",
                "RULE_1",
                vec![
                    ("DST_IPV6", "2001:db8::/32"),
                    ("NEXT_HEADER", "6"),
                    ("L4_DST_PORT", "443"),
                ],
            )],
        },
        Case {
            direction: "egress",
            filters: pb::Filters {
                src_cidr: vec!["10.2.0.0/16".into()],
                l4_sport: vec![53],
                vlan: Some(100),
                ..Default::default()
            },
            rules: vec![(
                "OUT",
                "RULE_1",
                vec![
                    ("SRC_IP", "10.2.0.0/16"),
                    ("L4_SRC_PORT", "53"),
                    ("VLAN_ID", "100"),
                ],
            )],
        },
        Case {
            direction: "both",
            filters: pb::Filters {
                dst_cidr: vec!["10.3.0.1".into()],
                ..Default::default()
            },
            rules: vec![
                ("IN", "RULE_1", vec![("DST_IP", "10.3.0.1/32")]),
                ("OUT", "RULE_1", vec![("DST_IP", "10.3.0.1/32")]),
            ],
        },
    ];
    for case in cases {
        // One job at a time: each stage allows one MIRROR table per switch.
        let job = start(
            &probe,
            filtered(&veth.port, case.direction, case.filters.clone()),
        )
        .await;
        let (id, sess) = (job.job_id.clone(), session(&job.job_id));
        let prefix = acl_prefix(&id);
        let keys = orchestrate(&redis, &id, Some("Active"));
        let mut want_rules: Vec<String> = case
            .rules
            .iter()
            .map(|(t, r, _)| format!("ACL_RULE|{prefix}{t}|{r}"))
            .collect();
        want_rules.sort();
        let rules: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with("ACL_RULE|"))
            .cloned()
            .collect();
        assert_eq!(rules, want_rules, "{}", case.direction);
        for (table, rule, fields) in &case.rules {
            let action = if table.starts_with("OUT") {
                "MIRROR_EGRESS_ACTION"
            } else {
                "MIRROR_INGRESS_ACTION"
            };
            let priority = if *rule == "RULE_2" { "9999" } else { "10000" };
            let mut want = fields.clone();
            want.push(("PRIORITY", priority));
            want.push((action, &sess));
            assert_eq!(
                redis.hgetall(4, &format!("ACL_RULE|{prefix}{table}|{rule}")),
                sorted(&want),
                "{table}|{rule}"
            );
            let stage = if table.starts_with("OUT") {
                "egress"
            } else {
                "ingress"
            };
            let t = redis.hgetall(4, &format!("ACL_TABLE|{prefix}{table}"));
            assert!(
                t.contains(&("stage".into(), stage.into())),
                "{table}: {t:?}"
            );
        }
        let running = probe.wait_status(&id, "running").await.unwrap();
        assert_eq!(
            running.mirror_scope, "acl",
            "{}",
            running.mirror_scope_reason
        );
        probe.stop_job(&id).await.unwrap();
        assert_nothing_left(&redis, &id);
    }
}

/// When the switch cannot carry the filter, the session mirrors the port
/// (src_port and direction set, no ACL keys) and the job says why.
#[tokio::test]
async fn jobs_the_switch_cannot_select_mirror_the_port_and_say_why() {
    let redis = Redis::start().await;
    let (ns, peer) = (Netns::new("tap").unwrap(), Netns::new("taq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(
        &ns,
        &redis,
        &[("TELEGEN_ACL_MAX_RULES", "4"), ("TELEGEN_MAX_JOBS", "8")],
    )
    .await;
    // v4 only, no egress mirror action, EVERFLOW at ingress.
    redis.cli(
        6,
        &["hset", "SWITCH_CAPABILITY|switch", "MIRRORV6", "false"],
    );
    let f = |src: &[&str], dscp: &[u32]| pb::Filters {
        src_cidr: src.iter().map(|s| s.to_string()).collect(),
        dscp: dscp.to_vec(),
        ..Default::default()
    };
    let cases: Vec<(&str, Option<pb::Filters>, &str)> = vec![
        ("ingress", None, "no filter: the whole port is mirrored"),
        (
            "ingress",
            Some(f(&["10.0.0.0/8", "10.1.0.0/16"], &[1, 2, 3])),
            "the filter expands to 6 ACL rules, over TELEGEN_ACL_MAX_RULES (4)",
        ),
        (
            "ingress",
            Some(f(&["2001:db8::/32"], &[])),
            "the filter selects IPv6 and this switch has no MIRRORV6 ACL tables",
        ),
        (
            "egress",
            Some(f(&["10.0.0.0/8"], &[])),
            "this switch cannot mirror from egress ACLs",
        ),
    ];
    for (direction, filters, why) in cases {
        let req = pb::StartJobRequest {
            port: veth.port.clone(),
            direction: direction.into(),
            filters,
            ..Default::default()
        };
        let job = start(&probe, req).await;
        let keys = orchestrate(&redis, &job.job_id, Some("Active"));
        assert_eq!(
            keys,
            vec![format!("MIRROR_SESSION|{}", session(&job.job_id))],
            "{why}"
        );
        let s = redis.hgetall(4, &keys[0]);
        assert!(
            s.contains(&("src_port".into(), veth.port.clone())),
            "{why}: {s:?}"
        );
        let job = probe.wait_status(&job.job_id, "running").await.unwrap();
        assert_eq!(job.mirror_scope, "port");
        assert!(
            job.mirror_scope_reason.starts_with(why),
            "{why} / {}",
            job.mirror_scope_reason
        );
        probe.stop_job(&job.job_id).await.unwrap();
    }
    // Another mirror table at the stage: the operator's EVERFLOW (a
    // v4-only filter, which this switch could otherwise carry).
    redis.cli(
        4,
        &[
            "hset",
            "ACL_TABLE|EVERFLOW",
            "type",
            "MIRROR",
            "ports@",
            "Ethernet0",
        ],
    );
    let job = start(
        &probe,
        filtered(&veth.port, "ingress", f(&["10.0.0.0/8"], &[46])),
    )
    .await;
    orchestrate(&redis, &job.job_id, Some("Active"));
    let job = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(
        (job.mirror_scope.as_str(), job.mirror_scope_reason.as_str()),
        (
            "port",
            "the switch allows one MIRROR ACL table at ingress, and it is EVERFLOW"
        )
    );
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(redis.keys(4, "ACL_*|TELEGEN_*").is_empty());
    assert_eq!(redis.keys(4, "ACL_TABLE|*"), vec!["ACL_TABLE|EVERFLOW"]);
}

/// STATE_DB reports a rule Inactive: the job fails naming it and leaves
/// nothing. A release that reports no ACL status at all: the job runs and
/// says its rules' activation is not confirmed.
#[tokio::test]
async fn inactive_rules_fail_the_job_and_unreported_status_is_said() {
    let redis = Redis::start().await;
    capable_switch(&redis);
    let operator = seed_operator_acls(&redis);
    let (ns, peer) = (Netns::new("tap").unwrap(), Netns::new("taq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[("TELEGEN_SONIC_WAIT_SEC", "1")]).await;
    let job = start(&probe, filtered(&veth.port, "ingress", dscp46_udp())).await;
    orchestrate(&redis, &job.job_id, Some("Inactive"));
    let failed = probe.wait_status(&job.job_id, "failed").await.unwrap();
    let prefix = acl_prefix(&job.job_id);
    assert!(
        failed
            .error
            .starts_with("SONiC ACL inactive: STATE_DB ACL_TABLE_TABLE|"),
        "{}",
        failed.error
    );
    assert!(failed.error.contains(&prefix), "{}", failed.error);
    assert!(
        failed.error.contains("status is Inactive"),
        "{}",
        failed.error
    );
    assert_nothing_left(&redis, &job.job_id);
    assert_operator_acls(&redis, &operator);

    // No ACL status anywhere in STATE_DB (a release before 202211).
    for k in redis.keys(6, "ACL_*_TABLE|*") {
        redis.cli(6, &["del", &k]);
    }
    let job = start(&probe, filtered(&veth.port, "ingress", dscp46_udp())).await;
    orchestrate(&redis, &job.job_id, None);
    let running = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(running.mirror_scope, "acl");
    assert!(
        running
            .mirror_scope_reason
            .starts_with("STATE_DB reports no ACL status on this SONiC release"),
        "{}",
        running.mirror_scope_reason
    );
    probe.stop_job(&job.job_id).await.unwrap();
    assert_nothing_left(&redis, &job.job_id);
}

/// A job killed with the probe keeps its ACL and scope (the reason too)
/// across the restart and expires leaving nothing; ACL keys of ours that no
/// job owns (a probe that lost its pins) are swept at start-up, the
/// operator's and look-alikes are not.
#[tokio::test]
async fn a_restart_keeps_the_acl_expiry_removes_it_and_orphans_are_swept() {
    let redis = Redis::start().await;
    capable_switch(&redis);
    let operator = seed_operator_acls(&redis);
    let (ns, peer) = (Netns::new("tap").unwrap(), Netns::new("taq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let mut probe: Probe = sonic_probe(&ns, &redis, &[]).await;
    let mut req = filtered(&veth.port, "ingress", dscp46_udp());
    req.duration_sec = Some(4);
    let job = start(&probe, req).await;
    let id = job.job_id.clone();
    let keys = orchestrate(&redis, &id, Some("Active"));
    probe.wait_status(&id, "running").await.unwrap();
    probe.kill_process();
    // An orphan of ours (no job owns it) and a look-alike.
    let orphan = format!("TELEGEN_{}_IN", uuid::Uuid::new_v4().simple());
    redis.cli(
        4,
        &["hset", &format!("ACL_TABLE|{orphan}"), "type", "MIRROR"],
    );
    redis.cli(
        4,
        &[
            "hset",
            &format!("ACL_RULE|{orphan}|RULE_1"),
            "PRIORITY",
            "10000",
        ],
    );
    redis.cli(4, &["hset", "ACL_TABLE|TELEGEN_NOT_OURS", "type", "MIRROR"]);
    probe.spawn(&[]).await.unwrap();
    let adopted = probe.wait_status(&id, "running").await.unwrap();
    assert_eq!(
        (
            adopted.mirror_scope.as_str(),
            adopted.mirror_scope_reason.as_str()
        ),
        ("acl", "")
    );
    for k in &keys {
        assert!(
            !redis.hgetall(4, k).is_empty(),
            "{k} kept for the running job"
        );
    }
    poll("the orphan swept", Duration::from_secs(20), || {
        let gone = redis.keys(4, &format!("ACL_*|{orphan}*")).is_empty();
        async move { gone.then_some(()) }
    })
    .await
    .unwrap();
    probe.wait_status(&id, "expired").await.unwrap();
    assert_nothing_left(&redis, &id);
    assert_operator_acls(&redis, &operator);
    assert!(!redis.keys(4, "ACL_TABLE|TELEGEN_NOT_OURS").is_empty());
}

/// Two filtered starts at once: the switch takes one mirror table per
/// stage, so one job gets the ACL and the other mirrors its port, naming
/// the first job's table (never two tables orchagent would refuse).
#[tokio::test]
async fn concurrent_filtered_starts_share_the_stage_safely() {
    let redis = Redis::start().await;
    capable_switch(&redis);
    let (ns, peer) = (Netns::new("tap").unwrap(), Netns::new("taq").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = sonic_probe(&ns, &redis, &[]).await;
    let v4 = |dst: &str| pb::Filters {
        dst_cidr: vec![dst.into()],
        ..Default::default()
    };
    let (a, b) = tokio::join!(
        start(&probe, filtered(&veth.port, "ingress", v4("10.0.0.1"))),
        start(&probe, filtered(&veth.port, "ingress", v4("10.0.0.2"))),
    );
    let mut scopes = Vec::new();
    for j in [&a, &b] {
        orchestrate(&redis, &j.job_id, Some("Active"));
        let j = probe.wait_status(&j.job_id, "running").await.unwrap();
        scopes.push((
            j.mirror_scope.clone(),
            j.mirror_scope_reason.clone(),
            j.job_id,
        ));
    }
    scopes.sort();
    let (acl, port) = (&scopes[0], &scopes[1]);
    assert_eq!((acl.0.as_str(), acl.1.as_str()), ("acl", ""));
    assert_eq!(port.0, "port");
    let first_table = format!("{}IN", acl_prefix(&acl.2));
    assert_eq!(
        port.1,
        format!("the switch allows one MIRROR ACL table at ingress, and it is {first_table}")
    );
    assert_eq!(
        redis.keys(4, "ACL_TABLE|*"),
        vec![format!("ACL_TABLE|{first_table}")]
    );
    for j in [&a, &b] {
        probe.stop_job(&j.job_id).await.unwrap();
        assert_nothing_left(&redis, &j.job_id);
    }
}
