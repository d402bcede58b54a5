/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counting (layout 2): one counter set per packet, its hook's (interface
 * slot, direction, class); the global, per-interface and plain jobs'
 * figures are derived from it by the probe. Per-CPU values: plain adds.
 * Jobs on a "deep" hook (one of them filters, tracks flows or captures) get
 * the packet's facts, and each such job its filter, its own counters and
 * errors (filtered jobs), its flow sampling and its capture. */
#ifndef TELEGEN_COUNT_H
#define TELEGEN_COUNT_H

#include "maps.h"
#include "flow.h"
#include "capture.h"

static __always_inline __u32 size_bucket(__u32 len)
{
	if (len <= 64)
		return 0;
	if (len <= 128)
		return 1;
	if (len <= 256)
		return 2;
	if (len <= 512)
		return 3;
	if (len <= 1024)
		return 4;
	if (len <= 1518)
		return 5;
	if (len <= 4096)
		return 6;
	if (len <= 9216)
		return 7;
	return 8;
}

static __always_inline void count_error(__u32 code)
{
	__u64 *e = bpf_map_lookup_elem(&errors_percpu, &code);
	if (e)
		*e += 1;
}

static __always_inline void count_tunnel(__u32 kind)
{
	__u64 *t = bpf_map_lookup_elem(&tunnel_percpu, &kind);
	if (t)
		*t += 1;
}

static __always_inline void bump(struct counters *c, __u32 len, __u32 bucket)
{
	c->packets += 1;
	c->bytes += len;
	if (bucket < HIST_BUCKETS)
		c->hist[bucket] += 1;
}

static __always_inline struct if_cfg *lookup_ifcfg(__u32 ifindex)
{
	if (ifindex < IFCFG_ARRAY_SIZE) {
		struct if_cfg *c = bpf_map_lookup_elem(&ifcfg, &ifindex);
		/* Keeps clang from merging the two lookups into one call with a
		 * branch-dependent map, which the verifier cannot inline: that
		 * cost ~20 ns per packet. */
		asm volatile("" : "+r"(c));
		return c;
	}
	return bpf_map_lookup_elem(&ifcfg_hash, &ifindex);
}

static __always_inline void bump_job(__u32 slot, __u32 cls, __u32 len, __u32 bucket)
{
	__u32 key = slot * N_CLASSES + cls;
	struct labeled_counters *jc = bpf_map_lookup_elem(&job_stats_percpu, &key);
	if (jc)
		bump(&jc->c, len, bucket);
	else
		count_error(ERR_JOB_SLOT);
}

/* A parse error of a packet, in its hook's errors (plain jobs' errors). */
static __always_inline void count_hook_error(__u32 ifslot, __u32 d, __u32 err)
{
	__u32 key = HOOK_ERR_KEY(ifslot, d, err);
	__u64 *e = bpf_map_lookup_elem(&hook_errors_percpu, &key);
	if (e)
		*e += 1;
}

/* Deep hooks: the classifier hands the packet to telegen_deep (maps.h says
 * why a tail call) with what it decided packed in skb->cb, which is the
 * qdisc's scratch area and travels with the skb through the tail call:
 *   cb[0] L3 offset (bits 0-7), the offset of the packet inside a tunnel
 *         (8-15; 0: none), ethertype as read (16-31)
 *   cb[1] class (0-3), tunnel kind (4-6, enum telegen_tun; 0 also when
 *         none), enum telegen_err + 1 (8-12), egress hook (13), VLAN
 *         tag in the data (14), inside a tunnel (15), VLAN id (16-27), jobs
 *         on the hook (28-31)
 *   cb[2] counted length (bits 0-23), interface slot (24-31)
 *   cb[3], cb[4] the hook's job slots, a byte each (if_cfg.jobs[dir]), so
 *         the deep program need not look the interface up again
 * The layout is a contract between the two programs of one layout: an
 * attached classifier of one probe version may reach the deep program of
 * the next of the same layout (deep_progs_v2). */
#define DEEP_PROG 0

static __always_inline void hand_to_deep(struct __sk_buff *skb, const struct verdict *v,
					 const struct if_cfg *cfg, __u32 d, __u32 len, int err)
{
	const __u8 *jobs = cfg->jobs[d & 1];

	/* No branch here: every one multiplies the classifier's paths. */
	skb->cb[0] = (v->l3off & 0xff) | ((v->inner & 0xff) << 8) | ((__u32)v->l3proto << 16);
	skb->cb[1] = (v->cls & 0xf) | ((v->tun & 0x7) << 4) | ((((__u32)(err + 1)) & 0x1f) << 8) |
		     ((d & 1) << 13) |
		     ((v->has_vlan & 1) << 14) | ((v->inner != 0) << 15) |
		     (((__u32)v->vlan & 0xfff) << 16) | (((__u32)cfg->njobs[d & 1] & 0xf) << 28);
	skb->cb[2] = (len & 0xffffff) | (cfg->slot << 24);
	skb->cb[3] = jobs[0] | (__u32)jobs[1] << 8 | (__u32)jobs[2] << 16 | (__u32)jobs[3] << 24;
	skb->cb[4] = jobs[4] | (__u32)jobs[5] << 8 | (__u32)jobs[6] << 16 | (__u32)jobs[7] << 24;
	bpf_tail_call(skb, &deep_progs_v2, DEEP_PROG);
	/* Only reached when the deep program is missing: jobs uncounted. */
	count_error(ERR_DEEP_MISSING);
}

/* The jobs of a deep hook: the packet's facts once, then each job's filter,
 * counters, errors and flow sampling. A job without a filter is counted
 * from its hook's series: here it only samples flows or captures. */
static __always_inline void count_deep(struct __sk_buff *skb)
{
	__u32 l3 = skb->cb[0], pkt = skb->cb[1], len = skb->cb[2] & 0xffffff;
	__u32 ifslot = skb->cb[2] >> 24;
	struct verdict v = {
		.cls = pkt & 0xf,
		.inner = (pkt >> 15) & 1,
		.l3off = l3 & 0xff,
		.l3proto = l3 >> 16,
		.vlan = (pkt >> 16) & 0xfff,
		.has_vlan = (pkt >> 14) & 1,
	};
	__u32 err1 = (pkt >> 8) & 0x1f;
	/* The frame a capture takes inside a tunnel: an Ethernet one only
	 * (IP in GRE has none: the outer frame then). */
	__u32 inner_eth = ((pkt >> 4) & 0x7) == TUN_KIND_GRE_IP ? 0 : (l3 >> 8) & 0xff;
	__u32 dir = (pkt >> 13) & 1;
	__u32 n = pkt >> 28;
	__u64 slots = (__u64)skb->cb[4] << 32 | skb->cb[3];
	__u32 bucket = size_bucket(len);

	__u32 zero = 0;
	struct facts *x = bpf_map_lookup_elem(&facts_scratch, &zero);
	if (!x)
		return;
	parse_facts(skb, &v, x);
	/* Read from map memory at each use, never kept in a register: a
	 * known value would split every state of the job loop in two (twice
	 * the verification). */
	if (x->flags & FACT_CSUM_BAD)
		count_hook_error(ifslot, dir, ERR_IPV4_CSUM);

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < MAX_JOBS_PER_HOOK; i++) {
		if (i >= n)
			break;
		__u32 slot = (slots >> (i * 8)) & 0xff;
		struct job_filter *f = bpf_map_lookup_elem(&job_filters, &slot);
		if (!f) {
			count_error(ERR_FILTER_LOOKUP);
			continue;
		}
		__u32 filtered = f->flags & F_MATCH;
		if (filtered && !filter_match(f, x)) {
			__u64 *rej = bpf_map_lookup_elem(&job_rejected_percpu, &slot);
			if (rej)
				*rej += 1;
			continue;
		}
		if (filtered)
			bump_job(slot, v.cls, len, bucket);
		int tracks = f->flags & F_FLOWS && x->flags & FACT_IP;
		int captures = f->flags & F_CAPTURE;
		int errs = filtered && (err1 || x->flags & FACT_CSUM_BAD);
		if (!errs && !tracks && !captures)
			continue;
		struct job_aux *aux = bpf_map_lookup_elem(&job_aux_percpu, &slot);
		if (!aux)
			continue;
		if (errs) {
			__u32 e = err1 - 1;
			barrier_var(e);
			if (e < N_JOB_ERRORS)
				aux->err[e] += 1;
			if (x->flags & FACT_CSUM_BAD)
				aux->err[ERR_IPV4_CSUM] += 1;
		}
		if (tracks && flow_sample(aux, f->sample_rate))
			flow_track(slot, &x->k, len, aux);
		/* result_detail is one of flows and pcaplike: the sampling
		 * state is the job's own either way. */
		if (captures && flow_sample(aux, f->sample_rate))
			capture(skb, slot, inner_eth, dir);
	}
}

static __always_inline void count_packet(struct __sk_buff *skb, __u32 dir, const struct verdict *v,
					 __u32 len, int err)
{
	struct if_cfg *cfg = lookup_ifcfg(skb->ifindex);
	if (!cfg || !cfg->valid) {
		count_error(ERR_NO_IFCFG);
		return;
	}
	__u32 d = dir & 1;
#if TELEGEN_BENCH_STAGE == 2
	asm volatile("" ::"r"(cfg->slot), "r"(d));
	return;
#endif
	__u32 key = HOOK_KEY(cfg->slot, d, v->cls);
	struct counters *c = bpf_map_lookup_elem(&hook_stats_percpu, &key);
	if (c)
		bump(c, len, size_bucket(len));
	else
		count_error(ERR_IF_SLOT);
	if (err >= 0)
		count_hook_error(cfg->slot, d, err);
	if (cfg->deep & (1 << d))
		hand_to_deep(skb, v, cfg, d, len, err);
}

#endif
