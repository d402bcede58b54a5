//! Upgrading in place from the probe of commit 87dec67 (counter layout 1,
//! the last before counters v2), built from git by
//! scripts/build-layout1-probe.sh (`make test` runs it): that probe starts
//! plain and filtered jobs and writes its pins; the current probe, started
//! over them under traffic, upgrades the pins and replaces the attached
//! programs in place. Every job keeps running, every packet is counted once
//! (before, across and after the upgrade), one filter per hook.

use std::{path::PathBuf, time::Duration};

use telegen_integration_tests::{
    frames::Pkt,
    lab::Lab,
    poll,
    probe::{series_class, Probe},
};
use telegen_proto::v1 as pb;

/// Our tc filters on `hook`, by program name.
fn our_filters(lab: &Lab, hook: &str) -> usize {
    lab.tc_filters(hook)
        .lines()
        .filter(|l| l.contains("telegen_"))
        .count()
}

fn layout1_probe() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/layout1-probe/debug/telegen-probe");
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-layout1-probe.sh (make test does)",
        p.display()
    );
    p
}

fn udp() -> Vec<u8> {
    Pkt::new("10.0.0.1", "10.0.0.2", 17, 5000, 53, 100).frame()
}

fn tcp() -> Vec<u8> {
    Pkt::new("10.0.0.1", "10.0.0.2", 6, 5000, 80, 120).frame()
}

fn rep(f: Vec<u8>, n: usize) -> Vec<Vec<u8>> {
    vec![f; n]
}

/// Packets of each of the three jobs: plain ingress, plain both, filtered
/// (udp) ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Want {
    plain_in: u64,
    plain_both: u64,
    udp_in: u64,
}

impl Want {
    fn ingress_udp(&mut self, n: u64) {
        self.plain_in += n;
        self.plain_both += n;
        self.udp_in += n;
    }
    fn ingress_tcp(&mut self, n: u64) {
        self.plain_in += n;
        self.plain_both += n;
    }
    fn egress_udp(&mut self, n: u64) {
        self.plain_both += n;
    }
}

struct Jobs {
    plain_in: String,
    plain_both: String,
    udp_in: String,
}

impl Jobs {
    async fn check(&self, probe: &Probe, want: Want, when: &str) {
        for (id, n, name) in [
            (&self.plain_in, want.plain_in, "plain ingress"),
            (&self.plain_both, want.plain_both, "plain both"),
            (&self.udp_in, want.udp_in, "filtered udp ingress"),
        ] {
            let r = probe
                .results_at(id, n)
                .await
                .unwrap_or_else(|e| panic!("{when}: {name}: {e}\n{}", probe.log_text()));
            assert_eq!(
                r.packets_total, n,
                "{when}: {name} counted each packet once"
            );
            assert_eq!(r.status, "running", "{when}: {name}");
        }
    }
}

async fn upgrade_under_traffic(attach_mode: &str, crash: bool) {
    let lab = Lab::new();
    let port = lab.veth.port.clone();
    let mut probe = Probe::start_binary(
        &lab.probe_ns,
        &[
            ("TELEGEN_ATTACH_MODE", attach_mode),
            ("TELEGEN_MAX_JOBS", "4"),
        ],
        &[],
        Some(layout1_probe()),
    )
    .await
    .unwrap();
    let udp_only = pb::StartJobRequest {
        port: port.clone(),
        direction: "ingress".into(),
        filters: Some(pb::Filters {
            ip_proto: vec!["udp".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let jobs = Jobs {
        plain_in: probe.start_job(&port, "ingress").await.unwrap().job_id,
        plain_both: probe.start_job(&port, "both").await.unwrap().job_id,
        udp_in: probe
            .client()
            .start_job(udp_only)
            .await
            .unwrap()
            .into_inner()
            .job_id,
    };
    for id in [&jobs.plain_in, &jobs.plain_both, &jobs.udp_in] {
        probe.wait_status(id, "running").await.unwrap();
    }
    let mut want = Want::default();
    lab.ingress(&rep(udp(), 10));
    lab.ingress(&rep(tcp(), 5));
    lab.egress(&rep(udp(), 4));
    want.ingress_udp(10);
    want.ingress_tcp(5);
    want.egress_udp(4);
    jobs.check(&probe, want, "layout-1 probe").await;

    // A sender keeps going while the older probe goes and the current one
    // upgrades its pins.
    let sender = lab.steady_ingress(udp());
    if crash {
        probe.kill_process();
    } else {
        probe.stop_process();
    }
    probe.bin = None;
    probe.spawn(&[]).await.unwrap();
    want.ingress_udp(sender.join().unwrap());
    jobs.check(&probe, want, "across the upgrade").await;
    let log = probe.log_text();
    assert!(log.contains("pinned maps upgraded"), "{log}");
    assert!(
        !probe.pin_dir.join("deep_progs").exists(),
        "layout 1's deep program is unpinned once no hook needs it"
    );
    if attach_mode == "tc" {
        assert_eq!(
            (our_filters(&lab, "ingress"), our_filters(&lab, "egress")),
            (1, 1),
            "one filter per hook, replaced in place"
        );
    }

    // The upgraded hooks count, once, in the layout-2 series of their own
    // direction (a hook left on the layout-1 program would not move them).
    let dir_ipv4 = |snap: &pb::CounterSnapshot, dir: &str| {
        snap.interfaces
            .iter()
            .find(|i| i.interface == port && i.direction == dir)
            .map_or(0, |i| series_class(&i.series, "ipv4").0)
    };
    let before = probe.snapshot().await.unwrap();
    lab.ingress(&rep(udp(), 5));
    lab.ingress(&rep(tcp(), 2));
    lab.egress(&rep(udp(), 3));
    want.ingress_udp(5);
    want.ingress_tcp(2);
    want.egress_udp(3);
    jobs.check(&probe, want, "after the upgrade").await;
    let snap = probe.snapshot().await.unwrap();
    assert_eq!(
        (
            dir_ipv4(&snap, "ingress") - dir_ipv4(&before, "ingress"),
            dir_ipv4(&snap, "egress") - dir_ipv4(&before, "egress")
        ),
        (7, 3),
        "the layout-2 classifier counts each hook's packets"
    );
    let hooks_total = want.plain_both;
    assert_eq!(
        series_class(&snap.global, "ipv4").0,
        hooks_total,
        "the global counters continued across layouts"
    );
    let dirs: Vec<&str> = snap
        .interfaces
        .iter()
        .filter(|i| i.interface == port)
        .map(|i| i.direction.as_str())
        .collect();
    assert_eq!(dirs, ["ingress", "egress"], "one series per direction");

    // A restart of the upgraded probe changes nothing.
    probe.kill_process();
    probe.spawn(&[]).await.unwrap();
    jobs.check(&probe, want, "after a restart of the upgraded probe")
        .await;
    lab.ingress(&rep(udp(), 1));
    want.ingress_udp(1);
    jobs.check(&probe, want, "counting after that restart")
        .await;

    for id in [&jobs.plain_in, &jobs.plain_both, &jobs.udp_in] {
        probe.stop_job(id).await.unwrap();
    }
    poll(
        "our filters and links removed",
        Duration::from_secs(10),
        || async {
            let links = std::fs::read_dir(probe.pin_dir.join("links"))
                .map(|d| d.count())
                .unwrap_or(0);
            (our_filters(&lab, "ingress") + our_filters(&lab, "egress") + links == 0).then_some(())
        },
    )
    .await
    .unwrap();
    let stopped = probe.results(&jobs.plain_both).await.unwrap();
    assert_eq!(
        stopped.packets_total, want.plain_both,
        "a stopped job keeps its count"
    );
    lab.ingress(&rep(udp(), 3));
    lab.egress(&rep(udp(), 3));
    let later = probe.results(&jobs.plain_both).await.unwrap();
    assert_eq!(later.packets_total, want.plain_both, "and counts no more");
}

#[tokio::test]
async fn a_layout1_probe_killed_under_traffic_is_upgraded_in_place_tc() {
    upgrade_under_traffic("tc", true).await;
}

#[tokio::test]
async fn a_layout1_probe_stopped_under_traffic_is_upgraded_in_place_tcx() {
    upgrade_under_traffic("tcx", false).await;
}
