// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A stand-in for another agent's tc program, used by the coexistence tests:
 * it counts what it sees and ends the tc chain with TC_ACT_OK, as a typical
 * third-party "pass" filter does. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} foreign_seen SEC(".maps");

SEC("classifier")
int foreign(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&foreign_seen, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
