//! Job filters (SPEC section 2, issue 7): parsed and validated into typed
//! values, so a bad filter gets a clear INVALID_ARGUMENT before anything is
//! attached, and echoed normalised. The classifier's form
//! (`struct job_filter`) is kernel::records' business.

use std::net::IpAddr;

use telegen_common::rest::limits;

/// Bounds that keep the kernel-side match loops short and verifiable (the
/// classifier's arrays are sized from the same numbers: kernel::records
/// asserts it).
pub const MAX_PROTOS: usize = limits::MAX_FILTER_PROTOS;
pub const MAX_PORTS: usize = limits::MAX_FILTER_PORTS;
pub const MAX_CIDRS: usize = limits::MAX_FILTER_CIDRS;
pub const MAX_DSCP: usize = limits::MAX_FILTER_DSCP;

/// A filter as requested, before validation: the request's own shapes
/// (protocol names or numbers, CIDR strings, numbers unchecked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub ip_proto: Vec<String>,
    pub l4_sport: Vec<u32>,
    pub l4_dport: Vec<u32>,
    pub src_cidr: Vec<String>,
    pub dst_cidr: Vec<String>,
    pub dscp: Vec<u32>,
    pub vlan: Option<u32>,
}

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
    /// The normalised echo in a job's `filters`.
    pub fn to_spec(&self) -> FilterSpec {
        FilterSpec {
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
pub(crate) fn mask(addr: IpAddr, prefix: u8, just_mask: bool) -> IpAddr {
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

pub fn parse(f: &FilterSpec) -> Result<JobFilter, FilterError> {
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

    fn f() -> FilterSpec {
        FilterSpec::default()
    }

    #[test]
    fn valid_filters_parse_to_typed_values() {
        let got = parse(&FilterSpec {
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
    fn each_bad_value_names_its_field() {
        let cases: Vec<(FilterSpec, &str, &str)> = vec![
            (
                FilterSpec {
                    ip_proto: vec!["tpc".into()],
                    ..f()
                },
                "ip_proto",
                "tpc",
            ),
            (
                FilterSpec {
                    ip_proto: vec!["300".into()],
                    ..f()
                },
                "ip_proto",
                "300",
            ),
            (
                FilterSpec {
                    l4_sport: vec![65536],
                    ..f()
                },
                "l4_sport",
                "65536",
            ),
            (
                FilterSpec {
                    l4_dport: vec![70000],
                    ..f()
                },
                "l4_dport",
                "70000",
            ),
            (
                FilterSpec {
                    src_cidr: vec!["10.0.0.0/33".into()],
                    ..f()
                },
                "src_cidr",
                "10.0.0.0/33",
            ),
            (
                FilterSpec {
                    dst_cidr: vec!["not-an-ip".into()],
                    ..f()
                },
                "dst_cidr",
                "not-an-ip",
            ),
            (
                FilterSpec {
                    src_cidr: vec!["10.1.2.3/8".into()],
                    ..f()
                },
                "src_cidr",
                "10.0.0.0/8",
            ),
            (
                FilterSpec {
                    dst_cidr: vec!["2001:db8::1/32".into()],
                    ..f()
                },
                "dst_cidr",
                "host bits",
            ),
            (
                FilterSpec {
                    dscp: vec![64],
                    ..f()
                },
                "dscp",
                "64",
            ),
            (
                FilterSpec {
                    vlan: Some(4096),
                    ..f()
                },
                "vlan",
                "4096",
            ),
            (
                FilterSpec {
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
