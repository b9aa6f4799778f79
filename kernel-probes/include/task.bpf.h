/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Small task_struct / struct pid readers (CO-RE). */
#ifndef VIGIL_TASK_BPF_H
#define VIGIL_TASK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "vigil_abi.h"
#include "core_fixes.bpf.h"

/* include/linux/sched/signal.h */
#define VIGIL_SIGNAL_GROUP_EXIT 0x00000004
/* include/linux/pid_namespace.h: MAX_PID_NS_LEVEL */
#define VIGIL_PID_NS_LEVEL_MAX 32

/* Number of @pid in the initial pid namespace (numbers[0]); 0 if none. */
static __always_inline __u32 vigil_pid_nr(struct pid *pid)
{
	if (!pid)
		return 0;
	return BPF_CORE_READ(pid, numbers[0].nr);
}

/* @pid's struct upid for the pid namespace at depth @level (the caller
 * checks that @pid lives that deep: pid->level >= @level). */
static __always_inline struct upid *vigil_upid(struct pid *pid, __u32 level)
{
	return (void *)pid + bpf_core_field_offset(struct pid, numbers) +
	       level * bpf_core_type_size(struct upid);
}

/* Number of @pid in the deepest namespace it lives in (the one its task
 * sees itself in), and that namespace's inode number in *nsid. */
static __always_inline __u32 vigil_pid_vnr(struct pid *pid, __u32 *nsid)
{
	struct upid *up;
	__u32 level;

	*nsid = 0;
	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	if (level > VIGIL_PID_NS_LEVEL_MAX)
		return 0;
	up = vigil_upid(pid, level);
	*nsid = BPF_CORE_READ(up, ns, ns.inum);
	return BPF_CORE_READ(up, nr);
}

static __always_inline void vigil_fill_creds(struct task_struct *t,
					     struct vigil_creds *c)
{
	const struct cred *cred = BPF_CORE_READ(t, cred);

	c->uid = BPF_CORE_READ(cred, uid.val);
	c->euid = BPF_CORE_READ(cred, euid.val);
	c->suid = BPF_CORE_READ(cred, suid.val);
	c->fsuid = BPF_CORE_READ(cred, fsuid.val);
	c->gid = BPF_CORE_READ(cred, gid.val);
	c->egid = BPF_CORE_READ(cred, egid.val);
	c->sgid = BPF_CORE_READ(cred, sgid.val);
	c->fsgid = BPF_CORE_READ(cred, fsgid.val);
	vigil_task_audit(t, &c->loginuid, &c->sessionid);
}

/* Boot-clock start time of @t's thread-group leader. */
static __always_inline __u64 vigil_leader_start_ns(struct task_struct *t)
{
	return vigil_task_start_ns(BPF_CORE_READ(t, group_leader));
}

#endif /* VIGIL_TASK_BPF_H */
