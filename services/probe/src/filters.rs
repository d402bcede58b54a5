//! Job filters (SPEC section 2, issue 7): parsed and validated into typed
//! values, so a bad filter gets a clear INVALID_ARGUMENT before anything is
//! attached. Evaluating them in the classifier is the next step; until then a
//! valid filter is refused as not supported (UNIMPLEMENTED).

use std::net::IpAddr;

use telegen_proto::v1 as pb;

/// Bounds that keep the kernel-side match loops short and verifiable.
pub const MAX_PROTOS: usize = 8;
pub const MAX_PORTS: usize = 8;
pub const MAX_CIDRS: usize = 4;
pub const MAX_DSCP: usize = 8;

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
    let masked = mask(addr, prefix);
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

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
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
                .filter(|d| *d <= 63)
                .ok_or_else(|| bad("dscp", format!("{d} is not a DSCP value (0-63)")))
        })
        .collect::<Result<_, _>>()?;
    let vlan = f
        .vlan
        .map(|v| {
            u16::try_from(v)
                .ok()
                .filter(|v| *v <= 4095)
                .ok_or_else(|| bad("vlan", format!("{v} is not a VLAN id (0-4095)")))
        })
        .transpose()?;
    Ok(JobFilter {
        ip_proto: f
            .ip_proto
            .iter()
            .map(|p| proto(p))
            .collect::<Result<_, _>>()?,
        l4_sport: f
            .l4_sport
            .iter()
            .map(|p| port("l4_sport", *p))
            .collect::<Result<_, _>>()?,
        l4_dport: f
            .l4_dport
            .iter()
            .map(|p| port("l4_dport", *p))
            .collect::<Result<_, _>>()?,
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
        dscp,
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
