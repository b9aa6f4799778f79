/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The single path by which records leave the kernel, plus the counters.
 *
 * Sequence numbers: every record *attempt* consumes one number of the
 * (CPU, lane) stream before anything can fail, including attempts that die
 * before reaching the ring buffer (scratch lookup failure, oversize). So a
 * consumer sees exactly one gap per lost record and can cross-check gaps
 * against drop_counters.
 */
#ifndef VIGIL_EMIT_BPF_H
#define VIGIL_EMIT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"
#include "maps.bpf.h"
#include "lanes.bpf.h"
#include "filter.bpf.h"
#include "ratelimit.bpf.h"

static __always_inline void vigil_count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	/* atomic: programs on one CPU can preempt each other (PREEMPT_RCU) */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void vigil_count_field(__u32 type, __u32 problem)
{
	vigil_count(&field_counters,
		    (type & (VIGIL_EV_SLOTS - 1)) * VIGIL_FIELDP_MAX + problem);
}

/* Take the next sequence number of this CPU's stream for a lane (>= 1;
 * 0 only if the map lookup failed, which can not happen for key < max). */
static __always_inline __u64 vigil_next_seq(__u32 lane)
{
	__u64 *seq = bpf_map_lookup_elem(&stream_seq, &lane);

	if (!seq)
		return 0;
	return __sync_fetch_and_add(seq, 1) + 1;
}

static __always_inline void vigil_count_drop(__u32 type, __u32 cause)
{
	vigil_count(&drop_counters,
		    (type & (VIGIL_EV_SLOTS - 1)) * VIGIL_DROP_MAX + cause);
}

/* A record was lost before it could be built: burn its sequence number so
 * the gap is visible, and count the cause. */
static __always_inline void vigil_drop(__u32 type, __u32 cause)
{
	vigil_next_seq(vigil_lane_of(type));
	vigil_count_drop(type, cause);
}

/* Set to 1 by user space when vigil stops (.bss, written through the
 * skeleton's memory-mapped section). */
__u32 vigil_stopping = 0;

/* Copy @size bytes of @rec into the ring buffer of @lane. Returns 0 or the
 * helper's negative error (the lane's ring is full). Each branch names its
 * map directly, so the verifier sees a constant map pointer. */
static __always_inline long vigil_lane_output(__u32 lane, void *rec, __u64 size, __u64 seq)
{
	if (lane == VIGIL_LANE_BULK)
		return bpf_ringbuf_output(&events_bulk, rec, size,
					  vigil_wakeup_flags(&events_bulk, seq));
	return bpf_ringbuf_output(&events, rec, size,
				  vigil_wakeup_flags(&events, seq));
}

/*
 * Stamp the header of @rec (hdr.type/abi_version/size/cpu/lane/seq; the
 * caller fills ktime_ns/tgid/pid) and copy the first @size bytes into the
 * ring buffer of the type's lane (include/lanes.bpf.h). @rec may live on
 * the stack or in the scratch map.
 * Returns 0 when the record was written, -1 when it was dropped or
 * excluded by a filter (include/filter.bpf.h).
 */
static __always_inline int vigil_emit(void *rec, __u64 size, __u32 type)
{
	struct vigil_hdr *hdr = rec;
	__u32 lane = vigil_lane_of(type);
	__u64 seq;

	/* vigil is stopping: nothing more is numbered or written, so the final
	 * drain reads every record that was, while the programs are detached
	 * (slowly: each link close waits for an RCU grace period). */
	if (vigil_stopping)
		return -1;
	/* Excluded by configuration: counted, not numbered (not a loss). */
	if (vigil_filter(rec, type) != VIGIL_FILTER_MAX)
		return -1;
	/* Over its process's bulk budget: counted and summarized, not lost. */
	if (lane == VIGIL_LANE_BULK && vigil_ratelimited(type, hdr->ktime_ns, hdr->tgid))
		return -1;
	seq = vigil_next_seq(lane);

	hdr->type = type;
	hdr->abi_version = VIGIL_ABI_VERSION;
	hdr->cpu = bpf_get_smp_processor_id();
	hdr->lane = lane;
	hdr->seq = seq;

	if (size > VIGIL_RECORD_MAX) {
		vigil_count_drop(type, VIGIL_DROP_TOO_LARGE);
		return -1;
	}
	hdr->size = size;

	if (vigil_lane_output(lane, rec, size, seq)) {
		vigil_count_drop(type, VIGIL_DROP_RINGBUF_FULL);
		return -1;
	}
	vigil_count(&emit_counters, type & (VIGIL_EV_SLOTS - 1));
	return 0;
}

#endif /* VIGIL_EMIT_BPF_H */
