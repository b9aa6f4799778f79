/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * In-kernel exclusion filters, set from configuration ([filters]) through
 * maps, applied by vigil_emit() before a record is numbered:
 *
 *  - cgroup: the acting task's cgroup v2, or any ancestor of it, is in
 *    filter_cgroups (so a container's whole subtree can be excluded);
 *  - uid: the acting task's real uid is in filter_uids;
 *  - exe: the acting process runs an executable whose kernel-resolved path
 *    starts with an exe prefix. Decided at exec, from the exec record's exe
 *    field, and remembered per tgid in excluded_tgids (children inherit it
 *    at fork; the next exec decides again; the loader seeds it from /proc);
 *  - file: a file record's (first) path starts with a file prefix.
 *
 * An excluded record is not lost: it takes no sequence number (so it leaves
 * no gap) and is counted per event type and reason in filter_counters,
 * which heartbeats report. filter_flags (.rodata) says which filters are
 * configured; with none, the verifier prunes all of this away.
 */
#ifndef VIGIL_FILTER_BPF_H
#define VIGIL_FILTER_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil_abi.h"
#include "maps.bpf.h"

/* Keep the enum in the object's BTF (the Rust ABI test compares it). */
const volatile enum vigil_filter_reason vigil_btf_filter_reason __attribute__((used));

/* Which filters are configured: bit (1 << enum vigil_filter_reason). */
const volatile __u32 filter_flags = 0;

#define VIGIL_CGROUP_DEPTH_MAX 16

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_FILTER_IDS_MAX);
	__type(key, __u64);   /* cgroup v2 id */
	__type(value, __u8);
} filter_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_FILTER_IDS_MAX);
	__type(key, __u32);   /* uid */
	__type(value, __u8);
} filter_uids SEC(".maps");

/* Entries [0, VIGIL_FILTER_PREFIXES): exe prefixes; the next as many: file
 * prefixes. len 0: unused. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * VIGIL_FILTER_PREFIXES);
	__type(key, __u32);
	__type(value, struct vigil_filter_prefix);
} filter_prefixes SEC(".maps");

/* Processes running an excluded executable. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* tgid */
	__type(value, __u8);
} excluded_tgids SEC(".maps");

/* index = type * VIGIL_FILTER_MAX + enum vigil_filter_reason */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_EV_SLOTS * VIGIL_FILTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} filter_counters SEC(".maps");

static __always_inline int vigil_filter_on(__u32 reason)
{
	return filter_flags & (1u << reason);
}

/* Whether @f (a field of the record at @rec, which lives in the scratch
 * map) starts with one of the prefixes [first, first + VIGIL_FILTER_PREFIXES). */
static __always_inline int vigil_filter_prefix(__u8 *rec, const struct vigil_field *f, __u32 first)
{
	__u32 i, j, off = f->off;

	if (!(f->flags & VIGIL_F_PRESENT) || off > VIGIL_RECORD_MAX - VIGIL_FILTER_PREFIX_LEN)
		return 0;
	for (i = 0; i < VIGIL_FILTER_PREFIXES; i++) {
		__u32 key = first + i;
		struct vigil_filter_prefix *p = bpf_map_lookup_elem(&filter_prefixes, &key);
		__u32 plen;
		int ok = 1;

		if (!p)
			return 0;
		plen = p->len;
		if (plen == 0)
			break;  /* entries are packed */
		if (plen > VIGIL_FILTER_PREFIX_LEN || plen > f->len)
			continue;
		for (j = 0; j < VIGIL_FILTER_PREFIX_LEN; j++) {
			if (j >= plen)
				break;
			if (rec[off + j] != p->bytes[j]) {
				ok = 0;
				break;
			}
		}
		if (ok)
			return 1;
	}
	return 0;
}

static __always_inline int vigil_filter_cgroup(void)
{
	int level;

	for (level = 0; level < VIGIL_CGROUP_DEPTH_MAX; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);

		if (id == 0)
			break;
		if (bpf_map_lookup_elem(&filter_cgroups, &id))
			return 1;
	}
	return 0;
}

/* The exe filter's bookkeeping and verdict for a record of @type. */
static __always_inline int vigil_filter_exe(void *rec, __u32 type)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 one = 1;

	if (type == VIGIL_EV_EXEC) {
		struct vigil_exec *e = rec;

		if (vigil_filter_prefix(rec, &e->exe, 0)) {
			bpf_map_update_elem(&excluded_tgids, &tgid, &one, BPF_ANY);
			return 1;
		}
		bpf_map_delete_elem(&excluded_tgids, &tgid);
		return 0;
	}
	if (!bpf_map_lookup_elem(&excluded_tgids, &tgid))
		return 0;
	if (type == VIGIL_EV_FORK) {
		__u32 child = ((struct vigil_fork *)rec)->child_tgid;

		bpf_map_update_elem(&excluded_tgids, &child, &one, BPF_ANY);
	} else if (type == VIGIL_EV_EXIT && ((struct vigil_exit *)rec)->group_dead) {
		bpf_map_delete_elem(&excluded_tgids, &tgid);
	}
	return 1;
}

static __always_inline void vigil_count_excluded(__u32 type, __u32 reason)
{
	__u32 idx = (type & (VIGIL_EV_SLOTS - 1)) * VIGIL_FILTER_MAX + reason;
	__u64 *v = bpf_map_lookup_elem(&filter_counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The exclusions about the acting process (executable, cgroup, uid): the
 * reason, or VIGIL_FILTER_MAX. @rec is only read for exec, fork and exit
 * records (the exe filter's bookkeeping). */
static __always_inline __u32 vigil_filter_actor(void *rec, __u32 type)
{
	if (vigil_filter_on(VIGIL_FILTER_EXE) && vigil_filter_exe(rec, type))
		return VIGIL_FILTER_EXE;
	if (vigil_filter_on(VIGIL_FILTER_CGROUP) && vigil_filter_cgroup())
		return VIGIL_FILTER_CGROUP;
	if (vigil_filter_on(VIGIL_FILTER_UID) &&
	    bpf_map_lookup_elem(&filter_uids, &(__u32){ (__u32)bpf_get_current_uid_gid() }))
		return VIGIL_FILTER_UID;
	return VIGIL_FILTER_MAX;
}

/*
 * For the bulk families (file, network): whether the acting process is
 * excluded, decided before the record is built, so an excluded open costs
 * no path walk. Counts the exclusion. vigil_emit() checks again (a no-op
 * then) and adds the file prefix filter, which needs the built record.
 */
static __always_inline int vigil_excluded_early(__u32 type)
{
	__u32 reason = vigil_filter_actor(NULL, type);

	if (reason == VIGIL_FILTER_MAX)
		return 0;
	vigil_count_excluded(type, reason);
	return 1;
}

/* The reason a record of @type at @rec is excluded, or VIGIL_FILTER_MAX
 * when it is not. Counts the exclusion. */
static __always_inline __u32 vigil_filter(void *rec, __u32 type)
{
	__u32 reason = vigil_filter_actor(rec, type);

	if (reason == VIGIL_FILTER_MAX && vigil_filter_on(VIGIL_FILTER_FILE) &&
	    type >= 16 && type < 32 &&
	    vigil_filter_prefix(rec, &((struct vigil_file *)rec)->path, VIGIL_FILTER_PREFIXES))
		reason = VIGIL_FILTER_FILE;
	if (reason != VIGIL_FILTER_MAX)
		vigil_count_excluded(type, reason);
	return reason;
}

#endif /* VIGIL_FILTER_BPF_H */
