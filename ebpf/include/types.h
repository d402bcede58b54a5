/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by the classifier and the probe. The probe mirrors every struct
 * here in services/probe/src/maps/layout.rs; bump TELEGEN_LAYOUT_VERSION when a
 * layout changes, so a probe refuses pins of another layout instead of
 * misreading them. */
#ifndef TELEGEN_TYPES_H
#define TELEGEN_TYPES_H

#include <linux/types.h>

/* 2: one counter set per packet, per interface and direction (hook_stats);
 * the global and the plain jobs' figures are derived by the probe. */
#define TELEGEN_LAYOUT_VERSION 2

/* Protocol classes: exclusive, each packet is counted in exactly one. */
enum telegen_class {
	CLASS_IPV4 = 0,
	CLASS_IPV6 = 1,
	CLASS_ICMP6 = 2,
	CLASS_OTHER = 3,
	N_CLASSES = 4,
};

/* Packet-size histogram: upper bounds 64, 128, 256, 512, 1024, 1518, 4096,
 * 9216 bytes, plus +Inf. */
#define HIST_BUCKETS 9

/* Hook directions, the index into if_cfg.njobs/jobs. */
enum telegen_dir {
	DIR_INGRESS = 0,
	DIR_EGRESS = 1,
};

#define MAX_IF_SLOTS 64        /* interfaces with a live attachment */
#define MAX_JOB_SLOTS 64       /* jobs kept (running and recent history) */
#define MAX_JOBS_PER_HOOK 8    /* jobs counted on one interface+direction */
#define IFCFG_ARRAY_SIZE 4096  /* ifindex below this: array lookup, else hash */
#define IFCFG_HASH_SIZE 256
#define IPV6_EXT_MAX 6         /* bounded walk of IPv6 extension headers */

/* Why a packet, or part of its accounting, could not be recorded normally.
 * Nothing is dropped silently: each case has a counter. */
enum telegen_err {
	ERR_TRUNCATED = 0,    /* headers end before the ethertype says they should */
	ERR_EXTHDR_LIMIT = 1, /* more IPv6 extension headers than IPV6_EXT_MAX */
	ERR_NO_IFCFG = 2,     /* packet on a hook whose interface has no config */
	ERR_IF_SLOT = 3,      /* interface counter slot out of range (overflow) */
	ERR_JOB_SLOT = 4,     /* job counter slot out of range (overflow) */
	ERR_GLOBAL = 5,       /* global counter lookup failed */
	ERR_TUNNEL_MALFORMED = 6, /* GRE/ERSPAN header truncated or of a wrong version: counted as the outer packet */
	ERR_TUNNEL_UNKNOWN = 7,   /* GRE carrying something other than ERSPAN, Ethernet or IP: counted as the outer packet */
	ERR_DEEP_MISSING = 8,     /* a deep hook's tail call found no telegen_deep: its jobs went uncounted */
	ERR_FILTER_LOOKUP = 9,    /* a job slot without a job_filters entry on a deep hook: that job went uncounted */
	ERR_GRE_UNTRACKED = 10,   /* a GRE tunnel's sequence numbers could not be tracked (gre_seq full) */
	N_ERRORS = 11,
};

/* How a tunnelled packet was counted (tunnel_percpu): by the packet inside,
 * per tunnel kind, or as the outer packet. */
enum telegen_tun {
	TUN_KIND_NONE = 0,      /* GRE we did not open (malformed or unknown payload): counted as outer */
	TUN_KIND_ERSPAN1 = 1,   /* GRE 0x88BE without sequence number */
	TUN_KIND_ERSPAN2 = 2,   /* GRE 0x88BE + ERSPAN II header */
	TUN_KIND_ERSPAN3 = 3,   /* GRE 0x22EB + ERSPAN III header */
	TUN_KIND_GRE_ETH = 4,   /* GRE 0x6558: Ethernet inside */
	TUN_KIND_GRE_IP = 5,    /* GRE 0x0800/0x86DD: IP inside */
	N_TUN_KINDS = 8,
};

struct counters {
	__u64 packets;
	__u64 bytes;
	__u64 hist[HIST_BUCKETS];
};

/* A counter labelled by its owner (ifindex or job slot) and class, so that
 * `bpftool map dump` reads on its own. The labels are written by the probe. */
struct labeled_counters {
	__u32 owner;
	__u32 proto;
	struct counters c;
};

/* Layout 2: the classifier's one counter set, per interface slot, hook
 * direction and class: key = (slot * 2 + dir) * N_CLASSES + class. Never
 * zeroed while pinned: the probe derives every figure from differences
 * (an interface's from its slot's base, a plain job's from its base). */
#define HOOK_KEY(slot, dir, cls) (((slot) * 2 + (dir)) * N_CLASSES + (cls))
/* hook_errors_percpu: key = (slot * 2 + dir) * N_JOB_ERRORS + error. */
#define HOOK_ERR_KEY(slot, dir, err) (((slot) * 2 + (dir)) * N_JOB_ERRORS + (err))

/* Hot-path configuration of one interface, keyed by ifindex. */
struct if_cfg {
	__u32 slot;                           /* hook_stats_percpu slot */
	__u8 valid;
	__u8 njobs[2];                        /* per direction */
	__u8 deep;                            /* bit per direction: a job there filters, tracks flows or captures */
	__u8 jobs[2][MAX_JOBS_PER_HOOK];      /* job slots per direction */
};

/* ---- Per-job filters and flows (issue 7). Only hooks whose if_cfg.deep
 * bit is set pay for them. ---- */

#define FILTER_MAX_PORTS 8
#define FILTER_MAX_CIDRS 4
#define FLOW_TABLE_DEFAULT 1024

enum filter_flags {
	F_PROTO = 1 << 0,
	F_SPORT = 1 << 1,
	F_DPORT = 1 << 2,
	F_SRC = 1 << 3,
	F_DST = 1 << 4,
	F_DSCP = 1 << 5,
	F_VLAN = 1 << 6,
	F_MATCH = 0x7f,     /* any of the above: the job filters */
	F_FLOWS = 1 << 8,   /* the job tracks flows (result_detail flows) */
	F_CAPTURE = 1 << 9, /* the job captures packets (result_detail pcaplike) */
	F_CAPTURE_OUTER = 1 << 10, /* ... the outer frame of a tunnel, not the one inside */
};

/* IPv4 prefixes use addr[0]/mask[0] (network order) and zeros elsewhere. */
struct cidr {
	__u32 addr[4];
	__u32 mask[4];
	__u8 family;        /* 4 or 6 */
	__u8 pad[3];
};

/* One job's filter, keyed by job slot; written by the probe before the job
 * is published in if_cfg. Lists match when any value does; fields AND. */
struct job_filter {
	__u32 flags;                        /* enum filter_flags */
	__u32 sample_rate;                  /* flows: one packet in N on average */
	__u64 dscp_mask;                    /* bit d: DSCP d matches */
	__u64 proto_mask[4];                /* bit p: IP protocol p matches */
	__u16 sport[FILTER_MAX_PORTS];      /* host order */
	__u16 dport[FILTER_MAX_PORTS];
	__u8 nsport, ndport, nsrc, ndst;
	__u16 vlan;
	__u16 snaplen;                      /* capture jobs: bytes kept of a packet */
	struct cidr src[FILTER_MAX_CIDRS];
	struct cidr dst[FILTER_MAX_CIDRS];
};

/* A flow: the key of the per-job flow tables. Ports in host order, 0 when
 * the packet has none. */
struct flow_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;        /* 4 or 6 */
	__u16 pad;
};

/* What the filters and flows look at in a packet (parse_facts). */
enum fact_flags {
	FACT_IP = 1 << 0,       /* an IPv4 or IPv6 header was read */
	FACT_PORTS = 1 << 1,    /* sport/dport are the packet's (TCP, UDP, SCTP) */
	FACT_VLAN = 1 << 2,
	FACT_CSUM_BAD = 1 << 3, /* IPv4 header checksum does not verify */
};

struct facts {
	struct flow_key k;
	__u8 dscp;
	__u8 flags;             /* enum fact_flags */
	__u16 vlan;
};

struct flow_val {
	__u64 packets;      /* sampled packets of this flow */
	__u64 bytes;
};

/* Errors counted per job (job_aux.err): enum telegen_err's packet parse
 * errors (0-7: only those ever reach a job), plus the IPv4 header checksum,
 * checked only on deep hooks. Fixed numbers: job_aux is pinned, and the
 * errors about the agent's own maps (8, 9) are global only. */
#define ERR_IPV4_CSUM 8
#define N_JOB_ERRORS 9

/* Per job, per CPU: its errors and its flow sampling state. */
struct job_aux {
	__u64 err[N_JOB_ERRORS];
	__u64 sampled;      /* packets that went through the flow table */
	__u64 flows_new;    /* flows inserted (evictions = inserted - present) */
	__u64 flow_fail;    /* flow table updates the kernel refused */
	__u32 countdown;    /* packets until the next sampled one */
	__u32 pad;
};

/* ---- Loss upstream of the classifier (coverage): GRE sequence numbers
 * per tunnel, as seen on one interface. ---- */

/* An array, not a hash: the lookup is inlined by the JIT (a hash of the
 * 24-byte key cost ~30 ns a mirrored packet). A tunnel takes the entry its
 * key hashes to; one whose entry another holds is counted untracked. */
#define GRE_SEQ_ENTRIES 256

struct gre_seq_key {
	__u32 src[4];       /* outer source address; IPv4 in src[0] */
	__u32 key;          /* GRE key (0 when absent) */
	__u32 ifindex;      /* where the tunnel's packets arrive */
};

struct gre_seq_val {
	__u64 packets;      /* packets with a sequence number */
	__u64 lost;         /* sequence numbers skipped (a late one gives one back) */
	__u64 late;         /* packets older than the newest seen (reordered or duplicated) */
	__u32 last;         /* newest sequence number seen */
	__u32 resync;       /* set by the probe when a hook is attached again:
			     * numbers passed unseen meanwhile; the next
			     * packet sets `last` and counts no gap */
};

/* One entry of gre_seq: free while k.ifindex is 0. */
struct gre_seq_entry {
	struct gre_seq_key k;
	struct gre_seq_val v;
};

/* ---- Probe-only state, pinned beside the counters so that it has exactly
 * their lifetime: a probe restart adopts it, a reboot clears both. ---- */

struct meta {
	__u64 created_unix_ns; /* when these pins were created: counter epoch */
	__u32 layout_version;
	__u32 pad;
};

/* One tc hook (ingress or egress) of an interface the probe attached to. */
struct hook_rec {
	__u8 attached;
	__u8 mode;      /* 1 = tcx (link pinned under links/), 2 = tc filter */
	__u16 generation; /* what the attached program can do (0: no deep hooks) */
	__u32 priority; /* tc filter priority and handle, for re-adoption */
	__u32 handle;
};

struct iface_rec {
	__u32 ifindex;
	__u8 used;
	__u8 created_qdisc; /* we created clsact, so we may remove it (if empty) */
	__u16 pad;
	char name[16];
	__u64 start_unix_ns; /* when this slot's counters were zeroed */
	struct hook_rec hook[2];
};

struct job_rec {
	__u8 id[16];
	char port[16];
	char iface[16];
	__u32 ifindex;
	__u8 state;       /* 0 free, 1 starting, 2 running, 3 stopping, 4 stopped, 5 expired, 6 failed */
	__u8 direction;   /* bit 0 ingress, bit 1 egress */
	__u8 mirror_mode; /* 1 erspan, 2 sonic, 3 direct, 4 placeholder */
	__u8 attach_mode; /* 0 none, 1 tcx, 2 tc */
	__u8 otlp_export;
	__u8 result_detail; /* 0 summary, 1 flows */
	__u8 ending;      /* a stopping job's final state (a state code; 0: stopped) */
	__u8 mirror_scope; /* sonic jobs: 1 acl (the switch selects), 2 port; 0 otherwise */
	__u32 duration_sec;
	__u32 sample_rate;
	__u32 pad2;
	__u64 seq;        /* creation order, to recycle the oldest finished slot */
	__u64 started_unix_ns;
	__u64 expires_unix_ns;
	__u64 stopped_unix_ns;
	char error[160];
	char fallback[160];
};

/* A hook's figures at one moment: what the probe subtracts (layout 2). */
struct hook_counts {
	struct counters c[N_CLASSES];
	__u64 err[N_JOB_ERRORS];
};

/* The base of an interface slot's series (ifaces): its hooks' counts when
 * the slot was taken. */
struct iface_base {
	struct hook_counts dir[2];
};

/* How a plain job (one without a filter) is counted without a counter of
 * its own: for each direction in `valid`, its hook's counts now minus
 * `base` (taken when the job was published on the hook), plus `folded`
 * (what earlier hooks of the job counted, added when it left them), plus
 * its job_stats_percpu and job_aux errors (zero, or what a layout-1
 * classifier counted before the hook was upgraded). A job's coverage
 * figures work the same way: cov_* are [GRE packets, lost, late on the
 * job's interface (gre_seq), failed exports (export_recs[0])]. */
struct job_base {
	__u32 valid;        /* bit per direction: base[dir] holds */
	__u32 if_slot;
	struct hook_counts base[2];
	struct hook_counts folded;
	__u64 cov_base[4];
	__u64 cov_folded[4];
	__u8 cov_valid;
	__u8 pad[7];
};

/* Exports the exporters reported failed (export_recs): entry 0 holds the
 * total, 1.. the last total each exporter instance reported, so that a
 * report repeated (or resent after a probe restart) adds nothing. */
#define EXPORT_RECS 9
struct export_rec {
	__u8 instance[16];
	__u64 failed;
	__u64 updated_unix_ns;
};

/* Why a job's mirror has the scope it has (job_rec.mirror_scope), and
 * whatever else the probe notes about a job in prose. Probe-only; a map of
 * its own so that job_rec keeps the layout earlier probes pinned. */
struct job_note {
	char scope_reason[192];
};

/* ---- Packet capture (issue 18): a capture job's packets, cut at its
 * snaplen, go to one ring buffer the probe reads and writes as pcapng. ---- */

#define CAPTURE_SNAP_MAX 9216
#define CAPTURE_RING_BYTES (8 << 20)
/* capture_limits: the probe-wide limit, after the jobs' slots. */
#define CAPTURE_PROBE_SLOT MAX_JOB_SLOTS
/* A pcapng enhanced packet block without its data: what a captured packet
 * costs in the file besides its (4-byte padded) bytes. */
#define CAPTURE_EPB_OVERHEAD 32

/* A ring record: this header, then cap_len bytes of the frame. */
struct capture_hdr {
	__u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 slot;
	__u32 orig_len;     /* the frame's length */
	__u32 cap_len;
	__u8 dir;           /* the hook: DIR_INGRESS or DIR_EGRESS */
	__u8 outer;         /* the frame is the tunnel's outer one */
	__u16 pad;
};

/* The caps and rate of one job's capture (by slot) or of the probe's
 * (CAPTURE_PROBE_SLOT). The probe writes the limits; captures count under
 * the lock. tokens: 1e9 a packet, at most one second's worth. */
struct capture_limit {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 max_packets;  /* 0: no cap */
	__u64 max_bytes;    /* pcapng bytes (EPB overhead and padded data); 0: no cap */
	__u64 rate_pps;     /* 0: no rate limit */
	__u64 tokens;
	__u64 last_ns;
	__u64 packets;
	__u64 bytes;
};

/* Per job, per CPU: packets a capture let go, by why; never silent. */
struct capture_drops {
	__u64 ring_full;
	__u64 rate_limited;
	__u64 cap_reached;
	__u64 copy_failed;
};

#endif
