//! SONiC mirror sessions (SPEC section 5, mode `sonic`): the probe asks the
//! switch's orchestration to mirror a port by writing
//! `MIRROR_SESSION|telegen-<job id>` to CONFIG_DB and waits, bounded, for
//! STATE_DB `MIRROR_SESSION_TABLE|telegen-<job id>` to say `status active`.
//!
//! Ownership: the key names the job's UUID, which this probe generated and
//! recorded in its pinned `jobs` map; the probe only ever deletes the key of
//! one of its own jobs, and never writes over a key that already exists. No
//! marker field is added to the session: SONiC's mirrororch rejects a
//! session with an attribute it does not know.
//!
//! Redis: TELEGEN_REDIS (`unix:///path` or `redis://host:port`, default
//! `unix:///var/run/redis/redis.sock`); when SONiC's database_config.json
//! exists (TELEGEN_SONIC_DB_CONFIG, default
//! /var/run/redis/sonic-db/database_config.json) its CONFIG_DB and STATE_DB
//! ids are used, and its instance's socket when TELEGEN_REDIS is unset. One
//! short-lived connection per operation, every call bounded by a timeout, so
//! a redis that is down or slow fails the call (UNAVAILABLE) instead of
//! hanging a StartJob.

pub mod acl;
mod settings;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use uuid::Uuid;

use crate::domain::acl::{AclPlan, AclStatus};
pub use crate::jobs::ports::SessionSpec;
use crate::jobs::ports::{AclContext, SessionError, SonicBackend};
pub use settings::{
    DbAddr, RedisAddr, SonicSettings, CONFIG_DB, DEFAULT_DB_CONFIG, DEFAULT_REDIS, STATE_DB,
};
/// Connect and per-command timeout: redis on a switch answers in
/// microseconds; two seconds is "down or wedged".
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The DSCP written when TELEGEN_ERSPAN_TOS is `inherit` (CS1, low priority).
pub const DEFAULT_DSCP: u8 = 8;

#[derive(Debug, thiserror::Error)]
pub enum SonicError {
    /// Redis did not answer (down, refused, timed out, protocol error).
    #[error("SONiC redis {addr} (db {db}) is unavailable: {msg}")]
    Unavailable { addr: String, db: i64, msg: String },
    /// A session with our key exists already: not ours, left alone.
    #[error("CONFIG_DB already has {0}, which this probe did not write; left alone")]
    Exists(String),
    /// Orchestration did not activate the session in time.
    #[error("inactive: STATE_DB {key} status is {status} after {waited:?} (want active)")]
    Inactive {
        key: String,
        status: String,
        waited: Duration,
    },
}

/// The CONFIG_DB hash fields of a session, exactly as documented (README
/// "Mirror modes"). A session that ACL rules feed has no `src_port` and
/// `direction` (as `config mirror_session erspan add` writes one).
pub fn session_fields(s: &SessionSpec) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("type", "ERSPAN".into()),
        ("src_ip", s.src_ip.to_string()),
        ("dst_ip", s.dst_ip.to_string()),
        ("gre_type", "0x88be".into()),
        ("dscp", s.dscp.to_string()),
        ("ttl", s.ttl.to_string()),
        ("queue", s.queue.to_string()),
    ];
    if let Some((port, direction)) = &s.src_port {
        f.push(("src_port", port.clone()));
        f.push(("direction", (*direction).into()));
    }
    f
}

/// The session name of a job: `tg-` and the job's UUID in base32 (26
/// lowercase characters), 29 in all: within SONiC's YANG limit for session
/// names (`[a-zA-Z0-9]{1}([-a-zA-Z0-9_]{0,31})`, sonic-buildimage
/// sonic-mirror-session.yang), which a YANG-validating config path
/// enforces. Probes before it wrote `telegen-<uuid>` (44 characters): still
/// recognised, so that their sessions are found and swept.
pub fn session_name(job: Uuid) -> String {
    format!("{SESSION_PREFIX}{}", base32(job.as_bytes()))
}

const SESSION_PREFIX: &str = "tg-";
const LEGACY_PREFIX: &str = "telegen-";
const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32, lowercase, no padding.
fn base32(bytes: &[u8]) -> String {
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(s: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.bytes() {
        let v = B32.iter().position(|&x| x == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The job a session name of ours names (either form); None for any other
/// name, which is never touched.
pub fn job_of_session(name: &str) -> Option<Uuid> {
    if let Some(b32) = name.strip_prefix(SESSION_PREFIX) {
        let bytes = unbase32(b32).filter(|_| b32.len() == 26)?;
        let id = Uuid::from_slice(&bytes).ok()?;
        return (session_name(id) == name).then_some(id);
    }
    Uuid::parse_str(name.strip_prefix(LEGACY_PREFIX)?)
        .ok()
        .filter(|id| name == format!("{LEGACY_PREFIX}{id}"))
}

pub struct Sonic {
    pub settings: SonicSettings,
}

#[tonic::async_trait]
impl SonicBackend for Sonic {
    async fn create(&self, job: Uuid, spec: &SessionSpec) -> Result<(), SessionError> {
        Ok(Sonic::create(self, job, spec).await?)
    }
    async fn acl_context(&self) -> Result<AclContext, SessionError> {
        Ok(AclContext {
            platform: self.acl_platform().await?,
            tables: self.acl_tables().await?,
        })
    }
    async fn write_acl(&self, job: Uuid, plan: &AclPlan) -> Result<(), SessionError> {
        Ok(Sonic::write_acl(self, job, plan).await?)
    }
    /// The session, then the ACL: a rule's `Active` says nothing of the
    /// session it names. Each wait is bounded by TELEGEN_SONIC_WAIT_SEC.
    async fn wait_active(&self, job: Uuid) -> Result<AclStatus, SessionError> {
        // Inactive says which: "mirror session inactive: ..." or "ACL ...".
        let named = |what: &'static str| {
            move |e: SonicError| match e {
                SonicError::Inactive { .. } => SessionError::Inactive(format!("{what} {e}")),
                e => e.into(),
            }
        };
        Sonic::wait_active(self, job)
            .await
            .map_err(named("mirror session"))?;
        self.wait_acl_of(job).await.map_err(named("ACL"))
    }
    async fn delete(&self, job: Uuid) -> Result<bool, SessionError> {
        // Rules first: mirrororch keeps a session that rules still name.
        let acl = self.delete_acl(job).await?;
        Ok(Sonic::delete(self, job).await? || acl)
    }
    async fn sessions(&self) -> Result<Vec<Uuid>, SessionError> {
        let mut ids = Sonic::sessions(self).await?;
        ids.extend(self.acl_jobs().await?);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

impl From<SonicError> for SessionError {
    fn from(e: SonicError) -> Self {
        let msg = e.to_string();
        match e {
            SonicError::Unavailable { .. } => SessionError::Unavailable(msg),
            SonicError::Exists(_) => SessionError::Refused(msg),
            SonicError::Inactive { .. } => SessionError::Inactive(msg),
        }
    }
}

impl Sonic {
    async fn conn(&self, d: &DbAddr) -> Result<MultiplexedConnection, SonicError> {
        let unavailable = |msg: String| SonicError::Unavailable {
            addr: d.addr.to_string(),
            db: d.db,
            msg,
        };
        let client =
            redis::Client::open(d.addr.url(d.db)).map_err(|e| unavailable(e.to_string()))?;
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT));
        // The outer timeout also bounds the SELECT the connection sends.
        match tokio::time::timeout(
            IO_TIMEOUT * 2,
            client.get_multiplexed_async_connection_with_config(&cfg),
        )
        .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(unavailable(e.to_string())),
            Err(_) => Err(unavailable(format!(
                "no connection within {:?}",
                IO_TIMEOUT * 2
            ))),
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        d: &DbAddr,
        cmd: &redis::Cmd,
    ) -> Result<T, SonicError> {
        let mut c = self.conn(d).await?;
        let unavailable = |msg: String| SonicError::Unavailable {
            addr: d.addr.to_string(),
            db: d.db,
            msg,
        };
        match tokio::time::timeout(IO_TIMEOUT, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e.to_string())),
            Err(_) => Err(unavailable(format!("no answer within {IO_TIMEOUT:?}"))),
        }
    }

    /// The keys matching `pattern`: SCAN, not KEYS (CONFIG_DB on a switch
    /// is large and shared).
    async fn scan(&self, d: &DbAddr, pattern: &str) -> Result<Vec<String>, SonicError> {
        let (mut cursor, mut keys) = (0u64, Vec::new());
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .query(
                    d,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Write the job's session to CONFIG_DB. A key that exists already is
    /// refused (never overwritten). When the write itself fails, a best
    /// effort delete follows (the write may have landed before a timeout).
    pub async fn create(&self, job: Uuid, spec: &SessionSpec) -> Result<(), SonicError> {
        let key = format!("MIRROR_SESSION|{}", session_name(job));
        let d = &self.settings.config_db;
        let exists: bool = self.query(d, redis::cmd("EXISTS").arg(&key)).await?;
        if exists {
            return Err(SonicError::Exists(key));
        }
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (f, v) in session_fields(spec) {
            hset.arg(f).arg(v);
        }
        if let Err(e) = self.query::<i64>(d, &hset).await {
            let _ = self.delete(job).await;
            return Err(e);
        }
        Ok(())
    }

    /// Wait (TELEGEN_SONIC_WAIT_SEC) for STATE_DB to report the session
    /// active.
    pub async fn wait_active(&self, job: Uuid) -> Result<(), SonicError> {
        let key = format!("MIRROR_SESSION_TABLE|{}", session_name(job));
        // A start an older probe wrote under its name, adopted mid-wait.
        let legacy = format!("MIRROR_SESSION_TABLE|{LEGACY_PREFIX}{job}");
        let d = &self.settings.state_db;
        let start = tokio::time::Instant::now();
        let deadline = start + self.settings.wait;
        loop {
            let mut status: Option<String> = self
                .query(d, redis::cmd("HGET").arg(&key).arg("status"))
                .await?;
            if status.is_none() {
                status = self
                    .query(d, redis::cmd("HGET").arg(&legacy).arg("status"))
                    .await?;
            }
            if status.as_deref() == Some("active") {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SonicError::Inactive {
                    key,
                    status: status.unwrap_or_else(|| "absent".into()),
                    waited: self.settings.wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Delete the job's session from CONFIG_DB, under either name (true:
    /// it was there).
    pub async fn delete(&self, job: Uuid) -> Result<bool, SonicError> {
        let key = format!("MIRROR_SESSION|{}", session_name(job));
        let legacy = format!("MIRROR_SESSION|{LEGACY_PREFIX}{job}");
        let n: i64 = self
            .query(
                &self.settings.config_db,
                redis::cmd("DEL").arg(&key).arg(&legacy),
            )
            .await?;
        Ok(n > 0)
    }

    /// The job ids of every session in CONFIG_DB named like ours (either
    /// form); other names are never touched.
    pub async fn sessions(&self) -> Result<Vec<Uuid>, SonicError> {
        let mut ids = Vec::new();
        for prefix in [SESSION_PREFIX, LEGACY_PREFIX] {
            let keys = self
                .scan(
                    &self.settings.config_db,
                    &format!("MIRROR_SESSION|{prefix}*"),
                )
                .await?;
            ids.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix("MIRROR_SESSION|"))
                    .filter_map(job_of_session),
            );
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sonic_and_name_their_job() {
        let id: Uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".parse().unwrap();
        let name = session_name(id);
        // RFC 4648 base32 (python3: base64.b32encode(uuid.bytes).lower()).
        assert_eq!(name, "tg-b4pc2pclljuxrb4wuw2mhuxb6a");
        // sonic-mirror-session.yang: [a-zA-Z0-9]{1}([-a-zA-Z0-9_]{0,31})
        assert!(name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(job_of_session(&name), Some(id));
        assert_eq!(job_of_session(&format!("telegen-{id}")), Some(id));
        for other in [
            "EVERFLOW",
            "tg-",
            "tg-b4pc2phllju7rb4wuw2mhuxb6",
            "tg-b4pc2phllju7rb4wuw2mhuxb6a0",
            "tg-B4PC2PHLLJU7RB4WUW2MHUXB6A",
            "telegen-not-a-uuid",
            "telegen-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        ] {
            assert_eq!(job_of_session(other), None, "{other}");
        }
        for _ in 0..100 {
            let id = Uuid::new_v4();
            assert_eq!(job_of_session(&session_name(id)), Some(id));
        }
    }
}
