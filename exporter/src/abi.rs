//! Rust mirror of `schemas/vigil_abi.h`, the kernel/user record ABI.
//!
//! Every struct here is `#[repr(C)]` with exactly the fields of its C twin.
//! `tests` below compares sizes and field offsets against the BTF of the
//! compiled BPF object, so a layout change on either side fails the build's
//! tests instead of corrupting data silently.
//!
//! Records are decoded by [`crate::decode`]; this module only defines layouts
//! and constants.

/// `VIGIL_ABI_VERSION`: bumped on any change to a record layout.
pub const ABI_VERSION: u16 = 3;

/// `VIGIL_PATH_MAX`.
pub const PATH_MAX: usize = 4096;
/// `VIGIL_ARGS_CAP`: the largest argv area the probes can capture.
pub const ARGS_CAP: usize = 65536;
/// `VIGIL_ARGS_DEFAULT`.
pub const ARGS_DEFAULT: usize = 16384;
/// `VIGIL_COMM_LEN`.
pub const COMM_LEN: usize = 16;
/// `VIGIL_EV_SLOTS`: event type ids are below this.
pub const EV_SLOTS: usize = 128;
/// `VIGIL_DROP_MAX`: drop causes per event type.
pub const DROP_MAX: usize = 3;
/// `VIGIL_FIELDP_MAX`: field problems per event type.
pub const FIELDP_MAX: usize = 3;
/// `VIGIL_LANE_MAX`.
pub const LANE_MAX: usize = 2;
/// `VIGIL_LANE_CRITICAL`.
pub const LANE_CRITICAL: u32 = 0;
/// `VIGIL_LANE_BULK`: file and network records.
pub const LANE_BULK: u32 = 1;
/// Every lane, critical first (the order the receiver drains them in).
pub const LANES: [u32; LANE_MAX] = [LANE_CRITICAL, LANE_BULK];

/// A lane's name (`vigil.lane` attribute values).
pub fn lane_name(lane: u32) -> &'static str {
    if lane == LANE_BULK {
        "bulk"
    } else {
        "critical"
    }
}

/// The largest record the probes can emit (`VIGIL_RECORD_MAX`).
pub const RECORD_MAX: usize = std::mem::size_of::<RawExec>() + 3 * PATH_MAX + ARGS_CAP;

/// Map names shared with the BPF object.
pub mod maps {
    /// Ring buffer of the critical lane.
    pub const EVENTS: &str = "events";
    /// Ring buffer of the bulk lane.
    pub const EVENTS_BULK: &str = "events_bulk";
    /// Per-CPU, per-lane sequence numbers.
    pub const STREAM_SEQ: &str = "stream_seq";
    /// Per-CPU drop counters, index `type * DROP_MAX + cause`.
    pub const DROP_COUNTERS: &str = "drop_counters";
    /// Per-CPU records-output counters, index `type`.
    pub const EMIT_COUNTERS: &str = "emit_counters";
    /// Per-CPU field problem counters, index `type * FIELDP_MAX + problem`.
    pub const FIELD_COUNTERS: &str = "field_counters";
    /// Scratch buffers, one per CPU.
    pub const SCRATCH: &str = "scratch";
}

/// Event type ids (`enum vigil_event_type`). Never reuse an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum EventType {
    /// `VIGIL_EV_EXEC`
    Exec = 1,
    /// `VIGIL_EV_FORK`
    Fork = 2,
    /// `VIGIL_EV_EXIT`
    Exit = 3,
    /// `VIGIL_EV_FILE_OPEN`
    FileOpen = 16,
    /// `VIGIL_EV_FILE_UNLINK`
    FileUnlink = 17,
    /// `VIGIL_EV_FILE_RENAME`
    FileRename = 18,
    /// `VIGIL_EV_FILE_CHMOD`
    FileChmod = 19,
    /// `VIGIL_EV_FILE_CHOWN`
    FileChown = 20,
    /// `VIGIL_EV_FILE_TRUNCATE`
    FileTruncate = 21,
    /// `VIGIL_EV_NETWORK_CONNECT`
    NetworkConnect = 32,
    /// `VIGIL_EV_NETWORK_ACCEPT`
    NetworkAccept = 33,
    /// `VIGIL_EV_NETWORK_BIND`
    NetworkBind = 34,
    /// `VIGIL_EV_NETWORK_LISTEN`
    NetworkListen = 35,
    /// `VIGIL_EV_PRIVILEGE_CRED_CHANGE`
    PrivilegeCredChange = 48,
    /// `VIGIL_EV_PRIVILEGE_NAMESPACE`
    PrivilegeNamespace = 49,
    /// `VIGIL_EV_KERNEL_BPF`
    KernelBpf = 64,
    /// `VIGIL_EV_KERNEL_MODULE`
    KernelModule = 65,
    /// `VIGIL_EV_KERNEL_PTRACE`
    KernelPtrace = 66,
    /// `VIGIL_EV_KERNEL_MOUNT`
    KernelMount = 67,
    /// `VIGIL_EV_KERNEL_UMOUNT`
    KernelUmount = 68,
    /// `VIGIL_EV_FILELESS_MEMFD_CREATE`
    FilelessMemfdCreate = 80,
}

impl EventType {
    /// Every event type, in id order.
    pub const ALL: [EventType; 21] = [
        EventType::Exec,
        EventType::Fork,
        EventType::Exit,
        EventType::FileOpen,
        EventType::FileUnlink,
        EventType::FileRename,
        EventType::FileChmod,
        EventType::FileChown,
        EventType::FileTruncate,
        EventType::NetworkConnect,
        EventType::NetworkAccept,
        EventType::NetworkBind,
        EventType::NetworkListen,
        EventType::PrivilegeCredChange,
        EventType::PrivilegeNamespace,
        EventType::KernelBpf,
        EventType::KernelModule,
        EventType::KernelPtrace,
        EventType::KernelMount,
        EventType::KernelUmount,
        EventType::FilelessMemfdCreate,
    ];

    /// The type for a raw id, if known.
    pub fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            1 => Some(EventType::Exec),
            2 => Some(EventType::Fork),
            3 => Some(EventType::Exit),
            16 => Some(EventType::FileOpen),
            17 => Some(EventType::FileUnlink),
            18 => Some(EventType::FileRename),
            19 => Some(EventType::FileChmod),
            20 => Some(EventType::FileChown),
            21 => Some(EventType::FileTruncate),
            32 => Some(EventType::NetworkConnect),
            33 => Some(EventType::NetworkAccept),
            34 => Some(EventType::NetworkBind),
            35 => Some(EventType::NetworkListen),
            48 => Some(EventType::PrivilegeCredChange),
            49 => Some(EventType::PrivilegeNamespace),
            64 => Some(EventType::KernelBpf),
            65 => Some(EventType::KernelModule),
            66 => Some(EventType::KernelPtrace),
            67 => Some(EventType::KernelMount),
            68 => Some(EventType::KernelUmount),
            80 => Some(EventType::FilelessMemfdCreate),
            _ => None,
        }
    }

    /// The OTLP `event_name` of records of this type.
    pub fn event_name(self) -> &'static str {
        match self {
            EventType::Exec => "vigil.process.exec",
            EventType::Fork => "vigil.process.fork",
            EventType::Exit => "vigil.process.exit",
            EventType::FileOpen => "vigil.file.open",
            EventType::FileUnlink => "vigil.file.unlink",
            EventType::FileRename => "vigil.file.rename",
            EventType::FileChmod => "vigil.file.chmod",
            EventType::FileChown => "vigil.file.chown",
            EventType::FileTruncate => "vigil.file.truncate",
            EventType::NetworkConnect => "vigil.network.connect",
            EventType::NetworkAccept => "vigil.network.accept",
            EventType::NetworkBind => "vigil.network.bind",
            EventType::NetworkListen => "vigil.network.listen",
            EventType::PrivilegeCredChange => "vigil.privilege.cred_change",
            EventType::PrivilegeNamespace => "vigil.privilege.namespace",
            EventType::KernelBpf => "vigil.kernel.bpf",
            EventType::KernelModule => "vigil.kernel.module",
            EventType::KernelPtrace => "vigil.kernel.ptrace",
            EventType::KernelMount => "vigil.kernel.mount",
            EventType::KernelUmount => "vigil.kernel.umount",
            EventType::FilelessMemfdCreate => "vigil.fileless.memfd_create",
        }
    }

    /// The fixed size of a record of this type (without variable data).
    pub fn fixed_size(self) -> usize {
        match self {
            EventType::Exec => std::mem::size_of::<RawExec>(),
            EventType::Fork => std::mem::size_of::<RawFork>(),
            EventType::Exit => std::mem::size_of::<RawExit>(),
            EventType::FileOpen
            | EventType::FileUnlink
            | EventType::FileRename
            | EventType::FileChmod
            | EventType::FileChown
            | EventType::FileTruncate => std::mem::size_of::<RawFile>(),
            EventType::FilelessMemfdCreate => std::mem::size_of::<RawMemfd>(),
            EventType::PrivilegeCredChange => std::mem::size_of::<RawCredChange>(),
            EventType::PrivilegeNamespace => std::mem::size_of::<RawNsChange>(),
            EventType::KernelBpf => std::mem::size_of::<RawBpf>(),
            EventType::KernelModule => std::mem::size_of::<RawModule>(),
            EventType::KernelPtrace => std::mem::size_of::<RawPtrace>(),
            EventType::KernelMount | EventType::KernelUmount => std::mem::size_of::<RawMount>(),
            EventType::NetworkConnect | EventType::NetworkAccept | EventType::NetworkBind | EventType::NetworkListen => {
                std::mem::size_of::<RawNet>()
            }
        }
    }

    /// The lane its records travel in (`vigil_lane_of()` in emit.bpf.h).
    pub fn lane(self) -> u32 {
        match self {
            EventType::Exec
            | EventType::Fork
            | EventType::Exit
            | EventType::FilelessMemfdCreate
            | EventType::PrivilegeCredChange
            | EventType::PrivilegeNamespace
            | EventType::KernelBpf
            | EventType::KernelModule
            | EventType::KernelPtrace
            | EventType::KernelMount
            | EventType::KernelUmount => LANE_CRITICAL,
            EventType::FileOpen
            | EventType::FileUnlink
            | EventType::FileRename
            | EventType::FileChmod
            | EventType::FileChown
            | EventType::FileTruncate
            | EventType::NetworkConnect
            | EventType::NetworkAccept
            | EventType::NetworkBind
            | EventType::NetworkListen => LANE_BULK,
        }
    }
}

/// `enum vigil_hook`: the kind of hook that produced a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// BTF raw tracepoint.
    TpBtf = 1,
    /// `tracepoint/syscalls/sys_exit_<syscall>`.
    SyscallTp = 2,
    /// `tp_btf/sys_exit` filtered by syscall number.
    RawSyscall = 3,
    /// BPF-LSM.
    Lsm = 4,
    /// fentry/fexit.
    Fentry = 5,
    /// `tp_btf/io_uring_complete`: an operation submitted through io_uring
    /// (no syscall of its own; the record's syscall is its equivalent).
    IoUring = 6,
    /// `tp_btf/io_uring_submit_req`: an io_uring operation that posts no
    /// completion when it succeeds (`IOSQE_CQE_SKIP_SUCCESS`), reported at
    /// submission, before its outcome is known.
    IoUringSubmit = 7,
    /// `tp_btf/io_uring_cqe_overflow`: an io_uring operation whose
    /// completion was posted while the completion queue was full.
    IoUringOverflow = 8,
}

impl HookKind {
    /// Whether the record is of an operation submitted through io_uring.
    pub fn is_io_uring(self) -> bool {
        matches!(self, HookKind::IoUring | HookKind::IoUringSubmit | HookKind::IoUringOverflow)
    }

    /// Every kind, in id order.
    pub const ALL: [HookKind; 8] = [
        HookKind::TpBtf,
        HookKind::SyscallTp,
        HookKind::RawSyscall,
        HookKind::Lsm,
        HookKind::Fentry,
        HookKind::IoUring,
        HookKind::IoUringSubmit,
        HookKind::IoUringOverflow,
    ];

    /// The kind for a raw id.
    pub fn from_raw(raw: u32) -> Option<Self> {
        HookKind::ALL.into_iter().find(|k| *k as u32 == raw)
    }

    /// The section prefix of programs of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::TpBtf => "tp_btf",
            HookKind::SyscallTp => "tracepoint/syscalls",
            HookKind::RawSyscall => "tp_btf/sys_exit",
            HookKind::Lsm => "lsm",
            HookKind::Fentry => "fexit",
            HookKind::IoUring => "tp_btf/io_uring_complete",
            HookKind::IoUringSubmit => "tp_btf/io_uring_submit_req",
            HookKind::IoUringOverflow => "tp_btf/io_uring_cqe_overflow",
        }
    }
}

/// `enum vigil_syscall`: (id, name) of every system call the probes report.
pub const SYSCALLS: &[(u32, &str)] = &[
    (1, "open"),
    (2, "openat"),
    (3, "openat2"),
    (4, "creat"),
    (5, "unlink"),
    (6, "unlinkat"),
    (7, "rmdir"),
    (8, "rename"),
    (9, "renameat"),
    (10, "renameat2"),
    (11, "chmod"),
    (12, "fchmod"),
    (13, "fchmodat"),
    (14, "chown"),
    (15, "fchown"),
    (16, "lchown"),
    (17, "fchownat"),
    (18, "truncate"),
    (19, "ftruncate"),
    (20, "fchmodat2"),
    (32, "connect"),
    (33, "accept"),
    (34, "accept4"),
    (35, "bind"),
    (36, "listen"),
    (48, "setuid"),
    (49, "setgid"),
    (50, "setreuid"),
    (51, "setregid"),
    (52, "setresuid"),
    (53, "setresgid"),
    (54, "setfsuid"),
    (55, "setfsgid"),
    (56, "capset"),
    (57, "unshare"),
    (58, "setns"),
    (64, "bpf"),
    (65, "init_module"),
    (66, "finit_module"),
    (67, "ptrace"),
    (68, "mount"),
    (69, "umount2"),
    (80, "memfd_create"),
];

/// `VIGIL_SYS_SETFSUID`: returns the previous fsuid, never an errno.
pub const SYS_SETFSUID: u32 = 54;
/// `VIGIL_SYS_SETFSGID`: returns the previous fsgid, never an errno.
pub const SYS_SETFSGID: u32 = 55;

/// `enum vigil_ns_index`: namespace names in index order.
pub const NAMESPACES: [&str; NS_MAX] = ["mnt", "uts", "ipc", "pid", "net", "time", "cgroup", "user"];
/// `VIGIL_NS_MAX`.
pub const NS_MAX: usize = 8;

/// The name of a syscall id, `None` when unknown.
pub fn syscall_name(id: u32) -> Option<&'static str> {
    SYSCALLS.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The name in a syscall's tracepoints (`sys_enter_<name>`,
/// `sys_exit_<name>`): the kernel's `SYSCALL_DEFINE` name, which is not the
/// syscall's for umount2 (fs/namespace.c: `SYSCALL_DEFINE2(umount, ...)`).
pub fn syscall_tracepoint_name(name: &str) -> &str {
    match name {
        "umount2" => "umount",
        other => other,
    }
}

/// `enum vigil_path_source`.
pub mod path_source {
    /// No path.
    pub const NONE: u32 = 0;
    /// Walked from the kernel object used (opened file, dentry).
    pub const OBJECT: u32 = 1;
    /// The syscall's path argument, read at exit and made absolute.
    pub const ARG: u32 = 2;
}

/// Kernel drop causes (`enum vigil_drop_cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// The ring buffer had no room.
    RingbufFull = 0,
    /// The record was larger than [`RECORD_MAX`].
    TooLarge = 1,
    /// The scratch map lookup failed.
    Scratch = 2,
}

impl DropCause {
    /// Every cause, in index order.
    pub const ALL: [DropCause; DROP_MAX] = [DropCause::RingbufFull, DropCause::TooLarge, DropCause::Scratch];

    /// The `error.type` value of loss records for this cause.
    pub fn error_type(self) -> &'static str {
        match self {
            DropCause::RingbufFull => "ringbuf_full",
            DropCause::TooLarge => "record_too_large",
            DropCause::Scratch => "map_full",
        }
    }
}

/// Field problems counted in the kernel (`enum vigil_field_problem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldProblem {
    /// A user or kernel memory read failed.
    ReadFault = 0,
    /// A path walk hit the depth limit.
    PathDepth = 1,
    /// A field was cut.
    Truncated = 2,
}

impl FieldProblem {
    /// Every problem, in index order.
    pub const ALL: [FieldProblem; FIELDP_MAX] = [FieldProblem::ReadFault, FieldProblem::PathDepth, FieldProblem::Truncated];

    /// A stable name for counters and heartbeats.
    pub fn name(self) -> &'static str {
        match self {
            FieldProblem::ReadFault => "read_fault",
            FieldProblem::PathDepth => "path_depth",
            FieldProblem::Truncated => "truncated",
        }
    }
}

/// `struct vigil_field.flags` bits.
pub mod field_flags {
    /// The field holds data (possibly empty).
    pub const PRESENT: u16 = 0x1;
    /// Only a prefix is stored.
    pub const TRUNCATED: u16 = 0x2;
    /// The probe tried and could not read it.
    pub const UNAVAILABLE: u16 = 0x4;
    /// `orig_len` is the exact original size.
    pub const SIZE_KNOWN: u16 = 0x8;
}

/// `struct vigil_exec.path_flags` bits.
pub mod exe_flags {
    /// The executable's dentry is unlinked.
    pub const DELETED: u32 = 0x1;
    /// The executable lives on a memfd.
    pub const MEMFD: u32 = 0x2;
}

/// `enum vigil_reason`: why a field is unavailable (or cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A memory read failed (page not present, bad pointer).
    ReadFault,
    /// There was nothing to walk (no mm, no dentry).
    PathUnresolved,
    /// The object changed while it was read.
    Race,
    /// The kernel does not offer this data.
    NotSupported,
    /// A lookup failed.
    LookupFailed,
    /// A path walk stopped at its depth limit.
    DepthLimit,
    /// A configured or buffer size limit cut the value.
    SizeLimit,
    /// The kernel sent a reason this build does not know (newer probes).
    Unknown(u16),
}

impl Reason {
    /// Decode a raw reason; `None` for `VIGIL_R_NONE`.
    pub fn from_raw(raw: u16) -> Option<Self> {
        Some(match raw {
            0 => return None,
            1 => Reason::ReadFault,
            2 => Reason::PathUnresolved,
            3 => Reason::Race,
            4 => Reason::NotSupported,
            5 => Reason::LookupFailed,
            6 => Reason::DepthLimit,
            7 => Reason::SizeLimit,
            other => Reason::Unknown(other),
        })
    }

    /// The reason's name: for unavailable fields this is the
    /// `vigil.unavailable_reason.<key>` value of OTEL-MAPPING.md; `depth_limit`
    /// and `size_limit` explain truncation (`vigil.truncated_reason.<key>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ReadFault => "read_fault",
            Reason::PathUnresolved => "path_unresolved",
            Reason::Race => "race",
            Reason::NotSupported => "not_supported",
            Reason::LookupFailed => "lookup_failed",
            Reason::DepthLimit => "depth_limit",
            Reason::SizeLimit => "size_limit",
            Reason::Unknown(_) => "unknown",
        }
    }
}

/// `struct vigil_hdr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawHdr {
    pub type_: u16,
    pub abi_version: u16,
    pub size: u32,
    pub cpu: u32,
    pub lane: u32,
    pub seq: u64,
    pub ktime_ns: u64,
    pub tgid: u32,
    pub pid: u32,
}

/// The lane field of a raw record's header, read without decoding the
/// record (`None` for a record too short to have a header).
pub fn peek_lane(record: &[u8]) -> Option<u32> {
    let at = std::mem::offset_of!(RawHdr, lane);
    record.get(at..at + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// `struct vigil_field`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawField {
    pub off: u32,
    pub len: u32,
    pub orig_len: u32,
    pub flags: u16,
    pub reason: u16,
}

/// `struct vigil_creds`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawCreds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub loginuid: u32,
    pub sessionid: u32,
}

/// `struct vigil_exec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawExec {
    pub hdr: RawHdr,
    pub ppid: u32,
    pub old_pid: u32,
    pub creds: RawCreds,
    pub sid: u32,
    pub pgid: u32,
    pub tty: u32,
    pub path_flags: u32,
    pub cgroup_id: u64,
    pub start_ns: u64,
    pub parent_start_ns: u64,
    pub exe_ino: u64,
    pub argc: u32,
    pub nsid: u32,
    pub vpid: u32,
    pub _pad0: u32,
    pub comm: [u8; COMM_LEN],
    pub exe: RawField,
    pub filename: RawField,
    pub args: RawField,
    pub cwd: RawField,
}

/// `struct vigil_fork`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawFork {
    pub hdr: RawHdr,
    pub child_tgid: u32,
    pub child_pid: u32,
    pub child_start_ns: u64,
    pub parent_start_ns: u64,
    pub child_vpid: u32,
    pub _pad0: u32,
    pub comm: [u8; COMM_LEN],
}

/// `struct vigil_exit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawExit {
    pub hdr: RawHdr,
    pub ppid: u32,
    pub exit_code: u32,
    pub start_ns: u64,
    pub group_dead: u32,
    pub _pad0: u32,
    pub comm: [u8; COMM_LEN],
}

/// `struct vigil_file`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawFile {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub flags: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    pub length: i64,
    pub path_source: u32,
    pub path2_source: u32,
    pub dev: u32,
    pub _pad0: u32,
    pub comm: [u8; COMM_LEN],
    pub path: RawField,
    pub path2: RawField,
}

/// `struct vigil_memfd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawMemfd {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub flags: u32,
    pub name_source: u32,
    pub ino: u64,
    pub comm: [u8; COMM_LEN],
    pub name: RawField,
}

/// `struct vigil_net`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawNet {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub family: u16,
    pub type_: u16,
    pub protocol: u16,
    pub lport: u16,
    pub rport: u16,
    pub addr_source: u16,
    pub backlog: u32,
    pub fd: i32,
    pub _pad0: u32,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    pub comm: [u8; COMM_LEN],
    pub unix_path: RawField,
}

/// `struct vigil_caps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawCaps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// `struct vigil_cred_change`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawCredChange {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub requested: [u32; 3],
    pub nrequested: u32,
    pub old_creds: RawCreds,
    pub new_creds: RawCreds,
    pub old_caps: RawCaps,
    pub new_caps: RawCaps,
    pub comm: [u8; COMM_LEN],
}

/// `struct vigil_ns_change`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawNsChange {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub flags: u32,
    pub fd: i32,
    pub types: u32,
    pub types_source: u32,
    pub old_ns: [u32; NS_MAX],
    pub new_ns: [u32; NS_MAX],
    pub comm: [u8; COMM_LEN],
}

/// `struct vigil_bpf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawBpf {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub cmd: u32,
    pub prog_type: u32,
    pub map_type: u32,
    pub insn_cnt: u32,
    pub attach_type: u32,
    pub obj_source: u32,
    pub obj_id: u32,
    pub _pad0: u32,
    pub name: [u8; 16],
    pub comm: [u8; COMM_LEN],
}

/// `struct vigil_module`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawModule {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub len: u64,
    pub flags: u32,
    pub fd: i32,
    pub comm: [u8; COMM_LEN],
    pub path: RawField,
}

/// `struct vigil_ptrace`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawPtrace {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub request: i64,
    pub addr: u64,
    pub target_pid: u32,
    pub target_tgid: u32,
    pub comm: [u8; COMM_LEN],
}

/// `struct vigil_mount`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RawMount {
    pub hdr: RawHdr,
    pub ret: i64,
    pub syscall: u32,
    pub hook: u32,
    pub flags: u64,
    pub comm: [u8; COMM_LEN],
    pub source: RawField,
    pub target: RawField,
    pub fstype: RawField,
}

/// Plain-old-data record structs: `#[repr(C)]`, only integers and integer
/// arrays, no implicit padding, every bit pattern valid.
///
/// # Safety
/// Implement only for types that satisfy the above.
pub unsafe trait Pod: Copy + Default {
    /// View the value's bytes (used to build test records).
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `Pod` types have no padding and are plain integers, so all
        // `size_of::<Self>()` bytes are initialised.
        unsafe { std::slice::from_raw_parts((self as *const Self).cast::<u8>(), std::mem::size_of::<Self>()) }
    }
}

// SAFETY: all of these are repr(C) structs of integers with explicit padding
// fields; the layout test below proves there is no implicit padding.
unsafe impl Pod for RawHdr {}
// SAFETY: as above.
unsafe impl Pod for RawField {}
// SAFETY: as above.
unsafe impl Pod for RawCreds {}
// SAFETY: as above.
unsafe impl Pod for RawExec {}
// SAFETY: as above.
unsafe impl Pod for RawFork {}
// SAFETY: as above.
unsafe impl Pod for RawExit {}
// SAFETY: as above.
unsafe impl Pod for RawFile {}
// SAFETY: as above.
unsafe impl Pod for RawMemfd {}
// SAFETY: as above.
unsafe impl Pod for RawCaps {}
// SAFETY: as above.
unsafe impl Pod for RawCredChange {}
// SAFETY: as above.
unsafe impl Pod for RawNsChange {}
// SAFETY: as above.
unsafe impl Pod for RawBpf {}
// SAFETY: as above.
unsafe impl Pod for RawNet {}
// SAFETY: as above.
unsafe impl Pod for RawModule {}
// SAFETY: as above.
unsafe impl Pod for RawPtrace {}
// SAFETY: as above.
unsafe impl Pod for RawMount {}

/// Selects one variable-length field descriptor of a record, with its data.
pub type VarField<'a, T> = (fn(&mut T) -> &mut RawField, &'a [u8]);

/// Lay out a record with a fixed part `raw` followed by the variable
/// `data`, each given with its field selector, in order. Field `off`/`len`
/// are filled in and a field with no flags becomes `PRESENT`; `hdr.size`,
/// type and version are set. For golden tests, unit tests and benchmarks.
pub fn encode_var<T: Pod>(mut raw: T, event: EventType, hdr: impl Fn(&mut T) -> &mut RawHdr, fields: &[VarField<'_, T>]) -> Vec<u8> {
    let fixed = std::mem::size_of::<T>();
    let mut tail = Vec::new();
    for (sel, bytes) in fields {
        let f = sel(&mut raw);
        f.off = u32::try_from(fixed + tail.len()).unwrap_or(u32::MAX);
        f.len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if f.flags == 0 {
            f.flags = field_flags::PRESENT;
        }
        tail.extend_from_slice(bytes);
    }
    let h = hdr(&mut raw);
    h.type_ = event as u16;
    h.abi_version = ABI_VERSION;
    h.lane = event.lane();
    h.size = u32::try_from(fixed + tail.len()).unwrap_or(u32::MAX);
    let mut out = raw.as_bytes().to_vec();
    out.extend_from_slice(&tail);
    out
}

/// Copy a `Pod` value out of the front of `bytes`; `None` when too short.
pub fn read_pod<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    let mut value = T::default();
    // SAFETY: the source has at least size_of::<T>() bytes (checked above),
    // the destination is a valid T, the regions do not overlap, and every bit
    // pattern is a valid T (`Pod`).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&mut value as *mut T).cast::<u8>(), std::mem::size_of::<T>());
    }
    Some(value)
}

/// Lay out a file record as the probes do: the fixed part, the path, and
/// for a rename the second path (taken from the syscall's argument, as the
/// rename programs report it). For golden tests and benchmarks.
pub fn encode_file(mut raw: RawFile, event: EventType, path: &[u8], path2: Option<&[u8]>) -> Vec<u8> {
    let mut fields: Vec<VarField<'_, RawFile>> = vec![(|r| &mut r.path, path)];
    if let Some(p2) = path2 {
        raw.path2_source = path_source::ARG;
        fields.push((|r| &mut r.path2, p2));
    }
    encode_var(raw, event, |r| &mut r.hdr, &fields)
}

/// Lay out an exec record as the probes do: the fixed part, then the
/// variable fields (exe, filename, args, cwd) in that order. Each field's
/// `off` and `len` are filled in; its `flags`, `orig_len` and `reason` are
/// kept from `raw`, except that a field with no flags at all is marked
/// `PRESENT`. `hdr.size` is set. For golden tests and benchmarks.
pub fn encode_exec(mut raw: RawExec, data: [&[u8]; 4]) -> Vec<u8> {
    let fixed = std::mem::size_of::<RawExec>();
    let mut tail = Vec::with_capacity(data.iter().map(|d| d.len()).sum());
    for (field, bytes) in [&mut raw.exe, &mut raw.filename, &mut raw.args, &mut raw.cwd].into_iter().zip(data) {
        field.off = u32::try_from(fixed + tail.len()).unwrap_or(u32::MAX);
        field.len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if field.flags == 0 {
            field.flags = field_flags::PRESENT;
        }
        tail.extend_from_slice(bytes);
    }
    raw.hdr.type_ = EventType::Exec as u16;
    raw.hdr.abi_version = ABI_VERSION;
    raw.hdr.size = u32::try_from(fixed + tail.len()).unwrap_or(u32::MAX);
    let mut out = raw.as_bytes().to_vec();
    out.extend_from_slice(&tail);
    out
}

/// The bytes of a fixed-size record (fork, exit) with its header's type,
/// version and size set. For golden tests and benchmarks.
pub fn encode_fixed<T: Pod>(mut raw: T, event: EventType, hdr: impl FnOnce(&mut T) -> &mut RawHdr) -> Vec<u8> {
    let h = hdr(&mut raw);
    h.type_ = event as u16;
    h.abi_version = ABI_VERSION;
    h.size = u32::try_from(std::mem::size_of::<T>()).unwrap_or(u32::MAX);
    raw.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn peek_lane_reads_the_header_lane_and_refuses_short_records() {
        let mut raw = RawExec::default();
        raw.hdr.lane = LANE_BULK;
        let bytes = encode_exec(raw, [b"/bin/x", b"x", b"x\0", b"/"]);
        assert_eq!(peek_lane(&bytes), Some(LANE_BULK));
        assert_eq!(peek_lane(&bytes[..15]), None);
    }

    use super::*;
    use std::mem::{offset_of, size_of};

    /// Sum of field sizes == struct size proves there is no implicit padding.
    #[test]
    fn no_implicit_padding() {
        assert_eq!(size_of::<RawHdr>(), 2 + 2 + 4 + 4 + 4 + 8 + 8 + 4 + 4);
        assert_eq!(size_of::<RawField>(), 4 + 4 + 4 + 2 + 2);
        assert_eq!(size_of::<RawCreds>(), 10 * 4);
        assert_eq!(
            size_of::<RawExec>(),
            size_of::<RawHdr>() + 2 * 4 + size_of::<RawCreds>() + 4 * 4 + 4 * 8 + 4 * 4 + COMM_LEN + 4 * size_of::<RawField>()
        );
        assert_eq!(size_of::<RawFork>(), size_of::<RawHdr>() + 2 * 4 + 2 * 8 + 2 * 4 + COMM_LEN);
        assert_eq!(size_of::<RawExit>(), size_of::<RawHdr>() + 2 * 4 + 8 + 2 * 4 + COMM_LEN);
        // 8-byte fields sit on 8-byte boundaries, as in the C header.
        assert_eq!(offset_of!(RawExec, cgroup_id) % 8, 0);
        assert_eq!(offset_of!(RawFork, child_start_ns) % 8, 0);
        assert_eq!(offset_of!(RawExit, start_ns) % 8, 0);
        assert_eq!(size_of::<RawFile>(), size_of::<RawHdr>() + 8 + 6 * 4 + 2 * 8 + 4 * 4 + COMM_LEN + 2 * size_of::<RawField>());
        assert_eq!(offset_of!(RawFile, ino) % 8, 0);
        assert_eq!(size_of::<RawCredChange>(), size_of::<RawHdr>() + 8 + 2 * 4 + 4 * 4 + 2 * size_of::<RawCreds>() + 6 * 8 + COMM_LEN);
        assert_eq!(offset_of!(RawCredChange, old_caps) % 8, 0);
        assert_eq!(size_of::<RawNsChange>(), size_of::<RawHdr>() + 8 + 6 * 4 + 2 * NS_MAX * 4 + COMM_LEN);
        assert_eq!(size_of::<RawNet>(), size_of::<RawHdr>() + 8 + 2 * 4 + 6 * 2 + 3 * 4 + 32 + COMM_LEN + size_of::<RawField>());
        assert_eq!(size_of::<RawBpf>(), size_of::<RawHdr>() + 8 + 10 * 4 + 16 + COMM_LEN);
        assert_eq!(size_of::<RawModule>(), size_of::<RawHdr>() + 8 + 2 * 4 + 8 + 2 * 4 + COMM_LEN + size_of::<RawField>());
        assert_eq!(size_of::<RawPtrace>(), size_of::<RawHdr>() + 8 + 2 * 4 + 2 * 8 + 2 * 4 + COMM_LEN);
        assert_eq!(size_of::<RawMount>(), size_of::<RawHdr>() + 8 + 2 * 4 + 8 + COMM_LEN + 3 * size_of::<RawField>());
        assert_eq!(size_of::<RawMemfd>(), size_of::<RawHdr>() + 8 + 4 * 4 + 8 + COMM_LEN + size_of::<RawField>());
    }

    /// The constants of one enum of the object's BTF.
    fn enum_values_of(btf: &libbpf_rs::btf::Btf<'_>, name: &str) -> std::collections::BTreeMap<String, i64> {
        let e: libbpf_rs::btf::types::Enum<'_> =
            btf.type_by_name(name).unwrap_or_else(|| panic!("enum {name} missing from the object's BTF"));
        e.iter().map(|m| (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), m.value)).collect()
    }

    /// Every record struct in the compiled BPF object's BTF has exactly the
    /// size, members and member offsets of its Rust mirror.
    #[test]
    fn layouts_match_the_bpf_object_btf() {
        use libbpf_rs::btf::types::{MemberAttr, Struct};
        use libbpf_rs::btf::{Btf, HasSize};
        let btf = Btf::from_path(crate::probes::PROCESS_OBJECT_PATH).expect("BTF of the compiled object");
        macro_rules! check {
            ($c:literal, $rust:ty, [$($field:ident),+ $(,)?]) => {{
                let st: Struct<'_> = btf.type_by_name($c).unwrap_or_else(|| panic!("struct {} missing from the object's BTF", $c));
                assert_eq!(st.size(), size_of::<$rust>(), "size of struct {}", $c);
                let members: Vec<(String, usize)> = st
                    .iter()
                    .map(|m| {
                        let name = m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        let MemberAttr::Normal { offset } = m.attr else { panic!("bitfield {name} in {}", $c) };
                        (name, offset as usize / 8)
                    })
                    .collect();
                let expected: Vec<(String, usize)> = vec![$((stringify!($field).trim_end_matches('_').to_owned(), offset_of!($rust, $field))),+];
                assert_eq!(members, expected, "members of struct {}", $c);
            }};
        }
        check!("vigil_hdr", RawHdr, [type_, abi_version, size, cpu, lane, seq, ktime_ns, tgid, pid]);
        check!("vigil_field", RawField, [off, len, orig_len, flags, reason]);
        check!("vigil_creds", RawCreds, [uid, euid, suid, fsuid, gid, egid, sgid, fsgid, loginuid, sessionid]);
        check!(
            "vigil_exec",
            RawExec,
            [
                hdr,
                ppid,
                old_pid,
                creds,
                sid,
                pgid,
                tty,
                path_flags,
                cgroup_id,
                start_ns,
                parent_start_ns,
                exe_ino,
                argc,
                nsid,
                vpid,
                _pad0,
                comm,
                exe,
                filename,
                args,
                cwd
            ]
        );
        check!("vigil_fork", RawFork, [hdr, child_tgid, child_pid, child_start_ns, parent_start_ns, child_vpid, _pad0, comm]);
        check!("vigil_exit", RawExit, [hdr, ppid, exit_code, start_ns, group_dead, _pad0, comm]);
        check!(
            "vigil_file",
            RawFile,
            [hdr, ret, syscall, hook, flags, mode, uid, gid, ino, length, path_source, path2_source, dev, _pad0, comm, path, path2]
        );
        check!("vigil_memfd", RawMemfd, [hdr, ret, syscall, hook, flags, name_source, ino, comm, name]);
        check!("vigil_caps", RawCaps, [effective, permitted, inheritable]);
        check!(
            "vigil_cred_change",
            RawCredChange,
            [hdr, ret, syscall, hook, requested, nrequested, old_creds, new_creds, old_caps, new_caps, comm]
        );
        check!("vigil_ns_change", RawNsChange, [hdr, ret, syscall, hook, flags, fd, types, types_source, old_ns, new_ns, comm]);
        check!(
            "vigil_bpf",
            RawBpf,
            [hdr, ret, syscall, hook, cmd, prog_type, map_type, insn_cnt, attach_type, obj_source, obj_id, _pad0, name, comm]
        );
        check!(
            "vigil_net",
            RawNet,
            [
                hdr,
                ret,
                syscall,
                hook,
                family,
                type_,
                protocol,
                lport,
                rport,
                addr_source,
                backlog,
                fd,
                _pad0,
                laddr,
                raddr,
                comm,
                unix_path
            ]
        );
        check!("vigil_module", RawModule, [hdr, ret, syscall, hook, len, flags, fd, comm, path]);
        check!("vigil_ptrace", RawPtrace, [hdr, ret, syscall, hook, request, addr, target_pid, target_tgid, comm]);
        check!("vigil_mount", RawMount, [hdr, ret, syscall, hook, flags, comm, source, target, fstype]);
        let ns = enum_values_of(&btf, "vigil_ns_index");
        for (i, name) in NAMESPACES.iter().enumerate() {
            assert_eq!(ns.get(&format!("VIGIL_NS_{}", name.to_ascii_uppercase())), Some(&(i as i64)), "{name}");
        }
        assert_eq!(ns.get("VIGIL_NS_MAX"), Some(&(NS_MAX as i64)));
    }

    /// Every enum constant of the C header (event types, lanes, causes,
    /// reasons, flags, limits) has the value the Rust side uses.
    #[test]
    fn constants_match_the_bpf_object_btf() {
        use libbpf_rs::btf::types::Enum;
        use libbpf_rs::btf::Btf;
        let btf = Btf::from_path(crate::probes::PROCESS_OBJECT_PATH).expect("BTF of the compiled object");
        let enum_values = |name: &str| -> std::collections::BTreeMap<String, i64> {
            let e: Enum<'_> = btf.type_by_name(name).unwrap_or_else(|| panic!("enum {name} missing from the object's BTF"));
            e.iter().map(|m| (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), m.value)).collect()
        };
        let expect = |name: &str, pairs: &[(&str, i64)]| {
            let want: std::collections::BTreeMap<String, i64> = pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            assert_eq!(enum_values(name), want, "enum {name}");
        };
        expect(
            "vigil_limit",
            &[
                ("VIGIL_ABI_VERSION", i64::from(ABI_VERSION)),
                ("VIGIL_EV_SLOTS", EV_SLOTS as i64),
                ("VIGIL_PATH_MAX", PATH_MAX as i64),
                ("VIGIL_PATH_DEPTH_MAX", 128),
                ("VIGIL_ARGS_CAP", ARGS_CAP as i64),
                ("VIGIL_ARGS_DEFAULT", ARGS_DEFAULT as i64),
                ("VIGIL_COMM_LEN", COMM_LEN as i64),
            ],
        );
        let types = enum_values("vigil_event_type");
        assert_eq!(types.len(), EventType::ALL.len(), "{types:?}");
        for t in EventType::ALL {
            let c = format!("VIGIL_EV_{}", t.event_name().trim_start_matches("vigil.").replace(['.'], "_").to_ascii_uppercase());
            let c = c.replace("VIGIL_EV_PROCESS_", "VIGIL_EV_");
            assert_eq!(types.get(&c), Some(&(t as i64)), "{c}");
        }
        expect(
            "vigil_lane",
            &[
                ("VIGIL_LANE_CRITICAL", i64::from(LANE_CRITICAL)),
                ("VIGIL_LANE_BULK", i64::from(LANE_BULK)),
                ("VIGIL_LANE_MAX", LANE_MAX as i64),
            ],
        );
        let hooks = enum_values("vigil_hook");
        assert_eq!(hooks.len(), HookKind::ALL.len());
        for (name, value) in &hooks {
            let k = HookKind::from_raw(u32::try_from(*value).expect("u32")).unwrap_or_else(|| panic!("{name} unknown"));
            let expected = match k {
                HookKind::TpBtf => "VIGIL_HOOK_TP_BTF",
                HookKind::SyscallTp => "VIGIL_HOOK_SYSCALL_TP",
                HookKind::RawSyscall => "VIGIL_HOOK_RAW_SYSCALL",
                HookKind::Lsm => "VIGIL_HOOK_LSM",
                HookKind::Fentry => "VIGIL_HOOK_FENTRY",
                HookKind::IoUring => "VIGIL_HOOK_IO_URING",
                HookKind::IoUringSubmit => "VIGIL_HOOK_IO_URING_SUBMIT",
                HookKind::IoUringOverflow => "VIGIL_HOOK_IO_URING_OVERFLOW",
            };
            assert_eq!(name, expected);
        }
        let sys = enum_values("vigil_syscall");
        assert_eq!(sys.len(), SYSCALLS.len(), "{sys:?}");
        for (name, value) in &sys {
            let id = u32::try_from(*value).expect("u32");
            let n = syscall_name(id).unwrap_or_else(|| panic!("{name} = {id} unknown to the Rust side"));
            assert_eq!(name.trim_start_matches("VIGIL_SYS_").to_ascii_lowercase(), n, "{name}");
        }
        expect(
            "vigil_path_source",
            &[
                ("VIGIL_PATH_SRC_NONE", i64::from(path_source::NONE)),
                ("VIGIL_PATH_SRC_OBJECT", i64::from(path_source::OBJECT)),
                ("VIGIL_PATH_SRC_ARG", i64::from(path_source::ARG)),
            ],
        );
        expect(
            "vigil_drop_cause",
            &[
                ("VIGIL_DROP_RINGBUF_FULL", DropCause::RingbufFull as i64),
                ("VIGIL_DROP_TOO_LARGE", DropCause::TooLarge as i64),
                ("VIGIL_DROP_SCRATCH", DropCause::Scratch as i64),
                ("VIGIL_DROP_MAX", DROP_MAX as i64),
            ],
        );
        expect(
            "vigil_field_problem",
            &[
                ("VIGIL_FIELDP_READ_FAULT", FieldProblem::ReadFault as i64),
                ("VIGIL_FIELDP_PATH_DEPTH", FieldProblem::PathDepth as i64),
                ("VIGIL_FIELDP_TRUNCATED", FieldProblem::Truncated as i64),
                ("VIGIL_FIELDP_MAX", FIELDP_MAX as i64),
            ],
        );
        expect(
            "vigil_field_flag",
            &[
                ("VIGIL_F_PRESENT", i64::from(field_flags::PRESENT)),
                ("VIGIL_F_TRUNCATED", i64::from(field_flags::TRUNCATED)),
                ("VIGIL_F_UNAVAILABLE", i64::from(field_flags::UNAVAILABLE)),
                ("VIGIL_F_SIZE_KNOWN", i64::from(field_flags::SIZE_KNOWN)),
            ],
        );
        expect("vigil_exe_flag", &[("VIGIL_EXE_DELETED", i64::from(exe_flags::DELETED)), ("VIGIL_EXE_MEMFD", i64::from(exe_flags::MEMFD))]);
        let reasons = enum_values("vigil_reason");
        assert_eq!(reasons.get("VIGIL_R_NONE"), Some(&0));
        for (name, value) in &reasons {
            if *value == 0 {
                continue;
            }
            let r = Reason::from_raw(u16::try_from(*value).expect("u16")).expect("some");
            assert!(!matches!(r, Reason::Unknown(_)), "{name} = {value} is unknown to the Rust side");
            let expected = name.trim_start_matches("VIGIL_R_").to_ascii_lowercase();
            assert_eq!(r.as_str(), expected, "{name}");
        }
    }

    #[test]
    fn read_pod_round_trip_and_short_input() {
        let hdr = RawHdr { type_: 1, abi_version: ABI_VERSION, size: 40, cpu: 1, lane: 0, seq: 7, ktime_ns: 9, tgid: 10, pid: 11 };
        let bytes = hdr.as_bytes().to_vec();
        assert_eq!(read_pod::<RawHdr>(&bytes), Some(hdr));
        assert_eq!(read_pod::<RawHdr>(&bytes[..39]), None);
    }

    #[test]
    fn event_type_ids_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_raw(t as u16), Some(t));
            assert!((t as usize) < EV_SLOTS);
        }
        assert_eq!(EventType::from_raw(0), None);
        assert_eq!(EventType::from_raw(999), None);
    }
}
