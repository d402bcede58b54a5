/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* GRE and ERSPAN: where the packet inside a tunnel starts. A switch ASIC
 * mirrors a port to the CPU inside ERSPAN; on a kernel without ip_gre nothing
 * decapsulates it, so the classifier opens the tunnel itself and counts the
 * inner packet. Reads only; never changes the skb. */
#ifndef TELEGEN_TUNNEL_H
#define TELEGEN_TUNNEL_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include "types.h"

#define GRE_CSUM 0x8000
#define GRE_ROUTING 0x4000
#define GRE_KEY 0x2000
#define GRE_SEQ 0x1000
#define GRE_VERSION 0x0007

/* From if_ether.h: ETH_P_ERSPAN 0x88BE is ERSPAN type II (version 1; type I
 * when GRE has no sequence number), ETH_P_ERSPAN2 0x22EB is type III
 * (version 2), ETH_P_TEB 0x6558 is Ethernet over GRE. */

#define ERSPAN2_HLEN 8
#define ERSPAN3_HLEN 12
#define ERSPAN3_SUBHLEN 8      /* platform-specific subheader, when O is set */

/* What follows a GRE header, if we know. */
enum tun_payload {
	TUN_NONE = 0,   /* not a tunnel, or one we could not open */
	TUN_ETH = 1,    /* an Ethernet frame at *inner */
	TUN_IP = 2,     /* an IPv4 or IPv6 packet at *inner, *inner_proto says which */
};

/* Parse the GRE header at `off` (and an ERSPAN header behind it). Sets the
 * offset of the inner packet and, for the caller's counters, the tunnel kind
 * (enum telegen_tun) or an error (enum telegen_err). */
static __always_inline int gre_payload(void *data, void *end, __u32 off, __u32 *inner,
				       __be16 *inner_proto, __u32 *kind, int *err)
{
	__u8 *g = data + (off & 0xff);
	if ((void *)(g + 4) > end) {
		*err = ERR_TUNNEL_MALFORMED;
		return TUN_NONE;
	}
	__u16 flags = ((__u16)g[0] << 8) | g[1];
	__u16 proto = ((__u16)g[2] << 8) | g[3];
	if (flags & GRE_VERSION) {
		/* PPTP's enhanced GRE (version 1): a tunnel, not a mirror session. */
		*err = ERR_TUNNEL_UNKNOWN;
		return TUN_NONE;
	}
	if (flags & GRE_ROUTING) {
		/* Source routing was deprecated by RFC 2784. */
		*err = ERR_TUNNEL_MALFORMED;
		return TUN_NONE;
	}
	__u32 hlen = 4;
	if (flags & GRE_CSUM)
		hlen += 4;
	if (flags & GRE_KEY)
		hlen += 4;
	if (flags & GRE_SEQ)
		hlen += 4;
	off += hlen;

	if (proto == ETH_P_ERSPAN) {
		if (flags & GRE_SEQ) {
			__u8 *e = data + (off & 0xff);
			if ((void *)(e + ERSPAN2_HLEN) > end) {
				*err = ERR_TUNNEL_MALFORMED;
				return TUN_NONE;
			}
			if ((e[0] >> 4) != 1) {
				*err = ERR_TUNNEL_MALFORMED;
				return TUN_NONE;
			}
			off += ERSPAN2_HLEN;
			*kind = TUN_KIND_ERSPAN2;
		} else {
			/* Type I: no sequence number, no ERSPAN header. */
			*kind = TUN_KIND_ERSPAN1;
		}
		*inner = off;
		return TUN_ETH;
	}
	if (proto == ETH_P_ERSPAN2) {
		__u8 *e = data + (off & 0xff);
		if ((void *)(e + ERSPAN3_HLEN) > end) {
			*err = ERR_TUNNEL_MALFORMED;
			return TUN_NONE;
		}
		if ((e[0] >> 4) != 2) {
			*err = ERR_TUNNEL_MALFORMED;
			return TUN_NONE;
		}
		off += ERSPAN3_HLEN;
		if (e[11] & 1)
			off += ERSPAN3_SUBHLEN;
		*kind = TUN_KIND_ERSPAN3;
		*inner = off;
		return TUN_ETH;
	}
	if (proto == ETH_P_TEB) {
		*kind = TUN_KIND_GRE_ETH;
		*inner = off;
		return TUN_ETH;
	}
	if (proto == ETH_P_IP || proto == ETH_P_IPV6) {
		*kind = TUN_KIND_GRE_IP;
		*inner = off;
		*inner_proto = bpf_htons(proto);
		return TUN_IP;
	}
	*err = ERR_TUNNEL_UNKNOWN;
	return TUN_NONE;
}

#endif
