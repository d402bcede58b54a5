//! Where SONiC's databases are: TELEGEN_REDIS, database_config.json and
//! the CONFIG_DB / STATE_DB ids, validated at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use telegen_common::ConfigError;

pub const DEFAULT_REDIS: &str = "unix:///var/run/redis/redis.sock";
pub const DEFAULT_DB_CONFIG: &str = "/var/run/redis/sonic-db/database_config.json";
/// SONiC's fixed database ids, used when there is no database_config.json.
pub const CONFIG_DB: i64 = 4;
pub const STATE_DB: i64 = 6;

/// Where a redis server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddr {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

/// Why a redis address or SONiC's database_config.json is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("{0:?}: the unix socket path must be absolute (unix:///path)")]
    RelativeSocket(String),
    #[error("{0:?}: expected redis://host:port (no credentials, path or options)")]
    Url(String),
    #[error("{0:?}: {1:?} is not a TCP port")]
    Port(String, String),
    #[error("{0:?}: no host")]
    NoHost(String),
    #[error("{0:?} is neither unix:///path/to/redis.sock nor redis://host:port")]
    Scheme(String),
    #[error("{0}")]
    Json(String),
    #[error("DATABASES.{0}.id is missing or not a number")]
    DbId(&'static str),
}

impl RedisAddr {
    /// `unix:///path`, `unix:/path`, or `redis://host[:port]` (6379).
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        let s = s.trim();
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if !path.starts_with('/') {
                return Err(SettingError::RelativeSocket(s.into()));
            }
            return Ok(RedisAddr::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("redis://") {
            let rest = rest.trim_end_matches('/');
            if rest.is_empty() || rest.contains(['/', '@', '?']) {
                return Err(SettingError::Url(s.into()));
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                    let port = p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| SettingError::Port(s.into(), p.into()))?;
                    (h.to_string(), port)
                }
                _ => (rest.to_string(), 6379),
            };
            if host.is_empty() {
                return Err(SettingError::NoHost(s.into()));
            }
            return Ok(RedisAddr::Tcp { host, port });
        }
        Err(SettingError::Scheme(s.into()))
    }

    pub(super) fn url(&self, db: i64) -> String {
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

fn parse_db_config(text: &str) -> Result<DbConfig, SettingError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| SettingError::Json(e.to_string()))?;
    let db = |name: &'static str| -> Result<(i64, Option<RedisAddr>), SettingError> {
        let d = &v["DATABASES"][name];
        let id = d["id"].as_i64().ok_or(SettingError::DbId(name))?;
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
            Some(s) => Some(
                RedisAddr::parse(&s)
                    .map_err(|e| ConfigError::new("TELEGEN_REDIS", e.to_string()))?,
            ),
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
