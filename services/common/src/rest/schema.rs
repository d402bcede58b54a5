//! OpenAPI schemas of the values the probe checks, built from the shared
//! limits, so the document states every rule that is not a runtime fact
//! (does the port exist, does a prefix have host bits set, do two aliases
//! agree). Fields name them with `#[schema(value_type = ...)]`; each is a
//! named component, so generated clients get one type per rule.

use std::fmt::Write as _;

use serde_json::json;
use utoipa::{
    openapi::{
        schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type},
        OpenApi, RefOr,
    },
    Modify, PartialSchema, ToSchema,
};

use super::limits::*;

/// A named schema built by `$build` (an expression of type `Schema` or a
/// builder of one).
macro_rules! named {
    ($($(#[$doc:meta])* $name:ident = $build:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Schema::from($build).into()
            }
        }
        impl ToSchema for $name {}
    )*};
}

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn one_of(description: &str, names: &[&str]) -> ObjectBuilder {
    text(description).enum_values(Some(names.iter().copied()))
}

fn int(description: &str, min: u32, max: u32) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(description))
        .minimum(Some(min))
        .maximum(Some(max))
}

fn list(description: &str, item: impl Into<Schema>, max: usize) -> ArrayBuilder {
    ArrayBuilder::new()
        .description(Some(description))
        .items(RefOr::T(item.into()))
        .max_items(Some(max))
}

/// One IPv4 octet as Rust's parser takes it: no leading zeros.
const OCTET: &str = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const HEX: &str = "[0-9A-Fa-f]{1,4}";

fn ipv4() -> String {
    format!(r"{OCTET}(?:\.{OCTET}){{3}}")
}

/// IPv6 in every form Rust's parser takes: eight groups, or fewer around one
/// `::` that stands for at least one, the last two groups possibly written
/// as IPv4.
fn ipv6() -> String {
    let v4 = ipv4();
    let groups = |n: usize| match n {
        0 => String::new(),
        n => format!("{HEX}(?::{HEX}){{{}}}", n - 1),
    };
    let mut forms = vec![
        format!("(?:{HEX}:){{7}}{HEX}"),
        format!("(?:{HEX}:){{6}}{v4}"),
    ];
    for left in 0..=7 {
        // Up to 7 - left groups after the `::`; with IPv4 at the end, two
        // fewer.
        let right = |max: usize| match max {
            0 => String::new(),
            max => format!("(?:{HEX}(?::{HEX}){{0,{}}})?", max - 1),
        };
        forms.push(format!("{}::{}", groups(left), right(7 - left)));
        if left <= 5 {
            let mut f = format!("{}::", groups(left));
            let _ = write!(f, "(?:{HEX}:){{0,{}}}{v4}", 5 - left);
            forms.push(f);
        }
    }
    format!("(?:{})", forms.join("|"))
}

/// An address with an optional prefix length.
fn cidr_pattern() -> String {
    format!(
        r"^(?:{}(?:/(?:3[0-2]|[12]?[0-9]))?|{}(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$",
        ipv4(),
        ipv6()
    )
}

/// A protocol name in any case, or a number 0-255 written as a string.
fn proto_pattern() -> String {
    let names: Vec<String> = PROTO_NAMES
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| match c {
                    c if c.is_ascii_alphabetic() => {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    }
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    format!(
        "^(?:{}|25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$",
        names.join("|")
    )
}

named! {
    /// A job id.
    JobId = text("The job's UUID, as start answered it.")
        .format(Some(SchemaFormat::Custom("uuid".into())))
        .examples(["9b4e87cb-6f0e-4a59-9c1e-2f1d3c4b5a69"]);
    /// A switch port.
    PortName = text(&format!(
        "Switch port: a Linux interface name of at most {MAX_PORT_NAME_LEN} bytes of \
         [A-Za-z0-9_.-], not . or .., e.g. Ethernet0."
    ))
    .min_length(Some(1))
    .max_length(Some(MAX_PORT_NAME_LEN))
    .pattern(Some(PORT_NAME_PATTERN))
    .examples(["Ethernet0"]);
    /// Which packets to count.
    Direction = one_of("Which packets to count.", &DIRECTIONS).examples(["ingress"]);
    /// Request mirror modes.
    MirrorMode = one_of(
        "How the packets reach the probe: erspan, sonic, direct (span is the same), or \
         placeholder; default TELEGEN_MIRROR_MODE. erspan and sonic fall back to placeholder \
         with a fallback_reason when they cannot be set up.",
        &MIRROR_MODES,
    );
    /// The design's older name for mirror_mode.
    SpanMethod = one_of("The original design's name for mirror_mode (span = direct).", &SPAN_METHODS);
    /// A job's mode as it reports it.
    JobMirrorMode = one_of("The mode the job runs in (span reads back as direct).", &JOB_MIRROR_MODES);
    ResultDetail = one_of(
        "summary (counters), flows (counters and a flow table), or pcaplike (alias capture: counters and the packets themselves, as pcapng from GET /jobs/{id}/capture).",
        &RESULT_DETAILS,
    );
    JobStatus = one_of("A job's state.", &STATUSES).examples(["starting"]);
    AttachMode = one_of("How the job's counter is attached: tcx, or tc (clsact).", &ATTACH_MODES);
    MirrorScope = one_of(
        "Mirror mode sonic: acl (ACL rules in the switch select the job's filter) or port (the whole port is mirrored, the kernel filter selects).",
        &MIRROR_SCOPES,
    );
    DurationSec = int(
        &format!(
            "Seconds until the job stops by itself (status expired), at most {MAX_DURATION_SEC}; \
             0 = until stopped; default {DEFAULT_DURATION_SEC}."
        ),
        0,
        MAX_DURATION_SEC,
    );
    SampleRate = int(
        "Flow tracking looks at one packet in this many (1 = every packet, the default); \
         counters stay exact.",
        1,
        MAX_SAMPLE_RATE,
    );
    Vlan = int("A VLAN id.", 0, MAX_VLAN);
    L4Ports = list(
        "TCP/UDP/SCTP ports.",
        int("A port.", 0, MAX_L4_PORT),
        MAX_FILTER_PORTS,
    );
    DscpList = list("DSCP values.", int("A DSCP value.", 0, MAX_DSCP), MAX_FILTER_DSCP);
    Cidrs = list(
        "Addresses or prefixes (10.0.0.0/8, 2001:db8::/32); a prefix must not have host \
         bits set.",
        text("An IPv4 or IPv6 address or prefix.").pattern(Some(cidr_pattern())),
        MAX_FILTER_CIDRS,
    );
    IpProtos = list(
        "IP protocols, by name (tcp, udp, icmp, icmp6, gre, sctp; any case) or number.",
        OneOfBuilder::new()
            .item(text("A protocol name or number.").pattern(Some(proto_pattern())))
            .item(int("A protocol number.", 0, MAX_IP_PROTO)),
        MAX_FILTER_PROTOS,
    );
}

/// The results routes' `top` query parameter.
pub fn top() -> Schema {
    int(
        &format!("Top flows to return, by bytes; 0 = {DEFAULT_TOP}."),
        0,
        MAX_TOP,
    )
    .into()
}

/// The results routes' `format` query parameter.
pub fn result_format() -> Schema {
    one_of("Only json.", &RESULT_FORMATS).into()
}

/// The start request's design-era aliases must agree with the fields they
/// alias: `span_method` with `mirror_mode` (exactly: when both are given
/// they are equal), the top-level `vlan` with `filters.vlan` (stated as
/// "not both": the gateway tolerates two equal ids, which JSON Schema cannot
/// compare). utoipa's derive has no keyword for either, so this adds them
/// to the `StartRequest` component as an `allOf`.
pub struct AliasRules;

impl Modify for AliasRules {
    fn modify(&self, doc: &mut OpenApi) {
        let Some(RefOr::T(Schema::Object(start))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("StartRequest"))
        else {
            return;
        };
        let mut rules: Vec<_> = SPAN_METHODS
            .iter()
            .map(|m| {
                json!({
                    "if": {"required": ["span_method"], "properties": {"span_method": {"const": m}}},
                    "then": {"properties": {"mirror_mode": {"enum": [null, m]}}}
                })
            })
            .collect();
        let given = json!({"type": "integer"});
        rules.push(json!({"not": {
            "required": ["vlan", "filters"],
            "properties": {
                "vlan": given,
                "filters": {"type": "object", "required": ["vlan"], "properties": {"vlan": given}}
            }
        }}));
        start
            .extensions
            .get_or_insert_with(Default::default)
            .insert("allOf".into(), rules.into());
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn re(p: &str) -> regex::Regex {
        regex::Regex::new(p).unwrap()
    }

    /// The probe's CIDR syntax (filters.rs, host bits aside).
    fn probe_parses(s: &str) -> bool {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let Ok(addr) = a.parse::<IpAddr>() else {
            return false;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        p.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
    }

    #[test]
    fn cidr_pattern_takes_what_the_probe_parses() {
        let cidr = re(&cidr_pattern());
        // Every canonical form is declared...
        let canonical = [
            "10.0.0.0/8",
            "192.0.2.7",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "::",
            "::/0",
            "::1",
            "1::",
            "2001:db8::/32",
            "fd00::/64",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1::8",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:10.0.0.1",
            "::10.0.0.1",
            "1:2:3:4:5::10.0.0.1",
            "ABCD:ef01::/128",
            "0001:02::3",
        ];
        for s in canonical {
            assert!(cidr.is_match(s) && probe_parses(s), "{s:?}");
        }
        // ...and nothing the probe refuses (it also takes spaces around and
        // a prefix written `/08`, which the document leaves out).
        let refused = [
            "10.0.0.0/33",
            "10.0.0/8",
            "010.0.0.1",
            "10.0.0.256",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "::/129",
            "fe80::1%eth0",
            "10.0.0.0/",
            "1:2:3:4:5:6:7::10.0.0.1",
            "1:2:3:4:5:6:7:10.0.0.1",
            "",
            "x",
            "10.0.0.0/-1",
        ];
        for s in refused {
            assert!(!cidr.is_match(s) && !probe_parses(s), "{s:?}");
        }
    }

    #[test]
    fn port_and_proto_patterns() {
        let port = re(PORT_NAME_PATTERN);
        for ok in [
            "Ethernet0",
            "PortChannel0001",
            "veth-a.10",
            "...",
            ".a",
            "a.",
            "_",
        ] {
            assert!(port.is_match(ok), "{ok}");
        }
        for bad in ["", ".", "..", "eth0;rm", "a b", "$(id)", "a/b", "é"] {
            assert!(!port.is_match(bad), "{bad}");
        }
        let proto = re(&proto_pattern());
        for ok in [
            "tcp",
            "TCP",
            "Udp",
            "icmp6",
            "IPv6-ICMP",
            "0",
            "6",
            "99",
            "255",
        ] {
            assert!(proto.is_match(ok), "{ok}");
        }
        for bad in ["tpc", "256", "-1", "", "tcp;"] {
            assert!(!proto.is_match(bad), "{bad}");
        }
    }
}
