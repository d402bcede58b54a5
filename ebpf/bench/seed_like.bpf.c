// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Second baseline for `make bench`: the shape of the seed Go project's
 * classifier, so that telegen's per-packet cost can be compared with what it
 * replaces. A per-protocol per-CPU array counter plus a per-CPU *hash* keyed
 * by {ifindex, proto}; an ICMPv6 packet is counted as ipv6 and again as icmp6
 * (both maps updated twice). No VLAN or extension-header handling, as in the
 * seed. Maps are not pinned. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum seed_proto {
	SEED_IPV4 = 0,
	SEED_IPV6 = 1,
	SEED_ICMP6 = 2,
	SEED_OTHER = 3,
	SEED_NPROTO = 4,
};

struct seed_val {
	__u64 packets;
	__u64 bytes;
};

struct seed_if_key {
	__u32 ifindex;
	__u32 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SEED_NPROTO);
	__type(key, __u32);
	__type(value, struct seed_val);
} seed_proto_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct seed_if_key);
	__type(value, struct seed_val);
} seed_if_stats SEC(".maps");

static __always_inline void seed_count(__u32 ifindex, __u32 proto, __u32 len)
{
	struct seed_val *v = bpf_map_lookup_elem(&seed_proto_stats, &proto);
	if (v) {
		v->packets += 1;
		v->bytes += len;
	}

	struct seed_if_key k = { .ifindex = ifindex, .proto = proto };
	struct seed_val *iv = bpf_map_lookup_elem(&seed_if_stats, &k);
	if (iv) {
		iv->packets += 1;
		iv->bytes += len;
	} else {
		struct seed_val init = { .packets = 1, .bytes = len };
		bpf_map_update_elem(&seed_if_stats, &k, &init, BPF_NOEXIST);
	}
}

SEC("classifier")
int seed_like(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 len = skb->len;

	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		seed_count(skb->ifindex, SEED_IPV4, len);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_UNSPEC;
		seed_count(skb->ifindex, SEED_IPV6, len);
		if (ip6->nexthdr == IPPROTO_ICMPV6)
			seed_count(skb->ifindex, SEED_ICMP6, len);
	} else {
		seed_count(skb->ifindex, SEED_OTHER, len);
	}
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
