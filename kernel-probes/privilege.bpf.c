// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vigil privilege events: credential changes (setuid family, capset) and
 * namespace changes (unshare, setns), with the task's state before (read
 * at syscall entry from the task's own cred/nsproxy, kernel objects) and
 * after (at exit).
 *
 * Part of the process.bpf.c object (#included there).
 */
#include "sys.bpf.h"

static __always_inline void vigil_read_caps(const struct cred *c,
					    struct vigil_caps *out)
{
	/* kernel_cap_t is one u64 since v6.3 (commit f122a08b197d "capability:
	 * just use a 'u64' instead of a 'u32[2]' array"); both layouts are the
	 * same 8 little-endian bytes. */
	bpf_core_read(&out->effective, 8, &c->cap_effective);
	bpf_core_read(&out->permitted, 8, &c->cap_permitted);
	bpf_core_read(&out->inheritable, 8, &c->cap_inheritable);
}

static __always_inline int vigil_same_creds(const struct vigil_creds *a,
					    const struct vigil_creds *b)
{
	return a->uid == b->uid && a->euid == b->euid && a->suid == b->suid &&
	       a->fsuid == b->fsuid && a->gid == b->gid && a->egid == b->egid &&
	       a->sgid == b->sgid && a->fsgid == b->fsgid;
}

/*
 * setfsuid/setfsgid never return an errno: they return the previous fs id
 * (as the caller's user namespace sees it) and leave it unchanged when they
 * refuse the new one. Called only when nothing changed: the call was then a
 * refusal unless it asked for no change, either with -1 (a query, which
 * make_kuid() turns into an invalid id) or with the id it already had
 * (the returned previous id: same namespace as the argument, so this
 * holds inside user namespaces too). The exporter applies the same rule
 * (CredChangeEvent::fs_id_refused) to report error.type EPERM.
 */
static __always_inline int vigil_fsid_refused(long ret, __u32 requested)
{
	return requested != (__u32)-1 && requested != (__u32)ret;
}

/* State kept at entry, in struct vigil_stash.data. */
struct vigil_cred_state {
	struct vigil_creds creds;
	struct vigil_caps caps;
};

static __always_inline int vigil_cred_enter(__u32 sys, struct trace_event_raw_sys_enter *ctx,
					    const int nargs)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct vigil_stash *st;
	struct vigil_cred_state *cs;

	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	st = vigil_stash_args(sys, ctx, 0, nargs);
	if (!st)
		return 0;
	cs = (void *)st->data;
	vigil_fill_creds(t, &cs->creds);
	vigil_read_caps(BPF_CORE_READ(t, cred), &cs->caps);
	return 0;
}

static __always_inline int vigil_cred_exit(__u32 sys, long ret, const int nids)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct vigil_cred_change r = {};
	struct vigil_cred_state *cs;
	struct vigil_stash st;

	if (!vigil_take_args(sys, &st))
		return 0;
	cs = (void *)st.data;
	vigil_hdr_now(&r.hdr);
	r.ret = ret;
	r.syscall = sys;
	r.hook = VIGIL_HOOK_SYSCALL_TP;
	r.nrequested = nids;
	if (nids > 0)
		r.requested[0] = st.args[0];
	if (nids > 1)
		r.requested[1] = st.args[1];
	if (nids > 2)
		r.requested[2] = st.args[2];
	__builtin_memcpy(&r.old_creds, &cs->creds, sizeof(r.old_creds));
	__builtin_memcpy(&r.old_caps, &cs->caps, sizeof(r.old_caps));
	vigil_fill_creds(t, &r.new_creds);
	vigil_read_caps(BPF_CORE_READ(t, cred), &r.new_caps);
	/* In-kernel filter: a call that changed nothing is not a privilege
	 * change unless it failed. Most of these syscalls fail with an errno
	 * (ret < 0: always reported; setresuid(-1, -1, -1) returns 0 and is
	 * dropped). setfsuid/setfsgid never do: see vigil_fsid_refused(). */
	if (vigil_same_creds(&r.old_creds, &r.new_creds) &&
	    r.old_caps.effective == r.new_caps.effective &&
	    r.old_caps.permitted == r.new_caps.permitted &&
	    r.old_caps.inheritable == r.new_caps.inheritable) {
		if (sys == VIGIL_SYS_SETFSUID || sys == VIGIL_SYS_SETFSGID) {
			if (!vigil_fsid_refused(ret, r.requested[0]))
				return 0;
		} else if (ret == 0) {
			return 0;
		}
	}
	vigil_current_comm(r.comm);
	vigil_emit(&r, sizeof(r), VIGIL_EV_PRIVILEGE_CRED_CHANGE);
	return 0;
}

static __always_inline void vigil_read_ns(struct task_struct *t, __u32 *ns)
{
	struct nsproxy *p = BPF_CORE_READ(t, nsproxy);

	ns[VIGIL_NS_MNT] = BPF_CORE_READ(p, mnt_ns, ns.inum);
	ns[VIGIL_NS_UTS] = BPF_CORE_READ(p, uts_ns, ns.inum);
	ns[VIGIL_NS_IPC] = BPF_CORE_READ(p, ipc_ns, ns.inum);
	ns[VIGIL_NS_PID] = BPF_CORE_READ(p, pid_ns_for_children, ns.inum);
	ns[VIGIL_NS_NET] = BPF_CORE_READ(p, net_ns, ns.inum);
	ns[VIGIL_NS_TIME] = BPF_CORE_READ(p, time_ns_for_children, ns.inum);
	ns[VIGIL_NS_CGROUP] = BPF_CORE_READ(p, cgroup_ns, ns.inum);
	ns[VIGIL_NS_USER] = BPF_CORE_READ(t, cred, user_ns, ns.inum);
}

/* NSFS_MAGIC, include/uapi/linux/magic.h: the file system of
 * /proc/<pid>/ns/<type> files (and of their bind mounts). */
#define VIGIL_NSFS_MAGIC 0x6e736673

/*
 * The CLONE_NEW* type of the namespace the nsfs file @f refers to, 0 when
 * @f is no namespace file (a pidfd, or no file). An nsfs inode's i_private
 * is its struct ns_common (fs/nsfs.c: get_proc_ns()).
 */
static __always_inline __u32 vigil_nsfs_type(struct file *f)
{
	if (!vigil_file_on_fs(f, VIGIL_NSFS_MAGIC))
		return 0;
	return vigil_ns_type((struct ns_common *)BPF_CORE_READ(f, f_inode, i_private));
}

static __always_inline int vigil_ns_enter(__u32 sys, struct trace_event_raw_sys_enter *ctx,
					  const int nargs)
{
	struct vigil_stash *st;

	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	st = vigil_stash_args(sys, ctx, 0, nargs);
	if (!st)
		return 0;
	vigil_read_ns((void *)bpf_get_current_task(), (__u32 *)st->data);
	return 0;
}

static __always_inline int vigil_ns_exit(__u32 sys, long ret)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct vigil_ns_change r = {};
	struct vigil_stash st;

	if (!vigil_take_args(sys, &st))
		return 0;
	vigil_hdr_now(&r.hdr);
	r.ret = ret;
	r.syscall = sys;
	r.hook = VIGIL_HOOK_SYSCALL_TP;
	if (sys == VIGIL_SYS_SETNS) {
		r.fd = st.args[0];
		r.flags = st.args[1];
	} else {
		r.fd = -1;
		r.flags = st.args[0];
	}
	/* setns(fd, 0) joins whatever namespace fd is (runc, nsenter): the
	 * flags name nothing, the namespace file does. Read at exit, from
	 * the descriptor the kernel used; a pidfd (which needs the flags) or
	 * a descriptor closed meanwhile leaves the flags. */
	r.types = r.flags;
	r.types_source = VIGIL_PATH_SRC_ARG;
	if (sys == VIGIL_SYS_SETNS) {
		__u32 type = vigil_nsfs_type(vigil_fd_file(r.fd));

		if (type) {
			r.types = type;
			r.types_source = VIGIL_PATH_SRC_OBJECT;
		}
	}
	__builtin_memcpy(r.old_ns, st.data, sizeof(r.old_ns));
	vigil_read_ns(t, r.new_ns);
	vigil_current_comm(r.comm);
	vigil_emit(&r, sizeof(r), VIGIL_EV_PRIVILEGE_NAMESPACE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_setuid")
int priv_setuid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETUID, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_setuid")
int priv_setuid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETUID, ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_enter_setgid")
int priv_setgid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETGID, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_setgid")
int priv_setgid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETGID, ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_enter_setreuid")
int priv_setreuid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETREUID, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_setreuid")
int priv_setreuid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETREUID, ctx->ret, 2);
}

SEC("tracepoint/syscalls/sys_enter_setregid")
int priv_setregid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETREGID, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_setregid")
int priv_setregid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETREGID, ctx->ret, 2);
}

SEC("tracepoint/syscalls/sys_enter_setresuid")
int priv_setresuid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETRESUID, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_setresuid")
int priv_setresuid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETRESUID, ctx->ret, 3);
}

SEC("tracepoint/syscalls/sys_enter_setresgid")
int priv_setresgid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETRESGID, ctx, 3);
}

SEC("tracepoint/syscalls/sys_exit_setresgid")
int priv_setresgid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETRESGID, ctx->ret, 3);
}

SEC("tracepoint/syscalls/sys_enter_setfsuid")
int priv_setfsuid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETFSUID, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_setfsuid")
int priv_setfsuid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETFSUID, ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_enter_setfsgid")
int priv_setfsgid_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_SETFSGID, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_setfsgid")
int priv_setfsgid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_SETFSGID, ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_enter_capset")
int priv_capset_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_cred_enter(VIGIL_SYS_CAPSET, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_capset")
int priv_capset_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_cred_exit(VIGIL_SYS_CAPSET, ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_enter_unshare")
int priv_unshare_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_ns_enter(VIGIL_SYS_UNSHARE, ctx, 1);
}

SEC("tracepoint/syscalls/sys_exit_unshare")
int priv_unshare_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_ns_exit(VIGIL_SYS_UNSHARE, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_setns")
int priv_setns_enter(struct trace_event_raw_sys_enter *ctx)
{
	return vigil_ns_enter(VIGIL_SYS_SETNS, ctx, 2);
}

SEC("tracepoint/syscalls/sys_exit_setns")
int priv_setns_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_ns_exit(VIGIL_SYS_SETNS, ctx->ret);
}
