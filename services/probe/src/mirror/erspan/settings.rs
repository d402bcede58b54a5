//! TELEGEN_ERSPAN_*: what an `erspan` job's netdev must look like,
//! validated at start-up (every error names its variable).

use std::net::Ipv4Addr;

use telegen_common::ConfigError;

/// ERSPAN header version of the netdevs we create: 2 (type III, GRE protocol
/// 0x22EB) on transmit. On receive the kernel decapsulates type II (0x88BE)
/// and type III alike, whatever this version is.
pub const ERSPAN_VER: u8 = 2;
/// The ERSPAN session id (the GRE key of an erspan netdev) is 10 bits.
pub const MAX_KEY: u32 = 0x3ff;
/// `tos inherit` is TOS 1 on the wire of the netlink API (as iproute2 sends).
const TOS_INHERIT: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tos {
    Inherit,
    Value(u8),
}

impl Tos {
    pub(super) fn netlink(self) -> u8 {
        match self {
            Tos::Inherit => TOS_INHERIT,
            Tos::Value(v) => v,
        }
    }
}

/// TELEGEN_ERSPAN_*: what an `erspan` job's netdev must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErspanSettings {
    /// TELEGEN_ERSPAN_NAME (erspan0); also the interface placeholder jobs report.
    pub name: String,
    /// TELEGEN_ERSPAN_LOCAL / _REMOTE: both required for `erspan`; when one
    /// is missing, jobs fall back to placeholder.
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    /// TELEGEN_ERSPAN_KEY (10): the session id, 0..=1023.
    pub key: u32,
    /// TELEGEN_ERSPAN_TTL (64): outer TTL, 0 = inherit.
    pub ttl: u8,
    /// TELEGEN_ERSPAN_TOS (inherit).
    pub tos: Tos,
    /// TELEGEN_ERSPAN_DEV: the link (underlay) device; None = the job's port.
    pub dev: Option<String>,
    /// The alias written on netdevs this probe creates (names the pin dir,
    /// so two probes with different pin dirs never take each other's).
    pub owner_mark: String,
}

impl ErspanSettings {
    /// Read and validate TELEGEN_ERSPAN_* with `var` (unset or blank = None).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        owner_mark: String,
    ) -> Result<Self, ConfigError> {
        let err = |var: &'static str, msg: String| ConfigError { var, msg };
        let name = var("TELEGEN_ERSPAN_NAME").unwrap_or_else(|| "erspan0".into());
        crate::domain::validate::ifname(&name)
            .map_err(|e| err("TELEGEN_ERSPAN_NAME", e.to_string()))?;
        let addr = |v: &'static str| -> Result<Option<Ipv4Addr>, ConfigError> {
            let Some(s) = var(v) else { return Ok(None) };
            let a: Ipv4Addr = s
                .trim()
                .parse()
                .map_err(|_| err(v, format!("{s:?} is not an IPv4 address")))?;
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                return Err(err(v, format!("{a} is not a unicast IPv4 address")));
            }
            Ok(Some(a))
        };
        let local = addr("TELEGEN_ERSPAN_LOCAL")?;
        let remote = addr("TELEGEN_ERSPAN_REMOTE")?;
        let key = match var("TELEGEN_ERSPAN_KEY") {
            None => 10,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|k| *k <= MAX_KEY)
                .ok_or_else(|| {
                    err(
                        "TELEGEN_ERSPAN_KEY",
                        format!("{v:?} is not a session id from 0 to {MAX_KEY} (10 bits)"),
                    )
                })?,
        };
        let ttl = match var("TELEGEN_ERSPAN_TTL") {
            None => 64,
            Some(v) => v.trim().parse::<u8>().map_err(|_| {
                err(
                    "TELEGEN_ERSPAN_TTL",
                    format!("{v:?} is not a TTL from 0 (inherit) to 255"),
                )
            })?,
        };
        let tos = match var("TELEGEN_ERSPAN_TOS") {
            None => Tos::Inherit,
            Some(v) if v.trim() == "inherit" => Tos::Inherit,
            Some(v) => Tos::Value(v.trim().parse::<u8>().map_err(|_| {
                err(
                    "TELEGEN_ERSPAN_TOS",
                    format!("{v:?} is neither \"inherit\" nor a number from 0 to 255"),
                )
            })?),
        };
        let dev = match var("TELEGEN_ERSPAN_DEV") {
            None => None,
            Some(d) => {
                crate::domain::validate::ifname(&d)
                    .map_err(|e| err("TELEGEN_ERSPAN_DEV", e.to_string()))?;
                Some(d)
            }
        };
        Ok(ErspanSettings {
            name,
            local,
            remote,
            key,
            ttl,
            tos,
            dev,
            owner_mark,
        })
    }

    /// The tunnel endpoints, or the variables that are missing.
    pub fn endpoints(&self) -> Result<(Ipv4Addr, Ipv4Addr), Vec<&'static str>> {
        match (self.local, self.remote) {
            (Some(l), Some(r)) => Ok((l, r)),
            (l, r) => Err([
                l.is_none().then_some("TELEGEN_ERSPAN_LOCAL"),
                r.is_none().then_some("TELEGEN_ERSPAN_REMOTE"),
            ]
            .into_iter()
            .flatten()
            .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<ErspanSettings, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ErspanSettings::from_vars(|k| m.get(k).cloned(), "mark".into())
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.name, "erspan0");
        assert_eq!((s.key, s.ttl, s.tos), (10, 64, Tos::Inherit));
        assert_eq!(s.dev, None);
        assert_eq!(
            s.endpoints().unwrap_err(),
            vec!["TELEGEN_ERSPAN_LOCAL", "TELEGEN_ERSPAN_REMOTE"]
        );
    }

    #[test]
    fn values() {
        let s = settings(&[
            ("TELEGEN_ERSPAN_LOCAL", "192.0.2.10"),
            ("TELEGEN_ERSPAN_REMOTE", "192.0.2.100"),
            ("TELEGEN_ERSPAN_KEY", "1023"),
            ("TELEGEN_ERSPAN_TTL", "0"),
            ("TELEGEN_ERSPAN_TOS", "184"),
            ("TELEGEN_ERSPAN_DEV", "Ethernet0"),
        ])
        .unwrap();
        assert_eq!(
            s.endpoints().unwrap(),
            (
                "192.0.2.10".parse().unwrap(),
                "192.0.2.100".parse().unwrap()
            )
        );
        assert_eq!((s.key, s.ttl, s.tos), (1023, 0, Tos::Value(184)));
        assert_eq!(s.dev.as_deref(), Some("Ethernet0"));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (var, val) in [
            ("TELEGEN_ERSPAN_NAME", "way-too-long-name0"),
            ("TELEGEN_ERSPAN_LOCAL", "192.0.2"),
            ("TELEGEN_ERSPAN_LOCAL", "::1"),
            ("TELEGEN_ERSPAN_REMOTE", "0.0.0.0"),
            ("TELEGEN_ERSPAN_REMOTE", "224.0.0.1"),
            ("TELEGEN_ERSPAN_KEY", "1024"),
            ("TELEGEN_ERSPAN_KEY", "-1"),
            ("TELEGEN_ERSPAN_TTL", "256"),
            ("TELEGEN_ERSPAN_TOS", "inherited"),
            ("TELEGEN_ERSPAN_TOS", "300"),
            ("TELEGEN_ERSPAN_DEV", "eth0;reboot"),
        ] {
            let e = settings(&[(var, val)]).unwrap_err();
            assert_eq!(e.var, var, "{val}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }
}
