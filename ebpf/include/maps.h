/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map is pinned by name under the probe's pin directory
 * (TELEGEN_BPF_PIN_DIR, default /sys/fs/bpf/telegen-sonic). Counters are
 * per-CPU arrays: their lookups are inlined by the JIT and need no atomics. */
#ifndef TELEGEN_MAPS_H
#define TELEGEN_MAPS_H

#include <bpf/bpf_helpers.h>
#include "types.h"

/* Layout 2's one counter set: per interface slot, hook direction and
 * class (HOOK_KEY). The global figures, each interface's and each plain
 * job's are differences and sums of these, taken by the probe. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_IF_SLOTS * 2 * N_CLASSES);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hook_stats_percpu SEC(".maps");

/* Packet errors per hook (HOOK_ERR_KEY), for the plain jobs' errors; only
 * packets with an error touch it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_IF_SLOTS * 2 * N_JOB_ERRORS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hook_errors_percpu SEC(".maps");

/* Layout 1's counters, no longer written by the classifier: what a
 * layout-1 classifier counted before its hooks were upgraded, which the
 * probe adds to the derived figures so that they continue. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, N_CLASSES);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_IF_SLOTS * N_CLASSES);
	__type(key, __u32);
	__type(value, struct labeled_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} if_stats_percpu SEC(".maps");

/* Per filtered job and class (key = job slot * N_CLASSES + class), counted
 * by telegen_deep; zeroed when a job starts. Plain jobs have no counter of
 * their own (struct job_base). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS * N_CLASSES);
	__type(key, __u32);
	__type(value, struct labeled_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} job_stats_percpu SEC(".maps");

/* GRE sequence tracking per tunnel and interface (coverage.h), by a hash
 * of the tunnel's key. Shared by all CPUs: a tunnel's packets normally
 * reach one receive queue. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GRE_SEQ_ENTRIES);
	__type(key, __u32);
	__type(value, struct gre_seq_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gre_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, N_ERRORS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} errors_percpu SEC(".maps");

/* Tunnelled packets by how they were counted (enum telegen_tun). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, N_TUN_KINDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_percpu SEC(".maps");

/* Interface config by ifindex: an array for ifindex < IFCFG_ARRAY_SIZE (the
 * common case, nearly free), a hash above. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IFCFG_ARRAY_SIZE);
	__type(key, __u32);
	__type(value, struct if_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifcfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IFCFG_HASH_SIZE);
	__type(key, __u32);
	__type(value, struct if_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifcfg_hash SEC(".maps");

/* Per-job filter by job slot (struct job_filter). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, struct job_filter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} job_filters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, struct job_aux);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} job_aux_percpu SEC(".maps");

/* Per job, per CPU: the packets that reached the job's hook and its filter
 * rejected. For a job whose filter the switch applies too (ACL mirroring),
 * the measure of how far the ASIC and the kernel disagree. A map of its own
 * so that job_aux keeps the layout earlier probes pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} job_rejected_percpu SEC(".maps");

/* The template of the per-job flow tables. The probe creates one LRU table
 * per flows job, sized by TELEGEN_FLOW_TABLE_SIZE (the kernel does not
 * compare max_entries of hash inner maps), and keeps it here by job slot:
 * the pinned outer map holds it across probe restarts. */
struct flow_table {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_TABLE_DEFAULT);
	/* Sizes, not __type: clang emits types reached only through the
	 * template's pointers as forward declarations, which loaders cannot
	 * size. */
	__uint(key_size, sizeof(struct flow_key));
	__uint(value_size, sizeof(struct flow_val));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct flow_table);
} job_flows SEC(".maps");

/* The deep-hook program (telegen_deep), tail-called by the classifier when
 * a job on the hook filters, tracks flows or captures. Named for the layout:
 * a layout-1 classifier still attached during an upgrade keeps reaching
 * the layout-1 deep program in its own `deep_progs`. A tail call, not a BPF-to-BPF
 * call: kernels before 6.3 cannot track precision through calls, and the
 * verifier's search of the classifier's paths then explodes (1M
 * instructions on 6.1); a separate program is verified on its own. Pinned,
 * so an attached classifier keeps reaching it across probe restarts. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} deep_progs_v2 SEC(".maps");

/* The facts of the packet telegen_deep is counting. In a map rather than on
 * the stack on purpose: the verifier does not track map memory, so every
 * parse path reaches the job loop in the same state and is pruned there,
 * instead of each being walked through all the jobs' filters (seconds of
 * verification). Not pinned: it holds nothing between packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct facts);
} facts_scratch SEC(".maps");

/* Packet capture (capture.h). The ring is pinned so that an attached
 * program keeps writing where the next probe reads. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CAPTURE_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} capture_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS + 1);
	__type(key, __u32);
	__type(value, struct capture_limit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} capture_limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, struct capture_drops);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} capture_drops_percpu SEC(".maps");

/* A record being built: bpf_ringbuf_output copies it, so its size can be
 * the packet's (bpf_ringbuf_reserve wants a constant). Not pinned. */
struct capture_buf {
	struct capture_hdr h;
	__u8 data[CAPTURE_SNAP_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_buf);
} capture_scratch SEC(".maps");

/* Probe-only state (never touched by the classifier). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct iface_rec);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, struct job_rec);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} jobs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct iface_base);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} iface_base SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, struct job_base);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} job_base SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EXPORT_RECS);
	__type(key, __u32);
	__type(value, struct export_rec);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} export_recs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_JOB_SLOTS);
	__type(key, __u32);
	__type(value, struct job_note);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} job_notes SEC(".maps");

#endif
