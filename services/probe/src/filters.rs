//! Job filters (SPEC section 2, issue 7): parsed and validated into typed
//! values, so a bad filter gets a clear INVALID_ARGUMENT before anything is
//! attached; converted to the classifier's `struct job_filter` (which is
//! also how they survive a probe restart) and back, and echoed normalised.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use telegen_common::rest::limits;
use telegen_proto::v1 as pb;

use crate::maps::layout::{
    KCidr, KJobFilter, FILTER_MAX_CIDRS, FILTER_MAX_PORTS, F_DPORT, F_DSCP, F_DST, F_FLOWS,
    F_PROTO, F_SPORT, F_SRC, F_VLAN,
};

/// Bounds that keep the kernel-side match loops short and verifiable.
pub const MAX_PROTOS: usize = limits::MAX_FILTER_PROTOS;
pub const MAX_PORTS: usize = limits::MAX_FILTER_PORTS;
pub const MAX_CIDRS: usize = limits::MAX_FILTER_CIDRS;
pub const MAX_DSCP: usize = limits::MAX_FILTER_DSCP;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A validated filter; empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub ip_proto: Vec<u8>,
    pub l4_sport: Vec<u16>,
    pub l4_dport: Vec<u16>,
    pub src_cidr: Vec<Cidr>,
    pub dst_cidr: Vec<Cidr>,
    pub dscp: Vec<u8>,
    pub vlan: Option<u16>,
}

impl JobFilter {
    pub fn is_empty(&self) -> bool {
        *self == JobFilter::default()
    }
}

impl JobFilter {
    /// The classifier's form. `flows`/`sample_rate` ride along: they are
    /// per-job settings the same loop needs.
    pub fn to_kernel(&self, flows: bool, sample_rate: u32) -> KJobFilter {
        let mut k = KJobFilter {
            sample_rate,
            ..Default::default()
        };
        if flows {
            k.flags |= F_FLOWS;
        }
        if !self.ip_proto.is_empty() {
            k.flags |= F_PROTO;
            for p in &self.ip_proto {
                k.proto_mask[usize::from(*p >> 6)] |= 1u64 << (p & 63);
            }
        }
        if !self.dscp.is_empty() {
            k.flags |= F_DSCP;
            for d in &self.dscp {
                k.dscp_mask |= 1u64 << (d & 63);
            }
        }
        let ports = |list: &[u16], out: &mut [u16; FILTER_MAX_PORTS]| {
            let n = list.len().min(FILTER_MAX_PORTS);
            out[..n].copy_from_slice(&list[..n]);
            n as u8
        };
        if !self.l4_sport.is_empty() {
            k.flags |= F_SPORT;
            k.nsport = ports(&self.l4_sport, &mut k.sport);
        }
        if !self.l4_dport.is_empty() {
            k.flags |= F_DPORT;
            k.ndport = ports(&self.l4_dport, &mut k.dport);
        }
        let cidrs = |list: &[Cidr], out: &mut [KCidr; FILTER_MAX_CIDRS]| {
            for (c, o) in list.iter().zip(out.iter_mut()) {
                *o = c.to_kernel();
            }
            list.len().min(FILTER_MAX_CIDRS) as u8
        };
        if !self.src_cidr.is_empty() {
            k.flags |= F_SRC;
            k.nsrc = cidrs(&self.src_cidr, &mut k.src);
        }
        if !self.dst_cidr.is_empty() {
            k.flags |= F_DST;
            k.ndst = cidrs(&self.dst_cidr, &mut k.dst);
        }
        if let Some(v) = self.vlan {
            k.flags |= F_VLAN;
            k.vlan = v;
        }
        k
    }

    /// Back from the pinned kernel form (after a restart). Lists come back
    /// sorted where the kernel keeps a bit set (protocols, DSCP).
    pub fn from_kernel(k: &KJobFilter) -> JobFilter {
        let bits = |words: &[u64]| -> Vec<u8> {
            (0..words.len() * 64)
                .filter(|i| words[i / 64] & (1u64 << (i % 64)) != 0)
                .map(|i| i as u8)
                .collect()
        };
        let n = |v: u8, max: usize| usize::from(v).min(max);
        JobFilter {
            ip_proto: if k.flags & F_PROTO != 0 {
                bits(&k.proto_mask)
            } else {
                Vec::new()
            },
            l4_sport: k.sport[..n(k.nsport, FILTER_MAX_PORTS)].to_vec(),
            l4_dport: k.dport[..n(k.ndport, FILTER_MAX_PORTS)].to_vec(),
            src_cidr: k.src[..n(k.nsrc, FILTER_MAX_CIDRS)]
                .iter()
                .filter_map(Cidr::from_kernel)
                .collect(),
            dst_cidr: k.dst[..n(k.ndst, FILTER_MAX_CIDRS)]
                .iter()
                .filter_map(Cidr::from_kernel)
                .collect(),
            dscp: if k.flags & F_DSCP != 0 {
                bits(&[k.dscp_mask])
            } else {
                Vec::new()
            },
            vlan: (k.flags & F_VLAN != 0).then_some(k.vlan),
        }
    }

    /// The normalised echo in Job.filters.
    pub fn to_proto(&self) -> pb::Filters {
        pb::Filters {
            ip_proto: self.ip_proto.iter().map(|p| proto_name(*p)).collect(),
            l4_sport: self.l4_sport.iter().map(|p| u32::from(*p)).collect(),
            l4_dport: self.l4_dport.iter().map(|p| u32::from(*p)).collect(),
            src_cidr: self.src_cidr.iter().map(Cidr::to_string).collect(),
            dst_cidr: self.dst_cidr.iter().map(Cidr::to_string).collect(),
            dscp: self.dscp.iter().map(|d| u32::from(*d)).collect(),
            vlan: self.vlan.map(u32::from),
        }
    }
}

/// The name the API uses for an IP protocol number (lower case), else the
/// number.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        58 => "icmp6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

impl Cidr {
    fn to_kernel(&self) -> KCidr {
        let (family, addr) = ip_words(self.addr);
        let (_, mask) = ip_words(mask(self.addr, self.prefix, true));
        KCidr {
            addr,
            mask,
            family,
            pad: [0; 3],
        }
    }

    fn from_kernel(k: &KCidr) -> Option<Cidr> {
        let prefix: u32 = k.mask.iter().map(|w| w.count_ones()).sum();
        Some(Cidr {
            addr: words_ip(k.family, &k.addr)?,
            prefix: prefix as u8,
        })
    }
}

/// An address as the classifier holds it: family 4 or 6 and four words in
/// network order (IPv4 in the first).
pub fn ip_words(a: IpAddr) -> (u8, [u32; 4]) {
    let (family, bytes) = match a {
        IpAddr::V4(a) => (4, a.octets().to_vec()),
        IpAddr::V6(a) => (6, a.octets().to_vec()),
    };
    let mut w = [0u32; 4];
    for (o, c) in w.iter_mut().zip(bytes.chunks(4)) {
        *o = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    }
    (family, w)
}

/// The inverse of [`ip_words`]; None for an unknown family.
pub fn words_ip(family: u8, w: &[u32; 4]) -> Option<IpAddr> {
    let b: Vec<u8> = w.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match family {
        4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
        6 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(&b[..]).ok()?).into()),
        _ => None,
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filters.{field}: {msg}")]
pub struct FilterError {
    pub field: &'static str,
    pub msg: String,
}

fn bad(field: &'static str, msg: impl Into<String>) -> FilterError {
    FilterError {
        field,
        msg: msg.into(),
    }
}

/// Echo user input in an error without letting it grow the message.
fn shown(s: &str) -> String {
    s.chars().take(48).collect()
}

fn at_most<T>(field: &'static str, v: &[T], max: usize) -> Result<(), FilterError> {
    if v.len() > max {
        return Err(bad(
            field,
            format!("{} values; at most {max} are allowed", v.len()),
        ));
    }
    Ok(())
}

fn proto(s: &str) -> Result<u8, FilterError> {
    let n = match s.trim().to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmp6" | "icmpv6" | "ipv6-icmp" => 58,
        "gre" => 47,
        "sctp" => 132,
        other => other.parse::<u8>().map_err(|_| {
            bad(
                "ip_proto",
                format!(
                    "{:?} is not tcp, udp, icmp, icmp6, gre, sctp or a protocol number 0-255",
                    shown(s)
                ),
            )
        })?,
    };
    Ok(n)
}

fn port(field: &'static str, p: u32) -> Result<u16, FilterError> {
    u16::try_from(p).map_err(|_| bad(field, format!("{p} is not a port (0-65535)")))
}

fn cidr(field: &'static str, s: &str) -> Result<Cidr, FilterError> {
    let err = || {
        bad(
            field,
            format!(
                "{:?} is not an address or prefix like 10.0.0.0/8 or 2001:db8::/32",
                shown(s)
            ),
        )
    };
    let (a, p) = match s.trim().split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s.trim(), None),
    };
    let addr: IpAddr = a.parse().map_err(|_| err())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(err)?,
    };
    // 10.1.2.3/8 is almost always a typo for 10.0.0.0/8: refuse host bits.
    let masked = mask(addr, prefix, false);
    if masked != addr {
        return Err(bad(
            field,
            format!(
                "{} has host bits set; did you mean {masked}/{prefix}?",
                shown(s)
            ),
        ));
    }
    Ok(Cidr { addr, prefix })
}

/// `addr` with its host bits cleared, or (`just_mask`) the netmask itself.
fn mask(addr: IpAddr, prefix: u8, just_mask: bool) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let a = if just_mask { u32::MAX } else { u32::from(a) };
            IpAddr::V4((a & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            let a = if just_mask { u128::MAX } else { u128::from(a) };
            IpAddr::V6((a & m).into())
        }
    }
}

/// Lists are sets: normalised, so the echo is the same before and after a
/// restart.
fn set<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

pub fn parse(f: &pb::Filters) -> Result<JobFilter, FilterError> {
    at_most("ip_proto", &f.ip_proto, MAX_PROTOS)?;
    at_most("l4_sport", &f.l4_sport, MAX_PORTS)?;
    at_most("l4_dport", &f.l4_dport, MAX_PORTS)?;
    at_most("src_cidr", &f.src_cidr, MAX_CIDRS)?;
    at_most("dst_cidr", &f.dst_cidr, MAX_CIDRS)?;
    at_most("dscp", &f.dscp, MAX_DSCP)?;
    let dscp = f
        .dscp
        .iter()
        .map(|d| {
            u8::try_from(*d)
                .ok()
                .filter(|d| u32::from(*d) <= limits::MAX_DSCP)
                .ok_or_else(|| {
                    bad(
                        "dscp",
                        format!("{d} is not a DSCP value (0-{})", limits::MAX_DSCP),
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let vlan = f
        .vlan
        .map(|v| {
            u16::try_from(v)
                .ok()
                .filter(|v| u32::from(*v) <= limits::MAX_VLAN)
                .ok_or_else(|| {
                    bad(
                        "vlan",
                        format!("{v} is not a VLAN id (0-{})", limits::MAX_VLAN),
                    )
                })
        })
        .transpose()?;
    Ok(JobFilter {
        ip_proto: set(f
            .ip_proto
            .iter()
            .map(|p| proto(p))
            .collect::<Result<_, _>>()?),
        l4_sport: set(f
            .l4_sport
            .iter()
            .map(|p| port("l4_sport", *p))
            .collect::<Result<_, _>>()?),
        l4_dport: set(f
            .l4_dport
            .iter()
            .map(|p| port("l4_dport", *p))
            .collect::<Result<_, _>>()?),
        src_cidr: f
            .src_cidr
            .iter()
            .map(|c| cidr("src_cidr", c))
            .collect::<Result<_, _>>()?,
        dst_cidr: f
            .dst_cidr
            .iter()
            .map(|c| cidr("dst_cidr", c))
            .collect::<Result<_, _>>()?,
        dscp: set(dscp),
        vlan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> pb::Filters {
        pb::Filters::default()
    }

    #[test]
    fn valid_filters_parse_to_typed_values() {
        let got = parse(&pb::Filters {
            ip_proto: vec!["TCP".into(), "17".into(), "icmp6".into()],
            l4_sport: vec![0, 65535],
            l4_dport: vec![443],
            src_cidr: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            dst_cidr: vec!["192.0.2.7".into()],
            dscp: vec![46, 0],
            vlan: Some(100),
        })
        .unwrap();
        assert_eq!(got.ip_proto, vec![6, 17, 58]);
        assert_eq!(got.l4_sport, vec![0, 65535]);
        assert_eq!(got.src_cidr[1].prefix, 32);
        assert_eq!(got.dst_cidr[0].prefix, 32);
        assert_eq!(got.vlan, Some(100));
        assert!(parse(&f()).unwrap().is_empty());
    }

    #[test]
    fn kernel_form_round_trips_and_echo_is_normalised() {
        let parsed = parse(&pb::Filters {
            ip_proto: vec!["udp".into(), "tcp".into(), "255".into()],
            l4_sport: vec![53],
            l4_dport: vec![443, 8443],
            src_cidr: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            dst_cidr: vec!["192.0.2.7".into()],
            dscp: vec![46, 0, 63],
            vlan: Some(0),
        })
        .unwrap();
        let k = parsed.to_kernel(true, 100);
        assert_eq!(k.flags & F_FLOWS, F_FLOWS);
        assert_eq!(k.sample_rate, 100);
        assert_eq!(k.src[0].mask[0], u32::from_ne_bytes([255, 0, 0, 0]));
        assert_eq!(k.src[0].addr[0], u32::from_ne_bytes([10, 0, 0, 0]));
        assert_eq!(k.dst[0].mask[0], u32::MAX);
        assert_eq!(k.src[1].mask[1], 0);
        let back = JobFilter::from_kernel(&k);
        // Sets come back sorted; lists keep their order.
        assert_eq!(back.ip_proto, vec![6, 17, 255]);
        assert_eq!(back.dscp, vec![0, 46, 63]);
        assert_eq!(back.l4_dport, parsed.l4_dport);
        assert_eq!(back.src_cidr, parsed.src_cidr);
        assert_eq!(back.dst_cidr, parsed.dst_cidr);
        assert_eq!(back.vlan, Some(0));
        let echo = back.to_proto();
        assert_eq!(echo.ip_proto, vec!["tcp", "udp", "255"]);
        assert_eq!(echo.src_cidr, vec!["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(echo.dst_cidr, vec!["192.0.2.7/32"]);
        assert_eq!(
            JobFilter::from_kernel(&KJobFilter::default()),
            JobFilter::default()
        );
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases: Vec<(pb::Filters, &str, &str)> = vec![
            (
                pb::Filters {
                    ip_proto: vec!["tpc".into()],
                    ..f()
                },
                "ip_proto",
                "tpc",
            ),
            (
                pb::Filters {
                    ip_proto: vec!["300".into()],
                    ..f()
                },
                "ip_proto",
                "300",
            ),
            (
                pb::Filters {
                    l4_sport: vec![65536],
                    ..f()
                },
                "l4_sport",
                "65536",
            ),
            (
                pb::Filters {
                    l4_dport: vec![70000],
                    ..f()
                },
                "l4_dport",
                "70000",
            ),
            (
                pb::Filters {
                    src_cidr: vec!["10.0.0.0/33".into()],
                    ..f()
                },
                "src_cidr",
                "10.0.0.0/33",
            ),
            (
                pb::Filters {
                    dst_cidr: vec!["not-an-ip".into()],
                    ..f()
                },
                "dst_cidr",
                "not-an-ip",
            ),
            (
                pb::Filters {
                    src_cidr: vec!["10.1.2.3/8".into()],
                    ..f()
                },
                "src_cidr",
                "10.0.0.0/8",
            ),
            (
                pb::Filters {
                    dst_cidr: vec!["2001:db8::1/32".into()],
                    ..f()
                },
                "dst_cidr",
                "host bits",
            ),
            (
                pb::Filters {
                    dscp: vec![64],
                    ..f()
                },
                "dscp",
                "64",
            ),
            (
                pb::Filters {
                    vlan: Some(4096),
                    ..f()
                },
                "vlan",
                "4096",
            ),
            (
                pb::Filters {
                    l4_dport: (0..9).collect(),
                    ..f()
                },
                "l4_dport",
                "at most 8",
            ),
        ];
        for (filters, field, needle) in cases {
            let e = parse(&filters).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("filters.{field}: ")), "{msg}");
            assert!(msg.contains(needle), "{msg} lacks {needle}");
        }
    }
}
