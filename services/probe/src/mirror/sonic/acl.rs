//! What ACL mirroring (issue 17, domain/acl) needs to know of a switch:
//! its capabilities (STATE_DB) and the ACL tables already configured
//! (CONFIG_DB, where one MIRROR and one MIRRORV6 table per stage is the
//! limit). Read-only.

use super::{Sonic, SonicError};
use crate::domain::acl::Platform;

impl Sonic {
    /// `SWITCH_CAPABILITY|switch` `MIRRORV6`, and whether the egress stage
    /// can mirror: `ACL_STAGE_CAPABILITY_TABLE|EGRESS` `action_list` (from
    /// 202111), else `SWITCH_CAPABILITY|switch` `ACL_ACTIONS|EGRESS` (before);
    /// both written by sonic-swss orchagent/aclorch.cpp. Absent: false.
    pub async fn acl_platform(&self) -> Result<Platform, SonicError> {
        let d = &self.settings.state_db;
        let (v6, legacy_egress): (Option<String>, Option<String>) = self
            .query(
                d,
                redis::cmd("HMGET")
                    .arg("SWITCH_CAPABILITY|switch")
                    .arg("MIRRORV6")
                    .arg("ACL_ACTIONS|EGRESS"),
            )
            .await?;
        let egress: Option<String> = self
            .query(
                d,
                redis::cmd("HGET")
                    .arg("ACL_STAGE_CAPABILITY_TABLE|EGRESS")
                    .arg("action_list"),
            )
            .await?;
        let mirrors = |list: Option<String>| {
            list.is_some_and(|l| l.split(',').any(|a| a.trim() == "MIRROR_EGRESS_ACTION"))
        };
        Ok(Platform {
            mirror_v6: v6.is_some_and(|v| v.eq_ignore_ascii_case("true")),
            egress_mirror: mirrors(egress.or(legacy_egress)),
        })
    }

    /// Every `ACL_TABLE` in CONFIG_DB as (name, `type`, `stage`), the stage
    /// `ingress` when unset (the YANG model's default).
    pub async fn acl_tables(&self) -> Result<Vec<(String, String, String)>, SonicError> {
        let d = &self.settings.config_db;
        let (mut cursor, mut names) = (0u64, Vec::new());
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    d,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg("ACL_TABLE|*")
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            names.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        names.sort();
        let mut tables = Vec::new();
        for key in names {
            let (kind, stage): (Option<String>, Option<String>) = self
                .query(d, redis::cmd("HMGET").arg(&key).arg("type").arg("stage"))
                .await?;
            let name = key.strip_prefix("ACL_TABLE|").unwrap_or(&key).to_string();
            tables.push((
                name,
                kind.unwrap_or_default(),
                stage.unwrap_or_else(|| "ingress".into()),
            ));
        }
        Ok(tables)
    }
}
