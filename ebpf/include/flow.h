/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-job flow tracking: which packets are sampled, and the update of the
 * job's LRU flow table. Counters stay exact for every packet; only the flow
 * table sees one packet in sample_rate. */
#ifndef TELEGEN_FLOW_H
#define TELEGEN_FLOW_H

#include "filter.h"
#include "maps.h"

#ifndef EEXIST
#define EEXIST 17
#endif

/* The gap to the next sampled packet: uniform in [1, 2N-1], mean N. A fixed
 * gap of N would be cheaper to reason about but locks onto periodic
 * traffic (N flows sent round-robin would show one flow); the random gap
 * costs one helper call per sampled packet, not per packet. */
static __always_inline __u32 next_gap(__u32 rate)
{
	if (rate <= 1)
		return 1;
	return 1 + bpf_get_prandom_u32() % (2 * rate - 1);
}

/* Add one sampled packet to the job's flow table. New flows are counted, so
 * the probe can tell evictions (inserted - present) from table size. */
static __always_inline void flow_track(__u32 slot, const struct flow_key *k, __u32 len,
				  struct job_aux *aux)
{
	void *tbl = bpf_map_lookup_elem(&job_flows, &slot);
	if (!tbl) {
		aux->flow_fail += 1;
		return;
	}
	struct flow_val *fv = bpf_map_lookup_elem(tbl, k);
	if (!fv) {
		struct flow_val nv = { .packets = 1, .bytes = len };
		long r = bpf_map_update_elem(tbl, k, &nv, BPF_NOEXIST);
		if (r == 0) {
			aux->flows_new += 1;
			return;
		}
		/* Another CPU inserted it first: add to theirs. */
		fv = r == -EEXIST ? bpf_map_lookup_elem(tbl, k) : NULL;
		if (!fv) {
			aux->flow_fail += 1;
			return;
		}
	}
	__sync_fetch_and_add(&fv->packets, 1);
	__sync_fetch_and_add(&fv->bytes, len);
}

/* Whether this packet is one the job samples (per-CPU countdown). */
static __always_inline int flow_sample(struct job_aux *aux, __u32 rate)
{
	if (aux->countdown > 1) {
		aux->countdown -= 1;
		return 0;
	}
	aux->countdown = next_gap(rate);
	aux->sampled += 1;
	return 1;
}

#endif
