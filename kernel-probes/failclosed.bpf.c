// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fail_closed ([policy] mode = "fail_closed"): a BPF-LSM program that
 * denies an exec when its record could not be recorded, because the
 * critical lane's ring buffer has no room for it.
 *
 * A separate object, loaded only under fail_closed and only where the
 * kernel runs the BPF LSM; the loader makes it share the main object's
 * maps (the critical ring "events" above all), so it sees the ring the
 * exec record will go to. Where it can not be loaded (no BPF LSM, or
 * refused), vigil refuses to start unless policy.allow_degraded is set.
 *
 * The check happens at bprm_check_security, before the point of no return,
 * so a denied exec fails with EPERM and the program image never runs. It
 * emits nothing itself: denials are counted in failclosed_denied.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "vigil_abi.h"
#include "maps.bpf.h"
#include "lanes.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define VIGIL_EPERM 1

/* [0]: execs denied because the critical ring had no room */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} failclosed_denied SEC(".maps");

SEC("lsm/bprm_check_security")
int BPF_PROG(vigil_fail_closed_exec, struct linux_binprm *bprm, int ret)
{
	__u32 zero = 0;
	__u64 *denied;

	if (ret)
		return ret;  /* already denied by another LSM */
	if (vigil_critical_has_room())
		return 0;
	denied = bpf_map_lookup_elem(&failclosed_denied, &zero);
	if (denied)
		__sync_fetch_and_add(denied, 1);
	return -VIGIL_EPERM;
}
