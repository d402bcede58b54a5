//! Exporter configuration: the standard OTEL_* variables (as the OpenTelemetry
//! specification defines them) plus TELEGEN_PROBE_ADDR and TELEGEN_PROM_LISTEN.
//! Validated once at start-up; every error names the variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use opentelemetry_otlp::{
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT_DEFAULT,
};
use telegen_common::{ProbeAddr, DEFAULT_PROBE_ADDR};

// The signal-specific names (opentelemetry-otlp defines them only with its
// own transports enabled).
const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
const OTEL_EXPORTER_OTLP_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
const OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";

pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10_000);
/// Finished jobs keep being exported this long, so their final counts reach
/// the backend even if the job ended between two exports.
pub const DEFAULT_FINISHED_GRACE: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Config {
    pub probe: ProbeAddr,
    /// http(s)://host:port of the OTLP/gRPC receiver.
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub interval: Duration,
    /// PEM CA bundle for an https endpoint (else the system roots).
    pub ca_file: Option<PathBuf>,
    pub prom_listen: Option<SocketAddr>,
    pub finished_grace: Duration,
}

impl std::fmt::Debug for Config {
    // Headers carry credentials: print their names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("probe", &self.probe)
            .field("endpoint", &self.endpoint)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .field("ca_file", &self.ca_file)
            .field("prom_listen", &self.prom_listen)
            .finish()
    }
}

pub use telegen_common::ConfigError;

fn err(var: &'static str, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(var, msg)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let probe = var("TELEGEN_PROBE_ADDR")
            .unwrap_or_else(|| DEFAULT_PROBE_ADDR.into())
            .parse()
            .map_err(|e| err("TELEGEN_PROBE_ADDR", format!("{e}")))?;
        if let Some(p) = var(OTEL_EXPORTER_OTLP_PROTOCOL) {
            if p != "grpc" {
                return Err(err(
                    OTEL_EXPORTER_OTLP_PROTOCOL,
                    format!("{p:?}: only grpc is supported"),
                ));
            }
        }
        let (endpoint_var, endpoint) = match var(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) {
            Some(e) => (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, e),
            None => (
                OTEL_EXPORTER_OTLP_ENDPOINT,
                var(OTEL_EXPORTER_OTLP_ENDPOINT).unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            ),
        };
        let endpoint = normalize_endpoint(&endpoint).map_err(|m| err(endpoint_var, m))?;
        let headers = match var(OTEL_EXPORTER_OTLP_METRICS_HEADERS) {
            Some(h) => parse_headers(&h).map_err(|m| err(OTEL_EXPORTER_OTLP_METRICS_HEADERS, m))?,
            None => match var(OTEL_EXPORTER_OTLP_HEADERS) {
                Some(h) => parse_headers(&h).map_err(|m| err(OTEL_EXPORTER_OTLP_HEADERS, m))?,
                None => vec![],
            },
        };
        let timeout = match var(OTEL_EXPORTER_OTLP_METRICS_TIMEOUT) {
            Some(v) => {
                millis(&v, 1, 600_000).map_err(|m| err(OTEL_EXPORTER_OTLP_METRICS_TIMEOUT, m))?
            }
            None => match var(OTEL_EXPORTER_OTLP_TIMEOUT) {
                Some(v) => {
                    millis(&v, 1, 600_000).map_err(|m| err(OTEL_EXPORTER_OTLP_TIMEOUT, m))?
                }
                None => OTEL_EXPORTER_OTLP_TIMEOUT_DEFAULT,
            },
        };
        let interval = match var("OTEL_METRIC_EXPORT_INTERVAL") {
            Some(v) => {
                millis(&v, 100, 86_400_000).map_err(|m| err("OTEL_METRIC_EXPORT_INTERVAL", m))?
            }
            None => DEFAULT_INTERVAL,
        };
        let ca_file = var("OTEL_EXPORTER_OTLP_CERTIFICATE").map(PathBuf::from);
        if let Some(f) = &ca_file {
            if !f.is_file() {
                return Err(err(
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                    format!("{} is not a readable file", f.display()),
                ));
            }
        }
        let prom_listen = var("TELEGEN_PROM_LISTEN")
            .map(|v| {
                v.parse::<SocketAddr>().map_err(|_| {
                    err(
                        "TELEGEN_PROM_LISTEN",
                        format!("{v:?}: expected ip:port, e.g. 127.0.0.1:9464"),
                    )
                })
            })
            .transpose()?;
        let finished_grace = match var("TELEGEN_EXPORT_FINISHED_SEC") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 86_400)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    err(
                        "TELEGEN_EXPORT_FINISHED_SEC",
                        format!("{v:?}: expected 0 to 86400 seconds"),
                    )
                })?,
            None => DEFAULT_FINISHED_GRACE,
        };
        Ok(Config {
            probe,
            endpoint,
            headers,
            timeout,
            interval,
            ca_file,
            prom_listen,
            finished_grace,
        })
    }

    pub fn tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }
}

/// `collector:4317` (the seed's example) means plain http.
fn normalize_endpoint(e: &str) -> Result<String, String> {
    let with_scheme = if e.contains("://") {
        e.to_string()
    } else {
        format!("http://{e}")
    };
    let uri: tonic::transport::Uri = with_scheme
        .parse()
        .map_err(|_| format!("{e:?} is not a URL like http://host:4317"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{e:?}: the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{e:?} has no host"));
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

/// `k1=v1,k2=v2` with percent-encoded values (W3C baggage style), as the
/// OpenTelemetry specification says.
fn parse_headers(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let k = k.trim().to_ascii_lowercase();
            let v =
                percent_decode(v.trim()).ok_or_else(|| format!("bad percent-encoding in {k}"))?;
            let key_ok = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !key_ok {
                return Err(format!("{k:?} is not a valid header name"));
            }
            if tonic::metadata::MetadataValue::try_from(v.as_str()).is_err() {
                return Err(format!("the value of {k} is not a valid header value"));
            }
            Ok((k, v))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn millis(v: &str, min: u64, max: u64) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|ms| (min..=max).contains(ms))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{v:?} is not a number of milliseconds from {min} to {max}"))
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
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.endpoint, "http://localhost:4317");
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert!(c.headers.is_empty() && c.prom_listen.is_none() && !c.tls());
    }

    #[test]
    fn standard_variables() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%20ecret, X-Tenant=a",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("TELEGEN_PROM_LISTEN", "127.0.0.1:9464"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4317");
        assert_eq!(
            c.headers,
            vec![
                ("api-key".into(), "s ecret".into()),
                ("x-tenant".into(), "a".into())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.interval, Duration::from_millis(500));
        assert!(!format!("{c:?}").contains("ecret"));
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://b:4317/"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "https://b:4317");
        assert!(c.tls());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x:1"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "5"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent.pem"),
            ("TELEGEN_PROM_LISTEN", "9464"),
            ("TELEGEN_PROBE_ADDR", "unix:rel"),
        ] {
            assert_eq!(cfg(&[(k, v)]).unwrap_err().var, k, "{k}={v}");
        }
    }
}
