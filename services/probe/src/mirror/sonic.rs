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

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use uuid::Uuid;

use crate::config::ConfigError;

pub const DEFAULT_REDIS: &str = "unix:///var/run/redis/redis.sock";
pub const DEFAULT_DB_CONFIG: &str = "/var/run/redis/sonic-db/database_config.json";
/// SONiC's fixed database ids, used when there is no database_config.json.
pub const CONFIG_DB: i64 = 4;
pub const STATE_DB: i64 = 6;
/// Connect and per-command timeout: redis on a switch answers in
/// microseconds; two seconds is "down or wedged".
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The DSCP written when TELEGEN_ERSPAN_TOS is `inherit` (CS1, low priority).
pub const DEFAULT_DSCP: u8 = 8;

/// Where a redis server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddr {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl RedisAddr {
    /// `unix:///path`, `unix:/path`, or `redis://host[:port]` (6379).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if !path.starts_with('/') {
                return Err(format!(
                    "{s:?}: the unix socket path must be absolute (unix:///path)"
                ));
            }
            return Ok(RedisAddr::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("redis://") {
            let rest = rest.trim_end_matches('/');
            if rest.is_empty() || rest.contains(['/', '@', '?']) {
                return Err(format!(
                    "{s:?}: expected redis://host:port (no credentials, path or options)"
                ));
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                    let port = p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| format!("{s:?}: {p:?} is not a TCP port"))?;
                    (h.to_string(), port)
                }
                _ => (rest.to_string(), 6379),
            };
            if host.is_empty() {
                return Err(format!("{s:?}: no host"));
            }
            return Ok(RedisAddr::Tcp { host, port });
        }
        Err(format!(
            "{s:?} is neither unix:///path/to/redis.sock nor redis://host:port"
        ))
    }

    fn url(&self, db: i64) -> String {
        match self {
            RedisAddr::Unix(p) => format!("unix://{}?db={db}", p.display()),
            RedisAddr::Tcp { host, port } => format!("redis://{host}:{port}/{db}"),
        }
    }
}

impl std::fmt::Display for RedisAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            RedisAddr::Tcp { host, port } => write!(f, "redis://{host}:{port}"),
        }
    }
}

/// One logical database: a server and a db number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbAddr {
    pub addr: RedisAddr,
    pub db: i64,
}

/// TELEGEN_REDIS, TELEGEN_SONIC_DB_CONFIG, TELEGEN_SONIC_WAIT_SEC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SonicSettings {
    pub config_db: DbAddr,
    pub state_db: DbAddr,
    /// How long a start waits for STATE_DB to report the session active.
    pub wait: Duration,
}

/// The parts of SONiC's database_config.json the probe reads.
#[derive(Debug, PartialEq, Eq)]
struct DbConfig {
    config_db: (i64, Option<RedisAddr>),
    state_db: (i64, Option<RedisAddr>),
}

fn parse_db_config(text: &str) -> Result<DbConfig, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let db = |name: &str| -> Result<(i64, Option<RedisAddr>), String> {
        let d = &v["DATABASES"][name];
        let id = d["id"]
            .as_i64()
            .ok_or_else(|| format!("DATABASES.{name}.id is missing or not a number"))?;
        let inst = d["instance"]
            .as_str()
            .map(|i| &v["INSTANCES"][i])
            .filter(|i| i.is_object());
        let addr = inst.and_then(|i| {
            if let Some(p) = i["unix_socket_path"]
                .as_str()
                .filter(|p| p.starts_with('/'))
            {
                return Some(RedisAddr::Unix(PathBuf::from(p)));
            }
            let host = i["hostname"].as_str()?;
            let port = u16::try_from(i["port"].as_u64()?).ok()?;
            Some(RedisAddr::Tcp {
                host: host.to_string(),
                port,
            })
        });
        Ok((id, addr))
    };
    Ok(DbConfig {
        config_db: db("CONFIG_DB")?,
        state_db: db("STATE_DB")?,
    })
}

impl SonicSettings {
    /// Read and validate the variables with `var` (unset or blank = None).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let explicit = match var("TELEGEN_REDIS") {
            None => None,
            Some(s) => Some(RedisAddr::parse(&s).map_err(|msg| ConfigError {
                var: "TELEGEN_REDIS",
                msg,
            })?),
        };
        let (db_config_path, db_config_explicit) = match var("TELEGEN_SONIC_DB_CONFIG") {
            Some(p) => (PathBuf::from(p), true),
            None => (PathBuf::from(DEFAULT_DB_CONFIG), false),
        };
        let db_config = read_db_config(&db_config_path, db_config_explicit)?;
        let default = RedisAddr::parse(DEFAULT_REDIS).expect("valid default");
        let pick = |(id, inst): (i64, Option<RedisAddr>)| DbAddr {
            addr: explicit.clone().or(inst).unwrap_or_else(|| default.clone()),
            db: id,
        };
        let (config_db, state_db) = match db_config {
            Some(c) => (pick(c.config_db), pick(c.state_db)),
            None => (pick((CONFIG_DB, None)), pick((STATE_DB, None))),
        };
        let wait = match var("TELEGEN_SONIC_WAIT_SEC") {
            None => Duration::from_secs(10),
            Some(v) => Duration::from_secs(
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=300).contains(s))
                    .ok_or_else(|| ConfigError {
                        var: "TELEGEN_SONIC_WAIT_SEC",
                        msg: format!("{v:?} is not a number of seconds from 1 to 300"),
                    })?,
            ),
        };
        Ok(SonicSettings {
            config_db,
            state_db,
            wait,
        })
    }
}

fn read_db_config(path: &Path, explicit: bool) -> Result<Option<DbConfig>, ConfigError> {
    let err = |msg: String| ConfigError {
        var: "TELEGEN_SONIC_DB_CONFIG",
        msg,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_db_config(&text)
            .map(Some)
            .map_err(|e| err(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(None),
        Err(e) => Err(err(format!("{}: {e}", path.display()))),
    }
}

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

/// What a job's mirror session asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub dscp: u8,
    pub ttl: u8,
    pub queue: u8,
    pub src_port: String,
    /// RX, TX or BOTH.
    pub direction: &'static str,
}

impl SessionSpec {
    /// The CONFIG_DB hash fields, exactly as documented (README "Mirror modes").
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("type", "ERSPAN".into()),
            ("src_ip", self.src_ip.to_string()),
            ("dst_ip", self.dst_ip.to_string()),
            ("gre_type", "0x88be".into()),
            ("dscp", self.dscp.to_string()),
            ("ttl", self.ttl.to_string()),
            ("queue", self.queue.to_string()),
            ("src_port", self.src_port.clone()),
            ("direction", self.direction.into()),
        ]
    }
}

/// The session name of a job.
pub fn session_name(job: Uuid) -> String {
    format!("telegen-{job}")
}

pub struct Sonic<'a> {
    pub settings: &'a SonicSettings,
}

impl Sonic<'_> {
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
        for (f, v) in spec.fields() {
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
        let d = &self.settings.state_db;
        let start = tokio::time::Instant::now();
        let deadline = start + self.settings.wait;
        loop {
            let status: Option<String> = self
                .query(d, redis::cmd("HGET").arg(&key).arg("status"))
                .await?;
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

    /// Delete the job's session from CONFIG_DB (true: it was there).
    pub async fn delete(&self, job: Uuid) -> Result<bool, SonicError> {
        let key = format!("MIRROR_SESSION|{}", session_name(job));
        let n: i64 = self
            .query(&self.settings.config_db, redis::cmd("DEL").arg(&key))
            .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_addresses() {
        assert_eq!(
            RedisAddr::parse("unix:///var/run/redis/redis.sock").unwrap(),
            RedisAddr::Unix("/var/run/redis/redis.sock".into())
        );
        assert_eq!(
            RedisAddr::parse("redis://127.0.0.1:6380").unwrap(),
            RedisAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 6380
            }
        );
        assert_eq!(
            RedisAddr::parse("redis://localhost").unwrap(),
            RedisAddr::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        for bad in [
            "unix://relative",
            "redis://h:0",
            "redis://u:p@h:1",
            "http://x",
            "redis://",
        ] {
            assert!(RedisAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sonic_database_config() {
        let c = parse_db_config(
            r#"{"INSTANCES":{"redis":{"hostname":"127.0.0.1","port":6379,"unix_socket_path":"/var/run/redis/redis.sock"}},
               "DATABASES":{"CONFIG_DB":{"id":4,"separator":"|","instance":"redis"},
                            "STATE_DB":{"id":6,"separator":"|","instance":"redis"}},"VERSION":"1.0"}"#,
        )
        .unwrap();
        let sock = Some(RedisAddr::Unix("/var/run/redis/redis.sock".into()));
        assert_eq!(c.config_db, (4, sock.clone()));
        assert_eq!(c.state_db, (6, sock));
        assert!(parse_db_config(r#"{"DATABASES":{}}"#).is_err());
    }

    #[test]
    fn settings_name_the_variable() {
        fn from(pairs: &[(&str, &str)]) -> Result<SonicSettings, ConfigError> {
            SonicSettings::from_vars(|n| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
        }
        let e = from(&[("TELEGEN_REDIS", "tcp://x")]).unwrap_err();
        assert_eq!(e.var, "TELEGEN_REDIS");
        let e = from(&[("TELEGEN_SONIC_WAIT_SEC", "0")]).unwrap_err();
        assert_eq!(e.var, "TELEGEN_SONIC_WAIT_SEC");
        // An explicit database_config.json that is missing is an error.
        let e = from(&[("TELEGEN_SONIC_DB_CONFIG", "/nonexistent/db.json")]).unwrap_err();
        assert_eq!(e.var, "TELEGEN_SONIC_DB_CONFIG");
        let dir = std::env::temp_dir().join(format!("telegen-dbcfg-{}", std::process::id()));
        std::fs::write(
            &dir,
            r#"{"INSTANCES":{"r":{"hostname":"10.0.0.1","port":6400}},
               "DATABASES":{"CONFIG_DB":{"id":14,"instance":"r"},"STATE_DB":{"id":16,"instance":"r"}}}"#,
        )
        .unwrap();
        let path = dir.display().to_string();
        let s = from(&[("TELEGEN_SONIC_DB_CONFIG", &path)]).unwrap();
        let tcp = RedisAddr::Tcp {
            host: "10.0.0.1".into(),
            port: 6400,
        };
        assert_eq!(
            s.config_db,
            DbAddr {
                addr: tcp.clone(),
                db: 14
            }
        );
        assert_eq!(s.state_db, DbAddr { addr: tcp, db: 16 });
        assert_eq!(s.wait, Duration::from_secs(10));
        // TELEGEN_REDIS wins over the file's instance; the ids stay.
        let s = from(&[
            ("TELEGEN_SONIC_DB_CONFIG", &path),
            ("TELEGEN_REDIS", "unix:///tmp/r.sock"),
        ])
        .unwrap();
        assert_eq!(s.config_db.addr, RedisAddr::Unix("/tmp/r.sock".into()));
        assert_eq!(s.state_db.db, 16);
        std::fs::remove_file(&dir).unwrap();
    }
}
