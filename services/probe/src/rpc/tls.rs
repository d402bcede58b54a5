//! The probe over TCP: loopback only, unless mutual TLS is configured
//! (TELEGEN_PROBE_TLS_CERT, _KEY, _CLIENT_CA); then only clients with a
//! certificate from that CA are served, on any address.

use std::path::PathBuf;

use telegen_common::{ConfigError, ProbeAddr};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The files of the probe's mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

const VARS: [&str; 3] = [
    "TELEGEN_PROBE_TLS_CERT",
    "TELEGEN_PROBE_TLS_KEY",
    "TELEGEN_PROBE_TLS_CLIENT_CA",
];

impl ProbeTls {
    /// All three variables or none; and the rule for `listen`: a
    /// non-loopback TCP address needs them (the privileged API would
    /// otherwise be open to the network in clear).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        listen: &ProbeAddr,
    ) -> Result<Option<Self>, ConfigError> {
        let got: Vec<Option<String>> = VARS.iter().map(|v| var(v)).collect();
        let tls = match got.as_slice() {
            [Some(cert), Some(key), Some(ca)] => Some(ProbeTls {
                cert: cert.into(),
                key: key.into(),
                client_ca: ca.into(),
            }),
            [None, None, None] => None,
            _ => {
                let missing = VARS
                    .iter()
                    .zip(&got)
                    .find(|(_, g)| g.is_none())
                    .map_or(VARS[0], |(v, _)| *v);
                return Err(ConfigError::new(
                    missing,
                    "mutual TLS needs TELEGEN_PROBE_TLS_CERT, _KEY and _CLIENT_CA together",
                ));
            }
        };
        match listen {
            ProbeAddr::Tcp(a) if tls.is_none() && !a.ip().is_loopback() => Err(ConfigError::new(
                "TELEGEN_PROBE_ADDR",
                format!("{a} is not loopback: serving the privileged API to the network needs mutual TLS (TELEGEN_PROBE_TLS_CERT, _KEY, _CLIENT_CA); or listen on unix: or 127.0.0.1"),
            )),
            ProbeAddr::Unix(_) if tls.is_some() => Err(ConfigError::new(
                "TELEGEN_PROBE_TLS_CERT",
                "TLS is for a TCP TELEGEN_PROBE_ADDR; the unix socket is guarded by peer credentials",
            )),
            _ => Ok(tls),
        }
    }

    /// The server side: our identity, and client certificates required.
    pub fn server_config(&self) -> anyhow::Result<ServerTlsConfig> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))
        };
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?))
            .client_ca_root(Certificate::from_pem(read(&self.client_ca)?))
            .client_auth_optional(false))
    }
}

/// TELEGEN_PROBE_LOCAL_TCP: a loopback address served beside the unix
/// socket (not with a TCP TELEGEN_PROBE_ADDR, which is one already).
pub fn local_tcp(
    v: Option<String>,
    listen: &ProbeAddr,
) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    const VAR: &str = "TELEGEN_PROBE_LOCAL_TCP";
    let Some(v) = v else { return Ok(None) };
    let a: std::net::SocketAddr = v.trim().parse().map_err(|_| {
        ConfigError::new(VAR, format!("{v:?} is not ip:port, e.g. 127.0.0.1:50051"))
    })?;
    if !a.ip().is_loopback() {
        return Err(ConfigError::new(VAR, format!("{a} is not loopback")));
    }
    if matches!(listen, ProbeAddr::Tcp(_)) {
        return Err(ConfigError::new(VAR, "TELEGEN_PROBE_ADDR is TCP already"));
    }
    Ok(Some(a))
}

/// The uid that owns the client end of a loopback TCP connection, from
/// the kernel's socket table (/proc/net/tcp and tcp6, uid column): what
/// SO_PEERCRED is to a unix socket. `local` is our end, `peer` theirs.
pub fn loopback_peer_uid(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> Option<u32> {
    let file = if peer.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let table = std::fs::read_to_string(file).ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (l, r, uid) = (f.get(1)?, f.get(2)?, f.get(7)?);
        (parse_addr(l)? == peer && parse_addr(r)? == local).then(|| uid.parse().ok())?
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6): the address as the
/// kernel's native-endian words, the port in host order.
fn parse_addr(s: &str) -> Option<std::net::SocketAddr> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = (0..a.len() / 8)
        .map(|i| {
            u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    let ip: std::net::IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok()?.into(),
        16 => <[u8; 16]>::try_from(bytes).ok()?.into(),
        _ => return None,
    };
    Some((ip, port).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::vars;

    #[test]
    fn rules() {
        let tcp = |a: &str| ProbeAddr::Tcp(a.parse().unwrap());
        let all = [
            ("TELEGEN_PROBE_TLS_CERT", "c"),
            ("TELEGEN_PROBE_TLS_KEY", "k"),
            ("TELEGEN_PROBE_TLS_CLIENT_CA", "ca"),
        ];
        assert_eq!(
            ProbeTls::from_vars(vars(&[]), &tcp("127.0.0.1:1")).unwrap(),
            None
        );
        let e = ProbeTls::from_vars(vars(&[]), &tcp("0.0.0.0:1")).unwrap_err();
        assert_eq!(e.var, "TELEGEN_PROBE_ADDR");
        assert!(ProbeTls::from_vars(vars(&all), &tcp("0.0.0.0:1"))
            .unwrap()
            .is_some());
        let e = ProbeTls::from_vars(vars(&all[..2]), &tcp("0.0.0.0:1")).unwrap_err();
        assert_eq!(e.var, "TELEGEN_PROBE_TLS_CLIENT_CA");
        let unix = ProbeAddr::Unix("/run/x.sock".into());
        assert!(ProbeTls::from_vars(vars(&all), &unix).is_err());
        let local = |v: &str, l: &ProbeAddr| local_tcp(Some(v.into()), l);
        assert_eq!(
            local("127.0.0.1:50051", &unix).unwrap(),
            Some("127.0.0.1:50051".parse().unwrap())
        );
        assert!(local("0.0.0.0:1", &unix).is_err() && local("x", &unix).is_err());
        assert!(local("127.0.0.1:1", &tcp("127.0.0.1:2")).is_err());
    }

    #[test]
    fn kernel_socket_table_addresses() {
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_addr("0100007F:1F90"),
                Some("127.0.0.1:8080".parse().unwrap())
            );
            assert_eq!(
                parse_addr("00000000000000000000000001000000:0050"),
                Some("[::1]:80".parse().unwrap())
            );
        }
        assert_eq!(parse_addr("zz:1"), None);
    }

    #[test]
    fn finds_the_owner_of_a_loopback_client() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (conn, peer) = server.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            loopback_peer_uid(conn.local_addr().unwrap(), peer),
            Some(me)
        );
    }
}
