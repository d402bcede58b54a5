//! Coverage with every result, for real: GRE sequence gaps of mirror
//! sessions replayed into a port (per tunnel and interface, per job since
//! its start, frozen when it stops), and failed exports reported by a real
//! exporter pointed at a collector that is not there.

use std::time::Duration;

use telegen_integration_tests::{
    exporter::Exporter,
    frames::{self, concat, erspan2_header, gre_numbered, ipv4_gre, ipv6_gre},
    gateway,
    netns::{Netns, Veth},
    poll,
    probe::Probe,
    unpriv::UNPRIVILEGED_ID,
};
use telegen_proto::v1 as pb;

const ERSPAN2: u16 = 0x88be;

/// The mirrored packet every ERSPAN frame carries (100 bytes, class ipv4).
fn inner() -> Vec<u8> {
    frames::ipv4_udp(100)
}

/// ERSPAN II frames of tunnel `key`, one per `seqs`, in the underlay
/// `outer` wraps them in.
fn tunnel(outer: fn(&[u8]) -> Vec<u8>, key: u32, seqs: &[u32]) -> Vec<Vec<u8>> {
    seqs.iter()
        .map(|&s| {
            outer(&concat(&[
                &gre_numbered(Some(key), s, ERSPAN2),
                &erspan2_header(),
                &inner(),
            ]))
        })
        .collect()
}

fn v4_tunnel(key: u32, seqs: &[u32]) -> Vec<Vec<u8>> {
    tunnel(ipv4_gre, key, seqs)
}

fn v6_tunnel(key: u32, seqs: &[u32]) -> Vec<Vec<u8>> {
    tunnel(ipv6_gre, key, seqs)
}

/// The coverage a plain, unsampled, unexported job should show.
fn tunnel_cov(sequenced: u64, lost: u64, late: u64) -> pb::Coverage {
    pb::Coverage {
        sample_rate: 1,
        error_bound: String::new(),
        tunnel_sequenced: sequenced,
        upstream_lost: lost,
        upstream_late: late,
        flow_evictions: 0,
        flow_update_failures: 0,
        capture_dropped: 0,
        exports_failed: 0,
        complete: lost == 0,
    }
}

fn cov(r: &pb::Results) -> pb::Coverage {
    r.coverage
        .clone()
        .unwrap_or_else(|| panic!("results of job {} carry no coverage", r.job_id))
}

/// Poll job `id`'s results until they have counted `packets` packets and
/// `sequenced` GRE-sequenced ones (the figures the test waits for), then
/// check them exactly: packets and coverage.
async fn expect(probe: &Probe, what: &str, id: &str, packets: u64, want: pb::Coverage) {
    let polled = poll(
        &format!(
            "{what}: job {id} at {packets} packets, {} sequenced",
            want.tunnel_sequenced
        ),
        Duration::from_secs(10),
        || async {
            let r = probe.results(id).await.ok()?;
            let c = r.coverage.clone()?;
            (r.packets_total >= packets && c.tunnel_sequenced >= want.tunnel_sequenced).then_some(r)
        },
    )
    .await;
    let r = match polled {
        Ok(r) => r,
        Err(e) => {
            let last = probe.results(id).await;
            panic!("{e}; last results: {last:?}")
        }
    };
    assert_eq!(r.packets_total, packets, "{what}: job {id}'s packets");
    assert_eq!(cov(&r), want, "{what}: job {id}'s coverage");
}

// Reads and sends block: keep the probe client served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gre_sequence_gaps_are_reported_per_job_and_tunnel() {
    let (ns, peer) = (Netns::new("tcv").unwrap(), Netns::new("tcw").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let other = Veth::new(&ns, &peer).unwrap();
    // Jobs A, B and C at once (the default allows 2).
    let probe = Probe::start(&ns, &[("TELEGEN_MAX_JOBS", "4")])
        .await
        .unwrap();
    let send = |frames: &[Vec<u8>]| {
        frames::send_in_order(&peer.path(), &veth.peer, frames).unwrap();
    };

    let a = probe.start_job(&veth.port, "ingress").await.unwrap();
    let c = probe.start_job(&other.port, "ingress").await.unwrap();
    let (a, c) = (a.job_id, c.job_id);
    // A clean port answers with zeros and complete at once.
    expect(&probe, "before any traffic", &a, 0, tunnel_cov(0, 0, 0)).await;

    // Tunnel 1: 4 and 5 missing, then 5 arrives late (4 stays lost).
    // Tunnel 2: 102 missing.
    let mut batch = v4_tunnel(1, &[1, 2, 3, 6, 7, 5, 8, 9, 10]);
    batch.extend(v4_tunnel(2, &[100, 101, 103]));
    send(&batch);
    expect(&probe, "two tunnels", &a, 12, tunnel_cov(12, 2, 1)).await;
    assert!(!cov(&probe.results(&a).await.unwrap()).complete);

    // Job B from now on: a gap it sees (13), earlier ones it does not.
    let b = probe.start_job(&veth.port, "ingress").await.unwrap().job_id;
    expect(&probe, "B at its start", &b, 0, tunnel_cov(0, 0, 0)).await;
    send(&v4_tunnel(1, &[11, 12, 14]));
    expect(&probe, "B's first gap", &b, 3, tunnel_cov(3, 1, 0)).await;
    expect(
        &probe,
        "A after B's first gap",
        &a,
        15,
        tunnel_cov(15, 3, 1),
    )
    .await;

    // The IPv6 underlay's tunnel with the same key is another tunnel: its
    // 5, 6, 8 (one lost) are not late packets of the IPv4 tunnel 1 (at 14).
    send(&v6_tunnel(1, &[5, 6, 8]));
    expect(&probe, "IPv6 tunnel key 1", &b, 6, tunnel_cov(6, 2, 0)).await;
    expect(
        &probe,
        "A after the IPv6 tunnel",
        &a,
        18,
        tunnel_cov(18, 4, 1),
    )
    .await;
    // ... and the IPv4 one carries on from its own 14.
    send(&v4_tunnel(1, &[15]));
    expect(&probe, "IPv4 tunnel 1 again", &b, 7, tunnel_cov(7, 2, 0)).await;
    let a_final = tunnel_cov(19, 4, 1);
    expect(&probe, "A before its stop", &a, 19, a_final.clone()).await;

    // A stops: its figures freeze, B's go on.
    let stopped = probe.stop_job(&a).await.unwrap();
    assert_eq!(stopped.status, "stopped", "{stopped:?}");
    send(&v4_tunnel(1, &[16, 19]));
    send(&v6_tunnel(1, &[9, 7]));
    // Tunnel 1 (v4): 17, 18 lost. IPv6 tunnel: 9 in order, 7 late (it was
    // lost, now given back).
    expect(&probe, "B after A's stop", &b, 11, tunnel_cov(11, 3, 1)).await;
    let r = probe.results(&a).await.unwrap();
    assert_eq!(r.packets_total, 19, "stopped job A's packets");
    assert_eq!(cov(&r), a_final, "stopped job A's coverage is frozen");

    // C on the other port: tunnel traffic elsewhere is not its business;
    // its own plain traffic is complete.
    frames::send(&peer.path(), &other.peer, &vec![frames::ipv4_udp(80); 4]).unwrap();
    expect(&probe, "C with plain traffic", &c, 4, tunnel_cov(0, 0, 0)).await;
    // The tunnels are on A's and B's interface only.
    let snap = probe.snapshot().await.unwrap();
    assert_eq!(
        snap.tunnel.get("erspan2").copied(),
        Some(23),
        "{:?}",
        snap.tunnel
    );

    // Tracked per interface too: key 1 from the same outer source on C's
    // port is not port 1's tunnel 1 (at 19), and a reordered packet that
    // fills its gap leaves nothing lost: late alone is complete.
    frames::send_in_order(&peer.path(), &other.peer, &v4_tunnel(1, &[1, 3, 2])).unwrap();
    expect(
        &probe,
        "C's own reordered tunnel",
        &c,
        7,
        tunnel_cov(3, 0, 1),
    )
    .await;
    assert!(cov(&probe.results(&c).await.unwrap()).complete);
    expect(
        &probe,
        "B unmoved by C's tunnel",
        &b,
        11,
        tunnel_cov(11, 3, 1),
    )
    .await;

    // C, the last job on its port, stops (the hook goes): frozen too. The
    // tunnel goes on unseen (4 and 5 pass while nothing is attached: not a
    // loss anyone could have seen). A job D there later counts from its
    // own start: its first packet resynchronises, its own gap counts.
    assert_eq!(probe.stop_job(&c).await.unwrap().status, "stopped");
    frames::send_in_order(&peer.path(), &other.peer, &v4_tunnel(1, &[4, 5])).unwrap();
    let d = probe
        .start_job(&other.port, "ingress")
        .await
        .unwrap()
        .job_id;
    frames::send_in_order(&peer.path(), &other.peer, &v4_tunnel(1, &[6, 8])).unwrap();
    expect(&probe, "D's gap", &d, 2, tunnel_cov(2, 1, 0)).await;
    expect(&probe, "stopped C", &c, 7, tunnel_cov(3, 0, 1)).await;
}

/// Prometheus text's `telegen_exporter_exports_total{result="failed"}`.
fn prom_failed(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("telegen_exporter_exports_total{result=\"failed\"} "))
        .and_then(|v| v.trim().parse().ok())
}

/// The exporter's own count of failed exports, from its /metrics.
async fn exporter_failed(url: &str) -> Option<u64> {
    let url = url.to_string();
    let r = tokio::task::spawn_blocking(move || gateway::http("GET", &url).send())
        .await
        .ok()?
        .ok()?;
    (r.status == 200).then(|| prom_failed(&r.text)).flatten()
}

async fn start_job(probe: &Probe, port: &str, export: bool) -> String {
    let req = pb::StartJobRequest {
        port: port.into(),
        direction: "ingress".into(),
        otlp_export: Some(export),
        ..Default::default()
    };
    let job = probe.client().start_job(req).await.unwrap().into_inner();
    probe
        .wait_status(&job.job_id, "running")
        .await
        .unwrap()
        .job_id
}

async fn report(probe: &Probe, instance: [u8; 16], failed: u64) -> u64 {
    probe
        .client()
        .report_exports(pb::ReportExportsRequest {
            instance: instance.to_vec(),
            failed_total: failed,
        })
        .await
        .unwrap()
        .into_inner()
        .failed_total
}

/// Poll job `id` until `ok` holds for its coverage.
async fn coverage_where(
    probe: &Probe,
    exporter: &Exporter,
    id: &str,
    what: &str,
    ok: impl Fn(&pb::Coverage) -> bool,
) -> pb::Coverage {
    let ok = &ok;
    let polled = poll(
        &format!("job {id}: {what}"),
        Duration::from_secs(20),
        || async {
            let c = probe.results(id).await.ok()?.coverage?;
            ok(&c).then_some(c)
        },
    )
    .await;
    match polled {
        Ok(c) => c,
        Err(e) => {
            let last = probe.results(id).await.map(|r| r.coverage);
            panic!(
                "{e}; last coverage: {last:?}\nexporter log:\n{}",
                exporter.log_text()
            )
        }
    }
}

async fn exports_failed(probe: &Probe, id: &str) -> u64 {
    cov(&probe.results(id).await.unwrap()).exports_failed
}

// The probe client runs on this runtime: keep it served while tests block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_exports_make_exported_jobs_incomplete() {
    let (ns, peer) = (Netns::new("tcx").unwrap(), Netns::new("tcy").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let mut probe = Probe::start(&ns, &[("TELEGEN_PROBE_SOCKET_GROUP", UNPRIVILEGED_ID)])
        .await
        .unwrap();
    let exported = start_job(&probe, &veth.port, true).await;
    let quiet = start_job(&probe, &veth.port, false).await;
    frames::send(&peer.path(), &veth.peer, &vec![frames::ipv4_udp(100); 3]).unwrap();
    probe.results_at(&exported, 3).await.unwrap();
    for id in [&exported, &quiet] {
        let c = cov(&probe.results(id).await.unwrap());
        assert_eq!(c, tunnel_cov(0, 0, 0), "job {id} before any export");
    }

    // A collector port where nothing listens: every export is refused.
    let closed = gateway::free_port().unwrap();
    let prom = format!("127.0.0.1:{}", gateway::free_port().unwrap());
    let mut exporter = Exporter::start(
        &probe,
        &format!("http://127.0.0.1:{closed}"),
        &[("TELEGEN_PROM_LISTEN", &prom)],
    )
    .unwrap();
    let metrics = format!("http://{prom}/metrics");

    let c = coverage_where(&probe, &exporter, &exported, "exports_failed >= 1", |c| {
        c.exports_failed >= 1
    })
    .await;
    assert!(!c.complete, "failed exports make the job incomplete: {c:?}");
    assert_eq!(
        (c.tunnel_sequenced, c.upstream_lost, c.upstream_late),
        (0, 0, 0),
        "{c:?}"
    );
    let mine = exporter_failed(&metrics).await;
    assert!(
        mine.is_some_and(|n| n >= c.exports_failed),
        "the probe knows of {} failed exports, the exporter of {mine:?}",
        c.exports_failed
    );
    let q = cov(&probe.results(&quiet).await.unwrap());
    assert_eq!(
        q,
        tunnel_cov(0, 0, 0),
        "the job not exported stays complete"
    );

    // The probe restarts (a crash); the exporter keeps failing and reports
    // its running total again: only what the probe had not heard counts.
    probe.kill_process();
    // Every total the exporter reported before the crash is at most what
    // it had failed by now; what the probe shows beyond that came after.
    let at_crash = poll("the exporter's /metrics", Duration::from_secs(10), || {
        exporter_failed(&metrics)
    })
    .await
    .unwrap();
    probe.spawn(&[]).await.unwrap();
    for id in [&exported, &quiet] {
        probe.wait_status(id, "running").await.unwrap();
    }
    let after = coverage_where(
        &probe,
        &exporter,
        &exported,
        "a report after the restart",
        |c| c.exports_failed > at_crash,
    )
    .await;
    let mine = poll("the exporter's /metrics", Duration::from_secs(10), || {
        exporter_failed(&metrics)
    })
    .await
    .unwrap();
    assert!(
        after.exports_failed <= mine,
        "after the restart the probe counts {} failed exports, more than the exporter ever \
         failed ({mine}; {at_crash} at the crash): a repeated total was added again",
        after.exports_failed
    );
    assert!(!after.complete, "{after:?}");
    exporter.check_running().unwrap();

    // Idempotence, exactly: the exporter gone, an instance of our own.
    exporter.stop();
    let base = cov(&probe.results(&exported).await.unwrap()).exports_failed;
    let me = *uuid::Uuid::new_v4().as_bytes();
    let total = report(&probe, me, 5).await;
    assert_eq!(
        exports_failed(&probe, &exported).await,
        base + 5,
        "a new instance's 5 failures"
    );
    assert_eq!(
        report(&probe, me, 5).await,
        total,
        "a repeated report adds nothing"
    );
    assert_eq!(exports_failed(&probe, &exported).await, base + 5);
    probe.kill_process();
    probe.spawn(&[]).await.unwrap();
    probe.wait_status(&exported, "running").await.unwrap();
    assert_eq!(
        exports_failed(&probe, &exported).await,
        base + 5,
        "the figure survives a restart"
    );
    assert_eq!(
        report(&probe, me, 5).await,
        total,
        "a repeat after a restart adds nothing"
    );
    assert_eq!(
        report(&probe, me, 7).await,
        total + 2,
        "only the 2 new failures add"
    );
    assert_eq!(exports_failed(&probe, &exported).await, base + 7);

    // A stopped job's figure is frozen: later failures are not its own.
    probe.stop_job(&exported).await.unwrap();
    assert_eq!(
        report(&probe, me, 9).await,
        total + 4,
        "2 more failures known"
    );
    let c = cov(&probe.results(&exported).await.unwrap());
    assert_eq!(c.exports_failed, base + 7, "frozen at the stop: {c:?}");
    assert!(!c.complete, "{c:?}");
    let q = cov(&probe.results(&quiet).await.unwrap());
    assert_eq!(
        q,
        tunnel_cov(0, 0, 0),
        "the job not exported stays complete"
    );
}
