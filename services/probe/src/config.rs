//! Probe configuration from the environment (SPEC section 8), validated once at
//! start-up; every error names the variable.

use std::{env, path::PathBuf};

pub use telegen_common::ConfigError;
use telegen_common::{ProbeAddr, DEFAULT_PROBE_ADDR};

use crate::domain::limits::MAX_JOB_SLOTS;
use crate::domain::policy::Policy;
use crate::domain::MirrorMode;
use crate::jobs::Settings;
use crate::mirror::erspan::{ErspanSettings, Tos};
use crate::mirror::sonic::{SonicSettings, DEFAULT_DSCP};
use crate::rpc::access::{resolve_id, Allow};
use crate::rpc::tls::ProbeTls;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachPref {
    Auto,
    Tc,
    Tcx,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: ProbeAddr,
    pub max_jobs: u32,
    pub pin_dir: PathBuf,
    pub attach: AttachPref,
    pub mirror_mode: MirrorMode,
    /// TELEGEN_POLICY_*: what requests may ask for.
    pub policy: Policy,
    /// TELEGEN_ERSPAN_*: the netdev of `erspan` jobs (and the interface
    /// name placeholder jobs report).
    pub erspan: ErspanSettings,
    /// TELEGEN_REDIS, TELEGEN_SONIC_*: the SONiC databases of `sonic` jobs.
    pub sonic: SonicSettings,
    pub otlp_endpoint: String,
    /// Group given the unix socket (mode 0660), so that the unprivileged
    /// gateway and exporter can connect: TELEGEN_PROBE_SOCKET_GROUP, a group
    /// name or a numeric gid. Unset: the probe's own group.
    pub socket_gid: Option<u32>,
    /// TELEGEN_PROBE_ALLOW: who may call over the unix socket.
    pub allow: Allow,
    /// TELEGEN_PROBE_TLS_*: mutual TLS for a TCP address.
    pub tls: Option<ProbeTls>,
    /// TELEGEN_PROBE_LOCAL_TCP: loopback TCP beside the unix socket.
    pub local_tcp: Option<std::net::SocketAddr>,
    /// Entries of each flows job's kernel LRU flow table:
    /// TELEGEN_FLOW_TABLE_SIZE, default 1024.
    pub flow_table_size: u32,
    /// The most flow table entries all running jobs may hold together
    /// (kernel memory, ~100 bytes an entry): TELEGEN_FLOW_ENTRIES_MAX,
    /// default 1048576.
    pub flow_entries_max: u64,
    /// The most ACL rules a sonic job's filter may expand to before the job
    /// mirrors its whole port instead: TELEGEN_ACL_MAX_RULES, default 64
    /// (0: never use ACL mirroring).
    pub acl_max_rules: usize,
    /// Where capture jobs' pcapng files live: TELEGEN_CAPTURE_DIR, default
    /// /var/lib/telegen-sonic/captures.
    pub capture_dir: PathBuf,
    /// Their total size at most: TELEGEN_CAPTURE_DIR_MAX_BYTES, default
    /// 268435456 (256 MiB).
    pub capture_dir_max_bytes: u64,
    /// Packets a second all captures together may keep:
    /// TELEGEN_CAPTURE_MAX_PPS, default 10000.
    pub capture_max_pps: u32,
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let err = |var: &'static str, msg: String| ConfigError { var, msg };
        let listen = var("TELEGEN_PROBE_ADDR")
            .unwrap_or_else(|| DEFAULT_PROBE_ADDR.into())
            .parse()
            .map_err(|e| err("TELEGEN_PROBE_ADDR", format!("{e}")))?;
        let tls = ProbeTls::from_vars(var, &listen)?;
        let local_tcp = crate::rpc::tls::local_tcp(var("TELEGEN_PROBE_LOCAL_TCP"), &listen)?;
        let max_jobs = match var("TELEGEN_MAX_JOBS") {
            None => 2,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_JOB_SLOTS / 2).contains(n))
                .ok_or_else(|| {
                    err(
                        "TELEGEN_MAX_JOBS",
                        format!("{v:?} is not a number from 1 to {}", MAX_JOB_SLOTS / 2),
                    )
                })?,
        };
        let pin_dir = PathBuf::from(
            var("TELEGEN_BPF_PIN_DIR").unwrap_or_else(|| "/sys/fs/bpf/telegen-sonic".into()),
        );
        if !pin_dir.is_absolute() {
            return Err(err(
                "TELEGEN_BPF_PIN_DIR",
                "must be an absolute path".into(),
            ));
        }
        let attach = match var("TELEGEN_ATTACH_MODE").as_deref() {
            None | Some("auto") => AttachPref::Auto,
            Some("tc") => AttachPref::Tc,
            Some("tcx") => AttachPref::Tcx,
            Some(v) => {
                return Err(err(
                    "TELEGEN_ATTACH_MODE",
                    format!("{v:?}: expected auto, tc or tcx"),
                ))
            }
        };
        let mirror_mode = match var("TELEGEN_MIRROR_MODE") {
            None => MirrorMode::Erspan,
            Some(v) => {
                MirrorMode::parse(&v).map_err(|m| err("TELEGEN_MIRROR_MODE", m.to_string()))?
            }
        };
        let policy = Policy::from_vars(var, mirror_mode)?;
        let erspan =
            ErspanSettings::from_vars(var, format!("telegen-sonic {}", pin_dir.display()))?;
        let sonic = SonicSettings::from_vars(var)?;
        let socket_gid = match var("TELEGEN_PROBE_SOCKET_GROUP") {
            None => None,
            Some(g) => Some(resolve_id(&g, "/etc/group", "TELEGEN_PROBE_SOCKET_GROUP")?),
        };
        let allow = Allow::from_var(
            var("TELEGEN_PROBE_ALLOW"),
            socket_gid,
            "/etc/passwd",
            "/etc/group",
        )?;
        let flow_table_size = match var("TELEGEN_FLOW_TABLE_SIZE") {
            None => 1024,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (16..=1 << 20).contains(n))
                .ok_or_else(|| {
                    err(
                        "TELEGEN_FLOW_TABLE_SIZE",
                        format!("{v:?} is not a number from 16 to 1048576"),
                    )
                })?,
        };
        let flow_entries_max = match var("TELEGEN_FLOW_ENTRIES_MAX") {
            None => (1u64 << 20).max(flow_table_size.into()),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (u64::from(flow_table_size)..=1 << 30).contains(n))
                .ok_or_else(|| {
                    err(
                        "TELEGEN_FLOW_ENTRIES_MAX",
                        format!("{v:?} is not a number from TELEGEN_FLOW_TABLE_SIZE ({flow_table_size}) to 1073741824"),
                    )
                })?,
        };
        let acl_max_rules = match var("TELEGEN_ACL_MAX_RULES") {
            None => crate::domain::acl::DEFAULT_MAX_RULES,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 1024)
                .ok_or_else(|| {
                    err(
                        "TELEGEN_ACL_MAX_RULES",
                        format!("{v:?} is not a number from 0 to 1024"),
                    )
                })?,
        };
        let capture_dir = var("TELEGEN_CAPTURE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/telegen-sonic/captures"));
        if !capture_dir.is_absolute() {
            return Err(err(
                "TELEGEN_CAPTURE_DIR",
                format!("{} is not an absolute path", capture_dir.display()),
            ));
        }
        let number = |name: &'static str, default: u64, min: u64, max: u64| match var(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| err(name, format!("{v:?} is not a number from {min} to {max}"))),
        };
        let capture_dir_max_bytes =
            number("TELEGEN_CAPTURE_DIR_MAX_BYTES", 256 << 20, 1 << 20, 1 << 40)?;
        let capture_max_pps = number("TELEGEN_CAPTURE_MAX_PPS", 10_000, 1, 1_000_000)? as u32;
        Ok(Config {
            capture_dir,
            capture_dir_max_bytes,
            capture_max_pps,
            acl_max_rules,
            allow,
            tls,
            local_tcp,
            flow_table_size,
            flow_entries_max,
            socket_gid,
            listen,
            max_jobs,
            pin_dir,
            attach,
            mirror_mode,
            policy,
            erspan,
            sonic,
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .unwrap_or_else(|| "http://localhost:4317".into()),
        })
    }
}

impl Config {
    /// What the job core needs of it.
    pub fn job_settings(&self) -> Settings {
        let e = &self.erspan;
        Settings {
            max_jobs: self.max_jobs,
            mirror_mode: self.mirror_mode,
            policy: self.policy.clone(),
            erspan_name: e.name.clone(),
            erspan_endpoints: e.endpoints(),
            erspan_dev: e.dev.clone(),
            // A session's DSCP: the tunnel's TOS without ECN, else SONiC's
            // default; its TTL: the tunnel's, 0 (inherit) meaning 255.
            session_dscp: match e.tos {
                Tos::Value(t) => t >> 2,
                Tos::Inherit => DEFAULT_DSCP,
            },
            session_ttl: if e.ttl == 0 { 255 } else { e.ttl },
            flow_table_size: self.flow_table_size,
            flow_entries_max: self.flow_entries_max,
            acl_max_rules: self.acl_max_rules,
            otlp_endpoint: self.otlp_endpoint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rpc::access::resolve_id;
    fn resolve_group(g: &str, f: &str) -> Result<u32, super::ConfigError> {
        resolve_id(g, f, "TELEGEN_PROBE_SOCKET_GROUP")
    }

    #[test]
    fn socket_group_by_name_or_gid() {
        let dir = std::env::temp_dir().join(format!("telegen-group-{}", std::process::id()));
        std::fs::write(&dir, "root:x:0:\ntelegen:x:997:gw\n").unwrap();
        let f = dir.to_str().unwrap();
        assert_eq!(resolve_group("997", f).ok(), Some(997));
        assert_eq!(resolve_group("telegen", f).ok(), Some(997));
        let e = resolve_group("nope", f).unwrap_err();
        assert_eq!(e.var, "TELEGEN_PROBE_SOCKET_GROUP");
        assert!(e.msg.contains("no \"nope\" in"), "{}", e.msg);
        std::fs::remove_file(&dir).unwrap();
    }
}
