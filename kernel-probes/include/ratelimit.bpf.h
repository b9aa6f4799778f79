/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-process rate limiting of bulk records ([ratelimit]).
 *
 * Each process (tgid) has a token bucket for its bulk-lane records: rate
 * records per second sustained, up to burst at once, kept as one
 * "theoretical arrival time" (GCRA) in task-local storage of the process's
 * thread-group leader (rate_tasks: freed with the process; the lookup is a
 * few loads, where the hash lookup measured ~170-230 ns per record of the
 * open storm). Kernels whose verifier refuses that (task storage in
 * tracing programs needs Linux 5.11, a trusted group_leader pointer a
 * newer one) get ratelimit_task_storage = 0 from the loader, which then
 * loads again, and keep the buckets in an LRU hash keyed by tgid. A
 * record over the budget is not output and takes no sequence number, but
 * it is not lost either: it is counted per (tgid, event type) in
 * rate_suppressed with the first and last time, which the agent reads,
 * deletes and turns into summary records ("pid X produced N suppressed
 * vigil.file.open events between t1 and t2"), and in the per-CPU
 * ratelimit_counters per type.
 *
 * Two CPUs updating one process's bucket at the same time may both pass;
 * the limit is a budget, not an exact count. The counts are exact (atomic).
 * ratelimit_rate = 0 (the default) turns all of this off at load time.
 */
#ifndef VIGIL_RATELIMIT_BPF_H
#define VIGIL_RATELIMIT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"
#include "maps.bpf.h"

/* Bulk records per second per process (0: no limit), and the burst. */
const volatile __u64 ratelimit_rate = 0;
const volatile __u64 ratelimit_burst = 0;
/* Buckets in task storage (1) or in the rate_buckets hash (0), set by the
 * loader; the branch not taken is pruned by the verifier. */
const volatile __u32 ratelimit_task_storage = 0;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);  /* theoretical arrival time, boot ns (0: new) */
} rate_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);    /* tgid */
	__type(value, __u64);  /* theoretical arrival time, boot ns */
} rate_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_suppressed_key);
	__type(value, struct vigil_suppressed);
} rate_suppressed SEC(".maps");

/* index = type: records suppressed by the rate limit */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_EV_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} ratelimit_counters SEC(".maps");

/* Whether a bulk record of @type by the current process (@tgid) at
 * @now_ns is over its budget; if so, it is counted. */
static __always_inline int vigil_ratelimited(__u32 type, __u64 now_ns, __u32 tgid)
{
	__u64 rate = ratelimit_rate, burst = ratelimit_burst;
	__u64 interval, tolerance, tat, *slot;
	struct vigil_suppressed_key key = {};
	struct vigil_suppressed *sup;
	__u32 idx;

	if (rate == 0)
		return 0;
	if (now_ns == 0)
		now_ns = bpf_ktime_get_boot_ns();
	key.tgid = tgid;
	key.type = type;
	interval = 1000000000ull / rate;
	if (interval == 0)
		interval = 1;
	tolerance = (burst > 1 ? burst - 1 : 0) * interval;
	if (ratelimit_task_storage) {
		struct task_struct *t = bpf_get_current_task_btf();

		/* created zeroed: the first record passes, as with the hash */
		slot = bpf_task_storage_get(&rate_tasks, t->group_leader, 0,
					    BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!slot)  /* storage busy on this CPU or out of memory */
			return 0;
	} else {
		slot = bpf_map_lookup_elem(&rate_buckets, &key.tgid);
		if (!slot) {
			tat = now_ns + interval;
			bpf_map_update_elem(&rate_buckets, &key.tgid, &tat, BPF_ANY);
			return 0;
		}
	}
	tat = *slot > now_ns ? *slot : now_ns;
	if (tat - now_ns <= tolerance) {
		*slot = tat + interval;
		return 0;
	}
	/* Over budget: count it, per process and type, and per type. */
	sup = bpf_map_lookup_elem(&rate_suppressed, &key);
	if (sup) {
		__sync_fetch_and_add(&sup->count, 1);
		if (now_ns > sup->last_ns)
			sup->last_ns = now_ns;
	} else {
		struct vigil_suppressed fresh = { .count = 1, .first_ns = now_ns, .last_ns = now_ns };

		/* BPF_NOEXIST: if another CPU inserted first, add to its entry. */
		if (bpf_map_update_elem(&rate_suppressed, &key, &fresh, BPF_NOEXIST)) {
			sup = bpf_map_lookup_elem(&rate_suppressed, &key);
			if (sup)
				__sync_fetch_and_add(&sup->count, 1);
		}
	}
	idx = type & (VIGIL_EV_SLOTS - 1);
	{
		__u64 *v = bpf_map_lookup_elem(&ratelimit_counters, &idx);

		if (v)
			__sync_fetch_and_add(v, 1);
	}
	return 1;
}

#endif /* VIGIL_RATELIMIT_BPF_H */
