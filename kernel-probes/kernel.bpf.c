// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vigil kernel events: bpf() loads and attachments, module loading,
 * ptrace, mount and umount.
 *
 * Part of the process.bpf.c object (#included there).
 */
#include "sys.bpf.h"

/* include/uapi/linux/bpf.h, enum bpf_cmd */
#define VIGIL_BPF_MAP_CREATE 0
#define VIGIL_BPF_PROG_LOAD 5
#define VIGIL_BPF_PROG_ATTACH 8
#define VIGIL_BPF_RAW_TRACEPOINT_OPEN 17
#define VIGIL_BPF_BTF_LOAD 18
#define VIGIL_BPF_LINK_CREATE 28

static __always_inline int vigil_bpf_cmd_reported(__u32 cmd)
{
	return cmd == VIGIL_BPF_MAP_CREATE || cmd == VIGIL_BPF_PROG_LOAD ||
	       cmd == VIGIL_BPF_PROG_ATTACH || cmd == VIGIL_BPF_RAW_TRACEPOINT_OPEN ||
	       cmd == VIGIL_BPF_BTF_LOAD || cmd == VIGIL_BPF_LINK_CREATE;
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int kernel_bpf_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32) ||
	    !vigil_bpf_cmd_reported(ctx->args[0]))
		return 0;
	vigil_stash_args(VIGIL_SYS_BPF, ctx, 0, 3);
	return 0;
}

/* Read a u32 member of the user's union bpf_attr (the kernel copied it at
 * entry, so it is paged in); 0 when unreadable. */
#define VIGIL_ATTR_U32(uattr, member) ({					\
	__u32 __v = 0;								\
	bpf_probe_read_user(&__v, sizeof(__v), (void *)(uattr) +		\
			    bpf_core_field_offset(union bpf_attr, member));	\
	__v; })

/* A program's kernel description into @r. */
static __always_inline void vigil_bpf_prog_of(struct vigil_bpf *r, struct bpf_prog *prog)
{
	r->obj_source = VIGIL_PATH_SRC_OBJECT;
	r->prog_type = BPF_CORE_READ(prog, type);
	r->insn_cnt = BPF_CORE_READ(prog, len);
	r->obj_id = BPF_CORE_READ(prog, aux, id);
	BPF_CORE_READ_INTO(&r->name, prog, aux, name);
}

#define VIGIL_ANON_INODE_FS_MAGIC 0x09041934

/* The program behind descriptor @fd when it is one, else NULL. A program's
 * descriptor is an anonymous inode file named "bpf-prog" (bpf_prog_fops is
 * not in kallsyms without CONFIG_KALLSYMS_ALL, so the file's operations can
 * not be compared); nothing else on anon_inodefs has that name. */
static __always_inline struct bpf_prog *vigil_bpf_prog_fd(long fd)
{
	struct file *f = vigil_fd_file(fd);
	const unsigned char *name;
	char n[12] = {};

	if (!vigil_file_on_fs(f, VIGIL_ANON_INODE_FS_MAGIC))
		return NULL;
	name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(n, sizeof(n), name) != 9 ||
	    n[0] != 'b' || n[1] != 'p' || n[2] != 'f' || n[3] != '-' || n[4] != 'p' ||
	    n[5] != 'r' || n[6] != 'o' || n[7] != 'g')
		return NULL;
	return BPF_CORE_READ(f, private_data);
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int kernel_bpf_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct vigil_bpf r = {};
	struct vigil_stash st;
	struct file *file = NULL;
	long ret = ctx->ret;
	void *uattr;

	if (!vigil_take_args(VIGIL_SYS_BPF, &st))
		return 0;
	vigil_hdr_now(&r.hdr);
	r.ret = ret;
	r.syscall = VIGIL_SYS_BPF;
	r.hook = VIGIL_HOOK_SYSCALL_TP;
	r.cmd = st.args[0];
	uattr = (void *)st.args[1];
	vigil_current_comm(r.comm);
	if (ret >= 0 && (r.cmd == VIGIL_BPF_PROG_LOAD || r.cmd == VIGIL_BPF_MAP_CREATE))
		file = vigil_fd_file(ret);
	if (file && r.cmd == VIGIL_BPF_PROG_LOAD) {
		struct bpf_prog *prog = BPF_CORE_READ(file, private_data);

		vigil_bpf_prog_of(&r, prog);
		r.attach_type = BPF_CORE_READ(prog, expected_attach_type);
	} else if (file) {
		struct bpf_map *map = BPF_CORE_READ(file, private_data);

		r.obj_source = VIGIL_PATH_SRC_OBJECT;
		r.map_type = BPF_CORE_READ(map, map_type);
		r.obj_id = BPF_CORE_READ(map, id);
		BPF_CORE_READ_INTO(&r.name, map, name);
	} else {
		r.obj_source = VIGIL_PATH_SRC_ARG;
		switch (r.cmd) {
		case VIGIL_BPF_PROG_LOAD:
			r.prog_type = VIGIL_ATTR_U32(uattr, prog_type);
			r.insn_cnt = VIGIL_ATTR_U32(uattr, insn_cnt);
			r.attach_type = VIGIL_ATTR_U32(uattr, expected_attach_type);
			bpf_probe_read_user(r.name, sizeof(r.name), uattr +
				bpf_core_field_offset(union bpf_attr, prog_name));
			break;
		case VIGIL_BPF_MAP_CREATE:
			r.map_type = VIGIL_ATTR_U32(uattr, map_type);
			bpf_probe_read_user(r.name, sizeof(r.name), uattr +
				bpf_core_field_offset(union bpf_attr, map_name));
			break;
		/* The attached program: PROG_ATTACH names it by a descriptor
		 * (looked up now, in the caller's table, and taken only when it
		 * is a program); LINK_CREATE and RAW_TRACEPOINT_OPEN return a
		 * link that holds it. The attach type stays the argument's. */
		case VIGIL_BPF_PROG_ATTACH: {
			struct bpf_prog *prog = vigil_bpf_prog_fd(VIGIL_ATTR_U32(uattr, attach_bpf_fd));

			r.attach_type = VIGIL_ATTR_U32(uattr, attach_type);
			if (prog)
				vigil_bpf_prog_of(&r, prog);
			break;
		}
		case VIGIL_BPF_LINK_CREATE:
		case VIGIL_BPF_RAW_TRACEPOINT_OPEN: {
			struct file *lf = ret >= 0 ? vigil_fd_file(ret) : NULL;
			struct bpf_link *link = lf ? BPF_CORE_READ(lf, private_data) : NULL;
			struct bpf_prog *prog = link ? BPF_CORE_READ(link, prog) : NULL;

			if (r.cmd == VIGIL_BPF_LINK_CREATE)
				r.attach_type = VIGIL_ATTR_U32(uattr, link_create.attach_type);
			if (prog)
				vigil_bpf_prog_of(&r, prog);
			else if (r.cmd == VIGIL_BPF_RAW_TRACEPOINT_OPEN)
				r.obj_source = VIGIL_PATH_SRC_NONE;
			break;
		}
		default:
			r.obj_source = VIGIL_PATH_SRC_NONE;
			break;
		}
	}
	r.name[15] = 0;
	vigil_emit(&r, sizeof(r), VIGIL_EV_KERNEL_BPF);
	return 0;
}

/* ---- module loading ---- */

static __always_inline int vigil_module_exit(__u32 sys, struct vigil_stash *st,
					     long ret, __u32 hook)
{
	struct vigil_scratch *s = vigil_scratch_get(VIGIL_EV_KERNEL_MODULE);
	struct vigil_module *r;
	__u32 off;

	if (!s)
		return 0;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_now(&r->hdr);
	r->ret = ret;
	r->syscall = sys;
	r->hook = hook;
	r->fd = -1;
	vigil_current_comm(r->comm);
	off = sizeof(*r);
	if (sys == VIGIL_SYS_FINIT_MODULE) {
		struct file *f;

		r->fd = st->args[0];
		r->flags = st->args[2];
		f = vigil_fd_file(r->fd);
		off += vigil_file_path(s, off, &r->path, f);
	} else {
		r->len = st->args[1];
		r->path.off = off;
		r->path.flags = VIGIL_F_UNAVAILABLE;
		r->path.reason = VIGIL_R_NOT_SUPPORTED;  /* an image in memory */
	}
	vigil_field_account(VIGIL_EV_KERNEL_MODULE, &r->path);
	vigil_emit(r, off, VIGIL_EV_KERNEL_MODULE);
	vigil_scratch_put(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_init_module")
int kernel_init_module_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		vigil_stash_args(VIGIL_SYS_INIT_MODULE, ctx, 0, 3);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_init_module")
int kernel_init_module_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct vigil_stash st;

	if (!vigil_take_args(VIGIL_SYS_INIT_MODULE, &st))
		return 0;
	return vigil_module_exit(VIGIL_SYS_INIT_MODULE, &st, ctx->ret, VIGIL_HOOK_SYSCALL_TP);
}

SEC("tracepoint/syscalls/sys_enter_finit_module")
int kernel_finit_module_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		vigil_stash_args(VIGIL_SYS_FINIT_MODULE, ctx, 0, 3);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_finit_module")
int kernel_finit_module_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct vigil_stash st;

	if (!vigil_take_args(VIGIL_SYS_FINIT_MODULE, &st))
		return 0;
	return vigil_module_exit(VIGIL_SYS_FINIT_MODULE, &st, ctx->ret, VIGIL_HOOK_SYSCALL_TP);
}

/*
 * Kernels without module support (CONFIG_MODULES=n) have no syscall
 * tracepoints for init_module/finit_module: the syscalls are
 * sys_ni_syscall. There the raw sys_exit tracepoint, filtered by syscall
 * number, stands in (attached only when the per-syscall tracepoints could
 * not be: it runs on every syscall, ~150 ns each, so not otherwise).
 */
#if defined(__TARGET_ARCH_x86)
#define VIGIL_NR_INIT_MODULE 175
#define VIGIL_NR_FINIT_MODULE 313
#define VIGIL_NR_OPEN 2
#define VIGIL_NR_CREAT 85
#define VIGIL_NR_OPENAT 257
#define VIGIL_NR_OPENAT2 437
#elif defined(__TARGET_ARCH_arm64)
#define VIGIL_NR_INIT_MODULE 105
#define VIGIL_NR_FINIT_MODULE 273
#define VIGIL_NR_OPENAT 56   /* no open or creat on arm64 */
#define VIGIL_NR_OPENAT2 437
#endif

static __always_inline __u32 vigil_module_sys(long nr)
{
	if (nr == VIGIL_NR_INIT_MODULE)
		return VIGIL_SYS_INIT_MODULE;
	if (nr == VIGIL_NR_FINIT_MODULE)
		return VIGIL_SYS_FINIT_MODULE;
	return 0;
}

/*
 * Set by the loader when this program also serves the open family (the
 * file family is on and this program runs anyway): the open syscalls'
 * tracepoint programs are then not attached, which saves the perf-event
 * tracepoint layer (buffer, recursion guard, trace_call_bpf) on every open.
 */
const volatile __u32 raw_open_exit = 0;

/* The open-family syscall of number @nr, or 0. */
static __always_inline __u32 vigil_open_sys(long nr)
{
	switch (nr) {
	case VIGIL_NR_OPENAT:
		return VIGIL_SYS_OPENAT;
	case VIGIL_NR_OPENAT2:
		return VIGIL_SYS_OPENAT2;
#ifdef VIGIL_NR_OPEN
	case VIGIL_NR_OPEN:
		return VIGIL_SYS_OPEN;
	case VIGIL_NR_CREAT:
		return VIGIL_SYS_CREAT;
#endif
	}
	return 0;
}

/* Exit only (it runs on every syscall, so it does as little as possible):
 * the arguments come from the saved user registers. */
SEC("tp_btf/sys_exit")
int BPF_PROG(kernel_module_raw_exit, struct pt_regs *regs, long ret)
{
	/* a typed argument: a plain load, not a probe read */
	long nr = regs->orig_ax;
	__u32 sys = vigil_module_sys(nr);

	if (!sys) {
		if (raw_open_exit && (sys = vigil_open_sys(nr)))
			return vigil_open_exit(sys, ret, 4, VIGIL_HOOK_RAW_SYSCALL, regs);
		return 0;
	}
	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	{
		struct vigil_stash st = {};

		vigil_syscall_args_of(&st, regs, 3);
		return vigil_module_exit(sys, &st, ret, VIGIL_HOOK_RAW_SYSCALL);
	}
}

/* ---- ptrace ---- */

/* include/uapi/linux/ptrace.h: requests that attach, detach or write. */
static __always_inline int vigil_ptrace_reported(long req)
{
	switch (req) {
	case 0:       /* PTRACE_TRACEME */
	case 4:       /* PTRACE_POKETEXT */
	case 5:       /* PTRACE_POKEDATA */
	case 6:       /* PTRACE_POKEUSER */
	case 13:      /* PTRACE_SETREGS */
	case 15:      /* PTRACE_SETFPREGS */
	case 16:      /* PTRACE_ATTACH */
	case 17:      /* PTRACE_DETACH */
	case 0x4205:  /* PTRACE_SETREGSET */
	case 0x4206:  /* PTRACE_SEIZE */
		return 1;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int kernel_ptrace_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32) ||
	    !vigil_ptrace_reported(ctx->args[0]))
		return 0;
	vigil_stash_args(VIGIL_SYS_PTRACE, ctx, 0, 4);
	return 0;
}

/* The pid of task @t in the pid namespace at depth @level (its
 * struct pid's numbers[level]), 0 when @t is not visible there. */
static __always_inline __u32 vigil_pid_at_level(struct task_struct *t, __u32 level)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);

	if (!p || level > VIGIL_PID_NS_LEVEL_MAX || BPF_CORE_READ(p, level) < level)
		return 0;
	return BPF_CORE_READ(vigil_upid(p, level), nr);
}

/* The tasks a tracer's thread traces are on its ->ptraced list (linked by
 * their ->ptrace_entry; an attach adds at the head). At most this many are
 * searched. */
#define VIGIL_PTRACED_MAX 32

/* The thread group id (initial pid namespace) of the task the current
 * thread traces whose pid in the tracer's own pid namespace is @vpid, 0
 * when none is (a failed attach, a detach: the kernel has unlinked it). */
static __always_inline __u32 vigil_ptraced_tgid(__u32 vpid)
{
	struct task_struct *cur = (void *)bpf_get_current_task();
	void *head = (void *)cur + bpf_core_field_offset(struct task_struct, ptraced);
	__u32 level = BPF_CORE_READ(cur, thread_pid, level);
	struct list_head *pos = BPF_CORE_READ(cur, ptraced.next);
	int i;

	for (i = 0; i < VIGIL_PTRACED_MAX; i++) {
		struct task_struct *t;

		if (!pos || (void *)pos == head)
			return 0;
		t = (void *)pos - bpf_core_field_offset(struct task_struct, ptrace_entry);
		if (vigil_pid_at_level(t, level) == vpid)
			return BPF_CORE_READ(t, tgid);
		pos = BPF_CORE_READ(pos, next);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int kernel_ptrace_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct vigil_ptrace r = {};
	struct vigil_stash st;

	if (!vigil_take_args(VIGIL_SYS_PTRACE, &st))
		return 0;
	vigil_hdr_now(&r.hdr);
	r.ret = ctx->ret;
	r.syscall = VIGIL_SYS_PTRACE;
	r.hook = VIGIL_HOOK_SYSCALL_TP;
	r.request = st.args[0];
	r.target_pid = st.args[1];
	if (r.request != 0 /* TRACEME names no target */ && r.ret >= 0)
		r.target_tgid = vigil_ptraced_tgid(r.target_pid);
	r.addr = st.args[2];
	vigil_current_comm(r.comm);
	vigil_emit(&r, sizeof(r), VIGIL_EV_KERNEL_PTRACE);
	return 0;
}

/* ---- mount, umount ---- */

/* A string argument (the kernel copied it at entry) at @off, at most
 * @max bytes; returns the stored length. */
static __noinline __u32 vigil_arg_str(struct vigil_scratch *s, __u32 off,
				      struct vigil_field *f, const char *uptr)
{
	long n;

	f->off = off;
	f->len = 0;
	f->orig_len = 0;
	if (off > VIGIL_RECORD_MAX - VIGIL_PATH_MAX) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_SIZE_LIMIT;
		return 0;
	}
	if (!uptr) {  /* NULL argument: absent, e.g. no source for a remount */
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_NOT_SUPPORTED;
		return 0;
	}
	n = bpf_probe_read_user_str(s->rec + off, VIGIL_PATH_MAX, uptr);
	if (n <= 0) {
		f->flags = VIGIL_F_UNAVAILABLE;
		f->reason = VIGIL_R_READ_FAULT;
		return 0;
	}
	f->len = n - 1;
	f->flags = VIGIL_F_PRESENT;
	if (n == VIGIL_PATH_MAX) {
		f->flags |= VIGIL_F_TRUNCATED;
		f->reason = VIGIL_R_SIZE_LIMIT;
	} else {
		f->orig_len = n - 1;
		f->flags |= VIGIL_F_SIZE_KNOWN;
	}
	return f->len;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int kernel_mount_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		vigil_stash_args(VIGIL_SYS_MOUNT, ctx, 0, 5);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_umount")
int kernel_umount_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		vigil_stash_args(VIGIL_SYS_UMOUNT2, ctx, 0, 2);
	return 0;
}

static __always_inline int vigil_mount_exit(__u32 sys, long ret)
{
	struct vigil_scratch *s;
	struct vigil_stash st;
	struct vigil_mount *r;
	__u32 off, type = sys == VIGIL_SYS_MOUNT ? VIGIL_EV_KERNEL_MOUNT : VIGIL_EV_KERNEL_UMOUNT;

	if (!vigil_take_args(sys, &st))
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
	vigil_current_comm(r->comm);
	off = sizeof(*r);
	if (sys == VIGIL_SYS_MOUNT) {
		r->flags = st.args[3];
		off += vigil_arg_str(s, off, &r->source, (const char *)st.args[0]);
		off += vigil_arg_path(s, off, &r->target, (const char *)st.args[1], VIGIL_AT_FDCWD);
		off += vigil_arg_str(s, off, &r->fstype, (const char *)st.args[2]);
	} else {
		r->flags = st.args[1];
		r->source.off = off;
		r->source.flags = VIGIL_F_UNAVAILABLE;
		r->source.reason = VIGIL_R_NOT_SUPPORTED;
		off += vigil_arg_path(s, off, &r->target, (const char *)st.args[0], VIGIL_AT_FDCWD);
		r->fstype.off = off;
		r->fstype.flags = VIGIL_F_UNAVAILABLE;
		r->fstype.reason = VIGIL_R_NOT_SUPPORTED;
	}
	vigil_field_account(type, &r->target);
	vigil_emit(r, off, type);
	vigil_scratch_put(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mount")
int kernel_mount_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_mount_exit(VIGIL_SYS_MOUNT, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_umount")
int kernel_umount_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_mount_exit(VIGIL_SYS_UMOUNT2, ctx->ret);
}
