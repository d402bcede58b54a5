//! `--filter KEY=VALUE` for `start`: each flag is checked when parsed, so a
//! bad key or number is a usage error before any request; repeated keys
//! accumulate into the request's `filters` object.

use std::net::IpAddr;

use telegen_common::rest::{
    limits::{MAX_DSCP, MAX_L4_PORT, MAX_VLAN},
    Filters, ProtoSpec,
};

/// The keys `--filter` accepts.
pub const KEYS: &str = "ip_proto, l4_sport, l4_dport, dscp, src_cidr, dst_cidr, vlan";

/// One parsed `--filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterArg {
    IpProto(Vec<String>),
    L4Sport(Vec<u16>),
    L4Dport(Vec<u16>),
    Dscp(Vec<u8>),
    SrcCidr(Vec<String>),
    DstCidr(Vec<String>),
    Vlan(u16),
}

/// Parse one `KEY=VALUE` (clap value parser).
pub fn parse_filter(s: &str) -> Result<FilterArg, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE with KEY one of {KEYS}"))?;
    let key = key.trim();
    let value = value.trim();
    Ok(match key {
        "ip_proto" => FilterArg::IpProto(items(key, value, |p| {
            if p.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(p.to_string())
            } else {
                Err(format!(
                    "{p:?} is not a protocol name or number (e.g. tcp, udp, 6)"
                ))
            }
        })?),
        "l4_sport" => FilterArg::L4Sport(items(key, value, |p| number(p, MAX_L4_PORT))?),
        "l4_dport" => FilterArg::L4Dport(items(key, value, |p| number(p, MAX_L4_PORT))?),
        "dscp" => FilterArg::Dscp(items(key, value, |p| number(p, MAX_DSCP))?),
        "src_cidr" => FilterArg::SrcCidr(items(key, value, cidr)?),
        "dst_cidr" => FilterArg::DstCidr(items(key, value, cidr)?),
        "vlan" => FilterArg::Vlan(
            number(value, MAX_VLAN).map_err(|e| format!("vlan takes one VLAN id: {e}"))?,
        ),
        "" => return Err(format!("missing KEY before '=': one of {KEYS}")),
        other => return Err(format!("unknown filter {other:?}: expected one of {KEYS}")),
    })
}

/// A comma-separated list of at least one item, each checked by `f`.
fn items<T>(
    key: &str,
    value: &str,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    if value.is_empty() {
        return Err(format!("{key} needs a value"));
    }
    value
        .split(',')
        .map(|p| {
            let p = p.trim();
            if p.is_empty() {
                Err(format!("{key}: empty item in {value:?}"))
            } else {
                f(p).map_err(|e| format!("{key}: {e}"))
            }
        })
        .collect()
}

/// A decimal number in `0..=max`.
fn number<T: TryFrom<u32>>(s: &str, max: u32) -> Result<T, String> {
    let bad = || format!("{s:?} is not a number from 0 to {max}");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = s.parse().map_err(|_| bad())?;
    if n > max {
        return Err(bad());
    }
    T::try_from(n).map_err(|_| bad())
}

/// An address with an optional prefix length: `10.0.0.0/8`, `fd00::/64`, `10.1.2.3`.
fn cidr(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)");
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    if let Some(p) = prefix {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        number::<u8>(p, max).map_err(|_| bad())?;
    }
    Ok(s.to_string())
}

/// Accumulate parsed flags in order into the request's `filters` object;
/// `None` when there are none.
/// Several `vlan` flags must agree: a job filters on one VLAN.
pub fn collect(args: &[FilterArg]) -> Result<Option<Filters>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut f = Filters::default();
    for a in args {
        match a {
            FilterArg::IpProto(v) => f.ip_proto.extend(v.iter().cloned().map(ProtoSpec::Name)),
            FilterArg::L4Sport(v) => f.l4_sport.extend(v.iter().copied().map(u32::from)),
            FilterArg::L4Dport(v) => f.l4_dport.extend(v.iter().copied().map(u32::from)),
            FilterArg::Dscp(v) => f.dscp.extend(v.iter().copied().map(u32::from)),
            FilterArg::SrcCidr(v) => f.src_cidr.extend(v.iter().cloned()),
            FilterArg::DstCidr(v) => f.dst_cidr.extend(v.iter().cloned()),
            FilterArg::Vlan(id) => match f.vlan {
                Some(prev) if prev != u32::from(*id) => {
                    return Err(format!(
                        "--filter vlan given twice ({prev} and {id}): a job filters on one VLAN"
                    ))
                }
                _ => f.vlan = Some(u32::from(*id)),
            },
        }
    }
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_all(flags: &[&str]) -> Result<Option<Filters>, String> {
        let args = flags
            .iter()
            .map(|s| parse_filter(s))
            .collect::<Result<Vec<_>, _>>()?;
        collect(&args)
    }

    #[test]
    fn every_key_parses_to_its_json_shape() {
        let f = parse_all(&[
            "ip_proto=tcp,6",
            "l4_sport=1024",
            "l4_dport=80, 443",
            "dscp=0,46,63",
            "src_cidr=10.0.0.0/8,fd00::/64",
            "dst_cidr=192.168.1.1",
            "vlan=100",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({
                "ip_proto": ["tcp", "6"],
                "l4_sport": [1024],
                "l4_dport": [80, 443],
                "dscp": [0, 46, 63],
                "src_cidr": ["10.0.0.0/8", "fd00::/64"],
                "dst_cidr": ["192.168.1.1"],
                "vlan": 100,
            })
        );
    }

    #[test]
    fn repeated_keys_accumulate_and_unused_keys_are_omitted() {
        let f = parse_all(&["l4_dport=80", "ip_proto=udp", "l4_dport=443,8080"])
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({"ip_proto": ["udp"], "l4_dport": [80, 443, 8080]})
        );
        assert_eq!(parse_all(&[]).unwrap(), None);
        // The same vlan twice is harmless; two different ones are not.
        assert_eq!(
            parse_all(&["vlan=7", "vlan=7"]).unwrap().unwrap().vlan,
            Some(7)
        );
        let e = parse_all(&["vlan=7", "vlan=8"]).unwrap_err();
        assert!(e.contains("vlan given twice"), "{e}");
    }

    #[test]
    fn bad_keys_and_values_are_refused() {
        for (flag, needle) in [
            ("nonsense", "KEY=VALUE"),
            ("=1", "missing KEY"),
            ("port=80", "unknown filter \"port\""),
            ("l4_dport=", "needs a value"),
            ("l4_dport=80,,81", "empty item"),
            ("l4_dport=65536", "0 to 65535"),
            ("l4_sport=-1", "0 to 65535"),
            ("l4_sport=http", "0 to 65535"),
            ("l4_sport=99999999999999", "0 to 65535"),
            ("dscp=64", "0 to 63"),
            ("dscp=1.5", "0 to 63"),
            ("vlan=4096", "0 to 4095"),
            ("vlan=1,2", "one VLAN id"),
            ("ip_proto=tcp;rm", "not a protocol"),
            ("src_cidr=10.0.0.0/33", "not an address"),
            ("dst_cidr=fd00::/129", "not an address"),
            ("dst_cidr=example.com", "not an address"),
            ("src_cidr=10.0.0.0/", "not an address"),
        ] {
            let e = parse_filter(flag).expect_err(flag);
            assert!(e.contains(needle), "{flag}: {e:?} lacks {needle:?}");
        }
    }
}
