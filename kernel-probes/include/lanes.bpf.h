/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Priority lanes: which ring buffer a record goes to.
 *
 * Critical records (process lifecycle, privilege, fileless, kernel) go to
 * "events", bulk records (file, network) to "events_bulk". Each lane has its
 * own ring size, its own per-CPU sequence numbers (stream_seq[lane]) and its
 * own loss accounting (drop_counters are per event type, and an event type
 * belongs to exactly one lane), so a flood of bulk records can exhaust only
 * the bulk ring: a critical record never competes with one for space.
 * (The output itself is in emit.bpf.h, the one place records leave from.)
 */
#ifndef VIGIL_LANES_BPF_H
#define VIGIL_LANES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"
#include "maps.bpf.h"

/* Fill level at which a wakeup is forced even between wakeup_every
 * boundaries, so a slow-rate CPU can not leave a consumer asleep while the
 * ring buffer fills up. */
#define VIGIL_WAKEUP_FILL_SHIFT 1  /* 1/2 of the ring */
/* The fill level is checked once every this many records (per CPU and
 * lane), not at every one: a forced wakeup raises an interrupt (a VM exit
 * in a guest), and while the consumer catches up with a ring above the
 * level every record would raise one. */
#define VIGIL_WAKEUP_FILL_EVERY 64

/* The lane of an event type: file and network records (ids 16-47), the
 * bulk families, go to the bulk lane; everything else is critical. */
static __always_inline __u32 vigil_lane_of(__u32 type)
{
	return type >= 16 && type < 48 ?
	       VIGIL_LANE_BULK : VIGIL_LANE_CRITICAL;
}

static __always_inline __u64 vigil_wakeup_flags(void *ring, __u64 seq)
{
	__u32 every = wakeup_every;

	if (every == 0)
		return 0;
	if (every == 1 || seq % every == 0)
		return BPF_RB_FORCE_WAKEUP;
	if (seq % VIGIL_WAKEUP_FILL_EVERY == 0 &&
	    bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >=
	    (bpf_ringbuf_query(ring, BPF_RB_RING_SIZE) >> VIGIL_WAKEUP_FILL_SHIFT))
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Whether the critical ring has room for the largest record right now
 * (fail_closed, failclosed.bpf.c). A query, not a trial reservation: a
 * reservation would take that room from concurrent producers for a moment
 * and could itself cost a critical record. */
static __always_inline int vigil_critical_has_room(void)
{
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	return used < size && size - used >= VIGIL_RECORD_MAX + 8;
}

#endif /* VIGIL_LANES_BPF_H */
