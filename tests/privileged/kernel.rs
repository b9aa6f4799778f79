//! Kernel events: bpf(), module loading, ptrace, mount and umount.

use super::{become_nobody, in_child, temp_dir, WAIT};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use vigil::abi::{EventType, HookKind};
use vigil::decode::{Event, PathSource};
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr};
use vigil_tests::capture::{Capture, Captured};

fn gettid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() as u32 }
}

fn of_thread(c: &Captured, event: EventType, tid: u32) -> bool {
    c.record.header.event == event && c.record.header.pid == tid
}

/// bpf(BPF_PROG_LOAD) of a socket filter; returns the syscall's result.
fn prog_load(name: &str, insns: &[[u8; 8]]) -> i64 {
    let license = CString::new("GPL").unwrap();
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..48 + name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: a PROG_LOAD attribute whose pointers outlive the call.
    unsafe { libc::syscall(libc::SYS_bpf, 5, attr.as_ptr(), attr.len()) }
}

const MOV_R0_0: [u8; 8] = [0xb7, 0, 0, 0, 0, 0, 0, 0];
const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn loading_a_bpf_program_and_map_is_reported() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    let fd = prog_load("vigil_tprog", &[MOV_R0_0, EXIT]);
    assert!(fd >= 0, "socket filter loads: {}", std::io::Error::last_os_error());
    // Refused by the verifier (r0 never set): EACCES, described from the attribute.
    let bad = prog_load("vigil_tbad", &[EXIT]);
    assert_eq!(bad, -1);
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&2u32.to_ne_bytes()); // BPF_MAP_TYPE_ARRAY
    attr[4..8].copy_from_slice(&4u32.to_ne_bytes());
    attr[8..12].copy_from_slice(&8u32.to_ne_bytes());
    attr[12..16].copy_from_slice(&1u32.to_ne_bytes());
    attr[28..38].copy_from_slice(b"vigil_tmap");
    // SAFETY: a MAP_CREATE attribute.
    let map = unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), attr.len()) };
    assert!(map >= 0);

    let is =
        |c: &Captured, name: &[u8]| of_thread(c, EventType::KernelBpf, tid) && matches!(&c.record.event, Event::Bpf(b) if b.name == name);
    let ok = cap.wait_for("prog_load record", WAIT, |c| is(c, b"vigil_tprog"));
    let Event::Bpf(b) = &ok.record.event else { unreachable!() };
    assert_eq!(b.sys.ret, fd);
    assert_eq!((b.cmd, b.prog_type, b.insn_cnt), (5, 1, 2));
    assert_eq!(b.source, PathSource::KernelObject);
    assert!(b.id.is_some_and(|id| id > 0), "the kernel's program id");
    let l = &ok.log.attributes;
    assert_eq!(ok.log.event_name, "vigil.kernel.bpf");
    assert_eq!(str_attr(l, "vigil.bpf.command"), Some("prog_load"));
    assert_eq!(str_attr(l, "vigil.bpf.program.type"), Some("socket_filter"));
    assert_eq!(str_attr(l, "vigil.bpf.name"), Some("vigil_tprog"));
    assert_eq!(int_attr(l, "vigil.bpf.program.instructions"), Some(2));
    assert_eq!(str_attr(l, "vigil.bpf.source"), Some("kernel_object"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_bpf"));

    let refused = cap.wait_for("refused prog_load", WAIT, |c| is(c, b"vigil_tbad"));
    let Event::Bpf(r) = &refused.record.event else { unreachable!() };
    assert_eq!(r.sys.errno(), Some(libc::EACCES));
    assert_eq!((r.prog_type, r.insn_cnt, r.source), (1, 1, PathSource::SyscallArgument));
    assert_eq!(str_attr(&refused.log.attributes, "error.type"), Some("EACCES"));

    let m = cap.wait_for("map_create record", WAIT, |c| is(c, b"vigil_tmap"));
    assert_eq!(str_attr(&m.log.attributes, "vigil.bpf.command"), Some("map_create"));
    assert_eq!(str_attr(&m.log.attributes, "vigil.bpf.map.type"), Some("array"));
    assert_eq!(int_attr(&m.log.attributes, "vigil.syscall.return"), Some(map));
    // SAFETY: our descriptors.
    unsafe {
        libc::close(fd as i32);
        libc::close(map as i32);
    }
}

/// bpf(2) with a 128-byte attribute.
fn bpf(cmd: i64, attr: &[u8; 128]) -> i64 {
    // SAFETY: the attribute outlives the call; its pointers are the caller's.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), attr.len()) }
}

/// Attaching a program names the program attached, from the kernel: by
/// PROG_ATTACH's descriptor and by the link LINK_CREATE returns.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn attaching_a_bpf_program_names_the_program() {
    const MOV_R0_1: [u8; 8] = [0xb7, 0, 0, 0, 1, 0, 0, 0];
    let mut cap = Capture::start_default();
    let tid = gettid();
    // A cgroup skb program that lets everything through, for a fresh cgroup.
    let license = CString::new("GPL").unwrap();
    let insns = [MOV_R0_1, EXIT];
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&8u32.to_ne_bytes()); // BPF_PROG_TYPE_CGROUP_SKB
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..58].copy_from_slice(b"vigil_tatt");
    let prog = bpf(5, &attr);
    assert!(prog >= 0, "cgroup skb program loads: {}", std::io::Error::last_os_error());
    let root = vigil::procfs::cgroup2_root().expect("a cgroup2 hierarchy is mounted");
    let cg = root.join(format!("vigil-bpf-attach-{}", std::process::id()));
    let _ = std::fs::remove_dir(&cg);
    std::fs::create_dir(&cg).unwrap();
    let cgf = std::fs::File::open(&cg).unwrap();
    let mut at = [0u8; 128];
    at[0..4].copy_from_slice(&(cgf.as_raw_fd() as u32).to_ne_bytes()); // target_fd
    at[4..8].copy_from_slice(&(prog as u32).to_ne_bytes()); // attach_bpf_fd
    at[8..12].copy_from_slice(&1u32.to_ne_bytes()); // BPF_CGROUP_INET_EGRESS
    at[12..16].copy_from_slice(&2u32.to_ne_bytes()); // BPF_F_ALLOW_MULTI
    assert_eq!(bpf(8, &at), 0, "PROG_ATTACH: {}", std::io::Error::last_os_error());
    let mut lc = [0u8; 128];
    lc[0..4].copy_from_slice(&(prog as u32).to_ne_bytes()); // prog_fd
    lc[4..8].copy_from_slice(&(cgf.as_raw_fd() as u32).to_ne_bytes()); // target_fd
    lc[8..12].copy_from_slice(&0u32.to_ne_bytes()); // BPF_CGROUP_INET_INGRESS
    let link = bpf(28, &lc);
    assert!(link >= 0, "LINK_CREATE: {}", std::io::Error::last_os_error());
    // Not a program: a PROG_ATTACH naming the cgroup's own descriptor fails
    // and names no program.
    let mut bad = at;
    bad[4..8].copy_from_slice(&(cgf.as_raw_fd() as u32).to_ne_bytes());
    assert_eq!(bpf(8, &bad), -1);
    // Clean up: the link goes with its descriptor, the attachment by PROG_DETACH.
    // SAFETY: our descriptor.
    unsafe { libc::close(link as i32) };
    let mut detach = at;
    detach[12..16].copy_from_slice(&0u32.to_ne_bytes());
    assert_eq!(bpf(9, &detach), 0, "PROG_DETACH: {}", std::io::Error::last_os_error());
    // SAFETY: our descriptor.
    unsafe { libc::close(prog as i32) };
    drop(cgf);
    std::fs::remove_dir(&cg).unwrap();

    let loaded = cap.wait_for("prog_load", WAIT, |c| {
        of_thread(c, EventType::KernelBpf, tid) && matches!(&c.record.event, Event::Bpf(b) if b.cmd == 5 && b.name == b"vigil_tatt")
    });
    let id = int_attr(&loaded.log.attributes, "vigil.bpf.id").expect("the program's id");
    let cmd_is = |c: &Captured, cmd: u32, ok: bool| {
        of_thread(c, EventType::KernelBpf, tid) && matches!(&c.record.event, Event::Bpf(b) if b.cmd == cmd && (b.sys.ret >= 0) == ok)
    };
    for (cmd, what, attach_type, ret) in [(8u32, "prog_attach", 1, 0), (28, "link_create", 0, link)] {
        let r = cap.wait_for(what, WAIT, |c| cmd_is(c, cmd, true));
        let l = &r.log.attributes;
        assert_eq!(str_attr(l, "vigil.bpf.command"), Some(what));
        assert_eq!(int_attr(l, "vigil.bpf.attach_type"), Some(attach_type));
        assert_eq!(str_attr(l, "vigil.bpf.source"), Some("kernel_object"), "{what}");
        assert_eq!(str_attr(l, "vigil.bpf.program.type"), Some("cgroup_skb"), "{what}");
        assert_eq!(str_attr(l, "vigil.bpf.name"), Some("vigil_tatt"), "{what}");
        assert_eq!(int_attr(l, "vigil.bpf.id"), Some(id), "{what}");
        assert_eq!(int_attr(l, "vigil.bpf.program.instructions"), Some(2));
        assert_eq!(int_attr(l, "vigil.syscall.return"), Some(ret));
    }
    let refused = cap.wait_for("refused prog_attach", WAIT, |c| cmd_is(c, 8, false));
    let l = &refused.log.attributes;
    assert!(str_attr(l, "error.type").is_some());
    assert_eq!(str_attr(l, "vigil.bpf.source"), Some("syscall_argument"), "a cgroup is no program");
    assert_eq!(str_attr(l, "vigil.bpf.name"), None);
    assert_eq!(str_attr(l, "vigil.bpf.program.type"), None);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn module_load_attempts_are_reported_with_file_and_outcome() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    // /bin/true is no module: refused (ENOEXEC), or ENOSYS without module support.
    let file = std::fs::File::open("/bin/true").unwrap();
    let params = CString::new("").unwrap();
    // SAFETY: valid descriptor and string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    let finit_errno = std::io::Error::last_os_error().raw_os_error().unwrap();
    assert_eq!(r, -1);
    let image = [0u8; 64];
    // SAFETY: a readable buffer of the given size.
    let r = unsafe { libc::syscall(libc::SYS_init_module, image.as_ptr(), image.len(), params.as_ptr()) };
    let init_errno = std::io::Error::last_os_error().raw_os_error().unwrap();
    assert_eq!(r, -1);

    let f = cap.wait_for("finit_module record", WAIT, |c| {
        of_thread(c, EventType::KernelModule, tid) && str_attr(&c.log.attributes, "vigil.syscall") == Some("finit_module")
    });
    let Event::Module(m) = &f.record.event else { unreachable!() };
    assert_eq!(m.sys.errno(), Some(finit_errno));
    assert_eq!(m.fd, Some(file.as_raw_fd()));
    let real = std::fs::canonicalize("/bin/true").unwrap();
    assert_eq!(str_attr(&f.log.attributes, "file.path"), real.to_str(), "the descriptor's file");
    assert_eq!(str_attr(&f.log.attributes, "error.type"), vigil::errno::name(finit_errno));
    let hook = str_attr(&f.log.attributes, "vigil.hook").unwrap().to_owned();
    let modules = std::path::Path::new("/proc/modules").exists();
    if modules {
        assert_eq!(m.sys.hook, Some(HookKind::SyscallTp), "{hook}");
    } else {
        assert_eq!(finit_errno, libc::ENOSYS, "no module support");
        assert_eq!(m.sys.hook, Some(HookKind::RawSyscall), "{hook}");
        assert_eq!(hook, "tp_btf/sys_exit(finit_module)");
    }
    let i = cap.wait_for("init_module record", WAIT, |c| {
        of_thread(c, EventType::KernelModule, tid) && str_attr(&c.log.attributes, "vigil.syscall") == Some("init_module")
    });
    assert_eq!(int_attr(&i.log.attributes, "vigil.module.size"), Some(64));
    assert_eq!(str_attr(&i.log.attributes, "error.type"), vigil::errno::name(init_errno));
    assert_eq!(str_attr(&i.log.attributes, "file.path"), None, "an image in memory has no file");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn ptrace_seize_names_the_target_and_its_executable() {
    let mut cap = Capture::start_default();
    let mut child = std::process::Command::new("/bin/sleep").arg("5").spawn().unwrap();
    let pid = child.id();
    cap.wait_for("the target's exec", WAIT, |c| super::is_exec_of(c, pid));
    let tid = gettid();
    // SAFETY: PTRACE_SEIZE of our own child; detached by its death.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid as libc::pid_t, 0, 0) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    child.kill().unwrap();
    child.wait().unwrap();

    let rec = cap.wait_for("ptrace record", WAIT, |c| of_thread(c, EventType::KernelPtrace, tid));
    let Event::Ptrace(p) = &rec.record.event else { unreachable!() };
    assert_eq!((p.request, p.target_pid, p.sys.ret), (0x4206, pid, 0));
    let l = &rec.log.attributes;
    assert_eq!(rec.log.event_name, "vigil.kernel.ptrace");
    assert_eq!(str_attr(l, "vigil.ptrace.request_name"), Some("PTRACE_SEIZE"));
    assert_eq!(int_attr(l, "vigil.ptrace.target.pid"), Some(i64::from(pid)));
    assert_eq!(int_attr(l, "vigil.ptrace.target.process.pid"), Some(i64::from(pid)));
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    assert_eq!(str_attr(l, "vigil.ptrace.target.executable.path"), sleep.to_str());
}

/// Debuggers attach to every thread: a thread that is not its process's
/// leader is named by its process (resolved in the kernel from the tasks
/// the tracer traces), with the process's executable.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn ptrace_of_a_thread_names_its_process() {
    use std::io::BufRead;
    let mut cap = Capture::start_default();
    let script = "import threading,time,sys\n\
                  t=threading.Thread(target=time.sleep,args=(30,),daemon=True); t.start()\n\
                  print(t.native_id, flush=True); time.sleep(30)";
    let mut child = std::process::Command::new("python3").args(["-c", script]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let thread: u32 = line.trim().parse().unwrap();
    assert_ne!(thread, pid, "a thread other than the leader");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    cap.wait_for("the target's exec", WAIT, |c| super::is_exec_of(c, pid));
    let tid = gettid();
    // SAFETY: PTRACE_SEIZE of a thread of our own child; detached by its death.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, thread as libc::pid_t, 0, 0) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    // A failed attach names no process (nothing was attached).
    // SAFETY: as above; the same thread again: EPERM (already traced).
    let again = unsafe { libc::ptrace(libc::PTRACE_SEIZE, thread as libc::pid_t, 0, 0) };
    assert_eq!((again, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EPERM)));
    child.kill().unwrap();
    // The traced thread's death is reported to us, its tracer: reap it, or
    // its process never finishes dying.
    let mut st = 0;
    // SAFETY: waiting for a task we trace.
    assert_eq!(unsafe { libc::waitpid(thread as libc::pid_t, &mut st, libc::__WALL) }, thread as libc::pid_t);
    child.wait().unwrap();

    let ret = |c: &Captured| match &c.record.event {
        Event::Ptrace(p) => p.sys.ret,
        _ => i64::MIN,
    };
    let ok = cap.wait_for("the attach", WAIT, |c| of_thread(c, EventType::KernelPtrace, tid) && ret(c) == 0);
    let bad = cap.wait_for("the failed attach", WAIT, |c| of_thread(c, EventType::KernelPtrace, tid) && ret(c) < 0);
    let l = &ok.log.attributes;
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    assert_eq!(int_attr(l, "vigil.ptrace.target.pid"), Some(i64::from(thread)));
    assert_eq!(int_attr(l, "vigil.ptrace.target.process.pid"), Some(i64::from(pid)));
    assert_eq!(str_attr(l, "vigil.ptrace.target.executable.path"), exe.to_str());
    let failed = &bad.log.attributes;
    assert_eq!(str_attr(failed, "error.type"), Some("EPERM"));
    assert_eq!(int_attr(failed, "vigil.ptrace.target.process.pid"), None);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn mount_and_umount_in_a_private_namespace() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("mount");
    let target = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let (src, fstype, opts, root) =
        (CString::new("vigil-tmp").unwrap(), CString::new("tmpfs").unwrap(), CString::new("size=1m").unwrap(), CString::new("/").unwrap());
    // SAFETY: the child only makes raw system calls and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; a private mount namespace keeps the host clean.
        unsafe {
            let code = if libc::unshare(libc::CLONE_NEWNS) != 0 {
                30
            } else if libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
            {
                31
            } else if libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), libc::MS_NOSUID | libc::MS_NODEV, opts.as_ptr().cast())
                != 0
            {
                32
            } else if libc::umount2(target.as_ptr(), 0) != 0 {
                33
            } else {
                0
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 0, "child step failed");
    let pid = pid as u32;

    let m = cap.wait_for("tmpfs mount", WAIT, |c| {
        c.record.header.event == EventType::KernelMount
            && c.record.header.tgid == pid
            && str_attr(&c.log.attributes, "vigil.mount.fstype") == Some("tmpfs")
    });
    let l = &m.log.attributes;
    assert_eq!(str_attr(l, "vigil.mount.source"), Some("vigil-tmp"));
    assert_eq!(str_attr(l, "vigil.mount.target"), dir.to_str());
    assert_eq!(str_array_attr(l, "vigil.mount.flag_names").unwrap(), ["MS_NOSUID", "MS_NODEV"]);
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_mount"));
    // The propagation change passes no source and no type: absent, not missing.
    let p = cap.wait_for("propagation change", WAIT, |c| {
        c.record.header.event == EventType::KernelMount
            && c.record.header.tgid == pid
            && str_attr(&c.log.attributes, "vigil.mount.target") == Some("/")
    });
    assert_eq!(str_attr(&p.log.attributes, "vigil.mount.source"), None);
    assert!(str_array_attr(&p.log.attributes, "vigil.unavailable_fields").is_none());
    assert_eq!(str_array_attr(&p.log.attributes, "vigil.mount.flag_names").unwrap(), ["MS_REC", "MS_PRIVATE"]);
    let u = cap.wait_for("umount", WAIT, |c| c.record.header.event == EventType::KernelUmount && c.record.header.tgid == pid);
    assert_eq!(u.log.event_name, "vigil.kernel.umount");
    assert_eq!(str_attr(&u.log.attributes, "vigil.mount.target"), dir.to_str());
    assert_eq!(str_attr(&u.log.attributes, "vigil.syscall"), Some("umount2"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// umount2 reports its MNT_* flags as a number, and no MS_* names (the two
/// numberings overlap: MNT_DETACH is MS_NOSUID's bit).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn umount2_with_mnt_detach_reports_its_flags() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("umount-detach");
    let target = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let (fstype, root) = (CString::new("tmpfs").unwrap(), CString::new("/").unwrap());
    let flags = libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW;
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls in the child; a private mount namespace keeps the host clean.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                30
            } else if libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
            {
                31
            } else if libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) != 0 {
                32
            } else if libc::umount2(target.as_ptr(), flags) != 0 {
                33
            } else {
                0
            }
        }
    });
    assert_eq!(code, 0, "child step failed");

    let u = cap.wait_for("umount2", WAIT, |c| c.record.header.event == EventType::KernelUmount && c.record.header.tgid == pid);
    let Event::Mount(m) = &u.record.event else { unreachable!() };
    assert_eq!(m.sys.ret, 0);
    assert_eq!(m.flags, flags as u64, "MNT_DETACH | UMOUNT_NOFOLLOW");
    assert_eq!(m.target.bytes.as_deref(), Some(dir.as_os_str().as_encoded_bytes()));
    let l = &u.log.attributes;
    assert_eq!(u.log.event_name, "vigil.kernel.umount");
    assert_eq!(int_attr(l, "vigil.mount.flags"), Some(i64::from(flags)));
    assert_eq!(str_array_attr(l, "vigil.mount.flag_names"), None, "MS_* names would misname MNT_* flags");
    assert_eq!(str_attr(l, "vigil.mount.target"), dir.to_str());
    assert_eq!(str_attr(l, "vigil.mount.source"), None);
    assert_eq!(str_attr(l, "vigil.mount.fstype"), None);
    assert_eq!(str_attr(l, "vigil.syscall"), Some("umount2"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_umount"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    assert_eq!(str_attr(l, "error.type"), None);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Failed mounts carry the errno and the arguments: nobody (EPERM), and
/// root on a missing relative target (ENOENT; made absolute with the cwd).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn failed_mounts_carry_the_errno() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("mount-failed");
    let target = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let cwd = target.clone();
    let (src, fstype, missing) =
        (CString::new("vigil-denied").unwrap(), CString::new("tmpfs").unwrap(), CString::new("missing/mnt").unwrap());
    let (denied, code) = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        // SAFETY: a raw syscall with valid C strings, in the child.
        let r = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), libc::MS_NOSUID | libc::MS_NOEXEC, std::ptr::null()) };
        // SAFETY: reading errno.
        if r != -1 || unsafe { *libc::__errno_location() } != libc::EPERM {
            return 11;
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let (absent, code) = in_child(|| {
        // SAFETY: raw syscalls with valid C strings, in the child; the
        // private namespace keeps the host clean should the mount succeed.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 || libc::chdir(cwd.as_ptr()) != 0 {
                return 20;
            }
            let r = libc::mount(fstype.as_ptr(), missing.as_ptr(), fstype.as_ptr(), libc::MS_RDONLY, std::ptr::null());
            if r != -1 || *libc::__errno_location() != libc::ENOENT {
                return 21;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");

    let of = |c: &Captured, pid: u32| c.record.header.event == EventType::KernelMount && c.record.header.tgid == pid;
    let d = cap.wait_for("denied mount", WAIT, |c| of(c, denied));
    let Event::Mount(m) = &d.record.event else { unreachable!() };
    assert_eq!(m.sys.errno(), Some(libc::EPERM));
    assert_eq!(m.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
    let l = &d.log.attributes;
    assert_eq!(d.log.event_name, "vigil.kernel.mount");
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EPERM)));
    assert_eq!(str_attr(l, "vigil.mount.source"), Some("vigil-denied"));
    assert_eq!(str_attr(l, "vigil.mount.fstype"), Some("tmpfs"));
    assert_eq!(str_attr(l, "vigil.mount.target"), dir.to_str());
    assert_eq!(str_array_attr(l, "vigil.mount.flag_names").unwrap(), ["MS_NOSUID", "MS_NOEXEC"]);

    let a = cap.wait_for("mount on a missing target", WAIT, |c| of(c, absent));
    let Event::Mount(m) = &a.record.event else { unreachable!() };
    assert_eq!(m.sys.errno(), Some(libc::ENOENT));
    assert_eq!(m.flags, libc::MS_RDONLY);
    let l = &a.log.attributes;
    assert_eq!(str_attr(l, "error.type"), Some("ENOENT"));
    assert_eq!(str_attr(l, "vigil.mount.target"), dir.join("missing/mnt").to_str(), "made absolute with the cwd");
    assert_eq!(str_attr(l, "vigil.mount.source"), Some("tmpfs"));
    assert_eq!(str_array_attr(l, "vigil.mount.flag_names").unwrap(), ["MS_RDONLY"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// PTRACE_ATTACH to a root process by nobody: EPERM, with the target and
/// its executable.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn denied_ptrace_attach_names_the_target() {
    let mut cap = Capture::start_default();
    let mut target = std::process::Command::new("/bin/sleep").arg("5").spawn().unwrap();
    let tpid = target.id();
    cap.wait_for("the target's exec", WAIT, |c| super::is_exec_of(c, tpid));
    let (pid, code) = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        // SAFETY: a raw ptrace request, in the child.
        unsafe {
            if libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, tpid, 0, 0) != -1 || *libc::__errno_location() != libc::EPERM {
                return 11;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    target.kill().unwrap();
    target.wait().unwrap();

    let rec = cap.wait_for("ptrace record", WAIT, |c| c.record.header.event == EventType::KernelPtrace && c.record.header.tgid == pid);
    let Event::Ptrace(p) = &rec.record.event else { unreachable!() };
    assert_eq!((p.request, p.target_pid), (16, tpid));
    assert_eq!(p.sys.ret, -i64::from(libc::EPERM));
    let l = &rec.log.attributes;
    assert_eq!(rec.log.event_name, "vigil.kernel.ptrace");
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EPERM)));
    assert_eq!(str_attr(l, "vigil.ptrace.request_name"), Some("PTRACE_ATTACH"));
    assert_eq!(int_attr(l, "vigil.ptrace.request"), Some(16));
    assert_eq!(int_attr(l, "vigil.ptrace.target.pid"), Some(i64::from(tpid)));
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    assert_eq!(str_attr(l, "vigil.ptrace.target.executable.path"), sleep.to_str());
    assert_eq!(str_attr(l, "vigil.syscall"), Some("ptrace"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_ptrace"));
}
