//! Network namespaces and veth pairs for tests, removed on drop.

use crate::{sh, unique_id};

/// A named network namespace (`ip netns add`), with IPv6 disabled before any
/// interface comes up, so the kernel sends no ND/MLD of its own and counts
/// are exactly the frames a test sends.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let name = format!("{prefix}{}", unique_id());
        sh("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        for key in ["all", "default"] {
            ns.exec(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")],
            )?;
        }
        ns.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Run a command inside the namespace (network only, via nsenter).
    pub fn exec(&self, cmd: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec![format!("--net={}", self.path()), cmd.to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        sh("nsenter", &refs)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh("ip", &["netns", "del", &self.name]);
    }
}

/// A veth pair: `port` in the probe's namespace, `peer` in the sender's.
pub struct Veth {
    pub port: String,
    pub peer: String,
}

impl Veth {
    pub fn new(probe_ns: &Netns, peer_ns: &Netns) -> anyhow::Result<Self> {
        Self::with_index(probe_ns, peer_ns, None)
    }

    /// Like `new`, with a chosen ifindex for the port (to exercise large ones).
    pub fn with_index(
        probe_ns: &Netns,
        peer_ns: &Netns,
        index: Option<u32>,
    ) -> anyhow::Result<Self> {
        let id = unique_id();
        let (port, peer) = (format!("tp{id}"), format!("tq{id}"));
        let idx = index.map(|i| i.to_string());
        let mut args = vec!["link", "add", "name", &port];
        if let Some(i) = &idx {
            args.extend(["index", i.as_str()]);
        }
        args.extend([
            "netns",
            &probe_ns.name,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &peer_ns.name,
        ]);
        sh("ip", &args)?;
        probe_ns.exec("ip", &["link", "set", &port, "up"])?;
        peer_ns.exec("ip", &["link", "set", &peer, "up"])?;
        Ok(Veth { port, peer })
    }
}
