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
/* lsm/path_unlink reports unlinks (set by the loader with that variant):
 * unlinkat's tracepoint then reports only directory removals
 * (AT_REMOVEDIR), which go through security_path_rmdir instead. */
const volatile __u32 unlink_lsm = 0;
#define VIGIL_AT_REMOVEDIR 0x200
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

/* One open to report, whatever saw it: a syscall exit or an io_uring
 * completion. */
struct vigil_open_call {
	long ret;          /* descriptor (0: fixed file slot) or -errno */
	long fd;           /* descriptor whose file is walked, or -1 */
	long dfd;          /* directory a relative @name is taken from */
	const char *name;  /* path as passed; NULL: unavailable */
	__u64 flags;
	__u64 mode;
	__u32 sys;         /* enum vigil_syscall */
	__u32 hook;        /* enum vigil_hook */
	__u32 kind;        /* enum vigil_open_kind: READ or WRITE */
	__u32 kname;       /* @name is kernel memory, not a user pointer */
	__u32 no_name;     /* enum vigil_reason when @name is NULL */
	__u64 id;          /* bpf_get_current_pid_tgid() */
};

/*
 * The open record: the in-kernel filter (writes, creates and truncates
 * always; reads only under a watched prefix), then the path of the opened
 * file (OBJECT) or, when nothing was opened, of the name (ARG).
 */
static __always_inline int vigil_open_report(const struct vigil_open_call *c)
{
	struct vigil_scratch *s;
	struct vigil_file *r;
	struct file *file = NULL;
	__u32 off;

	if (c->kind == VIGIL_OPEN_READ && !file_read_prefix_count)
		return 0;
	/* Writes are reported: an excluded process's are dropped (and counted)
	 * before the walk. A read is an event only under a watched prefix,
	 * known after the walk: vigil_emit() filters those. */
	if (c->kind == VIGIL_OPEN_WRITE && vigil_excluded_early(VIGIL_EV_FILE_OPEN))
		return 0;
	s = vigil_scratch_get(VIGIL_EV_FILE_OPEN);
	if (!s)
		return 0;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_of(&r->hdr, c->id);
	r->ret = c->ret;
	r->syscall = c->sys;
	r->hook = c->hook;
	r->flags = c->flags;
	r->mode = c->mode;
	r->uid = (__u32)-1;
	r->gid = (__u32)-1;
	vigil_current_comm(r->comm);

	off = sizeof(*r);
	if (c->fd >= 0)
		file = vigil_fd_file(c->fd);
	if (file) {
		vigil_file_ids(r, file);
		r->path_source = VIGIL_PATH_SRC_OBJECT;
		off += vigil_file_path(s, off, &r->path, file);
	} else {
		r->path_source = VIGIL_PATH_SRC_ARG;
		struct vigil_name n = { .ptr = c->name, .dfd = c->dfd, .kernel = c->kname };

		off += vigil_name_path(s, off, &r->path, &n);
		if (!c->name)
			r->path.reason = c->no_name;
	}
	if (c->kind == VIGIL_OPEN_READ && !vigil_prefix_match(s, &r->path))
		goto out;
	vigil_field_account(VIGIL_EV_FILE_OPEN, &r->path);
	vigil_emit(r, off, VIGIL_EV_FILE_OPEN);
out:
	vigil_scratch_put(s);
	return 0;
}

static __always_inline __u32 vigil_open_kind(__u64 flags)
{
	return (flags & VIGIL_OPEN_WRITE_FLAGS) ? VIGIL_OPEN_WRITE : VIGIL_OPEN_READ;
}

/* fmode_t bits (include/linux/fs.h; #defines, not in BTF, stable). */
#define VIGIL_FMODE_READ 0x1
#define VIGIL_FMODE_WRITE 0x2
#define VIGIL_FMODE_CREATED 0x100000

/*
 * openat2's flags are in a struct in the caller's memory: the kernel
 * copied it at entry, and by the exit another thread may have rewritten
 * it (an O_WRONLY open re-read as O_RDONLY would be filtered out as a
 * read). For an open that succeeded, the access mode is taken from the
 * opened file (f_mode, which the caller can not change) and O_CREAT added
 * when the open created it; the other flag bits stay as re-read.
 */
static __always_inline void vigil_openat2_flags_of_file(struct vigil_open_call *c)
{
	struct file *file = vigil_fd_file(c->fd);
	__u32 fm;

	if (!file)
		return;
	fm = BPF_CORE_READ(file, f_mode);
	c->flags &= ~(__u64)VIGIL_O_ACCMODE;
	if (fm & VIGIL_FMODE_WRITE)
		c->flags |= (fm & VIGIL_FMODE_READ) ? 02 : 01;
	if (fm & VIGIL_FMODE_CREATED)
		c->flags |= VIGIL_O_CREAT;
	c->kind = (c->kind == VIGIL_OPEN_WRITE || vigil_open_kind(c->flags) == VIGIL_OPEN_WRITE) ?
		  VIGIL_OPEN_WRITE : VIGIL_OPEN_READ;
}

/* An open syscall's exit; @regs: its saved user registers when the program
 * has them (tp_btf/sys_exit), NULL to look them up. */
static __always_inline int vigil_open_exit(__u32 sys, long ret, const int nargs, __u32 hook,
					   struct pt_regs *regs)
{
	struct vigil_stash st = {};
	struct vigil_open_call c = {
		.ret = ret, .fd = ret, .sys = sys, .hook = hook,
		.no_name = VIGIL_R_NOT_SUPPORTED,
		.id = bpf_get_current_pid_tgid(),
	};

	if (vigil_ignored(c.id >> 32))
		return 0;
	if (regs)
		vigil_syscall_args_of(&st, regs, nargs);
	else
		vigil_syscall_args(&st, nargs);
	switch (sys) {
	case VIGIL_SYS_OPEN:
		c.dfd = VIGIL_AT_FDCWD;
		c.name = (const char *)st.args[0];
		c.flags = st.args[1];
		c.mode = st.args[2];
		break;
	case VIGIL_SYS_CREAT:
		c.dfd = VIGIL_AT_FDCWD;
		c.name = (const char *)st.args[0];
		c.flags = 01 | VIGIL_O_CREAT | VIGIL_O_TRUNC;
		c.mode = st.args[1];
		break;
	case VIGIL_SYS_OPENAT2: {
		struct vigil_open_how how = {};

		c.dfd = st.args[0];
		c.name = (const char *)st.args[1];
		/* the kernel copied the struct at entry: paged in now */
		if (bpf_probe_read_user(&how, sizeof(how), (void *)st.args[2]) == 0) {
			c.flags = how.flags;
			c.mode = how.mode;
			c.kind = vigil_open_kind(how.flags);
		} else {
			c.kind = VIGIL_OPEN_WRITE;  /* unknown flags: report */
		}
		break;
	}
	default: /* openat */
		c.dfd = st.args[0];
		c.name = (const char *)st.args[1];
		c.flags = st.args[2];
		c.mode = st.args[3];
		break;
	}
	if (sys != VIGIL_SYS_OPENAT2)
		c.kind = vigil_open_kind(c.flags);
	else if (ret >= 0)
		vigil_openat2_flags_of_file(&c);
	return vigil_open_report(&c);
}

/* The open family has no enter programs: the exit program reads the
 * argument registers from the task's saved user registers (unchanged by
 * the syscall), which saves a program run and a hash map round trip per
 * open, the bulk event. */

SEC("tracepoint/syscalls/sys_exit_openat")
int file_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_OPENAT, ctx->ret, 4, VIGIL_HOOK_SYSCALL_TP, NULL);
}


SEC("tracepoint/syscalls/sys_exit_open")
int file_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_OPEN, ctx->ret, 3, VIGIL_HOOK_SYSCALL_TP, NULL);
}


SEC("tracepoint/syscalls/sys_exit_creat")
int file_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_CREAT, ctx->ret, 2, VIGIL_HOOK_SYSCALL_TP, NULL);
}


SEC("tracepoint/syscalls/sys_exit_openat2")
int file_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_open_exit(VIGIL_SYS_OPENAT2, ctx->ret, 3, VIGIL_HOOK_SYSCALL_TP, NULL);
}

/*
 * Opens submitted through io_uring (IORING_OP_OPENAT, IORING_OP_OPENAT2) run
 * no open syscall: they are reported at their completion, with the same
 * record, filter and path rules as the syscalls (vigil_open_report()).
 *
 * The completion runs in a thread of the submitting process (the
 * submitter's task work, an io-wq worker or the SQPOLL thread: all share
 * its descriptor table), so on success the descriptor in the result is
 * looked up in the current task's table and the opened file's path walked
 * (OBJECT). Results and flags come from the request (struct io_kiocb), not
 * from the completion queue entry, which user space can write to.
 *
 * Failures and opens into a fixed-file slot (no descriptor) need the name:
 * the kernel copied it at prep time (struct io_open.filename) but frees it
 * at issue, before the completion. So the submission program copies it
 * (kernel memory only) into a small LRU hash keyed by the request, and the
 * completion program takes it (ARG, made absolute with the request's dfd).
 * When that entry is missing (evicted, or the prep failed) the path is
 * unavailable (reason LOOKUP_FAILED).
 *
 * A successful open submitted with IOSQE_CQE_SKIP_SUCCESS posts no
 * completion entry (io_uring_complete does not fire): such opens are
 * reported at submission instead (VIGIL_HOOK_IO_URING_SUBMIT), before the
 * outcome is known.
 *
 * A completion that finds the completion queue full goes to the overflow
 * list without io_uring_complete; io_uring_cqe_overflow fires instead, with
 * the ring, user_data and result but not the request. Those opens are found
 * among the requests the submission program kept (VIGIL_HOOK_IO_URING_OVERFLOW).
 */
struct vigil_uring_name {
	__u64 user_data;  /* the request's, to reject a recycled request */
	__u64 ring;       /* its struct io_ring_ctx, for overflowed completions */
	char name[VIGIL_PATH_MAX];
};

/* Requests in flight: LRU, so names of requests whose completion is never
 * seen (cancelled with the ring, or not posted) are recycled. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, struct vigil_uring_name);
} uring_open_names SEC(".maps");

/* Where the submission program builds an entry (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_uring_name);
} uring_name_build SEC(".maps");

/* The open family's syscall of io_uring opcode @op, or 0. */
static __always_inline __u32 vigil_uring_open_sys(__u8 op)
{
	if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_OPENAT))
		return VIGIL_SYS_OPENAT;
	if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_OPENAT2))
		return VIGIL_SYS_OPENAT2;
	return 0;
}

/* The command of an io_uring request: struct io_open of an open. */
#define vigil_uring_open(req) \
	((void *)(req) + bpf_core_field_offset(struct io_kiocb, cmd))

/* Whether request @req posts no completion when it succeeds: REQ_F_CQE_SKIP,
 * whose bit is IOSQE_CQE_SKIP_SUCCESS's (the kernel defines the request
 * flags' low bits as the submission flags' bits). */
static __always_inline bool vigil_uring_skips_success(struct io_kiocb *req)
{
	__u64 bit = bpf_core_enum_value(enum io_uring_sqe_flags_bit, IOSQE_CQE_SKIP_SUCCESS_BIT);

	return vigil_kread(req, struct io_kiocb, flags) & (1ULL << bit);
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(file_io_uring_submit, struct io_kiocb *req)
{
	struct vigil_uring_name *v;
	struct filename *fn;
	const char *name;
	__u64 key = (__u64)req, flags, id = bpf_get_current_pid_tgid();
	__u32 zero = 0, sys;
	void *open;

	if (!(sys = vigil_uring_open_sys(vigil_kread(req, struct io_kiocb, opcode))) ||
	    vigil_ignored(id >> 32))
		return 0;
	open = vigil_uring_open(req);
	flags = vigil_kread(open, struct io_open, how.flags);
	if (vigil_open_kind(flags) == VIGIL_OPEN_READ && !file_read_prefix_count)
		return 0;  /* never reported: nothing to keep */
	fn = vigil_kread(open, struct io_open, filename);
	name = fn ? vigil_kread(fn, struct filename, name) : NULL;
	if (vigil_uring_skips_success(req)) {
		/* Its success posts no completion, so io_uring_complete would
		 * never see it: report it now, with the name the kernel copied
		 * (ARG) and no outcome yet. A failure still posts a completion
		 * (the kernel clears the skip on failure): a second record,
		 * with the errno, from the completion program. */
		struct vigil_open_call c = {
			.fd = -1, .dfd = vigil_kread(open, struct io_open, dfd), .name = name,
			.kname = 1, .flags = flags, .mode = vigil_kread(open, struct io_open, how.mode),
			.sys = sys, .hook = VIGIL_HOOK_IO_URING_SUBMIT, .kind = vigil_open_kind(flags),
			.no_name = VIGIL_R_LOOKUP_FAILED, .id = id,
		};

		vigil_open_report(&c);
	}
	v = bpf_map_lookup_elem(&uring_name_build, &zero);
	if (!v || !name)
		return 0;
	v->user_data = vigil_kread(req, struct io_kiocb, cqe.user_data);
	v->ring = (__u64)vigil_kread(req, struct io_kiocb, ctx);
	if (bpf_probe_read_kernel_str(v->name, sizeof(v->name), name) <= 0)
		return 0;
	bpf_map_update_elem(&uring_open_names, &key, v, BPF_ANY);
	return 0;
}

/* Report the completed open request @req (result @res), with the name the
 * submission program kept (@v, checked against the request), by @hook. */
static __always_inline void vigil_uring_open_done(void *req, long res, struct vigil_uring_name *v,
						  __u32 sys, __u32 hook)
{
	struct vigil_open_call c = {
		.ret = res, .fd = -1, .sys = sys, .hook = hook, .id = bpf_get_current_pid_tgid(),
	};
	void *open;

	if (vigil_ignored(c.id >> 32))
		return;
	open = vigil_uring_open(req);
	c.flags = vigil_kread(open, struct io_open, how.flags);
	c.mode = vigil_kread(open, struct io_open, how.mode);
	c.dfd = vigil_kread(open, struct io_open, dfd);
	c.kind = vigil_open_kind(c.flags);
	if (c.ret >= 0 && !vigil_kread(open, struct io_open, file_slot))
		c.fd = c.ret;
	c.no_name = VIGIL_R_LOOKUP_FAILED;
	if (v && v->user_data == vigil_kread(req, struct io_kiocb, cqe.user_data)) {
		c.name = v->name;
		c.kname = 1;
	}
	vigil_open_report(&c);
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(file_io_uring_complete, struct io_ring_ctx *ring, void *req,
	     struct io_uring_cqe *cqe)
{
	struct vigil_uring_name *v;
	__u64 key = (__u64)req;
	__u32 sys;

	/* req is NULL for auxiliary entries (no request behind them) */
	if (!req || !(sys = vigil_uring_open_sys(vigil_kread(req, struct io_kiocb, opcode))))
		return 0;
	v = bpf_map_lookup_elem(&uring_open_names, &key);
	/* the result from the request, not from the entry user space can write */
	vigil_uring_open_done(req, vigil_kread(req, struct io_kiocb, cqe.res), v, sys, VIGIL_HOOK_IO_URING);
	if (v)
		bpf_map_delete_elem(&uring_open_names, &key);
	return 0;
}

/* What an overflowed completion is, and the kept request it belongs to. */
struct vigil_uring_search {
	__u64 ring;
	__u64 user_data;
	__s64 res;
	__u64 req;  /* found: the request (0: none) */
};

static long vigil_uring_match(struct bpf_map *map, __u64 *key, struct vigil_uring_name *v,
			      struct vigil_uring_search *q)
{
	void *req = (void *)*key;

	if (v->ring != q->ring || v->user_data != q->user_data)
		return 0;
	/* The request itself must still be this open, completed with this
	 * result (an entry can outlive its request: the LRU recycles it). */
	if (!vigil_uring_open_sys(vigil_kread(req, struct io_kiocb, opcode)) ||
	    (__u64)vigil_kread(req, struct io_kiocb, ctx) != q->ring ||
	    vigil_kread(req, struct io_kiocb, cqe.user_data) != q->user_data ||
	    vigil_kread(req, struct io_kiocb, cqe.res) != q->res)
		return 0;
	q->req = *key;
	return 1;
}

/*
 * A completion posted while the completion queue is full: the open is
 * found by ring and user_data among the kept requests (there are at most
 * 256, and overflows are rare), and reported like a completion. Opens
 * whose entry is gone (more than 256 in flight) are not found.
 */
SEC("tp_btf/io_uring_cqe_overflow")
int BPF_PROG(file_io_uring_overflow, void *ring, __u64 user_data, __s32 res, __u32 cflags,
	     void *ocqe)
{
	struct vigil_uring_search q = { .ring = (__u64)ring, .user_data = user_data, .res = res };
	struct vigil_uring_name *v;
	void *req;
	__u32 sys;

	bpf_for_each_map_elem(&uring_open_names, vigil_uring_match, &q, 0);
	if (!q.req)
		return 0;
	req = (void *)q.req;
	sys = vigil_uring_open_sys(vigil_kread(req, struct io_kiocb, opcode));
	v = bpf_map_lookup_elem(&uring_open_names, &q.req);
	if (!sys || !v)
		return 0;
	vigil_uring_open_done(req, res, v, sys, VIGIL_HOOK_IO_URING_OVERFLOW);
	bpf_map_delete_elem(&uring_open_names, &q.req);
	return 0;
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
	if (sys == VIGIL_SYS_UNLINKAT && unlink_lsm && !(st.args[2] & VIGIL_AT_REMOVEDIR))
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
	vigil_current_comm(r->comm);
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
	case VIGIL_SYS_FCHMODAT2:
		r->mode = a[2];
		if (sys == VIGIL_SYS_FCHMODAT2)
			r->flags = a[3];
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

/* Linux 6.6+: fchmodat with a flags argument (AT_SYMLINK_NOFOLLOW). */
SEC("tracepoint/syscalls/sys_enter_fchmodat2")
int file_fchmodat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_pathop_enter(VIGIL_SYS_FCHMODAT2, ctx, 4);
}

SEC("tracepoint/syscalls/sys_exit_fchmodat2")
int file_fchmodat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_pathop_exit(VIGIL_SYS_FCHMODAT2, VIGIL_EV_FILE_CHMOD, ctx->ret);
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
	vigil_current_comm(r->comm);
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
