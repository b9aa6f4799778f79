/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel-version shims. Every difference between kernel versions that the
 * probes have to care about is handled here, and only here, using CO-RE
 * existence checks (resolved by libbpf at load time, so the branch not taken
 * is dead code the verifier never looks at).
 */
#ifndef VIGIL_CORE_FIXES_BPF_H
#define VIGIL_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/*
 * task_struct::start_boottime was called real_start_time before
 * v5.5, commit cf25e24db61c ("time: Rename tsk->real_start_time to
 * ->start_boottime"). Same clock (CLOCK_BOOTTIME ns), only the name changed.
 */
struct task_struct___pre55 {
	u64 real_start_time;
} __attribute__((preserve_access_index));

static __always_inline __u64 vigil_task_start_ns(struct task_struct *t)
{
	if (bpf_core_field_exists(struct task_struct, start_boottime))
		return BPF_CORE_READ(t, start_boottime);
	return BPF_CORE_READ((struct task_struct___pre55 *)t, real_start_time);
}

/*
 * task_struct::loginuid / ::sessionid only exist with CONFIG_AUDIT (see
 * include/linux/sched.h). Without audit report "unset" (-1) like the kernel
 * does for audit_get_loginuid() / audit_get_sessionid().
 */
static __always_inline void vigil_task_audit(struct task_struct *t,
					     __u32 *loginuid, __u32 *sessionid)
{
	*loginuid = (__u32)-1;
	*sessionid = (__u32)-1;
	if (bpf_core_field_exists(struct task_struct, loginuid)) {
		*loginuid = BPF_CORE_READ(t, loginuid.val);
		*sessionid = BPF_CORE_READ(t, sessionid);
	}
}

/*
 * The CLONE_NEW* type of a namespace: struct ns_common::ns_type on current
 * kernels (the v6.18 namespace rework moved it there); before, only the
 * namespace's operations had it, struct proc_ns_operations::type.
 */
struct proc_ns_operations___pre618 {
	int type;
} __attribute__((preserve_access_index));

struct ns_common___pre618 {
	const struct proc_ns_operations___pre618 *ops;
} __attribute__((preserve_access_index));

static __always_inline __u32 vigil_ns_type(struct ns_common *ns)
{
	if (bpf_core_field_exists(struct ns_common, ns_type))
		return BPF_CORE_READ(ns, ns_type);
	return BPF_CORE_READ((struct ns_common___pre618 *)ns, ops, type);
}

/*
 * sched_process_exit: upstream patch "exit: move and extend
 * sched_process_exit() tracepoint" (Andrii Nakryiko, April 2025, v6.16
 * cycle) added "bool group_dead" as the second tracepoint argument and gave
 * the event its own class, trace_event_raw_sched_process_exit, with a
 * group_dead field. Older kernels pass only the task. The existence of that
 * field is the CO-RE-visible marker of the change.
 *
 * Fallback for older kernels: do_exit() decrements signal->live before the
 * tracepoint fires (group_dead = atomic_dec_and_test(&sig->live)), so a live
 * count of 0 means the same thing (racy only against a concurrent clone of a
 * thread into a dying group, which the kernel refuses anyway).
 */
static __always_inline __u32 vigil_exit_group_dead(unsigned long long *ctx,
						   struct task_struct *p)
{
	if (bpf_core_field_exists(struct trace_event_raw_sched_process_exit,
				  group_dead))
		return (ctx[1] & 0xff) != 0;
	return BPF_CORE_READ(p, signal, live.counter) == 0;
}

#endif /* VIGIL_CORE_FIXES_BPF_H */
