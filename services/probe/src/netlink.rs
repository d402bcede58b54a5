//! rtnetlink queries: interface lookup, and the clsact bookkeeping that aya
//! does not offer (are foreign filters left? remove the qdisc we created).

use futures::TryStreamExt;
use netlink_packet_route::tc::TcHandle;
use rtnetlink::Handle;

#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

const ENODEV: i32 = 19;

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

impl Netlink {
    /// Open a route netlink socket in the current network namespace.
    pub fn new() -> std::io::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The underlying rtnetlink handle (for the ERSPAN netdev).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The ifindex of `name`, or None when no such interface exists.
    pub async fn ifindex(&self, name: &str) -> Result<Option<u32>, rtnetlink::Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(e) if is_errno(&e, ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
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
