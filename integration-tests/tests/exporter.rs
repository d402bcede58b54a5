//! The exporter, for real: an unprivileged telegen-exporter process between a
//! real probe counting real packets on a veth and a real OTLP/gRPC receiver.

use std::{collections::HashMap, io::Write, process::Command, time::Duration};

use opentelemetry_proto::tonic::metrics::v1::{metric::Data, AggregationTemporality};
use telegen_integration_tests::{
    exporter::Exporter,
    frames,
    gateway::cap_eff_and_uid,
    netns::{Netns, Veth},
    otlp::{attr, int_value, Receiver},
    poll,
    probe::Probe,
    unpriv::UNPRIVILEGED_ID,
};

struct Setup {
    exporter: Exporter,
    rx: Receiver,
    probe: Probe,
    veth: Veth,
    peer: Netns,
    _ns: Netns,
}

async fn setup(exporter_env: &[(&str, &str)]) -> Setup {
    let (ns, peer) = (Netns::new("tge").unwrap(), Netns::new("tgf").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[("TELEGEN_PROBE_SOCKET_GROUP", UNPRIVILEGED_ID)])
        .await
        .unwrap();
    let rx = Receiver::start().await.unwrap();
    let exporter = Exporter::start(&probe, &rx.endpoint(), exporter_env).unwrap();
    Setup {
        exporter,
        rx,
        probe,
        veth,
        peer,
        _ns: ns,
    }
}

impl Setup {
    fn send(&self, frames: &[Vec<u8>]) {
        frames::send(&self.peer.path(), &self.veth.peer, frames).unwrap();
    }

    /// Wait until the receiver's newest value of the series is `want`.
    async fn exported(&self, attrs: &[(&str, &str)], want: i64) {
        poll(
            &format!("bpf.packets {attrs:?} = {want}"),
            Duration::from_secs(20),
            || async { (self.rx.latest("bpf.packets", attrs) == Some(want)).then_some(()) },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\nexporter log:\n{}", self.exporter.log_text()));
    }
}

/// Values of a cumulative series never decrease while its start time holds.
fn assert_monotonic(rx: &Receiver, attrs: &[(&str, &str)]) {
    let points = rx.sum_points("bpf.packets", attrs);
    assert!(!points.is_empty());
    for w in points.windows(2) {
        if w[0].start_time_unix_nano == w[1].start_time_unix_nano {
            assert!(
                int_value(&w[1]) >= int_value(&w[0]),
                "{attrs:?} decreased: {} -> {}",
                int_value(&w[0]),
                int_value(&w[1])
            );
        }
    }
    let starts: std::collections::BTreeSet<u64> =
        points.iter().map(|p| p.start_time_unix_nano).collect();
    assert_eq!(
        starts.len(),
        1,
        "{attrs:?}: the start time moved: {starts:?}"
    );
}

// The receiver runs on this runtime: keep it served while the test blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_real_counts_with_the_documented_shape() {
    let s = setup(&[("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=lab")]).await;
    // Once setpriv has exec'ed the exporter: another uid, no capability.
    let pid = s.exporter.pid().unwrap();
    poll(
        "setpriv to exec the exporter",
        Duration::from_secs(10),
        || async {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            comm.starts_with("telegen-export").then_some(())
        },
    )
    .await
    .unwrap();
    let (cap, uid) = cap_eff_and_uid(pid).unwrap();
    assert_eq!((cap, uid.to_string().as_str()), (0, UNPRIVILEGED_ID));

    let job = s.probe.start_job(&s.veth.port, "ingress").await.unwrap();
    let id = job.job_id.as_str();
    let arp = frames::arp().len() as i64;
    let mut batch = vec![frames::ipv4_udp(100); 7];
    batch.extend(vec![frames::ipv6_tcp(200); 3]);
    batch.extend(vec![frames::arp(); 2]);
    s.send(&batch);
    s.exported(&[("job.id", id), ("proto", "ipv4")], 7).await;
    s.exported(&[("job.id", id), ("proto", "ipv6")], 3).await;
    s.exported(&[("job.id", id), ("proto", "other")], 2).await;
    s.exported(&[("job.id", id), ("proto", "icmp6")], 0).await;
    let port = s.veth.port.as_str();
    s.exported(
        &[
            ("interface", port),
            ("proto", "ipv4"),
            ("direction", "ingress"),
        ],
        7,
    )
    .await;

    // Resource and scope.
    let reqs = s.rx.requests();
    let last = reqs.last().unwrap();
    let rm = &last.resource_metrics[0];
    let res = &rm.resource.as_ref().unwrap().attributes;
    assert_eq!(attr(res, "service.name").as_deref(), Some("telegen-sonic"));
    assert_eq!(
        attr(res, "service.version").as_deref(),
        Some(telegen_common::BuildInfo::CURRENT.version)
    );
    assert!(!attr(res, "host.name").unwrap_or_default().is_empty());
    assert_eq!(attr(res, "deployment.environment").as_deref(), Some("lab"));
    assert_eq!(
        rm.scope_metrics[0].scope.as_ref().unwrap().name,
        "telegen-sonic"
    );

    // One request per interval carries every series (not one per series).
    for r in &reqs {
        let names: Vec<&str> = r.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert!(
            names.starts_with(&["bpf.packets", "bpf.bytes", "bpf.errors"]),
            "{names:?}"
        );
    }
    let packets = &last.resource_metrics[0].scope_metrics[0].metrics[0];
    assert_eq!(packets.unit, "{packet}");
    let Some(Data::Sum(sum)) = &packets.data else {
        panic!("bpf.packets is not a Sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    // global (4) + interface (4) + job (4) series in one request.
    assert!(sum.data_points.len() >= 12, "{}", sum.data_points.len());

    // bpf.bytes: the kernel's buckets, sum = bytes, count = packets.
    let bytes = &last.resource_metrics[0].scope_metrics[0].metrics[1];
    assert_eq!(bytes.unit, "By");
    let Some(Data::Histogram(h)) = &bytes.data else {
        panic!("bpf.bytes is not a Histogram")
    };
    assert_eq!(
        h.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    for p in &h.data_points {
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
        assert_eq!(
            p.explicit_bounds,
            vec![64.0, 128.0, 256.0, 512.0, 1024.0, 1518.0, 4096.0, 9216.0]
        );
    }
    let hp =
        s.rx.hist_points("bpf.bytes", &[("job.id", id), ("proto", "ipv4")]);
    let hp = hp.last().unwrap();
    assert_eq!((hp.count, hp.sum), (7, Some(700.0)));
    assert_eq!(hp.bucket_counts, vec![0, 7, 0, 0, 0, 0, 0, 0, 0]);
    let other =
        s.rx.hist_points("bpf.bytes", &[("job.id", id), ("proto", "other")]);
    assert_eq!(other.last().unwrap().sum, Some((2 * arp) as f64));
    // Interface series carry ifindex as an int attribute.
    let ifindex =
        s.rx.sum_points("bpf.packets", &[("interface", port)])
            .iter()
            .rev()
            .find_map(|p| attr(&p.attributes, "ifindex"))
            .expect("interface series with ifindex");
    assert_eq!(ifindex, job.ifindex.to_string());
    // Global series: proto only, at least what this job saw.
    let global: Vec<_> =
        s.rx.sum_points("bpf.packets", &[("proto", "ipv4")])
            .into_iter()
            .filter(|p| p.attributes.len() == 1)
            .collect();
    assert!(int_value(global.last().unwrap()) >= 7);
    assert_monotonic(&s.rx, &[("job.id", id), ("proto", "ipv4")]);
    // Self-telemetry rides along (a request carries the count of the exports
    // before it, so the first one says 0: wait for a later one).
    poll(
        "telegen.exporter.exports ok >= 1",
        Duration::from_secs(10),
        || async {
            s.rx.latest("telegen.exporter.exports", &[("result", "ok")])
                .filter(|ok| *ok >= 1)
        },
    )
    .await
    .unwrap();
}

// The receiver runs on this runtime: keep it served while the test blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_loses_no_count() {
    let mut s = setup(&[]).await;
    let job = s.probe.start_job(&s.veth.port, "ingress").await.unwrap();
    let series = [("job.id", job.job_id.as_str()), ("proto", "ipv4")];
    s.send(&vec![frames::ipv4_udp(80); 5]);
    s.exported(&series, 5).await;

    s.rx.down().await;
    s.send(&vec![frames::ipv4_udp(80); 11]);
    // The exporter notices and says so, then keeps retrying.
    poll(
        "the exporter to log the failure",
        Duration::from_secs(20),
        || async {
            s.exporter
                .log_text()
                .contains("OTLP export failed")
                .then_some(())
        },
    )
    .await
    .unwrap();
    let before = s.rx.requests().len();
    s.rx.up().await.unwrap();
    s.exported(&series, 16).await;
    assert!(s.rx.requests().len() > before);
    poll(
        "the exporter to log the recovery",
        Duration::from_secs(10),
        || async {
            s.exporter
                .log_text()
                .contains("export recovered")
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_monotonic(&s.rx, &series);
    // RSS stayed bounded: it keeps one snapshot, not a queue.
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", s.exporter.pid().unwrap())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kib < 64 * 1024, "exporter RSS {rss_kib} KiB");
}

// The receiver runs on this runtime: keep it served while the test blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_collector_times_out_without_piling_up_and_loses_nothing() {
    // Exporter timeout 2 s (the helper's default); the collector takes 3 s.
    let s = setup(&[]).await;
    let job = s.probe.start_job(&s.veth.port, "ingress").await.unwrap();
    let series = [("job.id", job.job_id.as_str()), ("proto", "ipv4")];
    s.send(&vec![frames::ipv4_udp(80); 2]);
    s.exported(&series, 2).await;
    s.rx.set_delay_ms(3000);
    s.send(&vec![frames::ipv4_udp(80); 5]);
    poll(
        "the exporter to give up on the slow collector",
        Duration::from_secs(20),
        || async {
            s.exporter
                .log_text()
                .contains("no answer within")
                .then_some(())
        },
    )
    .await
    .unwrap();
    // One request in flight at a time: in 3 s at most a couple of attempts,
    // not one per 200 ms interval.
    let before = s.rx.requests().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(s.rx.requests().len() - before <= 3, "requests piled up");
    s.rx.set_delay_ms(0);
    s.exported(&series, 7).await;
    assert_monotonic(&s.rx, &series);
}

// The receiver runs on this runtime: keep it served while the test blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_restart_continues_the_series() {
    let mut s = setup(&[]).await;
    let job = s.probe.start_job(&s.veth.port, "ingress").await.unwrap();
    let series = [("job.id", job.job_id.as_str()), ("proto", "ipv4")];
    s.send(&vec![frames::ipv4_udp(64); 4]);
    s.exported(&series, 4).await;

    s.probe.stop_process();
    // The classifier keeps counting while the probe is away.
    s.send(&vec![frames::ipv4_udp(64); 6]);
    s.probe.spawn(&[]).await.unwrap();
    s.exported(&series, 10).await;
    assert_monotonic(&s.rx, &series);
    let log = s.exporter.log_text();
    assert!(
        log.contains("counter stream lost") || log.contains("ended the counter stream"),
        "{log}"
    );
    assert!(
        log.matches("receiving counters from the probe").count() >= 2,
        "{log}"
    );
}

/// Parse Prometheus text into {series line key -> value}.
fn prom_values(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

// The receiver runs on this runtime: keep it served while the test blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_passes_promtool_and_matches_otlp() {
    let port = telegen_integration_tests::gateway::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut s = setup(&[("TELEGEN_PROM_LISTEN", &listen)]).await;
    let job = s.probe.start_job(&s.veth.port, "ingress").await.unwrap();
    let id = job.job_id.clone();
    s.send(&vec![frames::ipv4_udp(300); 9]);
    s.exported(&[("job.id", &id), ("proto", "ipv4")], 9).await;
    // Stop the exporter's world from moving: no more traffic, job stopped.
    s.probe.stop_job(&id).await.unwrap();
    let url = format!("http://{listen}/metrics");
    let text = poll("/metrics with the job", Duration::from_secs(10), || {
        let (url, id) = (url.clone(), id.clone());
        async move {
            let r = tokio::task::spawn_blocking(move || {
                telegen_integration_tests::gateway::http("GET", &url).send()
            })
            .await
            .ok()?
            .ok()?;
            // The job's series, and at least one export done (the counter
            // below is read after the export it counts).
            let exported = r
                .text
                .contains("telegen_exporter_exports_total{result=\"ok\"} ")
                && !r
                    .text
                    .contains("telegen_exporter_exports_total{result=\"ok\"} 0\n");
            (r.status == 200 && r.text.contains(&id) && exported).then_some(r)
        }
    })
    .await
    .unwrap();
    assert!(
        text.content_type.starts_with("text/plain"),
        "{}",
        text.content_type
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; make deps installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        text.text
    );

    let v = prom_values(&text.text);
    let key = |metric: &str, extra: &str| {
        format!(
            "{metric}{{proto=\"ipv4\",job_id=\"{id}\",interface=\"{}\",direction=\"ingress\"{extra}}}",
            s.veth.port
        )
    };
    assert_eq!(v[&key("bpf_packets_total", "")], 9.0, "{}", text.text);
    assert_eq!(v[&key("bpf_bytes_count", "")], 9.0);
    assert_eq!(v[&key("bpf_bytes_sum", "")], 2700.0);
    assert_eq!(v[&key("bpf_bytes_bucket", ",le=\"256\"")], 0.0);
    assert_eq!(v[&key("bpf_bytes_bucket", ",le=\"512\"")], 9.0);
    assert_eq!(v[&key("bpf_bytes_bucket", ",le=\"+Inf\"")], 9.0);
    // The same numbers the OTLP receiver got.
    let otlp =
        s.rx.latest("bpf.packets", &[("job.id", &id), ("proto", "ipv4")]);
    assert_eq!(otlp, Some(9));
    assert!(v["telegen_exporter_exports_total{result=\"ok\"}"] >= 1.0);
    assert_eq!(v["telegen_exporter_probe_connected"], 1.0);

    // A clean stop sends a last export and exits 0.
    let st = s.exporter.stop().unwrap();
    assert!(st.success(), "{st:?}");
    let log = s.exporter.log_text();
    assert!(log.contains("final export sent"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_tls_to_an_https_endpoint_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();

    let (ns, peer) = (Netns::new("tgt").unwrap(), Netns::new("tgu").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[("TELEGEN_PROBE_SOCKET_GROUP", UNPRIVILEGED_ID)])
        .await
        .unwrap();
    let rx = Receiver::start_tls(leaf.pem(), key.serialize_pem())
        .await
        .unwrap();
    let ca_file = probe.socket.with_file_name("otlp-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let ca_path = ca_file.display().to_string();
    let exporter = Exporter::start(
        &probe,
        &rx.endpoint(),
        &[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca_path),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=lab%201"),
        ],
    )
    .unwrap();
    assert!(rx.endpoint().starts_with("https://"));
    let job = probe.start_job(&veth.port, "ingress").await.unwrap();
    frames::send(&peer.path(), &veth.peer, &vec![frames::ipv4_udp(64); 3]).unwrap();
    poll("3 packets over TLS", Duration::from_secs(20), || async {
        (rx.latest("bpf.packets", &[("job.id", &job.job_id), ("proto", "ipv4")]) == Some(3))
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", exporter.log_text()));
    assert!(exporter.log_text().contains("tls=true"));
    assert_eq!(rx.last_header("x-tenant").as_deref(), Some("lab 1"));
}

/// Fresh scrapes (issue 19, item 5): with an export interval of a minute,
/// /metrics still shows counters at most 1 s old: a scrape finds packets
/// sent just before it, and says when the probe took the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_counters_at_most_a_second_old() {
    let port = telegen_integration_tests::gateway::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let s = setup(&[
        ("TELEGEN_PROM_LISTEN", &listen),
        ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
    ])
    .await;
    let job = s.probe.start_job(&s.veth.port, "ingress").await.unwrap();
    let id = job.job_id.clone();
    let url = format!("http://{listen}/metrics");
    let scrape = || {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                telegen_integration_tests::gateway::http("GET", &url).send()
            })
            .await
            .unwrap()
            .unwrap()
        }
    };
    let key = format!(
        "bpf_packets_total{{proto=\"ipv4\",job_id=\"{id}\",interface=\"{}\",direction=\"ingress\"}}",
        s.veth.port
    );
    for round in 1..=3u32 {
        s.send(&vec![frames::ipv4_udp(100); 4]);
        // The probe counted them (its own results say so) ...
        s.probe.results_at(&id, u64::from(4 * round)).await.unwrap();
        // ... so once a second has passed, any snapshot from before is too
        // old to show, and the scrape takes a fresh one: it shows them
        // all, not the next export's figures a minute away.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let t0 = std::time::Instant::now();
        let r = scrape().await;
        let v = prom_values(&r.text);
        assert_eq!(v.get(&key), Some(&f64::from(4 * round)), "{}", r.text);
        let taken = v["telegen_exporter_snapshot_timestamp_seconds"];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(now - taken <= 1.5, "snapshot {:.3} s old", now - taken);
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        // Rate-limited: scrapes within the second reuse that snapshot.
        let again = prom_values(&scrape().await.text);
        assert_eq!(again["telegen_exporter_snapshot_timestamp_seconds"], taken);
    }
    assert_eq!(
        s.rx.latest("bpf.packets", &[("job.id", &id), ("proto", "ipv4")]),
        None,
        "nothing exported yet: the figures came from scrapes"
    );
}
