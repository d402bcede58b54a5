//! The ERSPAN v2 netdev that receives a switch's mirrored copies (SPEC
//! section 5, mode `erspan`): its settings from TELEGEN_ERSPAN_*, validated
//! at start-up, and its provisioning over rtnetlink (never `ip`).
//!
//! Ownership: a netdev this probe creates carries the interface alias
//! [`ErspanSettings::owner_mark`]. The mark lives on the device itself, so it
//! survives a probe restart exactly as long as the device does; only a device
//! with our mark is ever deleted. A device that exists without it is reused
//! when its parameters match and left alone when the last job stops.

mod settings;

use std::net::Ipv4Addr;
use std::sync::Arc;

use netlink_packet_route::link::{
    InfoData, InfoGre, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
pub use settings::{ErspanSettings, Tos, ERSPAN_VER, MAX_KEY};

use crate::jobs::ports::{ErspanBackend, NetdevError, Provisioned};
use crate::kernel::netlink::{errno, ErspanLink, Netlink};
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

/// Provisioning of the erspan netdev (the link operations are
/// kernel::netlink's).
pub struct Erspan {
    pub netlink: Arc<Netlink>,
    pub settings: ErspanSettings,
}

#[tonic::async_trait]
impl ErspanBackend for Erspan {
    async fn ensure(
        &self,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        port: &str,
    ) -> Result<Provisioned, NetdevError> {
        Erspan::ensure(self, local, remote, port)
            .await
            .map_err(NetdevError::from)
    }

    async fn release(&self) -> Result<bool, NetdevError> {
        Erspan::release(self).await.map_err(NetdevError::from)
    }
}

impl From<ErspanError> for NetdevError {
    fn from(e: ErspanError) -> Self {
        if e.is_conflict() {
            NetdevError::Conflict(e.to_string())
        } else {
            NetdevError::Failed(e.to_string())
        }
    }
}

impl Erspan {
    async fn find(&self, name: &str) -> Result<Option<Found>, rtnetlink::Error> {
        Ok(self.netlink.link(name).await?.map(Found::from_msg))
    }

    /// Create the netdev, or reuse the one there when its parameters match;
    /// bring it up. `port` is the job's port (the default link device).
    pub async fn ensure(
        &self,
        local: Ipv4Addr,
        remote: Ipv4Addr,
        port: &str,
    ) -> Result<Provisioned, ErspanError> {
        let s = &self.settings;
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
        let s = &self.settings;
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
        let s = &self.settings;
        let (Some(local), Some(remote)) = (want.local, want.remote) else {
            return Err(ErspanError::Create {
                name: s.name.clone(),
                source: rtnetlink::Error::RequestFailed,
            });
        };
        self.netlink
            .add_erspan(&ErspanLink {
                name: &s.name,
                local,
                remote,
                ttl: want.ttl,
                tos: want.tos,
                link: want.link,
                key: s.key,
                version: ERSPAN_VER,
            })
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
            let _ = self.netlink.del_link(found.ifindex).await;
            return Err(e);
        }
        Ok(found.ifindex)
    }

    async fn set_up(&self, ifindex: u32, alias: Option<&str>) -> Result<(), ErspanError> {
        self.netlink
            .set_up(ifindex, alias)
            .await
            .map_err(|source| ErspanError::Up {
                name: self.settings.name.clone(),
                source,
            })
    }

    /// Delete the netdev when it carries our owner mark. Returns whether it
    /// was deleted (false: absent, or not ours).
    pub async fn release(&self) -> Result<bool, ErspanError> {
        let s = &self.settings;
        let Some(found) = self.find(&s.name).await? else {
            return Ok(false);
        };
        if found.alias.as_deref() != Some(s.owner_mark.as_str()) {
            return Ok(false);
        }
        match self.netlink.del_link(found.ifindex).await {
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
