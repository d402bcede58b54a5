//! Hand-built Ethernet frames of exact sizes, sent with AF_PACKET raw sockets
//! from inside a network namespace.

use std::{ffi::CString, fs::File, os::fd::AsRawFd};

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn pad_to(mut f: Vec<u8>, len: usize) -> Vec<u8> {
    assert!(
        f.len() <= len,
        "frame headers ({}) exceed requested size {len}",
        f.len()
    );
    f.resize(len, 0xab);
    f
}

fn ipv4_header(proto: u8, total_len: usize) -> Vec<u8> {
    let mut h = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    h[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    h
}

fn ipv6_header(next: u8, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload_len as u16).to_be_bytes());
    h.push(next);
    h.push(64);
    h.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    h
}

/// IPv4/UDP frame of exactly `len` bytes (>= 42).
pub fn ipv4_udp(len: usize) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4_header(17, len - 14));
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x09]);
    f.extend_from_slice(&((len - 34) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    pad_to(f, len)
}

/// 802.1Q-tagged (VLAN `vid`) IPv4/UDP frame of exactly `len` bytes on the wire.
pub fn vlan_ipv4_udp(vid: u16, len: usize) -> Vec<u8> {
    let inner = ipv4_udp(len - 4);
    let mut f = eth(0x8100);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&inner[12..]);
    f
}

/// IPv6/TCP frame of exactly `len` bytes (>= 74).
pub fn ipv6_tcp(len: usize) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend(ipv6_header(6, len - 54));
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&443u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&50000u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    f.extend(tcp);
    pad_to(f, len)
}

/// ICMPv6 echo request of exactly `len` bytes (>= 62).
pub fn icmp6(len: usize) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend(ipv6_header(58, len - 54));
    f.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 1]);
    pad_to(f, len)
}

/// ICMPv6 behind a hop-by-hop and a destination-options header (>= 78 bytes).
pub fn icmp6_ext(len: usize) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend(ipv6_header(0, len - 54));
    f.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> DstOpts, PadN
    f.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]); // DstOpts -> ICMPv6
    f.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 1]);
    pad_to(f, len)
}

/// ARP request (class "other"), 42 bytes.
pub fn arp() -> Vec<u8> {
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f
}

/// A GRE header: `flags` (C/K/S bits), `proto`, then the optional checksum,
/// key and sequence fields the flags announce.
pub fn gre(flags: u16, proto: u16) -> Vec<u8> {
    let mut g = Vec::with_capacity(16);
    g.extend_from_slice(&flags.to_be_bytes());
    g.extend_from_slice(&proto.to_be_bytes());
    if flags & 0x8000 != 0 {
        g.extend_from_slice(&[0, 0, 0, 0]);
    }
    if flags & 0x2000 != 0 {
        g.extend_from_slice(&100u32.to_be_bytes()); // key
    }
    if flags & 0x1000 != 0 {
        g.extend_from_slice(&7u32.to_be_bytes()); // sequence
    }
    g
}

/// An ERSPAN type II header (version 1, session 100).
pub fn erspan2_header() -> Vec<u8> {
    vec![0x10, 0x00, 0x00, 0x64, 0, 0, 0, 0x07]
}

/// An ERSPAN type III header (version 2, session 100), with the 8-byte
/// platform subheader when `subheader` (the O bit).
pub fn erspan3_header(subheader: bool) -> Vec<u8> {
    let mut h = vec![0x20, 0x00, 0x00, 0x64, 1, 2, 3, 4, 0, 0, 0x1c, 0x00];
    if subheader {
        h[11] |= 1;
        h.extend_from_slice(&[0xaa; 8]);
    }
    h
}

/// `payload` (GRE header and what it carries) inside IPv4 protocol 47.
pub fn ipv4_gre(payload: &[u8]) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4_header(47, 20 + payload.len()));
    f.extend_from_slice(payload);
    f
}

/// `payload` inside IPv6 next header 47.
pub fn ipv6_gre(payload: &[u8]) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend(ipv6_header(47, payload.len()));
    f.extend_from_slice(payload);
    f
}

/// The IP packet of an Ethernet frame (its Ethernet header removed).
pub fn strip_eth(frame: &[u8]) -> Vec<u8> {
    frame[14..].to_vec()
}

pub fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Send `frames` out of `ifname` inside namespace `ns_path`, from a thread
/// that joins the namespace (setns affects only the calling thread).
pub fn send(ns_path: &str, ifname: &str, frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let (ns_path, ifname, frames) = (ns_path.to_string(), ifname.to_string(), frames.to_vec());
    std::thread::spawn(move || send_here(&ns_path, &ifname, &frames))
        .join()
        .map_err(|_| anyhow::anyhow!("sender thread panicked"))?
}

fn send_here(ns_path: &str, ifname: &str, frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let ns = File::open(ns_path)?;
    // SAFETY: plain syscalls on fds we own; buffers outlive the calls.
    unsafe {
        anyhow::ensure!(
            libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) == 0,
            "setns {ns_path}: {}",
            std::io::Error::last_os_error()
        );
        let name = CString::new(ifname)?;
        let ifindex = libc::if_nametoindex(name.as_ptr());
        anyhow::ensure!(ifindex != 0, "no interface {ifname} in {ns_path}");
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        anyhow::ensure!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&DST);
        let mut result = Ok(());
        for f in frames {
            let n = libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if n != f.len() as isize {
                result = Err(anyhow::anyhow!(
                    "sendto: {}",
                    std::io::Error::last_os_error()
                ));
                break;
            }
        }
        libc::close(fd);
        result
    }
}

/// A packet of the filter and flow tests, with every field a job filter
/// looks at; `frame()` builds it at exactly `len` bytes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkt {
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub dscp: u8,
    pub vlan: Option<u16>,
    pub len: usize,
    /// IPv4: a non-first fragment (no L4 header to read).
    pub later_fragment: bool,
    /// IPv4: a wrong header checksum.
    pub bad_csum: bool,
    /// IPv6: a hop-by-hop options header before the upper layer.
    pub v6_ext: bool,
}

impl Pkt {
    pub fn new(src: &str, dst: &str, proto: u8, sport: u16, dport: u16, len: usize) -> Self {
        Pkt {
            src: src.parse().expect("test address"),
            dst: dst.parse().expect("test address"),
            proto,
            sport,
            dport,
            dscp: 0,
            vlan: None,
            len,
            later_fragment: false,
            bad_csum: false,
            v6_ext: false,
        }
    }

    /// Whether the classifier can read ports from it.
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132) && !self.later_fragment
    }

    fn l4(&self) -> Vec<u8> {
        if self.later_fragment {
            return Vec::new();
        }
        let ports = [self.sport.to_be_bytes(), self.dport.to_be_bytes()].concat();
        match self.proto {
            6 => {
                let mut h = ports;
                h.resize(20, 0);
                h[12] = 5 << 4;
                h[13] = 0x10;
                h
            }
            17 => [ports, vec![0, 8, 0, 0]].concat(),
            132 => [ports, vec![0; 8]].concat(),
            1 => vec![8, 0, 0, 0, 0, 1, 0, 1],
            58 => vec![128, 0, 0, 0, 0, 1, 0, 1],
            _ => Vec::new(),
        }
    }

    pub fn frame(&self) -> Vec<u8> {
        use std::net::IpAddr;
        let mut f = Vec::with_capacity(self.len);
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        if let Some(vid) = self.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        let l3_start = f.len() + 2;
        let l4 = self.l4();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&[0x08, 0x00]);
                let total = (self.len - l3_start) as u16;
                let frag: u16 = if self.later_fragment { 0x00b9 } else { 0x4000 };
                let mut h = vec![0x45, self.dscp << 2];
                h.extend_from_slice(&total.to_be_bytes());
                h.extend_from_slice(&[0x12, 0x34]);
                h.extend_from_slice(&frag.to_be_bytes());
                h.extend_from_slice(&[64, self.proto, 0, 0]);
                h.extend_from_slice(&s.octets());
                h.extend_from_slice(&d.octets());
                let mut sum: u32 = h
                    .chunks(2)
                    .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                    .sum();
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                let mut csum = !(sum as u16);
                if self.bad_csum {
                    csum ^= 0x5a5a;
                }
                h[10..12].copy_from_slice(&csum.to_be_bytes());
                f.extend(h);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&[0x86, 0xdd]);
                let payload = (self.len - l3_start - 40) as u16;
                let tc = self.dscp << 2;
                f.extend_from_slice(&[0x60 | (tc >> 4), (tc & 0xf) << 4, 0, 0]);
                f.extend_from_slice(&payload.to_be_bytes());
                f.push(if self.v6_ext { 0 } else { self.proto });
                f.push(64);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                if self.v6_ext {
                    f.extend_from_slice(&[self.proto, 0, 1, 4, 0, 0, 0, 0]);
                }
            }
            _ => panic!("test packet mixes address families"),
        }
        f.extend(l4);
        pad_to(f, self.len)
    }
}

/// A GRE header with the sequence-number bit set, sequence number `seq`,
/// the key `key` when given (K bit), carrying `proto`.
pub fn gre_numbered(key: Option<u32>, seq: u32, proto: u16) -> Vec<u8> {
    let flags: u16 = 0x1000 | if key.is_some() { 0x2000 } else { 0 };
    let mut g = Vec::with_capacity(12);
    g.extend_from_slice(&flags.to_be_bytes());
    g.extend_from_slice(&proto.to_be_bytes());
    if let Some(k) = key {
        g.extend_from_slice(&k.to_be_bytes());
    }
    g.extend_from_slice(&seq.to_be_bytes());
    g
}

/// Like `send`, from a thread pinned to one CPU: the frames reach the
/// port's hooks in the order given (a sender migrating between CPUs may
/// have them queued on two CPUs' backlogs and classified out of order).
pub fn send_in_order(ns_path: &str, ifname: &str, frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let (ns_path, ifname, frames) = (ns_path.to_string(), ifname.to_string(), frames.to_vec());
    std::thread::spawn(move || {
        // SAFETY: affinity of the calling thread, with a set we own.
        unsafe {
            let cpu = libc::sched_getcpu();
            anyhow::ensure!(
                cpu >= 0,
                "sched_getcpu: {}",
                std::io::Error::last_os_error()
            );
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            anyhow::ensure!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0,
                "sched_setaffinity: {}",
                std::io::Error::last_os_error()
            );
        }
        send_here(&ns_path, &ifname, &frames)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("sender thread panicked"))?
}
