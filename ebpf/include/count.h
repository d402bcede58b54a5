/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counting: the size bucket, one counter update, and the fan-out to the
 * global, per-interface and per-job counters. Per-CPU values: plain adds. */
#ifndef TELEGEN_COUNT_H
#define TELEGEN_COUNT_H

#include "maps.h"

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

static __always_inline void count_packet(__u32 ifindex, __u32 dir, __u32 cls, __u32 len)
{
	__u32 bucket = size_bucket(len);

	struct counters *g = bpf_map_lookup_elem(&stats_percpu, &cls);
	if (g)
		bump(g, len, bucket);
	else
		count_error(ERR_GLOBAL);

	struct if_cfg *cfg = lookup_ifcfg(ifindex);
	if (!cfg || !cfg->valid) {
		count_error(ERR_NO_IFCFG);
		return;
	}
	__u32 key = cfg->slot * N_CLASSES + cls;
	struct labeled_counters *ic = bpf_map_lookup_elem(&if_stats_percpu, &key);
	if (ic)
		bump(&ic->c, len, bucket);
	else
		count_error(ERR_IF_SLOT);

	__u32 n = cfg->njobs[dir & 1];
	for (__u32 i = 0; i < MAX_JOBS_PER_HOOK; i++) {
		if (i >= n)
			break;
		key = (__u32)cfg->jobs[dir & 1][i] * N_CLASSES + cls;
		struct labeled_counters *jc = bpf_map_lookup_elem(&job_stats_percpu, &key);
		if (jc)
			bump(&jc->c, len, bucket);
		else
			count_error(ERR_JOB_SLOT);
	}
}

#endif
