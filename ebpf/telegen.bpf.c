// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* telegen-sonic tc classifier: counts every packet on the hooks it is
 * attached to, per class, per interface and per job. It never drops or
 * changes a packet: it always returns TC_ACT_UNSPEC, so the programs after it
 * on the hook (TCX or clsact) run as if it were not there. Layout 2: one
 * counter set per packet, its hook's (count.h). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "classify.h"
#include "count.h"
#include "coverage.h"

/* Bench variants only (integration-tests/build.rs, `make bench`'s
 * breakdown): TELEGEN_BENCH_STAGE 1 stops after classify(), 2 after the
 * interface config lookup (count.h); TELEGEN_BENCH_NO_GRE_TRACK leaves
 * out gre_seq_track. The probe's object is built with neither. */
#ifndef TELEGEN_BENCH_STAGE
#define TELEGEN_BENCH_STAGE 0
#endif

static __always_inline int handle(struct __sk_buff *skb, __u32 dir)
{
	int err = -1;

#ifndef TELEGEN_BENCH_NO_GRE_TRACK
	gre_seq_track(skb);
#endif
	struct verdict v = classify(skb, &err);
#if TELEGEN_BENCH_STAGE == 1
	asm volatile("" ::"r"(v.cls), "r"(v.l3off), "r"(err));
	return TC_ACT_UNSPEC;
#endif

	if (err >= 0)
		count_error(err);
	if (v.tun < N_TUN_KINDS)
		count_tunnel(v.tun);
	/* Wire length: an ingress VLAN tag the kernel moved to skb->vlan_tci
	 * still crossed the wire. Inside a tunnel: the mirrored packet's own
	 * length, without the encapsulation. */
	__u32 len = v.inner ? skb->len - v.inner : skb->len + (skb->vlan_present ? 4 : 0);
	count_packet(skb, dir, &v, len, err);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int telegen_ingress(struct __sk_buff *skb)
{
	return handle(skb, DIR_INGRESS);
}

SEC("classifier")
int telegen_egress(struct __sk_buff *skb)
{
	return handle(skb, DIR_EGRESS);
}

/* Tail-called by the two above on hooks where a job filters, tracks flows
 * or captures (count.h): the per-job filters, counters, flows, captures. */
SEC("classifier")
int telegen_deep(struct __sk_buff *skb)
{
	count_deep(skb);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
