//! The model's JSON: what clients read and send, and (with the `proto`
//! feature) how the gateway translates the probe's messages.

use serde_json::json;

use super::*;

#[test]
fn start_request_omits_what_was_not_given() {
    let r = StartRequest {
        port: "Ethernet0".into(),
        direction: "ingress".into(),
        duration_sec: None,
        mirror_mode: None,
        span_method: None,
        sample_rate: None,
        filters: None,
        vlan: None,
        result_detail: None,
        otlp_export: None,
        capture: None,
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"port": "Ethernet0", "direction": "ingress"})
    );
}

#[test]
fn reading_is_tolerant() {
    let j: Job = serde_json::from_value(json!({
        "job_id": "x", "status": "running", "attach_mode": null,
        "something_new": {"a": 1}
    }))
    .unwrap();
    assert_eq!(j.job_id.as_deref(), Some("x"));
    assert_eq!(j.attach_mode, None);
    assert_eq!(j.port, None);
    let r: Results = serde_json::from_value(json!({
        "top_flows": null, "errors": null, "by_proto": null, "size_histogram": null
    }))
    .unwrap();
    assert!(r.top_flows.is_empty() && r.errors.is_empty() && r.by_proto.is_empty());
    let l: JobList = serde_json::from_value(json!({})).unwrap();
    assert!(l.jobs.is_empty());
}

#[test]
fn a_flow_reads_any_five_tuple_as_text() {
    let f: Flow = serde_json::from_value(json!({"five_tuple": {"proto": "tcp"}})).unwrap();
    assert_eq!(f.five_tuple.as_deref(), Some(r#"{"proto":"tcp"}"#));
    let f: Flow = serde_json::from_value(json!({"five_tuple": null})).unwrap();
    assert_eq!(f.five_tuple, None);
}

#[test]
fn request_numbers_are_json_schema_integers() {
    let r: StartRequest = serde_json::from_value(json!({
        "port": "e0", "direction": "both", "duration_sec": 604800.0, "sample_rate": 10,
        "vlan": 7.0, "filters": {"ip_proto": [6.0, "udp", 17], "l4_dport": [443.0, 80], "dscp": [46.0]}
    }))
    .unwrap();
    assert_eq!(
        (r.duration_sec, r.sample_rate, r.vlan),
        (Some(604800), Some(10), Some(7))
    );
    let f = r.filters.unwrap();
    assert_eq!(
        f.ip_proto,
        [
            ProtoSpec::Number(6),
            ProtoSpec::Name("udp".into()),
            ProtoSpec::Number(17)
        ]
    );
    assert_eq!((f.l4_dport, f.dscp), (vec![443, 80], vec![46]));
    for bad in [
        json!({"duration_sec": 1.5}),
        json!({"duration_sec": -1}),
        json!({"duration_sec": 4294967296u64}),
        json!({"duration_sec": "1"}),
        json!({"vlan": 1e300}),
        json!({"filters": {"dscp": [0.5]}}),
    ] {
        let mut v = json!({"port": "e0", "direction": "both"});
        v.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let e = serde_json::from_value::<StartRequest>(v)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("whole number") || e.contains("invalid type"),
            "{bad}: {e}"
        );
    }
}

#[cfg(feature = "proto")]
mod proto {
    use telegen_proto::v1 as pb;

    use super::super::*;

    fn parse(s: &str) -> Result<StartRequest, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn seed_body_is_enough() {
        let r = parse(r#"{"port":"Ethernet0","direction":"ingress"}"#)
            .unwrap()
            .into_proto()
            .unwrap();
        assert_eq!(
            (r.port.as_str(), r.direction.as_str()),
            ("Ethernet0", "ingress")
        );
        assert_eq!(r.duration_sec, None);
        assert!(r.filters.is_none());
    }

    #[test]
    fn design_fields_translate() {
        let r = parse(
            r#"{"port":"Ethernet16","direction":"both","duration_sec":120,"span_method":"span",
                "sample_rate":100,"vlan":10,"result_detail":"flows",
                "filters":{"ip_proto":["tcp",17],"dscp":[46],"src_cidr":["10.0.0.0/8"]}}"#,
        )
        .unwrap()
        .into_proto()
        .unwrap();
        assert_eq!(r.mirror_mode, "span");
        let f = r.filters.unwrap();
        assert_eq!(f.ip_proto, vec!["tcp", "17"]);
        assert_eq!(f.vlan, Some(10));
        assert_eq!(f.dscp, vec![46]);
    }

    #[test]
    fn refuses_unknown_missing_and_contradictory_fields() {
        assert!(parse(r#"{"port":"a","direction":"ingress","prot":"x"}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown field `prot`"));
        assert!(parse(r#"{"direction":"ingress"}"#)
            .unwrap_err()
            .to_string()
            .contains("missing field `port`"));
        assert!(parse(r#"{"port":"a","direction":"ingress","duration_sec":-1}"#).is_err());
        assert!(parse(r#"{"port":"a","direction":"ingress","filters":{"tos":1}}"#).is_err());
        let e =
            parse(r#"{"port":"a","direction":"in","mirror_mode":"erspan","span_method":"span"}"#)
                .unwrap()
                .into_proto()
                .unwrap_err();
        assert!(e.to_string().contains("disagree"));
        let e = parse(r#"{"port":"a","direction":"in","vlan":1,"filters":{"vlan":2}}"#)
            .unwrap()
            .into_proto()
            .unwrap_err();
        assert!(e.to_string().contains("disagree"));
    }

    #[test]
    fn empty_strings_become_null() {
        let j = Job::from(pb::Job {
            job_id: "x".into(),
            status: "starting".into(),
            ..Default::default()
        });
        let v = serde_json::to_value(&j).unwrap();
        assert!(v["stopped_at"].is_null());
        assert!(v["error"].is_null());
        assert_eq!(v["status"], "starting");
        // No filters: the key is omitted; no flow table: 0.
        assert!(v.get("filters").is_none(), "{v}");
        assert_eq!(v["flow_table_size"], 0);
    }

    #[test]
    fn job_echoes_filters_in_the_request_shape() {
        let j = Job::from(pb::Job {
            job_id: "x".into(),
            result_detail: "flows".into(),
            sample_rate: 100,
            flow_table_size: 4096,
            filters: Some(pb::Filters {
                ip_proto: vec!["tcp".into(), "17".into()],
                l4_dport: vec![443],
                src_cidr: vec!["10.0.0.0/8".into()],
                dscp: vec![46],
                vlan: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        });
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(
            v["filters"],
            serde_json::json!({
                "ip_proto": ["tcp", "17"], "l4_dport": [443], "src_cidr": ["10.0.0.0/8"],
                "dscp": [46], "vlan": 0
            })
        );
        assert_eq!(v["flow_table_size"], 4096);
        assert_eq!(v["sample_rate"], 100);
        // The echo reads back as a start request's filters object.
        let echoed: Filters = serde_json::from_value(v["filters"].clone()).unwrap();
        assert_eq!(echoed.into_proto().l4_dport, vec![443]);
        // An empty message means the same as none: counts everything.
        let j = Job::from(pb::Job {
            filters: Some(pb::Filters::default()),
            ..Default::default()
        });
        assert!(serde_json::to_value(&j).unwrap().get("filters").is_none());
    }

    #[test]
    fn results_carry_flows_and_flow_stats() {
        let r = Results::from(pb::Results {
            job_id: "x".into(),
            top_flows: vec![pb::Flow {
                five_tuple: "[2001:db8::1]:40000->[2001:db8::2]:443/TCP".into(),
                pkts: 300,
                bytes: 450_000,
                estimated: true,
                src_addr: "2001:db8::1".into(),
                src_port: 40000,
                dst_addr: "2001:db8::2".into(),
                dst_port: 443,
                protocol: "TCP".into(),
            }],
            errors: [
                ("ipv4_checksum".to_string(), 2),
                ("truncated".to_string(), 0),
            ]
            .into(),
            flow_stats: Some(pb::FlowStats {
                sample_rate: 100,
                sampling: "random 1 in N".into(),
                estimated: true,
                table_size: 4096,
                table_entries: 12,
                flows_seen: 15,
                evictions: 3,
                sampled_packets: 3,
                update_failures: 1,
            }),
            ..Default::default()
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["top_flows"][0],
            serde_json::json!({
                "five_tuple": "[2001:db8::1]:40000->[2001:db8::2]:443/TCP",
                "pkts": 300, "bytes": 450000, "estimated": true,
                "src_addr": "2001:db8::1", "src_port": 40000,
                "dst_addr": "2001:db8::2", "dst_port": 443, "protocol": "TCP"
            })
        );
        assert_eq!(
            v["flow_stats"],
            serde_json::json!({
                "sample_rate": 100, "sampling": "random 1 in N", "estimated": true,
                "table_size": 4096, "table_entries": 12, "flows_seen": 15,
                "evictions": 3, "sampled_packets": 3, "update_failures": 1
            })
        );
        assert_eq!(
            v["errors"],
            serde_json::json!({"ipv4_checksum": 2, "truncated": 0})
        );
        // A summary job: no flow_stats key, an empty top_flows list.
        let v = serde_json::to_value(Results::from(pb::Results::default())).unwrap();
        assert!(v.get("flow_stats").is_none(), "{v}");
        assert!(v.get("filter_rejected").is_none(), "unfiltered: {v}");
        assert_eq!(v["top_flows"], serde_json::json!([]));
        let filtered = Results::from(pb::Results {
            filter_rejected: Some(0),
            ..Default::default()
        });
        let v = serde_json::to_value(filtered).unwrap();
        assert_eq!(v["filter_rejected"], 0, "a filtered job says 0: {v}");
    }

    #[test]
    fn sonic_jobs_say_their_mirror_scope() {
        let v = serde_json::to_value(Job::from(pb::Job {
            mirror_mode: "sonic".into(),
            mirror_scope: "port".into(),
            mirror_scope_reason: "no filter: the whole port is mirrored".into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(v["mirror_scope"], "port");
        assert_eq!(
            v["mirror_scope_reason"],
            "no filter: the whole port is mirrored"
        );
        // Other modes: neither key; an acl scope confirmed: no reason.
        let v = serde_json::to_value(Job::from(pb::Job {
            mirror_scope: "acl".into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(v["mirror_scope"], "acl");
        assert!(v.get("mirror_scope_reason").is_none(), "{v}");
        let v = serde_json::to_value(Job::from(pb::Job::default())).unwrap();
        assert!(v.get("mirror_scope").is_none(), "{v}");
    }
}
