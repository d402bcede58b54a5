//! TELEGEN_PROBE_ADDR: `unix:/path` (default) or `host:port`.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

pub const DEFAULT_PROBE_ADDR: &str = "unix:/run/telegen-sonic/probe.sock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

#[derive(Debug, thiserror::Error)]
#[error("invalid probe address {0:?}: expected unix:/absolute/path or host:port")]
pub struct AddrError(String);

impl FromStr for ProbeAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            let path = PathBuf::from(path);
            if path.is_absolute() && path.file_name().is_some() {
                return Ok(ProbeAddr::Unix(path));
            }
            return Err(AddrError(s.to_string()));
        }
        let s_trim = s.strip_prefix("http://").unwrap_or(s);
        s_trim
            .parse()
            .map(ProbeAddr::Tcp)
            .map_err(|_| AddrError(s.to_string()))
    }
}

impl fmt::Display for ProbeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ProbeAddr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// A lazily connecting gRPC channel to the probe: calls fail with UNAVAILABLE
/// while the probe is down and succeed again once it is back.
pub fn connect_probe(addr: &ProbeAddr) -> Channel {
    match addr {
        ProbeAddr::Tcp(a) => Endpoint::from_shared(format!("http://{a}"))
            .expect("a SocketAddr always forms a valid URI")
            .connect_lazy(),
        ProbeAddr::Unix(path) => {
            let path = path.clone();
            // The URI is required by tonic but unused: the connector dials the socket.
            Endpoint::from_static("http://probe.invalid").connect_with_connector_lazy(
                tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            DEFAULT_PROBE_ADDR.parse::<ProbeAddr>().unwrap(),
            ProbeAddr::Unix("/run/telegen-sonic/probe.sock".into())
        );
        assert_eq!(
            "127.0.0.1:50051".parse::<ProbeAddr>().unwrap(),
            ProbeAddr::Tcp("127.0.0.1:50051".parse().unwrap())
        );
        assert!("unix:relative".parse::<ProbeAddr>().is_err());
        assert!("nonsense".parse::<ProbeAddr>().is_err());
    }
}
