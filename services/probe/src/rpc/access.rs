//! Who may call the probe, and who did. On the unix socket every call's
//! peer credentials (SO_PEERCRED, taken by the kernel at connect: they
//! cannot be forged) must be in TELEGEN_PROBE_ALLOW; state changes are
//! written to the audit log with them and with the identity a front end
//! (the gateway) claims for its own caller in `x-telegen-caller`.

use std::fmt;

use telegen_common::ConfigError;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};
use tonic::{Request, Status};

/// The metadata key a front end names its caller in (informational: the
/// probe trusts the peer credentials, and logs the claim beside them).
pub const CALLER_KEY: &str = "x-telegen-caller";

/// The uids and gids allowed on the socket (a peer passes with either).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl Allow {
    /// TELEGEN_PROBE_ALLOW: `uid:N`, `gid:N`, `user:NAME`, `group:NAME`,
    /// comma-separated. Unset: root, the probe's own user, and the socket's
    /// group (the unprivileged services).
    pub fn from_var(
        v: Option<String>,
        socket_gid: Option<u32>,
        passwd: &str,
        group: &str,
    ) -> Result<Self, ConfigError> {
        const VAR: &str = "TELEGEN_PROBE_ALLOW";
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let Some(v) = v else {
            let mut a = Allow {
                uids: vec![0, me],
                gids: socket_gid.into_iter().collect(),
            };
            a.uids.dedup();
            return Ok(a);
        };
        let mut a = Allow::default();
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || {
                ConfigError::new(
                    VAR,
                    format!("{item:?} is not uid:N, gid:N, user:NAME or group:NAME"),
                )
            };
            let (kind, val) = item.split_once(':').ok_or_else(bad)?;
            match kind {
                "uid" => a.uids.push(val.parse().map_err(|_| bad())?),
                "gid" => a.gids.push(val.parse().map_err(|_| bad())?),
                "user" => a.uids.push(resolve_id(val, passwd, VAR)?),
                "group" => a.gids.push(resolve_id(val, group, VAR)?),
                _ => return Err(bad()),
            }
        }
        if a.uids.is_empty() && a.gids.is_empty() {
            return Err(ConfigError::new(VAR, "allows no one".to_string()));
        }
        Ok(a)
    }

    fn permits(&self, uid: u32, gid: u32) -> bool {
        self.uids.contains(&uid) || self.gids.contains(&gid)
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = (self.uids.iter().map(|u| format!("uid:{u}")))
            .chain(self.gids.iter().map(|g| format!("gid:{g}")))
            .collect();
        f.write_str(&ids.join(","))
    }
}

/// A user or group name, or a number, resolved through a passwd or group
/// file (no NSS: the probe runs in a minimal container where /etc is what
/// there is). The id is the third field in both.
pub fn resolve_id(name: &str, file: &str, var: &'static str) -> Result<u32, ConfigError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::new(
            var,
            format!("{name:?} is not a number and {file} is unreadable: {e}"),
        )
    })?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(|| ConfigError::new(var, format!("no {name:?} in {file}")))
}

/// A user's primary group, from the passwd file (fourth field).
fn primary_gid(uid: u32, passwd: &str) -> Option<u32> {
    let text = std::fs::read_to_string(passwd).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f.get(3)?.parse().ok())?
    })
}

/// Who made a call, as far as the probe can tell.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
    /// `unix` or the TCP peer address.
    pub transport: String,
    /// What a front end says of its own caller (`x-telegen-caller`).
    pub claimed: Option<String>,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        write!(
            f,
            "uid={} gid={} pid={} via {}",
            id(self.uid.map(|v| v.to_string())),
            id(self.gid.map(|v| v.to_string())),
            id(self.pid.map(|v| v.to_string())),
            self.transport
        )
    }
}

/// The caller of `req` (set by `check`).
pub fn caller<T>(req: &Request<T>) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default()
}

/// The interceptor of the Probe service: a unix peer not allowed gets
/// PERMISSION_DENIED; every request carries its `Caller`.
pub fn check(allow: &Allow, mut req: Request<()>) -> Result<Request<()>, Status> {
    let claimed = req
        .metadata()
        .get(CALLER_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(128).collect());
    let mut c = Caller {
        claimed,
        ..Default::default()
    };
    if let Some(uds) = req.extensions().get::<UdsConnectInfo>() {
        c.transport = "unix".into();
        let Some(cred) = uds.peer_cred else {
            return Err(Status::permission_denied(
                "the probe could not read the peer's credentials",
            ));
        };
        (c.uid, c.gid, c.pid) = (Some(cred.uid()), Some(cred.gid()), cred.pid());
        if !allow.permits(cred.uid(), cred.gid()) {
            tracing::warn!(target: "audit", caller = ?c.to_string(), claimed = c.claimed.as_deref().unwrap_or("-"), "refused: not in TELEGEN_PROBE_ALLOW");
            return Err(Status::permission_denied(format!(
                "uid {} gid {} may not use this probe (TELEGEN_PROBE_ALLOW: {allow})",
                cred.uid(),
                cred.gid()
            )));
        }
    } else if let Some(tls) = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>() {
        // Mutual TLS: the handshake checked the client's certificate
        // against TELEGEN_PROBE_TLS_CLIENT_CA.
        let peer = tls.get_ref().remote_addr();
        c.transport = format!("tcp {} mTLS", peer.map_or("-".into(), |a| a.to_string()));
    } else if let Some(tcp) = req.extensions().get::<TcpConnectInfo>() {
        // Loopback only (tls.rs): the owner of the client's socket, from
        // the kernel's table, under the same rule as the unix socket.
        let (Some(local), Some(peer)) = (tcp.local_addr(), tcp.remote_addr()) else {
            return Err(Status::permission_denied(
                "the probe could not tell who is calling",
            ));
        };
        c.transport = format!("tcp {peer}");
        let uid = super::tls::loopback_peer_uid(local, peer);
        let gid = uid.and_then(|u| primary_gid(u, "/etc/passwd"));
        (c.uid, c.gid) = (uid, gid);
        if !uid.is_some_and(|u| allow.permits(u, gid.unwrap_or(u32::MAX))) {
            tracing::warn!(target: "audit", caller = ?c.to_string(), "refused: not in TELEGEN_PROBE_ALLOW");
            return Err(Status::permission_denied(format!(
                "uid {} may not use this probe (TELEGEN_PROBE_ALLOW: {allow})",
                uid.map_or("unknown".into(), |u| u.to_string())
            )));
        }
    }
    req.extensions_mut().insert(c);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        let dir = std::env::temp_dir().join(format!("telegen-allow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pw, gr) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(
            &pw,
            "root:x:0:0::/root:/bin/sh\ntelegen:x:998:997::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(&gr, "root:x:0:\ntelegen:x:997:\n").unwrap();
        let (pw, gr) = (pw.to_str().unwrap(), gr.to_str().unwrap());
        let a = Allow::from_var(
            Some("uid:5, user:telegen,group:telegen".into()),
            None,
            pw,
            gr,
        )
        .unwrap();
        assert_eq!((a.uids.clone(), a.gids.clone()), (vec![5, 998], vec![997]));
        assert!(a.permits(5, 1) && a.permits(1, 997) && !a.permits(1, 1));
        assert_eq!(a.to_string(), "uid:5,uid:998,gid:997");
        let d = Allow::from_var(None, Some(997), pw, gr).unwrap();
        assert!(d.uids.contains(&0) && d.gids == vec![997]);
        for bad in ["uid:x", "who:1", "user:nobody-here", " , ", "uid"] {
            let e = Allow::from_var(Some(bad.into()), None, pw, gr).unwrap_err();
            assert_eq!(e.var, "TELEGEN_PROBE_ALLOW", "{bad}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
