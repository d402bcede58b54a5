//! Two network namespaces joined by a veth: the probe's side (the port)
//! and a peer that sends traffic into it.

use crate::{
    frames,
    netns::{Netns, Veth},
};

pub struct Lab {
    pub probe_ns: Netns,
    pub peer_ns: Netns,
    pub veth: Veth,
}

impl Lab {
    pub fn new() -> Lab {
        let probe_ns = Netns::new("tgp").expect("probe namespace");
        let peer_ns = Netns::new("tgq").expect("peer namespace");
        let veth = Veth::new(&probe_ns, &peer_ns).expect("veth pair");
        Lab {
            probe_ns,
            peer_ns,
            veth,
        }
    }

    /// Frames arriving on the port: sent by the peer.
    pub fn ingress(&self, frames: &[Vec<u8>]) {
        frames::send(&self.peer_ns.path(), &self.veth.peer, frames).expect("sending into the port");
    }

    /// Frames leaving the port: sent from the probe's namespace.
    pub fn egress(&self, frames: &[Vec<u8>]) {
        frames::send(&self.probe_ns.path(), &self.veth.port, frames)
            .expect("sending out of the port");
    }

    /// A sender that keeps `frame` coming into the port, 10 every 10 ms for
    /// 40 rounds, while the test restarts the probe; joined, it says how
    /// many it sent.
    pub fn steady_ingress(&self, frame: Vec<u8>) -> std::thread::JoinHandle<u64> {
        let (ns, peer) = (self.peer_ns.path(), self.veth.peer.clone());
        std::thread::spawn(move || {
            let burst = vec![frame; 10];
            let mut sent = 0;
            for _ in 0..40 {
                frames::send(&ns, &peer, &burst).expect("sending into the port");
                sent += burst.len() as u64;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            sent
        })
    }

    /// `tc filter show` of the port's `hook` (ingress or egress).
    pub fn tc_filters(&self, hook: &str) -> String {
        self.probe_ns
            .exec("tc", &["filter", "show", "dev", &self.veth.port, hook])
            .expect("tc filter show")
    }

    pub fn qdiscs(&self) -> String {
        self.probe_ns
            .exec("tc", &["qdisc", "show", "dev", &self.veth.port])
            .expect("tc qdisc show")
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}
