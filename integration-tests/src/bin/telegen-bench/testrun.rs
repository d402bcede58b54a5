//! BPF_PROG_TEST_RUN, shared by the classifier and filters sections: the
//! programs (telegen's classifier and the baselines) and the hand-built
//! frames they run on.

use std::path::PathBuf;

use anyhow::{anyhow, ensure, Context, Result};
use aya::{
    programs::{SchedClassifier, TestRun, TestRunOptions},
    Ebpf, EbpfLoader,
};
use telegen_integration_tests::bench_objects;

use crate::common::ScratchDir;

/// TC_ACT_UNSPEC (-1) as the u32 BPF_PROG_TEST_RUN reports.
const TC_ACT_UNSPEC: u32 = u32::MAX;

const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IP6_SRC: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const IP6_DST: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// The Internet checksum of the concatenation of `parts` (each even-sized
/// except possibly the last).
fn csum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for p in parts {
        for ch in p.chunks(2) {
            let w = if ch.len() == 2 {
                u16::from_be_bytes([ch[0], ch[1]])
            } else {
                u16::from_be_bytes([ch[0], 0])
            };
            sum += u32::from(w);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth(dst: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.extend(dst);
    v.extend(MAC_SRC);
    v.extend(ethertype.to_be_bytes());
    v
}

/// IPv4 header + UDP header + `payload` bytes.
fn ipv4_udp(payload: usize) -> Vec<u8> {
    let total = (20 + 8 + payload) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = csum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend(40000u16.to_be_bytes());
    ip.extend(5001u16.to_be_bytes());
    ip.extend(((8 + payload) as u16).to_be_bytes());
    ip.extend([0, 0]); // no UDP checksum (allowed over IPv4)
    ip.extend(std::iter::repeat_n(0xab, payload));
    ip
}

/// IPv6 header with `nexthdr`, then `payload`. `l4` is the offset inside the
/// payload of the upper-layer header whose checksum (at `l4 + csum_at`, with
/// protocol `l4_proto`) is filled in.
fn ipv6(nexthdr: u8, mut payload: Vec<u8>, l4: usize, l4_proto: u8, csum_at: usize) -> Vec<u8> {
    let upper_len = (payload.len() - l4) as u32;
    let pseudo_tail: Vec<u8> = upper_len
        .to_be_bytes()
        .into_iter()
        .chain([0, 0, 0, l4_proto])
        .collect();
    let c = csum(&[&IP6_SRC, &IP6_DST, &pseudo_tail, &payload[l4..]]);
    payload[l4 + csum_at..l4 + csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut v = vec![0x60, 0, 0, 0];
    v.extend((payload.len() as u16).to_be_bytes());
    v.extend([nexthdr, 64]);
    v.extend(IP6_SRC);
    v.extend(IP6_DST);
    v.extend(payload);
    v
}

fn icmp6_echo() -> Vec<u8> {
    vec![128, 0, 0, 0, 0x12, 0x34, 0, 1]
}

pub struct Frame {
    pub name: &'static str,
    /// The class the real classifier must count it in.
    pub class: usize,
    pub bytes: Vec<u8>,
}

pub fn frames() -> Vec<Frame> {
    let mut v4 = eth(MAC_DST, 0x0800);
    v4.extend(ipv4_udp(22));

    let mut tcp = Vec::with_capacity(20);
    tcp.extend(40000u16.to_be_bytes());
    tcp.extend(443u16.to_be_bytes());
    tcp.extend(1u32.to_be_bytes()); // seq
    tcp.extend(1u32.to_be_bytes()); // ack
    tcp.extend([0x50, 0x10]); // data offset 5, ACK
    tcp.extend(65535u16.to_be_bytes());
    tcp.extend([0, 0, 0, 0]); // checksum, urgent
    let mut v6tcp = eth(MAC_DST, 0x86dd);
    v6tcp.extend(ipv6(6, tcp, 0, 6, 16));

    let mut icmp = eth(MAC_DST, 0x86dd);
    icmp.extend(ipv6(58, icmp6_echo(), 0, 58, 2));

    // Hop-by-hop (next: destination options), destination options (next:
    // ICMPv6), each 8 bytes with a PadN option.
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0];
    ext.extend(icmp6_echo());
    let mut icmp_ext = eth(MAC_DST, 0x86dd);
    icmp_ext.extend(ipv6(0, ext, 16, 58, 2));

    let mut arp = eth([0xff; 6], 0x0806);
    arp.extend([0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    arp.extend(MAC_SRC);
    arp.extend([10, 0, 0, 1]);
    arp.extend([0; 6]);
    arp.extend([10, 0, 0, 2]);
    arp.resize(60, 0); // minimum frame (without FCS)

    let mut vlan = eth(MAC_DST, 0x8100);
    vlan.extend(100u16.to_be_bytes()); // PCP 0, VID 100
    vlan.extend(0x0800u16.to_be_bytes());
    vlan.extend(ipv4_udp(22));

    // The IPv4/UDP frame mirrored inside ERSPAN type II (GRE with a sequence
    // number, ERSPAN version 1 header) over IPv4: counted by the inner packet.
    let mut gre = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 7];
    gre.extend([0x10, 0x00, 0x00, 0x64, 0, 0, 0, 0x07]);
    gre.extend(&v4);
    let mut outer = vec![0x45, 0];
    outer.extend(((20 + gre.len()) as u16).to_be_bytes());
    outer.extend([0, 1, 0x40, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = csum(&[&outer]);
    outer[10..12].copy_from_slice(&c.to_be_bytes());
    let mut erspan = eth(MAC_DST, 0x0800);
    erspan.extend(outer);
    erspan.extend(gre);

    vec![
        Frame {
            name: "IPv4/UDP",
            class: 0,
            bytes: v4,
        },
        Frame {
            name: "IPv6/TCP",
            class: 1,
            bytes: v6tcp,
        },
        Frame {
            name: "ICMPv6 echo",
            class: 2,
            bytes: icmp,
        },
        Frame {
            name: "ICMPv6 behind HBH+DstOpts",
            class: 2,
            bytes: icmp_ext,
        },
        Frame {
            name: "ARP (other)",
            class: 3,
            bytes: arp,
        },
        Frame {
            name: "802.1Q IPv4/UDP",
            class: 0,
            bytes: vlan,
        },
        Frame {
            name: "IPv4/UDP inside ERSPAN II",
            class: 0,
            bytes: erspan,
        },
    ]
}

/// One classifier of an object, loaded.
pub struct Prog {
    label: &'static str,
    prog: &'static str,
    pub ebpf: Ebpf,
    /// Where the object's maps are pinned, if anywhere; removed after the
    /// object (fields drop in order).
    _pins: Option<ScratchDir>,
}

impl Prog {
    fn load(
        label: &'static str,
        prog: &'static str,
        mut ebpf: Ebpf,
        pins: Option<ScratchDir>,
    ) -> Result<Self> {
        let p: &mut SchedClassifier = ebpf
            .program_mut(prog)
            .ok_or_else(|| anyhow!("program {prog} missing from the {label} object"))?
            .try_into()?;
        p.load()
            .with_context(|| format!("loading program {prog} ({label})"))?;
        Ok(Prog {
            label,
            prog,
            ebpf,
            _pins: pins,
        })
    }

    /// `telegen_ingress` of `object` (the classifier, or another build of
    /// it), its maps pinned in a fresh /sys/fs/bpf/telegen-bench`tag`-<pid>.
    pub fn telegen(tag: &str, object: &[u8]) -> Result<Self> {
        let pins = ScratchDir::fresh(PathBuf::from(format!(
            "/sys/fs/bpf/telegen-bench{tag}-{}",
            std::process::id()
        )))?;
        let ebpf = EbpfLoader::new()
            .default_map_pin_directory(&pins.0)
            .load(object)
            .context("loading the telegen object")?;
        Prog::load("telegen", "telegen_ingress", ebpf, Some(pins))
    }

    /// The empty classifier, the baseline.
    pub fn empty() -> Result<Self> {
        Prog::baseline("empty", "empty", bench_objects::EMPTY)
    }

    /// The seed project's program shape, the second baseline.
    pub fn seed_like() -> Result<Self> {
        Prog::baseline("seed-like", "seed_like", bench_objects::SEED_LIKE)
    }

    fn baseline(label: &'static str, prog: &'static str, object: &[u8]) -> Result<Self> {
        let ebpf = EbpfLoader::new()
            .load(object)
            .with_context(|| format!("loading the {label} object"))?;
        Prog::load(label, prog, ebpf, None)
    }

    /// The program, to attach it elsewhere.
    pub fn classifier_mut(&mut self) -> Result<&mut SchedClassifier> {
        let prog = self.prog;
        Ok(self
            .ebpf
            .program_mut(prog)
            .ok_or_else(|| anyhow!("program {prog} missing"))?
            .try_into()?)
    }

    /// ns per run, as the kernel measured it.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<u64> {
        let p: &SchedClassifier = self
            .ebpf
            .program(self.prog)
            .ok_or_else(|| anyhow!("program {} missing", self.prog))?
            .try_into()?;
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .with_context(|| format!("BPF_PROG_TEST_RUN of {}", self.label))?;
        ensure!(
            r.return_value == TC_ACT_UNSPEC,
            "{} returned {} instead of TC_ACT_UNSPEC",
            self.label,
            r.return_value as i32
        );
        Ok(r.duration.as_nanos() as u64)
    }
}
