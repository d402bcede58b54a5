/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Protocol class of a packet: ipv4, ipv6, icmp6 (IPv6 whose upper layer is
 * ICMPv6) or other. Exclusive: an ICMPv6 packet is icmp6, not also ipv6. */
#ifndef TELEGEN_CLASSIFY_H
#define TELEGEN_CLASSIFY_H

#include "parse.h"

static __always_inline __u32 classify(struct __sk_buff *skb, int *err)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct l3 l3 = parse_l2(data, end);

	if (l3.truncated) {
		*err = ERR_TRUNCATED;
		return CLASS_OTHER;
	}
	if (l3.proto == bpf_htons(ETH_P_IP))
		return CLASS_IPV4;
	if (l3.proto != bpf_htons(ETH_P_IPV6))
		return CLASS_OTHER;

	/* l3.off <= 22 by construction; the mask lets the verifier see it. */
	struct ipv6hdr *ip6 = data + (l3.off & 0x1f);
	if ((void *)(ip6 + 1) > end) {
		*err = ERR_TRUNCATED;
		return CLASS_IPV6;
	}
	__u8 nh = ip6->nexthdr;
	if (nh == IPPROTO_ICMPV6)
		return CLASS_ICMP6;
	if (!ipv6_is_ext(nh))
		return CLASS_IPV6;
	return ipv6_upper(skb, l3.off & 0x1f, nh, err) == IPPROTO_ICMPV6 ? CLASS_ICMP6 : CLASS_IPV6;
}

#endif
