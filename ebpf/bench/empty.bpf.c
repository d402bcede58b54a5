// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Baseline for `make bench`: a classifier that does nothing, so the
 * harness's own per-run overhead can be subtracted. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("classifier")
int empty(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
