//! The pinned records' encoding of domain values: a job as `struct
//! job_rec` (the `jobs` map), its filter as `struct job_filter` (which the
//! classifier reads, and which is how a filter survives a restart), and
//! addresses as the classifier's words.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use uuid::Uuid;

use super::maps::layout::{
    get_str, put_str, CaptureLimit, FlowKey, FlowVal, JobNote, JobRec, KCidr, KJobFilter,
    FILTER_MAX_CIDRS, FILTER_MAX_PORTS, F_CAPTURE, F_CAPTURE_OUTER, F_DPORT, F_DSCP, F_DST,
    F_FLOWS, F_PROTO, F_SPORT, F_SRC, F_VLAN,
};
use crate::domain::capture::CaptureSpec;
use crate::domain::filter::{mask, Cidr};
use crate::domain::{AttachMode, Direction, Job, JobFilter, JobState, MirrorMode, MirrorScope};
use crate::jobs::ports::RawFlow;

// The classifier's filter arrays hold what validation allows.
const _: () = assert!(crate::domain::filter::MAX_PORTS == FILTER_MAX_PORTS);
const _: () = assert!(crate::domain::filter::MAX_CIDRS == FILTER_MAX_CIDRS);

pub fn mirror_code(m: MirrorMode) -> u8 {
    match m {
        MirrorMode::Erspan => 1,
        MirrorMode::Sonic => 2,
        MirrorMode::Direct => 3,
        MirrorMode::Placeholder => 4,
    }
}

fn mirror_from_code(c: u8) -> Option<MirrorMode> {
    Some(match c {
        1 => MirrorMode::Erspan,
        2 => MirrorMode::Sonic,
        3 => MirrorMode::Direct,
        4 => MirrorMode::Placeholder,
        _ => return None,
    })
}

pub fn attach_code(m: AttachMode) -> u8 {
    match m {
        AttachMode::Tcx => 1,
        AttachMode::Tc => 2,
    }
}

pub fn attach_from_code(c: u8) -> Option<AttachMode> {
    match c {
        1 => Some(AttachMode::Tcx),
        2 => Some(AttachMode::Tc),
        _ => None,
    }
}

fn state_code(s: JobState) -> u8 {
    match s {
        JobState::Starting => 1,
        JobState::Running => 2,
        JobState::Stopping => 3,
        JobState::Stopped => 4,
        JobState::Expired => 5,
        JobState::Failed => 6,
        JobState::Resolving => 7,
    }
}

fn state_from_code(c: u8) -> Option<JobState> {
    Some(match c {
        1 => JobState::Starting,
        2 => JobState::Running,
        3 => JobState::Stopping,
        4 => JobState::Stopped,
        5 => JobState::Expired,
        6 => JobState::Failed,
        7 => JobState::Resolving,
        _ => return None,
    })
}

pub fn job_to_rec(j: &Job) -> JobRec {
    JobRec {
        id: *j.id.as_bytes(),
        port: put_str(&j.port),
        iface: put_str(&j.iface),
        ifindex: j.ifindex,
        state: state_code(j.state),
        direction: j.direction.bits(),
        mirror_mode: mirror_code(j.mirror_mode),
        attach_mode: j.attach_mode.map_or(0, attach_code),
        otlp_export: j.otlp_export as u8,
        // 0 summary, 1 flows, 2 pcaplike.
        result_detail: if j.capture.is_some() {
            2
        } else {
            j.flows_detail as u8
        },
        duration_sec: j.duration_sec,
        sample_rate: j.sample_rate,
        flow_table_size: j.flow_table_size,
        seq: j.seq,
        started_unix_ns: j.started_ns,
        expires_unix_ns: j.expires_ns.unwrap_or(0),
        stopped_unix_ns: j.stopped_ns.unwrap_or(0),
        error: put_str(j.error.as_deref().unwrap_or("")),
        fallback: put_str(j.fallback.as_deref().unwrap_or("")),
        ending: j.ending.map_or(0, state_code),
        mirror_scope: match j.mirror_scope {
            None => 0,
            Some(MirrorScope::Acl(_)) => 1,
            Some(MirrorScope::Port(_)) => 2,
        },
    }
}

/// A job from its pinned record (its filter is in job_filters); None for a
/// free or unreadable slot.
pub fn job_from_rec(slot: u32, r: &JobRec) -> Option<Job> {
    let text = |b: &[u8]| Some(get_str(b)).filter(|s| !s.is_empty());
    Some(Job {
        slot,
        id: Uuid::from_bytes(r.id),
        port: get_str(&r.port),
        iface: get_str(&r.iface),
        ifindex: r.ifindex,
        state: state_from_code(r.state)?,
        direction: Direction::from_bits(r.direction)?,
        mirror_mode: mirror_from_code(r.mirror_mode)?,
        attach_mode: attach_from_code(r.attach_mode),
        otlp_export: r.otlp_export != 0,
        flows_detail: r.result_detail == 1,
        // Its settings are in job_filters and capture_limits (apply_capture).
        capture: (r.result_detail == 2).then(CaptureSpec::default),
        duration_sec: r.duration_sec,
        sample_rate: r.sample_rate,
        seq: r.seq,
        started_ns: r.started_unix_ns,
        expires_ns: (r.expires_unix_ns != 0).then_some(r.expires_unix_ns),
        expires_boot_ns: None,
        stopped_ns: (r.stopped_unix_ns != 0).then_some(r.stopped_unix_ns),
        error: text(&r.error),
        fallback: text(&r.fallback),
        // The reason is in job_notes (job_scope_from).
        mirror_scope: match r.mirror_scope {
            1 => Some(MirrorScope::Acl(String::new())),
            2 => Some(MirrorScope::Port(String::new())),
            _ => None,
        },
        filter: JobFilter::default(),
        flow_table_size: r.flow_table_size,
        ending: state_from_code(r.ending),
        pending: None,
    })
}

/// A job's note: its scope's reason.
pub fn job_note(j: &Job) -> JobNote {
    JobNote {
        scope_reason: put_str(j.mirror_scope.as_ref().map_or("", |s| s.reason())),
    }
}

/// The scope's reason from a job's note.
pub fn apply_note(job: &mut Job, n: &JobNote) {
    let why = get_str(&n.scope_reason);
    job.mirror_scope = match job.mirror_scope.take() {
        Some(MirrorScope::Acl(_)) => Some(MirrorScope::Acl(why)),
        Some(MirrorScope::Port(_)) => Some(MirrorScope::Port(why)),
        None => None,
    };
}

/// The classifier's filter record of a job.
pub fn job_filter(j: &Job) -> KJobFilter {
    let mut k = j.filter.to_kernel(j.flows_detail, j.sample_rate);
    if let Some(c) = &j.capture {
        k.flags |= F_CAPTURE;
        if c.outer {
            k.flags |= F_CAPTURE_OUTER;
        }
        k.snaplen = c.snaplen as u16;
    }
    k
}

/// A capture job's kernel limit: its caps and rate, counters from zero.
pub fn capture_limit(c: &CaptureSpec) -> CaptureLimit {
    CaptureLimit {
        max_packets: c.max_packets,
        max_bytes: c.max_bytes,
        rate_pps: c.max_pps.into(),
        ..Default::default()
    }
}

/// A recorded capture job's settings from its filter and kernel limit.
pub fn apply_capture(job: &mut Job, f: &KJobFilter, l: Option<&CaptureLimit>) {
    if let Some(c) = job.capture.as_mut() {
        c.snaplen = u32::from(f.snaplen);
        c.outer = f.flags & F_CAPTURE_OUTER != 0;
        if let Some(l) = l {
            c.max_packets = l.max_packets;
            c.max_bytes = l.max_bytes;
            c.max_pps = l.rate_pps as u32;
        }
    }
}

impl JobFilter {
    /// The classifier's form. `flows`/`sample_rate` ride along: they are
    /// per-job settings the same loop needs.
    pub fn to_kernel(&self, flows: bool, sample_rate: u32) -> KJobFilter {
        let mut k = KJobFilter {
            sample_rate,
            ..Default::default()
        };
        if flows {
            k.flags |= F_FLOWS;
        }
        if !self.ip_proto.is_empty() {
            k.flags |= F_PROTO;
            for p in &self.ip_proto {
                k.proto_mask[usize::from(*p >> 6)] |= 1u64 << (p & 63);
            }
        }
        if !self.dscp.is_empty() {
            k.flags |= F_DSCP;
            for d in &self.dscp {
                k.dscp_mask |= 1u64 << (d & 63);
            }
        }
        let ports = |list: &[u16], out: &mut [u16; FILTER_MAX_PORTS]| {
            let n = list.len().min(FILTER_MAX_PORTS);
            out[..n].copy_from_slice(&list[..n]);
            n as u8
        };
        if !self.l4_sport.is_empty() {
            k.flags |= F_SPORT;
            k.nsport = ports(&self.l4_sport, &mut k.sport);
        }
        if !self.l4_dport.is_empty() {
            k.flags |= F_DPORT;
            k.ndport = ports(&self.l4_dport, &mut k.dport);
        }
        let cidrs = |list: &[Cidr], out: &mut [KCidr; FILTER_MAX_CIDRS]| {
            for (c, o) in list.iter().zip(out.iter_mut()) {
                *o = c.to_kernel();
            }
            list.len().min(FILTER_MAX_CIDRS) as u8
        };
        if !self.src_cidr.is_empty() {
            k.flags |= F_SRC;
            k.nsrc = cidrs(&self.src_cidr, &mut k.src);
        }
        if !self.dst_cidr.is_empty() {
            k.flags |= F_DST;
            k.ndst = cidrs(&self.dst_cidr, &mut k.dst);
        }
        if let Some(v) = self.vlan {
            k.flags |= F_VLAN;
            k.vlan = v;
        }
        k
    }

    /// Back from the pinned kernel form (after a restart). Lists come back
    /// sorted where the kernel keeps a bit set (protocols, DSCP).
    pub fn from_kernel(k: &KJobFilter) -> JobFilter {
        let bits = |words: &[u64]| -> Vec<u8> {
            (0..words.len() * 64)
                .filter(|i| words[i / 64] & (1u64 << (i % 64)) != 0)
                .map(|i| i as u8)
                .collect()
        };
        let n = |v: u8, max: usize| usize::from(v).min(max);
        JobFilter {
            ip_proto: if k.flags & F_PROTO != 0 {
                bits(&k.proto_mask)
            } else {
                Vec::new()
            },
            l4_sport: k.sport[..n(k.nsport, FILTER_MAX_PORTS)].to_vec(),
            l4_dport: k.dport[..n(k.ndport, FILTER_MAX_PORTS)].to_vec(),
            src_cidr: k.src[..n(k.nsrc, FILTER_MAX_CIDRS)]
                .iter()
                .filter_map(Cidr::from_kernel)
                .collect(),
            dst_cidr: k.dst[..n(k.ndst, FILTER_MAX_CIDRS)]
                .iter()
                .filter_map(Cidr::from_kernel)
                .collect(),
            dscp: if k.flags & F_DSCP != 0 {
                bits(&[k.dscp_mask])
            } else {
                Vec::new()
            },
            vlan: (k.flags & F_VLAN != 0).then_some(k.vlan),
        }
    }
}

impl Cidr {
    pub(crate) fn to_kernel(&self) -> KCidr {
        let (family, addr) = ip_words(self.addr);
        let (_, mask) = ip_words(mask(self.addr, self.prefix, true));
        KCidr {
            addr,
            mask,
            family,
            pad: [0; 3],
        }
    }

    pub(crate) fn from_kernel(k: &KCidr) -> Option<Cidr> {
        let prefix: u32 = k.mask.iter().map(|w| w.count_ones()).sum();
        Some(Cidr {
            addr: words_ip(k.family, &k.addr)?,
            prefix: prefix as u8,
        })
    }
}

/// An address as the classifier holds it: family 4 or 6 and four words in
/// network order (IPv4 in the first).
pub fn ip_words(a: IpAddr) -> (u8, [u32; 4]) {
    let (family, bytes) = match a {
        IpAddr::V4(a) => (4, a.octets().to_vec()),
        IpAddr::V6(a) => (6, a.octets().to_vec()),
    };
    let mut w = [0u32; 4];
    for (o, c) in w.iter_mut().zip(bytes.chunks(4)) {
        *o = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    }
    (family, w)
}

/// The inverse of [`ip_words`]; None for an unknown family.
pub fn words_ip(family: u8, w: &[u32; 4]) -> Option<IpAddr> {
    let b: Vec<u8> = w.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match family {
        4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
        6 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(&b[..]).ok()?).into()),
        _ => None,
    }
}

/// A flow entry as the job core sees it. The classifier keys only IPv4
/// and IPv6 packets.
pub fn raw_flow(k: &FlowKey, v: &FlowVal) -> RawFlow {
    let ip = |w| words_ip(k.family, w).unwrap_or(Ipv4Addr::UNSPECIFIED.into());
    RawFlow {
        src: ip(&k.src),
        dst: ip(&k.dst),
        sport: k.sport,
        dport: k.dport,
        proto: k.proto,
        packets: v.packets,
        bytes: v.bytes,
    }
}

/// The inverse of [`raw_flow`].
pub fn flow_entry(f: &RawFlow) -> (FlowKey, FlowVal) {
    let (family, src) = ip_words(f.src);
    let (_, dst) = ip_words(f.dst);
    let key = FlowKey {
        src,
        dst,
        sport: f.sport,
        dport: f.dport,
        proto: f.proto,
        family,
        pad: 0,
    };
    let val = FlowVal {
        packets: f.packets,
        bytes: f.bytes,
    };
    (key, val)
}

#[cfg(test)]
mod tests;
