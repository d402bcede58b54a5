//! Job filters, sampling and top flows in the classifier (issue 7), with real
//! frames on real veths: every count is checked against a reference model of
//! the filter semantics evaluated over the exact traffic sent.

use std::net::IpAddr;
use std::time::Duration;

use telegen_integration_tests::{
    frames::{self, Pkt},
    netns::{Netns, Veth},
    poll,
    probe::Probe,
};
use telegen_proto::v1 as pb;

struct Lab {
    probe_ns: Netns,
    peer_ns: Netns,
    veth: Veth,
}

impl Lab {
    fn new() -> Lab {
        let probe_ns = Netns::new("tfp").unwrap();
        let peer_ns = Netns::new("tfq").unwrap();
        let veth = Veth::new(&probe_ns, &peer_ns).unwrap();
        Lab {
            probe_ns,
            peer_ns,
            veth,
        }
    }

    fn ingress(&self, pkts: &[Pkt]) {
        let frames: Vec<Vec<u8>> = pkts.iter().map(Pkt::frame).collect();
        for chunk in frames.chunks(4096) {
            frames::send(&self.peer_ns.path(), &self.veth.peer, chunk).unwrap();
        }
    }
}

/// The reference model: what a filter admits, per the API's documented
/// semantics (fields AND, list values OR).
#[derive(Debug, Clone, Default)]
struct Model {
    ip_proto: Vec<u8>,
    l4_sport: Vec<u16>,
    l4_dport: Vec<u16>,
    src_cidr: Vec<(IpAddr, u8)>,
    dst_cidr: Vec<(IpAddr, u8)>,
    dscp: Vec<u8>,
    vlan: Option<u16>,
}

fn in_prefix(a: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

impl Model {
    fn admits(&self, p: &Pkt) -> bool {
        let any =
            |l: &[(IpAddr, u8)], a: IpAddr| l.is_empty() || l.iter().any(|c| in_prefix(a, *c));
        (self.ip_proto.is_empty() || self.ip_proto.contains(&p.proto))
            && (self.l4_sport.is_empty() || (p.has_ports() && self.l4_sport.contains(&p.sport)))
            && (self.l4_dport.is_empty() || (p.has_ports() && self.l4_dport.contains(&p.dport)))
            && any(&self.src_cidr, p.src)
            && any(&self.dst_cidr, p.dst)
            && (self.dscp.is_empty() || self.dscp.contains(&p.dscp))
            && (self.vlan.is_none() || self.vlan == p.vlan)
    }

    fn to_proto(&self) -> pb::Filters {
        let cidr = |l: &[(IpAddr, u8)]| l.iter().map(|(a, n)| format!("{a}/{n}")).collect();
        pb::Filters {
            ip_proto: self.ip_proto.iter().map(|p| p.to_string()).collect(),
            l4_sport: self.l4_sport.iter().map(|&p| p.into()).collect(),
            l4_dport: self.l4_dport.iter().map(|&p| p.into()).collect(),
            src_cidr: cidr(&self.src_cidr),
            dst_cidr: cidr(&self.dst_cidr),
            dscp: self.dscp.iter().map(|&d| d.into()).collect(),
            vlan: self.vlan.map(u32::from),
        }
    }
}

fn net(s: &str) -> (IpAddr, u8) {
    let (a, n) = s.split_once('/').unwrap();
    (a.parse().unwrap(), n.parse().unwrap())
}

/// Mixed traffic: both families, five protocols, ports with and without a
/// match, three DSCP values, untagged and two VLANs, IPv4 later fragments,
/// IPv6 with an extension header, bad IPv4 checksums and ARP.
fn mixed() -> Vec<Pkt> {
    let v4 = (
        ["10.1.1.1", "10.1.2.3", "10.9.0.1"],
        ["10.2.2.2", "10.2.3.3"],
    );
    let v6 = (["fd00:1::5", "fd00:9::1"], ["fd00:2::2", "fd00:2:0:1::2"]);
    let mut out = Vec::new();
    // A small deterministic generator: the same mix on every run.
    let mut seed = 0x2545_f491_u32;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize % n
    };
    for i in 0..400 {
        let six = i % 3 == 0;
        let (src, dst) = if six {
            (v6.0[next(2)], v6.1[next(2)])
        } else {
            (v4.0[next(3)], v4.1[next(2)])
        };
        let proto = [6, 17, if six { 58 } else { 1 }, 132][next(4)];
        let mut p = Pkt::new(
            src,
            dst,
            proto,
            [1000, 2000][next(2)],
            [53, 443, 8080][next(3)],
            80 + next(300),
        );
        p.dscp = [0, 10, 46][next(3)];
        p.vlan = [None, Some(100), Some(200)][next(3)];
        if !six && next(10) == 0 {
            p.later_fragment = true;
        }
        if !six && next(12) == 0 {
            p.bad_csum = true;
        }
        if six && next(5) == 0 {
            p.v6_ext = true;
            p.len = p.len.max(130);
        }
        out.push(p);
    }
    out
}

async fn start(probe: &Probe, port: &str, req: pb::StartJobRequest) -> pb::Job {
    let job = probe
        .client()
        .start_job(pb::StartJobRequest {
            port: port.into(),
            direction: "ingress".into(),
            ..req
        })
        .await
        .unwrap()
        .into_inner();
    probe.wait_status(&job.job_id, "running").await.unwrap()
}

async fn results_top(probe: &Probe, id: &str, top: u32) -> pb::Results {
    probe
        .client()
        .get_results(pb::GetResultsRequest {
            job_id: id.into(),
            top,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Each job counts exactly what its model admits, `round` times the traffic.
async fn check(probe: &Probe, models: &[Model], jobs: &[pb::Job], traffic: &[Pkt], round: u64) {
    for (m, job) in models.iter().zip(jobs) {
        let admitted: Vec<&Pkt> = traffic.iter().filter(|p| m.admits(p)).collect();
        let want = (
            round * admitted.len() as u64,
            round * admitted.iter().map(|p| p.len as u64).sum::<u64>(),
        );
        assert!(want.0 > 0, "the mix must exercise {m:?}");
        let r = poll(
            &format!("{m:?} to count {} packets", want.0),
            Duration::from_secs(10),
            || async {
                let r = probe.results(&job.job_id).await.ok()?;
                (r.packets_total >= want.0).then_some(r)
            },
        )
        .await
        .unwrap();
        assert_eq!((r.packets_total, r.bytes_total), want, "{m:?}");
        let bad = round * admitted.iter().filter(|p| p.bad_csum).count() as u64;
        assert_eq!(r.errors["ipv4_checksum"], bad, "{m:?}");
    }
}

/// Eight jobs on one port, each with another filter (one without, one
/// combining five fields), all counting the same mixed traffic at once:
/// each counts exactly the packets and bytes its filter admits, and its
/// own IPv4 checksum errors; after a probe crash the filters are still
/// there and still applied.
#[tokio::test]
async fn each_filter_alone_and_combined_counts_exactly() {
    let lab = Lab::new();
    let mut probe = Probe::start(&lab.probe_ns, &[("TELEGEN_MAX_JOBS", "8")])
        .await
        .unwrap();
    let models = vec![
        Model::default(),
        Model {
            ip_proto: vec![17],
            ..Default::default()
        },
        Model {
            l4_dport: vec![53, 443],
            ..Default::default()
        },
        Model {
            src_cidr: vec![net("10.1.0.0/16"), net("fd00:1::/32")],
            ..Default::default()
        },
        Model {
            dst_cidr: vec![net("10.2.2.0/24"), net("fd00:2::/64")],
            ..Default::default()
        },
        Model {
            dscp: vec![46, 10],
            ..Default::default()
        },
        Model {
            vlan: Some(100),
            ..Default::default()
        },
        Model {
            ip_proto: vec![6, 17],
            l4_sport: vec![1000],
            dscp: vec![46],
            dst_cidr: vec![net("10.2.0.0/16")],
            vlan: Some(200),
            ..Default::default()
        },
    ];
    let mut jobs = Vec::new();
    for m in &models {
        let job = start(
            &probe,
            &lab.veth.port,
            pb::StartJobRequest {
                filters: Some(m.to_proto()),
                ..Default::default()
            },
        )
        .await;
        jobs.push(job);
    }
    // The echo is the normalised filter.
    assert!(jobs[0].filters.is_none());
    assert_eq!(jobs[1].filters.as_ref().unwrap().ip_proto, vec!["udp"]);
    assert_eq!(
        jobs[4].filters.as_ref().unwrap().dst_cidr,
        vec!["10.2.2.0/24", "fd00:2::/64"]
    );
    assert_eq!(jobs[5].filters.as_ref().unwrap().dscp, vec![10, 46]);
    assert_eq!(jobs[7].filters.as_ref().unwrap().vlan, Some(200));

    let traffic = mixed();
    lab.ingress(&traffic);
    check(&probe, &models, &jobs, &traffic, 1).await;
    let total = traffic.len() as u64;
    let filtered = models[7].clone();
    assert!(
        traffic.iter().filter(|p| filtered.admits(p)).count() < traffic.len() / 10,
        "the combined filter must be selective"
    );

    // A crash: the filters live in the pinned maps, the restarted probe
    // echoes them and the classifier keeps applying them.
    probe.kill_process();
    probe.spawn(&[]).await.unwrap();
    let again = probe
        .client()
        .get_job(pb::GetJobRequest {
            job_id: jobs[7].job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (mut a, mut b) = (again.filters.unwrap(), jobs[7].filters.clone().unwrap());
    a.ip_proto.sort();
    b.ip_proto.sort();
    assert_eq!(a, b);
    lab.ingress(&traffic);
    check(&probe, &models, &jobs, &traffic, 2).await;
    let all = probe.results(&jobs[0].job_id).await.unwrap();
    assert_eq!(all.packets_total, 2 * total);
    // The interface counters (the seed's maps) still count everything.
    let snap = probe.snapshot().await.unwrap();
    let port: u64 = snap
        .interfaces
        .iter()
        .filter(|i| i.interface == lab.veth.port)
        .flat_map(|i| &i.series)
        .map(|s| s.counters.as_ref().map_or(0, |c| c.packets))
        .sum();
    assert_eq!(port, 2 * total);
}

/// Flows with known volumes: at sample_rate 1 the top K and their packet
/// and byte counts are exact; at sample_rate 100 (same traffic, another job
/// on the same port) the ranking holds (byte volumes differ by 1.5x or more)
/// and each top flow's estimate is within 5 standard deviations of a
/// binomial thinning, 5·√(n·(N−1)) (the smallest, 10000 packets, gets about
/// 100 samples: a deviation of 10%). A bound of 25% (2.7 deviations there)
/// failed one CI run in a few hundred: estimated 12700 for 10000.
#[tokio::test]
async fn top_flows_exact_at_rate_1_and_estimated_at_100() {
    let lab = Lab::new();
    let probe = Probe::start(&lab.probe_ns, &[("TELEGEN_MAX_JOBS", "4")])
        .await
        .unwrap();
    let flows = |rate: u32| pb::StartJobRequest {
        result_detail: "flows".into(),
        sample_rate: Some(rate),
        ..Default::default()
    };
    let exact = start(&probe, &lab.veth.port, flows(1)).await;
    let sampled = start(&probe, &lab.veth.port, flows(100)).await;
    assert_eq!(exact.flow_table_size, 1024);
    assert_eq!(sampled.sample_rate, 100);

    // (packet, count): four big flows, v4 and v6, and 30 one-packet flows.
    let big = vec![
        (
            Pkt::new("10.0.0.1", "10.0.0.2", 17, 1000, 2000, 150),
            40_000u64,
        ),
        (Pkt::new("fd00::1", "fd00::2", 6, 443, 50000, 120), 30_000),
        (Pkt::new("10.0.0.3", "10.0.0.4", 6, 1234, 80, 64), 20_000),
        (Pkt::new("10.0.0.5", "10.0.0.6", 17, 53, 5353, 200), 10_000),
    ];
    let mut traffic = Vec::new();
    // Interleaved, as on a real port.
    let most = big.iter().map(|b| b.1).max().unwrap();
    for i in 0..most {
        for (p, n) in &big {
            if i < *n {
                traffic.push(p.clone());
            }
        }
    }
    for i in 0..30u16 {
        traffic.push(Pkt::new("10.7.0.1", "10.7.0.2", 17, 3000 + i, 9, 64));
    }
    lab.ingress(&traffic);
    let total = traffic.len() as u64;
    probe.results_at(&exact.job_id, total).await.unwrap();
    probe.results_at(&sampled.job_id, total).await.unwrap();

    let r = results_top(&probe, &exact.job_id, 4).await;
    assert_eq!(
        r.packets_total, total,
        "counters are exact for every packet"
    );
    let want: Vec<(String, u64, u64)> = vec![
        (
            "10.0.0.1:1000->10.0.0.2:2000/UDP".into(),
            40_000,
            40_000 * 150,
        ),
        (
            "[fd00::1]:443->[fd00::2]:50000/TCP".into(),
            30_000,
            30_000 * 120,
        ),
        (
            "10.0.0.5:53->10.0.0.6:5353/UDP".into(),
            10_000,
            10_000 * 200,
        ),
        ("10.0.0.3:1234->10.0.0.4:80/TCP".into(), 20_000, 20_000 * 64),
    ];
    let got: Vec<(String, u64, u64)> = r
        .top_flows
        .iter()
        .map(|f| (f.five_tuple.clone(), f.pkts, f.bytes))
        .collect();
    assert_eq!(got, want, "top 4 by bytes, exact");
    assert!(r.top_flows.iter().all(|f| !f.estimated));
    assert_eq!(r.top_flows[1].src_addr, "fd00::1");
    assert_eq!(r.top_flows[1].protocol, "TCP");
    let st = r.flow_stats.unwrap();
    assert_eq!(
        (
            st.table_entries,
            st.flows_seen,
            st.evictions,
            st.sampled_packets
        ),
        (34, 34, 0, total)
    );
    // Default top is 10; all 34 flows with top 100.
    assert_eq!(
        results_top(&probe, &exact.job_id, 0).await.top_flows.len(),
        10
    );
    assert_eq!(
        results_top(&probe, &exact.job_id, 100)
            .await
            .top_flows
            .len(),
        34
    );

    let r = results_top(&probe, &sampled.job_id, 4).await;
    assert_eq!(r.packets_total, total, "counters stay exact when sampling");
    let st = r.flow_stats.unwrap();
    assert!(st.estimated && st.sample_rate == 100, "{st:?}");
    let expect_samples = total / 100;
    assert!(
        st.sampled_packets.abs_diff(expect_samples) * 5 < expect_samples,
        "sampled {} of {total}",
        st.sampled_packets
    );
    let order: Vec<&str> = r.top_flows.iter().map(|f| f.five_tuple.as_str()).collect();
    assert_eq!(
        order,
        want.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(),
        "same ranking when sampled"
    );
    for (f, (_, pkts, bytes)) in r.top_flows.iter().zip(&want) {
        assert!(f.estimated);
        let bound = 5.0 * (*pkts as f64 * 99.0).sqrt();
        assert!(
            (f.pkts.abs_diff(*pkts) as f64) <= bound,
            "{}: estimated {} packets for {pkts} (bound ±{bound:.0})",
            f.five_tuple,
            f.pkts
        );
        assert_eq!(f.bytes * *pkts, f.pkts * bytes, "bytes scale with packets");
    }

    // At its end a job's table is replaced by its top flows: the memory
    // goes, the results stay, across a restart too.
    let mut probe = probe;
    let before = results_top(&probe, &exact.job_id, 100).await;
    probe.stop_job(&exact.job_id).await.unwrap();
    let sizes = flow_table_sizes(&probe.pin_dir);
    assert_eq!(
        sizes,
        vec![35, 1024],
        "kept 34 + summary; the running job's"
    );
    for round in ["stopped", "restarted"] {
        let after = results_top(&probe, &exact.job_id, 100).await;
        assert_eq!(after.top_flows, before.top_flows, "{round}");
        let (a, b) = (
            after.flow_stats.unwrap(),
            before.flow_stats.clone().unwrap(),
        );
        assert_eq!(
            (a.table_size, a.table_entries, a.flows_seen, a.evictions),
            (b.table_size, b.table_entries, b.flows_seen, b.evictions),
            "{round}"
        );
        assert_eq!(
            results_top(&probe, &exact.job_id, 4).await.top_flows.len(),
            4
        );
        probe.kill_process();
        probe.spawn(&[]).await.unwrap();
    }
    assert_eq!(flow_table_sizes(&probe.pin_dir), vec![35, 1024]);
}

/// The entries each pinned flow table holds at most, smallest first.
fn flow_table_sizes(pin_dir: &std::path::Path) -> Vec<u32> {
    let mut sizes: Vec<u32> = std::fs::read_dir(pin_dir.join("flows"))
        .unwrap()
        .map(|e| {
            aya::maps::MapInfo::from_pin(e.unwrap().path())
                .unwrap()
                .max_entries()
        })
        .collect();
    sizes.sort();
    sizes
}

/// All running jobs' flow tables together stay under
/// TELEGEN_FLOW_ENTRIES_MAX: a start past it is refused and records
/// nothing; an ended job's table no longer counts.
#[tokio::test]
async fn flow_tables_are_capped_in_total() {
    let lab = Lab::new();
    let probe = Probe::start(
        &lab.probe_ns,
        &[
            ("TELEGEN_FLOW_TABLE_SIZE", "1000"),
            ("TELEGEN_FLOW_ENTRIES_MAX", "2500"),
            ("TELEGEN_MAX_JOBS", "4"),
        ],
    )
    .await
    .unwrap();
    let flows = || pb::StartJobRequest {
        port: lab.veth.port.clone(),
        direction: "ingress".into(),
        result_detail: "flows".into(),
        ..Default::default()
    };
    let first = start(&probe, &lab.veth.port, flows()).await;
    start(&probe, &lab.veth.port, flows()).await;
    let refused = probe.client().start_job(flows()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .contains("TELEGEN_FLOW_ENTRIES_MAX (2500)"),
        "{}",
        refused.message()
    );
    let listed = probe
        .client()
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.jobs.len(), 2);
    probe.stop_job(&first.job_id).await.unwrap();
    start(&probe, &lab.veth.port, flows()).await;
}

/// More flows than the table holds: evictions are counted (flows inserted
/// minus flows present), and the big, busy flows are still reported with
/// every packet.
#[tokio::test]
async fn flow_table_overflow_counts_evictions_and_keeps_the_big_flows() {
    let lab = Lab::new();
    let probe = Probe::start(&lab.probe_ns, &[("TELEGEN_FLOW_TABLE_SIZE", "64")])
        .await
        .unwrap();
    let job = start(
        &probe,
        &lab.veth.port,
        pb::StartJobRequest {
            result_detail: "flows".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(job.flow_table_size, 64);
    let big: Vec<Pkt> = (0..3)
        .map(|i| Pkt::new("10.0.0.1", "10.0.0.2", 6, 7000 + i, 443, 1000))
        .collect();
    let small = 600u16;
    let mut traffic = Vec::new();
    for i in 0..small {
        traffic.push(Pkt::new("10.5.0.1", "10.5.0.2", 17, 10_000 + i, 53, 64));
        // The big flows stay among the most recently used.
        if i % 8 == 0 {
            traffic.extend(big.iter().cloned());
        }
    }
    lab.ingress(&traffic);
    let total = traffic.len() as u64;
    probe.results_at(&job.job_id, total).await.unwrap();
    let r = results_top(&probe, &job.job_id, 3).await;
    let st = r.flow_stats.unwrap();
    assert_eq!(st.table_size, 64);
    assert!(st.table_entries <= 64, "{st:?}");
    assert!(st.flows_seen >= u64::from(small) + 3, "{st:?}");
    assert_eq!(st.evictions, st.flows_seen - st.table_entries, "{st:?}");
    assert!(st.evictions >= u64::from(small) + 3 - 64, "{st:?}");
    let per_big = u64::from(small).div_ceil(8);
    for f in &r.top_flows {
        assert_eq!(
            (f.pkts, f.bytes),
            (per_big, per_big * 1000),
            "{}",
            f.five_tuple
        );
    }
    let mut ports: Vec<u32> = r.top_flows.iter().map(|f| f.src_port).collect();
    ports.sort();
    assert_eq!(ports, vec![7000, 7001, 7002], "the big flows are the top 3");
}

/// A hook adopted from a probe that predates filters runs a classifier that
/// would ignore them: a filtered job there fails, saying why, and the plain
/// job keeps counting; once the hook is free, filtered jobs attach anew.
#[tokio::test]
async fn a_hook_attached_before_filters_refuses_filtered_jobs() {
    use aya::maps::{Array, Map, MapData};
    use telegen_probe::maps::layout::IfaceRec;

    let lab = Lab::new();
    let mut probe = Probe::start(&lab.probe_ns, &[]).await.unwrap();
    let plain = start(&probe, &lab.veth.port, Default::default()).await;
    probe.kill_process();
    // Make the pinned attachment records read as an older probe wrote them.
    {
        let md = MapData::from_pin(probe.pin_dir.join("ifaces")).unwrap();
        let mut ifaces: Array<MapData, IfaceRec> = Array::try_from(Map::Array(md)).unwrap();
        for slot in 0..ifaces.len() {
            let mut r = ifaces.get(&slot, 0).unwrap();
            if r.used != 0 {
                r.hook.iter_mut().for_each(|h| h.generation = 0);
                ifaces.set(slot, r, 0).unwrap();
            }
        }
    }
    probe.spawn(&[]).await.unwrap();
    let udp = pb::StartJobRequest {
        port: lab.veth.port.clone(),
        direction: "ingress".into(),
        filters: Some(pb::Filters {
            ip_proto: vec!["udp".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let job = probe
        .client()
        .start_job(udp.clone())
        .await
        .unwrap()
        .into_inner();
    let failed = probe.wait_status(&job.job_id, "failed").await.unwrap();
    assert!(failed.error.contains("older probe"), "{}", failed.error);
    let pkts: Vec<Pkt> = (0..5)
        .map(|i| Pkt::new("10.0.0.1", "10.0.0.2", 6, 1000 + i, 80, 100))
        .collect();
    lab.ingress(&pkts);
    probe.results_at(&plain.job_id, 5).await.unwrap();

    probe.stop_job(&plain.job_id).await.unwrap();
    let job = start(&probe, &lab.veth.port, udp).await;
    lab.ingress(&pkts);
    lab.ingress(&[Pkt::new("10.0.0.1", "10.0.0.2", 17, 53, 53, 90)]);
    let r = probe.results_at(&job.job_id, 1).await.unwrap();
    assert_eq!((r.packets_total, r.bytes_total), (1, 90));
}

/// An upgrade over pins of the previous layout of the error counters (8
/// entries, before deep_program_missing and filter_lookup): the probe
/// replaces that counter-only map, adopts its running job, and counts on.
#[tokio::test]
async fn an_error_map_of_the_older_size_is_replaced_and_jobs_count_on() {
    use aya::maps::MapData;
    use aya_obj::generated::bpf_map_type;

    let lab = Lab::new();
    let mut probe = Probe::start(&lab.probe_ns, &[]).await.unwrap();
    let job = start(&probe, &lab.veth.port, Default::default()).await;
    probe.kill_process();
    let pin = probe.pin_dir.join("errors_percpu");
    std::fs::remove_file(&pin).unwrap();
    let def =
        aya_obj::Map::new_from_params(bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY as u32, 4, 8, 8, 0);
    let old = MapData::create(def, "errors_percpu", None).unwrap();
    old.pin(&pin).unwrap();
    drop(old);
    probe.spawn(&[]).await.unwrap();
    let info = probe.info().await.unwrap();
    assert!(info.datapath_enabled, "{}", info.datapath_reason);
    assert!(
        probe.log_text().contains("replacing a pinned counter map"),
        "{}",
        probe.log_text()
    );
    probe.wait_status(&job.job_id, "running").await.unwrap();
    lab.ingress(&[Pkt::new("10.0.0.1", "10.0.0.2", 17, 53, 53, 90)]);
    let r = probe.results_at(&job.job_id, 1).await.unwrap();
    assert_eq!(r.packets_total, 1);
    let snap = probe.snapshot().await.unwrap();
    for name in ["deep_program_missing", "filter_lookup", "job_slot_overflow"] {
        assert_eq!(snap.errors.get(name), Some(&0), "{name}: {:?}", snap.errors);
    }
}

/// Pins written by a newer probe (a higher layout version in `meta`) are
/// not misread: the datapath stays off, saying why, and nothing is changed.
#[tokio::test]
async fn pins_of_a_newer_layout_are_refused_not_misread() {
    use aya::maps::{Array, Map, MapData};
    use telegen_probe::maps::layout::Meta;

    let lab = Lab::new();
    let mut probe = Probe::start(&lab.probe_ns, &[]).await.unwrap();
    probe.kill_process();
    {
        let md = MapData::from_pin(probe.pin_dir.join("meta")).unwrap();
        let mut meta: Array<MapData, Meta> = Array::try_from(Map::Array(md)).unwrap();
        let mut m = meta.get(&0, 0).unwrap();
        m.layout_version = 99;
        meta.set(0, m, 0).unwrap();
    }
    probe.spawn(&[]).await.unwrap();
    let info = probe.info().await.unwrap();
    assert!(!info.datapath_enabled);
    assert!(
        info.datapath_reason.contains("newer probe (layout 99"),
        "{}",
        info.datapath_reason
    );
    let md = MapData::from_pin(probe.pin_dir.join("meta")).unwrap();
    let meta: Array<MapData, Meta> = Array::try_from(Map::Array(md)).unwrap();
    assert_eq!(meta.get(&0, 0).unwrap().layout_version, 99, "left as found");
}
