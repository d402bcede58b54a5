//! The plans of acl/mod.rs for each filter shape, and their fallbacks.
use super::*;
use crate::domain::filter::{parse, FilterSpec};

const ALL: Platform = Platform {
    mirror_v6: true,
    egress_mirror: true,
};

fn filter(spec: FilterSpec) -> JobFilter {
    parse(&spec).unwrap()
}

fn id() -> Uuid {
    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".parse().unwrap()
}

fn rules(p: &AclPlan) -> Vec<(String, String, Fields)> {
    p.rules
        .iter()
        .map(|r| (r.table.clone(), r.name.clone(), r.fields.clone()))
        .collect()
}

#[test]
fn a_dscp_job_on_ethernet16_is_one_table_and_one_rule_per_family() {
    let f = filter(FilterSpec {
        dscp: vec![46],
        ..Default::default()
    });
    let p = plan(
        id(),
        "Ethernet16",
        Direction::Ingress,
        &f,
        "telegen-s",
        ALL,
        64,
    )
    .unwrap();
    let t4 = "TELEGEN_0f1e2d3c4b5a69788796a5b4c3d2e1f0_IN";
    let t6 = "TELEGEN_0f1e2d3c4b5a69788796a5b4c3d2e1f0_IN_V6";
    assert_eq!(
        p.tables
            .iter()
            .map(|t| (t.name.as_str(), t.kind))
            .collect::<Vec<_>>(),
        vec![(t4, TableType::Mirror), (t6, TableType::MirrorV6)]
    );
    assert_eq!(
        p.tables[0].fields(id()),
        vec![
            ("type", "MIRROR".to_string()),
            ("policy_desc", format!("telegen-sonic job {}", id())),
            ("ports@", "Ethernet16".into()),
            ("stage", "ingress".into()),
        ]
    );
    let want = |t: &str| {
        (
            t.to_string(),
            "RULE_1".to_string(),
            vec![
                ("PRIORITY", "10000".to_string()),
                ("DSCP", "46".into()),
                ("MIRROR_INGRESS_ACTION", "telegen-s".into()),
            ],
        )
    };
    assert_eq!(rules(&p), vec![want(t4), want(t6)]);
}

#[test]
fn every_field_by_family_with_the_product_of_lists() {
    let f = filter(FilterSpec {
        ip_proto: vec!["udp".into(), "tcp".into()],
        l4_dport: vec![53],
        src_cidr: vec!["10.0.0.0/8".into(), "fd00::/8".into()],
        dscp: vec![8],
        vlan: Some(100),
        ..Default::default()
    });
    let p = plan(id(), "Ethernet0", Direction::Egress, &f, "s", ALL, 64).unwrap();
    let v4: Vec<_> = p
        .rules
        .iter()
        .filter(|r| !r.table.ends_with("_V6"))
        .collect();
    let v6: Vec<_> = p
        .rules
        .iter()
        .filter(|r| r.table.ends_with("_V6"))
        .collect();
    assert_eq!((v4.len(), v6.len()), (2, 2));
    assert_eq!(
        v4[1].fields,
        vec![
            ("PRIORITY", "9999".to_string()),
            ("SRC_IP", "10.0.0.0/8".into()),
            ("IP_PROTOCOL", "17".into()),
            ("L4_DST_PORT", "53".into()),
            ("DSCP", "8".into()),
            ("VLAN_ID", "100".into()),
            ("MIRROR_EGRESS_ACTION", "s".into()),
        ]
    );
    assert_eq!(v6[0].fields[1], ("SRC_IPV6", "fd00::/8".to_string()));
    assert_eq!(v6[0].fields[2], ("NEXT_HEADER", "6".to_string()));
    assert!(p.tables.iter().all(|t| t.stage == Stage::Egress));
}

#[test]
fn one_family_only_when_the_addresses_or_icmp_say_so() {
    let v4_only = filter(FilterSpec {
        dst_cidr: vec!["192.0.2.0/24".into()],
        ..Default::default()
    });
    let p = plan(id(), "Ethernet0", Direction::Both, &v4_only, "s", ALL, 64).unwrap();
    assert_eq!(p.tables.len(), 2, "ingress and egress, MIRROR only");
    assert!(p.tables.iter().all(|t| t.kind == TableType::Mirror));
    let icmp6 = filter(FilterSpec {
        ip_proto: vec!["icmp6".into()],
        ..Default::default()
    });
    let p = plan(id(), "Ethernet0", Direction::Ingress, &icmp6, "s", ALL, 64).unwrap();
    assert_eq!(
        p.tables.iter().map(|t| t.kind).collect::<Vec<_>>(),
        vec![TableType::MirrorV6]
    );
    // ... and without MIRRORV6 tables a v4-only filter still goes in.
    let no_v6 = Platform {
        mirror_v6: false,
        ..ALL
    };
    assert!(plan(
        id(),
        "Ethernet0",
        Direction::Ingress,
        &v4_only,
        "s",
        no_v6,
        64
    )
    .is_ok());
}

#[test]
fn falls_back_to_the_port_saying_why() {
    let why = |f: &JobFilter, d, p, max| plan(id(), "Ethernet0", d, f, "s", p, max).unwrap_err().0;
    assert!(why(&JobFilter::default(), Direction::Ingress, ALL, 64).contains("no filter"));
    let dscp = filter(FilterSpec {
        dscp: vec![46],
        ..Default::default()
    });
    let no_v6 = Platform {
        mirror_v6: false,
        ..ALL
    };
    assert!(why(&dscp, Direction::Ingress, no_v6, 64).contains("MIRRORV6"));
    let no_egress = Platform {
        egress_mirror: false,
        ..ALL
    };
    assert!(why(&dscp, Direction::Both, no_egress, 64).contains("MIRROR_EGRESS_ACTION"));
    let wide = filter(FilterSpec {
        l4_sport: (1..=8).collect(),
        l4_dport: (1..=8).collect(),
        ..Default::default()
    });
    // 8 x 8 per family, two families.
    let w = why(&wide, Direction::Ingress, ALL, 64);
    assert!(
        w.contains("128 ACL rules") && w.contains("TELEGEN_ACL_MAX_RULES (64)"),
        "{w}"
    );
    assert!(plan(id(), "Ethernet0", Direction::Ingress, &wide, "s", ALL, 128).is_ok());
    let mixed = filter(FilterSpec {
        src_cidr: vec!["10.0.0.0/8".into()],
        dst_cidr: vec!["fd00::/8".into()],
        ..Default::default()
    });
    assert!(why(&mixed, Direction::Ingress, ALL, 64).contains("different families"));
}

#[test]
fn another_mirror_table_at_the_stage_is_in_the_way() {
    let f = filter(FilterSpec {
        dscp: vec![46],
        ..Default::default()
    });
    let p = plan(id(), "Ethernet16", Direction::Ingress, &f, "s", ALL, 64).unwrap();
    let t = |n: &str, k: &str, s: &str| (n.to_string(), k.to_string(), s.to_string());
    let everflow = [
        t("EVERFLOW", "MIRROR", "INGRESS"),
        t("DATAACL", "L3", "ingress"),
    ];
    let why = conflict(&p, &everflow).unwrap().0;
    assert_eq!(
        why,
        "the switch allows one MIRROR ACL table at ingress, and it is EVERFLOW"
    );
    // At the other stage, or our own (a restart), nothing is in the way.
    let fine = [
        t("EVERFLOW_EGRESS", "MIRROR", "egress"),
        t(&p.tables[0].name, "MIRROR", "ingress"),
    ];
    assert_eq!(conflict(&p, &fine), None);
}

#[test]
fn table_names_carry_the_job() {
    for stage in [Stage::Ingress, Stage::Egress] {
        for kind in [TableType::Mirror, TableType::MirrorV6] {
            let n = table_name(id(), stage, kind);
            assert_eq!(job_of_table(&n), Some(id()), "{n}");
        }
    }
    for other in [
        "EVERFLOW",
        "TELEGEN_",
        "TELEGEN_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "TELEGEN_0f1e2d3c4b5a69788796a5b4c3d2e1f0_X",
        "TELEGEN_0F1E2D3C4B5A69788796A5B4C3D2E1F0_IN",
    ] {
        assert_eq!(job_of_table(other), None, "{other}");
    }
}
