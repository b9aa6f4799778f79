//! Privileged tests: the real probes in this kernel, real actions, exact
//! fields (trigger -> assert presence -> assert each field).
//!
//! Each test is `#[ignore]`d so that without root it is reported as
//! ignored, never as passed; `ci/test.sh` runs them as root with
//! `--ignored`. Tests run in parallel, each with its own probes, and pick
//! their records out by the pid of the process they started.
#![allow(clippy::unwrap_used)]

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vigil::abi::Reason;
use vigil::config::ProbesConfig;
use vigil::decode::Event;
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr};
use vigil_tests::capture::{Capture, Captured};

const WAIT: Duration = Duration::from_secs(10);

fn is_exec_of(c: &Captured, pid: u32) -> bool {
    matches!(c.record.event, Event::Exec(_)) && c.record.header.tgid == pid
}

fn is_exit_of(c: &Captured, pid: u32) -> bool {
    matches!(c.record.event, Event::Exit(_)) && c.record.header.tgid == pid
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
    let mut cap = Capture::start_default();
    let mut dir = temp_dir("longpath");
    for i in 0..40 {
        dir.push(format!("level-{i:02}-dir"));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("vigil-true");
    std::fs::copy("/bin/true", &exe).unwrap();
    let exe_len = exe.as_os_str().len();
    assert!(exe_len > 300, "path is {exe_len} bytes");
    let mut child = Command::new(&exe).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let c = cap.wait_for("exec record", WAIT, |c| is_exec_of(c, pid));
    let Event::Exec(e) = &c.record.event else { unreachable!() };
    assert_eq!(e.exe.bytes.as_deref(), Some(exe.as_os_str().as_bytes()), "complete {exe_len}-byte path");
    assert!(!e.exe.truncated);
    assert_eq!(str_attr(&c.log.attributes, "process.executable.path"), exe.to_str());
    assert_eq!(str_attr(&c.log.attributes, "process.executable.name"), Some("vigil-true"));
    std::fs::remove_dir_all(temp_dir("longpath")).unwrap();
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
    // Per CPU stream, sequence numbers are consecutive from the first seen.
    let mut by_cpu: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for c in &cap.seen {
        by_cpu.entry(c.record.header.cpu).or_default().push(c.record.header.seq);
    }
    for (cpu, mut seqs) in by_cpu {
        seqs.sort_unstable();
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0] + 1, "gap on cpu {cpu} without a reported drop");
        }
    }
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn probes_ignore_the_agents_own_process() {
    crate_root_check();
    let stats = std::sync::Arc::new(vigil::stats::Stats::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
    let settings = vigil::probes::ProbeSettings { probes: ProbesConfig::default(), self_tgid: std::process::id() };
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
