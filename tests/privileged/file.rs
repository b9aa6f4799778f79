//! File events: the real syscalls, the exact fields.

use super::{become_nobody, in_child, temp_dir, WAIT};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use vigil::abi::{EventType, HookKind, LANE_BULK};
use vigil::config::ProbesConfig;
use vigil::decode::{Event, FileEvent, PathSource};
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr};
use vigil_tests::capture::{Capture, Captured};

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// The file record of `event` by process `tgid` whose path is `path`.
fn is_file(c: &Captured, event: EventType, tgid: u32, path: &Path) -> bool {
    c.record.header.event == event
        && c.record.header.tgid == tgid
        && matches!(&c.record.event, Event::File(f) if f.path.bytes.as_deref() == Some(path.as_os_str().as_bytes()))
}

fn file(c: &Captured) -> &FileEvent {
    match &c.record.event {
        Event::File(f) => f,
        other => panic!("not a file record: {other:?}"),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory everyone may enter (for tests that act as another user).
fn open_dir(name: &str) -> std::path::PathBuf {
    let d = temp_dir(name);
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    d
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn open_for_writing_reports_the_opened_file() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("open-write");
    let target = dir.join("new.txt");
    let c = cstr(&target);
    // SAFETY: a valid C string; the descriptor is closed below.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC, 0o640) };
    assert!(fd >= 0);
    let tid = gettid();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    let ino = std::fs::metadata(&target).unwrap().ino();

    let rec = cap.wait_for("open record", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &target));
    assert_eq!(rec.record.header.pid, tid, "acting thread");
    assert_eq!(rec.record.header.lane, LANE_BULK);
    let f = file(&rec);
    assert_eq!(f.sys.ret, i64::from(fd));
    assert_eq!(f.sys.syscall, 2, "openat");
    // Without module support (no module syscall tracepoints) the raw
    // sys_exit program runs anyway and serves the opens too.
    let raw = !std::path::Path::new("/sys/kernel/tracing/events/syscalls/sys_exit_finit_module").exists();
    assert_eq!(f.sys.hook, Some(if raw { HookKind::RawSyscall } else { HookKind::SyscallTp }));
    assert_eq!(f.flags, (libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC) as u32);
    assert_eq!(f.mode, 0o640);
    assert_eq!(f.ino, Some(ino));
    assert_eq!(f.path_source, PathSource::KernelObject);
    assert!(!f.path.truncated);
    assert_eq!(f.path.original_size, Some(target.as_os_str().len() as u64));
    let l = &rec.log.attributes;
    assert_eq!(rec.log.event_name, "vigil.file.open");
    assert_eq!(str_attr(l, "file.path"), Some(path_str(&target)));
    assert_eq!(str_attr(l, "file.name"), Some("new.txt"));
    assert_eq!(str_attr(l, "vigil.file.path_source"), Some("kernel_object"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("openat"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(i64::from(fd)));
    assert_eq!(str_attr(l, "vigil.hook"), Some(if raw { "tp_btf/sys_exit(openat)" } else { "tracepoint/syscalls/sys_exit_openat" }));
    assert_eq!(str_attr(l, "vigil.file.access"), Some("write"));
    assert_eq!(str_array_attr(l, "vigil.file.flag_names").unwrap(), ["O_WRONLY", "O_CREAT", "O_CLOEXEC"]);
    assert_eq!(str_attr(l, "file.mode"), Some("0640"));
    assert_eq!(int_attr(l, "vigil.file.inode"), Some(ino as i64));
    assert_eq!(int_attr(l, "process.pid"), Some(i64::from(std::process::id())));
    assert_eq!(int_attr(l, "thread.id"), Some(i64::from(tid)));
    assert_eq!(str_attr(l, "error.type"), None);
    std::fs::remove_dir_all(dir).unwrap();
}

/// With the kernel family off no raw sys_exit program runs, so the opens
/// keep their syscall tracepoints on every kernel: that variant is
/// exercised here even where the raw program serves them by default.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn opens_keep_their_tracepoints_when_the_kernel_family_is_off() {
    let mut cap = Capture::start(ProbesConfig { kernel: false, ringbuf_kib: 4096, poll_interval_ms: 5, ..ProbesConfig::default() });
    let dir = temp_dir("open-tracepoint");
    let target = dir.join("tp.txt");
    std::fs::write(&target, b"").unwrap();
    let c = cstr(&target);
    // SAFETY: a valid C string; the descriptor is closed below.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), libc::O_WRONLY | libc::O_TRUNC) };
    assert!(fd >= 0);
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    let rec = cap.wait_for("open record", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &target));
    let f = file(&rec);
    assert_eq!(f.sys.ret, i64::from(fd));
    assert_eq!(f.sys.hook, Some(HookKind::SyscallTp));
    assert_eq!(f.path_source, PathSource::KernelObject);
    assert_eq!(str_attr(&rec.log.attributes, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_openat"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn denied_open_carries_the_errno_and_the_argument_path() {
    let mut cap = Capture::start_default();
    let dir = open_dir("open-denied");
    let secret = dir.join("secret");
    std::fs::write(&secret, b"x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo y > {}", path_str(&secret)))
        .uid(65534)
        .gid(65534)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = status.id();
    let mut child = status;
    assert!(!child.wait().unwrap().success(), "nobody must not be able to write the file");

    let rec = cap.wait_for("denied open", WAIT, |c| is_file(c, EventType::FileOpen, pid, &secret));
    let f = file(&rec);
    assert_eq!(f.sys.ret, -i64::from(libc::EACCES));
    assert_eq!(f.sys.errno(), Some(libc::EACCES));
    assert_eq!(f.path_source, PathSource::SyscallArgument);
    assert_eq!(f.ino, None, "no object was opened");
    assert_eq!(f.flags & (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u32, (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u32);
    let l = &rec.log.attributes;
    assert_eq!(str_attr(l, "error.type"), Some("EACCES"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EACCES)));
    assert_eq!(str_attr(l, "vigil.file.path_source"), Some("syscall_argument"));
    assert_eq!(str_attr(l, "file.path"), Some(path_str(&secret)));
    assert_eq!(str_attr(l, "thread.name"), Some("sh"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn relative_paths_from_a_changed_cwd_resolve_to_absolute_paths() {
    relative_paths_resolve_with("open-relative", ProbesConfig::default());
}

/// The same with the helper reads older kernels use (no direct loads).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn relative_paths_resolve_with_helper_reads() {
    relative_paths_resolve_with("open-relative-helper-reads", ProbesConfig { direct_loads: false, ..ProbesConfig::default() });
}

fn relative_paths_resolve_with(name: &str, probes: ProbesConfig) {
    let mut cap = Capture::start(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, ..probes });
    let dir = open_dir(name);
    std::fs::create_dir(dir.join("sub")).unwrap();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(": > start.txt; cd sub && : > rel.txt; : > missing/x.txt")
        .current_dir(&dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let start = dir.join("start.txt");
    let rel = dir.join("sub/rel.txt");
    let missing = dir.join("sub/missing/x.txt");

    let a = cap.wait_for("open start.txt", WAIT, |c| is_file(c, EventType::FileOpen, pid, &start));
    assert_eq!(file(&a).path_source, PathSource::KernelObject);
    let b = cap.wait_for("open sub/rel.txt after cd", WAIT, |c| is_file(c, EventType::FileOpen, pid, &rel));
    assert_eq!(file(&b).path_source, PathSource::KernelObject);
    assert_eq!(file(&b).ino, Some(std::fs::metadata(&rel).unwrap().ino()));
    // A failed relative open: the argument, made absolute with the kernel's cwd.
    let m = cap.wait_for("failed relative open", WAIT, |c| is_file(c, EventType::FileOpen, pid, &missing));
    assert_eq!(file(&m).sys.errno(), Some(libc::ENOENT));
    assert_eq!(file(&m).path_source, PathSource::SyscallArgument);
    assert_eq!(str_attr(&m.log.attributes, "error.type"), Some("ENOENT"));
    assert_eq!(str_attr(&m.log.attributes, "file.path"), Some(path_str(&missing)));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every name length the walk copies differently: under 8 bytes (inline
/// in the dentry), whole 8-byte chunks, a last chunk overlapping the one
/// before, names stored outside the dentry (40 bytes and more), NAME_MAX;
/// each as a directory and as a file, so a copy that wrote past its
/// component would clobber the next one. And the thread name (comm) at its
/// full 15 bytes. With direct loads, and below with the helper reads of
/// older kernels.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn names_of_every_length_are_copied_whole() {
    names_of_every_length_with("names", ProbesConfig::default());
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn names_of_every_length_are_copied_whole_with_helper_reads() {
    names_of_every_length_with("names-helper-reads", ProbesConfig { direct_loads: false, ..ProbesConfig::default() });
}

fn names_of_every_length_with(name: &str, probes: ProbesConfig) {
    const LENGTHS: [usize; 20] = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 39, 40, 41, 63, 64, 65, 127, 200, 254, 255];
    // Bytes that differ from their neighbours, so a shifted or reordered
    // chunk shows.
    let name_of = |len: usize, tag: u8| -> String {
        (0..len).map(|i| if i == 0 { tag as char } else { (b'a' + ((i * 7 + len) % 26) as u8) as char }).collect()
    };
    let mut cap = Capture::start(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, ..probes });
    let dir = temp_dir(name);
    let files: Vec<std::path::PathBuf> = LENGTHS
        .iter()
        .map(|&len| {
            let d = dir.join(name_of(len, b'D'));
            std::fs::create_dir(&d).unwrap();
            d.join(name_of(len, b'F'))
        })
        .collect();
    let thread_name = "vigil-names-15c";
    let opener = {
        let files = files.clone();
        std::thread::Builder::new()
            .name(thread_name.into())
            .spawn(move || {
                for f in &files {
                    std::fs::File::create(f).unwrap();
                }
                gettid()
            })
            .unwrap()
    };
    let tid = opener.join().unwrap();
    for f in &files {
        let rec = cap.wait_for("open of a name of this length", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), f));
        let r = file(&rec);
        assert_eq!(r.path_source, PathSource::KernelObject, "{}", f.display());
        assert!(!r.path.truncated, "{}", f.display());
        assert_eq!(r.path.original_size, Some(f.as_os_str().len() as u64), "{}", f.display());
        assert_eq!(rec.record.header.pid, tid);
        assert_eq!(str_attr(&rec.log.attributes, "thread.name"), Some(thread_name), "{}", f.display());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn symlinked_path_resolves_to_its_target_and_dirfd_relative_opens_are_absolute() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("open-symlink");
    let target = dir.join("target.txt");
    std::fs::write(&target, b"").unwrap();
    let link = dir.join("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::fs::OpenOptions::new().write(true).open(&link).unwrap();
    let rec = cap.wait_for("open through the symlink", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &target));
    assert_eq!(file(&rec).path_source, PathSource::KernelObject);
    assert_eq!(str_attr(&rec.log.attributes, "file.path"), Some(path_str(&target)));
    // No record names the link.
    let named_link = cap.all_matching(Duration::from_millis(200), |c| is_file(c, EventType::FileOpen, std::process::id(), &link));
    assert!(named_link.is_empty(), "{named_link:?}");

    // openat(dirfd, "rel") with a directory descriptor, failing: made
    // absolute with the directory's kernel path.
    let d = std::fs::File::open(&dir).unwrap();
    let name = CString::new("nodir/file").unwrap();
    // SAFETY: valid descriptor and C string.
    let fd = unsafe { libc::openat(std::os::fd::AsRawFd::as_raw_fd(&d), name.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600) };
    assert_eq!(fd, -1);
    let want = dir.join("nodir/file");
    let rec = cap.wait_for("dirfd-relative failed open", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &want));
    assert_eq!(file(&rec).sys.errno(), Some(libc::ENOENT));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Thread `tid` of this process is blocked in openat.
fn blocked_in_openat(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).is_ok_and(|s| s.split_whitespace().next() == Some("257"))
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn rename_racing_with_the_open_reports_the_new_name() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("open-rename-race");
    let fifo = dir.join("fifo");
    let renamed = dir.join("renamed");
    let c = cstr(&fifo);
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // The writer's open blocks inside openat (the kernel has looked the
    // name up and holds the file) until a reader arrives.
    let (tx, rx) = std::sync::mpsc::channel();
    let fifo2 = fifo.clone();
    let writer = std::thread::spawn(move || {
        tx.send(gettid()).unwrap();
        std::fs::OpenOptions::new().write(true).open(&fifo2).map(|_| ())
    });
    let tid = rx.recv().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while !blocked_in_openat(tid) {
        assert!(std::time::Instant::now() < deadline, "writer never blocked in openat");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    std::fs::rename(&fifo, &renamed).unwrap();
    let ino = std::fs::metadata(&renamed).unwrap().ino();
    // Release the writer with a reader on the new name.
    let _reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&renamed).unwrap();
    writer.join().unwrap().unwrap();

    let rec = cap.wait_for("the writer's open", WAIT, |c| {
        c.record.header.event == EventType::FileOpen && c.record.header.pid == tid && file(c).sys.ret >= 0
    });
    let f = file(&rec);
    assert_eq!(f.path.bytes.as_deref(), Some(renamed.as_os_str().as_bytes()), "the name the opened file has, not the one passed");
    assert_eq!(f.ino, Some(ino));
    assert_eq!(f.path_source, PathSource::KernelObject);
    std::fs::remove_dir_all(dir).unwrap();
}

/// openat2's flags live in the caller's memory: a thread that rewrites
/// them while the open runs must not turn a write into an unreported read.
/// The writer's openat2 blocks on a FIFO (the kernel has copied the flags
/// and holds the file) while the test rewrites `how.flags` to O_RDONLY.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn openat2_flags_rewritten_during_the_open_do_not_hide_a_write() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let mut cap = Capture::start_default();
    let dir = temp_dir("openat2-flags-race");
    let fifo = dir.join("fifo");
    let c = cstr(&fifo);
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // struct open_how { u64 flags; u64 mode; u64 resolve; }, shared with the
    // writer thread (atomics: same layout as u64).
    let how: Arc<[AtomicU64; 3]> =
        Arc::new([AtomicU64::new((libc::O_WRONLY | libc::O_CLOEXEC) as u64), AtomicU64::new(0), AtomicU64::new(0)]);
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let how = how.clone();
        std::thread::spawn(move || {
            tx.send(gettid()).unwrap();
            // SAFETY: a valid C string and a 24-byte open_how that outlives the call.
            unsafe { libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, c.as_ptr(), how.as_ptr(), 24usize) }
        })
    };
    let tid = rx.recv().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while !std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .is_ok_and(|s| s.split_whitespace().next() == Some(&libc::SYS_openat2.to_string()))
    {
        assert!(std::time::Instant::now() < deadline, "writer never blocked in openat2");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    how[0].store(libc::O_RDONLY as u64, Ordering::SeqCst);
    let _reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let fd = writer.join().unwrap();
    assert!(fd >= 0, "openat2 failed");
    // SAFETY: the descriptor the writer opened.
    assert_eq!(unsafe { libc::fcntl(fd as i32, libc::F_GETFL) } & libc::O_ACCMODE, libc::O_WRONLY);

    let rec = cap.wait_for("the writer's openat2", WAIT, |c| {
        c.record.header.event == EventType::FileOpen && c.record.header.pid == tid && file(c).sys.ret == fd
    });
    assert_eq!(str_attr(&rec.log.attributes, "vigil.syscall"), Some("openat2"));
    assert_eq!(str_attr(&rec.log.attributes, "file.path"), Some(path_str(&fifo)));
    assert_eq!(str_attr(&rec.log.attributes, "vigil.file.access"), Some("write"), "the mode the kernel opened with");
    assert_eq!(file(&rec).flags & 0o3, libc::O_WRONLY as u32);
    // SAFETY: ours, closed once.
    unsafe { libc::close(fd as i32) };

    // Undisturbed: an exclusive create through openat2 (flags and mode as
    // passed, the kernel object's path).
    let created = dir.join("created");
    let c2 = cstr(&created);
    let how2 = [(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u64, 0o640, 0];
    // SAFETY: a valid C string and open_how.
    let fd2 = unsafe { libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, c2.as_ptr(), how2.as_ptr(), 24usize) };
    assert!(fd2 >= 0);
    let rec = cap.wait_for("openat2 create", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &created));
    assert_eq!(str_array_attr(&rec.log.attributes, "vigil.file.flag_names").unwrap(), ["O_WRONLY", "O_CREAT", "O_EXCL"]);
    assert_eq!(str_attr(&rec.log.attributes, "file.mode"), Some("0640"));
    assert_eq!(file(&rec).path_source, PathSource::KernelObject);
    assert_eq!(file(&rec).ino, Some(std::fs::metadata(&created).unwrap().ino()));
    // SAFETY: ours, closed once.
    unsafe { libc::close(fd2 as i32) };
    std::fs::remove_dir_all(dir).unwrap();
}

use std::os::unix::fs::OpenOptionsExt;

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn reads_are_reported_only_under_watched_prefixes() {
    let dir = temp_dir("open-read-prefix");
    std::fs::create_dir(dir.join("watched")).unwrap();
    std::fs::create_dir(dir.join("other")).unwrap();
    let watched = dir.join("watched/a");
    let other = dir.join("other/b");
    std::fs::write(&watched, b"").unwrap();
    std::fs::write(&other, b"").unwrap();
    let prefix = format!("{}/", dir.join("watched").display());
    let mut cap = Capture::start(ProbesConfig {
        ringbuf_kib: 4096,
        poll_interval_ms: 5,
        file_read_prefixes: vec![prefix],
        ..ProbesConfig::default()
    });
    std::fs::File::open(&other).unwrap();
    std::fs::File::open(&watched).unwrap();
    // A read that fails under the prefix is reported too (path from the argument).
    assert!(std::fs::File::open(dir.join("watched/none")).is_err());
    let marker = dir.join("marker");
    std::fs::write(&marker, b"").unwrap();

    let rec = cap.wait_for("read under the prefix", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &watched));
    assert_eq!(str_attr(&rec.log.attributes, "vigil.file.access"), Some("read"));
    assert_eq!(str_array_attr(&rec.log.attributes, "vigil.file.flag_names").unwrap(), ["O_RDONLY", "O_CLOEXEC"]);
    let none = dir.join("watched/none");
    let failed = cap.wait_for("failed read under the prefix", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &none));
    assert_eq!(str_attr(&failed.log.attributes, "error.type"), Some("ENOENT"));
    cap.wait_for("marker write", WAIT, |c| is_file(c, EventType::FileOpen, std::process::id(), &marker));
    let unwatched = cap.all_matching(Duration::from_millis(100), |c| is_file(c, EventType::FileOpen, std::process::id(), &other));
    assert!(unwatched.is_empty(), "a read outside the prefixes was reported: {unwatched:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn file_family_switched_off_reports_nothing() {
    let mut cap = Capture::start(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, file: false, ..ProbesConfig::default() });
    let dir = temp_dir("file-off");
    std::fs::write(dir.join("x"), b"").unwrap();
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    cap.wait_for("an exec (the probes run)", WAIT, |c| super::is_exec_of(c, pid));
    let files = cap.all_matching(Duration::from_millis(100), |c| matches!(c.record.event, Event::File(_)));
    assert!(files.is_empty(), "{} file records with the family off", files.len());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn unlink_rename_chmod_chown_truncate() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("file-ops");
    let me = std::process::id();
    let a = dir.join("a");
    let b = dir.join("b");
    std::fs::write(&a, b"12345").unwrap();
    std::fs::rename(&a, &b).unwrap();
    std::fs::set_permissions(&b, std::os::unix::fs::PermissionsExt::from_mode(0o604)).unwrap();
    std::os::unix::fs::chown(&b, Some(65534), None).unwrap();
    let c = cstr(&b);
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::truncate(c.as_ptr(), 2) }, 0);
    std::fs::OpenOptions::new().append(true).open(&b).unwrap().set_len(1).unwrap();
    std::fs::remove_file(&b).unwrap();
    assert!(std::fs::remove_file(&a).is_err());
    let ino_gone = None::<u64>;

    let r = cap.wait_for("rename", WAIT, |c| is_file(c, EventType::FileRename, me, &a));
    assert_eq!(file(&r).sys.ret, 0);
    assert_eq!(file(&r).path2.as_ref().and_then(|p| p.bytes.as_deref()), Some(b.as_os_str().as_bytes()));
    assert_eq!(str_attr(&r.log.attributes, "vigil.file.target_path"), Some(path_str(&b)));
    assert_eq!(str_attr(&r.log.attributes, "vigil.file.target_path_source"), Some("syscall_argument"));

    let m = cap.wait_for("chmod", WAIT, |c| is_file(c, EventType::FileChmod, me, &b));
    assert_eq!(file(&m).mode & 0o7777, 0o604);
    assert_eq!(str_attr(&m.log.attributes, "file.mode"), Some("0604"));

    let o = cap.wait_for("chown", WAIT, |c| is_file(c, EventType::FileChown, me, &b));
    assert_eq!((file(&o).uid, file(&o).gid), (Some(65534), None));
    assert_eq!(int_attr(&o.log.attributes, "vigil.file.new_owner.id"), Some(65534));
    assert_eq!(int_attr(&o.log.attributes, "vigil.file.new_group.id"), None);

    let t = cap.wait_for("truncate", WAIT, |c| is_file(c, EventType::FileTruncate, me, &b) && file(c).length == 2);
    assert_eq!(str_attr(&t.log.attributes, "vigil.syscall"), Some("truncate"));
    assert_eq!(int_attr(&t.log.attributes, "file.size"), Some(2));
    assert_eq!(file(&t).path_source, PathSource::SyscallArgument);
    let ft = cap.wait_for("ftruncate", WAIT, |c| is_file(c, EventType::FileTruncate, me, &b) && file(c).length == 1);
    assert_eq!(str_attr(&ft.log.attributes, "vigil.syscall"), Some("ftruncate"));
    assert_eq!(file(&ft).path_source, PathSource::KernelObject, "ftruncate: the descriptor's file");
    assert!(file(&ft).ino.is_some());

    let u = cap.wait_for("unlink", WAIT, |c| is_file(c, EventType::FileUnlink, me, &b));
    assert_eq!(file(&u).sys.ret, 0);
    assert_eq!(file(&u).ino, ino_gone);
    let failed = cap.wait_for("failed unlink", WAIT, |c| is_file(c, EventType::FileUnlink, me, &a));
    assert_eq!(str_attr(&failed.log.attributes, "error.type"), Some("ENOENT"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// fchmodat2 (Linux 6.6+, the only way to pass AT_SYMLINK_NOFOLLOW to a
/// chmod) is a chmod like the others: a `chmod +s` through it is not
/// invisible.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn fchmodat2_is_reported_with_its_flags() {
    const SYS_FCHMODAT2: libc::c_long = 452;
    let mut cap = Capture::start_default();
    let dir = temp_dir("fchmodat2");
    let me = std::process::id();
    let f = dir.join("f");
    let link = dir.join("link");
    std::fs::write(&f, b"").unwrap();
    std::os::unix::fs::symlink(&f, &link).unwrap();
    let d = std::fs::File::open(&dir).unwrap();
    let dfd = std::os::fd::AsRawFd::as_raw_fd(&d);
    let call = |name: &str, mode: u32, flags: i32| {
        let c = CString::new(name).unwrap();
        // SAFETY: a valid descriptor and C string; fchmodat2 takes integers otherwise.
        let rc = unsafe { libc::syscall(SYS_FCHMODAT2, dfd, c.as_ptr(), mode, flags) };
        (rc, std::io::Error::last_os_error().raw_os_error())
    };
    let (rc, errno) = call("f", 0o4750, libc::AT_SYMLINK_NOFOLLOW);
    if rc != 0 && errno == Some(libc::ENOSYS) {
        eprintln!("SKIPPED: fchmodat2 needs Linux 6.6+; this kernel has no such syscall");
        return;
    }
    assert_eq!(rc, 0, "fchmodat2: {errno:?}");
    // A symlink's own mode can not be changed: EOPNOTSUPP.
    assert_eq!(call("link", 0o700, libc::AT_SYMLINK_NOFOLLOW), (-1, Some(libc::EOPNOTSUPP)));

    let r = cap.wait_for("fchmodat2", WAIT, |c| is_file(c, EventType::FileChmod, me, &f));
    assert_eq!(str_attr(&r.log.attributes, "vigil.syscall"), Some("fchmodat2"));
    assert_eq!(str_attr(&r.log.attributes, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_fchmodat2"));
    assert_eq!(str_attr(&r.log.attributes, "file.path"), Some(path_str(&f)), "dirfd-relative name made absolute");
    assert_eq!(str_attr(&r.log.attributes, "file.mode"), Some("4750"));
    assert_eq!(int_attr(&r.log.attributes, "vigil.file.flags"), Some(i64::from(libc::AT_SYMLINK_NOFOLLOW)));
    assert_eq!(int_attr(&r.log.attributes, "vigil.syscall.return"), Some(0));
    assert_eq!(str_attr(&r.log.attributes, "error.type"), None);
    let e = cap.wait_for("refused fchmodat2", WAIT, |c| is_file(c, EventType::FileChmod, me, &link));
    assert_eq!(str_attr(&e.log.attributes, "error.type"), Some("EOPNOTSUPP"));
    assert_eq!(str_attr(&e.log.attributes, "file.mode"), Some("0700"));
    assert_eq!(file(&e).path_source, PathSource::SyscallArgument);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The unlink event prefers the BPF-LSM hook (the dentry the kernel used);
/// where the kernel refuses BPF-LSM (as on the machines this project is
/// tested on) start-up falls back to the syscall tracepoints, says so, and
/// every record names the hook that produced it.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn preferred_lsm_hook_or_clean_fallback_for_unlink() {
    let mut cap = Capture::start_default();
    let status = cap.status().unwrap().clone();
    let lsm = status.active_hooks.iter().any(|h| h == "vigil.file.unlink=lsm/path_unlink");
    if lsm {
        assert!(
            std::fs::read_to_string("/sys/kernel/security/lsm").unwrap().split(',').any(|l| l.trim() == "bpf"),
            "LSM hooks chosen where the BPF LSM does not run"
        );
    }
    if lsm {
        assert!(status.fallbacks.is_empty(), "{:?}", status.fallbacks);
        assert!(!status.active_hooks.iter().any(|h| h == "vigil.file.unlink=tracepoint/syscalls/sys_exit_unlink"), "one variant only");
        // unlinkat stays, for AT_REMOVEDIR (security_path_rmdir).
        assert!(status.active_hooks.iter().any(|h| h == "vigil.file.unlink=tracepoint/syscalls/sys_exit_unlinkat"));
    } else {
        assert!(
            status
                .fallbacks
                .iter()
                .any(|f| f.contains("preferred hooks") && (f.contains("refused") || f.contains("does not run the BPF LSM"))),
            "the fallback is reported: {:?}",
            status.fallbacks
        );
        assert!(
            status.active_hooks.iter().any(|h| h == "vigil.file.unlink=tracepoint/syscalls/sys_exit_unlinkat"),
            "{:?}",
            status.active_hooks
        );
    }
    let dir = temp_dir("unlink-hook");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"").unwrap();
    let ino = std::fs::metadata(&victim).unwrap().ino();
    std::fs::remove_file(&victim).unwrap();
    let rec = cap.wait_for("unlink record", WAIT, |c| is_file(c, EventType::FileUnlink, std::process::id(), &victim));
    let f = file(&rec);
    if lsm {
        assert_eq!(f.sys.hook, Some(HookKind::Lsm));
        assert_eq!(f.path_source, PathSource::KernelObject);
        assert_eq!(f.ino, Some(ino));
        assert_eq!(str_attr(&rec.log.attributes, "vigil.hook"), Some("lsm/path_unlink"));
        // Seen before the kernel's own checks: no outcome claimed.
        assert_eq!(int_attr(&rec.log.attributes, "vigil.syscall.return"), None);
    } else {
        assert_eq!(f.sys.hook, Some(HookKind::SyscallTp));
        assert_eq!(f.path_source, PathSource::SyscallArgument);
        // std's remove_file calls unlink(2)
        assert_eq!(str_attr(&rec.log.attributes, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_unlink"));
    }
    // Without the preference, the tracepoints serve it directly.
    drop(cap);
    let cap = Capture::start(ProbesConfig { ringbuf_kib: 4096, prefer_lsm: false, ..ProbesConfig::default() });
    let status = cap.status().unwrap();
    assert!(status.fallbacks.is_empty(), "nothing was tried: {:?}", status.fallbacks);
    assert!(status.active_hooks.iter().any(|h| h == "vigil.file.unlink=tracepoint/syscalls/sys_exit_unlinkat"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Open `path` through io_uring (`op` openat or openat2, `mode` inline,
/// async or sqpoll: see tests/bin/uring_open.rs) in a child process, as
/// `uid` when given; returns the child's pid and the completion's result.
fn uring_open(op: &str, mode: &str, path: &Path, flags: i32, uid: Option<u32>) -> (u32, i64) {
    uring_open_in(op, mode, path, flags, uid, None, None)
}

/// [`uring_open`], with the helper's `variant` when given (`skip`:
/// IOSQE_CQE_SKIP_SUCCESS, the result being the descriptor the helper saw
/// appear or the failure's completion; `overflow`: the completion queue
/// full when the open completes), from directory `cwd` when given.
fn uring_open_in(op: &str, mode: &str, path: &Path, flags: i32, uid: Option<u32>, variant: Option<&str>, cwd: Option<&Path>) -> (u32, i64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil-uring-open"));
    cmd.args([op, mode, path_str(path), &flags.to_string()]).stdout(std::process::Stdio::piped());
    cmd.args(variant);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "io_uring helper failed: {out:?}");
    (pid, String::from_utf8(out.stdout).unwrap().trim().parse().unwrap())
}

/// x86-64's O_LARGEFILE, which io_uring's prep adds on 64-bit kernels
/// (the record carries the flags the kernel opened with).
const O_LARGEFILE: i32 = 0o100000;

/// Opens submitted through io_uring run no open syscall: they are reported
/// at their completion with the opened file's kernel path, whether the
/// completion runs in the submitter, an io-wq worker or the SQPOLL thread
/// (each a thread of the submitting process with its descriptor table).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn io_uring_opens_report_the_opened_file() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("uring-open");
    // An open of an existing (cached) file without O_CREAT completes where
    // it was issued: in the submitting thread, or in the SQPOLL thread; a
    // creating one, or one forced async, in an io-wq worker.
    let write = libc::O_WRONLY | libc::O_CLOEXEC;
    let create = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC;
    for (op, mode, flags, sys, thread) in [
        ("openat", "inline", write, 2, None),
        ("openat", "async", create, 2, Some("iou-wrk-")),
        ("openat2", "sqpoll", write, 3, Some("iou-sqp-")),
        ("openat2", "inline", create, 3, Some("iou-wrk-")),
    ] {
        let target = dir.join(format!("{op}-{mode}-{flags:o}.txt"));
        if flags & libc::O_CREAT == 0 {
            std::fs::write(&target, b"").unwrap();
        }
        let (pid, fd) = uring_open(op, mode, &target, flags, None);
        assert!(fd >= 0, "{op} {mode}: {fd}");
        let ino = std::fs::metadata(&target).unwrap().ino();

        let rec = cap.wait_for("io_uring open record", WAIT, |c| is_file(c, EventType::FileOpen, pid, &target));
        let l = &rec.log.attributes;
        let what = format!("{op} {mode}, completed by {} {:?}", rec.record.header.pid, str_attr(l, "thread.name"));
        assert_eq!(rec.record.header.tgid, pid, "{what}: the submitting process");
        match thread {
            None => assert_eq!(rec.record.header.pid, pid, "{what}: the submitting thread"),
            Some(prefix) => {
                assert_ne!(rec.record.header.pid, pid, "{what}: a kernel thread of the process");
                assert_eq!(str_attr(l, "thread.name"), Some(format!("{prefix}{pid}").as_str()), "{what}");
            }
        }
        let f = file(&rec);
        assert_eq!(f.sys.ret, fd, "{what}");
        assert_eq!(f.sys.syscall, sys, "{what}");
        assert_eq!(f.sys.hook, Some(HookKind::IoUring), "{what}");
        assert_eq!(f.flags, (flags | O_LARGEFILE) as u32, "{what}");
        assert_eq!(f.mode, if flags & libc::O_CREAT != 0 { 0o640 } else { 0 }, "{what}");
        // The descriptor was looked up in the completing thread's table:
        // the very file the child opened.
        assert_eq!(f.ino, Some(ino), "{what}");
        assert_eq!(f.path_source, PathSource::KernelObject, "{what}");
        assert_eq!(rec.log.event_name, "vigil.file.open");
        assert_eq!(str_attr(l, "file.path"), Some(path_str(&target)));
        assert_eq!(str_attr(l, "vigil.syscall"), Some(op));
        assert_eq!(str_attr(l, "vigil.hook"), Some(format!("tp_btf/io_uring_complete({op})").as_str()));
        assert_eq!(vigil_tests::attrs::value(l, "vigil.io_uring"), Some(&Value::BoolValue(true)));
        assert_eq!(str_attr(l, "vigil.file.access"), Some("write"));
        assert_eq!(int_attr(l, "process.pid"), Some(i64::from(pid)));
        assert_eq!(int_attr(l, "vigil.syscall.return"), Some(fd));
        assert_eq!(str_attr(l, "error.type"), None);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A failed io_uring open has no file: its path is the name the kernel
/// copied at submission (kept by the submission program), made absolute,
/// with the errno.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn failed_io_uring_opens_carry_the_errno_and_the_name() {
    let mut cap = Capture::start_default();
    let dir = open_dir("uring-open-failed");
    let secret = dir.join("secret");
    std::fs::write(&secret, b"x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let missing = dir.join("no-such-dir/x");
    let flags = libc::O_WRONLY | libc::O_TRUNC;
    for (path, uid, errno, name) in [(&secret, Some(65534), libc::EACCES, "EACCES"), (&missing, None, libc::ENOENT, "ENOENT")] {
        let (pid, res) = uring_open("openat", "inline", path, flags, uid);
        assert_eq!(res, -i64::from(errno));
        let rec = cap.wait_for("failed io_uring open", WAIT, |c| is_file(c, EventType::FileOpen, pid, path));
        let f = file(&rec);
        assert_eq!(f.sys.ret, -i64::from(errno));
        assert_eq!(f.sys.hook, Some(HookKind::IoUring));
        assert_eq!(f.path_source, PathSource::SyscallArgument);
        assert_eq!(f.ino, None, "no object was opened");
        assert_eq!(f.flags, (flags | O_LARGEFILE) as u32);
        let l = &rec.log.attributes;
        assert_eq!(rec.log.event_name, "vigil.file.open");
        assert_eq!(str_attr(l, "error.type"), Some(name));
        assert_eq!(str_attr(l, "file.path"), Some(path_str(path)));
        assert_eq!(str_attr(l, "vigil.file.path_source"), Some("syscall_argument"));
        assert_eq!(str_attr(l, "vigil.hook"), Some("tp_btf/io_uring_complete(openat)"));
        assert_eq!(int_attr(l, "process.pid"), Some(i64::from(pid)));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// An io_uring open submitted with IOSQE_CQE_SKIP_SUCCESS posts no
/// completion when it succeeds, so nothing sees it complete: it is reported
/// at submission (by the submitting thread, or the SQPOLL thread), with the
/// name the kernel copied made absolute (here relative to the child's
/// cwd) and no outcome, and nothing else is reported for it.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn io_uring_opens_without_a_completion_are_reported_at_submission() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("uring-open-skip");
    let write = libc::O_WRONLY | libc::O_CLOEXEC;
    for (op, mode, sys, thread) in [("openat", "inline", 2, None), ("openat2", "async", 3, None), ("openat", "sqpoll", 2, Some("iou-sqp-"))]
    {
        let name = format!("{op}-{mode}.txt");
        let target = dir.join(&name);
        std::fs::write(&target, b"").unwrap();
        let (pid, fd) = uring_open_in(op, mode, Path::new(&name), write, None, Some("skip"), Some(&dir));
        assert!(fd >= 0, "{op} {mode}: {fd}");
        let recs = cap.all_matching(Duration::from_secs(1), |c| is_file(c, EventType::FileOpen, pid, &target));
        let [rec] = &recs[..] else { panic!("{op} {mode}: one record, not {recs:#?}") };
        let l = &rec.log.attributes;
        let what = format!("{op} {mode}, submitted by {} {:?}", rec.record.header.pid, str_attr(l, "thread.name"));
        assert_eq!(rec.record.header.tgid, pid, "{what}");
        match thread {
            None => assert_eq!(rec.record.header.pid, pid, "{what}: the submitting thread"),
            Some(prefix) => assert_eq!(str_attr(l, "thread.name"), Some(format!("{prefix}{pid}").as_str()), "{what}"),
        }
        let f = file(rec);
        assert_eq!(f.sys.hook, Some(HookKind::IoUringSubmit), "{what}");
        assert_eq!(f.sys.syscall, sys, "{what}");
        assert_eq!(f.flags, (write | O_LARGEFILE) as u32, "{what}");
        // Reported before the open ran: the name, not an opened object.
        assert_eq!(f.path_source, PathSource::SyscallArgument, "{what}");
        assert_eq!(f.ino, None, "{what}");
        assert_eq!(rec.log.event_name, "vigil.file.open");
        assert_eq!(str_attr(l, "file.path"), Some(path_str(&target)), "{what}");
        assert_eq!(str_attr(l, "vigil.hook"), Some(format!("tp_btf/io_uring_submit_req({op})").as_str()));
        assert_eq!(vigil_tests::attrs::value(l, "vigil.io_uring"), Some(&Value::BoolValue(true)));
        assert_eq!(int_attr(l, "vigil.syscall.return"), None, "{what}: the outcome is not known");
        assert_eq!(str_attr(l, "vigil.unavailable_reason.vigil.syscall.return"), Some("not_supported"), "{what}");
        assert_eq!(str_attr(l, "error.type"), None, "{what}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A failed open submitted with IOSQE_CQE_SKIP_SUCCESS posts a completion
/// after all: reported at submission (no outcome) and at its completion
/// (the errno).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn failed_io_uring_opens_without_a_completion_are_reported_twice() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("uring-open-skip-failed");
    let missing = dir.join("no-such-dir/x");
    let (pid, res) = uring_open_in("openat", "inline", &missing, libc::O_WRONLY, None, Some("skip"), None);
    assert_eq!(res, -i64::from(libc::ENOENT));
    cap.wait_for("failed open's completion", WAIT, |c| {
        is_file(c, EventType::FileOpen, pid, &missing) && file(c).sys.hook == Some(HookKind::IoUring)
    });
    let mut recs = cap.all_matching(Duration::from_millis(300), |c| is_file(c, EventType::FileOpen, pid, &missing));
    recs.sort_by_key(|c| c.record.header.ktime_ns);
    let hooks: Vec<_> = recs.iter().map(|c| str_attr(&c.log.attributes, "vigil.hook").unwrap_or_default().to_string()).collect();
    assert_eq!(hooks, ["tp_btf/io_uring_submit_req(openat)", "tp_btf/io_uring_complete(openat)"], "{recs:#?}");
    let (submitted, completed) = (&recs[0].log.attributes, &recs[1].log.attributes);
    assert_eq!(int_attr(submitted, "vigil.syscall.return"), None);
    assert_eq!(str_attr(submitted, "error.type"), None);
    assert_eq!(int_attr(completed, "vigil.syscall.return"), Some(-i64::from(libc::ENOENT)));
    assert_eq!(str_attr(completed, "error.type"), Some("ENOENT"));
    for c in &recs {
        assert_eq!(file(c).path_source, PathSource::SyscallArgument);
        assert_eq!(str_attr(&c.log.attributes, "file.path"), Some(path_str(&missing)));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A completion posted while the completion queue is full goes to the
/// overflow list without io_uring_complete: the open is still reported,
/// found among the requests the submission program kept, with its result
/// and the opened file (a failure with its errno and name).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn io_uring_opens_whose_completion_overflows_are_reported() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("uring-open-overflow");
    let target = dir.join("overflowed.txt");
    std::fs::write(&target, b"").unwrap();
    let missing = dir.join("no-such-dir/x");
    let write = libc::O_WRONLY | libc::O_CLOEXEC;
    for (op, path, sys) in [("openat", &target, 2), ("openat2", &target, 3), ("openat", &missing, 2)] {
        let (pid, res) = uring_open_in(op, "inline", path, write, None, Some("overflow"), None);
        let what = format!("{op} {}: {res}", path.display());
        let recs = cap.all_matching(Duration::from_secs(1), |c| is_file(c, EventType::FileOpen, pid, path));
        let [rec] = &recs[..] else { panic!("{what}: one record, not {recs:#?}") };
        let f = file(rec);
        let l = &rec.log.attributes;
        assert_eq!(f.sys.hook, Some(HookKind::IoUringOverflow), "{what}");
        assert_eq!(f.sys.syscall, sys, "{what}");
        assert_eq!(f.sys.ret, res, "{what}");
        assert_eq!(f.flags, (write | O_LARGEFILE) as u32, "{what}");
        assert_eq!(str_attr(l, "vigil.hook"), Some(format!("tp_btf/io_uring_cqe_overflow({op})").as_str()));
        assert_eq!(vigil_tests::attrs::value(l, "vigil.io_uring"), Some(&Value::BoolValue(true)));
        assert_eq!(int_attr(l, "vigil.syscall.return"), Some(res), "{what}");
        if path == &target {
            assert!(res >= 0, "{what}");
            assert_eq!(f.path_source, PathSource::KernelObject, "{what}");
            assert_eq!(f.ino, Some(std::fs::metadata(&target).unwrap().ino()), "{what}");
            assert_eq!(str_attr(l, "error.type"), None, "{what}");
        } else {
            assert_eq!(res, -i64::from(libc::ENOENT), "{what}");
            assert_eq!(f.path_source, PathSource::SyscallArgument, "{what}");
            assert_eq!(str_attr(l, "error.type"), Some("ENOENT"), "{what}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A short-lived process's file records are drained after its exit (the
/// bulk lane after the critical one), so its exit is mapped first: they
/// must still carry its executable and its span (they did not: every
/// `cat /etc/shadow` was `lost_context`).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn a_short_lived_process_keeps_its_context_on_records_mapped_after_its_exit() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("short-lived");
    let touch = std::fs::canonicalize("/usr/bin/touch").unwrap();
    for i in 0..5 {
        let target = dir.join(format!("t{i}"));
        let mut child = Command::new(&touch).arg(&target).spawn().unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        let is_exec = |c: &Captured| matches!(c.record.event, Event::Exec(_)) && c.record.header.tgid == pid;
        let exec = cap.wait_for("exec record", WAIT, is_exec);
        let open = cap.wait_for("open record", WAIT, |c| is_file(c, EventType::FileOpen, pid, &target));
        cap.wait_for("exit record", WAIT, |c| matches!(c.record.event, Event::Exit(_)) && c.record.header.tgid == pid);
        let l = &open.log.attributes;
        assert_eq!(str_attr(l, "process.executable.path"), Some(path_str(&touch)), "run {i}");
        assert_eq!(str_attr(l, "vigil.context.source"), Some("observed"), "run {i}");
        assert_eq!(str_attr(l, "vigil.unavailable_reason.process.executable.path"), None, "run {i}");
        assert_eq!(open.log.span_id.len(), 8, "run {i}: in a span");
        assert_eq!((&open.log.trace_id, &open.log.span_id), (&exec.log.trace_id, &exec.log.span_id), "run {i}: the process's span");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// fchmod and fchown name the descriptor's file by its current kernel
/// path (the file is renamed after it was opened), with the new mode,
/// owner and group.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn fchmod_and_fchown_name_the_descriptors_file() {
    let mut cap = Capture::start_default();
    let dir = temp_dir("file-fchmod");
    let me = std::process::id();
    let opened = dir.join("opened");
    let renamed = dir.join("renamed");
    std::fs::write(&opened, b"").unwrap();
    let f = std::fs::File::open(&opened).unwrap();
    std::fs::rename(&opened, &renamed).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    let ino = f.metadata().unwrap().ino();
    // SAFETY: our descriptor.
    unsafe {
        assert_eq!(libc::fchmod(fd, 0o4751), 0);
        assert_eq!(libc::fchown(fd, 1234, 5678), 0);
        assert_eq!(libc::fchown(fd, u32::MAX, 4321), 0, "the group only");
    }
    let tid = gettid();
    let md = std::fs::metadata(&renamed).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 4321));

    let m = cap.wait_for("fchmod", WAIT, |c| is_file(c, EventType::FileChmod, me, &renamed));
    assert_eq!(m.record.header.pid, tid);
    let r = file(&m);
    assert_eq!(r.sys.ret, 0);
    assert_eq!(r.sys.hook, Some(HookKind::SyscallTp));
    assert_eq!(r.mode, 0o4751, "the mode as passed");
    assert_eq!(r.path_source, PathSource::KernelObject, "the descriptor's file");
    assert_eq!(r.ino, Some(ino));
    let l = &m.log.attributes;
    assert_eq!(m.log.event_name, "vigil.file.chmod");
    assert_eq!(str_attr(l, "file.path"), Some(path_str(&renamed)));
    assert_eq!(str_attr(l, "file.name"), Some("renamed"));
    assert_eq!(str_attr(l, "file.mode"), Some("4751"));
    assert_eq!(str_attr(l, "vigil.file.path_source"), Some("kernel_object"));
    assert_eq!(int_attr(l, "vigil.file.inode"), Some(ino as i64));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("fchmod"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_fchmod"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    assert_eq!(str_attr(l, "error.type"), None);

    let is_fchown = |c: &Captured, gid: u32| is_file(c, EventType::FileChown, me, &renamed) && file(c).gid == Some(gid);
    let o = cap.wait_for("fchown", WAIT, |c| is_fchown(c, 5678));
    let r = file(&o);
    assert_eq!(r.sys.ret, 0);
    assert_eq!((r.uid, r.gid), (Some(1234), Some(5678)));
    assert_eq!(r.path_source, PathSource::KernelObject);
    assert_eq!(r.ino, Some(ino));
    let l = &o.log.attributes;
    assert_eq!(o.log.event_name, "vigil.file.chown");
    assert_eq!(str_attr(l, "file.path"), Some(path_str(&renamed)));
    assert_eq!(int_attr(l, "vigil.file.new_owner.id"), Some(1234));
    assert_eq!(int_attr(l, "vigil.file.new_group.id"), Some(5678));
    assert_eq!(str_attr(l, "vigil.file.path_source"), Some("kernel_object"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("fchown"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_fchown"));
    let g = cap.wait_for("fchown of the group only", WAIT, |c| is_fchown(c, 4321));
    assert_eq!((file(&g).uid, file(&g).gid), (None, Some(4321)), "-1: the owner unchanged");
    assert_eq!(int_attr(&g.log.attributes, "vigil.file.new_owner.id"), None);
    assert_eq!(int_attr(&g.log.attributes, "vigil.file.new_group.id"), Some(4321));
    std::fs::remove_dir_all(dir).unwrap();
}

/// chmod and fchmod of a root-owned file by nobody: EPERM, the mode asked
/// for, and the path (the argument for chmod, the descriptor's file for
/// fchmod); the file keeps its mode.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn denied_chmod_carries_the_errno() {
    let mut cap = Capture::start_default();
    let dir = open_dir("file-chmod-denied");
    let target = dir.join("root-owned");
    std::fs::write(&target, b"").unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let c = cstr(&target);
    let (pid, code) = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        // SAFETY: raw syscalls with a valid C string, in the child.
        unsafe {
            if libc::syscall(libc::SYS_chmod, c.as_ptr(), 0o777) != -1 || *libc::__errno_location() != libc::EPERM {
                return 11;
            }
            let fd = libc::syscall(libc::SYS_open, c.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return 12;
            }
            if libc::syscall(libc::SYS_fchmod, fd, 0o666) != -1 || *libc::__errno_location() != libc::EPERM {
                return 13;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o644, "unchanged");

    let m = cap.wait_for("denied chmod", WAIT, |c| is_file(c, EventType::FileChmod, pid, &target) && file(c).mode == 0o777);
    let r = file(&m);
    assert_eq!(r.sys.ret, -i64::from(libc::EPERM));
    assert_eq!(r.sys.errno(), Some(libc::EPERM));
    assert_eq!(r.path_source, PathSource::SyscallArgument);
    assert_eq!(r.ino, None);
    let l = &m.log.attributes;
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EPERM)));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("chmod"));
    assert_eq!(str_attr(l, "file.mode"), Some("0777"));
    assert_eq!(str_attr(l, "file.path"), Some(path_str(&target)));
    assert_eq!(str_attr(l, "vigil.file.path_source"), Some("syscall_argument"));

    let f = cap.wait_for("denied fchmod", WAIT, |c| is_file(c, EventType::FileChmod, pid, &target) && file(c).mode == 0o666);
    let r = file(&f);
    assert_eq!(r.sys.errno(), Some(libc::EPERM));
    assert_eq!(r.path_source, PathSource::KernelObject, "the descriptor's file, even on failure");
    assert_eq!(r.ino, Some(std::fs::metadata(&target).unwrap().ino()));
    let l = &f.log.attributes;
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("fchmod"));
    assert_eq!(str_attr(l, "file.mode"), Some("0666"));
    std::fs::remove_dir_all(dir).unwrap();
}
