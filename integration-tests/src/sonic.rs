//! SONiC's side of mirror mode `sonic`, played by the tests through a real
//! redis-server: a probe configured for it, and orchestration (orchagent)
//! activating what the probe writes to CONFIG_DB by setting STATE_DB.

use crate::{netns::Netns, probe::Probe, redis::Redis};

pub const LOCAL: &str = "192.0.2.10";
pub const REMOTE: &str = "192.0.2.100";

/// The probe's name for a job's session (`tg-<uuid in base32>`).
pub fn session(job_id: &str) -> String {
    telegen_probe::mirror::sonic::session_name(job_id.parse().expect("a job id"))
}

/// The prefix of a job's ACL table names (`TELEGEN_<uuid hex>_`).
pub fn acl_prefix(job_id: &str) -> String {
    let id: uuid::Uuid = job_id.parse().expect("a job id");
    format!("TELEGEN_{}_", id.simple())
}

/// The CONFIG_DB fields of a session with the default DSCP and TTL, sorted:
/// `src_port` and `direction` when the session mirrors a port.
pub fn session_fields(src_port: Option<(&str, &str)>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("type", "ERSPAN"),
        ("src_ip", LOCAL),
        ("dst_ip", REMOTE),
        ("gre_type", "0x88be"),
        ("dscp", "8"),
        ("ttl", "64"),
        ("queue", "0"),
    ]
    .into_iter()
    .chain(
        src_port
            .into_iter()
            .flat_map(|(p, d)| [("src_port", p), ("direction", d)]),
    )
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    v.sort();
    v
}

/// A probe in mode sonic against `redis`, with `extra` settings.
pub async fn sonic_probe(ns: &Netns, redis: &Redis, extra: &[(&str, &str)]) -> Probe {
    let url = redis.url();
    let mut env = vec![
        ("TELEGEN_MIRROR_MODE", "sonic"),
        ("TELEGEN_ERSPAN_LOCAL", LOCAL),
        ("TELEGEN_ERSPAN_REMOTE", REMOTE),
        ("TELEGEN_REDIS", url.as_str()),
    ];
    env.extend_from_slice(extra);
    Probe::start(ns, &env).await.unwrap()
}

/// STATE_DB's capabilities as orchagent writes them (202111 and later): a
/// switch that can mirror IPv6 and from egress ACLs.
pub fn capable_switch(redis: &Redis) {
    redis.cli(
        6,
        &[
            "hset",
            "SWITCH_CAPABILITY|switch",
            "MIRROR",
            "true",
            "MIRRORV6",
            "true",
        ],
    );
    redis.cli(
        6,
        &[
            "hset",
            "ACL_STAGE_CAPABILITY_TABLE|EGRESS",
            "action_list",
            "PACKET_ACTION,MIRROR_EGRESS_ACTION",
        ],
    );
}

/// The test as orchagent, once StartJob answered: mark the job's session
/// active, and mark each of the job's ACL tables and rules `acl_status`
/// (None: a release that reports no ACL status). Returns the job's CONFIG_DB
/// keys (session, tables, rules), sorted.
pub fn orchestrate(redis: &Redis, job_id: &str, acl_status: Option<&str>) -> Vec<String> {
    // StartJob writes the session and the ACL before it answers.
    let key = format!("MIRROR_SESSION|{}", session(job_id));
    assert!(!redis.hgetall(4, &key).is_empty(), "no {key}");
    let mut keys = redis.keys(4, &format!("ACL_*|{}*", acl_prefix(job_id)));
    redis.cli(
        6,
        &[
            "hset",
            &format!("MIRROR_SESSION_TABLE|{}", session(job_id)),
            "status",
            "active",
        ],
    );
    if let Some(status) = acl_status {
        for k in &keys {
            let state = k.replacen("ACL_TABLE|", "ACL_TABLE_TABLE|", 1).replacen(
                "ACL_RULE|",
                "ACL_RULE_TABLE|",
                1,
            );
            redis.cli(6, &["hset", &state, "status", status]);
        }
    }
    keys.push(key);
    keys.sort();
    keys
}
