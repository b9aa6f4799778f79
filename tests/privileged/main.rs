//! Privileged tests: the real probes in this kernel, real actions, exact
//! fields (trigger -> assert presence -> assert each field).
//!
//! Each test is `#[ignore]`d so that without root it is reported as
//! ignored, never as passed; `ci/test.sh` runs them as root with
//! `--ignored`. Tests run in parallel, each with its own probes, and pick
//! their records out by the pid of the process they started.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use vigil::abi::{EventType, Reason};
use vigil::config::ProbesConfig;
use vigil::decode::Event;
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr};
use vigil_tests::capture::{Capture, Captured};
use vigil_tests::cgroups::TestCgroups;

const WAIT: Duration = Duration::from_secs(10);

mod file;
mod fileless;
mod filters;
mod kernel;
mod lanes;
mod network;
mod policy;
mod privilege;
mod ratelimit;

fn is_exec_of(c: &Captured, pid: u32) -> bool {
    matches!(c.record.event, Event::Exec(_)) && c.record.header.tgid == pid
}

fn is_exit_of(c: &Captured, pid: u32) -> bool {
    matches!(c.record.event, Event::Exit(_)) && c.record.header.tgid == pid
}

/// Fork; the child runs `f` (raw syscalls only: async-signal-safe) and
/// exits with its result; the parent reaps it. Returns (pid, exit code).
fn in_child(f: impl FnOnce() -> i32) -> (u32, i32) {
    // SAFETY: the child only makes raw system calls and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = f();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    assert!(pid > 0);
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    (pid as u32, libc::WEXITSTATUS(status))
}

/// In a child of [`in_child`]: become nobody (uid and gid 65534, no
/// supplementary groups, hence no capabilities) with raw syscalls, which
/// act on the whole (single-threaded) child. False if a step failed.
fn become_nobody() -> bool {
    // SAFETY: raw syscalls with no pointer arguments but a NULL group list.
    unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534) == 0
            && libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) == 0
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-priv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn exec_with_known_argv_cwd_and_uid() {
    let mut cap = Capture::start_default();
    let cwd = temp_dir("exec");
    std::fs::set_permissions(&cwd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let echo = std::fs::canonicalize("/bin/echo").unwrap();
    let mut child = Command::new("/bin/echo")
        .args(["vigil-test", "two words", "line\nbreak", ""])
        .current_dir(&cwd)
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());

    let c = cap.wait_for("exec record", WAIT, |c| is_exec_of(c, pid));
    let Event::Exec(e) = &c.record.event else { unreachable!() };
    // Decoded kernel record.
    assert_eq!(e.argv(), vec![&b"/bin/echo"[..], b"vigil-test", b"two words", b"line\nbreak", b""]);
    assert_eq!(e.argc, 5);
    assert_eq!(e.exe.bytes.as_deref(), Some(echo.as_os_str().as_bytes()));
    assert_eq!(e.filename.bytes.as_deref(), Some(&b"/bin/echo"[..]), "filename as passed to exec, read from the kernel copy");
    assert_eq!(e.cwd.bytes.as_deref(), Some(cwd.as_os_str().as_bytes()));
    assert_eq!((e.creds.uid, e.creds.euid, e.creds.suid, e.creds.fsuid), (65534, 65534, 65534, 65534));
    assert_eq!((e.creds.gid, e.creds.egid), (65534, 65534));
    assert_eq!(e.ppid, std::process::id());
    // Identity inherited from this test process.
    let own = |f: &str| std::fs::read_to_string(format!("/proc/self/{f}")).unwrap().trim().parse::<u32>().unwrap();
    assert_eq!(e.creds.loginuid, own("loginuid"), "audit login uid");
    assert_eq!(e.creds.sessionid, own("sessionid"), "audit session id");
    // SAFETY: getsid/getpgrp have no preconditions.
    let (sid, pgid) = unsafe { (libc::getsid(0), libc::getpgrp()) };
    assert_eq!(e.sid, sid as u32, "session leader");
    assert_eq!(e.pgid, pgid as u32, "process group (inherited)");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let tty_nr: i64 = stat.rsplit(')').next().unwrap().split_whitespace().nth(4).unwrap().parse().unwrap();
    assert_eq!(e.tty, tty_nr != 0, "controlling terminal");
    if let (Some(root), Some(path)) = (vigil::procfs::cgroup2_root(), vigil::procfs::cgroup_path(Path::new("/proc"), std::process::id())) {
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root.join(path.trim_start_matches('/'))).unwrap());
        assert_eq!(e.cgroup_id, ino, "cgroup v2 id is the cgroup directory's inode");
    }
    let boot_now = vigil::clock::boot_now_ns();
    assert!(e.start_ns <= boot_now && boot_now - e.start_ns < 10_000_000_000, "start {} vs boot clock {boot_now}", e.start_ns);
    assert!(!e.args.truncated && !e.exe.truncated && !e.cwd.truncated);
    // Mapped OTLP record.
    let l = &c.log;
    assert_eq!(l.event_name, "vigil.process.exec");
    assert_eq!(int_attr(&l.attributes, "process.pid"), Some(i64::from(pid)));
    assert_eq!(int_attr(&l.attributes, "process.parent_pid"), Some(i64::from(std::process::id())));
    assert_eq!(int_attr(&l.attributes, "process.user.id"), Some(65534));
    assert_eq!(int_attr(&l.attributes, "process.args_count"), Some(5));
    assert_eq!(
        str_array_attr(&l.attributes, "process.command_args").unwrap(),
        ["/bin/echo", "vigil-test", "two words", "line\\x0abreak", ""]
    );
    assert_eq!(str_attr(&l.attributes, "process.executable.path"), echo.to_str());
    assert_eq!(str_attr(&l.attributes, "process.executable.name"), Some("echo"));
    assert_eq!(str_attr(&l.attributes, "process.working_directory"), cwd.to_str());
    assert_eq!(str_attr(&l.attributes, "vigil.context.source"), Some("observed"));
    assert!(str_attr(&l.attributes, "log.record.uid").is_some());
    assert!(str_array_attr(&l.attributes, "vigil.truncated_fields").is_none());
    // Kernel timestamp converted to wall clock: within 10 s of now.
    let now = vigil::clock::unix_now_ns();
    assert!(now.abs_diff(l.time_unix_nano) < 10_000_000_000, "time {} vs now {now}", l.time_unix_nano);
    assert!(l.observed_time_unix_nano + 1_000_000 >= l.time_unix_nano, "observed before the event");

    let exit = cap.wait_for("exit record", WAIT, |c| is_exit_of(c, pid));
    assert_eq!(int_attr(&exit.log.attributes, "process.exit.code"), Some(0));
    assert_eq!(str_attr(&exit.log.attributes, "process.executable.path"), echo.to_str(), "exit takes the image from the process table");
    std::fs::remove_dir_all(cwd).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn fork_without_exec() {
    let mut cap = Capture::start_default();
    // SAFETY: the child only calls _exit, which is async-signal-safe.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // SAFETY: immediate exit of the forked child.
        unsafe { libc::_exit(7) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    let pid = child as u32;
    let fork = cap.wait_for("fork record", WAIT, |c| matches!(&c.record.event, Event::Fork(f) if f.child_tgid == pid));
    let Event::Fork(f) = &fork.record.event else { unreachable!() };
    assert_eq!(fork.record.header.tgid, std::process::id());
    assert_eq!(f.child_pid, pid);
    assert!(f.child_start_ns > 0);
    assert_eq!(fork.log.event_name, "vigil.process.fork");
    assert_eq!(int_attr(&fork.log.attributes, "process.pid"), Some(i64::from(pid)));
    assert_eq!(int_attr(&fork.log.attributes, "process.parent_pid"), Some(i64::from(std::process::id())));
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(str_attr(&fork.log.attributes, "process.executable.path"), me.to_str(), "the child inherits the parent's image");
    let exit = cap.wait_for("exit record", WAIT, |c| is_exit_of(c, pid));
    assert_eq!(int_attr(&exit.log.attributes, "process.exit.code"), Some(7));
    let Event::Exit(x) = &exit.record.event else { unreachable!() };
    assert_eq!(x.start_ns, f.child_start_ns, "exit and fork name the same process");
    assert!(x.group_dead);
    let execs = cap.all_matching(Duration::from_millis(200), |c| is_exec_of(c, pid));
    assert!(execs.is_empty(), "no exec for a fork-only child");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn exit_code_three() {
    let mut cap = Capture::start_default();
    let mut child = Command::new("/bin/sh").args(["-c", "exit 3"]).spawn().unwrap();
    let pid = child.id();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let exit = cap.wait_for("exit record", WAIT, |c| is_exit_of(c, pid));
    let Event::Exit(x) = &exit.record.event else { unreachable!() };
    assert_eq!(x.exit_code(), Some(3));
    assert_eq!(x.signal(), None);
    assert_eq!(int_attr(&exit.log.attributes, "process.exit.code"), Some(3));
    assert_eq!(int_attr(&exit.log.attributes, "vigil.process.exit.signal"), None);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn death_by_sigkill() {
    let mut cap = Capture::start_default();
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    cap.wait_for("exec of sleep", WAIT, |c| is_exec_of(c, pid));
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    let exit = cap.wait_for("exit record", WAIT, |c| is_exit_of(c, pid));
    let Event::Exit(x) = &exit.record.event else { unreachable!() };
    assert_eq!(x.signal(), Some(9));
    assert_eq!(x.exit_code(), None);
    assert!(!x.core_dumped());
    assert_eq!(int_attr(&exit.log.attributes, "vigil.process.exit.signal"), Some(9));
    assert_eq!(str_attr(&exit.log.attributes, "vigil.process.exit.signal_name"), Some("SIGKILL"));
    assert_eq!(int_attr(&exit.log.attributes, "process.exit.code"), None);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn long_executable_path_is_complete() {
    long_executable_path_is_complete_with("longpath", ProbesConfig::default());
}

/// The same walk with the helper reads older kernels use (no direct loads).
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn long_executable_path_is_complete_with_helper_reads() {
    long_executable_path_is_complete_with("longpath-helper-reads", ProbesConfig { direct_loads: false, ..ProbesConfig::default() });
}

fn long_executable_path_is_complete_with(name: &str, probes: ProbesConfig) {
    let mut cap = Capture::start(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, ..probes });
    let mut dir = temp_dir(name);
    for i in 0..40 {
        dir.push(format!("level-{i:02}-dir"));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("vigil-true");
    std::fs::copy("/bin/true", &exe).unwrap();
    let exe_len = exe.as_os_str().len();
    assert!(exe_len > 300, "path is {exe_len} bytes");
    let mut child = spawn_copied(&mut Command::new(&exe));
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let c = cap.wait_for("exec record", WAIT, |c| is_exec_of(c, pid));
    let Event::Exec(e) = &c.record.event else { unreachable!() };
    assert_eq!(e.exe.bytes.as_deref(), Some(exe.as_os_str().as_bytes()), "complete {exe_len}-byte path");
    assert!(!e.exe.truncated);
    assert_eq!(str_attr(&c.log.attributes, "process.executable.path"), exe.to_str());
    assert_eq!(str_attr(&c.log.attributes, "process.executable.name"), Some("vigil-true"));
    std::fs::remove_dir_all(temp_dir(name)).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn argv_over_the_limit_is_flagged_with_exact_argc() {
    const LIMIT: u32 = 1024;
    let mut cap = Capture::start(ProbesConfig { args_max_bytes: LIMIT, ringbuf_kib: 4096, poll_interval_ms: 5, ..ProbesConfig::default() });
    let args: Vec<String> = (0..100).map(|i| format!("argument-{i:03}-{}", "x".repeat(80))).collect();
    let total: usize = "/bin/true".len() + 1 + args.iter().map(|a| a.len() + 1).sum::<usize>();
    let mut child = Command::new("/bin/true").args(&args).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let c = cap.wait_for("exec record", WAIT, |c| is_exec_of(c, pid));
    let Event::Exec(e) = &c.record.event else { unreachable!() };
    assert_eq!(e.argc, 101, "argc is exact even when argv is cut");
    assert!(e.args.truncated);
    assert_eq!(e.args.bytes.as_ref().map(Vec::len), Some(LIMIT as usize));
    assert_eq!(e.args.original_size, Some(total as u64));
    assert_eq!(e.args.reason, Some(Reason::SizeLimit));
    let l = &c.log;
    assert_eq!(int_attr(&l.attributes, "process.args_count"), Some(101));
    assert_eq!(str_array_attr(&l.attributes, "vigil.truncated_fields").unwrap(), ["process.command_args"]);
    assert_eq!(
        int_attr(&l.attributes, "vigil.original_size.process.command_args"),
        Some(101),
        "arrays report their original element count"
    );
    assert_eq!(str_attr(&l.attributes, "vigil.truncated_reason.process.command_args"), Some("size_limit"));
    let argv = str_array_attr(&l.attributes, "process.command_args").unwrap();
    assert!(argv.len() < 101);
    assert_eq!(argv[0], "/bin/true");
    assert_eq!(argv[1], args[0]);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn renamed_process_keeps_its_real_executable() {
    let mut cap = Capture::start_default();
    // The shell renames itself (PR_SET_NAME via /proc/self/comm) and exits.
    let mut child = Command::new("/bin/sh").args(["-c", "printf sshd > /proc/self/comm; exit 0"]).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let exit = cap.wait_for("exit record", WAIT, |c| is_exit_of(c, pid));
    assert_eq!(str_attr(&exit.log.attributes, "thread.name"), Some("sshd"), "comm is what the process set");
    assert_eq!(str_attr(&exit.log.attributes, "process.executable.path"), sh.to_str(), "the executable is what the kernel ran");
    // Through prctl itself, from a child of this process.
    // SAFETY: the child only calls prctl and _exit.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: PR_SET_NAME with a NUL-terminated name; then exit.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"kworker/0:1".as_ptr());
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    let exit = cap.wait_for("exit of prctl child", WAIT, |c| is_exit_of(c, child as u32));
    assert_eq!(str_attr(&exit.log.attributes, "thread.name"), Some("kworker/0:1"));
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(str_attr(&exit.log.attributes, "process.executable.path"), me.to_str());
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn no_loss_and_gapless_sequences_under_normal_load() {
    let mut cap = Capture::start_default();
    let mut pids = Vec::new();
    for _ in 0..50 {
        let mut c = Command::new("/bin/true").spawn().unwrap();
        pids.push(c.id());
        c.wait().unwrap();
    }
    let last = *pids.last().unwrap();
    cap.wait_for("last exit", WAIT, |c| is_exit_of(c, last));
    for pid in &pids {
        assert!(cap.seen.iter().any(|c| is_exec_of(c, *pid)), "exec of {pid} missing");
    }
    assert_eq!(cap.stats.kernel_dropped_total(), 0);
    // Per (CPU, lane) stream, sequence numbers are consecutive from the first seen.
    let mut by_stream: std::collections::BTreeMap<(u32, u32), Vec<u64>> = Default::default();
    for c in &cap.seen {
        by_stream.entry((c.record.header.cpu, c.record.header.lane)).or_default().push(c.record.header.seq);
    }
    for ((cpu, lane), mut seqs) in by_stream {
        seqs.sort_unstable();
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0] + 1, "gap on cpu {cpu} lane {lane} without a reported drop");
        }
    }
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn probes_ignore_the_agents_own_process() {
    crate_root_check();
    let stats = std::sync::Arc::new(vigil::stats::Stats::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
    let settings = vigil::probes::ProbeSettings { probes: ProbesConfig::default(), self_tgid: std::process::id(), ..Default::default() };
    let r = vigil::probes::start(settings, tx, stats).unwrap();
    // A fork by this process would be reported (hdr.tgid = parent) unless filtered.
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    r.stop();
    let mut fork_from_self = false;
    let mut exec_of_child = false;
    while let Ok(raw) = rx.try_recv() {
        let rec = vigil::decode::decode(&raw.bytes).unwrap();
        fork_from_self |= matches!(rec.event, Event::Fork(_)) && rec.header.tgid == std::process::id();
        exec_of_child |= matches!(rec.event, Event::Exec(_)) && rec.header.tgid == pid;
    }
    assert!(!fork_from_self, "events acted by the agent itself are filtered in the kernel");
    assert!(exec_of_child, "its children are still reported");
}

fn crate_root_check() {
    vigil_tests::require_root();
    assert!(Path::new("/sys/kernel/btf/vmlinux").exists(), "kernel BTF required");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn process_started_before_the_agent_has_procfs_context() {
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    // Let the exec complete before the probes exist.
    std::thread::sleep(Duration::from_millis(100));
    let mut cap = Capture::start_default();
    child.kill().unwrap();
    child.wait().unwrap();
    let exit = cap.wait_for("exit of the pre-existing process", WAIT, |c| is_exit_of(c, pid));
    assert_eq!(str_attr(&exit.log.attributes, "vigil.context.source"), Some("procfs"));
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    assert_eq!(str_attr(&exit.log.attributes, "process.executable.path"), sleep.to_str(), "image known from /proc");
    assert!(cap.seen.iter().all(|c| !is_exec_of(c, pid)), "its exec happened before the probes");
}

/// Pin the calling thread to one CPU (so the fork record of a child forked
/// next is numbered on that CPU's stream).
fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; the
    // call only affects the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "pin to cpu {cpu}");
    }
}

fn fork_and_reap() -> u32 {
    // SAFETY: the child only calls _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // SAFETY: immediate exit of the forked child.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    child as u32
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn forced_kernel_overload_is_accounted_exactly() {
    const FORKS: usize = 20_000;
    // One page of ring buffer, and the drain held while the storm runs: the
    // kernel must drop, whatever the scheduler does.
    // Bulk families off: the invariant checked below (every drop shows as a
    // gap once a later record of the same stream arrives) needs the streams
    // to go quiet at the end, which file records from other processes on a
    // shared machine (open storms) prevent.
    let mut cap =
        Capture::start(ProbesConfig { ringbuf_kib: 4, poll_interval_ms: 20, file: false, network: false, ..ProbesConfig::default() });
    cap.hold_drain(true);
    let workers: Vec<_> = (0..2).map(|_| std::thread::spawn(|| (0..FORKS / 2).map(|_| fork_and_reap()).collect::<Vec<u32>>())).collect();
    let ours: std::collections::HashSet<u32> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert_eq!(ours.len(), FORKS);
    cap.hold_drain(false);
    // Let the ring drain, then put one record after any trailing drop on
    // every CPU stream, so every drop shows up as a gap.
    std::thread::sleep(Duration::from_millis(500));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A critical-lane record (fork) and a bulk-lane record (a file written)
    // on every CPU.
    let marker_dir = temp_dir("overload-markers");
    let markers: Vec<(u32, PathBuf)> = (0..cpus)
        .map(|cpu| {
            pin_to_cpu(cpu);
            std::thread::sleep(Duration::from_millis(50));
            let file = marker_dir.join(format!("cpu{cpu}"));
            std::fs::write(&file, b"").unwrap();
            (fork_and_reap(), file)
        })
        .collect();
    for (m, file) in &markers {
        cap.wait_for("marker fork", WAIT, |c| matches!(&c.record.event, Event::Fork(f) if f.child_tgid == *m));
        let _ = file; // bulk families are off: only the fork marks the stream
    }
    cap.stop();

    let stats = cap.stats.clone();
    let delivered_ours = cap.seen.iter().filter(|c| matches!(&c.record.event, Event::Fork(f) if ours.contains(&f.child_tgid))).count();
    let fork_drops: u64 = vigil::abi::DropCause::ALL.iter().map(|c| stats.kernel_dropped(vigil::abi::EventType::Fork, *c)).sum();
    let total_drops = stats.kernel_dropped_total();
    assert!(total_drops > 0, "the overload produced no kernel loss; nothing was tested");
    assert!(delivered_ours < FORKS, "some of our fork records must have been lost");
    assert!(delivered_ours as u64 + fork_drops >= FORKS as u64, "{delivered_ours} delivered + {fork_drops} lost < {FORKS} generated");
    // Every record the kernel output was received (no agent loss here).
    let emitted: u64 = vigil::abi::EventType::ALL.iter().map(|t| stats.kernel_emitted(*t).load(std::sync::atomic::Ordering::Relaxed)).sum();
    assert_eq!(stats.queue_full_total(), 0);
    assert_eq!(stats.received.load(std::sync::atomic::Ordering::Relaxed), emitted, "delivered == output by the kernel");
    assert_eq!(cap.seen.len() as u64, emitted);
    // Per stream, the sequence gaps are exactly the kernel's drops on that CPU.
    let by_cpu = stats.kernel_drops_by_cpu();
    let gaps = cap.mapper().tracker().gaps_by_stream.clone();
    // A record can arrive after a later number of its stream (a probe
    // preempted between numbering and output): it was counted in a gap and
    // then as late. Without such records, gaps equal drops per CPU; with
    // them, gaps minus late records equal drops overall.
    let late = cap.mapper().tracker().late;
    if late == 0 {
        for (cpu, drops) in by_cpu.iter().enumerate() {
            let dropped: u64 = drops.iter().sum();
            // Every lane of the CPU (file records travel in the bulk lane).
            let gap: u64 = gaps.iter().filter(|((c, _), _)| *c == cpu as u32).map(|(_, g)| *g).sum();
            assert_eq!(gap, dropped, "cpu {cpu}: sequence gaps {gap} != kernel drops {dropped}");
        }
    }
    let all_gaps: u64 = gaps.values().sum();
    assert_eq!(all_gaps - late, total_drops, "gaps {all_gaps} - late {late} != kernel drops {total_drops}");
    // The loss records report exactly the kernel's drops, per CPU and type.
    let losses: Vec<_> = cap.mapper().loss_records(vigil::clock::unix_now_ns()).iter().map(|l| l.decode().unwrap()).collect();
    let reported: u64 = losses
        .iter()
        .filter(|l| str_attr(&l.attributes, "vigil.loss.stage") == Some("kernel"))
        .map(|l| int_attr(&l.attributes, "vigil.loss.count").unwrap() as u64)
        .sum();
    assert_eq!(reported, total_drops, "loss records == kernel drops");
    for l in &losses {
        assert_eq!(l.event_name, "vigil.telemetry.loss");
        assert_eq!(l.severity_text, "WARN");
        assert_eq!(
            int_attr(&l.attributes, "vigil.loss.count"),
            int_attr(&l.attributes, "vigil.loss.total"),
            "first window: count == total"
        );
    }
    let fork_reported: u64 = losses
        .iter()
        .filter(|l| str_attr(&l.attributes, "vigil.loss.event_name") == Some("vigil.process.fork"))
        .map(|l| int_attr(&l.attributes, "vigil.loss.count").unwrap() as u64)
        .sum();
    assert_eq!(fork_reported, fork_drops);
    eprintln!("overload: {FORKS} forks, {delivered_ours} of ours delivered, {total_drops} records lost in the kernel ({fork_drops} forks)");
}

/// The leaf end of `path` that the probes keep under a `limit`-byte path
/// limit: whole "/component"s from the end, as many as fit.
fn kept_tail(path: &Path, limit: usize) -> Vec<u8> {
    let bytes = path.as_os_str().as_bytes();
    let mut start = bytes.len();
    for (i, _) in bytes.iter().enumerate().rev().filter(|(_, b)| **b == b'/') {
        if bytes.len() - i > limit {
            break;
        }
        start = i;
    }
    bytes[start..].to_vec()
}

/// Spawn a freshly copied executable. A test forking in parallel can hold
/// the copy's write descriptor for a moment (fork duplicates it), which
/// makes exec fail with ETXTBSY: retry then.
fn spawn_copied(cmd: &mut Command) -> std::process::Child {
    for _ in 0..100 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(Duration::from_millis(10)),
            r => return r.unwrap(),
        }
    }
    panic!("{cmd:?}: text file busy for 1 s");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn path_limit_keeps_the_leaf_end_with_the_exact_size() {
    const LIMIT: u32 = 64;
    let mut cap = Capture::start(ProbesConfig { path_max_bytes: LIMIT, ringbuf_kib: 4096, poll_interval_ms: 5, ..ProbesConfig::default() });
    let root = temp_dir("pathmax");
    let dir = root.join("a-directory-name-of-forty-bytes-xxxxxxxx").join("another-directory-name-of-forty-bytes-yy");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("vigil-true");
    std::fs::copy("/bin/true", &exe).unwrap();
    let (exe_len, cwd_len) = (exe.as_os_str().len(), dir.as_os_str().len());
    assert!(cwd_len > LIMIT as usize + 20, "cwd is {cwd_len} bytes");
    let (exe_tail, cwd_tail) = (kept_tail(&exe, LIMIT as usize), kept_tail(&dir, LIMIT as usize));
    assert_eq!(exe_tail, b"/another-directory-name-of-forty-bytes-yy/vigil-true");
    assert_eq!(cwd_tail, b"/another-directory-name-of-forty-bytes-yy");

    let mut child = spawn_copied(Command::new(&exe).current_dir(&dir));
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let c = cap.wait_for("exec record", WAIT, |c| is_exec_of(c, pid));
    let Event::Exec(e) = &c.record.event else { unreachable!() };
    // Paths: the leaf end, whole components, exact original size.
    assert!(e.exe.truncated);
    assert_eq!(e.exe.bytes.as_deref(), Some(&exe_tail[..]));
    assert!(e.exe.bytes.as_ref().unwrap().ends_with(b"/vigil-true"));
    assert_eq!(e.exe.reason, Some(Reason::SizeLimit));
    assert_eq!(e.exe.original_size, Some(exe_len as u64));
    assert!(e.cwd.truncated);
    assert_eq!(e.cwd.bytes.as_deref(), Some(&cwd_tail[..]));
    assert_eq!(e.cwd.reason, Some(Reason::SizeLimit));
    assert_eq!(e.cwd.original_size, Some(cwd_len as u64));
    // The filename as passed to exec: the prefix.
    assert!(e.filename.truncated);
    assert_eq!(e.filename.bytes.as_deref(), Some(&exe.as_os_str().as_bytes()[..LIMIT as usize]));
    assert_eq!(e.filename.reason, Some(Reason::SizeLimit));
    assert_eq!(e.filename.original_size, Some(exe_len as u64));
    assert!(!e.args.truncated);

    let l = &c.log;
    let cut = str_array_attr(&l.attributes, "vigil.truncated_fields").unwrap();
    for key in ["process.executable.path", "process.working_directory", "vigil.process.exec.filename"] {
        assert!(cut.iter().any(|k| k == key), "{key} not in {cut:?}");
        assert_eq!(str_attr(&l.attributes, &format!("vigil.truncated_reason.{key}")), Some("size_limit"), "{key}");
    }
    assert_eq!(int_attr(&l.attributes, "vigil.original_size.process.executable.path"), Some(exe_len as i64));
    assert_eq!(int_attr(&l.attributes, "vigil.original_size.process.working_directory"), Some(cwd_len as i64));
    assert_eq!(int_attr(&l.attributes, "vigil.original_size.vigil.process.exec.filename"), Some(exe_len as i64));
    assert_eq!(str_attr(&l.attributes, "process.executable.path").map(str::as_bytes), Some(&exe_tail[..]));
    assert_eq!(str_attr(&l.attributes, "process.executable.name"), Some("vigil-true"));
    assert_eq!(str_attr(&l.attributes, "process.working_directory").map(str::as_bytes), Some(&cwd_tail[..]));

    // A leaf name longer than the limit: nothing of the path fits, the value
    // is empty and still flagged with its exact size.
    let long = dir.join(format!("vigil-{}", "n".repeat(70)));
    std::fs::copy("/bin/true", &long).unwrap();
    let mut child = spawn_copied(&mut Command::new(&long));
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let c = cap.wait_for("exec of the long name", WAIT, |c| is_exec_of(c, pid));
    let Event::Exec(e) = &c.record.event else { unreachable!() };
    assert!(e.exe.truncated);
    assert_eq!(e.exe.bytes.as_deref(), Some(&b""[..]));
    assert_eq!(e.exe.original_size, Some(long.as_os_str().len() as u64));
    assert_eq!(e.exe.reason, Some(Reason::SizeLimit));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn run_time_stats_stay_off_by_default() {
    if std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|v| v.trim() == "1") {
        eprintln!("SKIPPED: kernel.bpf_stats_enabled=1 was set by someone else, run time is counted anyway");
        return;
    }
    let mut cap = Capture::start_default();
    let c = Command::new("/bin/true").spawn().unwrap();
    let pid = c.id();
    let _ = { c }.wait();
    cap.wait_for("exec", WAIT, |c| is_exec_of(c, pid));
    // The receiver reads the program counters every 500 ms.
    let s = &cap.stats;
    let deadline = std::time::Instant::now() + WAIT;
    while s.program_recursion_misses(EventType::Exec).is_none() {
        assert!(std::time::Instant::now() < deadline, "program stats not read: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!s.bpf_run_stats_enabled(), "probes.run_time_stats is off by default");
    assert_eq!(s.program_run_count(EventType::Exec), None, "no run counts without run-time statistics");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn program_run_counts_and_recursion_misses_are_read() {
    let mut cap = Capture::start(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, run_time_stats: true, ..ProbesConfig::default() });
    let mut last = 0;
    for _ in 0..5 {
        let mut c = Command::new("/bin/true").spawn().unwrap();
        last = c.id();
        c.wait().unwrap();
    }
    cap.wait_for("last exec", WAIT, |c| is_exec_of(c, last));
    // The receiver refreshes the program counters every 500 ms.
    let s = &cap.stats;
    let deadline = std::time::Instant::now() + WAIT;
    while !(s.program_recursion_misses(EventType::Exec).is_some()
        && (!s.bpf_run_stats_enabled() || s.program_run_count(EventType::Exec) >= Some(5)))
    {
        assert!(std::time::Instant::now() < deadline, "program stats not read: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // As root, bpf_enable_stats() is allowed (CAP_SYS_ADMIN).
    assert!(s.bpf_run_stats_enabled(), "BPF run-time statistics enabled");
    assert!(s.program_run_count(EventType::Exec).unwrap() >= 5, "the exec program ran for our execs");
    assert!(s.program_run_time_ns(EventType::Exec).unwrap() > 0);
    assert!(s.program_run_count(EventType::Fork).unwrap() >= 5, "fork ran too");
    assert_eq!(s.program_recursion_misses(EventType::Exec), Some(0), "no run of the exec program skipped");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn leader_leaving_early_gives_one_exit_with_the_process_code() {
    let mut cap = Capture::start_default();
    // The main thread calls pthread_exit; a second thread lives on and ends
    // the process with exit code 5.
    let script = "import threading, os, time, ctypes\n\
                  threading.Thread(target=lambda: (time.sleep(0.3), os._exit(5))).start()\n\
                  ctypes.CDLL(None).pthread_exit(None)\n";
    let mut child = Command::new("python3").args(["-c", script]).spawn().unwrap();
    let pid = child.id();
    assert_eq!(child.wait().unwrap().code(), Some(5));
    cap.wait_for("exit record", WAIT, |c| is_exit_of(c, pid));
    let exits = cap.all_matching(Duration::from_millis(300), |c| is_exit_of(c, pid));
    assert_eq!(exits.len(), 1, "exactly one exit record for the process: {exits:#?}");
    assert_eq!(int_attr(&exits[0].log.attributes, "process.exit.code"), Some(5));
    assert_eq!(str_attr(&exits[0].log.attributes, "vigil.context.source"), Some("observed"), "context kept until the real end");
    let Event::Exit(x) = &exits[0].record.event else { unreachable!() };
    assert!(x.group_dead);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn unknown_parent_is_rebuilt_from_proc_and_reconciled() {
    // The shell starts before the capture, which skips the /proc snapshot:
    // its later fork names a parent the table does not know. It waits on
    // its stdin (the `read` builtin does not fork) until the probes are
    // attached, however long loading takes on a busy machine. It then
    // waits on its stdin again (not `sleep`: the shell would exec it as its
    // last command, and a reconciliation that sees the new image before its
    // exec record is mapped rightly counts the shell as a missed exec).
    let mut sh = Command::new("/bin/sh").args(["-c", "read go; /bin/true; read done"]).stdin(Stdio::piped()).spawn().unwrap();
    let sh_pid = sh.id();
    let mut cap = Capture::start_without_snapshot(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, ..ProbesConfig::default() });
    let mut stdin = sh.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let fork =
        cap.wait_for("fork by the unknown shell", WAIT, |c| matches!(&c.record.event, Event::Fork(_)) && c.record.header.tgid == sh_pid);
    assert_eq!(str_attr(&fork.log.attributes, "vigil.context.source"), Some("rebuilt"), "parent context rebuilt from /proc");
    let shell = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(str_attr(&fork.log.attributes, "process.executable.path"), shell.to_str());
    // Reconciling finds the (settled) processes that predate the capture,
    // pid 1 among them, as missed, and counts them.
    let r = cap.mapper().reconcile(vigil::procfs::snapshot(Path::new("/proc")));
    assert!(r.missed_exec.contains(&1), "pid 1 predates the capture: {:?}", r.missed_exec);
    assert!(!r.missed_exec.contains(&sh_pid), "the shell was already rebuilt");
    assert_eq!(cap.stats.missed_exec.load(std::sync::atomic::Ordering::Relaxed), r.missed_exec.len() as u64);
    let losses: Vec<_> = cap.mapper().loss_records(vigil::clock::unix_now_ns()).iter().map(|l| l.decode().unwrap()).collect();
    let missed = losses.iter().find(|l| str_attr(&l.attributes, "error.type") == Some("missed_exec")).expect("missed_exec loss record");
    assert_eq!(int_attr(&missed.attributes, "vigil.loss.count"), Some(r.missed_exec.len() as i64));
    stdin.write_all(b"done\n").unwrap();
    drop(stdin);
    sh.wait().unwrap();
}

mod spans {
    use super::*;
    use vigil::spans::{EndReason, FinishedSpan, StartSource};

    fn of_pid(spans: &[FinishedSpan], pid: u32) -> Vec<FinishedSpan> {
        let mut v: Vec<FinishedSpan> = spans.iter().filter(|s| s.span.key.pid == pid).cloned().collect();
        v.sort_by_key(|s| s.span.start_unix_ns);
        v
    }

    /// `sh -c 'sh -c "sleep 0.1; true"; true'`: every image is a span, each
    /// fork child under its parent's image, each exec under the image it
    /// replaced; children inside their parents; one trace.
    #[test]
    #[ignore = "needs root: run by ci/test.sh"]
    fn shell_pipeline_is_a_span_tree() {
        let mut cap = Capture::start_default();
        let mut child = Command::new("/bin/sh").args(["-c", "sh -c \"sleep 0.1; true\"; true"]).spawn().unwrap();
        let a = child.id();
        assert!(child.wait().unwrap().success());
        let a_exec = cap.wait_for_span("the outer shell", WAIT, |s| s.span.key.pid == a && s.reason == EndReason::Exit);
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let sh_name = sh.file_name().unwrap().to_str().unwrap().to_owned();
        // The outer shell: a fork span (this test's image), then the shell image.
        let a_spans = of_pid(&cap.spans, a);
        assert_eq!(a_spans.len(), 2, "{a_spans:#?}");
        let (a_fork, a_sh) = (&a_spans[0], &a_spans[1]);
        assert_eq!((a_fork.span.start_source, a_fork.reason), (StartSource::Fork, EndReason::Exec));
        assert_eq!(a_sh.span.span_id, a_exec.span.span_id);
        assert_eq!(a_sh.span.name, sh_name);
        assert_eq!(a_sh.span.parent_span_id, Some(a_fork.span.span_id), "exec: child of the image it replaced");
        assert_eq!(a_sh.exit_code, Some(0));
        let own = cap.mapper().span_of(std::process::id()).expect("this process has a span (from /proc)");
        assert_eq!(a_fork.span.parent_span_id, Some(own.1), "fork: child of the parent's current image");
        // The inner shell B (forked by A) and sleep C (forked by B).
        let b_fork = cap
            .spans
            .iter()
            .find(|s| s.span.parent_span_id == Some(a_sh.span.span_id) && s.span.start_source == StartSource::Fork)
            .cloned()
            .expect("B forked by the outer shell");
        let b = b_fork.span.key.pid;
        let b_spans = of_pid(&cap.spans, b);
        let b_sh = b_spans.iter().find(|s| s.span.start_source == StartSource::Exec).expect("B execs the shell");
        assert_eq!(b_sh.span.parent_span_id, Some(b_fork.span.span_id));
        let c_fork = cap
            .spans
            .iter()
            .find(|s| s.span.parent_span_id == Some(b_sh.span.span_id) && s.span.start_source == StartSource::Fork)
            .expect("C forked by B");
        let c_sleep = of_pid(&cap.spans, c_fork.span.key.pid).into_iter().find(|s| s.span.name == "sleep").expect("C execs sleep");
        assert_eq!(c_sleep.span.parent_span_id, Some(c_fork.span.span_id));
        assert_eq!(c_sleep.exit_code, Some(0));
        assert_eq!(c_sleep.span.argv.as_deref(), Some(&["sleep".to_owned(), "0.1".to_owned()][..]));
        // One trace; children start after and end before their parents.
        for s in [a_fork, a_sh, &b_fork, b_sh, c_fork, &c_sleep] {
            assert_eq!(s.span.trace_id, own.0, "{} is in this process's trace", s.span.name);
            assert!(s.span.start_unix_ns <= s.end_unix_ns, "{} starts before it ends", s.span.name);
        }
        for (parent, child) in [(a_sh, &b_fork), (b_sh, c_fork)] {
            assert!(child.span.start_unix_ns >= parent.span.start_unix_ns, "{} starts inside {}", child.span.name, parent.span.name);
        }
        assert!(c_sleep.end_unix_ns <= b_sh.end_unix_ns && b_sh.end_unix_ns <= a_sh.end_unix_ns, "children end inside their parents");
        assert!(c_sleep.end_unix_ns - c_sleep.span.start_unix_ns >= 100_000_000, "sleep 0.1 lasts 100 ms");
        // Log records carry the span of the process that caused them.
        let exec_log = cap.seen.iter().find(|c| is_exec_of(c, c_fork.span.key.pid)).expect("exec record of sleep");
        assert_eq!(exec_log.log.span_id, c_sleep.span.span_id.to_vec());
        assert_eq!(exec_log.log.trace_id, c_sleep.span.trace_id.to_vec());
    }

    #[test]
    #[ignore = "needs root: run by ci/test.sh"]
    fn killed_process_span_is_an_error() {
        let mut cap = Capture::start_default();
        let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        cap.wait_for("exec of sleep", WAIT, |c| is_exec_of(c, pid));
        child.kill().unwrap();
        child.wait().unwrap();
        let s = cap.wait_for_span("sleep", WAIT, |s| s.span.key.pid == pid && s.reason == EndReason::Exit);
        assert_eq!(s.signal, Some(9));
        let otlp = vigil::otel::spans::to_span(&s, true);
        assert_eq!(otlp.status.map(|st| st.code), Some(opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32));
    }

    #[test]
    #[ignore = "needs root: run by ci/test.sh"]
    fn restart_keeps_span_ids_and_closes_spans_of_processes_gone_meanwhile() {
        let dir = temp_dir("spans-state");
        let state = dir.join("open-spans.json");
        let mut survivor = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let mut victim = Command::new("/bin/sleep").arg("31").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // First run: both processes predate vigil; vigil stops.
        let mut first = Capture::start_default();
        let survivor_id = first.mapper().span_of(survivor.id()).expect("span from /proc");
        let victim_id = first.mapper().span_of(victim.id()).expect("span from /proc");
        first.mapper().end_spans_at_shutdown(Some(&state));
        first.stop();
        let shut = first.spans.clone();
        assert!(shut.iter().any(|s| s.span.span_id == survivor_id.1 && s.reason == EndReason::AgentShutdown && s.reason.synthetic()));
        drop(first);
        // While vigil is stopped, one process exits.
        victim.kill().unwrap();
        victim.wait().unwrap();
        // Second run: the survivor has the same ids; the victim's span ends
        // with a synthetic exit_lost.
        let mut second = Capture::start_default();
        assert_eq!(second.mapper().span_of(survivor.id()), Some(survivor_id), "same trace and span id after a restart");
        second.mapper().resume_saved_spans(&state);
        let lost = second.mapper().take_finished_spans();
        let victim_span = lost.iter().find(|s| s.span.span_id == victim_id.1).expect("the victim's span is closed");
        assert_eq!(victim_span.reason, EndReason::ExitLost);
        assert!(victim_span.reason.synthetic());
        assert!(lost.iter().all(|s| s.span.span_id != survivor_id.1), "the survivor's span stays open");
        assert_eq!(second.mapper().span_of(survivor.id()), Some(survivor_id), "restored with the same ids");
        survivor.kill().unwrap();
        survivor.wait().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// The exec of `/bin/true` by `pid` (not the exec of the shell before it).
fn is_exec_of_true(c: &Captured, pid: u32) -> bool {
    is_exec_of(c, pid) && str_attr(&c.log.attributes, "process.executable.name") == Some("true")
}

/// Run `/bin/true` inside `cgroup` (the shell moves itself there before it
/// execs) and return its pid.
fn exec_true_in(cgroup: &Path) -> u32 {
    let script = format!("echo $$ > '{}/cgroup.procs' && exec /bin/true", cgroup.display());
    let mut child = Command::new("/bin/sh").args(["-c", &script]).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "moving into {} failed", cgroup.display());
    pid
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn exec_in_container_cgroups_carries_the_workload() {
    let root = vigil::procfs::cgroup2_root().expect("a cgroup2 hierarchy is mounted");
    let id = format!("{:0>64}", format!("{:x}{:x}", std::process::id(), vigil::clock::unix_now_ns()));
    let top = format!("vigil-test-{}.slice", std::process::id());
    let mut cap = Capture::start_default();

    // Docker (systemd cgroup driver).
    let (docker_cg, docker_dir) = TestCgroups::create(&root, &format!("{top}/docker-{id}.scope"));
    // The ids of cgroups made after the capture started are only known after a rescan.
    cap.mapper().cgroups().refresh_blocking();
    let pid = exec_true_in(&docker_dir);
    let exec = cap.wait_for("exec of /bin/true in the docker cgroup", WAIT, |c| is_exec_of_true(c, pid));
    let l = &exec.log.attributes;
    assert_eq!(str_attr(l, "process.linux.cgroup"), Some(format!("/{top}/docker-{id}.scope").as_str()));
    assert_eq!(str_attr(l, "container.id"), None, "the workload is on the Resource, not the record");
    let w = exec.workload();
    assert_eq!(str_attr(w, "container.id"), Some(id.as_str()));
    assert_eq!(str_attr(w, "container.runtime.name"), Some("docker"));
    assert_eq!(str_attr(w, "k8s.pod.uid"), None);
    assert_eq!(str_attr(l, "user.name"), Some("root"), "uid 0 is root in /etc/passwd");
    let exit = cap.wait_for("exit record in the docker cgroup", WAIT, |c| is_exit_of(c, pid));
    assert_eq!(str_attr(exit.workload(), "container.id"), Some(id.as_str()), "exit carries the workload from the process table");
    drop(docker_cg);

    // Kubernetes (systemd driver, containerd).
    let uid = "6c2b0b7e-1f2a-4c3d-9e8f-0a1b2c3d4e5f";
    let pod = format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice", uid.replace('-', "_"));
    let (k8s_cg, k8s_dir) = TestCgroups::create(&root, &format!("{top}/{pod}/cri-containerd-{id}.scope"));
    cap.mapper().cgroups().refresh_blocking();
    let pid = exec_true_in(&k8s_dir);
    let exec = cap.wait_for("exec of /bin/true in the kubepods cgroup", WAIT, |c| is_exec_of_true(c, pid));
    let w = exec.workload();
    assert_eq!(str_attr(w, "container.id"), Some(id.as_str()));
    assert_eq!(str_attr(w, "container.runtime.name"), Some("containerd"));
    assert_eq!(str_attr(w, "k8s.pod.uid"), Some(uid));
    assert_eq!(str_attr(w, "vigil.k8s.pod.qos_class"), Some("besteffort"));
    drop(k8s_cg);
    assert!(!root.join(&top).exists(), "test cgroups removed");
}

/// Processes in cgroups laid out as each runtime lays them out, plus a
/// systemd service and a plain session: their records, encoded as one
/// request, arrive in one ResourceLogs per workload, each Resource holding
/// the host attributes and that workload's, and nothing else in it.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn records_arrive_under_one_resource_per_workload() {
    let root = vigil::procfs::cgroup2_root().expect("a cgroup2 hierarchy is mounted");
    let top = format!("vigil-test-rs-{}.slice", std::process::id());
    let base = vigil::clock::unix_now_ns();
    let id = |n: u64| format!("{:064x}", base + n);
    let uid = "0b3e7a52-9d41-4c6e-8a2f-5f7e9c1d3b20";
    let u = uid.replace('-', "_");
    // (cgroup under `top`, expected workload attributes)
    let layouts: Vec<(String, Vec<(&str, String)>)> = vec![
        (format!("docker/{}", id(1)), vec![("container.id", id(1)), ("container.runtime.name", "docker".into())]),
        (format!("system.slice/docker-{}.scope", id(2)), vec![("container.id", id(2)), ("container.runtime.name", "docker".into())]),
        (
            format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{}.scope", id(3)),
            vec![
                ("container.id", id(3)),
                ("container.runtime.name", "containerd".into()),
                ("k8s.pod.uid", uid.into()),
                ("vigil.k8s.pod.qos_class", "burstable".into()),
            ],
        ),
        (
            format!("kubepods.slice/kubepods-pod{u}.slice/crio-{}.scope", id(4)),
            vec![
                ("container.id", id(4)),
                ("container.runtime.name", "cri-o".into()),
                ("k8s.pod.uid", uid.into()),
                ("vigil.k8s.pod.qos_class", "guaranteed".into()),
            ],
        ),
        (
            format!("kubepods/besteffort/pod{uid}/{}", id(5)),
            vec![("container.id", id(5)), ("k8s.pod.uid", uid.into()), ("vigil.k8s.pod.qos_class", "besteffort".into())],
        ),
        (format!("machine.slice/libpod-{}.scope", id(6)), vec![("container.id", id(6)), ("container.runtime.name", "podman".into())]),
        ("system.slice/vigil-test-app.service".into(), vec![("vigil.systemd.unit", "vigil-test-app.service".into())]),
        ("user.slice/session-vigil.scope".into(), vec![]),
    ];
    let mut cap = Capture::start_default();
    let mut made = Vec::new();
    let mut dirs = Vec::new();
    for (rel, _) in &layouts {
        let (cg, dir) = TestCgroups::create(&root, &format!("{top}/{rel}"));
        made.push(cg);
        dirs.push(dir);
    }
    cap.mapper().cgroups().refresh_blocking();
    let pids: Vec<u32> = dirs.iter().map(|d| exec_true_in(d)).collect();
    let mut batch = vigil::pipeline::LogBatch::default();
    for pid in &pids {
        let exec = cap.wait_for("exec of /bin/true", WAIT, |c| is_exec_of_true(c, *pid));
        let exit = cap.wait_for("exit of /bin/true", WAIT, |c| is_exit_of(c, *pid));
        batch.push(exec.resource.clone(), exec.encoded.clone());
        batch.push(exit.resource.clone(), exit.encoded.clone());
    }
    // Later cgroups sit inside directories the earlier ones made.
    while let Some(cg) = made.pop() {
        drop(cg);
    }
    let host = vigil::otel::resource::host_resource(&vigil::host::HostInfo::detect(), "test-instance", &[]);
    let req = vigil::export::RequestEncoder::new(&host).encode_groups(&batch.groups()).decode().expect("decodes");
    assert_eq!(req.resource_logs.len(), layouts.len(), "one ResourceLogs per workload");
    for ((rel, want), pid) in layouts.iter().zip(&pids) {
        let rl = req
            .resource_logs
            .iter()
            .find(|rl| rl.scope_logs[0].log_records.iter().any(|l| int_attr(&l.attributes, "process.pid") == Some(i64::from(*pid))))
            .unwrap_or_else(|| panic!("no ResourceLogs holds pid {pid} ({rel})"));
        let records = &rl.scope_logs[0].log_records;
        let events: Vec<&str> = records.iter().map(|l| l.event_name.as_str()).collect();
        assert_eq!(events, ["vigil.process.exec", "vigil.process.exit"], "{rel}: its exec and exit, and nothing else");
        let attrs = &rl.resource.as_ref().expect("resource").attributes;
        let (host_part, workload) = attrs.split_at(host.attributes.len());
        assert_eq!(host_part, host.attributes.as_slice(), "{rel}: the host attributes first");
        let got: Vec<(&str, String)> =
            workload.iter().map(|kv| (kv.key.as_str(), str_attr(std::slice::from_ref(kv), &kv.key).expect("string").to_owned())).collect();
        assert_eq!(&got, want, "{rel}");
    }
    assert!(!root.join(&top).exists(), "test cgroups removed");
}

/// A process in a new pid namespace is its namespace's pid 1: the exec
/// record carries that number and the namespace's inode (numbers[level] of
/// its struct pid), besides its pid in the initial namespace.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn exec_in_a_new_pid_namespace_carries_its_namespace_pid() {
    use std::os::unix::fs::MetadataExt;
    let mut cap = Capture::start_default();
    let ours = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let unshare = Command::new("unshare").args(["--pid", "--fork", "/bin/true"]).spawn().unwrap();
    let parent = unshare.id();
    assert!(unshare.wait_with_output().unwrap().status.success());
    let rec = cap.wait_for("exec of /bin/true in the new namespace", WAIT, |c| {
        matches!(&c.record.event, Event::Exec(e) if e.vpid == 1 && e.ppid == parent && e.exe.bytes.as_deref().is_some_and(|b| b.ends_with(b"/true")))
    });
    let Event::Exec(e) = &rec.record.event else { unreachable!() };
    assert_ne!(rec.record.header.tgid, 1, "its pid in the initial namespace");
    assert_ne!(u64::from(e.pidns), ours, "a namespace of its own");
    assert_eq!(int_attr(&rec.log.attributes, "process.vpid"), Some(1));
    assert_eq!(int_attr(&rec.log.attributes, "vigil.process.pid_namespace.inode"), Some(i64::from(e.pidns)));
}
