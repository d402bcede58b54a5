//! HTTP to the gateway: a `Transport` (one request, one answer), with a
//! blocking plain-HTTP implementation on ureq.

use std::{fmt, io, str::FromStr, time::Duration};

use ureq::http::Uri;

/// The gateway's base URL: `http[s]://host[:port][/prefix]`, no trailing
/// slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase(String);

impl ApiBase {
    /// `base` + `path` (which starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ApiBase {
    type Err = String;

    /// Accepts `http[s]://host:port[/prefix]`, or `host:port` meaning http.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let full = if s.contains("://") {
            s.to_string()
        } else {
            format!("http://{s}")
        };
        let uri: Uri = full
            .parse()
            .map_err(|e| format!("{s:?} is not a URL ({e}); e.g. http://127.0.0.1:8080"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_string(),
            _ => {
                return Err(format!(
                    "{s:?}: only http:// and https:// URLs are supported"
                ))
            }
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| format!("{s:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{s:?}: credentials in the URL are not supported; use --token"
            ));
        }
        if uri.query().is_some() || full.contains('#') {
            return Err(format!("{s:?}: a query or fragment is not allowed here"));
        }
        let prefix = uri.path().trim_end_matches('/');
        Ok(ApiBase(format!("{scheme}://{authority}{prefix}")))
    }
}

/// The certificates of a PEM file (`--cacert`).
pub fn read_pem_certs(
    path: &std::path::Path,
) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--cacert {}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!(
            "--cacert {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// The system's CA bundle (Debian's path, then others'); none found means
/// https only with --cacert.
fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .find_map(|p| read_pem_certs(std::path::Path::new(p)).ok())
    .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// An HTTP answer of any status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// No HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Nothing answered (refused, unresolvable, timed out, reset).
    Unreachable(String),
    /// Something answered, but not HTTP we can read.
    Protocol(String),
}

pub trait Transport {
    /// The base URL, for messages.
    fn base(&self) -> &ApiBase;
    /// Send one request; `body` is JSON.
    fn send(&self, method: Method, path: &str, body: Option<&str>)
        -> Result<Reply, TransportError>;
    /// GET `path` and copy a 2xx body to `out` as it arrives, flushed chunk
    /// by chunk, for as long as it lasts (no overall deadline); any other
    /// answer is returned whole.
    fn stream(&self, path: &str, out: &mut dyn io::Write) -> Result<Reply, TransportError> {
        let _ = (path, out);
        Err(TransportError::Protocol(
            "streaming is not supported here".into(),
        ))
    }
}

/// Blocking HTTP/1.1 with ureq, https with rustls. Proxy variables are
/// ignored: the gateway is local to the switch.
pub struct HttpTransport {
    agent: ureq::Agent,
    base: ApiBase,
    token: Option<String>,
    timeout: Duration,
}

impl HttpTransport {
    pub fn new(base: ApiBase, token: Option<String>, timeout: Duration) -> Self {
        Self::with_roots(base, token, timeout, Vec::new())
    }

    /// `roots`: the CA certificates an https gateway's certificate must
    /// chain to (empty: the system's bundle).
    pub fn with_roots(
        base: ApiBase,
        token: Option<String>,
        timeout: Duration,
        roots: Vec<ureq::tls::Certificate<'static>>,
    ) -> Self {
        let roots = if roots.is_empty() {
            system_roots()
        } else {
            roots
        };
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("telegenctl/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpTransport {
            agent: config.into(),
            base,
            // An empty TELEGEN_API_TOKEN means none.
            token: token.filter(|t| !t.is_empty()),
            timeout,
        }
    }

    fn map_error(&self, e: ureq::Error) -> TransportError {
        use ureq::Error as E;
        match e {
            E::Timeout(_) => TransportError::Unreachable(format!(
                "no answer within {}",
                human_duration(self.timeout)
            )),
            E::Io(e) => TransportError::Unreachable(io_reason(&e)),
            E::HostNotFound => TransportError::Unreachable("host not found".into()),
            E::ConnectionFailed => TransportError::Unreachable("connection failed".into()),
            other => TransportError::Protocol(other.to_string()),
        }
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::UnexpectedEof => "connection closed before an answer".into(),
        _ => e.to_string(),
    }
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

impl Transport for HttpTransport {
    fn base(&self) -> &ApiBase {
        &self.base
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Reply, TransportError> {
        let url = self.base.join(path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match method {
            Method::Get => {
                let mut req = self.agent.get(&url).header("Accept", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            Method::Post => {
                let mut req = self.agent.post(&url).header("Accept", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                match body {
                    Some(b) => req.header("Content-Type", "application/json").send(b),
                    None => req.send_empty(),
                }
            }
        };
        let mut resp = result.map_err(|e| self.map_error(e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.map_error(e))?;
        Ok(Reply { status, body })
    }

    fn stream(&self, path: &str, out: &mut dyn io::Write) -> Result<Reply, TransportError> {
        let url = self.base.join(path);
        // The answer must start within the timeout; the body runs until
        // the job ends.
        let mut req = self
            .agent
            .get(&url)
            .config()
            .timeout_global(None)
            .timeout_connect(Some(self.timeout))
            .timeout_recv_response(Some(self.timeout))
            .build();
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(|e| self.map_error(e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| self.map_error(e))?;
            return Ok(Reply { status, body });
        }
        let mut body = resp.into_body().into_reader();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match io::Read::read(&mut body, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TransportError::Unreachable(io_reason(&e))),
            };
            // A reader that went away (`| head`) ends the copy, quietly.
            if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        Ok(Reply {
            status,
            body: String::new(),
        })
    }
}

#[cfg(test)]
mod tests;
