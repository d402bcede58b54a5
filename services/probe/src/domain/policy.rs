//! The operator's policy: which ports jobs may use, which mirror modes a
//! request may choose, how long a job may run. Enforced in the probe, the
//! only place a caller cannot go around it (the gateway and any other
//! client of the socket meet the same rules), before anything is created.

use telegen_common::ConfigError;

use super::capture::MAX_SNAPLEN;
use super::modes::MirrorMode;
use super::validate::StartSpec;

/// Ports denied unless the operator lists others: SONiC's management
/// interface, and loopback.
pub const DEFAULT_DENY_PORTS: &str = "eth0,lo";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// TELEGEN_POLICY_PORTS: patterns (`*`, `?`) a job's port must match.
    pub ports: Vec<String>,
    /// TELEGEN_POLICY_DENY_PORTS: patterns no job's port may match.
    pub deny_ports: Vec<String>,
    /// TELEGEN_POLICY_MIRROR_MODES: the modes a request may name; by
    /// default only the configured one (TELEGEN_MIRROR_MODE).
    pub mirror_modes: Vec<MirrorMode>,
    /// TELEGEN_POLICY_MAX_DURATION_SEC: when set, every job must end by
    /// then (a job until stopped is refused).
    pub max_duration_sec: Option<u32>,
    /// TELEGEN_POLICY_CAPTURE: the largest snaplen a capture job may ask
    /// for (`on`: 9216; a number, e.g. 128 for headers only); None: `off`,
    /// no packet captures at all.
    pub capture_snaplen_max: Option<u32>,
}

/// A request the policy refuses: which rule, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the probe's policy ({rule}): {why}")]
pub struct Denied {
    pub rule: &'static str,
    pub why: String,
}

impl Policy {
    /// Every port but the default denied ones, the configured mode, any
    /// duration.
    pub fn default_for(configured: MirrorMode) -> Self {
        Policy {
            ports: vec!["*".into()],
            deny_ports: list(DEFAULT_DENY_PORTS),
            mirror_modes: vec![configured],
            max_duration_sec: None,
            capture_snaplen_max: Some(MAX_SNAPLEN),
        }
    }

    /// Read TELEGEN_POLICY_* with `var` (unset or blank: the default).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        configured: MirrorMode,
    ) -> Result<Self, ConfigError> {
        let mut p = Policy::default_for(configured);
        if let Some(v) = var("TELEGEN_POLICY_PORTS") {
            p.ports = patterns("TELEGEN_POLICY_PORTS", &v)?;
        }
        if let Some(v) = var("TELEGEN_POLICY_DENY_PORTS") {
            // "none" lifts the default denial.
            p.deny_ports = if v.trim() == "none" {
                Vec::new()
            } else {
                patterns("TELEGEN_POLICY_DENY_PORTS", &v)?
            };
        }
        if let Some(v) = var("TELEGEN_POLICY_MIRROR_MODES") {
            p.mirror_modes = if v.trim() == "*" {
                vec![
                    MirrorMode::Erspan,
                    MirrorMode::Sonic,
                    MirrorMode::Direct,
                    MirrorMode::Placeholder,
                ]
            } else {
                list(&v)
                    .iter()
                    .map(|m| MirrorMode::parse(m))
                    .collect::<Result<_, _>>()
                    .map_err(|e| ConfigError::new("TELEGEN_POLICY_MIRROR_MODES", e.to_string()))?
            };
        }
        if let Some(v) = var("TELEGEN_POLICY_CAPTURE") {
            p.capture_snaplen_max = match v.trim() {
                "on" => Some(MAX_SNAPLEN),
                "off" => None,
                n => Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| (14..=MAX_SNAPLEN).contains(n))
                        .ok_or_else(|| {
                            ConfigError::new(
                                "TELEGEN_POLICY_CAPTURE",
                                format!(
                                    "{v:?} is not on, off or a snaplen from 14 to {MAX_SNAPLEN}"
                                ),
                            )
                        })?,
                ),
            };
        }
        if let Some(v) = var("TELEGEN_POLICY_MAX_DURATION_SEC") {
            let n = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=super::validate::MAX_DURATION_SEC).contains(n));
            p.max_duration_sec = Some(n.ok_or_else(|| {
                ConfigError::new(
                    "TELEGEN_POLICY_MAX_DURATION_SEC",
                    format!(
                        "{v:?} is not a number of seconds from 1 to {}",
                        super::validate::MAX_DURATION_SEC
                    ),
                )
            })?);
        }
        Ok(p)
    }

    /// Whether a validated request may run.
    pub fn check(&self, spec: &StartSpec) -> Result<(), Denied> {
        let port = spec.port.as_str();
        if let Some(p) = self.deny_ports.iter().find(|p| glob(p, port)) {
            return Err(Denied {
                rule: "TELEGEN_POLICY_DENY_PORTS",
                why: format!("port {port} matches {p:?}"),
            });
        }
        if !self.ports.iter().any(|p| glob(p, port)) {
            return Err(Denied {
                rule: "TELEGEN_POLICY_PORTS",
                why: format!("port {port} matches none of {}", self.ports.join(",")),
            });
        }
        if !self.mirror_modes.contains(&spec.mirror) {
            let allowed: Vec<&str> = self.mirror_modes.iter().map(|m| m.as_str()).collect();
            return Err(Denied {
                rule: "TELEGEN_POLICY_MIRROR_MODES",
                why: format!(
                    "mirror mode {} is not one requests may choose here ({})",
                    spec.mirror.as_str(),
                    allowed.join(",")
                ),
            });
        }
        if let Some(c) = &spec.capture {
            match self.capture_snaplen_max {
                None => {
                    return Err(Denied {
                        rule: "TELEGEN_POLICY_CAPTURE",
                        why: "packet captures are off on this probe".into(),
                    })
                }
                Some(max) if c.snaplen > max => {
                    return Err(Denied {
                        rule: "TELEGEN_POLICY_CAPTURE",
                        why: format!(
                            "captures keep at most {max} bytes a packet here, not {}",
                            c.snaplen
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(max) = self.max_duration_sec {
            if spec.duration_sec == 0 || spec.duration_sec > max {
                let asked = match spec.duration_sec {
                    0 => "until stopped".to_string(),
                    d => format!("{d} s"),
                };
                return Err(Denied {
                    rule: "TELEGEN_POLICY_MAX_DURATION_SEC",
                    why: format!("jobs run at most {max} s here, not {asked}"),
                });
            }
        }
        Ok(())
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Port patterns: interface-name characters plus `*` and `?`.
fn patterns(var: &'static str, v: &str) -> Result<Vec<String>, ConfigError> {
    let ps = list(v);
    if ps.is_empty() {
        return Err(ConfigError::new(var, "no pattern given"));
    }
    for p in &ps {
        let ok = p.len() <= 64
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-*?".contains(c));
        if !ok {
            return Err(ConfigError::new(
                var,
                format!(
                    "{p:?} is not a port pattern (letters, digits, _ . - and the wildcards * ?)"
                ),
            ));
        }
    }
    Ok(ps)
}

/// Shell-style match of `*` (any run) and `?` (one character).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::{self, StartRequest};
    use crate::testutil::vars;

    fn spec(port: &str, mode: &str, duration: u32) -> StartSpec {
        let req = StartRequest {
            port: port.into(),
            direction: "ingress".into(),
            duration_sec: Some(duration),
            mirror_mode: mode.into(),
            ..Default::default()
        };
        validate::start(&req, MirrorMode::Erspan).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("*", "Ethernet0"));
        assert!(glob("Ethernet*", "Ethernet16"));
        assert!(glob("Ethernet?", "Ethernet4"));
        assert!(!glob("Ethernet?", "Ethernet16"));
        assert!(glob("*net1*", "Ethernet16"));
        assert!(!glob("eth0", "eth01"));
        assert!(glob("e*0", "eth0"));
    }

    #[test]
    fn defaults_deny_management_and_other_modes() {
        let p = Policy::from_vars(vars(&[]), MirrorMode::Erspan).unwrap();
        assert!(p.check(&spec("Ethernet0", "", 60)).is_ok());
        let d = p.check(&spec("eth0", "", 60)).unwrap_err();
        assert_eq!(d.rule, "TELEGEN_POLICY_DENY_PORTS");
        let d = p.check(&spec("Ethernet0", "direct", 60)).unwrap_err();
        assert_eq!(d.rule, "TELEGEN_POLICY_MIRROR_MODES");
        assert!(d.to_string().contains("direct"), "{d}");
        assert!(p.check(&spec("Ethernet0", "erspan", 0)).is_ok());
    }

    #[test]
    fn configured_rules() {
        let p = Policy::from_vars(
            vars(&[
                ("TELEGEN_POLICY_PORTS", "Ethernet*, PortChannel1?"),
                ("TELEGEN_POLICY_DENY_PORTS", "Ethernet0"),
                ("TELEGEN_POLICY_MIRROR_MODES", "erspan,placeholder"),
                ("TELEGEN_POLICY_MAX_DURATION_SEC", "600"),
            ]),
            MirrorMode::Erspan,
        )
        .unwrap();
        assert!(p.check(&spec("Ethernet4", "placeholder", 600)).is_ok());
        assert!(p.check(&spec("PortChannel10", "", 60)).is_ok());
        let rule = |port, mode, d| p.check(&spec(port, mode, d)).unwrap_err().rule;
        assert_eq!(rule("Ethernet0", "", 60), "TELEGEN_POLICY_DENY_PORTS");
        assert_eq!(rule("Vlan100", "", 60), "TELEGEN_POLICY_PORTS");
        assert_eq!(
            rule("Ethernet4", "sonic", 60),
            "TELEGEN_POLICY_MIRROR_MODES"
        );
        assert_eq!(
            rule("Ethernet4", "", 601),
            "TELEGEN_POLICY_MAX_DURATION_SEC"
        );
        assert_eq!(rule("Ethernet4", "", 0), "TELEGEN_POLICY_MAX_DURATION_SEC");
        let open = Policy::from_vars(
            vars(&[
                ("TELEGEN_POLICY_DENY_PORTS", "none"),
                ("TELEGEN_POLICY_MIRROR_MODES", "*"),
            ]),
            MirrorMode::Erspan,
        )
        .unwrap();
        assert!(open.check(&spec("eth0", "sonic", 0)).is_ok());
    }

    #[test]
    fn captures_can_be_off_or_headers_only() {
        let capture = |snaplen: u32| {
            let req = StartRequest {
                port: "Ethernet0".into(),
                direction: "ingress".into(),
                result_detail: "pcaplike".into(),
                capture: Some(crate::domain::capture::CaptureRequest {
                    snaplen: Some(snaplen),
                    ..Default::default()
                }),
                ..Default::default()
            };
            validate::start(&req, MirrorMode::Erspan).unwrap()
        };
        let on = Policy::from_vars(vars(&[]), MirrorMode::Erspan).unwrap();
        assert!(on.check(&capture(9216)).is_ok());
        let headers = Policy::from_vars(
            vars(&[("TELEGEN_POLICY_CAPTURE", "128")]),
            MirrorMode::Erspan,
        )
        .unwrap();
        assert!(headers.check(&capture(128)).is_ok());
        let d = headers.check(&capture(129)).unwrap_err();
        assert_eq!(d.rule, "TELEGEN_POLICY_CAPTURE");
        assert!(d.why.contains("at most 128"), "{d}");
        let off = Policy::from_vars(
            vars(&[("TELEGEN_POLICY_CAPTURE", "off")]),
            MirrorMode::Erspan,
        )
        .unwrap();
        assert!(off.check(&capture(64)).unwrap_err().why.contains("off"));
        assert!(
            off.check(&spec("Ethernet0", "", 60)).is_ok(),
            "counting is still on"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("TELEGEN_POLICY_PORTS", "eth0;reboot"),
            ("TELEGEN_POLICY_PORTS", " , "),
            ("TELEGEN_POLICY_DENY_PORTS", "a b"),
            ("TELEGEN_POLICY_MIRROR_MODES", "erspan,mirror"),
            ("TELEGEN_POLICY_MAX_DURATION_SEC", "0"),
            ("TELEGEN_POLICY_MAX_DURATION_SEC", "forever"),
            ("TELEGEN_POLICY_CAPTURE", "9217"),
            ("TELEGEN_POLICY_CAPTURE", "yes"),
        ] {
            let e = Policy::from_vars(vars(&[(k, v)]), MirrorMode::Erspan).unwrap_err();
            assert_eq!(e.var, k, "{v}");
        }
    }
}
