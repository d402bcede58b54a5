//! What ACL mirroring (issue 17, domain/acl) needs to know of a switch:
//! its capabilities (STATE_DB) and the ACL tables already configured
//! (CONFIG_DB, where one MIRROR and one MIRRORV6 table per stage is the
//! limit); and a job's tables and rules: written, waited for, deleted and
//! swept by name (`TELEGEN_<job id>_...`, as sessions are).

use std::time::Duration;

use uuid::Uuid;

use super::settings::DbAddr;
use super::{Sonic, SonicError};
use crate::domain::acl::{job_of_table, AclPlan, AclStatus, Platform};

/// The CONFIG_DB key prefix of a job's tables (and, after `ACL_RULE|`, its
/// rules).
fn prefix(job: Uuid) -> String {
    format!("TELEGEN_{}_", job.simple())
}

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
        let mut names = self.scan(d, "ACL_TABLE|*").await?;
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

    /// Write `plan` to CONFIG_DB: the tables, then their rules (orchagent
    /// binds a rule to its table and its session by name; both exist by
    /// then). The names carry the job's id: an earlier write of the same
    /// job is overwritten with the same fields.
    pub async fn write_acl(&self, job: Uuid, plan: &AclPlan) -> Result<(), SonicError> {
        let d = &self.settings.config_db;
        for t in &plan.tables {
            self.hset(d, &format!("ACL_TABLE|{}", t.name), &t.fields(job))
                .await?;
        }
        for r in &plan.rules {
            self.hset(d, &format!("ACL_RULE|{}|{}", r.table, r.name), &r.fields)
                .await?;
        }
        Ok(())
    }

    async fn hset(
        &self,
        d: &DbAddr,
        key: &str,
        fields: &[(&'static str, String)],
    ) -> Result<(), SonicError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (f, v) in fields {
            cmd.arg(*f).arg(v);
        }
        self.query::<i64>(d, &cmd).await.map(|_| ())
    }

    /// Delete the job's rules, then its tables (true: there were some).
    pub async fn delete_acl(&self, job: Uuid) -> Result<bool, SonicError> {
        let d = &self.settings.config_db;
        let prefix = prefix(job);
        let mut deleted = false;
        for pattern in [
            format!("ACL_RULE|{prefix}*"),
            format!("ACL_TABLE|{prefix}*"),
        ] {
            for key in self.scan(d, &pattern).await? {
                let n: i64 = self.query(d, redis::cmd("DEL").arg(&key)).await?;
                deleted |= n > 0;
            }
        }
        Ok(deleted)
    }

    /// The jobs with an ACL table or rule of ours in CONFIG_DB.
    pub async fn acl_jobs(&self) -> Result<Vec<Uuid>, SonicError> {
        let d = &self.settings.config_db;
        let mut ids = Vec::new();
        for (pattern, prefix) in [
            ("ACL_TABLE|TELEGEN_*", "ACL_TABLE|"),
            ("ACL_RULE|TELEGEN_*", "ACL_RULE|"),
        ] {
            for key in self.scan(d, pattern).await? {
                let table = key[prefix.len()..].split('|').next().unwrap_or_default();
                ids.extend(job_of_table(table));
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Wait (TELEGEN_SONIC_WAIT_SEC) for STATE_DB to report every table and
    /// rule of `plan` `Active`. A release that reports no ACL status at all
    /// (before 202211: no `ACL_TABLE_TABLE` key by the deadline) is told
    /// apart from one that reports ours inactive.
    pub async fn wait_acl(&self, plan: &AclPlan) -> Result<AclStatus, SonicError> {
        let keys: Vec<String> = (plan
            .tables
            .iter()
            .map(|t| format!("ACL_TABLE_TABLE|{}", t.name)))
        .chain(
            plan.rules
                .iter()
                .map(|r| format!("ACL_RULE_TABLE|{}|{}", r.table, r.name)),
        )
        .collect();
        self.wait_acl_keys(&keys).await
    }

    /// `wait_acl` for the tables and rules of `job` found in CONFIG_DB (a
    /// probe restarted mid-wait knows no plan); Active when it has none.
    pub async fn wait_acl_of(&self, job: Uuid) -> Result<AclStatus, SonicError> {
        let d = &self.settings.config_db;
        let prefix = prefix(job);
        let mut keys = Vec::new();
        for (pattern, state) in [
            (format!("ACL_TABLE|{prefix}*"), "ACL_TABLE_TABLE|"),
            (format!("ACL_RULE|{prefix}*"), "ACL_RULE_TABLE|"),
        ] {
            let mut found = self.scan(d, &pattern).await?;
            found.sort();
            keys.extend(found.iter().filter_map(|k| {
                let (_, name) = k.split_once('|')?;
                Some(format!("{state}{name}"))
            }));
        }
        self.wait_acl_keys(&keys).await
    }

    async fn wait_acl_keys(&self, keys: &[String]) -> Result<AclStatus, SonicError> {
        let d = &self.settings.state_db;
        let deadline = tokio::time::Instant::now() + self.settings.wait;
        loop {
            let mut pending = None;
            for key in keys {
                let status: Option<String> = self
                    .query(d, redis::cmd("HGET").arg(key).arg("status"))
                    .await?;
                if status.as_deref() != Some("Active") {
                    pending = Some((key.clone(), status));
                    break;
                }
            }
            let Some((key, status)) = pending else {
                return Ok(AclStatus::Active);
            };
            if tokio::time::Instant::now() >= deadline {
                // Nothing at all in STATE_DB's ACL tables, ours included:
                // the release does not report (orchagent may simply not have
                // written yet before the deadline, so only then).
                if status.is_none() && self.scan(d, "ACL_TABLE_TABLE|*").await?.is_empty() {
                    return Ok(AclStatus::NotReported);
                }
                return Err(SonicError::Inactive {
                    key,
                    status: status.unwrap_or_else(|| "absent".into()),
                    waited: self.settings.wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
