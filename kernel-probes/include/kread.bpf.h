/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reads of kernel objects on the hot paths (path walk, descriptor lookup).
 *
 * BPF_CORE_READ() costs one bpf_probe_read_kernel() call per pointer hop
 * (~20-30 ns each here: a helper call, an address check and a fault-safe
 * copy). Where the kernel has the bpf_rdonly_cast() kfunc (Linux 6.2+), a
 * pointer is cast to its BTF type instead and the fields are read with
 * plain loads: the verifier turns them into fault-safe loads (a fault reads
 * as 0) and the cast itself into a register move. On older kernels the
 * same accessors fall back to BPF_CORE_READ(). Which branch runs is a
 * constant known at load time (the weak kfunc resolves or not), so the
 * verifier only ever sees one.
 *
 * A fault reads as 0 (NULL) in both variants, which every caller already
 * treats as "could not be read".
 */
#ifndef VIGIL_KREAD_BPF_H
#define VIGIL_KREAD_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* Set by the loader when probes.direct_loads is off: the helper reads are
 * then used everywhere (the privileged tests run the path tests that way). */
const volatile __u32 direct_loads_off = 0;

/* Whether direct loads are used (a load-time constant). */
#define vigil_direct_loads() (bpf_ksym_exists(bpf_rdonly_cast) && !direct_loads_off)

/* @p as a read-only pointer to the kernel's type T. */
#define vigil_kcast(p, T) \
	((T *)bpf_rdonly_cast((const void *)(p), bpf_core_type_id_kernel(T)))

/* Field @field (a chain of members, e.g. f_path.dentry) of the object of
 * kernel type T at @p. */
#define vigil_kread(p, T, field)                                   \
	({                                                         \
		typeof(((T *)0)->field + 0) __v; /* +0: not const */ \
		if (vigil_direct_loads())                          \
			__v = vigil_kcast(p, T)->field;            \
		else                                               \
			__v = BPF_CORE_READ((T *)(p), field);      \
		__v;                                               \
	})

/*
 * Untyped reads (Linux 6.17+: bpf_rdonly_cast() to type id 0, announced by
 * BPF_FEAT_RDONLY_CAST_TO_VOID): any byte of kernel memory behind a pointer
 * read with a plain load at any offset, a fault reading as 0. Used where
 * no BTF type describes the memory: a name's bytes, an array of pointers.
 * Older kernels take the helper reads (the branch not taken is dead code
 * at load time, as with vigil_direct_loads()).
 */
#define vigil_untyped_loads() \
	(vigil_direct_loads() && \
	 bpf_core_enum_value_exists(enum bpf_features, BPF_FEAT_RDONLY_CAST_TO_VOID))

/* @p as read-only untyped kernel memory (only under vigil_untyped_loads()). */
#define vigil_kmem(p) ((const __u8 *)bpf_rdonly_cast((const void *)(p), 0))

/* The 8 bytes at @p (kernel memory, only under vigil_untyped_loads()). */
static __always_inline __u64 vigil_kmem_u64(const void *p)
{
	return *(const __u64 *)vigil_kmem(p);
}

/* Copy the current task's name (TASK_COMM_LEN = 16 bytes, NUL-padded by
 * the kernel) to @dst: what bpf_get_current_comm() returns, with two
 * loads instead of a helper call (strscpy_pad) where the kernel allows. */
static __always_inline void vigil_current_comm(char *dst)
{
	if (vigil_untyped_loads()) {
		struct task_struct *t = bpf_get_current_task_btf();
		__u64 lo = vigil_kmem_u64(&t->comm[0]);
		__u64 hi = vigil_kmem_u64(&t->comm[8]);

		/* a concurrent PR_SET_NAME can tear the read; byte 15 is
		 * NUL in the kernel's copy and forced here, so it stays a
		 * terminated string either way */
		hi &= ~(0xffull << 56);
		__builtin_memcpy(dst, &lo, 8);
		__builtin_memcpy(dst + 8, &hi, 8);
		return;
	}
	bpf_get_current_comm(dst, 16);
}

static __always_inline struct dentry *vigil_d_parent(struct dentry *d)
{
	return vigil_kread(d, struct dentry, d_parent);
}

static __always_inline const unsigned char *vigil_d_name(struct dentry *d)
{
	return vigil_kread(d, struct dentry, d_name.name);
}

static __always_inline __u32 vigil_d_name_len(struct dentry *d)
{
	return vigil_kread(d, struct dentry, d_name.len);
}

static __always_inline struct dentry *vigil_mnt_root(struct mount *m)
{
	return vigil_kread(m, struct mount, mnt.mnt_root);
}

static __always_inline struct mount *vigil_mnt_parent(struct mount *m)
{
	return vigil_kread(m, struct mount, mnt_parent);
}

static __always_inline struct dentry *vigil_mnt_mountpoint(struct mount *m)
{
	return vigil_kread(m, struct mount, mnt_mountpoint);
}

static __always_inline struct dentry *vigil_file_dentry(struct file *f)
{
	return vigil_kread(f, struct file, f_path.dentry);
}

static __always_inline struct vfsmount *vigil_file_mnt(struct file *f)
{
	return vigil_kread(f, struct file, f_path.mnt);
}

static __always_inline struct inode *vigil_file_inode(struct file *f)
{
	return vigil_kread(f, struct file, f_inode);
}

/* Whether @f (may be NULL) is on a file system with superblock magic @magic
 * (nsfs, anon_inodefs: which kernel object a descriptor stands for). */
static __always_inline bool vigil_file_on_fs(struct file *f, unsigned long magic)
{
	struct inode *i = f ? vigil_file_inode(f) : NULL;
	struct super_block *sb = i ? vigil_kread(i, struct inode, i_sb) : NULL;

	return sb && vigil_kread(sb, struct super_block, s_magic) == magic;
}

static __always_inline __u64 vigil_inode_ino(struct inode *i)
{
	return vigil_kread(i, struct inode, i_ino);
}

static __always_inline __u32 vigil_inode_dev(struct inode *i)
{
	struct super_block *sb = vigil_kread(i, struct inode, i_sb);

	return vigil_kread(sb, struct super_block, s_dev);
}

#endif /* VIGIL_KREAD_BPF_H */
