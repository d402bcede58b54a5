use super::*;
use serde_json::json;

fn text(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut buf = Vec::new();
    f(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

fn job_fixture() -> serde_json::Value {
    json!({
        "job_id": "3f0c2a9e-1b2c-4d5e-8f90-0123456789ab",
        "status": "running",
        "port": "Ethernet0",
        "direction": "ingress",
        "interface": "Ethernet0",
        "mirror_mode": "direct",
        "attach_mode": "tcx",
        "started_at": "2026-05-01T10:00:00Z",
        "expires_at": "2026-05-01T10:02:00Z",
        "stopped_at": null,
        "error": null,
        "fallback_reason": null,
        "duration_sec": 120,
        "ifindex": 7,
        "otlp_export": true,
        "result_detail": "summary",
        "sample_rate": 1,
        "new_field": [1, 2]
    })
}

#[test]
fn job_is_a_key_value_table() {
    let j: Job = serde_json::from_value(job_fixture()).unwrap();
    assert_eq!(
        text(|o| job(o, &j)),
        "\
job_id           3f0c2a9e-1b2c-4d5e-8f90-0123456789ab
status           running
port             Ethernet0
ifindex          7
direction        ingress
interface        Ethernet0
mirror_mode      direct
fallback_reason  -
attach_mode      tcx
duration_sec     120 s
sample_rate      1
result_detail    summary
flow_table_size  -
otlp_export      yes
started_at       2026-05-01T10:00:00Z
expires_at       2026-05-01T10:02:00Z
stopped_at       -
error            -
"
    );
    let sparse: Job = serde_json::from_value(json!({"job_id": "x", "duration_sec": 0})).unwrap();
    let t = text(|o| job(o, &sparse));
    assert!(t.contains("duration_sec     0 (until stopped)\n"), "{t}");
    assert!(t.contains("status           -\n"), "{t}");
    assert!(!t.contains("filters"), "{t}");
}

#[test]
fn a_sonic_jobs_mirror_scope_follows_its_mode() {
    let mut v = job_fixture();
    v["mirror_mode"] = json!("sonic");
    v["mirror_scope"] = json!("port");
    v["mirror_scope_reason"] = json!("no filter: the whole port is mirrored");
    let j: Job = serde_json::from_value(v).unwrap();
    let t = text(|o| job(o, &j));
    assert!(
        t.contains(
            "\nmirror_mode          sonic\nfallback_reason      -\nmirror_scope         port\n\
             mirror_scope_reason  no filter: the whole port is mirrored\nattach_mode          tcx\n"
        ),
        "{t}"
    );
}

#[test]
fn job_filters_are_one_line_after_the_table() {
    let mut v = job_fixture();
    v["result_detail"] = json!("flows");
    v["flow_table_size"] = json!(4096);
    // Keys in the request's documented order, whatever order they come in.
    v["filters"] = json!({
        "vlan": 100, "dscp": [46], "l4_dport": [443], "ip_proto": ["tcp", "udp"]
    });
    let j: Job = serde_json::from_value(v).unwrap();
    let t = text(|o| job(o, &j));
    assert!(t.contains("\nflow_table_size  4096\n"), "{t}");
    assert!(
        t.ends_with(
            "error            -\nfilters: ip_proto=tcp,udp l4_dport=443 dscp=46 vlan=100\n"
        ),
        "{t}"
    );
}

#[test]
fn filters_line_shows_what_is_set() {
    let line = |v: serde_json::Value| filters_line(&v);
    assert_eq!(
        line(json!({
            "src_cidr": ["10.0.0.0/8", "2001:db8::/32"], "dst_cidr": ["192.0.2.1/32"],
            "l4_sport": [1024, 1025], "ip_proto": ["17"], "zz_new": true
        }))
        .as_deref(),
        Some("ip_proto=17 l4_sport=1024,1025 src_cidr=10.0.0.0/8,2001:db8::/32 dst_cidr=192.0.2.1/32 zz_new=true")
    );
    assert_eq!(
        line(json!({"dscp": [], "vlan": null, "l4_dport": []})),
        None
    );
    assert_eq!(line(json!({"vlan": 0})).as_deref(), Some("vlan=0"));
    assert_eq!(line(json!({})), None);
    assert_eq!(line(json!(null)), None);
    assert_eq!(line(json!("raw")).as_deref(), Some("raw"));
    // A null or empty filters object prints nothing.
    let j: Job = serde_json::from_value(json!({"job_id": "x", "filters": null})).unwrap();
    assert!(!text(|o| job(o, &j)).contains("filters"));
    let j: Job = serde_json::from_value(json!({"job_id": "x", "filters": {}})).unwrap();
    assert!(!text(|o| job(o, &j)).contains("filters"));
}

#[test]
fn list_has_one_aligned_row_per_job() {
    let a: Job = serde_json::from_value(job_fixture()).unwrap();
    let b: Job = serde_json::from_value(json!({
        "job_id": "b", "status": "stopped", "port": "Ethernet12",
        "direction": "both", "interface": "erspan0", "mirror_mode": "placeholder",
        "started_at": "2026-05-01T09:00:00Z"
    }))
    .unwrap();
    assert_eq!(
        text(|o| job_list(o, &[a, b])),
        "\
ID                                    STATUS   PORT        DIRECTION  INTERFACE  MODE         STARTED
3f0c2a9e-1b2c-4d5e-8f90-0123456789ab  running  Ethernet0   ingress    Ethernet0  direct       2026-05-01T10:00:00Z
b                                     stopped  Ethernet12  both       erspan0    placeholder  2026-05-01T09:00:00Z
"
    );
    assert_eq!(text(|o| job_list(o, &[])), "no jobs\n");
}

#[test]
fn bucket_labels() {
    let bounds = [64, 128, 256, 512, 1024, 1518, 4096, 9216];
    let labels: Vec<String> = (0..9).map(|i| bucket_label(&bounds, i)).collect();
    assert_eq!(
        labels,
        [
            "<=64",
            "65-128",
            "129-256",
            "257-512",
            "513-1024",
            "1025-1518",
            "1519-4096",
            "4097-9216",
            ">9216"
        ]
    );
    // More counts than bounds + 1, or no bounds: still labelled.
    assert_eq!(bucket_label(&bounds, 9), "bucket 9");
    assert_eq!(bucket_label(&[], 0), "bucket 0");
}

fn results_fixture() -> serde_json::Value {
    json!({
        "job_id": "3f0c",
        "status": "running",
        "window_sec": 12.345,
        "packets_total": 12,
        "bytes_total": 1624,
        "by_proto": {
            "other": {"packets": 1, "bytes": 60},
            "ipv4": {"packets": 10, "bytes": 1000},
            "icmp6": {"packets": 0, "bytes": 0},
            "ipv6": {"packets": 1, "bytes": 564}
        },
        "size_histogram": {
            "bounds": [64, 128, 256, 512, 1024, 1518, 4096, 9216],
            "counts": [1, 10, 0, 0, 1, 0, 0, 0, 0]
        },
        "top_flows": [],
        "errors": {"truncated": 0, "ipv6_exthdr_limit": 0},
        "otel_export": {"exported": true, "endpoint": "http://localhost:4317"}
    })
}

#[test]
fn results_tables() {
    let r: Results = serde_json::from_value(results_fixture()).unwrap();
    assert_eq!(
        text(|o| results(o, &r)),
        "\
job 3f0c (running): 12 packets, 1624 bytes in 12.3 s

PROTO  PACKETS  BYTES
ipv4        10   1000
ipv6         1    564
icmp6        0      0
other        1     60

SIZE (bytes)  PACKETS
<=64                1
65-128             10
129-256             0
257-512             0
513-1024            1
1025-1518           0
1519-4096           0
4097-9216           0
>9216               0

otlp export: yes, to http://localhost:4317
"
    );
}

#[test]
fn results_show_flows_and_nonzero_errors() {
    let mut v = results_fixture();
    v["top_flows"] = json!([
        {"five_tuple": "udp 10.0.0.1:12345 -> 10.0.0.2:9", "pkts": 10, "bytes": 1000},
        {"five_tuple": {"proto": "tcp"}, "pkts": 2, "bytes": 120}
    ]);
    v["errors"] = json!({"truncated": 3, "global_lookup": 0});
    v["otel_export"] = json!({"exported": false, "endpoint": "http://localhost:4317"});
    v["by_proto"]["arp"] = json!({"packets": 5, "bytes": 300});
    let r: Results = serde_json::from_value(v).unwrap();
    let t = text(|o| results(o, &r));
    assert!(
        t.contains(
            "\
FIVE_TUPLE                        PKTS  BYTES
udp 10.0.0.1:12345 -> 10.0.0.2:9    10   1000
{\"proto\":\"tcp\"}                      2    120
"
        ),
        "{t}"
    );
    // Exact counts: no estimate marks, no note, no flow table line.
    assert!(!t.contains('~') && !t.contains("flow table"), "{t}");
    assert!(t.contains("\nERROR      COUNT\ntruncated      3\n"), "{t}");
    assert!(!t.contains("global_lookup"), "{t}");
    assert!(
        t.contains("\nother        1     60\narp          5    300\n"),
        "{t}"
    );
    assert!(t.ends_with("otlp export: no\n"), "{t}");
}

#[test]
fn sampled_flows_are_marked_as_estimates_with_the_table_state() {
    let mut v = results_fixture();
    v["top_flows"] = json!([
        {"five_tuple": "10.0.0.1:40000->10.0.0.2:443/TCP", "pkts": 1200, "bytes": 1800000,
         "estimated": true, "src_addr": "10.0.0.1", "src_port": 40000,
         "dst_addr": "10.0.0.2", "dst_port": 443, "protocol": "TCP"},
        {"five_tuple": "[2001:db8::1]:53->[2001:db8::2]:5353/UDP", "pkts": 100,
         "bytes": 9000, "estimated": true}
    ]);
    v["flow_stats"] = json!({
        "sample_rate": 100, "sampling": "random", "estimated": true,
        "table_size": 4096, "table_entries": 812, "flows_seen": 1530,
        "evictions": 0, "sampled_packets": 13, "update_failures": 0
    });
    let r: Results = serde_json::from_value(v.clone()).unwrap();
    let t = text(|o| results(o, &r));
    assert!(
        t.contains(
            "\n\
FIVE_TUPLE                                 PKTS     BYTES
10.0.0.1:40000->10.0.0.2:443/TCP          ~1200  ~1800000
[2001:db8::1]:53->[2001:db8::2]:5353/UDP   ~100     ~9000
~ scaled estimate: flow tracking sampled 1 in 100 packets (the totals above are exact)
flow table: sample rate 1 in 100, 812/4096 entries, 1530 flows seen, 0 evictions
"
        ),
        "{t}"
    );

    // A full table stands out.
    v["flow_stats"]["evictions"] = json!(37);
    v["flow_stats"]["update_failures"] = json!(2);
    let r: Results = serde_json::from_value(v.clone()).unwrap();
    let t = text(|o| results(o, &r));
    assert!(
        t.contains(
            "flow table: sample rate 1 in 100, 812/4096 entries, 1530 flows seen, \
             37 EVICTIONS (the table was full: flows were pushed out, top flows may be \
             incomplete), 2 UPDATE FAILURES\n"
        ),
        "{t}"
    );

    // Flows job without flows yet, every packet tracked.
    v["top_flows"] = json!([]);
    v["flow_stats"] = json!({"sample_rate": 1, "table_size": 4096, "table_entries": 0,
                             "flows_seen": 0, "evictions": 0});
    let r: Results = serde_json::from_value(v).unwrap();
    let t = text(|o| results(o, &r));
    assert!(
        t.contains(
            "\nno flows yet\nflow table: sample rate every packet, 0/4096 entries, \
             0 flows seen, 0 evictions\n"
        ),
        "{t}"
    );
    assert!(!t.contains('~'), "{t}");
}

#[test]
fn results_with_missing_parts_still_render() {
    let r: Results = serde_json::from_value(json!({"job_id": "x"})).unwrap();
    let t = text(|o| results(o, &r));
    assert!(t.starts_with("job x (-): - packets, - bytes in -\n"), "{t}");
    assert!(t.contains("ipv4         -      -\n"), "{t}");
}

#[test]
fn pretty_json_keeps_order_and_values() {
    let body =
        r#"{"z":1,"a":{"s":"x, y: {[\"q\"]}","e":[],"o":{ }},"n":[1.50,2e3,-0],"t":true,"u":null}"#;
    let t = text(|o| pretty_json(o, body));
    assert_eq!(
        t,
        r#"{
  "z": 1,
  "a": {
    "s": "x, y: {[\"q\"]}",
    "e": [],
    "o": {}
  },
  "n": [
    1.50,
    2e3,
    -0
  ],
  "t": true,
  "u": null
}
"#
    );
    // Same document as the input.
    let a: serde_json::Value = serde_json::from_str(body).unwrap();
    let b: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(a, b);
    // Already pretty input is re-indented, not doubled.
    let again = text(|o| pretty_json(o, &t));
    assert_eq!(again, t);
    assert_eq!(text(|o| pretty_json(o, "\"\\\\\"")), "\"\\\\\"\n");
}

#[test]
fn coverage_says_complete_or_what_is_missing() {
    let mut v = results_fixture();
    v["coverage"] = json!({"sample_rate": 1, "error_bound": "", "tunnel_sequenced": 0,
        "upstream_lost": 0, "upstream_late": 0, "flow_evictions": 0, "flow_update_failures": 0,
        "capture_dropped": 0, "exports_failed": 0, "complete": true});
    let r: Results = serde_json::from_value(v.clone()).unwrap();
    assert!(text(|o| results(o, &r)).contains("\ncoverage: complete\n"));
    v["coverage"]["upstream_lost"] = json!(2);
    v["coverage"]["exports_failed"] = json!(1);
    v["coverage"]["tunnel_sequenced"] = json!(40);
    v["coverage"]["complete"] = json!(false);
    let r: Results = serde_json::from_value(v).unwrap();
    let t = text(|o| results(o, &r));
    assert!(
        t.contains("\ncoverage: incomplete: 2 lost upstream (GRE sequence gaps), 1 failed exports; 40 sequenced tunnel packets\n"),
        "{t}"
    );
}
