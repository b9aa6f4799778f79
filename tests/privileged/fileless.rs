//! Fileless execution: memfd_create records and the exec markers of a memfd
//! or deleted executable.

use super::{temp_dir, WAIT};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use vigil::abi::{EventType, HookKind, LANE_CRITICAL};
use vigil::decode::{Event, PathSource};
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr};
use vigil_tests::capture::Capture;

fn bool_attr(kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<bool> {
    match vigil_tests::attrs::value(kvs, key) {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::BoolValue(b)) => Some(*b),
        _ => None,
    }
}

fn memfd(name: &str, flags: libc::c_uint) -> OwnedFd {
    let n = CString::new(name).unwrap();
    // SAFETY: valid C string.
    let fd = unsafe { libc::memfd_create(n.as_ptr(), flags) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor we own.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Fork, and in the child execveat(fd, "", AT_EMPTY_PATH): the program the
/// descriptor refers to, with no path. Returns the child's pid (reaped).
fn exec_fd(fd: &OwnedFd) -> u32 {
    let empty = CString::new("").unwrap();
    let arg0 = CString::new("fileless").unwrap();
    let argv = [arg0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let raw = fd.as_raw_fd();
    let pause = libc::timespec { tv_sec: 0, tv_nsec: 10_000_000 };
    // SAFETY: the child only calls execveat, nanosleep and _exit
    // (async-signal-safe); every pointer was prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // A freshly written file is busy (ETXTBSY) while a test forking in
        // parallel holds a duplicate of its write descriptor: retry for up
        // to 1 s. The exit status carries the errno of the last attempt.
        // SAFETY: see above; reading errno is async-signal-safe too.
        unsafe {
            for _ in 0..100 {
                libc::syscall(libc::SYS_execveat, raw, empty.as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH);
                if *libc::__errno_location() != libc::ETXTBSY {
                    break;
                }
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
            libc::_exit(100 + (*libc::__errno_location()).min(100));
        }
    }
    assert!(pid > 0);
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the fileless program ran (status {status:#x}; an exit code 100+n is execveat's errno n)"
    );
    pid as u32
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn exec_from_a_memfd_is_marked_anonymous() {
    let mut cap = Capture::start_default();
    let fd = memfd("vigil-fileless", 0);
    let mut f = std::fs::File::from(fd.try_clone().unwrap());
    f.write_all(&std::fs::read("/bin/true").unwrap()).unwrap();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let pid = exec_fd(&fd);

    let m = cap
        .wait_for("memfd_create record", WAIT, |c| c.record.header.event == EventType::FilelessMemfdCreate && c.record.header.pid == tid);
    let Event::Memfd(e) = &m.record.event else { unreachable!() };
    assert_eq!(m.record.header.lane, LANE_CRITICAL);
    assert_eq!(e.sys.ret, i64::from(fd.as_raw_fd()));
    assert_eq!(e.sys.hook, Some(HookKind::SyscallTp));
    assert_eq!(e.flags, 0);
    assert_eq!(e.name_source, PathSource::KernelObject);
    assert_eq!(e.given_name(), Some(&b"vigil-fileless"[..]));
    let ino = std::os::unix::fs::MetadataExt::ino(&f.metadata().unwrap());
    assert_eq!(e.ino, Some(ino));
    let l = &m.log.attributes;
    assert_eq!(m.log.event_name, "vigil.fileless.memfd_create");
    assert_eq!(str_attr(l, "vigil.memfd.name"), Some("vigil-fileless"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("memfd_create"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_memfd_create"));
    assert_eq!(int_attr(l, "vigil.memfd.flags"), Some(0));
    assert_eq!(str_array_attr(l, "vigil.memfd.flag_names").unwrap(), Vec::<String>::new());

    let x = cap.wait_for("exec of the memfd", WAIT, |c| super::is_exec_of(c, pid));
    let Event::Exec(e) = &x.record.event else { unreachable!() };
    assert!(e.exe_memfd, "executable on a memfd");
    assert!(e.exe_deleted, "a memfd has no link");
    assert_eq!(e.exe.bytes.as_deref(), Some(&b"/memfd:vigil-fileless"[..]));
    assert_eq!(e.exe_ino, ino);
    assert_eq!(e.filename.bytes.as_deref(), Some(format!("/dev/fd/{}", fd.as_raw_fd()).as_bytes()), "execveat with an empty path");
    assert_eq!(bool_attr(&x.log.attributes, "vigil.process.executable.memfd"), Some(true));
    assert_eq!(bool_attr(&x.log.attributes, "vigil.process.executable.deleted"), Some(true));
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn exec_of_a_deleted_file_is_marked_deleted() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("fileless-deleted");
    let path = dir.join("gone");
    std::fs::copy("/bin/true", &path).unwrap();
    let fd: OwnedFd = std::fs::File::open(&path).unwrap().into();
    std::fs::remove_file(&path).unwrap();
    let pid = exec_fd(&fd);

    let x = cap.wait_for("exec of the deleted file", WAIT, |c| super::is_exec_of(c, pid));
    let Event::Exec(e) = &x.record.event else { unreachable!() };
    assert!(e.exe_deleted);
    assert!(!e.exe_memfd);
    assert_eq!(e.exe.bytes.as_deref(), Some(path.as_os_str().as_bytes()), "the name it had");
    assert_eq!(bool_attr(&x.log.attributes, "vigil.process.executable.deleted"), Some(true));
    assert_eq!(bool_attr(&x.log.attributes, "vigil.process.executable.memfd"), Some(false));
    std::fs::remove_dir_all(dir).unwrap();
}

/// memfd_create's flags as passed, by name, and the name: with sealing and
/// close-on-exec, with the exec sealing modes (Linux 6.3+), and refused
/// (MFD_EXEC and MFD_NOEXEC_SEAL together), whose name is the argument.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn memfd_create_flags_and_name() {
    let mut cap = Capture::start_default();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let raw_memfd = |name: &str, flags: libc::c_uint| -> i64 {
        let n = CString::new(name).unwrap();
        // SAFETY: valid C string; a descriptor returned is closed by the caller.
        unsafe { libc::syscall(libc::SYS_memfd_create, n.as_ptr(), flags) }
    };
    // Whether this kernel knows the exec sealing flags.
    let probe = raw_memfd("vigil-probe-exec", libc::MFD_EXEC);
    let exec_flags = probe >= 0;
    if exec_flags {
        // SAFETY: our descriptor.
        unsafe { libc::close(probe as i32) };
    } else {
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EINVAL), "only an older kernel refuses MFD_EXEC");
    }
    let mut cases: Vec<(&str, libc::c_uint, &[&str])> =
        vec![("vigil-cloexec-seal", libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING, &["MFD_CLOEXEC", "MFD_ALLOW_SEALING"])];
    if exec_flags {
        cases.push(("vigil-exec", libc::MFD_CLOEXEC | libc::MFD_EXEC, &["MFD_CLOEXEC", "MFD_EXEC"]));
        cases.push(("vigil-noexec-seal", libc::MFD_NOEXEC_SEAL, &["MFD_NOEXEC_SEAL"]));
    }
    for (name, flags, names) in cases {
        let fd = memfd(name, flags);
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::File::from(fd.try_clone().unwrap()).metadata().unwrap());
        let m = cap.wait_for("memfd_create record", WAIT, |c| {
            c.record.header.event == EventType::FilelessMemfdCreate
                && c.record.header.pid == tid
                && matches!(&c.record.event, Event::Memfd(e) if e.given_name() == Some(name.as_bytes()))
        });
        let Event::Memfd(e) = &m.record.event else { unreachable!() };
        assert_eq!(e.sys.ret, i64::from(fd.as_raw_fd()), "{name}");
        assert_eq!(e.flags, flags, "{name}: the flags as passed");
        assert_eq!(e.name_source, PathSource::KernelObject, "{name}");
        assert_eq!(e.name.bytes.as_deref(), Some(format!("memfd:{name}").as_bytes()), "{name}: the kernel's name");
        assert_eq!(e.ino, Some(ino), "{name}");
        let l = &m.log.attributes;
        assert_eq!(int_attr(l, "vigil.memfd.flags"), Some(i64::from(flags)), "{name}");
        assert_eq!(str_array_attr(l, "vigil.memfd.flag_names").unwrap(), names, "{name}");
        assert_eq!(str_attr(l, "vigil.memfd.name"), Some(name));
        assert_eq!(str_attr(l, "vigil.memfd.name_source"), Some("kernel_object"), "{name}");
        assert_eq!(int_attr(l, "vigil.syscall.return"), Some(i64::from(fd.as_raw_fd())), "{name}");
        assert_eq!(str_attr(l, "error.type"), None, "{name}");
    }
    // Refused: EINVAL (on an older kernel, for the unknown flags).
    let both = libc::MFD_EXEC | libc::MFD_NOEXEC_SEAL;
    assert_eq!(raw_memfd("vigil-refused", both), -1);
    let m = cap.wait_for("refused memfd_create", WAIT, |c| {
        c.record.header.event == EventType::FilelessMemfdCreate
            && c.record.header.pid == tid
            && matches!(&c.record.event, Event::Memfd(e) if e.given_name() == Some(&b"vigil-refused"[..]))
    });
    let Event::Memfd(e) = &m.record.event else { unreachable!() };
    assert_eq!(e.sys.errno(), Some(libc::EINVAL));
    assert_eq!(e.flags, both);
    assert_eq!(e.name_source, PathSource::SyscallArgument, "no file: the argument");
    assert_eq!(e.name.bytes.as_deref(), Some(&b"vigil-refused"[..]));
    assert_eq!(e.ino, None);
    let l = &m.log.attributes;
    assert_eq!(str_attr(l, "error.type"), Some("EINVAL"));
    assert_eq!(int_attr(l, "vigil.memfd.flags"), Some(i64::from(both)));
    assert_eq!(str_array_attr(l, "vigil.memfd.flag_names").unwrap(), ["MFD_NOEXEC_SEAL", "MFD_EXEC"]);
    assert_eq!(str_attr(l, "vigil.memfd.name"), Some("vigil-refused"));
    assert_eq!(str_attr(l, "vigil.memfd.name_source"), Some("syscall_argument"));
}
