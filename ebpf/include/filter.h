/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-job filters: the facts of the counted packet (addresses, upper-layer
 * protocol and ports, DSCP, VLAN), read once per packet and only on hooks
 * where a job filters or tracks flows, and the match of one job's filter
 * against them. Reads only; never changes the skb. */
#ifndef TELEGEN_FILTER_H
#define TELEGEN_FILTER_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include "classify.h"

/* The IPv4 header checksum of a 20-byte header (no options: options are
 * rare, and checking them would cost a variable-length loop on every
 * packet). The ones'-complement sum over a correct header is 0xffff. */
static __always_inline int ipv4_csum_bad(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum != 0xffff;
}

static __always_inline int has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static __always_inline void parse_facts(struct __sk_buff *skb, const struct verdict *v,
					struct facts *x)
{
	/* Keeps clang from reusing a spilled skb+offset from classify(): the
	 * verifier refuses a context access through a modified pointer. */
	barrier_var(skb);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 off = v->l3off, l4 = 0;

	__builtin_memset(x, 0, sizeof(*x));
	/* The outermost tag: the one the kernel took into skb->vlan_tci, else
	 * the first in the data. Inside a tunnel, the mirrored frame's own. */
	if (!v->inner && skb->vlan_present) {
		x->flags |= FACT_VLAN;
		x->vlan = skb->vlan_tci & 0xfff;
	} else if (v->has_vlan) {
		x->flags |= FACT_VLAN;
		x->vlan = v->vlan;
	}

	if (v->l3proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + (off & 0xff);
		if ((void *)(ip + 1) > end)
			return;
		x->flags |= FACT_IP;
		x->k.family = 4;
		x->k.proto = ip->protocol;
		x->dscp = ip->tos >> 2;
		x->k.src[0] = ip->saddr;
		x->k.dst[0] = ip->daddr;
		if (ip->ihl == 5 && ipv4_csum_bad(ip))
			x->flags |= FACT_CSUM_BAD;
		if (!(ip->frag_off & bpf_htons(IP_OFFSET_MASK)))
			l4 = off + ((__u32)ip->ihl & 0xf) * 4;
	} else if (v->l3proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + (off & 0xff);
		if ((void *)(ip6 + 1) > end)
			return;
		x->flags |= FACT_IP;
		x->k.family = 6;
		x->dscp = ((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4)) >> 2;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			x->k.src[i] = ip6->saddr.in6_u.u6_addr32[i];
			x->k.dst[i] = ip6->daddr.in6_u.u6_addr32[i];
		}
		__u8 nh = ip6->nexthdr;
		l4 = off + sizeof(struct ipv6hdr);
		if (ipv6_is_ext(nh)) {
			int err = -1;
			nh = ipv6_upper(skb, off & 0xff, nh, &err, &l4);
		}
		x->k.proto = nh;
	} else {
		return;
	}

	if (!l4 || !has_ports(x->k.proto))
		return;
	__be16 ports[2];
	__u16 *p = data + (l4 & 0x3fff);
	if ((void *)(p + 2) <= end) {
		ports[0] = p[0];
		ports[1] = p[1];
	} else if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0) {
		return;
	}
	x->k.sport = bpf_ntohs(ports[0]);
	x->k.dport = bpf_ntohs(ports[1]);
	x->flags |= FACT_PORTS;
}

static __always_inline int port_in(const __u16 *list, __u8 n, __u16 port)
{
	int hit = 0;
#pragma unroll
	for (int i = 0; i < FILTER_MAX_PORTS; i++)
		if (i < n && list[i] == port)
			hit = 1;
	return hit;
}

static __always_inline int cidr_hit(const struct cidr *c, const __u32 *a, __u8 family)
{
	__u32 d = ((a[0] ^ c->addr[0]) & c->mask[0]) | ((a[1] ^ c->addr[1]) & c->mask[1]) |
		  ((a[2] ^ c->addr[2]) & c->mask[2]) | ((a[3] ^ c->addr[3]) & c->mask[3]);
	return c->family == family && !d;
}

/* Written out, not a loop: fixed offsets, and no bounded-loop walk for the
 * verifier. */
static __always_inline int cidr_in(const struct cidr *list, __u8 n, const __u32 *addr, __u8 family)
{
	return cidr_hit(&list[0], addr, family) ||
	       (n > 1 && (cidr_hit(&list[1], addr, family) ||
			  (n > 2 && (cidr_hit(&list[2], addr, family) ||
				     (n > 3 && cidr_hit(&list[3], addr, family))))));
}

/* Whether the packet with facts `x` matches filter `f`. Inlined, as every
 * function of the programs: no BPF-to-BPF calls (see deep_progs). */
static __always_inline int filter_match(const struct job_filter *f, const struct facts *x)
{
	__u32 flags = f->flags;

	if (flags & F_VLAN && (!(x->flags & FACT_VLAN) || x->vlan != f->vlan))
		return 0;
	if (!(flags & (F_PROTO | F_SPORT | F_DPORT | F_SRC | F_DST | F_DSCP)))
		return 1;
	if (!(x->flags & FACT_IP))
		return 0;
	if (flags & F_PROTO && !(f->proto_mask[(x->k.proto >> 6) & 3] & (1ULL << (x->k.proto & 63))))
		return 0;
	if (flags & F_DSCP && !(f->dscp_mask & (1ULL << (x->dscp & 63))))
		return 0;
	if (flags & (F_SPORT | F_DPORT) && !(x->flags & FACT_PORTS))
		return 0;
	if (flags & F_SPORT && !port_in(f->sport, f->nsport, x->k.sport))
		return 0;
	if (flags & F_DPORT && !port_in(f->dport, f->ndport, x->k.dport))
		return 0;
	if (flags & F_SRC && !cidr_in(f->src, f->nsrc, x->k.src, x->k.family))
		return 0;
	if (flags & F_DST && !cidr_in(f->dst, f->ndst, x->k.dst, x->k.family))
		return 0;
	return 1;
}

#endif
