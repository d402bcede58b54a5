/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Coverage: what a job did not see. Mirrored packets lost upstream of the
 * classifier (the switch's CoPP, the network between the ASIC and the
 * CPU) leave gaps in the GRE sequence numbers of their tunnel: ERSPAN II
 * always numbers its packets, and Linux' erspan netdevs number theirs
 * (oseq). Tracked per tunnel (outer source, GRE key) and interface. */
#ifndef TELEGEN_COVERAGE_H
#define TELEGEN_COVERAGE_H

#include <bpf/bpf_endian.h>
#include "maps.h"
#include "tunnel.h"

/* Track the sequence number of the GRE header at `gre` of the packet whose
 * outer IP header is at `l3` (IPv6 when `v6`). A global function: verified
 * once on its own, so that the classifier's paths do not multiply. Plain
 * adds on a shared entry: two CPUs racing on one tunnel may miscount a
 * packet, which the lost figure's order of magnitude survives. */
__attribute__((noinline)) int gre_seq_track(struct __sk_buff *skb, __u32 l3, __u32 gre, __u32 v6)
{
	struct gre_seq_key k = {};
	__u8 h[4];
	__be32 w;

	if (!skb || bpf_skb_load_bytes(skb, gre & 0xff, h, 4) < 0)
		return 0;
	__u16 flags = ((__u16)h[0] << 8) | h[1];
	if (!(flags & GRE_SEQ))
		return 0;
	__u32 off = (gre & 0xff) + 4;
	if (flags & GRE_CSUM)
		off += 4;
	if (flags & GRE_KEY) {
		if (bpf_skb_load_bytes(skb, off, &w, 4) < 0)
			return 0;
		k.key = bpf_ntohl(w);
		off += 4;
	}
	if (bpf_skb_load_bytes(skb, off, &w, 4) < 0)
		return 0;
	__u32 seq = bpf_ntohl(w);
	int rc = v6 ? bpf_skb_load_bytes(skb, (l3 & 0xff) + 8, k.src, 16)
		    : bpf_skb_load_bytes(skb, (l3 & 0xff) + 12, k.src, 4);
	if (rc < 0)
		return 0;
	k.ifindex = skb->ifindex;

	struct gre_seq_val *s = bpf_map_lookup_elem(&gre_seq, &k);
	if (!s) {
		struct gre_seq_val fresh = { .packets = 1, .last = seq };
		if (bpf_map_update_elem(&gre_seq, &k, &fresh, BPF_NOEXIST) < 0) {
			__u32 code = ERR_GRE_UNTRACKED;
			__u64 *e = bpf_map_lookup_elem(&errors_percpu, &code);
			if (e)
				*e += 1;
		}
		return 0;
	}
	s->packets += 1;
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
	return 1;
}

#endif
