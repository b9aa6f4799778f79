//! Decode stage: raw ring-buffer bytes -> typed [`Record`]s.
//!
//! Every byte from the kernel is untrusted input. The decoder checks the
//! header, the declared size against the bytes actually received, the ABI
//! version, and every variable-length field's offset and length against the
//! record's bounds. It never panics: a malformed record becomes a
//! [`DecodeError`] that the pipeline counts and reports.

use crate::abi::{
    self, field_flags, read_pod, EventType, HookKind, RawCaps, RawCredChange, RawExec, RawExit, RawField, RawFile, RawFork, RawHdr,
    RawMemfd, RawNsChange, Reason,
};
use crate::abi::{RawBpf, RawModule, RawMount, RawNet, RawPtrace};
use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes than the header.
    #[error("record of {0} bytes is shorter than the header")]
    ShortHeader(usize),
    /// The header's size disagrees with the bytes received.
    #[error("header says {declared} bytes, received {received}")]
    SizeMismatch {
        /// `hdr.size`
        declared: u32,
        /// bytes received
        received: usize,
    },
    /// The probes speak another ABI version.
    #[error("ABI version {0} (this build understands {v})", v = abi::ABI_VERSION)]
    AbiVersion(u16),
    /// An event type this build does not know.
    #[error("unknown event type {0}")]
    UnknownType(u16),
    /// Fewer bytes than the fixed part of the event type.
    #[error("{event:?} record of {size} bytes is shorter than its fixed part")]
    ShortRecord {
        /// event type
        event: EventType,
        /// bytes received
        size: usize,
    },
    /// A variable-length field points outside the record.
    #[error("field {field} (offset {off}, length {len}) lies outside the {size}-byte record")]
    FieldOutOfBounds {
        /// field name
        field: &'static str,
        /// declared offset
        off: u32,
        /// declared length
        len: u32,
        /// record size
        size: usize,
    },
}

impl DecodeError {
    /// Event type of the malformed record, when the header names a known one.
    pub fn event_type(&self) -> Option<EventType> {
        match self {
            DecodeError::ShortRecord { event, .. } => Some(*event),
            _ => None,
        }
    }
}

/// The common header of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Event type.
    pub event: EventType,
    /// CPU whose stream numbered the record.
    pub cpu: u32,
    /// Lane (ring buffer) the record came through.
    pub lane: u32,
    /// Per-CPU, per-lane sequence number.
    pub seq: u64,
    /// Boot-clock time of the event, in nanoseconds.
    pub ktime_ns: u64,
    /// Acting process (tgid).
    pub tgid: u32,
    /// Acting thread.
    pub pid: u32,
}

/// A variable-length value with its completeness: its bytes owned (`B`
/// = `Vec<u8>`, what [`decode`] gives), or borrowed from the raw record
/// (`&[u8]`, [`decode_borrowed`]: what the map stage uses for exec records,
/// which it maps and drops).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field<B = Vec<u8>> {
    /// Stored bytes (may be a prefix of the original), `None` when the probe
    /// could not read the value.
    pub bytes: Option<B>,
    /// Only a prefix of the original is stored.
    pub truncated: bool,
    /// Original size in bytes, when the kernel knew it.
    pub original_size: Option<u64>,
    /// Why the value is unavailable (with `bytes == None`) or was cut.
    pub reason: Option<Reason>,
}

impl Field {
    /// A complete value (used by tests and by procfs-sourced context).
    pub fn complete(bytes: impl Into<Vec<u8>>) -> Self {
        Field { bytes: Some(bytes.into()), ..Field::default() }
    }
}

impl<B> Field<B> {
    /// Whether the probe failed to read the value.
    pub fn is_unavailable(&self) -> bool {
        self.bytes.is_none()
    }
}

/// `vigil.process.exec`, its variable-length values owned or borrowed (see
/// [`Field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecEvent<B = Vec<u8>> {
    /// Parent tgid.
    pub ppid: u32,
    /// Thread id before exec.
    pub old_pid: u32,
    /// Credentials.
    pub creds: abi::RawCreds,
    /// Session id.
    pub sid: u32,
    /// Process group id.
    pub pgid: u32,
    /// Has a controlling terminal.
    pub tty: bool,
    /// The executable's file is unlinked.
    pub exe_deleted: bool,
    /// The executable lives on a memfd.
    pub exe_memfd: bool,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// Process start (boot clock, ns).
    pub start_ns: u64,
    /// Parent start (boot clock, ns).
    pub parent_start_ns: u64,
    /// Executable inode number.
    pub exe_ino: u64,
    /// Exact argc.
    pub argc: u32,
    /// pid namespace inode.
    pub pidns: u32,
    /// tgid in its own pid namespace.
    pub vpid: u32,
    /// Task comm at exec (set by the kernel from the file name).
    pub comm: B,
    /// Kernel-resolved executable path.
    pub exe: Field<B>,
    /// File name as passed to exec.
    pub filename: Field<B>,
    /// Raw argument area: NUL-separated arguments.
    pub args: Field<B>,
    /// Kernel-resolved working directory.
    pub cwd: Field<B>,
}

impl<B: std::ops::Deref<Target = [u8]>> ExecEvent<B> {
    /// argv as a list of byte strings, split at NUL. A cut argument area
    /// yields a last, partial argument; an empty area yields no arguments.
    pub fn argv(&self) -> Vec<&[u8]> {
        self.args.bytes.as_deref().map(split_args).unwrap_or_default()
    }
}

/// Split a NUL-separated argument area (as in /proc/<pid>/cmdline).
pub fn split_args(bytes: &[u8]) -> Vec<&[u8]> {
    args(bytes).collect()
}

/// The arguments of a NUL-separated argument area, as [`split_args`] gives
/// them, without collecting them (the map stage escapes each one straight
/// into its own vector).
pub fn args(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    // An empty area has no arguments (split would give one empty one).
    bytes.split(|b| *b == 0).take(if bytes.is_empty() { 0 } else { usize::MAX })
}

/// `vigil.process.fork` (new processes only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvent {
    /// Child tgid.
    pub child_tgid: u32,
    /// Child thread id.
    pub child_pid: u32,
    /// Child start (boot clock, ns).
    pub child_start_ns: u64,
    /// Parent start (boot clock, ns).
    pub parent_start_ns: u64,
    /// Child tgid in its own pid namespace.
    pub child_vpid: u32,
    /// Child comm (inherited).
    pub comm: Vec<u8>,
}

/// `vigil.process.exit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitEvent {
    /// Parent tgid.
    pub ppid: u32,
    /// Wait status.
    pub status: u32,
    /// Process start (boot clock, ns).
    pub start_ns: u64,
    /// The whole thread group ended.
    pub group_dead: bool,
    /// comm at exit.
    pub comm: Vec<u8>,
}

impl ExitEvent {
    /// Exit code when the process exited normally.
    pub fn exit_code(&self) -> Option<i64> {
        (self.status & 0x7f == 0).then_some(i64::from((self.status >> 8) & 0xff))
    }

    /// Terminating signal, when killed by one.
    pub fn signal(&self) -> Option<u32> {
        let sig = self.status & 0x7f;
        (sig != 0).then_some(sig)
    }

    /// Whether a core dump was written.
    pub fn core_dumped(&self) -> bool {
        self.status & 0x80 != 0
    }
}

/// Where a path in a file record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSource {
    /// Walked from the kernel object the syscall used (the opened file).
    KernelObject,
    /// The syscall's path argument (the kernel's copy, read at exit), made
    /// absolute with the kernel path of the dirfd or the cwd.
    SyscallArgument,
    /// No path (or a value this build does not know).
    None,
}

impl PathSource {
    fn from_raw(raw: u32) -> Self {
        match raw {
            abi::path_source::OBJECT => PathSource::KernelObject,
            abi::path_source::ARG => PathSource::SyscallArgument,
            _ => PathSource::None,
        }
    }

    /// `vigil.file.path_source` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PathSource::KernelObject => "kernel_object",
            PathSource::SyscallArgument => "syscall_argument",
            PathSource::None => "none",
        }
    }
}

/// What every event-family record (file, network, privilege, kernel)
/// carries about the syscall behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallInfo {
    /// `enum vigil_syscall` id.
    pub syscall: u32,
    /// Return value: >= 0 success, < 0 `-errno`.
    pub ret: i64,
    /// Hook kind that produced the record (`None`: unknown id).
    pub hook: Option<HookKind>,
    /// Acting thread's comm.
    pub comm: Vec<u8>,
}

impl SyscallInfo {
    /// The errno of a failed call.
    pub fn errno(&self) -> Option<i32> {
        (!self.outcome_unknown() && self.ret < 0 && self.ret > -4096).then(|| i32::try_from(-self.ret).unwrap_or(0))
    }

    /// Whether the record was written before the call's outcome was known
    /// (an io_uring operation reported at submission; a BPF-LSM hook that
    /// saw the operation allowed so far, with checks still to come, e.g.
    /// may_delete's permission checks after `security_path_unlink`): `ret`
    /// means nothing. An LSM record with a negative `ret` is a denial by the
    /// LSMs before it, a real outcome.
    pub fn outcome_unknown(&self) -> bool {
        match self.hook {
            Some(HookKind::IoUringSubmit) => true,
            Some(HookKind::Lsm) => self.ret == 0,
            _ => false,
        }
    }
}

/// `vigil.file.*`: open, unlink, rename, chmod, chown, truncate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// Open flags as passed; unlinkat / renameat2 flags.
    pub flags: u32,
    /// Open/creat/chmod mode.
    pub mode: u32,
    /// chown: new owner (`None`: unchanged).
    pub uid: Option<u32>,
    /// chown: new group (`None`: unchanged).
    pub gid: Option<u32>,
    /// Inode of the object, when known.
    pub ino: Option<u64>,
    /// Device (`s_dev`) of the object, when known.
    pub dev: Option<u32>,
    /// truncate: new length.
    pub length: i64,
    /// The object's path.
    pub path: Field,
    /// Where `path` comes from.
    pub path_source: PathSource,
    /// rename: the new name.
    pub path2: Option<Field>,
    /// Where `path2` comes from.
    pub path2_source: PathSource,
}

/// `vigil.fileless.memfd_create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemfdEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// `MFD_*` flags.
    pub flags: u32,
    /// Inode of the new file, when created.
    pub ino: Option<u64>,
    /// The name as the kernel stored it (`memfd:<name>`) on success, the
    /// argument on failure.
    pub name: Field,
    /// Where `name` comes from.
    pub name_source: PathSource,
}

impl MemfdEvent {
    /// The name given to memfd_create (without the kernel's `memfd:`).
    pub fn given_name(&self) -> Option<&[u8]> {
        let n = self.name.bytes.as_deref()?;
        Some(if self.name_source == PathSource::KernelObject { n.strip_prefix(b"memfd:").unwrap_or(n) } else { n })
    }
}

/// `vigil.privilege.cred_change`: setuid family, capset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredChangeEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// The id arguments (`u32::MAX`: -1, unchanged), as many as the syscall takes.
    pub requested: Vec<u32>,
    /// Credentials before the call.
    pub old_creds: abi::RawCreds,
    /// Credentials after it.
    pub new_creds: abi::RawCreds,
    /// Capabilities before.
    pub old_caps: RawCaps,
    /// Capabilities after.
    pub new_caps: RawCaps,
}

impl CredChangeEvent {
    /// Whether a setfsuid/setfsgid call refused the id it was asked for.
    ///
    /// These two syscalls never return an errno: they return the previous
    /// fs id (in the caller's user namespace) and leave it unchanged when
    /// the new one is not allowed. A call is a refusal when the fs id did
    /// not change although a real id (not -1, a query) other than the
    /// previous one was asked for. The probes apply the same rule to decide
    /// whether an unchanged call is reported (`vigil_fsid_refused`).
    pub fn fs_id_refused(&self) -> bool {
        let (old, new) = match self.sys.syscall {
            abi::SYS_SETFSUID => (self.old_creds.fsuid, self.new_creds.fsuid),
            abi::SYS_SETFSGID => (self.old_creds.fsgid, self.new_creds.fsgid),
            _ => return false,
        };
        let Some(&asked) = self.requested.first() else { return false };
        // The kernel returns a uid_t/gid_t widened to long.
        old == new && asked != u32::MAX && i64::from(asked) != self.sys.ret
    }
}

/// `vigil.privilege.namespace`: unshare, setns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// unshare: CLONE_* flags; setns: nstype.
    pub flags: u32,
    /// setns: the namespace descriptor.
    pub fd: Option<i32>,
    /// CLONE_NEW* bits of the namespaces concerned: setns on a namespace
    /// file, that namespace's type; otherwise the flags.
    pub types: u32,
    /// Where `types` comes from: the namespace file (kernel object) or the
    /// flags (syscall argument).
    pub types_source: PathSource,
    /// Namespace inodes before, indexed like [`abi::NAMESPACES`].
    pub old_ns: [u32; abi::NS_MAX],
    /// Namespace inodes after.
    pub new_ns: [u32; abi::NS_MAX],
}

/// `vigil.network.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// AF_*.
    pub family: u16,
    /// SOCK_*.
    pub sock_type: u16,
    /// IPPROTO_*.
    pub protocol: u16,
    /// Local address and port (IPv4: the first 4 bytes).
    pub local: ([u8; 16], u16),
    /// Peer address and port.
    pub peer: ([u8; 16], u16),
    /// Where the addresses come from.
    pub addr_source: PathSource,
    /// listen: backlog.
    pub backlog: u32,
    /// The socket's descriptor (accept: the new one).
    pub fd: i32,
    /// AF_UNIX: the peer's sun_path (absent for IP sockets).
    pub unix_path: Option<Field>,
}

impl NetEvent {
    /// An address as an `IpAddr` of the socket's family.
    pub fn ip(&self, raw: &[u8; 16]) -> Option<std::net::IpAddr> {
        match self.family {
            2 => Some(std::net::IpAddr::from([raw[0], raw[1], raw[2], raw[3]])),
            10 => Some(std::net::IpAddr::from(*raw)),
            _ => None,
        }
    }
}

/// `vigil.kernel.bpf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// `enum bpf_cmd`.
    pub cmd: u32,
    /// PROG_LOAD: program type.
    pub prog_type: u32,
    /// MAP_CREATE: map type.
    pub map_type: u32,
    /// PROG_LOAD: instruction count.
    pub insn_cnt: u32,
    /// Attach type (PROG_LOAD expected, PROG_ATTACH, LINK_CREATE).
    pub attach_type: u32,
    /// Where the object fields come from.
    pub source: PathSource,
    /// Kernel id of the new program or map.
    pub id: Option<u32>,
    /// Program or map name.
    pub name: Vec<u8>,
}

/// `vigil.kernel.module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// init_module: image size.
    pub len: u64,
    /// finit_module: flags.
    pub flags: u32,
    /// finit_module: descriptor.
    pub fd: Option<i32>,
    /// finit_module: the descriptor's file (absent for init_module).
    pub path: Option<Field>,
}

/// `vigil.kernel.ptrace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtraceEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// The request.
    pub request: i64,
    /// The address argument.
    pub addr: u64,
    /// Target pid as passed.
    pub target_pid: u32,
    /// The target's process (thread group) id in the initial pid
    /// namespace, resolved in the kernel from the tasks the caller traces;
    /// `None` when it is not among them (a failed attach, a detach).
    pub target_tgid: Option<u32>,
}

/// `vigil.kernel.mount` / `vigil.kernel.umount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEvent {
    /// Syscall, result, hook.
    pub sys: SyscallInfo,
    /// MS_* (mount) or MNT_* (umount2) flags.
    pub flags: u64,
    /// mount: source (absent for umount).
    pub source: Option<Field>,
    /// Mount point, made absolute with the cwd.
    pub target: Field,
    /// mount: filesystem type (absent for umount).
    pub fstype: Option<Field>,
}

/// The typed payload of a record.
// Exec records dominate the stream; boxing them would add an allocation to
// the most common record to save stack space on the rare small ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<B = Vec<u8>> {
    /// exec (its values owned or borrowed, see [`Field`])
    Exec(ExecEvent<B>),
    /// fork
    Fork(ForkEvent),
    /// exit
    Exit(ExitEvent),
    /// file events (the type is in the header)
    File(FileEvent),
    /// memfd_create
    Memfd(MemfdEvent),
    /// credential change
    CredChange(CredChangeEvent),
    /// namespace change
    Namespace(NamespaceEvent),
    /// network
    Net(NetEvent),
    /// bpf()
    Bpf(BpfEvent),
    /// module loading
    Module(ModuleEvent),
    /// ptrace
    Ptrace(PtraceEvent),
    /// mount / umount
    Mount(MountEvent),
}

/// One decoded record (an exec's values owned or borrowed, see [`Field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<B = Vec<u8>> {
    /// Common header.
    pub header: Header,
    /// Payload.
    pub event: Event<B>,
}

/// Decode one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    decode_as(bytes)
}

/// [`decode`], an exec record's variable-length values borrowed from
/// `bytes` instead of copied (the map stage maps the record and drops it:
/// five allocations and copies per exec saved). The same checks.
pub fn decode_borrowed(bytes: &[u8]) -> Result<Record<&[u8]>, DecodeError> {
    decode_as(bytes)
}

fn decode_as<'a, B: From<&'a [u8]>>(bytes: &'a [u8]) -> Result<Record<B>, DecodeError> {
    let raw: RawHdr = read_pod(bytes).ok_or(DecodeError::ShortHeader(bytes.len()))?;
    // The ring buffer rounds sample sizes up to 8 bytes; the header size must
    // fit in what we received and may not exceed it.
    if raw.size as usize > bytes.len() || (raw.size as usize) < std::mem::size_of::<RawHdr>() {
        return Err(DecodeError::SizeMismatch { declared: raw.size, received: bytes.len() });
    }
    let bytes = &bytes[..raw.size as usize];
    if raw.abi_version != abi::ABI_VERSION {
        return Err(DecodeError::AbiVersion(raw.abi_version));
    }
    let event = EventType::from_raw(raw.type_).ok_or(DecodeError::UnknownType(raw.type_))?;
    if bytes.len() < event.fixed_size() {
        return Err(DecodeError::ShortRecord { event, size: bytes.len() });
    }
    let header = Header { event, cpu: raw.cpu, lane: raw.lane, seq: raw.seq, ktime_ns: raw.ktime_ns, tgid: raw.tgid, pid: raw.pid };
    let event = match event {
        EventType::Exec => Event::Exec(decode_exec(bytes)?),
        EventType::Fork => Event::Fork(decode_fork(bytes)?),
        EventType::Exit => Event::Exit(decode_exit(bytes)?),
        EventType::FileOpen
        | EventType::FileUnlink
        | EventType::FileRename
        | EventType::FileChmod
        | EventType::FileChown
        | EventType::FileTruncate => Event::File(decode_file(event, bytes)?),
        EventType::FilelessMemfdCreate => Event::Memfd(decode_memfd(bytes)?),
        EventType::PrivilegeCredChange => {
            let raw: RawCredChange = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            let n = (raw.nrequested as usize).min(raw.requested.len());
            Event::CredChange(CredChangeEvent {
                sys: SyscallInfo { syscall: raw.syscall, ret: raw.ret, hook: HookKind::from_raw(raw.hook), comm: comm(&raw.comm) },
                requested: raw.requested[..n].to_vec(),
                old_creds: raw.old_creds,
                new_creds: raw.new_creds,
                old_caps: raw.old_caps,
                new_caps: raw.new_caps,
            })
        }
        EventType::NetworkConnect | EventType::NetworkAccept | EventType::NetworkBind | EventType::NetworkListen => {
            let raw: RawNet = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            let unix_path =
                if raw.family == 1 { Some(field(bytes, std::mem::size_of::<RawNet>(), &raw.unix_path, "unix_path")?) } else { None };
            Event::Net(NetEvent {
                sys: sys_info(raw.syscall, raw.ret, raw.hook, &raw.comm),
                family: raw.family,
                sock_type: raw.type_,
                protocol: raw.protocol,
                local: (raw.laddr, raw.lport),
                peer: (raw.raddr, raw.rport),
                addr_source: PathSource::from_raw(u32::from(raw.addr_source)),
                backlog: raw.backlog,
                fd: raw.fd,
                unix_path,
            })
        }
        EventType::KernelBpf => {
            let raw: RawBpf = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            Event::Bpf(BpfEvent {
                sys: sys_info(raw.syscall, raw.ret, raw.hook, &raw.comm),
                cmd: raw.cmd,
                prog_type: raw.prog_type,
                map_type: raw.map_type,
                insn_cnt: raw.insn_cnt,
                attach_type: raw.attach_type,
                source: PathSource::from_raw(raw.obj_source),
                id: (raw.obj_id != 0).then_some(raw.obj_id),
                name: comm(&raw.name),
            })
        }
        EventType::KernelModule => {
            let raw: RawModule = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            let fixed = std::mem::size_of::<RawModule>();
            let finit = raw.fd >= 0;
            Event::Module(ModuleEvent {
                sys: sys_info(raw.syscall, raw.ret, raw.hook, &raw.comm),
                len: raw.len,
                flags: raw.flags,
                fd: finit.then_some(raw.fd),
                path: if finit { Some(field(bytes, fixed, &raw.path, "path")?) } else { None },
            })
        }
        EventType::KernelPtrace => {
            let raw: RawPtrace = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            Event::Ptrace(PtraceEvent {
                sys: sys_info(raw.syscall, raw.ret, raw.hook, &raw.comm),
                request: raw.request,
                addr: raw.addr,
                target_pid: raw.target_pid,
                target_tgid: (raw.target_tgid != 0).then_some(raw.target_tgid),
            })
        }
        EventType::KernelMount | EventType::KernelUmount => {
            let raw: RawMount = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            let fixed = std::mem::size_of::<RawMount>();
            let mount = event == EventType::KernelMount;
            Event::Mount(MountEvent {
                sys: sys_info(raw.syscall, raw.ret, raw.hook, &raw.comm),
                flags: raw.flags,
                source: if mount { Some(field(bytes, fixed, &raw.source, "source")?) } else { None },
                target: field(bytes, fixed, &raw.target, "target")?,
                fstype: if mount { Some(field(bytes, fixed, &raw.fstype, "fstype")?) } else { None },
            })
        }
        EventType::PrivilegeNamespace => {
            let raw: RawNsChange = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
            Event::Namespace(NamespaceEvent {
                sys: SyscallInfo { syscall: raw.syscall, ret: raw.ret, hook: HookKind::from_raw(raw.hook), comm: comm(&raw.comm) },
                flags: raw.flags,
                fd: (raw.fd >= 0).then_some(raw.fd),
                types: raw.types,
                types_source: PathSource::from_raw(raw.types_source),
                old_ns: raw.old_ns,
                new_ns: raw.new_ns,
            })
        }
    };
    Ok(Record { header, event })
}

fn short(event: EventType, bytes: &[u8]) -> DecodeError {
    DecodeError::ShortRecord { event, size: bytes.len() }
}

fn decode_exec<'a, B: From<&'a [u8]>>(bytes: &'a [u8]) -> Result<ExecEvent<B>, DecodeError> {
    let raw: RawExec = read_pod(bytes).ok_or_else(|| short(EventType::Exec, bytes))?;
    let fixed = std::mem::size_of::<RawExec>();
    // The comm as it lies in `bytes` (`raw` is a copy): read_pod checked
    // that the fixed part is there.
    let at = std::mem::offset_of!(RawExec, comm);
    let raw_comm = bytes.get(at..at + abi::COMM_LEN).unwrap_or_default();
    Ok(ExecEvent {
        ppid: raw.ppid,
        old_pid: raw.old_pid,
        creds: raw.creds,
        sid: raw.sid,
        pgid: raw.pgid,
        tty: raw.tty != 0,
        exe_deleted: raw.path_flags & abi::exe_flags::DELETED != 0,
        exe_memfd: raw.path_flags & abi::exe_flags::MEMFD != 0,
        cgroup_id: raw.cgroup_id,
        start_ns: raw.start_ns,
        parent_start_ns: raw.parent_start_ns,
        exe_ino: raw.exe_ino,
        argc: raw.argc,
        pidns: raw.nsid,
        vpid: raw.vpid,
        comm: B::from(until_nul(raw_comm)),
        exe: field_as(bytes, fixed, &raw.exe, "exe")?,
        filename: field_as(bytes, fixed, &raw.filename, "filename")?,
        args: field_as(bytes, fixed, &raw.args, "args")?,
        cwd: field_as(bytes, fixed, &raw.cwd, "cwd")?,
    })
}

fn decode_fork(bytes: &[u8]) -> Result<ForkEvent, DecodeError> {
    let raw: RawFork = read_pod(bytes).ok_or_else(|| short(EventType::Fork, bytes))?;
    Ok(ForkEvent {
        child_tgid: raw.child_tgid,
        child_pid: raw.child_pid,
        child_start_ns: raw.child_start_ns,
        parent_start_ns: raw.parent_start_ns,
        child_vpid: raw.child_vpid,
        comm: comm(&raw.comm),
    })
}

fn decode_exit(bytes: &[u8]) -> Result<ExitEvent, DecodeError> {
    let raw: RawExit = read_pod(bytes).ok_or_else(|| short(EventType::Exit, bytes))?;
    Ok(ExitEvent { ppid: raw.ppid, status: raw.exit_code, start_ns: raw.start_ns, group_dead: raw.group_dead != 0, comm: comm(&raw.comm) })
}

const UNCHANGED: u32 = u32::MAX;

fn decode_file(event: EventType, bytes: &[u8]) -> Result<FileEvent, DecodeError> {
    let raw: RawFile = read_pod(bytes).ok_or_else(|| short(event, bytes))?;
    let fixed = std::mem::size_of::<RawFile>();
    let path2 = if event == EventType::FileRename { Some(field(bytes, fixed, &raw.path2, "path2")?) } else { None };
    Ok(FileEvent {
        sys: SyscallInfo { syscall: raw.syscall, ret: raw.ret, hook: HookKind::from_raw(raw.hook), comm: comm(&raw.comm) },
        flags: raw.flags,
        mode: raw.mode,
        uid: (raw.uid != UNCHANGED).then_some(raw.uid),
        gid: (raw.gid != UNCHANGED).then_some(raw.gid),
        ino: (raw.ino != 0).then_some(raw.ino),
        dev: (raw.dev != 0).then_some(raw.dev),
        length: raw.length,
        path: field(bytes, fixed, &raw.path, "path")?,
        path_source: PathSource::from_raw(raw.path_source),
        path2,
        path2_source: PathSource::from_raw(raw.path2_source),
    })
}

fn decode_memfd(bytes: &[u8]) -> Result<MemfdEvent, DecodeError> {
    let raw: RawMemfd = read_pod(bytes).ok_or_else(|| short(EventType::FilelessMemfdCreate, bytes))?;
    Ok(MemfdEvent {
        sys: SyscallInfo { syscall: raw.syscall, ret: raw.ret, hook: HookKind::from_raw(raw.hook), comm: comm(&raw.comm) },
        flags: raw.flags,
        ino: (raw.ino != 0).then_some(raw.ino),
        name: field(bytes, std::mem::size_of::<RawMemfd>(), &raw.name, "name")?,
        name_source: PathSource::from_raw(raw.name_source),
    })
}

fn sys_info(syscall: u32, ret: i64, hook: u32, raw_comm: &[u8; abi::COMM_LEN]) -> SyscallInfo {
    SyscallInfo { syscall, ret, hook: HookKind::from_raw(hook), comm: comm(raw_comm) }
}

/// A fixed-size, NUL-padded comm as bytes up to the first NUL.
fn comm(raw: &[u8; abi::COMM_LEN]) -> Vec<u8> {
    until_nul(raw).to_vec()
}

/// A NUL-padded value up to its first NUL.
fn until_nul(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    &raw[..end]
}

/// Resolve a field descriptor against the record, checking bounds: the data
/// must lie after the fixed part and inside the record.
fn field(bytes: &[u8], fixed: usize, raw: &RawField, name: &'static str) -> Result<Field, DecodeError> {
    field_as(bytes, fixed, raw, name)
}

/// [`field`], its bytes owned or borrowed (see [`Field`]).
fn field_as<'a, B: From<&'a [u8]>>(bytes: &'a [u8], fixed: usize, raw: &RawField, name: &'static str) -> Result<Field<B>, DecodeError> {
    let truncated = raw.flags & field_flags::TRUNCATED != 0;
    let original_size = (raw.flags & field_flags::SIZE_KNOWN != 0).then_some(u64::from(raw.orig_len));
    let reason = Reason::from_raw(raw.reason);
    if raw.flags & field_flags::UNAVAILABLE != 0 || raw.flags & field_flags::PRESENT == 0 {
        // An unavailable field always carries a reason; a field neither
        // present nor flagged is a probe bug and is reported the same way.
        let reason = reason.or(Some(Reason::Unknown(0)));
        return Ok(Field { bytes: None, truncated, original_size, reason });
    }
    let start = raw.off as usize;
    let end = start.checked_add(raw.len as usize);
    match end {
        Some(end) if start >= fixed && end <= bytes.len() => {
            Ok(Field { bytes: Some(B::from(&bytes[start..end])), truncated, original_size, reason })
        }
        _ => Err(DecodeError::FieldOutOfBounds { field: name, off: raw.off, len: raw.len, size: bytes.len() }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::abi::RawHdr as _;
    use crate::abi::{Pod, RawCreds};

    /// Build a raw exec record the way the probes lay it out.
    pub(crate) fn exec_record(exe: &[u8], filename: &[u8], args: &[u8], cwd: &[u8]) -> Vec<u8> {
        let mut raw = RawExec {
            hdr: RawHdr { cpu: 1, seq: 42, ktime_ns: 5_000_000_000, tgid: 1234, pid: 1234, ..RawHdr::default() },
            ppid: 1000,
            old_pid: 1234,
            creds: RawCreds {
                uid: 1000,
                euid: 1000,
                suid: 1000,
                fsuid: 1000,
                gid: 100,
                egid: 100,
                sgid: 100,
                fsgid: 100,
                loginuid: 1000,
                sessionid: 3,
            },
            sid: 900,
            pgid: 1234,
            tty: 1,
            cgroup_id: 77,
            start_ns: 4_999_000_000,
            parent_start_ns: 1_000_000_000,
            exe_ino: 555,
            argc: 3,
            vpid: 1234,
            nsid: 4026531836,
            ..RawExec::default()
        };
        raw.comm[..2].copy_from_slice(b"ls");
        abi::encode_exec(raw, [exe, filename, args, cwd])
    }

    #[test]
    fn decodes_exec_fields() {
        let bytes = exec_record(b"/usr/bin/ls", b"ls", b"ls\0-la\0/tmp\0", b"/home/u");
        let rec = decode(&bytes).expect("decodes");
        assert_eq!(rec.header.seq, 42);
        assert_eq!(rec.header.tgid, 1234);
        let Event::Exec(e) = rec.event else { panic!("not exec") };
        assert_eq!(e.exe.bytes.as_deref(), Some(&b"/usr/bin/ls"[..]));
        assert_eq!(e.argv(), vec![&b"ls"[..], b"-la", b"/tmp"]);
        let cases: [(&[u8], &[&[u8]]); 8] = [
            (b"", &[]),
            (b"\0", &[]),
            (b"a", &[b"a"]),
            (b"a\0", &[b"a"]),
            (b"\0\0", &[b"", b""]),
            (b"a\0\0b\0", &[b"a", b"", b"b"]),
            (b"a\0b\0\0", &[b"a", b"b", b""]),
            (b"cut\0par", &[b"cut", b"par"]),
        ];
        for (area, want) in cases {
            assert_eq!(args(area).collect::<Vec<_>>(), want, "{area:?}");
        }
        assert_eq!(e.cwd.bytes.as_deref(), Some(&b"/home/u"[..]));
        assert_eq!(e.comm, b"ls");
        assert!(e.tty);
    }

    #[test]
    fn ringbuf_padding_after_size_is_ignored() {
        let mut bytes = exec_record(b"/a", b"a", b"a\0", b"/");
        bytes.extend_from_slice(&[0xff; 5]);
        assert!(decode(&bytes).is_ok());
    }

    #[test]
    fn rejects_malformed_input_without_panicking() {
        let good = exec_record(b"/usr/bin/ls", b"ls", b"ls\0", b"/");
        // Every prefix of a good record is rejected, never a panic.
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        // A field pointing outside the record.
        let mut bad = good.clone();
        let off = std::mem::offset_of!(RawExec, cwd) + std::mem::offset_of!(RawField, len);
        bad[off..off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&bad), Err(DecodeError::FieldOutOfBounds { field: "cwd", .. })));
        // A field pointing into the fixed part.
        let mut bad = good.clone();
        let off = std::mem::offset_of!(RawExec, exe);
        bad[off..off + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(decode(&bad), Err(DecodeError::FieldOutOfBounds { field: "exe", .. })));
        // Wrong ABI version and unknown types.
        let mut bad = good.clone();
        bad[2] = 99;
        assert_eq!(decode(&bad), Err(DecodeError::AbiVersion(99)));
        let mut bad = good;
        bad[0] = 200;
        assert_eq!(decode(&bad), Err(DecodeError::UnknownType(200)));
    }

    #[test]
    fn fuzz_like_random_bytes_never_panic() {
        // Deterministic xorshift so failures reproduce.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let good = exec_record(b"/usr/bin/ls", b"ls", b"ls\0-l\0", b"/");
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % b.len();
                b[i] = (x >> 32) as u8;
            }
            let _ = decode(&b);
        }
    }

    #[test]
    fn unavailable_and_truncated_flags() {
        let mut bytes = exec_record(b"/usr/bin/ls", b"ls", b"ls\0-la\0", b"/");
        let fixed = std::mem::size_of::<RawExec>();
        let mut raw: RawExec = read_pod(&bytes).expect("raw");
        raw.args.flags |= field_flags::TRUNCATED | field_flags::SIZE_KNOWN;
        raw.args.orig_len = 99_999;
        raw.args.reason = 7;
        raw.cwd.flags = field_flags::UNAVAILABLE;
        raw.cwd.reason = 1;
        bytes[..fixed].copy_from_slice(raw.as_bytes());
        let Event::Exec(e) = decode(&bytes).expect("decodes").event else { panic!() };
        assert!(e.args.truncated);
        assert_eq!(e.args.original_size, Some(99_999));
        assert_eq!(e.args.reason, Some(Reason::SizeLimit));
        assert!(e.cwd.is_unavailable());
        assert_eq!(e.cwd.reason, Some(Reason::ReadFault));
    }

    /// A raw file record as the probes lay it out.
    pub(crate) fn file_record(event: EventType, ret: i64, path: &[u8], path2: Option<&[u8]>) -> Vec<u8> {
        let mut raw = RawFile {
            hdr: RawHdr { cpu: 0, seq: 9, ktime_ns: 6_000_000_000, tgid: 77, pid: 78, ..RawHdr::default() },
            ret,
            syscall: 2,
            hook: HookKind::SyscallTp as u32,
            flags: 0o1101,
            mode: 0o644,
            uid: u32::MAX,
            gid: u32::MAX,
            ino: if ret >= 0 { 4242 } else { 0 },
            dev: if ret >= 0 { 0x800001 } else { 0 },
            path_source: if ret >= 0 { abi::path_source::OBJECT } else { abi::path_source::ARG },
            ..RawFile::default()
        };
        raw.comm[..4].copy_from_slice(b"test");
        abi::encode_file(raw, event, path, path2)
    }

    #[test]
    fn decodes_file_records() {
        let bytes = file_record(EventType::FileOpen, 3, b"/etc/passwd", None);
        let rec = decode(&bytes).expect("decodes");
        assert_eq!(rec.header.lane, abi::LANE_BULK);
        let Event::File(f) = rec.event else { panic!("not file") };
        assert_eq!(f.path.bytes.as_deref(), Some(&b"/etc/passwd"[..]));
        assert_eq!(f.path_source, PathSource::KernelObject);
        assert_eq!(f.sys.errno(), None);
        assert_eq!((f.ino, f.uid, f.path2.clone()), (Some(4242), None, None));
        let bytes = file_record(EventType::FileRename, -2, b"/a", Some(b"/b"));
        let Event::File(f) = decode(&bytes).expect("decodes").event else { panic!("not file") };
        assert_eq!(f.sys.errno(), Some(2));
        assert_eq!(f.path2.and_then(|p| p.bytes).as_deref(), Some(&b"/b"[..]));
        // Every prefix is rejected, never a panic.
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn decodes_memfd_records() {
        let raw = RawMemfd {
            hdr: RawHdr { tgid: 5, pid: 5, ..RawHdr::default() },
            ret: 4,
            syscall: 80,
            hook: HookKind::SyscallTp as u32,
            flags: 1,
            name_source: abi::path_source::OBJECT,
            ino: 99,
            ..RawMemfd::default()
        };
        let bytes = abi::encode_var(raw, EventType::FilelessMemfdCreate, |r| &mut r.hdr, &[(|r| &mut r.name, b"memfd:payload")]);
        let rec = decode(&bytes).expect("decodes");
        assert_eq!(rec.header.lane, abi::LANE_CRITICAL);
        let Event::Memfd(m) = rec.event else { panic!("not memfd") };
        assert_eq!(m.given_name(), Some(&b"payload"[..]));
        assert_eq!((m.flags, m.ino), (1, Some(99)));
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn exit_status_decoding() {
        let exit = |status| ExitEvent { ppid: 1, status, start_ns: 0, group_dead: true, comm: vec![] };
        assert_eq!(exit(3 << 8).exit_code(), Some(3));
        assert_eq!(exit(3 << 8).signal(), None);
        assert_eq!(exit(9).exit_code(), None);
        assert_eq!(exit(9).signal(), Some(9));
        assert!(exit(11 | 0x80).core_dumped());
    }
}
