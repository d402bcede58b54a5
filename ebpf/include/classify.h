/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Protocol class of a packet: ipv4, ipv6, icmp6 (IPv6 whose upper layer is
 * ICMPv6) or other. Exclusive: an ICMPv6 packet is icmp6, not also ipv6.
 * A GRE/ERSPAN packet is classified by the packet inside it (tunnel.h). */
#ifndef TELEGEN_CLASSIFY_H
#define TELEGEN_CLASSIFY_H

#include <linux/ip.h>
#include "parse.h"
#include "tunnel.h"

#define IP_OFFSET_MASK 0x1fff

/* What the classifier decided for one packet, and where the counted
 * packet's L3 header is (for the filters and flows of deep hooks). */
struct verdict {
	__u32 cls;
	__u32 inner;    /* offset of the counted packet inside a tunnel, 0 if none */
	__u32 tun;      /* enum telegen_tun, or N_TUN_KINDS when not GRE at all */
	__u32 l3off;
	__be16 l3proto; /* ethertype of the counted packet; 0 if unknown */
	__u16 vlan;     /* outermost tag found in the data */
	__u8 has_vlan;
};

/* Class of the L3 packet at `off` with ethertype `proto`. When `gre` is not
 * NULL, reports where a GRE header behind it starts (left 0 if none). */
static __always_inline __u32 classify_l3(struct __sk_buff *skb, void *data, void *end, __u32 off,
					 __be16 proto, int *err, __u32 *gre)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + (off & 0xff);
		if ((void *)(ip + 1) > end) {
			*err = ERR_TRUNCATED;
			return CLASS_IPV4;
		}
		/* Only a first fragment has the GRE header. */
		if (gre && ip->protocol == IPPROTO_GRE && !(ip->frag_off & bpf_htons(IP_OFFSET_MASK)))
			*gre = off + ((__u32)ip->ihl & 0xf) * 4;
		return CLASS_IPV4;
	}
	if (proto != bpf_htons(ETH_P_IPV6))
		return CLASS_OTHER;

	struct ipv6hdr *ip6 = data + (off & 0xff);
	if ((void *)(ip6 + 1) > end) {
		*err = ERR_TRUNCATED;
		return CLASS_IPV6;
	}
	__u8 nh = ip6->nexthdr;
	if (nh == IPPROTO_ICMPV6)
		return CLASS_ICMP6;
	if (gre && nh == IPPROTO_GRE) {
		*gre = off + sizeof(struct ipv6hdr);
		return CLASS_IPV6;
	}
	if (!ipv6_is_ext(nh))
		return CLASS_IPV6;
	return ipv6_upper(skb, off & 0xff, nh, err, NULL) == IPPROTO_ICMPV6 ? CLASS_ICMP6 : CLASS_IPV6;
}

/* Class of the Ethernet frame at `l2off`; records its L3 header in `v`. */
static __always_inline __u32 classify_frame(struct __sk_buff *skb, void *data, void *end,
					    __u32 l2off, int *err, __u32 *gre, struct verdict *v)
{
	struct l3 l3 = parse_l2(data + (l2off & 0xff), end);

	if (l3.truncated) {
		*err = ERR_TRUNCATED;
		v->l3proto = 0;
		return CLASS_OTHER;
	}
	v->l3off = l2off + l3.off;
	v->l3proto = l3.proto;
	v->vlan = l3.vlan;
	v->has_vlan = l3.has_vlan;
	return classify_l3(skb, data, end, l2off + l3.off, l3.proto, err, gre);
}

static __always_inline struct verdict classify(struct __sk_buff *skb, int *err)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct verdict v = { .cls = CLASS_OTHER, .tun = N_TUN_KINDS };
	__u32 gre = 0;

	v.cls = classify_frame(skb, data, end, 0, err, &gre, &v);
	if (!gre)
		return v;

	__u32 inner = 0, kind = TUN_KIND_NONE;
	__be16 inner_proto = 0;
	int payload = gre_payload(data, end, gre, &inner, &inner_proto, &kind, err);
	v.tun = kind;
	if (payload == TUN_NONE)
		return v; /* counted as the outer packet; *err says why */

	/* The mirrored packet itself: no further tunnel is opened. */
	if (payload == TUN_ETH) {
		v.cls = classify_frame(skb, data, end, inner, err, NULL, &v);
	} else {
		v.l3off = inner;
		v.l3proto = inner_proto;
		v.has_vlan = 0;
		v.cls = classify_l3(skb, data, end, inner, inner_proto, err, NULL);
	}
	v.inner = inner;
	return v;
}

#endif
