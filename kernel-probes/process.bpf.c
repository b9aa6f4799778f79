// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vigil process lifecycle probes: exec, fork (new processes), exit.
 *
 * Records are defined in schemas/vigil_abi.h; every record leaves through
 * vigil_emit() (include/emit.bpf.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "vigil_abi.h"
#include "maps.bpf.h"
#include "emit.bpf.h"
#include "core_fixes.bpf.h"
#include "task.bpf.h"
#include "path.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Keep every record type in the object's BTF (the Rust ABI test compares
 * its mirror against it). Read-only and never referenced by the programs.
 */
const volatile struct vigil_exec vigil_btf_exec __attribute__((used));
const volatile struct vigil_fork vigil_btf_fork __attribute__((used));
const volatile struct vigil_exit vigil_btf_exit __attribute__((used));
/* The ABI's enums, kept in BTF for the same check. */
const volatile enum vigil_limit vigil_btf_limit __attribute__((used));
const volatile enum vigil_event_type vigil_btf_event_type __attribute__((used));
const volatile enum vigil_lane vigil_btf_lane __attribute__((used));
const volatile enum vigil_drop_cause vigil_btf_drop_cause __attribute__((used));
const volatile enum vigil_field_problem vigil_btf_field_problem __attribute__((used));
const volatile enum vigil_field_flag vigil_btf_field_flag __attribute__((used));
const volatile enum vigil_reason vigil_btf_reason __attribute__((used));
const volatile enum vigil_exe_flag vigil_btf_exe_flag __attribute__((used));
const volatile struct vigil_file vigil_btf_file __attribute__((used));
const volatile struct vigil_memfd vigil_btf_memfd __attribute__((used));
const volatile struct vigil_cred_change vigil_btf_cred_change __attribute__((used));
const volatile struct vigil_ns_change vigil_btf_ns_change __attribute__((used));
const volatile enum vigil_ns_index vigil_btf_ns_index __attribute__((used));
const volatile struct vigil_bpf vigil_btf_bpf __attribute__((used));
const volatile struct vigil_module vigil_btf_module __attribute__((used));
const volatile struct vigil_ptrace vigil_btf_ptrace __attribute__((used));
const volatile struct vigil_mount vigil_btf_mount __attribute__((used));
const volatile struct vigil_net vigil_btf_net __attribute__((used));
const volatile enum vigil_hook vigil_btf_hook __attribute__((used));
const volatile enum vigil_syscall vigil_btf_syscall __attribute__((used));
const volatile enum vigil_path_source vigil_btf_path_source __attribute__((used));

/* s_magic values, include/uapi/linux/magic.h */
#define VIGIL_TMPFS_MAGIC 0x01021994
#define VIGIL_HUGETLBFS_MAGIC 0x958458f6

/*
 * Variable part of an exec record, in order: exe (<= VIGIL_PATH_MAX bytes),
 * filename (<= VIGIL_PATH_MAX), args (<= VIGIL_ARGS_CAP), cwd
 * (<= VIGIL_PATH_MAX): VIGIL_RECORD_MAX is exactly the sum. The paths and
 * the filename keep at most path_max bytes (see vigil_path_limit()). Each reader
 * checks that its own maximum still fits at the offset it is given, which
 * is also what lets the verifier prove every write is in bounds.
 */
#define VIGIL_VAR_START ((__u32)sizeof(struct vigil_exec))

static __always_inline int vigil_ignored(__u32 tgid)
{
	return vigil_tgid && tgid == vigil_tgid;
}

/* Count the problems of one stored field in field_counters. Every field
 * flagged TRUNCATED counts as TRUNCATED; read faults and depth limits are
 * counted in addition under their own slot. */
static __always_inline void vigil_field_account(__u32 type,
						const struct vigil_field *f)
{
	if (f->flags & VIGIL_F_TRUNCATED)
		vigil_count_field(type, VIGIL_FIELDP_TRUNCATED);
	if (f->reason == VIGIL_R_READ_FAULT)
		vigil_count_field(type, VIGIL_FIELDP_READ_FAULT);
	else if (f->reason == VIGIL_R_DEPTH_LIMIT)
		vigil_count_field(type, VIGIL_FIELDP_PATH_DEPTH);
}

/*
 * Kernel string (bprm->filename) at @rec + @off. The whole string (at most
 * VIGIL_PATH_MAX bytes with its NUL, the room reserved for it) is read so
 * that its length is known exactly; only the first path limit bytes
 * (path_max) are kept: f->len stops there and whatever follows is
 * overwritten by the next field or lies past the end of the record.
 * Returns f->len.
 */
static __noinline __u32 vigil_read_kstr(__u8 *rec, __u32 off,
					struct vigil_field *f, const char *src)
{
	__u32 lim = vigil_path_limit(), len;
	long n;
	char last = 0;

	f->off = off;
	f->len = 0;
	f->orig_len = 0;
	if (off > VIGIL_RECORD_MAX - VIGIL_PATH_MAX) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_SIZE_LIMIT;
		return 0;
	}
	if (!src) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_NOT_SUPPORTED;
		return 0;
	}
	n = bpf_probe_read_kernel_str(rec + off, VIGIL_PATH_MAX, src);
	if (n <= 0 || n > VIGIL_PATH_MAX) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_READ_FAULT;
		return 0;
	}
	len = n - 1;
	f->flags = VIGIL_F_PRESENT;
	/* A full buffer is a cut string unless its last byte was the NUL:
	 * then the original size is not known. */
	if (n == VIGIL_PATH_MAX &&
	    (bpf_probe_read_kernel(&last, 1, src + VIGIL_PATH_MAX - 1) || last)) {
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_SIZE_LIMIT;
	} else {
		f->orig_len = len;
		f->flags |= VIGIL_F_SIZE_KNOWN;
	}
	if (len > lim) {  /* the configured limit: keep the prefix */
		len = lim;
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_SIZE_LIMIT;
	}
	f->len = len;
	return len;
}

/*
 * argv area of the new image, mm->arg_start .. mm->arg_end, copied as is
 * (NUL separators and the final NUL included: len == orig_len when not cut)
 * up to args_max bytes. The kernel has just written these pages through
 * copy_strings(), so they are resident and a non-faulting read works.
 * Returns f->len.
 */
static __noinline __u32 vigil_read_args(__u8 *rec, __u32 off,
					struct vigil_field *f,
					struct mm_struct *mm)
{
	unsigned long start, end;
	__u32 lim = args_max, n;

	f->off = off;
	f->len = 0;
	f->orig_len = 0;
	if (lim > VIGIL_ARGS_CAP)
		lim = VIGIL_ARGS_CAP;
	/* room for the args and the cwd that follows them */
	if (off > VIGIL_RECORD_MAX - VIGIL_PATH_MAX - VIGIL_ARGS_CAP) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_SIZE_LIMIT;
		return 0;
	}
	if (!mm) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_NOT_SUPPORTED;
		return 0;
	}
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
	if (end < start || end - start > 0xffffffffUL) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_RACE;
		return 0;
	}
	f->orig_len = end - start;
	f->flags = VIGIL_F_SIZE_KNOWN;
	n = f->orig_len;
	if (n > lim) {
		n = lim;
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_SIZE_LIMIT;
	}
	n &= (VIGIL_ARGS_CAP << 1) - 1;  /* no-op, bounds for the verifier */
	if (n > VIGIL_ARGS_CAP)
		n = VIGIL_ARGS_CAP;
	if (n && bpf_probe_read_user(rec + off, n, (void *)start)) {
		f->flags = VIGIL_F_UNAVAILABLE | VIGIL_F_SIZE_KNOWN;
		f->reason = VIGIL_R_READ_FAULT;
		return 0;
	}
	f->flags |= VIGIL_F_PRESENT;
	f->len = n;
	return n;
}

/* Properties of the executable file (VIGIL_EXE_*), best effort:
 *  DELETED: dentry unhashed while not a root (d_unlinked()), or inode
 *           link count 0;
 *  MEMFD:   a pseudo dentry (its own parent, so not in any directory) on
 *           shmem or hugetlbfs whose name starts with "memfd:", which is
 *           how memfd_create() names its files. Such files are also
 *           DELETED (the inode has no links). */
static __always_inline __u32 vigil_exe_flags(struct dentry *d)
{
	struct dentry *parent;
	struct inode *inode;
	unsigned long magic;
	char pfx[8] = {};
	__u32 flags = 0;

	if (!d)
		return 0;
	parent = BPF_CORE_READ(d, d_parent);
	inode = BPF_CORE_READ(d, d_inode);
	if ((!BPF_CORE_READ(d, d_hash.pprev) && parent != d) ||
	    (inode && BPF_CORE_READ(inode, i_nlink) == 0))
		flags |= VIGIL_EXE_DELETED;

	magic = BPF_CORE_READ(d, d_sb, s_magic);
	if (parent == d &&
	    (magic == VIGIL_TMPFS_MAGIC || magic == VIGIL_HUGETLBFS_MAGIC) &&
	    !bpf_probe_read_kernel(pfx, 6, BPF_CORE_READ(d, d_name.name)) &&
	    pfx[0] == 'm' && pfx[1] == 'e' && pfx[2] == 'm' &&
	    pfx[3] == 'f' && pfx[4] == 'd' && pfx[5] == ':')
		flags |= VIGIL_EXE_MEMFD;
	return flags;
}

static __always_inline void vigil_exec_fixed(struct vigil_exec *e,
					     struct task_struct *p,
					     struct linux_binprm *bprm)
{
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	struct signal_struct *sig = BPF_CORE_READ(p, signal);

	e->ppid = BPF_CORE_READ(parent, tgid);
	e->parent_start_ns = vigil_leader_start_ns(parent);
	e->start_ns = vigil_leader_start_ns(p);
	vigil_fill_creds(p, &e->creds);
	e->sid = vigil_pid_nr(BPF_CORE_READ(sig, pids[PIDTYPE_SID]));
	e->pgid = vigil_pid_nr(BPF_CORE_READ(sig, pids[PIDTYPE_PGID]));
	e->tty = BPF_CORE_READ(sig, tty) != NULL;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->argc = BPF_CORE_READ(bprm, argc);
	e->vpid = vigil_pid_vnr(BPF_CORE_READ(p, thread_pid), &e->nsid);
	vigil_current_comm(e->comm);
}

/* Build and emit one exec record in the (owned) scratch value @s. */
static __always_inline void vigil_exec_record(struct vigil_scratch *s,
					      struct task_struct *p,
					      pid_t old_pid,
					      struct linux_binprm *bprm,
					      __u64 id)
{
	struct vigil_exec *e = (void *)s->rec;
	struct dentry *exe_dentry;
	struct mm_struct *mm;
	struct file *exe;
	__u32 off;

	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	e->hdr.tgid = id >> 32;
	e->hdr.pid = (__u32)id;
	e->old_pid = old_pid;
	vigil_exec_fixed(e, p, bprm);

	mm = BPF_CORE_READ(p, mm);
	exe = BPF_CORE_READ(mm, exe_file);
	if (!exe)
		exe = BPF_CORE_READ(bprm, file);
	exe_dentry = BPF_CORE_READ(exe, f_path.dentry);
	e->exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
	e->path_flags = vigil_exe_flags(exe_dentry);

	off = VIGIL_VAR_START;
	off += vigil_resolve_path(s, exe_dentry, BPF_CORE_READ(exe, f_path.mnt),
				  &e->exe, off);
	off += vigil_read_kstr(s->rec, off, &e->filename,
			       BPF_CORE_READ(bprm, filename));
	off += vigil_read_args(s->rec, off, &e->args, mm);
	off += vigil_resolve_path(s, BPF_CORE_READ(p, fs, pwd.dentry),
				  BPF_CORE_READ(p, fs, pwd.mnt), &e->cwd, off);

	vigil_field_account(VIGIL_EV_EXEC, &e->exe);
	vigil_field_account(VIGIL_EV_EXEC, &e->filename);
	vigil_field_account(VIGIL_EV_EXEC, &e->args);
	vigil_field_account(VIGIL_EV_EXEC, &e->cwd);

	vigil_emit(e, off, VIGIL_EV_EXEC);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 cpu = bpf_get_smp_processor_id();
	struct vigil_scratch *s;

	if (vigil_ignored(id >> 32))
		return 0;
	s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s || __sync_lock_test_and_set(&s->busy, 1)) {
		vigil_drop(VIGIL_EV_EXEC, VIGIL_DROP_SCRATCH);
		return 0;
	}
	vigil_exec_record(s, p, old_pid, bprm, id);
	s->busy = 0;
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct vigil_fork r = {};
	__u32 ptgid, ctgid, cpid, nsid;

	cpid = BPF_CORE_READ(child, pid);
	ctgid = BPF_CORE_READ(child, tgid);
	if (cpid != ctgid)  /* a new thread, not a new process */
		return 0;
	ptgid = BPF_CORE_READ(parent, tgid);
	if (vigil_ignored(ptgid))
		return 0;

	r.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	r.hdr.tgid = ptgid;
	r.hdr.pid = BPF_CORE_READ(parent, pid);
	r.child_tgid = ctgid;
	r.child_pid = cpid;
	r.child_start_ns = vigil_task_start_ns(child);
	r.parent_start_ns = vigil_leader_start_ns(parent);
	r.child_vpid = vigil_pid_vnr(BPF_CORE_READ(child, thread_pid), &nsid);
	BPF_CORE_READ_STR_INTO(&r.comm, child, comm);

	vigil_emit(&r, sizeof(r), VIGIL_EV_FORK);
	return 0;
}

/* Raw context: the group_dead argument only exists on newer kernels
 * (see vigil_exit_group_dead()). */
SEC("tp_btf/sched_process_exit")
int handle_exit(unsigned long long *ctx)
{
	struct task_struct *p = (void *)ctx[0];
	struct vigil_exit r = {};
	struct signal_struct *sig;
	__u32 tgid, pid, group_dead;

	tgid = BPF_CORE_READ(p, tgid);
	pid = BPF_CORE_READ(p, pid);
	if (vigil_ignored(tgid))
		return 0;
	/* Only the end of the whole thread group is a process exit. A leader
	 * that leaves early (pthread_exit, or replaced by a non-leader thread's
	 * exec) is not: reporting it would end the process's context while it
	 * still runs, and its exit code would not be the process's. */
	group_dead = vigil_exit_group_dead(ctx, p);
	if (!group_dead)
		return 0;

	sig = BPF_CORE_READ(p, signal);
	r.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	r.hdr.tgid = tgid;
	r.hdr.pid = pid;
	r.ppid = BPF_CORE_READ(p, real_parent, tgid);
	if (BPF_CORE_READ(sig, flags) & VIGIL_SIGNAL_GROUP_EXIT)
		r.exit_code = BPF_CORE_READ(sig, group_exit_code);
	else
		r.exit_code = BPF_CORE_READ(p, exit_code);
	r.start_ns = vigil_leader_start_ns(p);
	r.group_dead = group_dead;
	BPF_CORE_READ_STR_INTO(&r.comm, p, comm);

	vigil_emit(&r, sizeof(r), VIGIL_EV_EXIT);
	return 0;
}

/*
 * The event families. They are part of this object (one skeleton, one ring
 * buffer and one set of counters); the loader turns each family's programs
 * on or off with autoload before load.
 */
#include "file.bpf.c"
#include "fileless.bpf.c"
#include "privilege.bpf.c"
#include "kernel.bpf.c"
#include "net.bpf.c"
