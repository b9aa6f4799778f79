// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vigil fileless-execution events: memfd_create. (Executions of a memfd or
 * of a deleted file are marked on the exec record itself: see
 * vigil_exe_flags() in process.bpf.c.)
 *
 * Part of the process.bpf.c object (#included there).
 */
#include "sys.bpf.h"

#define VIGIL_MEMFD_NAME_MAX 256  /* "memfd:" + up to 249 bytes + NUL */

SEC("tracepoint/syscalls/sys_enter_memfd_create")
int fileless_memfd_create_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	vigil_stash_args(VIGIL_SYS_MEMFD_CREATE, ctx, 0, 2);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_memfd_create")
int fileless_memfd_create_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct vigil_stash st;
	struct vigil_scratch *s;
	struct vigil_memfd *r;
	struct file *file = NULL;
	const char *src;
	long ret = ctx->ret, n;
	__u32 off;

	if (!vigil_take_args(VIGIL_SYS_MEMFD_CREATE, &st))
		return 0;
	s = vigil_scratch_get(VIGIL_EV_FILELESS_MEMFD_CREATE);
	if (!s)
		return 0;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_now(&r->hdr);
	r->ret = ret;
	r->syscall = VIGIL_SYS_MEMFD_CREATE;
	r->hook = VIGIL_HOOK_SYSCALL_TP;
	r->flags = st.args[1];
	vigil_current_comm(r->comm);
	off = sizeof(*r);
	if (ret >= 0)
		file = vigil_fd_file(ret);
	r->name.off = off;
	if (file) {
		r->ino = BPF_CORE_READ(file, f_inode, i_ino);
		r->name_source = VIGIL_PATH_SRC_OBJECT;
		src = (const char *)BPF_CORE_READ(file, f_path.dentry, d_name.name);
		n = bpf_probe_read_kernel_str(s->rec + off, VIGIL_MEMFD_NAME_MAX, src);
	} else {
		r->name_source = VIGIL_PATH_SRC_ARG;
		n = bpf_probe_read_user_str(s->rec + off, VIGIL_MEMFD_NAME_MAX,
					    (const char *)st.args[0]);
	}
	if (n > 0) {
		r->name.len = n - 1;
		r->name.orig_len = n - 1;
		r->name.flags = VIGIL_F_PRESENT | VIGIL_F_SIZE_KNOWN;
		off += n - 1;
	} else {
		r->name.flags = VIGIL_F_UNAVAILABLE;
		r->name.reason = VIGIL_R_READ_FAULT;
	}
	vigil_field_account(VIGIL_EV_FILELESS_MEMFD_CREATE, &r->name);
	vigil_emit(r, off, VIGIL_EV_FILELESS_MEMFD_CREATE);
	vigil_scratch_put(s);
	return 0;
}
