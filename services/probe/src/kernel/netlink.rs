//! The probe's only rtnetlink user: interface look-up, the clsact
//! bookkeeping that aya does not offer (are foreign filters left? remove
//! the qdisc we created), and the erspan netdev's link operations
//! (mirror::erspan decides, this carries it out).

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use netlink_packet_route::link::{GreIOFlags, LinkMessage};
use netlink_packet_route::tc::TcHandle;
use rtnetlink::{Handle, LinkGre, LinkUnspec};

use crate::jobs::ports::Interfaces;

#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

const ENODEV: i32 = 19;

/// The errno a netlink request failed with, if it was the kernel's answer.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn is_errno(e: &rtnetlink::Error, want: i32) -> bool {
    errno(e) == Some(want)
}

/// An ERSPAN (GRE 0x22EB) netdev to create, with key and sequence numbers.
pub struct ErspanLink<'a> {
    pub name: &'a str,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    /// ifindex of the link device.
    pub link: u32,
    pub key: u32,
    pub version: u8,
}

#[tonic::async_trait]
impl Interfaces for Netlink {
    async fn ifindex(&self, name: &str) -> std::io::Result<Option<u32>> {
        Netlink::ifindex(self, name)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl Netlink {
    /// Open a route netlink socket in the current network namespace.
    pub fn new() -> std::io::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// What the kernel says about link `name`, None when there is none.
    pub async fn link(&self, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(found) => Ok(found),
            Err(e) if is_errno(&e, ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The ifindex of `name`, or None when no such interface exists.
    pub async fn ifindex(&self, name: &str) -> Result<Option<u32>, rtnetlink::Error> {
        Ok(self.link(name).await?.map(|m| m.header.index))
    }

    /// Create an ERSPAN netdev (down; see [`Netlink::set_up`]).
    pub async fn add_erspan(&self, l: &ErspanLink<'_>) -> Result<(), rtnetlink::Error> {
        let flags = GreIOFlags::Key | GreIOFlags::Seq;
        let msg = LinkGre::new_erspan(l.name)
            .local(l.local)
            .remote(l.remote)
            .ttl(l.ttl)
            .tos(l.tos)
            .dev(l.link)
            .iflags(flags)
            .oflags(flags)
            .ikey(l.key)
            .okey(l.key)
            .erspan_ver(l.version)
            .build();
        self.handle.link().add(msg).execute().await
    }

    /// Bring a link up, setting its alias too when given (the kernel
    /// ignores IFLA_IFALIAS on creation).
    pub async fn set_up(&self, ifindex: u32, alias: Option<&str>) -> Result<(), rtnetlink::Error> {
        let mut b = LinkUnspec::new_with_index(ifindex).up();
        if let Some(a) = alias {
            b = b.alias(a);
        }
        self.handle.link().set(b.build()).execute().await
    }

    pub async fn del_link(&self, ifindex: u32) -> Result<(), rtnetlink::Error> {
        self.handle.link().del(ifindex).execute().await
    }

    /// The current name of `ifindex`, or None when it is gone.
    pub async fn ifname(&self, ifindex: u32) -> Result<Option<String>, rtnetlink::Error> {
        use netlink_packet_route::link::LinkAttribute;
        let mut links = self.handle.link().get().match_index(ifindex).execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(msg.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n),
                _ => None,
            })),
            Ok(None) => Ok(None),
            Err(e) if is_errno(&e, ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Number of tc filters on the clsact hooks of `ifindex`.
    pub async fn clsact_filters(&self, ifindex: u32) -> Result<usize, rtnetlink::Error> {
        let mut n = 0;
        for ingress in [true, false] {
            let req = self.handle.traffic_filter(ifindex as i32).get();
            let req = if ingress { req.ingress() } else { req.egress() };
            n += req.execute().try_collect::<Vec<_>>().await?.len();
        }
        Ok(n)
    }

    /// The lowest (first-run) priority among the tc filters on one clsact
    /// hook of `ifindex` (dir 0 ingress, 1 egress), None when it has none.
    pub async fn first_filter_prio(
        &self,
        ifindex: u32,
        dir: usize,
    ) -> Result<Option<u16>, rtnetlink::Error> {
        let req = self.handle.traffic_filter(ifindex as i32).get();
        let req = if dir == 0 {
            req.ingress()
        } else {
            req.egress()
        };
        match req.execute().try_collect::<Vec<_>>().await {
            Ok(filters) => Ok(filters
                .iter()
                .map(|m| (m.header.info >> 16) as u16)
                .filter(|&p| p > 0)
                .min()),
            // No clsact qdisc yet: no filters.
            Err(e) if is_errno(&e, libc::EINVAL) || is_errno(&e, libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What sits at (`prio`, `handle`) on one clsact hook of `ifindex`
    /// (dir 0 ingress, 1 egress): None when nothing does; the BPF program
    /// name of a bpf filter; "" for a filter of another kind.
    pub async fn tc_filter_at(
        &self,
        ifindex: u32,
        dir: usize,
        prio: u16,
        handle: u32,
    ) -> Result<Option<String>, rtnetlink::Error> {
        use netlink_packet_route::tc::{TcAttribute, TcFilterBpfOption, TcOption};
        let req = self.handle.traffic_filter(ifindex as i32).get();
        let req = if dir == 0 {
            req.ingress()
        } else {
            req.egress()
        };
        let filters = match req.execute().try_collect::<Vec<_>>().await {
            Ok(f) => f,
            // No clsact qdisc (any more): nothing there.
            Err(e) if is_errno(&e, libc::EINVAL) || is_errno(&e, libc::ENOENT) => return Ok(None),
            Err(e) if is_errno(&e, ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        let at = filters
            .iter()
            .find(|m| (m.header.info >> 16) as u16 == prio && u32::from(m.header.handle) == handle);
        Ok(at.map(|m| {
            let mut bpf = false;
            let mut name = String::new();
            for a in &m.attributes {
                match a {
                    TcAttribute::Kind(k) => bpf = k == "bpf",
                    TcAttribute::Options(opts) => {
                        for o in opts {
                            if let TcOption::Bpf(TcFilterBpfOption::ProgName(n)) = o {
                                name = n.clone();
                            }
                        }
                    }
                    _ => {}
                }
            }
            if bpf {
                name
            } else {
                String::new()
            }
        }))
    }

    /// Delete the clsact qdisc of `ifindex` (only ever one we created).
    pub async fn delete_clsact(&self, ifindex: u32) -> Result<(), rtnetlink::Error> {
        let mut req = self.handle.qdisc().del(ifindex as i32);
        let msg = req.message_mut();
        msg.header.parent = TcHandle {
            major: 0xffff,
            minor: 0xfff1,
        };
        msg.header.handle = TcHandle {
            major: 0xffff,
            minor: 0,
        };
        match req.execute().await {
            Err(e)
                if is_errno(&e, ENODEV)
                    || is_errno(&e, libc::ENOENT)
                    || is_errno(&e, libc::EINVAL) =>
            {
                Ok(())
            }
            r => r,
        }
    }
}
