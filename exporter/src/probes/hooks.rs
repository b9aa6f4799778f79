//! The hook table (which programs serve which event) and `vigil check`.
//!
//! Every program of the object has an entry here (the raw `sys_exit`
//! program two: it can serve two events), with the event family
//! it belongs to (switched on and off in `[probes]`) and its role: an
//! `Emit` program writes the event's records, a `Stash` program only keeps
//! a syscall's arguments for the matching exit program. Where several
//! variants serve one event (a BPF-LSM hook and a syscall tracepoint), the
//! preferred one comes first with `Variant::Preferred`; start-up tries it
//! and falls back to `Variant::Fallback` when the kernel refuses it
//! (`vigil check` and the records' `vigil.hook` say which one runs).
//! Whether BPF-LSM is active is reported too.

use super::{load_and_attach, ProbeSettings};
use crate::abi::{EventType, HookKind};
use std::fmt::Write as _;

/// Event families, each switched on or off in `[probes]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// exec, fork, exit (always on).
    Process,
    /// file opens, unlink, rename, chmod, chown, truncate (`probes.file`).
    File,
    /// memfd_create (`probes.fileless`).
    Fileless,
    /// setuid family, capset, unshare, setns (`probes.privilege`).
    Privilege,
    /// bpf(), module loading, ptrace, mount, umount (`probes.kernel`).
    Kernel,
    /// connect, accept, bind, listen (`probes.network`).
    Network,
}

impl Family {
    /// Name used in logs and `vigil check`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Process => "process",
            Family::File => "file",
            Family::Fileless => "fileless",
            Family::Privilege => "privilege",
            Family::Kernel => "kernel",
            Family::Network => "network",
        }
    }
}

/// What a program does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Writes the event's records.
    Emit,
    /// Keeps a syscall's arguments for the exit program (never emits).
    Stash,
}

/// Which of an event's variants a program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The only variant.
    Only,
    /// Used when the kernel allows it (BPF-LSM, fentry).
    Preferred,
    /// Used when the preferred variant is refused.
    Fallback,
}

/// One program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// The event it produces (or stashes for).
    pub event: EventType,
    /// Its family.
    pub family: Family,
    /// BPF program name in the object.
    pub program: &'static str,
    /// Section / attach point.
    pub attach_point: &'static str,
    /// Kind of hook.
    pub kind: HookKind,
    /// Emit or stash.
    pub role: Role,
    /// Variant.
    pub variant: Variant,
    /// Whether start-up fails when it cannot be attached (optional ones,
    /// e.g. syscalls an architecture does not have, are skipped and
    /// reported).
    pub required: bool,
    /// Attach only when this other program failed to attach.
    pub instead_of: Option<&'static str>,
}

const fn hook(event: EventType, family: Family, program: &'static str, attach_point: &'static str, kind: HookKind, role: Role) -> Hook {
    Hook { event, family, program, attach_point, kind, role, variant: Variant::Only, required: true, instead_of: None }
}

const fn optional(h: Hook) -> Hook {
    Hook { required: false, ..h }
}

/// The variant used where the kernel allows it.
const fn preferred(h: Hook) -> Hook {
    Hook { variant: Variant::Preferred, ..h }
}

/// The variant used when the preferred one is refused.
const fn fallback(h: Hook) -> Hook {
    Hook { variant: Variant::Fallback, ..h }
}

/// Attached only when `program` could not be (a stand-in).
const fn instead_of(h: Hook, program: &'static str) -> Hook {
    Hook { instead_of: Some(program), ..h }
}

use EventType as E;
use Family as F;
use HookKind as K;
use Role as R;

/// The hook table.
pub const HOOKS: &[Hook] = &[
    hook(E::Exec, F::Process, "handle_exec", "tp_btf/sched_process_exec", K::TpBtf, R::Emit),
    hook(E::Fork, F::Process, "handle_fork", "tp_btf/sched_process_fork", K::TpBtf, R::Emit),
    hook(E::Exit, F::Process, "handle_exit", "tp_btf/sched_process_exit", K::TpBtf, R::Emit),
    hook(E::FileOpen, F::File, "file_openat_exit", "tracepoint/syscalls/sys_exit_openat", K::SyscallTp, R::Emit),
    hook(E::FileOpen, F::File, "file_openat2_exit", "tracepoint/syscalls/sys_exit_openat2", K::SyscallTp, R::Emit),
    // unlink: the BPF-LSM hook where the kernel allows it (the dentry the
    // kernel resolved), else the unlink/unlinkat tracepoints.
    preferred(hook(E::FileUnlink, F::File, "file_unlink_lsm", "lsm/path_unlink", K::Lsm, R::Emit)),
    // Opens have no enter programs (arguments are read at exit from the
    // saved user registers). open(2) and creat(2) exist on x86-64 only.
    optional(hook(E::FileOpen, F::File, "file_open_exit", "tracepoint/syscalls/sys_exit_open", K::SyscallTp, R::Emit)),
    optional(hook(E::FileOpen, F::File, "file_creat_exit", "tracepoint/syscalls/sys_exit_creat", K::SyscallTp, R::Emit)),
    // Opens submitted through io_uring run no open syscall: reported at
    // their completion; the submission program keeps the name for failures
    // and fixed-file opens, and reports the opens whose success posts no
    // completion (IOSQE_CQE_SKIP_SUCCESS). Optional: a kernel without
    // io_uring has neither tracepoint (the rest of the family still loads).
    optional(hook(E::FileOpen, F::File, "file_io_uring_submit", "tp_btf/io_uring_submit_req", K::IoUringSubmit, R::Emit)),
    optional(hook(E::FileOpen, F::File, "file_io_uring_complete", "tp_btf/io_uring_complete", K::IoUring, R::Emit)),
    // Completions posted while the completion queue is full skip
    // io_uring_complete: found among the requests the submission kept.
    optional(hook(E::FileOpen, F::File, "file_io_uring_overflow", "tp_btf/io_uring_cqe_overflow", K::IoUringOverflow, R::Emit)),
    // unlink, rename, chmod, chown, lchown (by path without a dirfd) exist on
    // x86-64 only; their *at variants everywhere.
    fallback(optional(hook(E::FileUnlink, F::File, "file_unlink_enter", "tracepoint/syscalls/sys_enter_unlink", K::SyscallTp, R::Stash))),
    fallback(optional(hook(E::FileUnlink, F::File, "file_unlink_exit", "tracepoint/syscalls/sys_exit_unlink", K::SyscallTp, R::Emit))),
    // unlinkat stays with lsm/path_unlink: its AT_REMOVEDIR calls go
    // through security_path_rmdir, which that hook does not see (the
    // program then reports only those, rodata unlink_lsm).
    hook(E::FileUnlink, F::File, "file_unlinkat_enter", "tracepoint/syscalls/sys_enter_unlinkat", K::SyscallTp, R::Stash),
    hook(E::FileUnlink, F::File, "file_unlinkat_exit", "tracepoint/syscalls/sys_exit_unlinkat", K::SyscallTp, R::Emit),
    optional(hook(E::FileUnlink, F::File, "file_rmdir_enter", "tracepoint/syscalls/sys_enter_rmdir", K::SyscallTp, R::Stash)),
    optional(hook(E::FileUnlink, F::File, "file_rmdir_exit", "tracepoint/syscalls/sys_exit_rmdir", K::SyscallTp, R::Emit)),
    optional(hook(E::FileRename, F::File, "file_rename_enter", "tracepoint/syscalls/sys_enter_rename", K::SyscallTp, R::Stash)),
    optional(hook(E::FileRename, F::File, "file_rename_exit", "tracepoint/syscalls/sys_exit_rename", K::SyscallTp, R::Emit)),
    hook(E::FileRename, F::File, "file_renameat_enter", "tracepoint/syscalls/sys_enter_renameat", K::SyscallTp, R::Stash),
    hook(E::FileRename, F::File, "file_renameat_exit", "tracepoint/syscalls/sys_exit_renameat", K::SyscallTp, R::Emit),
    hook(E::FileRename, F::File, "file_renameat2_enter", "tracepoint/syscalls/sys_enter_renameat2", K::SyscallTp, R::Stash),
    hook(E::FileRename, F::File, "file_renameat2_exit", "tracepoint/syscalls/sys_exit_renameat2", K::SyscallTp, R::Emit),
    optional(hook(E::FileChmod, F::File, "file_chmod_enter", "tracepoint/syscalls/sys_enter_chmod", K::SyscallTp, R::Stash)),
    optional(hook(E::FileChmod, F::File, "file_chmod_exit", "tracepoint/syscalls/sys_exit_chmod", K::SyscallTp, R::Emit)),
    hook(E::FileChmod, F::File, "file_fchmod_enter", "tracepoint/syscalls/sys_enter_fchmod", K::SyscallTp, R::Stash),
    hook(E::FileChmod, F::File, "file_fchmod_exit", "tracepoint/syscalls/sys_exit_fchmod", K::SyscallTp, R::Emit),
    hook(E::FileChmod, F::File, "file_fchmodat_enter", "tracepoint/syscalls/sys_enter_fchmodat", K::SyscallTp, R::Stash),
    hook(E::FileChmod, F::File, "file_fchmodat_exit", "tracepoint/syscalls/sys_exit_fchmodat", K::SyscallTp, R::Emit),
    // Linux 6.6+.
    optional(hook(E::FileChmod, F::File, "file_fchmodat2_enter", "tracepoint/syscalls/sys_enter_fchmodat2", K::SyscallTp, R::Stash)),
    optional(hook(E::FileChmod, F::File, "file_fchmodat2_exit", "tracepoint/syscalls/sys_exit_fchmodat2", K::SyscallTp, R::Emit)),
    optional(hook(E::FileChown, F::File, "file_chown_enter", "tracepoint/syscalls/sys_enter_chown", K::SyscallTp, R::Stash)),
    optional(hook(E::FileChown, F::File, "file_chown_exit", "tracepoint/syscalls/sys_exit_chown", K::SyscallTp, R::Emit)),
    hook(E::FileChown, F::File, "file_fchown_enter", "tracepoint/syscalls/sys_enter_fchown", K::SyscallTp, R::Stash),
    hook(E::FileChown, F::File, "file_fchown_exit", "tracepoint/syscalls/sys_exit_fchown", K::SyscallTp, R::Emit),
    optional(hook(E::FileChown, F::File, "file_lchown_enter", "tracepoint/syscalls/sys_enter_lchown", K::SyscallTp, R::Stash)),
    optional(hook(E::FileChown, F::File, "file_lchown_exit", "tracepoint/syscalls/sys_exit_lchown", K::SyscallTp, R::Emit)),
    hook(E::FileChown, F::File, "file_fchownat_enter", "tracepoint/syscalls/sys_enter_fchownat", K::SyscallTp, R::Stash),
    hook(E::FileChown, F::File, "file_fchownat_exit", "tracepoint/syscalls/sys_exit_fchownat", K::SyscallTp, R::Emit),
    hook(E::FileTruncate, F::File, "file_truncate_enter", "tracepoint/syscalls/sys_enter_truncate", K::SyscallTp, R::Stash),
    hook(E::FileTruncate, F::File, "file_truncate_exit", "tracepoint/syscalls/sys_exit_truncate", K::SyscallTp, R::Emit),
    hook(E::FileTruncate, F::File, "file_ftruncate_enter", "tracepoint/syscalls/sys_enter_ftruncate", K::SyscallTp, R::Stash),
    hook(E::FileTruncate, F::File, "file_ftruncate_exit", "tracepoint/syscalls/sys_exit_ftruncate", K::SyscallTp, R::Emit),
    hook(
        E::FilelessMemfdCreate,
        F::Fileless,
        "fileless_memfd_create_enter",
        "tracepoint/syscalls/sys_enter_memfd_create",
        K::SyscallTp,
        R::Stash,
    ),
    hook(
        E::FilelessMemfdCreate,
        F::Fileless,
        "fileless_memfd_create_exit",
        "tracepoint/syscalls/sys_exit_memfd_create",
        K::SyscallTp,
        R::Emit,
    ),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setuid_enter", "tracepoint/syscalls/sys_enter_setuid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setuid_exit", "tracepoint/syscalls/sys_exit_setuid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setgid_enter", "tracepoint/syscalls/sys_enter_setgid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setgid_exit", "tracepoint/syscalls/sys_exit_setgid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setreuid_enter", "tracepoint/syscalls/sys_enter_setreuid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setreuid_exit", "tracepoint/syscalls/sys_exit_setreuid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setregid_enter", "tracepoint/syscalls/sys_enter_setregid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setregid_exit", "tracepoint/syscalls/sys_exit_setregid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setresuid_enter", "tracepoint/syscalls/sys_enter_setresuid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setresuid_exit", "tracepoint/syscalls/sys_exit_setresuid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setresgid_enter", "tracepoint/syscalls/sys_enter_setresgid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setresgid_exit", "tracepoint/syscalls/sys_exit_setresgid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setfsuid_enter", "tracepoint/syscalls/sys_enter_setfsuid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setfsuid_exit", "tracepoint/syscalls/sys_exit_setfsuid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setfsgid_enter", "tracepoint/syscalls/sys_enter_setfsgid", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_setfsgid_exit", "tracepoint/syscalls/sys_exit_setfsgid", K::SyscallTp, R::Emit),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_capset_enter", "tracepoint/syscalls/sys_enter_capset", K::SyscallTp, R::Stash),
    hook(E::PrivilegeCredChange, F::Privilege, "priv_capset_exit", "tracepoint/syscalls/sys_exit_capset", K::SyscallTp, R::Emit),
    hook(E::PrivilegeNamespace, F::Privilege, "priv_unshare_enter", "tracepoint/syscalls/sys_enter_unshare", K::SyscallTp, R::Stash),
    hook(E::PrivilegeNamespace, F::Privilege, "priv_unshare_exit", "tracepoint/syscalls/sys_exit_unshare", K::SyscallTp, R::Emit),
    hook(E::PrivilegeNamespace, F::Privilege, "priv_setns_enter", "tracepoint/syscalls/sys_enter_setns", K::SyscallTp, R::Stash),
    hook(E::PrivilegeNamespace, F::Privilege, "priv_setns_exit", "tracepoint/syscalls/sys_exit_setns", K::SyscallTp, R::Emit),
    hook(E::KernelBpf, F::Kernel, "kernel_bpf_enter", "tracepoint/syscalls/sys_enter_bpf", K::SyscallTp, R::Stash),
    hook(E::KernelBpf, F::Kernel, "kernel_bpf_exit", "tracepoint/syscalls/sys_exit_bpf", K::SyscallTp, R::Emit),
    hook(E::KernelPtrace, F::Kernel, "kernel_ptrace_enter", "tracepoint/syscalls/sys_enter_ptrace", K::SyscallTp, R::Stash),
    hook(E::KernelPtrace, F::Kernel, "kernel_ptrace_exit", "tracepoint/syscalls/sys_exit_ptrace", K::SyscallTp, R::Emit),
    hook(E::KernelMount, F::Kernel, "kernel_mount_enter", "tracepoint/syscalls/sys_enter_mount", K::SyscallTp, R::Stash),
    hook(E::KernelMount, F::Kernel, "kernel_mount_exit", "tracepoint/syscalls/sys_exit_mount", K::SyscallTp, R::Emit),
    hook(E::KernelUmount, F::Kernel, "kernel_umount_enter", "tracepoint/syscalls/sys_enter_umount", K::SyscallTp, R::Stash),
    hook(E::KernelUmount, F::Kernel, "kernel_umount_exit", "tracepoint/syscalls/sys_exit_umount", K::SyscallTp, R::Emit),
    optional(hook(
        E::KernelModule,
        F::Kernel,
        "kernel_init_module_enter",
        "tracepoint/syscalls/sys_enter_init_module",
        K::SyscallTp,
        R::Stash,
    )),
    optional(hook(
        E::KernelModule,
        F::Kernel,
        "kernel_init_module_exit",
        "tracepoint/syscalls/sys_exit_init_module",
        K::SyscallTp,
        R::Emit,
    )),
    optional(hook(
        E::KernelModule,
        F::Kernel,
        "kernel_finit_module_enter",
        "tracepoint/syscalls/sys_enter_finit_module",
        K::SyscallTp,
        R::Stash,
    )),
    optional(hook(
        E::KernelModule,
        F::Kernel,
        "kernel_finit_module_exit",
        "tracepoint/syscalls/sys_exit_finit_module",
        K::SyscallTp,
        R::Emit,
    )),
    // Without module support there are no module syscall tracepoints: the
    // raw sys_exit tracepoint stands in, only then (it runs on every syscall).
    instead_of(
        hook(E::KernelModule, F::Kernel, "kernel_module_raw_exit", "tp_btf/sys_exit", K::RawSyscall, R::Emit),
        "kernel_finit_module_exit",
    ),
    // When that stand-in runs anyway and the file family is on, it serves
    // the opens too and the open tracepoint programs are not loaded (see
    // `raw_opens`): the same program, a second entry.
    instead_of(hook(E::FileOpen, F::File, RAW_EXIT, "tp_btf/sys_exit", K::RawSyscall, R::Emit), "file_openat_exit"),
    // Network: exit programs only (arguments from the saved user registers).
    hook(E::NetworkConnect, F::Network, "net_connect_exit", "tracepoint/syscalls/sys_exit_connect", K::SyscallTp, R::Emit),
    hook(E::NetworkAccept, F::Network, "net_accept_exit", "tracepoint/syscalls/sys_exit_accept", K::SyscallTp, R::Emit),
    hook(E::NetworkAccept, F::Network, "net_accept4_exit", "tracepoint/syscalls/sys_exit_accept4", K::SyscallTp, R::Emit),
    hook(E::NetworkBind, F::Network, "net_bind_exit", "tracepoint/syscalls/sys_exit_bind", K::SyscallTp, R::Emit),
    hook(E::NetworkListen, F::Network, "net_listen_exit", "tracepoint/syscalls/sys_exit_listen", K::SyscallTp, R::Emit),
];

/// The io_uring BTF tracepoints the file family uses.
const IO_URING_EVENTS: [&str; 3] = ["io_uring_submit_req", "io_uring_complete", "io_uring_cqe_overflow"];

/// Whether the kernel's BTF has each of [`IO_URING_EVENTS`] (its
/// `btf_trace_<event>` type): a `tp_btf` program whose tracepoint is missing
/// fails the whole object's load, so it must not be loaded at all. Read
/// once; `None` without kernel BTF.
fn io_uring_tracepoints() -> Option<[bool; IO_URING_EVENTS.len()]> {
    static FOUND: std::sync::OnceLock<Option<[bool; IO_URING_EVENTS.len()]>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let names = IO_URING_EVENTS.map(|e| format!("btf_trace_{e}\0"));
        kernel_btf_has(names.each_ref().map(|n| n.as_bytes()))
    })
}

/// Which of `names` (each NUL-terminated) are among the kernel's BTF
/// strings, from one read of /sys/kernel/btf/vmlinux; `None` without it.
fn kernel_btf_has<const N: usize>(names: [&[u8]; N]) -> Option<[bool; N]> {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    Some(names.map(|name| btf.windows(name.len()).any(|w| w == name)))
}

/// Whether the tracepoint of `hook` exists in this kernel: a syscall
/// tracepoint's event directory in tracefs, an io_uring BTF tracepoint's
/// type in the kernel's BTF; `None` for other hooks, or when there is
/// nothing to tell from (libbpf then tries and reports).
pub fn tracepoint_present(hook: &Hook) -> Option<bool> {
    if let Some(i) = IO_URING_EVENTS.iter().position(|e| hook.attach_point.strip_prefix("tp_btf/") == Some(e)) {
        return io_uring_tracepoints().map(|found| found[i]);
    }
    if hook.kind != HookKind::SyscallTp {
        return None;
    }
    let event = hook.attach_point.strip_prefix("tracepoint/")?;
    let root =
        ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"].iter().map(std::path::Path::new).find(|root| root.is_dir())?;
    match std::fs::metadata(root.join(event)) {
        Ok(m) => Some(m.is_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None, // unreadable (not root): cannot tell
    }
}

/// The raw `sys_exit` program: the module stand-in, and the opens' hook
/// when it runs anyway.
pub const RAW_EXIT: &str = "kernel_module_raw_exit";

/// The programs the raw `sys_exit` program replaces when it serves the
/// opens.
pub const OPEN_PROGRAMS: [&str; 4] = ["file_openat_exit", "file_openat2_exit", "file_open_exit", "file_creat_exit"];

/// Whether the opens ride on the raw `sys_exit` program: it runs on every
/// syscall anyway (the kernel and file families are on, and this kernel has
/// no module syscall tracepoints, i.e. no module support), so serving the
/// opens there costs a syscall-number test per syscall and saves the
/// perf-event tracepoint layer on every open (its buffer, recursion guard
/// and `trace_call_bpf`). Decided before the load: the program reads it
/// from its read-only data.
pub fn raw_opens(settings: &ProbeSettings) -> bool {
    family_enabled(settings, Family::Kernel)
        && family_enabled(settings, Family::File)
        && HOOKS
            .iter()
            .filter(|h| h.event == EventType::KernelModule && h.kind == HookKind::SyscallTp)
            .all(|h| tracepoint_present(h) == Some(false))
}

/// Whether `family` is switched on in `settings`.
pub fn family_enabled(settings: &ProbeSettings, family: Family) -> bool {
    match family {
        Family::Process => true,
        Family::File => settings.probes.file,
        Family::Fileless => settings.probes.fileless,
        Family::Privilege => settings.probes.privilege,
        Family::Kernel => settings.probes.kernel,
        Family::Network => settings.probes.network,
    }
}

/// One line of the `vigil check` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// What was checked.
    pub name: String,
    /// Whether it is fine.
    pub ok: bool,
    /// Whether vigil can run without it.
    pub required: bool,
    /// Details.
    pub detail: String,
}

/// Effective capabilities of this process (from /proc/self/status).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Whether the kernel has the `bpf_rdonly_cast` kfunc (Linux 6.2+), which
/// the probes use for direct loads (kernel-probes/include/kread.bpf.h), and
/// whether it also casts to untyped pointers (`BPF_FEAT_RDONLY_CAST_TO_VOID`,
/// Linux 6.17+), used to read names, descriptor table entries and the
/// thread name with plain loads: both names are in the kernel's BTF strings.
fn kernel_rdonly_casts() -> (bool, bool) {
    let [direct, untyped] = kernel_btf_has([b"bpf_rdonly_cast\0", b"BPF_FEAT_RDONLY_CAST_TO_VOID\0"]).unwrap_or_default();
    (direct, untyped)
}

/// Run every check. Loading is tried for real (and undone).
pub fn check(settings: &ProbeSettings) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let mut item =
        |name: &str, ok: bool, required: bool, detail: String| items.push(CheckItem { name: name.to_owned(), ok, required, detail });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default();
    item("kernel", !kernel.is_empty(), false, format!("Linux {kernel}"));
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    item(
        "kernel BTF",
        btf,
        true,
        if btf {
            "/sys/kernel/btf/vmlinux present (CO-RE, tp_btf)".into()
        } else {
            "missing: a kernel built with CONFIG_DEBUG_INFO_BTF=y is required".into()
        },
    );
    let caps = effective_caps().unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    let caps_ok = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    item("capabilities", caps_ok, true, format!("CapEff={caps:#x}: needs CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN); CAP_SYS_RESOURCE is not needed (BPF memory is charged to the memory cgroup on kernels >= 5.11)"));
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let bpf_lsm = lsm.split(',').any(|l| l.trim() == "bpf");
    item(
        "BPF LSM",
        bpf_lsm,
        false,
        format!(
            "active LSMs: {}; BPF-LSM hooks are preferred where allowed (probes.prefer_lsm), with a syscall-tracepoint fallback",
            if lsm.trim().is_empty() { "unreadable" } else { lsm.trim() }
        ),
    );
    let (direct, untyped) = kernel_rdonly_casts();
    item(
        "direct kernel loads",
        direct && settings.probes.direct_loads,
        false,
        match (direct, settings.probes.direct_loads) {
            (true, true) if untyped => {
                "bpf_rdonly_cast present: path walks and descriptor lookups use plain loads, names and thread names too (untyped casts)"
                    .into()
            }
            (true, true) => "bpf_rdonly_cast present: path walks and descriptor lookups use plain loads; names are copied with \
                             bpf_probe_read_kernel (no untyped casts before Linux 6.17)"
                .into(),
            (true, false) => "bpf_rdonly_cast present but probes.direct_loads = false: bpf_probe_read_kernel everywhere".into(),
            (false, _) => {
                "bpf_rdonly_cast missing (Linux < 6.2): bpf_probe_read_kernel everywhere (about twice the cost per path walk)".into()
            }
        },
    );
    match load_and_attach(settings) {
        Ok((loaded, links, active)) => {
            drop(links);
            item("load programs", true, true, "verifier accepted every enabled program; ring buffer and maps created".into());
            for note in &loaded.notes {
                item("hook fallback", true, false, note.clone());
            }
            item("rate limiter buckets", true, false, loaded.rate_buckets.describe().into());
            for h in HOOKS.iter().filter(|h| h.role == Role::Emit) {
                let name = format!("hook {} ({})", h.event.event_name(), h.family.as_str());
                let used = active.iter().any(|a| a == &format!("{}={}", h.event.event_name(), h.attach_point));
                if !family_enabled(settings, h.family) {
                    item(&name, true, false, format!("{}: family switched off in [probes]", h.attach_point));
                } else if used {
                    item(&name, true, false, format!("{} ({}, {})", h.attach_point, h.program, h.kind.as_str()));
                } else if h.instead_of.is_some() {
                    continue; // a stand-in that was not needed
                } else if tracepoint_present(h) == Some(false) {
                    item(&name, !h.required, false, format!("{}: absent on this kernel (no such tracepoint)", h.attach_point));
                } else if let others @ [_, ..] = &serving_instead(h, &active)[..] {
                    item(&name, true, false, format!("{}: not in use, the event comes from {}", h.attach_point, others.join(" and ")));
                } else {
                    item(
                        &name,
                        !h.required,
                        false,
                        format!("{}: not in use (another variant serves the event, or absent on this kernel)", h.attach_point),
                    );
                }
            }
        }
        Err(e) => item("load programs", false, true, e.to_string()),
    }
    items
}

/// The active hooks that serve `h`'s event on the same path instead of it:
/// the io_uring programs report operations submitted through io_uring, so
/// they never stand in for a syscall's hook (nor the other way round).
fn serving_instead<'a>(h: &Hook, active: &'a [String]) -> Vec<&'a str> {
    let prefix = format!("{}=", h.event.event_name());
    active
        .iter()
        .filter_map(|a| a.strip_prefix(&prefix))
        .filter(|point| {
            let other = HOOKS.iter().find(|o| o.event == h.event && o.attach_point == *point);
            other.is_none_or(|o| o.kind.is_io_uring() == h.kind.is_io_uring())
        })
        .collect()
}

/// Render the report; the bool says whether vigil can run.
pub fn render(items: &[CheckItem]) -> (String, bool) {
    let mut out = String::new();
    let mut can_run = true;
    for i in items {
        let mark = match (i.ok, i.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "no  ",
        };
        can_run &= i.ok || !i.required;
        let _ = writeln!(out, "[{mark}] {:<28} {}", i.name, i.detail);
    }
    let _ = writeln!(out, "{}", if can_run { "vigil can run on this host" } else { "vigil cannot run on this host" });
    (out, can_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoint_presence_is_read_from_tracefs() {
        let openat = HOOKS.iter().find(|h| h.program == "file_openat_exit").unwrap();
        let mut missing = *openat;
        missing.attach_point = "tracepoint/syscalls/sys_exit_no_such_syscall";
        let raw = HOOKS.iter().find(|h| h.kind == HookKind::RawSyscall).unwrap();
        assert_eq!(tracepoint_present(raw), None, "not a syscall tracepoint");
        // io_uring's BTF tracepoints: from the kernel's BTF.
        let uring: Vec<_> = HOOKS.iter().filter(|h| h.attach_point.starts_with("tp_btf/io_uring_")).collect();
        assert_eq!(uring.len(), IO_URING_EVENTS.len());
        let btf = std::fs::read("/sys/kernel/btf/vmlinux").ok();
        for h in uring {
            let name = format!("btf_trace_{}\0", h.attach_point.trim_start_matches("tp_btf/"));
            let expected = btf.as_ref().map(|b| b.windows(name.len()).any(|w| w == name.as_bytes()));
            assert_eq!(tracepoint_present(h), expected, "{h:?}");
        }
        let events = std::path::Path::new("/sys/kernel/tracing/events/syscalls");
        if std::fs::read_dir(events).is_ok() {
            assert_eq!(tracepoint_present(openat), Some(true));
            assert_eq!(tracepoint_present(&missing), Some(false));
        } else {
            eprintln!("tracefs not readable here: only the unknown answer is checked");
            assert_ne!(tracepoint_present(&missing), Some(true));
        }
    }

    #[test]
    fn every_event_type_has_a_required_emitting_hook() {
        for t in EventType::ALL {
            assert!(HOOKS.iter().any(|h| h.event == t && h.role == Role::Emit && (h.required || h.instead_of.is_none())), "{t:?}");
        }
        // One entry per program, except the raw sys_exit program: one per
        // event it serves (module loads, opens), each once.
        let mut names: Vec<_> = HOOKS.iter().map(|h| (h.program, h.event as u32)).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HOOKS.len(), "a program is listed twice for one event");
        let raw: Vec<_> = HOOKS.iter().filter(|h| h.program == RAW_EXIT).map(|h| h.event).collect();
        assert_eq!(raw, [EventType::KernelModule, EventType::FileOpen]);
        for p in OPEN_PROGRAMS {
            assert!(HOOKS.iter().any(|h| h.program == p && h.event == EventType::FileOpen), "{p}");
        }
        let mut others: Vec<_> = HOOKS.iter().map(|h| h.program).filter(|p| *p != RAW_EXIT).collect();
        let n = others.len();
        others.sort_unstable();
        others.dedup();
        assert_eq!(others.len(), n, "a program other than the raw sys_exit one is listed twice");
        for h in HOOKS {
            assert!(h.attach_point.starts_with(h.kind.as_str().split('/').next().unwrap_or("")), "{h:?}");
            // Every preferred variant has a fallback for the same event.
            if h.variant == Variant::Preferred {
                assert!(HOOKS.iter().any(|f| f.event == h.event && f.variant == Variant::Fallback && f.role == Role::Emit), "{h:?}");
            }
        }
    }

    #[test]
    fn io_uring_hooks_are_not_named_as_a_syscall_hooks_stand_in() {
        let point = |p: &str| HOOKS.iter().find(|h| h.attach_point == p && h.event == EventType::FileOpen).unwrap();
        let active: Vec<String> =
            ["tp_btf/io_uring_submit_req", "tp_btf/io_uring_complete", "tp_btf/sys_exit", "tp_btf/io_uring_cqe_overflow"]
                .iter()
                .map(|p| format!("{}={p}", EventType::FileOpen.event_name()))
                .chain([format!("{}=tracepoint/syscalls/sys_exit_unlinkat", EventType::FileUnlink.event_name())])
                .collect();
        let openat = point("tracepoint/syscalls/sys_exit_openat");
        assert_eq!(serving_instead(openat, &active), ["tp_btf/sys_exit"]);
        let complete = point("tp_btf/io_uring_complete");
        assert_eq!(
            serving_instead(complete, &active),
            ["tp_btf/io_uring_submit_req", "tp_btf/io_uring_complete", "tp_btf/io_uring_cqe_overflow"]
        );
        assert!(serving_instead(openat, &active[..2]).is_empty(), "only io_uring hooks active: nothing stands in for the syscall");
    }

    #[test]
    fn render_fails_only_on_required_items() {
        let mk = |ok, required| CheckItem { name: "x".into(), ok, required, detail: String::new() };
        assert!(render(&[mk(true, true), mk(false, false)]).1);
        assert!(!render(&[mk(true, true), mk(false, true)]).1);
    }
}
