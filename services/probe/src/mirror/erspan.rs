//! The ERSPAN v2 netdev that receives a switch's mirrored copies (SPEC
//! section 5, mode `erspan`): its settings from TELEGEN_ERSPAN_*, validated
//! at start-up, and its provisioning over rtnetlink (never `ip`).
//!
//! Ownership: a netdev this probe creates carries the interface alias
//! [`ErspanSettings::owner_mark`]. The mark lives on the device itself, so it
//! survives a probe restart exactly as long as the device does; only a device
//! with our mark is ever deleted. A device that exists without it is reused
//! when its parameters match and left alone when the last job stops.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use netlink_packet_route::link::{
    GreIOFlags, InfoData, InfoGre, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkGre, LinkUnspec};

use crate::config::ConfigError;

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
    fn netlink(self) -> u8 {
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
        crate::validate::ifname(&name).map_err(|e| err("TELEGEN_ERSPAN_NAME", e.to_string()))?;
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
                crate::validate::ifname(&d)
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

/// The parameters of one erspan netdev, as we want them or as the kernel
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunnelParams {
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    pub ikey: Option<u32>,
    pub okey: Option<u32>,
    pub ttl: u8,
    pub tos: u8,
    pub link: u32,
}

impl TunnelParams {
    /// What differs, as "field: have X, want Y" items.
    fn diff(&self, want: &TunnelParams) -> Vec<String> {
        let mut d = Vec::new();
        let ip = |a: Option<Ipv4Addr>| a.map_or("none".to_string(), |a| a.to_string());
        let key = |k: Option<u32>| k.map_or("none".to_string(), |k| k.to_string());
        let mut item = |f: &str, have: String, want: String| {
            if have != want {
                d.push(format!("{f} {have} (want {want})"));
            }
        };
        item("local", ip(self.local), ip(want.local));
        item("remote", ip(self.remote), ip(want.remote));
        item("ikey", key(self.ikey), key(want.ikey));
        item("okey", key(self.okey), key(want.okey));
        item("ttl", self.ttl.to_string(), want.ttl.to_string());
        item("tos", self.tos.to_string(), want.tos.to_string());
        item("link ifindex", self.link.to_string(), want.link.to_string());
        d
    }
}

/// A netdev ready to count on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub ifindex: u32,
    /// This probe created it now (false: reused).
    pub created: bool,
    /// It carries our owner mark (created now or by an earlier run).
    pub ours: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ErspanError {
    #[error(
        "the ERSPAN link device {0:?} (TELEGEN_ERSPAN_DEV, default the job's port) does not exist"
    )]
    NoLinkDevice(String),
    #[error("the kernel cannot create erspan devices (no ip_gre support): {0}")]
    Unsupported(#[source] rtnetlink::Error),
    #[error(
        "{name} exists but is a {kind} device, not erspan; set TELEGEN_ERSPAN_NAME to another name"
    )]
    NotErspan { name: String, kind: String },
    #[error("{name} exists with other parameters: {diff}{hint}; remove it or set TELEGEN_ERSPAN_* to match")]
    Mismatch {
        name: String,
        diff: String,
        hint: &'static str,
    },
    #[error("creating {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("bringing {name} up: {source}")]
    Up {
        name: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("deleting {name}: {source}")]
    Delete {
        name: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

impl ErspanError {
    /// A device is in the way that we must not change: the operator has to
    /// act (FAILED_PRECONDITION), rather than a job silently in placeholder.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::NotErspan { .. } | Self::Mismatch { .. })
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// What the kernel says about one link.
struct Found {
    ifindex: u32,
    kind: Option<InfoKind>,
    params: TunnelParams,
    up: bool,
    alias: Option<String>,
}

impl Found {
    fn from_msg(msg: LinkMessage) -> Found {
        let mut f = Found {
            ifindex: msg.header.index,
            kind: None,
            params: TunnelParams::default(),
            up: msg.header.flags.contains(LinkFlags::Up),
            alias: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfAlias(a) => f.alias = Some(a),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => f.kind = Some(k),
                            LinkInfo::Data(InfoData::ErSpan(gre)) => {
                                for g in gre {
                                    let p = &mut f.params;
                                    match g {
                                        InfoGre::Local(a) => p.local = Some(a),
                                        InfoGre::Remote(a) => p.remote = Some(a),
                                        InfoGre::IKey(k) => p.ikey = Some(k),
                                        InfoGre::OKey(k) => p.okey = Some(k),
                                        InfoGre::Ttl(t) => p.ttl = t,
                                        InfoGre::Tos(t) => p.tos = t,
                                        InfoGre::Link(l) => p.link = l,
                                        _ => {}
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // The kernel reports 0.0.0.0 for an unset endpoint.
        f.params.local = f.params.local.filter(|a| !a.is_unspecified());
        f.params.remote = f.params.remote.filter(|a| !a.is_unspecified());
        f
    }
}

/// Provisioning of the erspan netdev over one rtnetlink handle.
pub struct Erspan<'a> {
    pub handle: &'a Handle,
    pub settings: &'a ErspanSettings,
}

impl Erspan<'_> {
    async fn find(&self, name: &str) -> Result<Option<Found>, rtnetlink::Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(Found::from_msg(msg))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create the netdev, or reuse the one there when its parameters match;
    /// bring it up. `port` is the job's port (the default link device).
    pub async fn ensure(
        &self,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        port: &str,
    ) -> Result<Provisioned, ErspanError> {
        let s = self.settings;
        let dev = s.dev.as_deref().unwrap_or(port);
        let link = self
            .find(dev)
            .await?
            .ok_or_else(|| ErspanError::NoLinkDevice(dev.to_string()))?
            .ifindex;
        let want = TunnelParams {
            local: Some(local),
            remote: Some(remote),
            ikey: Some(s.key),
            okey: Some(s.key),
            ttl: s.ttl,
            tos: s.tos.netlink(),
            link,
        };
        // Twice: a device created by someone else between our look and our
        // create (EEXIST) is then checked like any existing one.
        for _ in 0..2 {
            if let Some(found) = self.find(&s.name).await? {
                return self.reuse(found, &want).await;
            }
            match self.create(&want).await {
                Ok(ifindex) => {
                    return Ok(Provisioned {
                        ifindex,
                        created: true,
                        ours: true,
                    })
                }
                Err(ErspanError::Create { source, .. }) if errno(&source) == Some(libc::EEXIST) => {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
        Err(ErspanError::Create {
            name: s.name.clone(),
            source: rtnetlink::Error::RequestFailed,
        })
    }

    async fn reuse(&self, found: Found, want: &TunnelParams) -> Result<Provisioned, ErspanError> {
        let s = self.settings;
        if found.kind != Some(InfoKind::ErSpan) {
            return Err(ErspanError::NotErspan {
                name: s.name.clone(),
                kind: found
                    .kind
                    .map_or_else(|| "kind-less".to_string(), |k| k.to_string()),
            });
        }
        let diff = found.params.diff(want);
        if !diff.is_empty() {
            // The kernel's fallback device (net.core.fb_tunnels_only_for_init_net=0)
            // is called erspan0 and has no endpoints; it can be neither changed
            // nor deleted.
            let hint = if found.params.local.is_none() && found.params.remote.is_none() {
                " (an endpoint-less erspan device is likely the kernel's fallback device, which cannot be changed: set TELEGEN_ERSPAN_NAME to another name)"
            } else {
                ""
            };
            return Err(ErspanError::Mismatch {
                name: s.name.clone(),
                diff: diff.join(", "),
                hint,
            });
        }
        if !found.up {
            self.set_up(found.ifindex, None).await?;
        }
        Ok(Provisioned {
            ifindex: found.ifindex,
            created: false,
            ours: found.alias.as_deref() == Some(s.owner_mark.as_str()),
        })
    }

    async fn create(&self, want: &TunnelParams) -> Result<u32, ErspanError> {
        let s = self.settings;
        let flags = GreIOFlags::Key | GreIOFlags::Seq;
        let msg = LinkGre::new_erspan(&s.name)
            .local(want.local.expect("set by ensure"))
            .remote(want.remote.expect("set by ensure"))
            .ttl(want.ttl)
            .tos(want.tos)
            .dev(want.link)
            .iflags(flags)
            .oflags(flags)
            .ikey(s.key)
            .okey(s.key)
            .erspan_ver(ERSPAN_VER)
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|source| match errno(&source) {
                // No rtnl_link_ops for "erspan": iproute2's "Unknown device type".
                Some(libc::EOPNOTSUPP) => ErspanError::Unsupported(source),
                _ => ErspanError::Create {
                    name: s.name.clone(),
                    source,
                },
            })?;
        let found = self
            .find(&s.name)
            .await?
            .ok_or_else(|| ErspanError::Create {
                name: s.name.clone(),
                source: rtnetlink::Error::RequestFailed,
            })?;
        // The alias (our owner mark) is set with the link up: the kernel
        // ignores IFLA_IFALIAS on creation.
        if let Err(e) = self.set_up(found.ifindex, Some(&s.owner_mark)).await {
            let _ = self.handle.link().del(found.ifindex).execute().await;
            return Err(e);
        }
        Ok(found.ifindex)
    }

    async fn set_up(&self, ifindex: u32, alias: Option<&str>) -> Result<(), ErspanError> {
        let mut b = LinkUnspec::new_with_index(ifindex).up();
        if let Some(a) = alias {
            b = b.alias(a);
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(|source| ErspanError::Up {
                name: self.settings.name.clone(),
                source,
            })
    }

    /// Delete the netdev when it carries our owner mark. Returns whether it
    /// was deleted (false: absent, or not ours).
    pub async fn release(&self) -> Result<bool, ErspanError> {
        let s = self.settings;
        let Some(found) = self.find(&s.name).await? else {
            return Ok(false);
        };
        if found.alias.as_deref() != Some(s.owner_mark.as_str()) {
            return Ok(false);
        }
        match self.handle.link().del(found.ifindex).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(source) => Err(ErspanError::Delete {
                name: s.name.clone(),
                source,
            }),
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

    #[test]
    fn diff_names_what_differs() {
        let a = TunnelParams {
            local: Some("10.0.0.1".parse().unwrap()),
            remote: Some("10.0.0.2".parse().unwrap()),
            ikey: Some(10),
            okey: Some(10),
            ttl: 64,
            tos: 1,
            link: 3,
        };
        assert!(a.diff(&a).is_empty());
        let b = TunnelParams {
            ikey: Some(11),
            link: 4,
            ..a
        };
        assert_eq!(
            a.diff(&b),
            vec!["ikey 10 (want 11)", "link ifindex 3 (want 4)"]
        );
    }
}
