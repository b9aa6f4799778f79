/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps and load-time configuration shared by the vigil probes.
 * Map and variable names are ABI: the Rust loader looks them up by name.
 */
#ifndef VIGIL_MAPS_BPF_H
#define VIGIL_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"

/* ---- configuration (.rodata, written by the loader before load) ---- */

/* Events whose acting tgid equals this are ignored (0: filter nothing). */
const volatile __u32 vigil_tgid = 0;
/* Bytes of argv kept per exec; clamped to VIGIL_ARGS_CAP. */
const volatile __u32 args_max = VIGIL_ARGS_DEFAULT;
/* Bytes kept per resolved path (exe, cwd: the leaf end) and of the exec
 * filename (the prefix); clamped to [VIGIL_PATH_MIN, VIGIL_PATH_MAX] by
 * vigil_path_limit(). */
#define VIGIL_PATH_MIN 64
const volatile __u32 path_max = VIGIL_PATH_MAX;
/* Force a consumer wakeup every N records per CPU and lane.
 * 0: let the kernel decide (flags 0, wakes a consumer that has caught up);
 * 1: wake on every record. */
const volatile __u32 wakeup_every = 1024;
const volatile __u32 abi_version = VIGIL_ABI_VERSION;

/* path_max, clamped: the verifier (and the reader) can rely on the bounds. */
static __always_inline __u32 vigil_path_limit(void)
{
	__u32 lim = path_max;

	if (lim < VIGIL_PATH_MIN)
		lim = VIGIL_PATH_MIN;
	if (lim > VIGIL_PATH_MAX)
		lim = VIGIL_PATH_MAX;
	return lim;
}

/* ---- output ---- */

#define VIGIL_RINGBUF_DEFAULT (8u << 20)  /* loader resizes before load */

/* One ring buffer per lane (include/lanes.bpf.h chooses): "events" carries
 * the critical lane, "events_bulk" the bulk lane, each with its own size,
 * so a flood of bulk records can not take a critical record's room. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VIGIL_RINGBUF_DEFAULT);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VIGIL_RINGBUF_DEFAULT);
} events_bulk SEC(".maps");

/* Per-CPU, per-lane sequence: value is the last number handed out. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_LANE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stream_seq SEC(".maps");

/* ---- counters (per CPU; user space sums the CPUs) ---- */

/* index = type * VIGIL_DROP_MAX + enum vigil_drop_cause */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_DROP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} drop_counters SEC(".maps");

/* index = type: records successfully written to the ring buffer */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_EV_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} emit_counters SEC(".maps");

/* index = type * VIGIL_FIELDP_MAX + enum vigil_field_problem */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_FIELDP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} field_counters SEC(".maps");

/* ---- scratch ---- */

/* Room after the path area so a bounded-but-unproven write of one path
 * component (at most NAME_MAX bytes) past the nominal end stays inside the
 * map value; the logic never actually writes there. */
#define VIGIL_NAME_MAX 255
#define VIGIL_PATHBUF_SIZE (VIGIL_PATH_MAX + VIGIL_NAME_MAX + 1)

/*
 * State of one path walk (include/path.bpf.h). Kept in the map value rather
 * than on the stack on purpose: the verifier does not track values loaded
 * from map memory, so the bpf_loop() callback converges after a couple of
 * passes instead of being re-verified once per possible component count.
 */
struct vigil_walk {
	struct dentry *dentry;
	struct mount *mnt;
	__u32 pos;       /* path[pos, VIGIL_PATH_MAX) holds the stored tail */
	__u32 floor;     /* VIGIL_PATH_MAX - path limit: pos never goes below */
	__u32 total;     /* length of the whole path walked so far */
	__u32 comps;     /* components walked */
	__u32 crosses;   /* mount points crossed */
	__u32 state;     /* enum vigil_walk_state */
	__u32 overflow;  /* a component did not fit: stop storing */
};

/* One per CPU. A plain ARRAY indexed by CPU id, because per-CPU map values
 * are limited to 32 KiB and a record can be ~76 KiB. */
struct vigil_scratch {
	__u8 rec[VIGIL_RECORD_MAX] __attribute__((aligned(8)));
	/* paths are assembled backwards, ending at path[VIGIL_PATH_MAX] */
	__u8 path[VIGIL_PATHBUF_SIZE];
	struct vigil_walk walk;
	/* set while a program builds a record here; a second user on the same
	 * CPU (should one ever preempt the first) drops instead of corrupting */
	__u64 busy;  /* 64-bit: 32-bit atomics need -mcpu=v3 */
};

#define VIGIL_SCRATCH_DEFAULT_CPUS 256  /* loader sets nr possible CPUs */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SCRATCH_DEFAULT_CPUS);
	__type(key, __u32);
	__type(value, struct vigil_scratch);
} scratch SEC(".maps");

#endif /* VIGIL_MAPS_BPF_H */
