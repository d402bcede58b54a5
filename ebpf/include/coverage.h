/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Coverage: what a job did not see. Mirrored packets lost upstream of the
 * classifier (the switch's CoPP, the network between the ASIC and the
 * CPU) leave gaps in the GRE sequence numbers of their tunnel: ERSPAN II
 * always numbers its packets, and Linux' erspan netdevs number theirs
 * (oseq). Tracked per tunnel (outer source, GRE key) and interface. */
#ifndef TELEGEN_COVERAGE_H
#define TELEGEN_COVERAGE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "tunnel.h"

/* The outer headers of a GRE packet, parsed on their own at the start of
 * the classifier: there the verifier has one state, so this costs it a few
 * dozen paths; after classify() it had every parse path's state (twice
 * the classifier's verification), and as a function call it disables
 * precision tracking on kernels before 6.3 (verification no longer
 * finished on 5.10). An untagged or single-tagged frame, IPv4 (first
 * fragment) or IPv6 without extension headers: how a switch sends ERSPAN. */
static __always_inline void gre_seq_track(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct gre_seq_key k = {};
	__u32 off = sizeof(struct ethhdr);

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return;
	__be16 proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		__be16 *inner = data + off + 2;
		if ((void *)(inner + 1) > end)
			return;
		proto = *inner;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > end)
			return;
		if (ip->protocol != IPPROTO_GRE || ip->frag_off & bpf_htons(IP_OFFSET_MASK))
			return;
		k.src[0] = ip->saddr;
		off += ((__u32)ip->ihl & 0xf) * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		if ((void *)(ip6 + 1) > end)
			return;
		if (ip6->nexthdr != IPPROTO_GRE)
			return;
		__builtin_memcpy(k.src, &ip6->saddr, 16);
		off += sizeof(struct ipv6hdr);
	} else {
		return;
	}
	__u8 *g = data + (off & 0x7f);
	if ((void *)(g + 16) > end)
		return;
	__u16 flags = ((__u16)g[0] << 8) | g[1];
	if (!(flags & GRE_SEQ) || flags & (GRE_VERSION | GRE_ROUTING))
		return;
	/* The optional checksum, key and sequence words follow the first
	 * four bytes in this order: pick them among the next three words
	 * (constant offsets, inside the bound checked above). */
	__u32 w1 = bpf_ntohl(*(__be32 *)(g + 4));
	__u32 w2 = bpf_ntohl(*(__be32 *)(g + 8));
	__u32 w3 = bpf_ntohl(*(__be32 *)(g + 12));
	__u32 csum = (flags & GRE_CSUM) != 0, has_key = (flags & GRE_KEY) != 0;
	if (has_key)
		k.key = csum ? w2 : w1;
	__u32 at = csum + has_key;
	__u32 seq = at == 0 ? w1 : (at == 1 ? w2 : w3);
	k.ifindex = skb->ifindex;

	__u32 h = k.src[0] ^ k.src[1] ^ k.src[2] ^ k.src[3] ^ (k.key * 0x9e3779b1U) ^
		  (k.ifindex * 0x85ebca6bU);
	h ^= h >> 16;
	h = (h * 0x7feb352dU) >> 24;
	__u32 idx = h & (GRE_SEQ_ENTRIES - 1);
	struct gre_seq_entry *e = bpf_map_lookup_elem(&gre_seq, &idx);
	if (!e)
		return;
	if (e->k.ifindex == 0) {
		/* A free entry: the tunnel's first packet. */
		e->k = k;
		e->v.packets = 1;
		e->v.lost = 0;
		e->v.late = 0;
		e->v.last = seq;
		e->v.resync = 0;
		return;
	}
	if (e->k.ifindex != k.ifindex || e->k.key != k.key || e->k.src[0] != k.src[0] ||
	    e->k.src[1] != k.src[1] || e->k.src[2] != k.src[2] || e->k.src[3] != k.src[3]) {
		__u32 code = ERR_GRE_UNTRACKED;
		__u64 *err = bpf_map_lookup_elem(&errors_percpu, &code);
		if (err)
			*err += 1;
		return;
	}
	struct gre_seq_val *s = &e->v;
	/* Plain adds on an entry all CPUs share: a tunnel's packets normally
	 * reach one receive queue; a race miscounts a packet, never more. */
	s->packets += 1;
	if (s->resync) {
		s->last = seq;
		s->resync = 0;
		return;
	}
	__u32 ahead = seq - s->last;
	if (ahead != 0 && ahead < 0x80000000U) {
		s->lost += ahead - 1;
		s->last = seq;
	} else {
		/* Older than the newest: reordered (a gap counted lost that
		 * is now filled) or duplicated. */
		s->late += 1;
		if (ahead != 0 && s->lost)
			s->lost -= 1;
	}
}

#endif
