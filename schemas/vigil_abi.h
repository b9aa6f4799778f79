/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * vigil kernel/user ABI: the single definition of every ring-buffer record.
 *
 * Included by the eBPF programs (kernel-probes/) and mirrored by the Rust
 * decoder (exporter/src/abi.rs); a test checks every size and offset in the
 * Rust mirror against the BTF of the compiled BPF object, so the two can not
 * drift apart silently.
 *
 * Rules (bump VIGIL_ABI_VERSION on any change to a layout):
 *  - fixed-width __u16/__u32/__u64 fields only, explicit padding, no bool;
 *  - every record starts with struct vigil_hdr;
 *  - event type ids are never reused; ranges leave gaps for later families;
 *  - variable-length data (paths, argv) follows the fixed part of a record
 *    and is described by a struct vigil_field (offset from the start of the
 *    record, stored length, original length, flags, reason).
 */
#ifndef VIGIL_ABI_H
#define VIGIL_ABI_H

/* Versions and limits (an enum so they appear in the object's BTF, where a
 * test compares them with the Rust mirror). */
enum vigil_limit {
	VIGIL_ABI_VERSION = 3,
	VIGIL_EV_SLOTS = 128,     /* event type ids are below this */
	VIGIL_PATH_MAX = 4096,
	VIGIL_PATH_DEPTH_MAX = 128,
	VIGIL_ARGS_CAP = 65536,
	VIGIL_ARGS_DEFAULT = 16384,
	VIGIL_COMM_LEN = 16,
};

/* Event types. 1-15: process lifecycle; 16-31 file; 32-47 network;
 * 48-63 privilege; 64-79 kernel/bpf/mount; 80-95 fileless. */
enum vigil_event_type {
	VIGIL_EV_EXEC = 1,
	VIGIL_EV_FORK = 2,
	VIGIL_EV_EXIT = 3,
	/* file (struct vigil_file, bulk lane) */
	VIGIL_EV_FILE_OPEN = 16,
	VIGIL_EV_FILE_UNLINK = 17,
	VIGIL_EV_FILE_RENAME = 18,
	VIGIL_EV_FILE_CHMOD = 19,
	VIGIL_EV_FILE_CHOWN = 20,
	VIGIL_EV_FILE_TRUNCATE = 21,
	/* network (struct vigil_net, bulk lane) */
	VIGIL_EV_NETWORK_CONNECT = 32,
	VIGIL_EV_NETWORK_ACCEPT = 33,
	VIGIL_EV_NETWORK_BIND = 34,
	VIGIL_EV_NETWORK_LISTEN = 35,
	/* privilege (critical lane) */
	VIGIL_EV_PRIVILEGE_CRED_CHANGE = 48, /* struct vigil_cred_change */
	VIGIL_EV_PRIVILEGE_NAMESPACE = 49,   /* struct vigil_ns_change */
	/* kernel (critical lane) */
	VIGIL_EV_KERNEL_BPF = 64,            /* struct vigil_bpf */
	VIGIL_EV_KERNEL_MODULE = 65,         /* struct vigil_module */
	VIGIL_EV_KERNEL_PTRACE = 66,         /* struct vigil_ptrace */
	VIGIL_EV_KERNEL_MOUNT = 67,          /* struct vigil_mount */
	VIGIL_EV_KERNEL_UMOUNT = 68,         /* struct vigil_mount */
	/* fileless (critical lane) */
	VIGIL_EV_FILELESS_MEMFD_CREATE = 80, /* struct vigil_memfd */
};

/* Lanes (separate ring buffers with their own sequence numbers). File and
 * network records (ids 16-47) travel in the bulk lane, the rest in the
 * critical lane (vigil_lane_of() in include/emit.bpf.h). */
enum vigil_lane {
	VIGIL_LANE_CRITICAL = 0,
	VIGIL_LANE_BULK = 1,
	VIGIL_LANE_MAX = 2,
};

/* Which kind of hook produced a record (records of the event families carry
 * it; exec/fork/exit always come from tp_btf). */
enum vigil_hook {
	VIGIL_HOOK_TP_BTF = 1,      /* BTF raw tracepoint */
	VIGIL_HOOK_SYSCALL_TP = 2,  /* tracepoint/syscalls/sys_exit_<syscall> */
	VIGIL_HOOK_RAW_SYSCALL = 3, /* tp_btf/sys_exit filtered by number */
	VIGIL_HOOK_LSM = 4,         /* BPF-LSM */
	VIGIL_HOOK_FENTRY = 5,      /* fentry/fexit */
	VIGIL_HOOK_IO_URING = 6,    /* tp_btf/io_uring_complete (an operation
				     * submitted through io_uring: no syscall
				     * of its own; .syscall names its
				     * equivalent, e.g. openat) */
	VIGIL_HOOK_IO_URING_SUBMIT = 7, /* tp_btf/io_uring_submit_req: an
					 * io_uring operation that posts no
					 * completion when it succeeds
					 * (IOSQE_CQE_SKIP_SUCCESS), reported
					 * at submission: outcome unknown */
	VIGIL_HOOK_IO_URING_OVERFLOW = 8, /* tp_btf/io_uring_cqe_overflow: an
					   * io_uring completion posted while
					   * the completion queue was full */
};

/* The system call behind a record (vigil.syscall). */
enum vigil_syscall {
	VIGIL_SYS_OPEN = 1,
	VIGIL_SYS_OPENAT = 2,
	VIGIL_SYS_OPENAT2 = 3,
	VIGIL_SYS_CREAT = 4,
	VIGIL_SYS_UNLINK = 5,
	VIGIL_SYS_UNLINKAT = 6,
	VIGIL_SYS_RMDIR = 7,
	VIGIL_SYS_RENAME = 8,
	VIGIL_SYS_RENAMEAT = 9,
	VIGIL_SYS_RENAMEAT2 = 10,
	VIGIL_SYS_CHMOD = 11,
	VIGIL_SYS_FCHMOD = 12,
	VIGIL_SYS_FCHMODAT = 13,
	VIGIL_SYS_CHOWN = 14,
	VIGIL_SYS_FCHOWN = 15,
	VIGIL_SYS_LCHOWN = 16,
	VIGIL_SYS_FCHOWNAT = 17,
	VIGIL_SYS_TRUNCATE = 18,
	VIGIL_SYS_FTRUNCATE = 19,
	VIGIL_SYS_FCHMODAT2 = 20,      /* Linux 6.6+: fchmodat with flags */
	VIGIL_SYS_CONNECT = 32,
	VIGIL_SYS_ACCEPT = 33,
	VIGIL_SYS_ACCEPT4 = 34,
	VIGIL_SYS_BIND = 35,
	VIGIL_SYS_LISTEN = 36,
	VIGIL_SYS_SETUID = 48,
	VIGIL_SYS_SETGID = 49,
	VIGIL_SYS_SETREUID = 50,
	VIGIL_SYS_SETREGID = 51,
	VIGIL_SYS_SETRESUID = 52,
	VIGIL_SYS_SETRESGID = 53,
	VIGIL_SYS_SETFSUID = 54,
	VIGIL_SYS_SETFSGID = 55,
	VIGIL_SYS_CAPSET = 56,
	VIGIL_SYS_UNSHARE = 57,
	VIGIL_SYS_SETNS = 58,
	VIGIL_SYS_BPF = 64,
	VIGIL_SYS_INIT_MODULE = 65,
	VIGIL_SYS_FINIT_MODULE = 66,
	VIGIL_SYS_PTRACE = 67,
	VIGIL_SYS_MOUNT = 68,
	VIGIL_SYS_UMOUNT2 = 69,
	VIGIL_SYS_MEMFD_CREATE = 80,
};

/* Index of a namespace in struct vigil_ns_change.old_ns/new_ns. */
enum vigil_ns_index {
	VIGIL_NS_MNT = 0,
	VIGIL_NS_UTS = 1,
	VIGIL_NS_IPC = 2,
	VIGIL_NS_PID = 3,     /* pid_ns_for_children */
	VIGIL_NS_NET = 4,
	VIGIL_NS_TIME = 5,    /* time_ns_for_children */
	VIGIL_NS_CGROUP = 6,
	VIGIL_NS_USER = 7,    /* the credentials' user namespace */
	VIGIL_NS_MAX = 8,
};

/* Where a record's path comes from (vigil.file.path_source). */
enum vigil_path_source {
	VIGIL_PATH_SRC_NONE = 0,
	VIGIL_PATH_SRC_OBJECT = 1,  /* walked from the kernel object used */
	VIGIL_PATH_SRC_ARG = 2,     /* the syscall's path argument (kernel's
				     * copy read at exit), made absolute with
				     * the dirfd's or cwd's kernel path */
};

/* Reasons a record was dropped in the kernel; indexes the drop counters
 * (map "drop_counters": per-CPU array of VIGIL_EV_SLOTS * VIGIL_DROP_MAX). */
enum vigil_drop_cause {
	VIGIL_DROP_RINGBUF_FULL = 0,  /* bpf_ringbuf_output failed */
	VIGIL_DROP_TOO_LARGE = 1,     /* record larger than VIGIL_RECORD_MAX */
	VIGIL_DROP_SCRATCH = 2,       /* scratch map lookup failed */
	VIGIL_DROP_MAX = 3,
};

/* Per-field problems counted (not dropped records; map "field_counters"). */
enum vigil_field_problem {
	VIGIL_FIELDP_READ_FAULT = 0,  /* a user/kernel read failed */
	VIGIL_FIELDP_PATH_DEPTH = 1,  /* path walk depth exceeded */
	VIGIL_FIELDP_TRUNCATED = 2,   /* a field was cut */
	VIGIL_FIELDP_MAX = 3,
};


/* struct vigil_field.flags */
enum vigil_field_flag {
	VIGIL_F_PRESENT = 0x1,     /* the field holds data (possibly empty) */
	VIGIL_F_TRUNCATED = 0x2,   /* only a prefix (or subset) is stored */
	VIGIL_F_UNAVAILABLE = 0x4, /* the probe tried and could not read it */
	VIGIL_F_SIZE_KNOWN = 0x8,  /* orig_len is the exact original size */
};

/* struct vigil_field.reason (meaningful with VIGIL_F_UNAVAILABLE; with
 * VIGIL_F_TRUNCATED it says why the field was cut). */
enum vigil_reason {
	VIGIL_R_NONE = 0,
	VIGIL_R_READ_FAULT = 1,      /* bpf_probe_read_* returned an error */
	VIGIL_R_PATH_UNRESOLVED = 2, /* no dentry/mount to walk (e.g. no mm) */
	VIGIL_R_RACE = 3,
	VIGIL_R_NOT_SUPPORTED = 4,
	VIGIL_R_LOOKUP_FAILED = 5,
	VIGIL_R_DEPTH_LIMIT = 6,     /* path walk stopped at VIGIL_PATH_DEPTH_MAX */
	VIGIL_R_SIZE_LIMIT = 7,      /* configured or buffer size limit */
};

/* struct vigil_exec.path_flags: properties of the executable file. */
enum vigil_exe_flag {
	VIGIL_EXE_DELETED = 0x1, /* the executable's dentry is unlinked */
	VIGIL_EXE_MEMFD = 0x2,   /* the executable lives on a memfd */
};

/* Paths are resolved up to VIGIL_PATH_MAX (or the configured path_max);
 * argv up to the configured limit, never more than VIGIL_ARGS_CAP. */

/* Common header, first in every record. */
struct vigil_hdr {
	__u16 type;          /* enum vigil_event_type */
	__u16 abi_version;   /* VIGIL_ABI_VERSION */
	__u32 size;          /* total record size in bytes, header included */
	__u32 cpu;           /* CPU whose stream numbered the record */
	__u32 lane;          /* enum vigil_lane */
	__u64 seq;           /* per-CPU, per-lane sequence, taken before output */
	__u64 ktime_ns;      /* bpf_ktime_get_boot_ns() when the event happened */
	__u32 tgid;          /* acting process (thread group id), init ns */
	__u32 pid;           /* acting thread id, init ns */
};

/* Descriptor of one variable-length field stored after the fixed part. */
struct vigil_field {
	__u32 off;           /* offset from the start of the record */
	__u32 len;           /* stored bytes (no NUL terminator counted) */
	__u32 orig_len;      /* original length when VIGIL_F_SIZE_KNOWN */
	__u16 flags;         /* VIGIL_F_* */
	__u16 reason;        /* enum vigil_reason */
};

/* Process credentials and identity, shared by records that carry them. */
struct vigil_creds {
	__u32 uid, euid, suid, fsuid;
	__u32 gid, egid, sgid, fsgid;
	__u32 loginuid;      /* audit login uid; 4294967295 = unset */
	__u32 sessionid;     /* audit session id */
};

/*
 * VIGIL_EV_EXEC, from tp_btf/sched_process_exec: the new image is in place.
 * Variable part, in this order: exe path, filename as passed to exec,
 * argv (NUL-separated, as in the process's argument area), cwd.
 */
struct vigil_exec {
	struct vigil_hdr hdr;
	__u32 ppid;          /* parent tgid (real_parent) */
	__u32 old_pid;       /* thread id before exec (de_thread may change it) */
	struct vigil_creds creds;
	__u32 sid;           /* session id (pid ns of init) */
	__u32 pgid;          /* process group id */
	__u32 tty;           /* 1 when the process has a controlling tty */
	__u32 path_flags;    /* VIGIL_EXE_* */
	__u64 cgroup_id;     /* cgroup v2 id of the task */
	__u64 start_ns;      /* group leader start_boottime (boot clock) */
	__u64 parent_start_ns; /* real_parent's start_boottime */
	__u64 exe_ino;       /* inode number of the executable */
	__u32 argc;          /* exact argc from the binprm, even when argv is cut */
	__u32 nsid;          /* pid namespace inode number */
	__u32 vpid;          /* tgid in the task's own pid namespace */
	__u32 _pad0;
	char comm[VIGIL_COMM_LEN];
	struct vigil_field exe;      /* resolved from task->mm->exe_file */
	struct vigil_field filename; /* bprm->filename (kernel copy) */
	struct vigil_field args;     /* mm->arg_start .. arg_end */
	struct vigil_field cwd;      /* resolved from task->fs->pwd */
};

/* VIGIL_EV_FORK, from tp_btf/sched_process_fork; only new processes
 * (thread creation is not reported). hdr.tgid/pid = parent. */
struct vigil_fork {
	struct vigil_hdr hdr;
	__u32 child_tgid;
	__u32 child_pid;
	__u64 child_start_ns;  /* child start_boottime */
	__u64 parent_start_ns; /* parent group leader start_boottime */
	__u32 child_vpid;
	__u32 _pad0;
	char comm[VIGIL_COMM_LEN];
};

/* VIGIL_EV_EXIT, from tp_btf/sched_process_exit. Reported once, when the
 * whole thread group ends (by whichever thread is last). */
struct vigil_exit {
	struct vigil_hdr hdr;
	__u32 ppid;
	__u32 exit_code;     /* wait status: code << 8 | core << 7 | signal */
	__u64 start_ns;      /* group leader start_boottime */
	__u32 group_dead;    /* 1 when this was the last thread of the group */
	__u32 _pad0;
	char comm[VIGIL_COMM_LEN];
};

/* Syscall return value of the event-family records: >= 0 success (an fd,
 * a count), < 0 -errno. */

/*
 * File events (VIGIL_EV_FILE_*), emitted at syscall exit. Variable part:
 * path, then path2 (rename: the new name; otherwise not present).
 * For opens that succeeded the path is walked from the opened struct file
 * (returned descriptor), so symlinks, relative names and renames that race
 * with the open are resolved by the kernel's own objects.
 */
struct vigil_file {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;       /* enum vigil_syscall */
	__u32 hook;          /* enum vigil_hook */
	__u32 flags;         /* open flags as passed / unlinkat, renameat2 flags */
	__u32 mode;          /* open, creat, chmod mode */
	__u32 uid;           /* chown: new owner (4294967295: unchanged) */
	__u32 gid;           /* chown: new group (4294967295: unchanged) */
	__u64 ino;           /* inode of the object, 0 when not known */
	__s64 length;        /* truncate: new length */
	__u32 path_source;   /* enum vigil_path_source */
	__u32 path2_source;
	__u32 dev;           /* s_dev of the object's superblock, 0 unknown */
	__u32 _pad0;
	char comm[VIGIL_COMM_LEN];
	struct vigil_field path;
	struct vigil_field path2;
};

/*
 * VIGIL_EV_FILELESS_MEMFD_CREATE: an anonymous file was created. Variable
 * part: name. On success the name is read from the new file's dentry
 * ("memfd:<name>", the kernel's copy); on failure from the argument at exit.
 */
struct vigil_memfd {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;       /* VIGIL_SYS_MEMFD_CREATE */
	__u32 hook;          /* enum vigil_hook */
	__u32 flags;         /* MFD_* */
	__u32 name_source;   /* enum vigil_path_source */
	__u64 ino;           /* inode of the new file, 0 on failure */
	char comm[VIGIL_COMM_LEN];
	struct vigil_field name;
};

/*
 * Network events (VIGIL_EV_NETWORK_*), at syscall exit, for AF_INET and
 * AF_INET6 sockets (connect, accept, bind, listen) and AF_UNIX connects.
 * Addresses and ports are read from the kernel socket (addr_source OBJECT);
 * when the socket holds none (a failed connect or bind) from the sockaddr
 * argument, read at exit (ARG). Addresses are in network byte order, IPv4
 * in the first 4 bytes; ports in host order. Variable part: unix_path
 * (AF_UNIX: the peer's sun_path; an abstract name starts with a NUL).
 */
struct vigil_net {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;
	__u32 hook;
	__u16 family;        /* AF_* */
	__u16 type;          /* SOCK_* */
	__u16 protocol;      /* IPPROTO_* */
	__u16 lport;
	__u16 rport;
	__u16 addr_source;   /* enum vigil_path_source */
	__u32 backlog;       /* listen */
	__s32 fd;            /* the socket's descriptor (accept: the new one) */
	__u32 _pad0;
	__u8 laddr[16];
	__u8 raddr[16];
	char comm[VIGIL_COMM_LEN];
	struct vigil_field unix_path;
};

/* Capability sets (kernel_cap_t as 64 bits). */
struct vigil_caps {
	__u64 effective;
	__u64 permitted;
	__u64 inheritable;
};

/*
 * VIGIL_EV_PRIVILEGE_CRED_CHANGE: setuid, setgid, setreuid, setregid,
 * setresuid, setresgid, setfsuid, setfsgid, capset. Old credentials are
 * read from the task at syscall entry, new ones at exit (kernel objects).
 */
struct vigil_cred_change {
	struct vigil_hdr hdr;
	__s64 ret;           /* setfsuid/setfsgid: the previous fs id (they
			      * never return an errno; a refusal leaves the
			      * id unchanged) */
	__u32 syscall;
	__u32 hook;
	__u32 requested[3];  /* the id arguments (4294967295: -1, unchanged) */
	__u32 nrequested;    /* how many of requested[] the syscall takes */
	struct vigil_creds old_creds;
	struct vigil_creds new_creds;
	struct vigil_caps old_caps;
	struct vigil_caps new_caps;
	char comm[VIGIL_COMM_LEN];
};

/*
 * VIGIL_EV_PRIVILEGE_NAMESPACE: unshare, setns. Namespace inode numbers of
 * the task before (entry) and after (exit), indexed by enum vigil_ns_index.
 */
struct vigil_ns_change {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;
	__u32 hook;
	__u32 flags;         /* unshare: CLONE_* flags; setns: nstype */
	__s32 fd;            /* setns: the descriptor; -1 otherwise */
	__u32 types;         /* CLONE_NEW* bits of the namespaces concerned:
			      * setns on a namespace file, that namespace's
			      * type (read from it at exit: nstype may be 0);
			      * otherwise (unshare, setns on a pidfd) flags */
	__u32 types_source;  /* enum vigil_path_source: OBJECT or ARG */
	__u32 old_ns[VIGIL_NS_MAX];
	__u32 new_ns[VIGIL_NS_MAX];
	char comm[VIGIL_COMM_LEN];
};

/*
 * VIGIL_EV_KERNEL_BPF: bpf() commands that load or attach something
 * (MAP_CREATE, PROG_LOAD, PROG_ATTACH, RAW_TRACEPOINT_OPEN, BTF_LOAD,
 * LINK_CREATE). After a successful PROG_LOAD/MAP_CREATE the fields come from
 * the new struct bpf_prog / bpf_map (obj_source OBJECT); otherwise from the
 * attribute argument, read at exit (ARG).
 */
struct vigil_bpf {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;
	__u32 hook;
	__u32 cmd;           /* enum bpf_cmd */
	__u32 prog_type;     /* PROG_LOAD: enum bpf_prog_type */
	__u32 map_type;      /* MAP_CREATE: enum bpf_map_type */
	__u32 insn_cnt;      /* PROG_LOAD: instructions */
	__u32 attach_type;   /* PROG_LOAD expected / PROG_ATTACH / LINK_CREATE */
	__u32 obj_source;    /* enum vigil_path_source */
	__u32 obj_id;        /* kernel id of the new program or map, 0 unknown */
	__u32 _pad0;
	char name[16];       /* BPF_OBJ_NAME_LEN */
	char comm[VIGIL_COMM_LEN];
};

/*
 * VIGIL_EV_KERNEL_MODULE: init_module, finit_module (on kernels without
 * module support too: the call fails with ENOSYS and is still reported).
 * Variable part: path (finit_module: the descriptor's file).
 */
struct vigil_module {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;
	__u32 hook;
	__u64 len;           /* init_module: image size */
	__u32 flags;         /* finit_module: MODULE_INIT_* */
	__s32 fd;            /* finit_module: descriptor, -1 otherwise */
	char comm[VIGIL_COMM_LEN];
	struct vigil_field path;
};

/* VIGIL_EV_KERNEL_PTRACE: ptrace requests that attach, detach or write. */
struct vigil_ptrace {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;
	__u32 hook;
	__s64 request;
	__u64 addr;
	__u32 target_pid;    /* as passed (the caller's pid namespace) */
	__u32 target_tgid;   /* the target task's thread group id in the
			      * initial pid namespace, from the tasks the
			      * calling thread traces; 0: not found (failed
			      * attach, detached, TRACEME) */
	char comm[VIGIL_COMM_LEN];
};

/*
 * VIGIL_EV_KERNEL_MOUNT / _UMOUNT: mount(2), umount2(2). Variable part:
 * source, target (made absolute with the cwd), fstype; the strings are the
 * kernel's copies of the arguments, read at exit.
 */
struct vigil_mount {
	struct vigil_hdr hdr;
	__s64 ret;
	__u32 syscall;
	__u32 hook;
	__u64 flags;         /* MS_* / MNT_* */
	char comm[VIGIL_COMM_LEN];
	struct vigil_field source;
	struct vigil_field target;
	struct vigil_field fstype;
};

/* The largest record the probes can emit (the scratch buffer size). */
#define VIGIL_RECORD_MAX (sizeof(struct vigil_exec) + 3 * VIGIL_PATH_MAX + VIGIL_ARGS_CAP)

/* Counters per (event type, cause): index = type * VIGIL_DROP_MAX + cause. */
#define VIGIL_DROP_SLOTS (VIGIL_EV_SLOTS * VIGIL_DROP_MAX)
#define VIGIL_FIELDP_SLOTS (VIGIL_EV_SLOTS * VIGIL_FIELDP_MAX)

/* Why a record was excluded by a configured filter (never a loss: it takes
 * no sequence number). Map "filter_counters": per-CPU array of
 * VIGIL_EV_SLOTS * VIGIL_FILTER_MAX, index = type * VIGIL_FILTER_MAX + reason. */
enum vigil_filter_reason {
	VIGIL_FILTER_CGROUP = 0,  /* the task's cgroup or an ancestor is excluded */
	VIGIL_FILTER_UID = 1,     /* the task's real uid is excluded */
	VIGIL_FILTER_EXE = 2,     /* the process runs an excluded executable */
	VIGIL_FILTER_FILE = 3,    /* the file record's path has an excluded prefix */
	VIGIL_FILTER_MAX = 4,
	VIGIL_FILTER_PREFIXES = 8,      /* exe prefixes, and as many file prefixes */
	VIGIL_FILTER_PREFIX_LEN = 64,   /* bytes per prefix */
	VIGIL_FILTER_IDS_MAX = 64,      /* cgroups, and as many uids */
};

/* Map "rate_suppressed": bulk records a process produced over its rate
 * limit, per event type, not output (include/ratelimit.bpf.h). */
struct vigil_suppressed_key {
	__u32 tgid;
	__u32 type;          /* enum vigil_event_type */
};
struct vigil_suppressed {
	__u64 count;
	__u64 first_ns;      /* boot clock */
	__u64 last_ns;
};

/* One prefix of map "filter_prefixes". */
struct vigil_filter_prefix {
	__u32 len;
	__u8 bytes[VIGIL_FILTER_PREFIX_LEN];
};

#endif /* VIGIL_ABI_H */
