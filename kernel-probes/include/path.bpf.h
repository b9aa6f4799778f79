/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Absolute path of a (dentry, vfsmount) pair, resolved with a bounded
 * dentry/mount walk into the per-CPU scratch area, then copied into the
 * record being built.
 *
 * Semantics (differences from d_path(), which BPF tracing can not call here):
 *  - resolved up to the root of the mount tree the file belongs to (the mount
 *    whose mnt_parent is itself), i.e. the mount namespace root; a chroot()
 *    does not shorten the path;
 *  - no " (deleted)" suffix: see VIGIL_EXE_DELETED instead;
 *  - a dentry that is its own parent but not a mount root (pseudo files such
 *    as memfds, disconnected dentries) contributes its name and ends the
 *    walk, giving e.g. "/memfd:name";
 *  - when cut (TRUNCATED) the stored bytes are the leaf-side tail of the
 *    path, still starting with '/': by depth after VIGIL_PATH_DEPTH_MAX
 *    components (reason DEPTH_LIMIT, orig_len unknown), by size when the
 *    path exceeds the configured limit (path_max, at most VIGIL_PATH_MAX
 *    bytes; reason SIZE_LIMIT, the walk continues so orig_len is known), or
 *    by a failed read (READ_FAULT);
 *  - the tail is kept by whole components: should even the leaf's name not
 *    fit in the limit (a name can be NAME_MAX = 255 bytes, the limit can be
 *    as low as VIGIL_PATH_MIN), the value is present, empty and TRUNCATED
 *    (SIZE_LIMIT, orig_len known).
 */
#ifndef VIGIL_PATH_BPF_H
#define VIGIL_PATH_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "vigil_abi.h"
#include "maps.bpf.h"
#include "kread.bpf.h"

/* Mount crossings allowed in one walk, on top of the component limit. */
#define VIGIL_MNT_CROSS_MAX 32

enum vigil_walk_state {
	VIGIL_WALK_RUNNING = 0,
	VIGIL_WALK_DONE,
	VIGIL_WALK_FAULT,
	VIGIL_WALK_DEPTH,
};

/* bpf_loop() context (on the stack): the walk state itself lives in the
 * scratch map value, see struct vigil_walk in maps.bpf.h. */
struct vigil_walk_ctx {
	struct vigil_scratch *s;
};

/*
 * Copy the @len (1..NAME_MAX) bytes of a dentry name at @name (kernel
 * memory) to @dst, with plain loads (vigil_untyped_loads() only): 8 bytes
 * at a time, the last 8 overlapping the previous chunk instead of going
 * past the name, so the bytes after dst[len - 1] (the components already
 * prepended) are never written. Names shorter than 8 bytes are inline in
 * the dentry (d_iname, at least 32 bytes), so reading 8 there stays in
 * the object. Returns -1 when a load faulted: a name has no NUL byte, a
 * fault reads as 0.
 */
static __always_inline int vigil_copy_name(__u8 *dst, const unsigned char *name, __u32 len)
{
	const __u8 *src = vigil_kmem(name);
	__u64 v, nul = 0;
	__u32 i;

	if (len < 8) {
		v = *(const __u64 *)src;
		/* little endian: byte k is bits 8k..8k+7 */
		for (i = 0; i < 7; i++) {
			if (i >= len)
				break;
			dst[i] = v >> (8 * i);
			nul |= !dst[i];
		}
		return nul ? -1 : 0;
	}
	for (i = 0; i < VIGIL_NAME_MAX / 8; i++) {
		if (8 * i + 8 > len)
			break;
		v = *(const __u64 *)(src + 8 * i);
		*(__u64 *)(dst + 8 * i) = v;
		nul |= !v;
	}
	v = *(const __u64 *)(src + len - 8);
	*(__u64 *)(dst + len - 8) = v;
	/* a fault zeroes the whole chunk; real name bytes are never all 0 */
	return (nul || !v) ? -1 : 0;
}

/* Prepend "/<name of d>" to the path. Returns -1 on a read fault. */
static __always_inline int vigil_walk_prepend(struct vigil_scratch *s,
					      struct dentry *d)
{
	struct vigil_walk *w = &s->walk;
	const unsigned char *name = vigil_d_name(d);
	__u32 len = vigil_d_name_len(d);
	__u32 pos = w->pos;

	/* NAME_MAX: a no-op for the kernel's names, a bound for the verifier
	 * (kept in this register: the compiler must not move the mask) */
	len &= VIGIL_NAME_MAX;
	barrier_var(len);
	w->total += len + 1;
	/* pos >= floor always: room is pos - floor */
	if (w->overflow || len + 1 > pos - w->floor) {
		w->overflow = 1;
		return 0;
	}
	/* pos - len - 1 < VIGIL_PATH_MAX, the mask only tells the verifier */
	pos = (pos - len - 1) & (VIGIL_PATH_MAX - 1);
	s->path[pos] = '/';
	if (vigil_untyped_loads()) {
		/* an empty name (some pseudo files') adds just the '/' */
		if (len && vigil_copy_name(s->path + pos + 1, name, len))
			return -1;
	} else if (bpf_probe_read_kernel(s->path + pos + 1, len, name)) {
		return -1;
	}
	w->pos = pos;
	return 0;
}

/* One step of the walk: cross a mount point or take one component. */
static long vigil_walk_step(__u64 idx, void *arg)
{
	struct vigil_scratch *s = ((struct vigil_walk_ctx *)arg)->s;
	struct vigil_walk *w = &s->walk;
	struct dentry *d = w->dentry;
	struct mount *m = w->mnt;
	struct dentry *parent;

	(void)idx;
	if (!d || !m) {
		w->state = VIGIL_WALK_FAULT;
		return 1;
	}
	if (d == vigil_mnt_root(m)) {
		struct mount *mp = vigil_mnt_parent(m);

		if (!mp || mp == m) {  /* root of the mount tree */
			w->state = VIGIL_WALK_DONE;
			return 1;
		}
		if (w->crosses >= VIGIL_MNT_CROSS_MAX) {
			w->state = VIGIL_WALK_DEPTH;
			return 1;
		}
		w->dentry = vigil_mnt_mountpoint(m);
		w->mnt = mp;
		w->crosses++;
		return 0;
	}
	if (w->comps >= VIGIL_PATH_DEPTH_MAX) {
		w->state = VIGIL_WALK_DEPTH;
		return 1;
	}
	parent = vigil_d_parent(d);
	if (vigil_walk_prepend(s, d)) {
		w->state = VIGIL_WALK_FAULT;
		return 1;
	}
	w->comps++;
	if (!parent || parent == d) {  /* pseudo file / disconnected dentry */
		w->state = VIGIL_WALK_DONE;
		return 1;
	}
	w->dentry = parent;
	return 0;
}

/* Copy the stored tail path[pos, VIGIL_PATH_MAX) (len = VIGIL_PATH_MAX -
 * pos bytes) to rec[off, off + len) 8 bytes at a time; up to 7 bytes past
 * rec[off + len) are overwritten, which are not part of the record (the
 * next field, if any, is stored after this one). */
static __always_inline void vigil_store_tail(struct vigil_scratch *s, __u32 off, __u32 pos)
{
	__u64 i;

	for (i = 0; i < VIGIL_PATH_MAX / 8; i++) {
		/* 64-bit: no zero extension between the check and the use */
		__u64 p = (__u64)pos + 8 * i;

		if (p >= VIGIL_PATH_MAX)
			break;
		/* the verifier bounds the register checked above: the
		 * compiler must not rebuild the address from pos */
		barrier_var(p);
		/* 8-byte loads and stores, unaligned (allowed where the
		 * architecture has efficient unaligned access, as x86) */
		*(__u64 *)(s->rec + off + 8 * i) = *(const __u64 *)(s->path + p);
	}
}

/*
 * Resolve (dentry, vfsmnt) and store the path at @rec + @off, describing it
 * in @f. Returns the number of bytes stored (0..path limit).
 */
static __noinline __u32 vigil_resolve_path(struct vigil_scratch *s,
					   struct dentry *dentry,
					   struct vfsmount *vfsmnt,
					   struct vigil_field *f, __u32 off)
{
	struct vigil_walk_ctx ctx = { .s = s };
	struct vigil_walk *w = &s->walk;
	__u32 lim = vigil_path_limit();
	__u32 pos, len;

	f->off = off;
	f->len = 0;
	f->orig_len = 0;
	if (off > VIGIL_RECORD_MAX - VIGIL_PATH_MAX) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_SIZE_LIMIT;
		return 0;
	}
	if (!dentry || !vfsmnt) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_PATH_UNRESOLVED;
		return 0;
	}

	w->dentry = dentry;
	w->mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w->pos = VIGIL_PATH_MAX;
	w->floor = VIGIL_PATH_MAX - lim;
	w->total = 0;
	w->comps = 0;
	w->crosses = 0;
	w->state = VIGIL_WALK_RUNNING;
	w->overflow = 0;
	bpf_loop(VIGIL_PATH_DEPTH_MAX + VIGIL_MNT_CROSS_MAX + 1,
		 vigil_walk_step, &ctx, 0);
	if (w->state == VIGIL_WALK_RUNNING)
		w->state = VIGIL_WALK_DEPTH;

	if (w->comps == 0) {
		if (w->state != VIGIL_WALK_DONE) {
			f->flags = VIGIL_F_UNAVAILABLE;
			f->reason = w->state == VIGIL_WALK_FAULT ?
				    VIGIL_R_READ_FAULT : VIGIL_R_DEPTH_LIMIT;
			return 0;
		}
		/* the file is the root directory itself */
		s->path[VIGIL_PATH_MAX - 1] = '/';
		w->pos = VIGIL_PATH_MAX - 1;
		w->total = 1;
	}

	if (w->pos >= VIGIL_PATH_MAX) {
		/* not even the leaf fitted in the limit: nothing stored */
		pos = VIGIL_PATH_MAX;
		len = 0;
	} else {
		pos = w->pos & (VIGIL_PATH_MAX - 1);
		len = VIGIL_PATH_MAX - pos;
	}
	if (len && vigil_direct_loads()) {
		vigil_store_tail(s, off, pos);
	} else if (len && bpf_probe_read_kernel(s->rec + off, len, s->path + pos)) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_READ_FAULT;
		return 0;
	}
	f->len = len;
	f->flags = VIGIL_F_PRESENT;
	switch (w->state) {
	case VIGIL_WALK_DONE:
		f->orig_len = w->total;
		f->flags |= VIGIL_F_SIZE_KNOWN;
		if (w->overflow) {
			f->flags |= VIGIL_F_TRUNCATED;
			f->reason = VIGIL_R_SIZE_LIMIT;
		}
		break;
	case VIGIL_WALK_FAULT:
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_READ_FAULT;
		break;
	default:
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_DEPTH_LIMIT;
		break;
	}
	return len;
}

#endif /* VIGIL_PATH_BPF_H */
