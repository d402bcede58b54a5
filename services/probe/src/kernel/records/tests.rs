use super::*;
use crate::domain::filter::{parse, FilterSpec};

#[test]
fn record_round_trip() {
    let job = Job {
        slot: 3,
        id: Uuid::new_v4(),
        port: "Ethernet0".into(),
        iface: "Ethernet0".into(),
        ifindex: 7,
        state: JobState::Running,
        direction: Direction::Both,
        mirror_mode: MirrorMode::Direct,
        attach_mode: Some(AttachMode::Tc),
        otlp_export: true,
        flows_detail: false,
        duration_sec: 120,
        sample_rate: 1,
        seq: 9,
        started_ns: 1_700_000_000_000_000_000,
        expires_ns: Some(1_700_000_120_000_000_000),
        expires_boot_ns: None,
        stopped_ns: None,
        error: None,
        fallback: Some("why".into()),
        mirror_scope: Some(MirrorScope::Port("no filter".into())),
        capture: None,
        filter: JobFilter::default(),
        flow_table_size: 0,
        ending: None,
        pending: None,
    };
    // The scope's reason is in the note.
    let mut back = job_from_rec(3, &job_to_rec(&job)).unwrap();
    apply_note(&mut back, &job_note(&job));
    assert_eq!(back, job);
    assert!(job_from_rec(0, &JobRec::default()).is_none());
}

#[test]
fn kernel_form_round_trips_and_echo_is_normalised() {
    let parsed = parse(&FilterSpec {
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
    let echo = back.to_spec();
    assert_eq!(echo.ip_proto, vec!["tcp", "udp", "255"]);
    assert_eq!(echo.src_cidr, vec!["10.0.0.0/8", "2001:db8::/32"]);
    assert_eq!(echo.dst_cidr, vec!["192.0.2.7/32"]);
    assert_eq!(
        JobFilter::from_kernel(&KJobFilter::default()),
        JobFilter::default()
    );
}
