//! Gateway configuration from the environment (SPEC section 8), validated once
//! at start-up; every error names the variable.

use std::{env, net::SocketAddr, time::Duration};

use telegen_common::{ProbeAddr, DEFAULT_PROBE_ADDR};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Largest accepted request body. A start request is a few hundred bytes; this
/// leaves room for long filter lists and nothing else.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub probe: ProbeAddr,
    /// Bearer tokens, one required on every route but /healthz when any
    /// is configured.
    pub tokens: Tokens,
    /// HTTPS: TELEGEN_API_TLS_CERT and _KEY.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Deadline of one probe call; past it the answer is 503.
    pub rpc_timeout: Duration,
    pub body_limit: usize,
}

impl std::fmt::Debug for Config {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("probe", &self.probe)
            .field("tokens", &self.tokens)
            .field("tls", &self.tls)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

pub use telegen_common::ConfigError;

use crate::tokens::Tokens;

/// A secret's file: refused when every user may read it (a token file is
/// for the gateway's user alone: chown it to that user, chmod 0400).
fn read_secret_file(path: &str) -> Result<String, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    const VAR: &str = "TELEGEN_API_TOKEN_FILE";
    let meta = std::fs::metadata(path).map_err(|e| err(VAR, format!("{path}: {e}")))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(err(
            VAR,
            format!("{path} is readable by every user (mode {:o}): chown it to the gateway's user and chmod 0400", meta.permissions().mode() & 0o777),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| err(VAR, format!("{path}: {e}")))
}

fn err(var: &'static str, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(var, msg)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    /// The same rules over any variable source, so tests need no process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let listen: SocketAddr = var("TELEGEN_API_LISTEN")
            .unwrap_or_else(|| DEFAULT_LISTEN.into())
            .trim()
            .parse()
            .map_err(|_| {
                err(
                    "TELEGEN_API_LISTEN",
                    "expected ip:port, e.g. 127.0.0.1:8080",
                )
            })?;
        let probe = var("TELEGEN_PROBE_ADDR")
            .unwrap_or_else(|| DEFAULT_PROBE_ADDR.into())
            .parse()
            .map_err(|e| err("TELEGEN_PROBE_ADDR", format!("{e}")))?;
        let file = match var("TELEGEN_API_TOKEN_FILE") {
            None => None,
            Some(path) => Some((path.trim().to_string(), read_secret_file(path.trim())?)),
        };
        let env_token = var("TELEGEN_API_TOKEN").map(|t| t.trim().to_string());
        let tokens = Tokens::parse(
            file.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
            env_token.as_deref(),
        )?;
        let tls = crate::tls::from_vars(var("TELEGEN_API_TLS_CERT"), var("TELEGEN_API_TLS_KEY"))?;
        if !listen.ip().is_loopback() && (tokens.is_empty() || tls.is_none()) {
            return Err(err(
                "TELEGEN_API_LISTEN",
                format!(
                    "{listen} is not a loopback address: serving the job API beyond this host \
                     needs TLS (TELEGEN_API_TLS_CERT, TELEGEN_API_TLS_KEY) and tokens \
                     (TELEGEN_API_TOKEN_FILE or TELEGEN_API_TOKEN); missing: {}",
                    [
                        tls.is_none().then_some("TLS"),
                        tokens.is_empty().then_some("tokens"),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" and ")
                ),
            ));
        }
        let rpc_timeout = match var("TELEGEN_API_TIMEOUT_MS") {
            None => Duration::from_secs(10),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (100..=300_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    err(
                        "TELEGEN_API_TIMEOUT_MS",
                        format!("{v:?} is not a number of milliseconds from 100 to 300000"),
                    )
                })?,
        };
        Ok(Config {
            listen,
            probe,
            tokens,
            tls,
            rpc_timeout,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_loopback_and_the_probe_socket() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.probe.to_string(), "unix:/run/telegen-sonic/probe.sock");
        assert!(c.tokens.is_empty());
    }

    #[test]
    fn non_loopback_needs_tls_and_a_token() {
        let e = cfg(&[("TELEGEN_API_LISTEN", "0.0.0.0:8080")]).unwrap_err();
        assert_eq!(e.var, "TELEGEN_API_LISTEN");
        assert!(e.msg.contains("TELEGEN_API_TOKEN") && e.msg.ends_with("missing: TLS and tokens"));
        let wide = [
            ("TELEGEN_API_LISTEN", "0.0.0.0:8080"),
            ("TELEGEN_API_TOKEN", "0123456789abcdef"),
        ];
        let e = cfg(&wide).unwrap_err();
        assert!(e.msg.ends_with("missing: TLS"), "{}", e.msg);
        let e = cfg(&[("TELEGEN_API_TLS_CERT", "/c")]).unwrap_err();
        assert_eq!(e.var, "TELEGEN_API_TLS_KEY");
        let c = cfg(&[
            wide[0],
            wide[1],
            ("TELEGEN_API_TLS_CERT", "/etc/telegen/api.pem"),
            ("TELEGEN_API_TLS_KEY", "/etc/telegen/api.key"),
        ])
        .unwrap();
        assert!(!c.tokens.is_empty());
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        let e = cfg(&[
            ("TELEGEN_API_LISTEN", "[::1]:80"),
            ("TELEGEN_API_TOKEN", "short"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "TELEGEN_API_TOKEN");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("TELEGEN_API_LISTEN", "localhost"),
            ("TELEGEN_PROBE_ADDR", "unix:relative"),
            ("TELEGEN_API_TIMEOUT_MS", "5"),
            ("TELEGEN_API_TIMEOUT_MS", "soon"),
        ] {
            assert_eq!(cfg(&[(k, v)]).unwrap_err().var, k, "{k}={v}");
        }
    }
}
