//! The classifier opens GRE and ERSPAN (type I, II, III) on its own: on a
//! kernel without ip_gre (this one) a port receiving a mirror session still
//! counts the mirrored packets by their own class and size. Malformed or
//! unknown tunnels are counted as the outer packet, with the reason counted.

use telegen_integration_tests::{
    frames::{self, concat, erspan2_header, erspan3_header, gre, ipv4_gre, ipv6_gre, strip_eth},
    netns::{Netns, Veth},
    probe::{class, Probe},
};

const ERSPAN2: u16 = 0x88be;
const ERSPAN3: u16 = 0x22eb;
const TEB: u16 = 0x6558;
const SEQ: u16 = 0x1000;
const KEY: u16 = 0x2000;

fn rep(f: Vec<u8>, n: usize) -> Vec<Vec<u8>> {
    vec![f; n]
}

#[tokio::test]
async fn counts_mirrored_packets_by_the_packet_inside_the_tunnel() {
    let (ns, peer) = (Netns::new("tgn").unwrap(), Netns::new("tgo").unwrap());
    let veth = Veth::new(&ns, &peer).unwrap();
    let probe = Probe::start(&ns, &[]).await.unwrap();
    let job = probe.start_job(&veth.port, "ingress").await.unwrap();

    let v4 = frames::ipv4_udp(100);
    let mut sent: Vec<Vec<u8>> = Vec::new();
    // Opened: (frames, class, bytes counted each = the inner packet's size).
    let opened: Vec<(Vec<Vec<u8>>, &str, u64)> = vec![
        // ERSPAN II (GRE seq), IPv4 inside.
        (
            rep(
                ipv4_gre(&concat(&[&gre(SEQ, ERSPAN2), &erspan2_header(), &v4])),
                3,
            ),
            "ipv4",
            100,
        ),
        // ERSPAN II with key and seq, ICMPv6 inside.
        (
            rep(
                ipv4_gre(&concat(&[
                    &gre(KEY | SEQ, ERSPAN2),
                    &erspan2_header(),
                    &frames::icmp6(90),
                ])),
                2,
            ),
            "icmp6",
            90,
        ),
        // ERSPAN I (no seq, no ERSPAN header), ARP inside.
        (
            rep(ipv4_gre(&concat(&[&gre(0, ERSPAN2), &frames::arp()])), 2),
            "other",
            42,
        ),
        // ERSPAN III, IPv6/TCP inside.
        (
            rep(
                ipv4_gre(&concat(&[
                    &gre(SEQ, ERSPAN3),
                    &erspan3_header(false),
                    &frames::ipv6_tcp(200),
                ])),
                4,
            ),
            "ipv6",
            200,
        ),
        // ERSPAN III with the platform subheader, a VLAN-tagged IPv4 inside.
        (
            rep(
                ipv4_gre(&concat(&[
                    &gre(SEQ, ERSPAN3),
                    &erspan3_header(true),
                    &frames::vlan_ipv4_udp(42, 300),
                ])),
                1,
            ),
            "ipv4",
            300,
        ),
        // Ethernet over GRE.
        (
            rep(ipv4_gre(&concat(&[&gre(0, TEB), &frames::arp()])), 1),
            "other",
            42,
        ),
        // IP over GRE (no inner Ethernet): the IP packet's size.
        (
            rep(ipv4_gre(&concat(&[&gre(0, 0x0800), &strip_eth(&v4)])), 2),
            "ipv4",
            86,
        ),
        // GRE over an IPv6 underlay.
        (
            rep(
                ipv6_gre(&concat(&[&gre(KEY, TEB), &frames::ipv4_udp(64)])),
                1,
            ),
            "ipv4",
            64,
        ),
    ];
    // Not opened: counted as the outer IPv4 packet, the reason counted.
    let bad_version = {
        let mut h = erspan2_header();
        h[0] = 0x30;
        ipv4_gre(&concat(&[&gre(SEQ, ERSPAN2), &h, &v4]))
    };
    let truncated = ipv4_gre(&[0x10]);
    let short_erspan3 = ipv4_gre(&concat(&[&gre(SEQ, ERSPAN3), &[0x20, 0, 0]]));
    let unknown = ipv4_gre(&concat(&[&gre(0, 0x1234), &[0u8; 40]]));
    let pptp = ipv4_gre(&concat(&[&gre(0x3001, 0x880b), &[0u8; 20]]));
    let outer = [
        (bad_version, "tunnel_malformed"),
        (truncated, "tunnel_malformed"),
        (short_erspan3, "tunnel_malformed"),
        (unknown, "tunnel_unknown_payload"),
        (pptp, "tunnel_unknown_payload"),
    ];

    let mut want = std::collections::HashMap::<&str, (u64, u64)>::new();
    for (fs, cls, each) in &opened {
        let e = want.entry(cls).or_default();
        e.0 += fs.len() as u64;
        e.1 += fs.len() as u64 * each;
        sent.extend(fs.iter().cloned());
    }
    for (f, _) in &outer {
        let e = want.entry("ipv4").or_default();
        e.0 += 1;
        e.1 += f.len() as u64;
        sent.push(f.clone());
    }
    frames::send(&peer.path(), &veth.peer, &sent).unwrap();
    let r = probe
        .results_at(&job.job_id, sent.len() as u64)
        .await
        .unwrap();
    for cls in ["ipv4", "ipv6", "icmp6", "other"] {
        let (p, b, hist) = class(&r, cls);
        let (wp, wb) = want.get(cls).copied().unwrap_or_default();
        assert_eq!((p, b), (wp, wb), "class {cls}");
        assert_eq!(hist.iter().sum::<u64>(), p, "class {cls} histogram");
    }
    // Sizes are the inner packets': 3 x 100-byte IPv4 land in <=128.
    assert!(
        class(&r, "ipv6").2[2] == 4,
        "4 x 200 B inner IPv6 in the <=256 bucket"
    );

    let snap = probe.snapshot().await.unwrap();
    let err = |k: &str| snap.errors.get(k).copied().unwrap_or(u64::MAX);
    assert_eq!(err("tunnel_malformed"), 3);
    assert_eq!(err("tunnel_unknown_payload"), 2);
    assert_eq!(err("truncated"), 0);
    let tun = |k: &str| snap.tunnel.get(k).copied().unwrap_or(u64::MAX);
    assert_eq!(tun("erspan1"), 2);
    assert_eq!(tun("erspan2"), 5);
    assert_eq!(tun("erspan3"), 5);
    assert_eq!(tun("gre_eth"), 2);
    assert_eq!(tun("gre_ip"), 2);
    assert_eq!(tun("outer_unopened"), 5);
}
