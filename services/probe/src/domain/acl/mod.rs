//! A filtered job's selection pushed into the switch's ASIC: the SONiC ACL
//! mirror tables and rules (Everflow) that carry its filter, or why the
//! job must mirror the whole port instead (`mirror_scope` port). A plan
//! only: no I/O; the sonic backend writes it (issue 17, in progress).
//!
//! Names, types, fields and values as SONiC's own tools write them:
//! - `ACL_TABLE|<name>`: `type` (`MIRROR`, `MIRRORV6`), `policy_desc`,
//!   `ports@` (comma-joined), `stage` (`ingress`, `egress`):
//!   sonic-utilities config/main.py `add_table`; swss-common configdb.
//! - `ACL_RULE|<table>|<rule>`: `PRIORITY`, `SRC_IP`/`DST_IP`,
//!   `SRC_IPV6`/`DST_IPV6`, `IP_PROTOCOL` (v4) / `NEXT_HEADER` (v6),
//!   `L4_SRC_PORT`, `L4_DST_PORT`, `DSCP`, `VLAN_ID`, and the action
//!   `MIRROR_INGRESS_ACTION` / `MIRROR_EGRESS_ACTION` naming the session:
//!   sonic-swss orchagent/aclorch.h and aclorch.cpp (match fields per table
//!   type), acl-loader (`PRIORITY` = 10000 - n).
//! - One MIRROR and one MIRRORV6 table per stage on a switch (aclorch.cpp:
//!   "Mirror table %s (%s) has already been created"): a job's tables are
//!   its own, bound to its port only, so its rules need no `IN_PORTS`
//!   (which MIRRORV6 tables cannot match).

use std::net::IpAddr;

use uuid::Uuid;

use super::filter::{Cidr, JobFilter};
use super::modes::Direction;

/// The most rules a filter may expand to by default (TELEGEN_ACL_MAX_RULES).
pub const DEFAULT_MAX_RULES: usize = 64;
/// acl-loader's top priority; rules count down from it.
const TOP_PRIORITY: u32 = 10000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Ingress,
    Egress,
}

impl Stage {
    /// `ACL_TABLE|...` `stage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingress => "ingress",
            Stage::Egress => "egress",
        }
    }
    /// The rule's mirror action at this stage (an egress table with an
    /// ingress action is not applicable: SONiC's Everflow test plan).
    pub fn action(self) -> &'static str {
        match self {
            Stage::Ingress => "MIRROR_INGRESS_ACTION",
            Stage::Egress => "MIRROR_EGRESS_ACTION",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableType {
    Mirror,
    MirrorV6,
}

impl TableType {
    pub fn as_str(self) -> &'static str {
        match self {
            TableType::Mirror => "MIRROR",
            TableType::MirrorV6 => "MIRRORV6",
        }
    }
}

/// What the switch can do (STATE_DB `SWITCH_CAPABILITY|switch` `MIRRORV6`,
/// `ACL_STAGE_CAPABILITY_TABLE|EGRESS` `action_list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub mirror_v6: bool,
    pub egress_mirror: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclTable {
    pub name: String,
    pub kind: TableType,
    pub stage: Stage,
    /// `ports@`: the job's port alone.
    pub port: String,
}

impl AclTable {
    /// The CONFIG_DB fields of `ACL_TABLE|<name>`.
    pub fn fields(&self, job: Uuid) -> Fields {
        vec![
            ("type", self.kind.as_str().into()),
            ("policy_desc", format!("telegen-sonic job {job}")),
            ("ports@", self.port.clone()),
            ("stage", self.stage.as_str().into()),
        ]
    }
}

/// A rule's CONFIG_DB fields, in order.
pub type Fields = Vec<(&'static str, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    pub table: String,
    pub name: String,
    /// The CONFIG_DB fields of `ACL_RULE|<table>|<name>`.
    pub fields: Fields,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclPlan {
    pub tables: Vec<AclTable>,
    pub rules: Vec<AclRule>,
}

/// Whether SONiC reported a job's ACL tables and rules active (STATE_DB
/// `ACL_TABLE_TABLE`, `ACL_RULE_TABLE`: sonic-swss #2662, from 202211).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclStatus {
    /// Every table and rule of the job says `Active` (or it has none).
    Active,
    /// This release reports no ACL status: the job says so.
    NotReported,
}

/// A job's note when its rules' activation cannot be confirmed.
pub const NOT_REPORTED: &str = "STATE_DB reports no ACL status on this SONiC release (ACL_TABLE_TABLE and ACL_RULE_TABLE, from 202211): the rules are written, their activation is not confirmed";

/// Why a job mirrors its whole port instead (the job's `mirror_scope`
/// reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortScope(pub String);

/// The name of job `id`'s table at `stage` for `kind`: the job's id in it,
/// so that what is ours is told by name (as for sessions).
pub fn table_name(id: Uuid, stage: Stage, kind: TableType) -> String {
    let stage = match stage {
        Stage::Ingress => "IN",
        Stage::Egress => "OUT",
    };
    let family = match kind {
        TableType::Mirror => "",
        TableType::MirrorV6 => "_V6",
    };
    format!("TELEGEN_{}_{stage}{family}", id.simple())
}

/// The job a table name of ours names (`TELEGEN_<32 hex>_...`); None for
/// any other table, which is never touched.
pub fn job_of_table(name: &str) -> Option<Uuid> {
    let rest = name.strip_prefix("TELEGEN_")?;
    let (hex, tail) = (rest.get(..32)?, rest.get(32..)?);
    let id = Uuid::try_parse(hex).ok()?;
    [Stage::Ingress, Stage::Egress]
        .iter()
        .flat_map(|s| [TableType::Mirror, TableType::MirrorV6].map(|k| table_name(id, *s, k)))
        .any(|n| n == name && tail.starts_with('_'))
        .then_some(id)
}

/// The tables and rules that mirror, on `port` in `direction`, only what
/// `filter` selects, to `session`; or why the whole port must be mirrored.
pub fn plan(
    id: Uuid,
    port: &str,
    direction: Direction,
    filter: &JobFilter,
    session: &str,
    platform: Platform,
    max_rules: usize,
) -> Result<AclPlan, PortScope> {
    if filter.is_empty() {
        return Err(PortScope("no filter: the whole port is mirrored".into()));
    }
    let stages: Vec<Stage> = match direction {
        Direction::Ingress => vec![Stage::Ingress],
        Direction::Egress => vec![Stage::Egress],
        Direction::Both => vec![Stage::Ingress, Stage::Egress],
    };
    if stages.contains(&Stage::Egress) && !platform.egress_mirror {
        return Err(PortScope(
            "this switch cannot mirror from egress ACLs (MIRROR_EGRESS_ACTION is not in ACL_STAGE_CAPABILITY_TABLE|EGRESS)".into(),
        ));
    }
    let per_family =
        [TableType::Mirror, TableType::MirrorV6].map(|kind| (kind, matches(filter, kind)));
    if per_family
        .iter()
        .any(|(k, m)| *k == TableType::MirrorV6 && !m.is_empty())
        && !platform.mirror_v6
    {
        return Err(PortScope(
            "the filter selects IPv6 and this switch has no MIRRORV6 ACL tables (SWITCH_CAPABILITY|switch MIRRORV6)".into(),
        ));
    }
    let per_stage: usize = per_family.iter().map(|(_, m)| m.len()).sum();
    if per_stage == 0 {
        return Err(PortScope(
            "the filter's source and destination prefixes are of different families: no packet can match".into(),
        ));
    }
    let total = per_stage * stages.len();
    if total > max_rules {
        return Err(PortScope(format!(
            "the filter expands to {total} ACL rules, over TELEGEN_ACL_MAX_RULES ({max_rules})"
        )));
    }
    let mut plan = AclPlan {
        tables: Vec::new(),
        rules: Vec::new(),
    };
    for stage in stages {
        for (kind, matches) in &per_family {
            if matches.is_empty() {
                continue;
            }
            let table = table_name(id, stage, *kind);
            plan.tables.push(AclTable {
                name: table.clone(),
                kind: *kind,
                stage,
                port: port.into(),
            });
            for (n, m) in matches.iter().enumerate() {
                let mut fields = vec![("PRIORITY", (TOP_PRIORITY - n as u32).to_string())];
                fields.extend(m.iter().cloned());
                fields.push((stage.action(), session.into()));
                plan.rules.push(AclRule {
                    table: table.clone(),
                    name: format!("RULE_{}", n + 1),
                    fields,
                });
            }
        }
    }
    Ok(plan)
}

/// The mirror tables already on the switch that `plan` would collide
/// with: SONiC allows one MIRROR and one MIRRORV6 table per stage
/// (`existing`: name, `type`, `stage` of each `ACL_TABLE`, any case). The
/// job then mirrors its port, saying whose table is in the way.
pub fn conflict(plan: &AclPlan, existing: &[(String, String, String)]) -> Option<PortScope> {
    plan.tables.iter().find_map(|t| {
        existing
            .iter()
            .find(|(name, kind, stage)| {
                *name != t.name
                    && kind.eq_ignore_ascii_case(t.kind.as_str())
                    && stage.eq_ignore_ascii_case(t.stage.as_str())
            })
            .map(|(name, kind, stage)| {
                PortScope(format!(
                    "the switch allows one {kind} ACL table at {stage}, and it is {name}",
                    stage = stage.to_lowercase()
                ))
            })
    })
}

/// The match fields of each rule of `kind` that `filter` expands to: the
/// product of its lists (a list is any of its values; fields all hold),
/// the addresses of this family only. None when the filter's addresses
/// are all of the other family, or its protocols are the other family's
/// ICMP only.
fn matches(filter: &JobFilter, kind: TableType) -> Vec<Fields> {
    let v6 = kind == TableType::MirrorV6;
    let family = |c: &&Cidr| matches!(c.addr, IpAddr::V6(_)) == v6;
    let (src, dst): (Vec<&Cidr>, Vec<&Cidr>) = (
        filter.src_cidr.iter().filter(family).collect(),
        filter.dst_cidr.iter().filter(family).collect(),
    );
    // Addresses given for one end in the other family only: nothing of
    // this family can match.
    if (!filter.src_cidr.is_empty() && src.is_empty())
        || (!filter.dst_cidr.is_empty() && dst.is_empty())
    {
        return Vec::new();
    }
    let other_icmp = if v6 { 1 } else { 58 };
    let protos: Vec<u8> = filter
        .ip_proto
        .iter()
        .copied()
        .filter(|p| *p != other_icmp)
        .collect();
    if !filter.ip_proto.is_empty() && protos.is_empty() {
        return Vec::new();
    }
    let (src_f, dst_f, proto_f) = if v6 {
        ("SRC_IPV6", "DST_IPV6", "NEXT_HEADER")
    } else {
        ("SRC_IP", "DST_IP", "IP_PROTOCOL")
    };
    // Each dimension: its values, or one "any" (no field); the rules are
    // their product, fields in a fixed order.
    fn dim(name: &'static str, v: Vec<String>) -> Vec<Option<(&'static str, String)>> {
        if v.is_empty() {
            vec![None]
        } else {
            v.into_iter().map(|x| Some((name, x))).collect()
        }
    }
    let text = |v: &[u16]| v.iter().map(u16::to_string).collect();
    let dims = [
        dim(src_f, src.iter().map(|c| c.to_string()).collect()),
        dim(dst_f, dst.iter().map(|c| c.to_string()).collect()),
        dim(proto_f, protos.iter().map(u8::to_string).collect()),
        dim("L4_SRC_PORT", text(&filter.l4_sport)),
        dim("L4_DST_PORT", text(&filter.l4_dport)),
        dim("DSCP", filter.dscp.iter().map(u8::to_string).collect()),
        dim("VLAN_ID", filter.vlan.iter().map(u16::to_string).collect()),
    ];
    dims.iter().fold(vec![Fields::new()], |rules, dim| {
        rules
            .iter()
            .flat_map(|f| {
                dim.iter().map(move |v| {
                    let mut f = f.clone();
                    f.extend(v.clone());
                    f
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests;
