/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Helpers of the syscall-based event families: arguments stashed at
 * sys_enter and picked up at sys_exit (with the return value), descriptors
 * resolved to the kernel's struct file, and path arguments made absolute.
 *
 * Rule: nothing reported is read from a user pointer at syscall entry. The
 * enter programs only keep the raw argument values (registers); whatever
 * they point to is read at exit, after the kernel has used (and copied) it,
 * and wherever a kernel object exists (an opened file, a socket, a BPF
 * program) the record describes that object instead.
 */
#ifndef VIGIL_SYS_BPF_H
#define VIGIL_SYS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "vigil_abi.h"
#include "maps.bpf.h"
#include "path.bpf.h"
#include "kread.bpf.h"

#define VIGIL_AT_FDCWD -100

/* Arguments of one syscall in flight, keyed by the thread (pid_tgid). */
struct vigil_stash {
	__u64 args[6];
	__u32 sys;          /* enum vigil_syscall */
	__u32 kind;         /* family-specific (e.g. open: read or write) */
	__u64 data[12];     /* family-specific state taken at entry from
			     * kernel objects (old credentials, namespaces) */
};

/* LRU: a thread killed inside a syscall never reaches its exit program;
 * its entry is recycled instead of leaking. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vigil_stash);
} syscall_stash SEC(".maps");

/*
 * The context is read at constant offsets only (the verifier refuses a
 * moved context pointer), and only up to the syscall's @nargs (a constant
 * after inlining): attaching fails with EACCES when a program reads past
 * the end of its tracepoint's context.
 */
static __always_inline struct vigil_stash *
vigil_stash_args(__u32 sys, struct trace_event_raw_sys_enter *ctx, __u32 kind,
		 const int nargs)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct vigil_stash st = {};

	st.sys = sys;
	st.kind = kind;
	if (nargs > 0)
		st.args[0] = ctx->args[0];
	if (nargs > 1)
		st.args[1] = ctx->args[1];
	if (nargs > 2)
		st.args[2] = ctx->args[2];
	if (nargs > 3)
		st.args[3] = ctx->args[3];
	if (nargs > 4)
		st.args[4] = ctx->args[4];
	if (nargs > 5)
		st.args[5] = ctx->args[5];
	if (bpf_map_update_elem(&syscall_stash, &id, &st, BPF_ANY))
		return NULL;
	return bpf_map_lookup_elem(&syscall_stash, &id);
}

/* Take (copy out and delete) this thread's stashed arguments; 0 when there
 * are none (the entry program filtered the call, or was not attached). */
static __always_inline int vigil_take_args(__u32 sys, struct vigil_stash *out)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct vigil_stash *st = bpf_map_lookup_elem(&syscall_stash, &id);

	if (!st)
		return 0;
	if (st->sys != sys) {  /* stale entry of an interrupted syscall */
		bpf_map_delete_elem(&syscall_stash, &id);
		return 0;
	}
	__builtin_memcpy(out, st, sizeof(*out));
	bpf_map_delete_elem(&syscall_stash, &id);
	return 1;
}

/* The syscall's arguments at exit, from the user registers @regs saved at
 * entry (the syscall does not change them): no enter program needed. The
 * registers are read with plain loads (a typed pointer: a tp_btf/sys_exit
 * program's own argument, or what bpf_task_pt_regs() returns). */
static __always_inline void vigil_syscall_args_of(struct vigil_stash *st,
						  struct pt_regs *regs, const int nargs)
{
	if (nargs > 0)
		st->args[0] = PT_REGS_PARM1_SYSCALL(regs);
	if (nargs > 1)
		st->args[1] = PT_REGS_PARM2_SYSCALL(regs);
	if (nargs > 2)
		st->args[2] = PT_REGS_PARM3_SYSCALL(regs);
	if (nargs > 3)
		st->args[3] = PT_REGS_PARM4_SYSCALL(regs);
}

/* The same, from the current task's saved registers. */
static __always_inline void vigil_syscall_args(struct vigil_stash *st, const int nargs)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	vigil_syscall_args_of(st, regs, nargs);
}

/* The struct file behind descriptor @fd of the current task, or NULL. */
static __always_inline struct file *vigil_fd_file(long fd)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct files_struct *files = vigil_kread(t, struct task_struct, files);
	struct fdtable *fdt = vigil_kread(files, struct files_struct, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd < 0 || fd >= vigil_kread(fdt, struct fdtable, max_fds))
		return NULL;
	fds = vigil_kread(fdt, struct fdtable, fd);
	if (!fds)
		return NULL;
	if (vigil_untyped_loads())
		return (struct file *)vigil_kmem_u64(&fds[fd]);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* Acquire this CPU's scratch value; NULL (and the drop counted) when it is
 * missing or busy. Release with vigil_scratch_put(). */
static __always_inline struct vigil_scratch *vigil_scratch_get(__u32 type)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct vigil_scratch *s = bpf_map_lookup_elem(&scratch, &cpu);

	if (!s || __sync_lock_test_and_set(&s->busy, 1)) {
		vigil_drop(type, VIGIL_DROP_SCRATCH);
		return NULL;
	}
	return s;
}

static __always_inline void vigil_scratch_put(struct vigil_scratch *s)
{
	s->busy = 0;
}

/* Fill the header fields the emitter leaves to the caller, for the
 * current thread whose bpf_get_current_pid_tgid() is @id. */
static __always_inline void vigil_hdr_of(struct vigil_hdr *h, __u64 id)
{
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->tgid = id >> 32;
	h->pid = (__u32)id;
}

static __always_inline void vigil_hdr_now(struct vigil_hdr *h)
{
	vigil_hdr_of(h, bpf_get_current_pid_tgid());
}

/*
 * A path argument (user pointer @uptr, read at syscall exit: the kernel has
 * copied it, so it is paged in) stored at @rec + @off and made absolute: a
 * relative name is appended to the kernel-resolved path of @dfd (or of the
 * cwd for AT_FDCWD). Not normalised ("." and ".." stay as passed). Keeps at
 * most VIGIL_PATH_MAX bytes of the name; when the directory could not be
 * resolved the name is stored as passed and flagged TRUNCATED with reason
 * PATH_UNRESOLVED. Returns f->len. With @name->kernel the name is in kernel
 * memory (a copy the kernel made, e.g. io_uring's, stashed in a map)
 * instead of a user pointer.
 */
struct vigil_name {
	const char *ptr;
	long dfd;
	__u64 kernel;
};

static __noinline __u32 vigil_name_path(struct vigil_scratch *s, __u32 off,
					struct vigil_field *f,
					const struct vigil_name *name)
{
	const char *uptr = name->ptr;
	long dfd = name->dfd;
	__u32 kname = name->kernel;
	struct dentry *dentry = NULL;
	struct vfsmount *mnt = NULL;
	__u32 n = 0, dir_unresolved = 0;
	char c = 0;
	long m;

	f->off = off;
	f->len = 0;
	f->orig_len = 0;
	f->flags = VIGIL_F_UNAVAILABLE;
	if (off > VIGIL_RECORD_MAX - 2 * VIGIL_PATH_MAX - 2) {
		f->reason = VIGIL_R_SIZE_LIMIT;
		return 0;
	}
	if (!uptr) {
		f->reason = VIGIL_R_NOT_SUPPORTED;
		return 0;
	}
	if (kname ? bpf_probe_read_kernel(&c, 1, uptr) : bpf_probe_read_user(&c, 1, uptr)) {
		f->reason = VIGIL_R_READ_FAULT;
		return 0;
	}
	if (c != '/') {
		if ((int)dfd == VIGIL_AT_FDCWD) {
			struct task_struct *t = (void *)bpf_get_current_task();

			dentry = BPF_CORE_READ(t, fs, pwd.dentry);
			mnt = BPF_CORE_READ(t, fs, pwd.mnt);
		} else {
			struct file *df = vigil_fd_file(dfd);

			dentry = BPF_CORE_READ(df, f_path.dentry);
			mnt = BPF_CORE_READ(df, f_path.mnt);
		}
		n = vigil_resolve_path(s, dentry, mnt, f, off);
		if (!(f->flags & VIGIL_F_PRESENT) || (f->flags & VIGIL_F_TRUNCATED)) {
			n = 0;
			dir_unresolved = 1;
		}
		if (n > VIGIL_PATH_MAX)
			n = VIGIL_PATH_MAX;
		if (n) {
			__u32 last = off + n - 1;

			if (last < VIGIL_RECORD_MAX - 1 && s->rec[last] != '/') {
				s->rec[last + 1] = '/';
				n++;
			}
		}
	}
	n &= 2 * VIGIL_PATH_MAX - 1;
	if (n > VIGIL_PATH_MAX + 1)
		n = VIGIL_PATH_MAX + 1;
	if (kname)
		m = bpf_probe_read_kernel_str(s->rec + off + n, VIGIL_PATH_MAX, uptr);
	else
		m = bpf_probe_read_user_str(s->rec + off + n, VIGIL_PATH_MAX, uptr);
	f->off = off;
	f->orig_len = 0;
	if (m <= 0) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_READ_FAULT;
		f->len = 0;
		return 0;
	}
	f->len = n + m - 1;
	f->flags = VIGIL_F_PRESENT;
	f->reason = VIGIL_R_NONE;
	if (m == VIGIL_PATH_MAX) {
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_SIZE_LIMIT;
	} else {
		f->orig_len = f->len;
		f->flags |= VIGIL_F_SIZE_KNOWN;
	}
	if (dir_unresolved) {
		f->flags |= VIGIL_F_TRUNCATED;
		f->flags &= ~VIGIL_F_SIZE_KNOWN;
		f->reason = VIGIL_R_PATH_UNRESOLVED;
	}
	return f->len;
}

/* vigil_name_path() of a syscall's path argument (a user pointer). */
static __always_inline __u32 vigil_arg_path(struct vigil_scratch *s, __u32 off,
					    struct vigil_field *f, const char *uptr,
					    long dfd)
{
	struct vigil_name n = { .ptr = uptr, .dfd = dfd };

	return vigil_name_path(s, off, f, &n);
}

/* The path of an opened file, walked from its struct file. Returns f->len;
 * with no file the field is unavailable (PATH_UNRESOLVED). */
static __always_inline __u32 vigil_file_path(struct vigil_scratch *s,
					     __u32 off, struct vigil_field *f,
					     struct file *file)
{
	return vigil_resolve_path(s, vigil_file_dentry(file), vigil_file_mnt(file), f, off);
}

#endif /* VIGIL_SYS_BPF_H */
