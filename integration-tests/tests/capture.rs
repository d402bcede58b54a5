//! Packet capture (result_detail pcaplike) with real traffic on veths: the
//! pcapng a job's StreamCapture sends is read by tcpdump and capinfos and
//! field by field, with the exact packets, lengths, snaplen cut and order
//! sent; filters, sampling, every cap and the rate hold with their drops
//! counted; two capture jobs on one port each get only their own packets.

use std::process::Command;
use std::time::Duration;

use telegen_integration_tests::{
    frames::{self, Pkt},
    netns::{Netns, Veth},
    pcapng, poll,
    probe::Probe,
};
use telegen_proto::v1 as pb;

fn capture_req(
    port: &str,
    filters: Option<pb::Filters>,
    c: pb::CaptureOptions,
) -> pb::StartJobRequest {
    pb::StartJobRequest {
        port: port.into(),
        direction: "ingress".into(),
        result_detail: "pcaplike".into(),
        filters,
        capture: Some(c),
        ..Default::default()
    }
}

fn udp() -> Option<pb::Filters> {
    Some(pb::Filters {
        ip_proto: vec!["udp".into()],
        ..Default::default()
    })
}

async fn start(probe: &Probe, req: pb::StartJobRequest) -> String {
    let job = probe.client().start_job(req).await.unwrap().into_inner();
    probe.wait_status(&job.job_id, "running").await.unwrap();
    job.job_id
}

/// The job's capture figures once `done` holds.
async fn capture_stats(
    probe: &Probe,
    id: &str,
    done: impl Fn(&pb::CaptureStats) -> bool,
) -> pb::CaptureStats {
    let last = std::sync::Mutex::new(None);
    let got = poll("the capture's figures", Duration::from_secs(10), || async {
        let c = probe.results(id).await.ok()?.capture?;
        *last.lock().unwrap() = Some(c.clone());
        done(&c).then_some(c)
    })
    .await;
    got.unwrap_or_else(|e| {
        let log = probe.log_text();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!(
            "{e}; last figures {:?}; probe log:\n{}",
            last.lock().unwrap(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 10 UDP packets of growing sizes (and TCP the filter leaves out): the
/// file holds exactly the 10, in order, cut at snaplen 64 with their
/// original lengths, at wall-clock times of the job; tcpdump and capinfos
/// agree.
#[tokio::test]
async fn tcpdump_reads_exactly_the_packets_sent() {
    let (ns, peer) = (Netns::new("tca").unwrap(), Netns::new("tcb").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let id = start(
        &probe,
        capture_req(
            &veth.port,
            udp(),
            pb::CaptureOptions {
                snaplen: Some(64),
                ..Default::default()
            },
        ),
    )
    .await;
    let sent: Vec<Pkt> = (0..10)
        .map(|i| {
            Pkt::new(
                "10.0.0.1",
                "10.0.0.2",
                17,
                1000 + i,
                9999,
                60 + 10 * i as usize,
            )
        })
        .collect();
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for (i, p) in sent.iter().enumerate() {
        frames.push(p.frame());
        if i % 3 == 0 {
            frames.push(Pkt::new("10.0.0.1", "10.0.0.2", 6, 7, 8, 80).frame());
        }
    }
    frames::send(&peer.path(), &veth.peer, &frames).unwrap();
    let stats = capture_stats(&probe, &id, |c| c.packets >= 10).await;
    assert_eq!(
        (stats.packets, stats.snaplen, stats.frame.as_str()),
        (10, 64, "inner")
    );
    let want_bytes: u64 = sent.iter().map(|p| p.len.min(64) as u64).sum();
    assert_eq!(stats.bytes, want_bytes);
    assert_eq!(
        (
            stats.ring_full,
            stats.rate_limited,
            stats.cap_reached,
            stats.spool_dropped
        ),
        (0, 0, 0, 0)
    );
    probe.stop_job(&id).await.unwrap();
    let bytes = probe.capture(&id, false).await.unwrap();
    assert_eq!(
        bytes.len() as u64,
        stats.file_bytes,
        "the stream is the file"
    );
    let cap = pcapng::parse(&bytes).unwrap();
    assert_eq!(
        (cap.if_name.as_str(), cap.snaplen, cap.tsresol),
        (veth.port.as_str(), 64, 9)
    );
    assert_eq!(cap.packets.len(), 10);
    let t1 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for (p, want) in cap.packets.iter().zip(&sent) {
        let frame = want.frame();
        assert_eq!(p.orig_len as usize, frame.len());
        assert_eq!(p.data, frame[..frame.len().min(64)], "cut at snaplen");
        assert!(
            (t0..=t1).contains(&p.ts_ns),
            "wall clock: {} not in {t0}..{t1}",
            p.ts_ns
        );
    }
    assert!(cap.packets.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));

    let file = probe.log.with_file_name("capture.pcapng");
    std::fs::write(&file, &bytes).unwrap();
    let file = file.to_str().unwrap();
    // -e: the link-level line, whose length is the packet's original one.
    let lines = run("tcpdump", &["-r", file, "-nn", "-tt", "-e"]);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 10, "{lines:?}");
    for (line, (i, p)) in lines.iter().zip(sent.iter().enumerate()) {
        assert!(
            line.contains(&format!("10.0.0.1.{} > 10.0.0.2.9999: UDP", 1000 + i)),
            "{line}"
        );
        assert!(
            line.contains(&format!("IPv4 (0x0800), length {}:", p.len)),
            "{line}"
        );
    }
    let info = run("capinfos", &["-c", "-l", file]);
    assert!(info.contains("Number of packets:   10"), "{info}");
    assert!(
        info.contains("Packet size limit:   inferred: 64 bytes"),
        "{info}"
    );
}

/// Each limit holds and says what it let go: max_packets, max_bytes (pcapng
/// bytes: 32 a block and the data padded to 4), the rate (a second's worth
/// at once, then max_pps), sampling (1 in 10).
#[tokio::test]
async fn caps_rate_and_sampling_hold_with_their_drops_counted() {
    let (ns, peer) = (Netns::new("tca").unwrap(), Netns::new("tcb").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[("TELEGEN_MAX_JOBS", "4")])
        .await
        .unwrap();
    let frame = |i: u16| Pkt::new("10.0.0.1", "10.0.0.2", 17, i, 9, 200).frame();
    let burst: Vec<Vec<u8>> = (0..40).map(frame).collect();
    let opts = |f: &dyn Fn(&mut pb::CaptureOptions)| {
        let mut o = pb::CaptureOptions::default();
        f(&mut o);
        o
    };
    let by_packets = start(
        &probe,
        capture_req(&veth.port, udp(), opts(&|o| o.max_packets = Some(5))),
    )
    .await;
    // 6 blocks of 32 + 128: 960 bytes; a 7th would pass 1000.
    let by_bytes = start(
        &probe,
        capture_req(&veth.port, udp(), opts(&|o| o.max_bytes = Some(1000))),
    )
    .await;
    let by_rate = start(
        &probe,
        capture_req(&veth.port, udp(), opts(&|o| o.max_pps = Some(10))),
    )
    .await;
    let mut sampled_req = capture_req(&veth.port, udp(), pb::CaptureOptions::default());
    sampled_req.sample_rate = Some(10);
    let sampled = start(&probe, sampled_req).await;
    frames::send(&peer.path(), &veth.peer, &burst).unwrap();

    let c = capture_stats(&probe, &by_packets, |c| c.packets + c.cap_reached >= 40).await;
    assert_eq!((c.packets, c.cap_reached), (5, 35));
    let c = capture_stats(&probe, &by_bytes, |c| c.packets + c.cap_reached >= 40).await;
    assert_eq!(
        (
            c.packets,
            c.cap_reached,
            c.file_bytes - header_len(&probe, &by_bytes).await
        ),
        (6, 34, 960)
    );
    let c = capture_stats(&probe, &by_rate, |c| c.packets + c.rate_limited >= 40).await;
    // The bucket starts with a second's worth (10); sending the burst takes
    // far less than the 100 ms an 11th token would need, or 1 more.
    assert!((10..=11).contains(&c.packets), "{c:?}");
    assert_eq!(c.packets + c.rate_limited, 40);
    let r = probe.results_at(&sampled, 40).await.unwrap();
    let c = r.capture.unwrap();
    assert!((1..=20).contains(&c.packets), "1 in 10 of 40: {c:?}");
    assert_eq!(
        (c.rate_limited, c.cap_reached),
        (0, 0),
        "sampling is no drop"
    );
    for id in [&by_packets, &by_bytes, &by_rate, &sampled] {
        probe.stop_job(id).await.unwrap();
        let n = pcapng::parse(&probe.capture(id, false).await.unwrap())
            .unwrap()
            .packets
            .len();
        let stats = probe.results(id).await.unwrap().capture.unwrap();
        assert_eq!(n as u64, stats.packets, "the file holds what results say");
    }
}

/// The header's size in `id`'s stream (its section and interface blocks).
async fn header_len(probe: &Probe, id: &str) -> u64 {
    let mut s = probe
        .client()
        .stream_capture(pb::StreamCaptureRequest {
            job_id: id.into(),
            from_now: true,
        })
        .await
        .unwrap()
        .into_inner();
    s.message().await.unwrap().unwrap().data.len() as u64
}

/// Two capture jobs on one port, filtering different ports: each file has
/// its own packets only.
#[tokio::test]
async fn two_capture_jobs_on_one_port_get_only_their_packets() {
    let (ns, peer) = (Netns::new("tca").unwrap(), Netns::new("tcb").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let dport = |p: u32| {
        Some(pb::Filters {
            l4_dport: vec![p],
            ..Default::default()
        })
    };
    let a = start(
        &probe,
        capture_req(&veth.port, dport(1111), Default::default()),
    )
    .await;
    let b = start(
        &probe,
        capture_req(&veth.port, dport(2222), Default::default()),
    )
    .await;
    let mut frames = Vec::new();
    for i in 0..7u16 {
        let d = if i < 3 { 1111 } else { 2222 };
        frames.push(Pkt::new("10.0.0.1", "10.0.0.2", 17, 5000 + i, d, 100).frame());
    }
    frames::send(&peer.path(), &veth.peer, &frames).unwrap();
    capture_stats(&probe, &a, |c| c.packets >= 3).await;
    capture_stats(&probe, &b, |c| c.packets >= 4).await;
    for (id, want) in [(&a, 1111u16), (&b, 2222)] {
        probe.stop_job(id).await.unwrap();
        let cap = pcapng::parse(&probe.capture(id, false).await.unwrap()).unwrap();
        let dports: Vec<u16> = cap
            .packets
            .iter()
            .map(|p| u16::from_be_bytes([p.data[36], p.data[37]]))
            .collect();
        assert_eq!(dports, vec![want; if want == 1111 { 3 } else { 4 }]);
    }
}

/// Live, through the whole stack: `telegenctl capture JOB -w - | tcpdump
/// -r -` prints packets while the job runs, and ends when the job does;
/// the REST download afterwards is the same pcapng; a read-only token may
/// not fetch packets.
#[tokio::test]
async fn a_live_capture_through_telegenctl_pipes_into_tcpdump() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use telegen_integration_tests::{gateway::Stack, probe::bin_dir};
    let stack = Stack::start(&[], &[]).await.unwrap();
    let ctl = bin_dir().join("telegenctl");
    let started = Command::new(&ctl)
        .args([
            "--api",
            &stack.gw.url,
            "--json",
            "start",
            "--port",
            &stack.veth.port,
        ])
        .args(["--direction", "ingress", "--result-detail", "pcaplike"])
        .args(["--snaplen", "96", "--filter", "ip_proto=udp"])
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let job: serde_json::Value = serde_json::from_slice(&started.stdout).unwrap();
    let id = job["job_id"].as_str().unwrap().to_string();
    assert_eq!(job["capture"]["snaplen"], 96, "{job}");
    stack.probe.wait_status(&id, "running").await.unwrap();

    let mut pipeline = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --api {} capture {id} -w - | tcpdump -r - -nn -l",
            ctl.display(),
            stack.gw.url
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = pipeline.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let read_until = |n: usize, lines: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lines.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(e) => panic!("tcpdump printed {lines:?}, waiting for {n}: {e}"),
            }
        }
    };
    let udp = |sport: u16| Pkt::new("10.0.0.1", "10.0.0.2", 17, sport, 9999, 120).frame();
    frames::send(
        &stack.peer.path(),
        &stack.veth.peer,
        &[udp(1), udp(2), udp(3)],
    )
    .unwrap();
    read_until(3, &mut lines);
    // Shown while the job runs, and more as they come.
    assert_eq!(stack.probe.results(&id).await.unwrap().status, "running");
    frames::send(&stack.peer.path(), &stack.veth.peer, &[udp(4), udp(5)]).unwrap();
    read_until(5, &mut lines);
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.contains(&format!("10.0.0.1.{} > 10.0.0.2.9999: UDP", i + 1)),
            "{l}"
        );
    }
    stack.probe.stop_job(&id).await.unwrap();
    let status = poll(
        "the pipeline to end with the job",
        Duration::from_secs(10),
        || {
            let s = pipeline.try_wait().unwrap();
            async move { s }
        },
    )
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");

    // The download of the ended job: the same bytes as the gRPC stream.
    let file = stack.probe.log.with_file_name("download.pcapng");
    let saved = Command::new(&ctl)
        .args([
            "--api",
            &stack.gw.url,
            "capture",
            &id,
            "-w",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(saved.status.success(), "{saved:?}");
    let grpc = stack.probe.capture(&id, false).await.unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), grpc);
    assert_eq!(pcapng::parse(&grpc).unwrap().packets.len(), 5);
    // A job that does not capture: 409 from the gateway, exit 3.
    let plain = stack
        .probe
        .start_job(&stack.veth.port, "ingress")
        .await
        .unwrap();
    let refused = Command::new(&ctl)
        .args(["--api", &stack.gw.url, "capture", &plain.job_id, "-w", "-"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("does not capture packets"), "{err}");
}

/// kill -9 mid-capture: what the kernel captured while no probe read the
/// ring waits there, and the next probe continues the same file: every
/// packet once, in order, and results count them all.
#[tokio::test]
async fn a_capture_survives_a_kill_9_without_losing_or_doubling_a_packet() {
    let (ns, peer) = (Netns::new("tca").unwrap(), Netns::new("tcb").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let mut probe = Probe::start(&ns, &[]).await.unwrap();
    let id = start(&probe, capture_req(&veth.port, udp(), Default::default())).await;
    let udp = |sport: u16| Pkt::new("10.0.0.1", "10.0.0.2", 17, sport, 9999, 100).frame();
    frames::send(&peer.path(), &veth.peer, &[udp(1), udp(2), udp(3)]).unwrap();
    capture_stats(&probe, &id, |c| c.packets == 3).await;
    probe.kill_process();
    frames::send(&peer.path(), &veth.peer, &[udp(4), udp(5), udp(6), udp(7)]).unwrap();
    probe.spawn(&[]).await.unwrap();
    probe.wait_status(&id, "running").await.unwrap();
    let c = capture_stats(&probe, &id, |c| c.packets >= 7).await;
    assert_eq!((c.packets, c.ring_full, c.spool_dropped), (7, 0, 0));
    frames::send(&peer.path(), &veth.peer, &[udp(8)]).unwrap();
    capture_stats(&probe, &id, |c| c.packets >= 8).await;
    probe.stop_job(&id).await.unwrap();
    let cap = pcapng::parse(&probe.capture(&id, false).await.unwrap()).unwrap();
    let sports: Vec<u16> = cap
        .packets
        .iter()
        .map(|p| u16::from_be_bytes([p.data[34], p.data[35]]))
        .collect();
    assert_eq!(sports, (1..=8).collect::<Vec<u16>>());
    assert_eq!(
        probe.results(&id).await.unwrap().capture.unwrap().packets,
        8
    );
}

/// ERSPAN copies arriving on a port (no erspan netdev: the classifier opens
/// the tunnel): `frame` inner (the default) keeps the mirrored frame, outer
/// the frame as it arrived, tunnel and all; the filter applies to the
/// mirrored packet either way.
#[tokio::test]
async fn erspan_copies_are_captured_inner_or_outer() {
    use telegen_integration_tests::frames::{concat, erspan2_header, gre, ipv4_gre};
    let (ns, peer) = (Netns::new("tca").unwrap(), Netns::new("tcb").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let whole = |frame: &str| pb::CaptureOptions {
        snaplen: Some(512),
        frame: frame.into(),
        ..Default::default()
    };
    let inner = start(&probe, capture_req(&veth.port, udp(), whole(""))).await;
    let outer = start(&probe, capture_req(&veth.port, udp(), whole("outer"))).await;
    let mirrored: Vec<Vec<u8>> = (0..3)
        .map(|i| Pkt::new("10.0.0.1", "10.0.0.2", 17, 100 + i, 9999, 90).frame())
        .collect();
    let tcp = Pkt::new("10.0.0.1", "10.0.0.2", 6, 1, 2, 90).frame();
    let wrap = |f: &Vec<u8>| ipv4_gre(&concat(&[&gre(0x1000, 0x88be), &erspan2_header(), f]));
    let mut sent: Vec<Vec<u8>> = mirrored.iter().map(wrap).collect();
    sent.push(wrap(&tcp));
    frames::send(&peer.path(), &veth.peer, &sent).unwrap();
    for id in [&inner, &outer] {
        capture_stats(&probe, id, |c| c.packets >= 3).await;
        probe.stop_job(id).await.unwrap();
    }
    let got = |id: &str| {
        let id = id.to_string();
        let probe = &probe;
        async move { pcapng::parse(&probe.capture(&id, false).await.unwrap()).unwrap() }
    };
    let i = got(&inner).await;
    let o = got(&outer).await;
    assert_eq!(
        i.packets.iter().map(|p| &p.data).collect::<Vec<_>>(),
        mirrored.iter().collect::<Vec<_>>()
    );
    assert_eq!(
        o.packets.iter().map(|p| &p.data).collect::<Vec<_>>(),
        sent[..3].iter().collect::<Vec<_>>()
    );
    assert!(o
        .packets
        .iter()
        .all(|p| p.orig_len as usize == p.data.len()));
    assert_eq!(
        probe.results(&inner).await.unwrap().capture.unwrap().frame,
        "inner"
    );
    assert_eq!(
        probe.results(&outer).await.unwrap().capture.unwrap().frame,
        "outer"
    );
}

/// KiB of the probe's mappings of BPF maps (the capture ring is 16 MiB of
/// them when mapped: its 8 MiB of pages, twice).
fn bpf_map_kib(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines()
        .filter(|l| l.contains("anon_inode:bpf-map"))
        .filter_map(|l| {
            let (range, _) = l.split_once(' ')?;
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            Some((b - a) / 1024)
        })
        .sum()
}

/// The ring costs the probe's memory only while a capture may still get
/// records: mapped when one starts, unmapped once its file is complete.
#[tokio::test]
async fn the_capture_ring_is_mapped_only_while_a_capture_runs() {
    let (ns, peer) = (Netns::new("tcm").unwrap(), Netns::new("tcn").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let pid = probe.pid().unwrap();
    let plain = probe.start_job(&veth.port, "ingress").await.unwrap();
    probe.wait_status(&plain.job_id, "running").await.unwrap();
    assert!(
        bpf_map_kib(pid) < 8192,
        "idle: {} KiB mapped",
        bpf_map_kib(pid)
    );
    let id = start(&probe, capture_req(&veth.port, udp(), Default::default())).await;
    poll("the ring mapped", Duration::from_secs(5), || async {
        (bpf_map_kib(pid) >= 16384).then_some(())
    })
    .await
    .unwrap();
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| Pkt::new("10.0.0.1", "10.0.0.2", 17, 5000 + i, 53, 100).frame())
        .collect();
    frames::send(&peer.path(), &veth.peer, &frames).unwrap();
    capture_stats(&probe, &id, |c| c.packets >= 3).await;
    probe.stop_job(&id).await.unwrap();
    poll("the ring unmapped", Duration::from_secs(5), || async {
        (bpf_map_kib(pid) < 8192).then_some(())
    })
    .await
    .unwrap();
    let cap = pcapng::parse(&probe.capture(&id, false).await.unwrap()).unwrap();
    assert_eq!(
        cap.packets.len(),
        3,
        "every packet written before the unmap"
    );
}
