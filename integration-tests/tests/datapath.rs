//! The classifier on real veths in network namespaces, with real frames:
//! exact counts per class, per interface, per job, in TCX and clsact modes.

use std::time::Duration;

use telegen_integration_tests::{
    frames,
    lab::Lab,
    netns::{Netns, Veth},
    poll,
    probe::{class, series_class, Probe},
    sh,
};

fn lab() -> Lab {
    Lab::new()
}

fn rep(f: Vec<u8>, n: usize) -> Vec<Vec<u8>> {
    vec![f; n]
}

/// Expected (class, packets, bytes, histogram) of one class.
type Expect = (&'static str, u64, u64, [u64; 9]);

/// The mixed traffic of the class tests and what it must count to.
fn mixed() -> (Vec<Vec<u8>>, [Expect; 4]) {
    let mut f = Vec::new();
    f.extend(rep(frames::ipv4_udp(100), 7)); // ipv4, bucket <=128
    f.extend(rep(frames::vlan_ipv4_udp(42, 300), 6)); // ipv4 (tag skipped), <=512
    f.extend(rep(frames::ipv6_tcp(200), 5)); // ipv6, <=256
    f.extend(rep(frames::icmp6(90), 3)); // icmp6, <=128
    f.extend(rep(frames::icmp6_ext(1400), 2)); // icmp6 behind ext headers, <=1518
    f.extend(rep(frames::arp(), 4)); // other, <=64
    let expect = [
        ("ipv4", 13, 7 * 100 + 6 * 300, [0, 7, 0, 6, 0, 0, 0, 0, 0]),
        ("ipv6", 5, 1000, [0, 0, 5, 0, 0, 0, 0, 0, 0]),
        ("icmp6", 5, 3 * 90 + 2 * 1400, [0, 3, 0, 0, 0, 2, 0, 0, 0]),
        ("other", 4, 168, [4, 0, 0, 0, 0, 0, 0, 0, 0]),
    ];
    (f, expect)
}

async fn counts_every_class(attach_mode: &str) {
    let lab = lab();
    let probe = Probe::start(
        &lab.probe_ns,
        &[
            ("TELEGEN_ATTACH_MODE", attach_mode),
            ("TELEGEN_MAX_JOBS", "3"),
        ],
    )
    .await
    .unwrap();
    let port = &lab.veth.port;
    let ing = probe.start_job(port, "ingress").await.unwrap();
    let egr = probe.start_job(port, "egress").await.unwrap();
    let both = probe.start_job(port, "both").await.unwrap();
    assert_eq!(ing.attach_mode, attach_mode);
    assert_eq!(both.interface, *port);

    let (frames, expect) = mixed();
    lab.ingress(&frames);
    lab.egress(&frames);
    let n = frames.len() as u64;

    let r_ing = probe.results_at(&ing.job_id, n).await.unwrap();
    let r_egr = probe.results_at(&egr.job_id, n).await.unwrap();
    let r_both = probe.results_at(&both.job_id, 2 * n).await.unwrap();
    for (name, pkts, bytes, hist) in expect {
        assert_eq!(
            class(&r_ing, name),
            (pkts, bytes, hist.to_vec()),
            "ingress job, class {name}"
        );
        assert_eq!(
            class(&r_egr, name),
            (pkts, bytes, hist.to_vec()),
            "egress job, class {name}"
        );
        let doubled: Vec<u64> = hist.iter().map(|h| 2 * h).collect();
        assert_eq!(
            class(&r_both, name),
            (2 * pkts, 2 * bytes, doubled),
            "both job, class {name}"
        );
    }
    assert_eq!(r_ing.packets_total, n);
    let total_bytes: u64 = expect.iter().map(|e| e.2).sum();
    assert_eq!(r_ing.bytes_total, total_bytes);
    assert_eq!(
        r_ing
            .size_histogram
            .as_ref()
            .unwrap()
            .counts
            .iter()
            .sum::<u64>(),
        n
    );

    // The global counters see each packet once per hook; the interface has
    // one series per direction, each seeing its hook's packets once.
    let snap = probe.snapshot().await.unwrap();
    let dir_series = |dir: &str| {
        snap.interfaces
            .iter()
            .find(|i| i.interface == *port && i.direction == dir)
            .unwrap_or_else(|| panic!("{dir} series of {port}: {:?}", snap.interfaces))
    };
    let (ing_series, egr_series) = (dir_series("ingress"), dir_series("egress"));
    assert_eq!(ing_series.ifindex, ing.ifindex);
    assert_eq!(
        snap.interfaces
            .iter()
            .filter(|i| i.interface == *port)
            .count(),
        2,
        "one series per direction"
    );
    for (name, pkts, bytes, _) in expect {
        assert_eq!(
            series_class(&snap.global, name).0,
            2 * pkts,
            "global {name}"
        );
        for iface in [ing_series, egr_series] {
            let (p, b, _) = series_class(&iface.series, name);
            assert_eq!((p, b), (pkts, bytes), "{} {name}", iface.direction);
        }
    }
    assert_eq!(
        snap.errors.values().sum::<u64>(),
        0,
        "no error counted: {:?}",
        snap.errors
    );

    if attach_mode == "tc" {
        assert!(
            lab.tc_filters("ingress").contains("telegen_ingress"),
            "our ingress filter"
        );
        assert!(
            lab.tc_filters("egress").contains("telegen_egress"),
            "our egress filter"
        );
    } else {
        assert!(probe
            .pin_dir
            .join(format!("links/tcx_{}_ingress", ing.ifindex))
            .exists());
    }
    for j in [&ing, &egr, &both] {
        assert_eq!(probe.stop_job(&j.job_id).await.unwrap().status, "stopped");
    }
    // Stopped jobs keep their final counts; attachments and our clsact are gone.
    assert_eq!(probe.results(&ing.job_id).await.unwrap().packets_total, n);
    assert!(!lab.tc_filters("ingress").contains("telegen"));
    assert!(
        !lab.qdiscs().contains("clsact"),
        "the clsact we created is removed"
    );
    assert_eq!(
        std::fs::read_dir(probe.pin_dir.join("links"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn counts_every_class_exactly_tcx() {
    counts_every_class("tcx").await;
}

#[tokio::test]
async fn counts_every_class_exactly_clsact() {
    counts_every_class("tc").await;
}

/// Foreign clsact qdisc and filter (another agent's BPF program that ends the
/// chain with TC_ACT_OK): ours runs beside it without hiding a packet from
/// it or from us, and its qdisc and filter stay after our job stops.
async fn coexists_with_foreign_filter(attach_mode: &str) {
    let lab = lab();
    let port = lab.veth.port.clone();
    let foreign = ForeignFilter::install(&lab.probe_ns, &port, Some("7"));
    let probe = Probe::start(&lab.probe_ns, &[("TELEGEN_ATTACH_MODE", attach_mode)])
        .await
        .unwrap();
    let job = probe.start_job(&port, "ingress").await.unwrap();
    let before = foreign.seen();
    lab.ingress(&rep(frames::ipv4_udp(128), 25));
    assert_eq!(
        probe
            .results_at(&job.job_id, 25)
            .await
            .unwrap()
            .packets_total,
        25
    );
    assert_eq!(
        foreign.seen() - before,
        25,
        "the foreign filter saw every packet too"
    );
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(lab.qdiscs().contains("clsact"), "foreign clsact kept");
    let filters = lab.tc_filters("ingress");
    assert!(
        filters.contains("foreign"),
        "foreign filter kept: {filters}"
    );
    assert!(
        !filters.contains("telegen"),
        "our filter removed: {filters}"
    );
    lab.ingress(&rep(frames::ipv4_udp(128), 5));
    assert_eq!(foreign.seen() - before, 30, "foreign filter still works");
    assert_eq!(probe.results(&job.job_id).await.unwrap().packets_total, 25);
}

/// ebpf/test/foreign.bpf.c loaded by tc(8) itself, as another agent would.
struct ForeignFilter {
    map_id: String,
}

impl ForeignFilter {
    /// On a clsact of its own making; `prio` None: the kernel's default
    /// (49152, handle 1 on an empty hook), as a tool that picks none gets.
    fn install(ns: &Netns, port: &str, prio: Option<&str>) -> Self {
        let obj = std::env::temp_dir().join(format!(
            "foreign-{}.o",
            telegen_integration_tests::unique_id()
        ));
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf/test/foreign.bpf.c");
        let arch_inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
        sh(
            "clang",
            &[
                "-O2",
                "-g",
                "-target",
                "bpf",
                &arch_inc,
                "-c",
                src,
                "-o",
                obj.to_str().unwrap(),
            ],
        )
        .unwrap();
        ns.exec("tc", &["qdisc", "add", "dev", port, "clsact"])
            .unwrap();
        let mut args = vec!["filter", "add", "dev", port, "ingress"];
        if let Some(p) = prio {
            args.extend(["prio", p]);
        }
        let obj_path = obj.to_str().unwrap();
        args.extend(["bpf", "da", "obj", obj_path, "sec", "classifier"]);
        ns.exec("tc", &args).unwrap();
        let _ = std::fs::remove_file(&obj);
        let out = ns
            .exec("tc", &["-j", "filter", "show", "dev", port, "ingress"])
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let prog_id = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["options"]["bpf_name"]
                    .as_str()
                    .is_some_and(|n| n.contains("foreign"))
            })
            .find_map(|f| f["options"]["prog"]["id"].as_u64())
            .unwrap();
        let prog: serde_json::Value = serde_json::from_str(
            &sh(
                "bpftool",
                &["-j", "prog", "show", "id", &prog_id.to_string()],
            )
            .unwrap(),
        )
        .unwrap();
        ForeignFilter {
            map_id: prog["map_ids"][0].as_u64().unwrap().to_string(),
        }
    }

    fn seen(&self) -> u64 {
        let out = sh("bpftool", &["-j", "map", "dump", "id", &self.map_id]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["formatted"]["value"].as_u64().unwrap()
    }
}

#[tokio::test]
async fn coexists_with_foreign_filter_clsact() {
    coexists_with_foreign_filter("tc").await;
}

#[tokio::test]
async fn coexists_with_foreign_filter_tcx() {
    coexists_with_foreign_filter("tcx").await;
}

#[tokio::test]
async fn two_jobs_count_from_their_own_start() {
    let lab = lab();
    let probe = Probe::start(&lab.probe_ns, &[]).await.unwrap();
    let first = probe.start_job(&lab.veth.port, "ingress").await.unwrap();
    lab.ingress(&rep(frames::ipv4_udp(80), 5));
    probe.results_at(&first.job_id, 5).await.unwrap();
    let second = probe.start_job(&lab.veth.port, "ingress").await.unwrap();
    lab.ingress(&rep(frames::ipv6_tcp(100), 7));
    let r1 = probe.results_at(&first.job_id, 12).await.unwrap();
    let r2 = probe.results_at(&second.job_id, 7).await.unwrap();
    assert_eq!((r1.packets_total, r1.bytes_total), (12, 5 * 80 + 7 * 100));
    assert_eq!((r2.packets_total, r2.bytes_total), (7, 700));
    assert_eq!(class(&r2, "ipv4").0, 0);
    // Stopping one leaves the other counting on the shared attachment.
    probe.stop_job(&first.job_id).await.unwrap();
    lab.ingress(&rep(frames::arp(), 3));
    assert_eq!(
        probe
            .results_at(&second.job_id, 10)
            .await
            .unwrap()
            .packets_total,
        10
    );
    assert_eq!(
        probe.results(&first.job_id).await.unwrap().packets_total,
        12
    );
}

/// ifindex above the array part of the config map takes the hash path.
#[tokio::test]
async fn counts_on_a_large_ifindex() {
    let probe_ns = Netns::new("tgp").unwrap();
    let peer_ns = Netns::new("tgq").unwrap();
    let veth = Veth::with_index(&probe_ns, &peer_ns, Some(70000)).unwrap();
    let probe = Probe::start(&probe_ns, &[]).await.unwrap();
    let job = probe.start_job(&veth.port, "ingress").await.unwrap();
    assert_eq!(job.ifindex, 70000);
    frames::send(&peer_ns.path(), &veth.peer, &rep(frames::ipv4_udp(64), 9)).unwrap();
    let r = probe.results_at(&job.job_id, 9).await.unwrap();
    assert_eq!((r.packets_total, r.bytes_total), (9, 9 * 64));
}

/// Restart under traffic: counters continue, the job is adopted, the
/// attachment is neither lost nor duplicated: every packet sent is counted once.
async fn restart_under_traffic(attach_mode: &str, crash: bool) {
    let lab = lab();
    let mut probe = Probe::start(&lab.probe_ns, &[("TELEGEN_ATTACH_MODE", attach_mode)])
        .await
        .unwrap();
    let job = probe.start_job(&lab.veth.port, "ingress").await.unwrap();
    lab.ingress(&rep(frames::ipv4_udp(100), 10));
    probe.results_at(&job.job_id, 10).await.unwrap();

    // A sender keeps going while the probe is down and comes back.
    let sender = lab.steady_ingress(frames::ipv4_udp(100));
    if crash {
        probe.kill_process();
    } else {
        probe.stop_process();
    }
    probe.spawn(&[]).await.unwrap();
    let sent = 10 + sender.join().unwrap();

    let adopted = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(adopted.attach_mode, attach_mode);
    let r = probe.results_at(&job.job_id, sent).await.unwrap();
    assert_eq!(r.packets_total, sent, "every packet counted exactly once");
    let snap = probe.snapshot().await.unwrap();
    assert_eq!(
        series_class(&snap.global, "ipv4").0,
        sent,
        "global counters continued"
    );
    if attach_mode == "tc" {
        assert_eq!(
            lab.tc_filters("ingress")
                .lines()
                .filter(|l| l.contains("telegen_ingress"))
                .count(),
            1,
            "one filter, not two"
        );
    }
    assert!(probe.log_text().contains("adopted running jobs"));
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(!lab.tc_filters("ingress").contains("telegen"));
}

#[tokio::test]
async fn restart_under_traffic_keeps_counting_tcx() {
    restart_under_traffic("tcx", false).await;
}

#[tokio::test]
async fn crash_under_traffic_keeps_counting_clsact() {
    restart_under_traffic("tc", true).await;
}

#[tokio::test]
async fn job_expires_and_detaches() {
    let lab = lab();
    let probe = Probe::start(&lab.probe_ns, &[("TELEGEN_ATTACH_MODE", "tc")])
        .await
        .unwrap();
    let mut client = probe.client();
    let job = client
        .start_job(telegen_proto::v1::StartJobRequest {
            port: lab.veth.port.clone(),
            direction: "ingress".into(),
            duration_sec: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!job.expires_at.is_empty());
    let ended = probe.wait_status(&job.job_id, "expired").await.unwrap();
    assert!(!ended.stopped_at.is_empty());
    poll("filter removed", Duration::from_secs(5), || async {
        (!lab.tc_filters("ingress").contains("telegen")).then_some(())
    })
    .await
    .unwrap();
}

/// An operator's `tc qdisc del dev PORT clsact` under a running job, then
/// another tool attaching its bpf filter on a new clsact at the kernel's
/// default priority and handle, which were ours: the probe finds its hook
/// lost, attaches again (the job says it missed packets) and counts on;
/// stopping the job removes only our filter, never the other tool's, nor
/// the clsact it did not create.
#[tokio::test]
async fn an_operators_tc_del_is_detected_and_another_tools_filter_survives_our_stop() {
    let lab = lab();
    let port = lab.veth.port.clone();
    let probe = Probe::start(&lab.probe_ns, &[("TELEGEN_ATTACH_MODE", "tc")])
        .await
        .unwrap();
    let job = probe.start_job(&port, "ingress").await.unwrap();
    probe.wait_status(&job.job_id, "running").await.unwrap();
    lab.ingress(&rep(frames::ipv4_udp(128), 10));
    probe.results_at(&job.job_id, 10).await.unwrap();
    assert!(lab.tc_filters("ingress").contains("pref 49152"));

    // The operator and the other tool act between two of the probe's checks
    // (frozen meanwhile, so that it cannot re-attach in between).
    let pid = probe.pid().unwrap() as i32;
    // SAFETY: signalling the probe this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    lab.probe_ns
        .exec("tc", &["qdisc", "del", "dev", &port, "clsact"])
        .unwrap();
    let foreign = ForeignFilter::install(&lab.probe_ns, &port, None);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let filters = lab.tc_filters("ingress");
    assert!(
        filters.contains("pref 49152") && filters.contains("handle 0x1"),
        "the other tool got our old priority and handle: {filters}"
    );
    let noted = gap_noted(&probe, &job.job_id).await;
    assert_eq!(noted.status, "running");
    assert!(lab.tc_filters("ingress").contains("telegen_ingress"));

    let before = foreign.seen();
    lab.ingress(&rep(frames::ipv4_udp(128), 7));
    let r = probe.results_at(&job.job_id, 17).await.unwrap();
    assert_eq!(r.packets_total, 17);
    assert_eq!(foreign.seen() - before, 7);

    probe.stop_job(&job.job_id).await.unwrap();
    let filters = lab.tc_filters("ingress");
    assert!(
        filters.contains("foreign"),
        "the other tool's filter survives: {filters}"
    );
    assert!(!filters.contains("telegen"), "ours is gone: {filters}");
    assert!(lab.qdiscs().contains("clsact"), "its clsact stays");
    lab.ingress(&rep(frames::ipv4_udp(128), 3));
    assert_eq!(foreign.seen() - before, 10, "the other tool still works");
}

/// A TCX link detached by hand (`bpftool link detach`) keeps its pin, so
/// the record alone would call it attached: the probe checks the link
/// itself, attaches again, the job says it missed packets and counts on.
#[tokio::test]
async fn a_tcx_link_detached_by_hand_is_found_and_attached_again() {
    let lab = lab();
    let port = lab.veth.port.clone();
    let probe = Probe::start(&lab.probe_ns, &[("TELEGEN_ATTACH_MODE", "tcx")])
        .await
        .unwrap();
    let job = probe.start_job(&port, "ingress").await.unwrap();
    let job = probe.wait_status(&job.job_id, "running").await.unwrap();
    assert_eq!(job.attach_mode, "tcx");
    lab.ingress(&rep(frames::ipv4_udp(128), 4));
    probe.results_at(&job.job_id, 4).await.unwrap();
    let pin = probe
        .pin_dir
        .join("links")
        .join(format!("tcx_{}_ingress", job.ifindex));
    sh(
        "bpftool",
        &["link", "detach", "pinned", pin.to_str().unwrap()],
    )
    .unwrap();
    let noted = gap_noted(&probe, &job.job_id).await;
    assert_eq!(noted.status, "running");
    lab.ingress(&rep(frames::ipv4_udp(128), 6));
    let r = probe.results_at(&job.job_id, 10).await.unwrap();
    assert_eq!(r.packets_total, 10);
    probe.stop_job(&job.job_id).await.unwrap();
    assert!(!pin.exists(), "our pin is gone after stop");
}

/// The job once it says its hook was lost and attached again (the probe
/// checks every 2 s).
async fn gap_noted(probe: &Probe, id: &str) -> telegen_proto::v1::Job {
    telegen_integration_tests::probe::wait_job_where(
        &probe.client(),
        id,
        "to say its hook was lost and attached again",
        Duration::from_secs(15),
        |j| j.error.contains("attached again"),
    )
    .await
    .unwrap()
}

/// What a probe killed in the middle of a tc attach leaves: the record
/// names the filter (priority, handle) before it exists, marked attaching.
/// Forged here from a real job's record, since the window is microseconds.
fn mark_attaching(pin_dir: &std::path::Path, ifindex: u32) {
    let mut maps = telegen_probe::maps::Maps::from_pins(pin_dir).unwrap();
    let slot = (0..64)
        .find(|&s| {
            maps.iface_rec(s)
                .is_ok_and(|r| r.used != 0 && r.ifindex == ifindex)
        })
        .expect("the port's interface record");
    let mut rec = maps.iface_rec(slot).unwrap();
    assert_eq!(rec.hook[0].attached, 1);
    assert_eq!((rec.hook[0].priority, rec.hook[0].handle), (49152, 0x7e1e));
    rec.hook[0].attached = 2;
    maps.set_iface_rec(slot, &rec).unwrap();
}

/// A tc attach interrupted by a kill: whether the filter got attached or
/// not, the next probe ends with exactly one of our filters, adopted or
/// attached, and counts every packet once; the job reports no gap (none
/// of its packets were missed).
#[tokio::test]
async fn an_interrupted_tc_attach_is_finished_not_doubled() {
    let lab = lab();
    let port = lab.veth.port.clone();
    let mut probe = Probe::start(&lab.probe_ns, &[("TELEGEN_ATTACH_MODE", "tc")])
        .await
        .unwrap();
    let job = probe.start_job(&port, "ingress").await.unwrap();
    let job = probe.wait_status(&job.job_id, "running").await.unwrap();
    lab.ingress(&rep(frames::ipv4_udp(128), 5));
    probe.results_at(&job.job_id, 5).await.unwrap();
    let ours = |lab: &Lab| {
        let filters = lab.tc_filters("ingress");
        filters
            .lines()
            .filter(|l| l.contains("name telegen_ingress"))
            .count()
    };
    for (round, filter_there) in [(1u64, true), (2, false)] {
        probe.kill_process();
        if !filter_there {
            // Killed before the filter was added.
            lab.probe_ns
                .exec(
                    "tc",
                    &[
                        "filter", "del", "dev", &port, "ingress", "pref", "49152", "handle",
                        "0x7e1e", "bpf",
                    ],
                )
                .unwrap();
            assert_eq!(ours(&lab), 0);
        }
        mark_attaching(&probe.pin_dir, job.ifindex);
        probe.spawn(&[]).await.unwrap();
        let adopted = probe.wait_status(&job.job_id, "running").await.unwrap();
        assert_eq!(
            ours(&lab),
            1,
            "round {round}: {}",
            lab.tc_filters("ingress")
        );
        lab.ingress(&rep(frames::ipv4_udp(128), 5));
        let r = probe.results_at(&job.job_id, 5 + round * 5).await.unwrap();
        assert_eq!(
            r.packets_total,
            5 + round * 5,
            "round {round}: counted once"
        );
        assert_eq!(adopted.error, "", "round {round}");
    }
    probe.stop_job(&job.job_id).await.unwrap();
    assert_eq!(ours(&lab), 0);
}
