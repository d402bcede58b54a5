/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet capture (issue 18): a capture job's matching, sampled packets,
 * cut at its snaplen, into capture_ring with a header the probe turns into
 * a pcapng enhanced packet block. Bounded before any byte is copied: the
 * job's and the probe's packet and byte caps and packets-per-second rates,
 * under each limit's lock; what is let go is counted per job by why. */
#ifndef TELEGEN_CAPTURE_H
#define TELEGEN_CAPTURE_H

#include "maps.h"

#define NS_PER_SEC 1000000000ULL

enum capture_verdict {
	CAPTURE_OK = 0,
	CAPTURE_RATE = 1,
	CAPTURE_CAP = 2,
};

/* Take one packet of `size` pcapng bytes from limit `key`. */
static __always_inline int capture_take(__u32 key, __u64 now, __u64 size)
{
	struct capture_limit *l = bpf_map_lookup_elem(&capture_limits, &key);
	if (!l)
		return CAPTURE_CAP;
	int verdict = CAPTURE_OK;
	bpf_spin_lock(&l->lock);
	if ((l->max_packets && l->packets >= l->max_packets) ||
	    (l->max_bytes && l->bytes + size > l->max_bytes)) {
		verdict = CAPTURE_CAP;
	} else if (l->rate_pps) {
		__u64 elapsed = now > l->last_ns ? now - l->last_ns : 0;
		if (elapsed > NS_PER_SEC)
			elapsed = NS_PER_SEC;
		__u64 full = l->rate_pps * NS_PER_SEC;
		__u64 tokens = l->tokens + elapsed * l->rate_pps;
		if (tokens > full)
			tokens = full;
		l->last_ns = now;
		if (tokens < NS_PER_SEC) {
			verdict = CAPTURE_RATE;
		} else {
			tokens -= NS_PER_SEC;
		}
		l->tokens = tokens;
	}
	if (verdict == CAPTURE_OK) {
		l->packets += 1;
		l->bytes += size;
	}
	bpf_spin_unlock(&l->lock);
	return verdict;
}

/* Give back a packet taken from limit `key` that was not captured after
 * all (its rate token stays spent). */
static __always_inline void capture_refund(__u32 key, __u64 size)
{
	struct capture_limit *l = bpf_map_lookup_elem(&capture_limits, &key);
	if (!l)
		return;
	bpf_spin_lock(&l->lock);
	if (l->packets)
		l->packets -= 1;
	if (l->bytes >= size)
		l->bytes -= size;
	bpf_spin_unlock(&l->lock);
}

/* Capture the frame at `inner` (0: the frame as the hook sees it) of a
 * packet job `slot` counted on hook `dir`. A global function: the verifier
 * checks it once, on its own, instead of once per job of the deep
 * program's loop (inlined there, verification did not finish). */
__attribute__((noinline)) int capture(struct __sk_buff *skb, __u32 slot, __u32 inner, __u32 dir)
{
	struct job_filter *f = bpf_map_lookup_elem(&job_filters, &slot);
	struct capture_drops *d = bpf_map_lookup_elem(&capture_drops_percpu, &slot);
	if (!f || !d || !skb)
		return 0;
	__u32 off = f->flags & F_CAPTURE_OUTER ? 0 : inner;
	if (off >= skb->len)
		off = 0;
	__u32 orig = skb->len - off;
	__u32 snap = f->snaplen;
	if (snap == 0 || snap > CAPTURE_SNAP_MAX)
		snap = CAPTURE_SNAP_MAX;
	__u32 cap = orig < snap ? orig : snap;
	__u64 size = CAPTURE_EPB_OVERHEAD + ((cap + 3) & ~3U);
	__u64 now = bpf_ktime_get_ns();

	int verdict = capture_take(slot, now, size);
	if (verdict == CAPTURE_OK) {
		verdict = capture_take(CAPTURE_PROBE_SLOT, now, size);
		if (verdict != CAPTURE_OK)
			capture_refund(slot, size);
	}
	if (verdict == CAPTURE_RATE) {
		d->rate_limited += 1;
		return 0;
	}
	if (verdict == CAPTURE_CAP) {
		d->cap_reached += 1;
		return 0;
	}
	__u32 zero = 0;
	struct capture_buf *b = bpf_map_lookup_elem(&capture_scratch, &zero);
	if (!b)
		goto failed;
	b->h.ts_ns = now;
	b->h.slot = slot;
	b->h.orig_len = orig;
	b->h.dir = dir;
	b->h.outer = off == 0 && inner != 0;
	b->h.pad = 0;
	/* Bounds the verifier can see, 1..CAPTURE_SNAP_MAX, in a form 5.10's
	 * tracks: clang merges "cap == 0 ||" into one range compare on a copy
	 * of the register, which 5.10 does not carry back (it refused the
	 * load, "R3 min value is outside of the allowed memory range"). Here
	 * a cap of 0 wraps past the maximum instead. */
	__u32 n = ((cap - 1) & 0x3fff) + 1;
	if (n > CAPTURE_SNAP_MAX)
		goto failed;
	b->h.cap_len = n;
	if (bpf_skb_load_bytes(skb, off, b->data, n) < 0)
		goto failed;
	if (bpf_ringbuf_output(&capture_ring, b, sizeof(b->h) + n, 0) < 0) {
		capture_refund(slot, size);
		capture_refund(CAPTURE_PROBE_SLOT, size);
		d->ring_full += 1;
		return 0;
	}
	return 1;
failed:
	capture_refund(slot, size);
	capture_refund(CAPTURE_PROBE_SLOT, size);
	d->copy_failed += 1;
	return 0;
}

#endif
