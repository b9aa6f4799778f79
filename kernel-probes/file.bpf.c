// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vigil file events: open/openat/openat2/creat (by default only those that
 * write, create or truncate, plus reads under watched path prefixes).
 *
 * Part of the process.bpf.c object (#included there): the families share
 * its ring buffer, sequence streams and counters. Every record leaves
 * through vigil_emit().
 *
 * Filtering happens in the kernel, before any ring buffer space is used:
 * the enter program stashes only calls that can be reported (write flags,
 * or a read while read prefixes are configured); the exit program drops
 * reads whose resolved path matches no watched prefix.
 */
#include "sys.bpf.h"

/* Read-open prefixes (absolute, kernel-resolved path), written by the loader. */
#define VIGIL_PREFIX_MAX 8
#define VIGIL_PREFIX_LEN 64
const volatile __u32 file_read_prefix_count = 0;
const volatile __u32 file_read_prefix_len[VIGIL_PREFIX_MAX] = {};
const volatile char file_read_prefixes[VIGIL_PREFIX_MAX][VIGIL_PREFIX_LEN] = {};

/* include/uapi/asm-generic/fcntl.h */
#define VIGIL_O_ACCMODE 03
#define VIGIL_O_CREAT 0100
#define VIGIL_O_TRUNC 01000
#define VIGIL_OPEN_WRITE_FLAGS (VIGIL_O_ACCMODE | VIGIL_O_CREAT | VIGIL_O_TRUNC)

enum vigil_open_kind {
	VIGIL_OPEN_WRITE = 1,   /* reported always */
	VIGIL_OPEN_READ = 2,    /* reported under a watched prefix */
	VIGIL_OPEN_DEFER = 3,   /* openat2: flags are read at exit */
};

/* Whether the stored path starts with one of the watched prefixes. */
static __always_inline int vigil_prefix_match(struct vigil_scratch *s,
					      const struct vigil_field *f)
{
	__u32 i, j, n = file_read_prefix_count, plen, off = f->off;

	if (!(f->flags & VIGIL_F_PRESENT) || off > VIGIL_RECORD_MAX - VIGIL_PREFIX_LEN)
		return 0;
	for (i = 0; i < VIGIL_PREFIX_MAX; i++) {
		int ok = 1;

		if (i >= n)
			break;
		plen = file_read_prefix_len[i];
		if (plen == 0 || plen > VIGIL_PREFIX_LEN || plen > f->len)
			continue;
		for (j = 0; j < VIGIL_PREFIX_LEN; j++) {
			if (j >= plen)
				break;
			if (s->rec[off + j] != file_read_prefixes[i][j]) {
				ok = 0;
				break;
			}
		}
		if (ok)
			return 1;
	}
	return 0;
}

/* struct open_how (include/uapi/linux/openat2.h) */
struct vigil_open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

/* The inode number and device of an opened file. */
static __always_inline void vigil_file_ids(struct vigil_file *r, struct file *file)
{
	struct inode *inode = vigil_file_inode(file);

	r->ino = vigil_inode_ino(inode);
	r->dev = vigil_inode_dev(inode);
}

static __always_inline int vigil_open_exit(__u32 sys, long ret, const int nargs, __u32 hook)
{
	struct vigil_stash st = {};
	struct vigil_scratch *s;
	struct vigil_file *r;
	struct file *file = NULL;
	const char *name;
	__u32 off, kind;
	long dfd;

	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	vigil_syscall_args(&st, nargs);
	/* In-kernel filter, before anything is built: writes, creates and
	 * truncates always; reads only when prefixes are watched (openat2's
	 * flags are in user memory: decided below). */
	switch (sys) {
	case VIGIL_SYS_OPEN:
		kind = (st.args[1] & VIGIL_OPEN_WRITE_FLAGS) ? VIGIL_OPEN_WRITE : VIGIL_OPEN_READ;
		break;
	case VIGIL_SYS_OPENAT:
		kind = (st.args[2] & VIGIL_OPEN_WRITE_FLAGS) ? VIGIL_OPEN_WRITE : VIGIL_OPEN_READ;
		break;
	case VIGIL_SYS_CREAT:
		kind = VIGIL_OPEN_WRITE;
		break;
	default:
		kind = VIGIL_OPEN_DEFER;
		break;
	}
	if (kind == VIGIL_OPEN_READ && !file_read_prefix_count)
		return 0;
	/* Writes are reported: an excluded process's are dropped (and counted)
	 * before the walk. A read is an event only under a watched prefix,
	 * known after the walk: vigil_emit() filters those. */
	if (kind == VIGIL_OPEN_WRITE && vigil_excluded_early(VIGIL_EV_FILE_OPEN))
		return 0;
	s = vigil_scratch_get(VIGIL_EV_FILE_OPEN);
	if (!s)
		return 0;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_now(&r->hdr);
	r->ret = ret;
	r->syscall = sys;
	r->hook = hook;
	r->uid = (__u32)-1;
	r->gid = (__u32)-1;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	switch (sys) {
	case VIGIL_SYS_OPEN:
		dfd = VIGIL_AT_FDCWD;
		name = (const char *)st.args[0];
		r->flags = st.args[1];
		r->mode = st.args[2];
		break;
	case VIGIL_SYS_CREAT:
		dfd = VIGIL_AT_FDCWD;
		name = (const char *)st.args[0];
		r->flags = 01 | VIGIL_O_CREAT | VIGIL_O_TRUNC;
		r->mode = st.args[1];
		break;
	case VIGIL_SYS_OPENAT2: {
		struct vigil_open_how how = {};

		dfd = st.args[0];
		name = (const char *)st.args[1];
		/* the kernel copied the struct at entry: paged in now */
		if (bpf_probe_read_user(&how, sizeof(how), (void *)st.args[2]) == 0) {
			r->flags = how.flags;
			r->mode = how.mode;
			kind = (how.flags & VIGIL_OPEN_WRITE_FLAGS) ?
			       VIGIL_OPEN_WRITE : VIGIL_OPEN_READ;
		} else {
			kind = VIGIL_OPEN_WRITE;  /* unknown flags: report */
		}
		break;
	}
	default: /* openat */
		dfd = st.args[0];
		name = (const char *)st.args[1];
		r->flags = st.args[2];
		r->mode = st.args[3];
		break;
	}
	if (kind == VIGIL_OPEN_READ && !file_read_prefix_count)
		goto out;

	off = sizeof(*r);
	if (ret >= 0)
		file = vigil_fd_file(ret);
	if (file) {
		vigil_file_ids(r, file);
		r->path_source = VIGIL_PATH_SRC_OBJECT;
		off += vigil_file_path(s, off, &r->path, file);
	} else {
		r->path_source = VIGIL_PATH_SRC_ARG;
		off += vigil_arg_path(s, off, &r->path, name, dfd);
	}
	if (kind == VIGIL_OPEN_READ && !vigil_prefix_match(s, &r->path))
		goto out;
	vigil_field_account(VIGIL_EV_FILE_OPEN, &r->path);
	vigil_emit(r, off, VIGIL_EV_FILE_OPEN);
out:
	vigil_scratch_put(s);
	return 0;
}

/* The open family has no enter programs: the exit program reads the
 * argument registers from the task's saved user registers (unchanged by
 * the syscall), which saves a program run and a hash map round trip per
 * open, the bulk event. */

SEC("tracepoint/syscalls/sys_exit_openat")
int file_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_OPENAT, ctx->ret, 4, VIGIL_HOOK_SYSCALL_TP);
}


SEC("tracepoint/syscalls/sys_exit_open")
int file_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_OPEN, ctx->ret, 3, VIGIL_HOOK_SYSCALL_TP);
}


SEC("tracepoint/syscalls/sys_exit_creat")
int file_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_CREAT, ctx->ret, 2, VIGIL_HOOK_SYSCALL_TP);
}


SEC("tracepoint/syscalls/sys_exit_openat2")
int file_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_OPENAT2, ctx->ret, 3, VIGIL_HOOK_SYSCALL_TP);
}

/*
 * unlink, rename, chmod, chown, truncate. No object results from these
 * calls, so by-path variants report the path argument (read at exit, made
 * absolute with the dirfd's or cwd's kernel path; path_source ARG) and the
 * descriptor variants (fchmod, fchown, ftruncate) the opened file's path
 * (path_source OBJECT).
 */
static __always_inline int vigil_pathop_enter(__u32 sys, struct trace_event_raw_sys_enter *ctx,
					      const int nargs)
{
	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	vigil_stash_args(sys, ctx, 0, nargs);
	return 0;
}

/* Path of descriptor @fd (OBJECT) into @f at @off. */
static __always_inline __u32 vigil_fd_path(struct vigil_scratch *s, __u32 off,
					   struct vigil_field *f, long fd,
					   struct vigil_file *r)
{
	struct file *file = vigil_fd_file(fd);

	r->path_source = VIGIL_PATH_SRC_OBJECT;
	if (file)
		vigil_file_ids(r, file);
	return vigil_file_path(s, off, f, file);
}

static __always_inline int vigil_pathop_exit(__u32 sys, __u32 type, long ret)
{
	struct vigil_stash st;
	struct vigil_scratch *s;
	struct vigil_file *r;
	const unsigned long *a;
	__u32 off;

	if (!vigil_take_args(sys, &st) || vigil_excluded_early(type))
		return 0;
	s = vigil_scratch_get(type);
	if (!s)
		return 0;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_now(&r->hdr);
	r->ret = ret;
	r->syscall = sys;
	r->hook = VIGIL_HOOK_SYSCALL_TP;
	r->uid = (__u32)-1;
	r->gid = (__u32)-1;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	a = (const unsigned long *)st.args;
	off = sizeof(*r);
	r->path_source = VIGIL_PATH_SRC_ARG;
	switch (sys) {
	case VIGIL_SYS_UNLINK:
	case VIGIL_SYS_RMDIR:
		off += vigil_arg_path(s, off, &r->path, (const char *)a[0], VIGIL_AT_FDCWD);
		break;
	case VIGIL_SYS_UNLINKAT:
		r->flags = a[2];
		off += vigil_arg_path(s, off, &r->path, (const char *)a[1], a[0]);
		break;
	case VIGIL_SYS_RENAME:
		r->path2_source = VIGIL_PATH_SRC_ARG;
		off += vigil_arg_path(s, off, &r->path, (const char *)a[0], VIGIL_AT_FDCWD);
		off += vigil_arg_path(s, off, &r->path2, (const char *)a[1], VIGIL_AT_FDCWD);
		break;
	case VIGIL_SYS_RENAMEAT:
	case VIGIL_SYS_RENAMEAT2:
		if (sys == VIGIL_SYS_RENAMEAT2)
			r->flags = a[4];
		r->path2_source = VIGIL_PATH_SRC_ARG;
		off += vigil_arg_path(s, off, &r->path, (const char *)a[1], a[0]);
		off += vigil_arg_path(s, off, &r->path2, (const char *)a[3], a[2]);
		break;
	case VIGIL_SYS_CHMOD:
		r->mode = a[1];
		off += vigil_arg_path(s, off, &r->path, (const char *)a[0], VIGIL_AT_FDCWD);
		break;
	case VIGIL_SYS_FCHMOD:
		r->mode = a[1];
		off += vigil_fd_path(s, off, &r->path, a[0], r);
		break;
	case VIGIL_SYS_FCHMODAT:
		r->mode = a[2];
		off += vigil_arg_path(s, off, &r->path, (const char *)a[1], a[0]);
		break;
	case VIGIL_SYS_CHOWN:
	case VIGIL_SYS_LCHOWN:
		r->uid = a[1];
		r->gid = a[2];
		off += vigil_arg_path(s, off, &r->path, (const char *)a[0], VIGIL_AT_FDCWD);
		break;
	case VIGIL_SYS_FCHOWN:
		r->uid = a[1];
		r->gid = a[2];
		off += vigil_fd_path(s, off, &r->path, a[0], r);
		break;
	case VIGIL_SYS_FCHOWNAT:
		r->uid = a[2];
		r->gid = a[3];
		r->flags = a[4];
		off += vigil_arg_path(s, off, &r->path, (const char *)a[1], a[0]);
		break;
	case VIGIL_SYS_TRUNCATE:
		r->length = a[1];
		off += vigil_arg_path(s, off, &r->path, (const char *)a[0], VIGIL_AT_FDCWD);
		break;
	default: /* ftruncate */
		r->length = a[1];
		off += vigil_fd_path(s, off, &r->path, a[0], r);
		break;
	}
	vigil_field_account(type, &r->path);
	if (r->path2_source)
		vigil_field_account(type, &r->path2);
	vigil_emit(r, off, type);
	vigil_scratch_put(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int file_unlink_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_UNLINK, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int file_unlink_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_UNLINK, VIGIL_EV_FILE_UNLINK, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int file_unlinkat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_UNLINKAT, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int file_unlinkat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_UNLINKAT, VIGIL_EV_FILE_UNLINK, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_rmdir")
int file_rmdir_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_RMDIR, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_rmdir")
int file_rmdir_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_RMDIR, VIGIL_EV_FILE_UNLINK, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_rename")
int file_rename_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_RENAME, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_rename")
int file_rename_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_RENAME, VIGIL_EV_FILE_RENAME, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int file_renameat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_RENAMEAT, ctx, 4);
}

SEC("tracepoint/syscalls/sys_exit_renameat")
int file_renameat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_RENAMEAT, VIGIL_EV_FILE_RENAME, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int file_renameat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_RENAMEAT2, ctx, 5);
}

SEC("tracepoint/syscalls/sys_exit_renameat2")
int file_renameat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_RENAMEAT2, VIGIL_EV_FILE_RENAME, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_chmod")
int file_chmod_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_CHMOD, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_chmod")
int file_chmod_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_CHMOD, VIGIL_EV_FILE_CHMOD, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_fchmod")
int file_fchmod_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_FCHMOD, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_fchmod")
int file_fchmod_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_FCHMOD, VIGIL_EV_FILE_CHMOD, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_fchmodat")
int file_fchmodat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_FCHMODAT, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_fchmodat")
int file_fchmodat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_FCHMODAT, VIGIL_EV_FILE_CHMOD, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_chown")
int file_chown_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_CHOWN, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_chown")
int file_chown_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_CHOWN, VIGIL_EV_FILE_CHOWN, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_fchown")
int file_fchown_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_FCHOWN, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_fchown")
int file_fchown_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_FCHOWN, VIGIL_EV_FILE_CHOWN, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_lchown")
int file_lchown_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_LCHOWN, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_lchown")
int file_lchown_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_LCHOWN, VIGIL_EV_FILE_CHOWN, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_fchownat")
int file_fchownat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_FCHOWNAT, ctx, 5);
}

SEC("tracepoint/syscalls/sys_exit_fchownat")
int file_fchownat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_FCHOWNAT, VIGIL_EV_FILE_CHOWN, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_truncate")
int file_truncate_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_TRUNCATE, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_truncate")
int file_truncate_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_TRUNCATE, VIGIL_EV_FILE_TRUNCATE, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int file_ftruncate_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_FTRUNCATE, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_ftruncate")
int file_ftruncate_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_FTRUNCATE, VIGIL_EV_FILE_TRUNCATE, ctx->ret);
}

/*
 * Preferred variant of the unlink event where BPF-LSM is available: the
 * LSM hook sees the dentry the kernel resolved (path_source OBJECT), not the
 * argument. It runs before the removal, with the verdict of the LSMs before
 * it in @ret (0: allowed so far), so the record is an attempt; refusals by
 * DAC happen earlier and are not seen (the syscall variant reports them).
 * Start-up falls back to the syscall tracepoints when the kernel refuses
 * BPF-LSM programs.
 */
SEC("lsm/path_unlink")
int BPF_PROG(file_unlink_lsm, const struct path *dir, struct dentry *dentry, int ret)
{
	struct vigil_scratch *s;
	struct vigil_file *r;
	__u32 off;

	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32) ||
	    vigil_excluded_early(VIGIL_EV_FILE_UNLINK))
		return ret;
	s = vigil_scratch_get(VIGIL_EV_FILE_UNLINK);
	if (!s)
		return ret;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_now(&r->hdr);
	r->ret = ret;
	r->syscall = 0;  /* unlink, unlinkat: the hook does not say which */
	r->hook = VIGIL_HOOK_LSM;
	r->uid = (__u32)-1;
	r->gid = (__u32)-1;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->path_source = VIGIL_PATH_SRC_OBJECT;
	r->ino = BPF_CORE_READ(dentry, d_inode, i_ino);
	r->dev = BPF_CORE_READ(dentry, d_sb, s_dev);
	off = sizeof(*r);
	off += vigil_resolve_path(s, dentry, BPF_CORE_READ(dir, mnt), &r->path, off);
	vigil_field_account(VIGIL_EV_FILE_UNLINK, &r->path);
	vigil_emit(r, off, VIGIL_EV_FILE_UNLINK);
	vigil_scratch_put(s);
	return ret;  /* never changes the verdict */
}
