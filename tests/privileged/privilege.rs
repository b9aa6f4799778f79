//! Privilege events: credential and namespace changes, done for real in a
//! forked child (the test process itself keeps its credentials).

use super::{in_child, WAIT};
use std::os::unix::fs::MetadataExt;
use vigil::abi::{EventType, LANE_CRITICAL};
use vigil::decode::Event;
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr};
use vigil_tests::capture::{Capture, Captured};

fn records(cap: &mut Capture, event: EventType, pid: u32, n: usize) -> Vec<Captured> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = cap.all_matching(std::time::Duration::from_millis(20), |c| c.record.header.event == event && c.record.header.tgid == pid);
        if got.len() >= n {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {n} {event:?} records of {pid}", got.len());
    }
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn setresuid_and_a_denied_setuid_carry_old_and_new_credentials() {
    let mut cap = Capture::start_default();
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls on this (single-threaded) child.
        unsafe {
            if libc::syscall(libc::SYS_setresuid, 65534, 65534, -1) != 0 {
                return 10;
            }
            // Real and effective uid are unprivileged now, the saved one is
            // still 0: setuid(0) is allowed (back to euid 0 only)...
            // then drop the saved uid too and try again, which must fail.
            if libc::syscall(libc::SYS_setresuid, -1, -1, 65534) != 0 {
                return 11;
            }
            if libc::syscall(libc::SYS_setuid, 0) == 0 {
                return 12;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let recs = records(&mut cap, EventType::PrivilegeCredChange, pid, 3);
    let first = &recs[0];
    assert_eq!(first.record.header.lane, LANE_CRITICAL);
    let Event::CredChange(c) = &first.record.event else { unreachable!() };
    assert_eq!(c.sys.ret, 0);
    assert_eq!(c.requested, [65534, 65534, u32::MAX]);
    assert_eq!((c.old_creds.uid, c.old_creds.euid, c.old_creds.suid, c.old_creds.fsuid), (0, 0, 0, 0));
    assert_eq!((c.new_creds.uid, c.new_creds.euid, c.new_creds.suid, c.new_creds.fsuid), (65534, 65534, 0, 65534));
    assert_ne!(c.old_caps.effective, 0);
    assert_eq!(c.new_caps.effective, 0, "an unprivileged euid has no effective capabilities");
    assert_eq!(c.new_caps.permitted, c.old_caps.permitted, "kept while the saved uid is 0");
    let l = &first.log.attributes;
    assert_eq!(first.log.event_name, "vigil.privilege.cred_change");
    assert_eq!(str_attr(l, "vigil.syscall"), Some("setresuid"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_setresuid"));
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["65534", "65534", "-1"]);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["uid", "euid", "fsuid", "cap_effective"]);
    assert_eq!(int_attr(l, "vigil.privilege.old.euid"), Some(0));
    assert_eq!(int_attr(l, "vigil.privilege.new.euid"), Some(65534));
    assert_eq!(int_attr(l, "vigil.privilege.new.suid"), Some(0));
    assert_eq!(int_attr(l, "vigil.privilege.new.cap_effective"), Some(0));
    assert_eq!(str_attr(l, "error.type"), None);

    let denied = &recs[2];
    let Event::CredChange(d) = &denied.record.event else { unreachable!() };
    assert_eq!(str_attr(&denied.log.attributes, "vigil.syscall"), Some("setuid"));
    assert_eq!(d.sys.errno(), Some(libc::EPERM));
    assert_eq!(str_attr(&denied.log.attributes, "error.type"), Some("EPERM"));
    assert_eq!(d.requested, [0]);
    assert_eq!(d.old_creds, d.new_creds, "a refused call changes nothing");
    assert_eq!(str_array_attr(&denied.log.attributes, "vigil.privilege.changed").unwrap(), Vec::<String>::new());
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn capset_dropping_every_capability() {
    let mut cap = Capture::start_default();
    let (pid, code) = in_child(|| {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let hdr = Header { version: 0x2008_0522, pid: 0 };
        let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
        // SAFETY: capset with a v3 header and two data elements.
        unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) as i32 }
    });
    assert_eq!(code, 0);
    let recs = records(&mut cap, EventType::PrivilegeCredChange, pid, 1);
    let Event::CredChange(c) = &recs[0].record.event else { unreachable!() };
    assert_eq!(c.sys.ret, 0);
    assert!(c.requested.is_empty());
    assert_ne!(c.old_caps.permitted, 0);
    assert_eq!((c.new_caps.effective, c.new_caps.permitted, c.new_caps.inheritable), (0, 0, 0));
    assert_eq!(c.old_creds, c.new_creds);
    let l = &recs[0].log.attributes;
    assert_eq!(str_attr(l, "vigil.syscall"), Some("capset"));
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["cap_effective", "cap_permitted"]);
    assert_eq!(int_attr(l, "vigil.privilege.new.cap_permitted"), Some(0));
}

fn ns_inode(kind: &str) -> u32 {
    std::fs::metadata(format!("/proc/self/ns/{kind}")).unwrap().ino() as u32
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn unshare_and_setns_report_namespaces_before_and_after() {
    let mut cap = Capture::start_default();
    let (uts, net, mnt) = (ns_inode("uts"), ns_inode("net"), ns_inode("mnt"));
    let path = std::ffi::CString::new("/proc/self/ns/uts").unwrap();
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls in the child.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return 20;
            }
            if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS | libc::CLONE_NEWNET) != 0 {
                return 21;
            }
            // Back to the original UTS namespace through the saved descriptor.
            if libc::syscall(libc::SYS_setns, fd, libc::CLONE_NEWUTS) != 0 {
                return 22;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let recs = records(&mut cap, EventType::PrivilegeNamespace, pid, 2);
    let Event::Namespace(u) = &recs[0].record.event else { unreachable!() };
    assert_eq!(u.sys.ret, 0);
    assert_eq!(u.flags, (libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as u32);
    assert_eq!(u.fd, None);
    assert_eq!((u.old_ns[1], u.old_ns[4], u.old_ns[0]), (uts, net, mnt), "before: the parent's namespaces");
    assert_ne!(u.new_ns[1], uts);
    assert_ne!(u.new_ns[4], net);
    assert_eq!(u.new_ns[0], mnt, "mount namespace untouched");
    let l = &recs[0].log.attributes;
    assert_eq!(recs[0].log.event_name, "vigil.privilege.namespace");
    assert_eq!(str_attr(l, "vigil.syscall"), Some("unshare"));
    assert_eq!(str_array_attr(l, "vigil.namespace.types").unwrap(), ["uts", "net"]);
    assert_eq!(str_attr(l, "vigil.namespace.types_source"), Some("syscall_argument"));
    assert_eq!(str_array_attr(l, "vigil.namespace.changed").unwrap(), ["uts", "net"]);
    assert_eq!(int_attr(l, "vigil.namespace.old.uts"), Some(i64::from(uts)));
    assert_eq!(int_attr(l, "vigil.namespace.new.net"), Some(i64::from(u.new_ns[4])));

    let Event::Namespace(s) = &recs[1].record.event else { unreachable!() };
    assert_eq!(str_attr(&recs[1].log.attributes, "vigil.syscall"), Some("setns"));
    assert_eq!(s.flags, libc::CLONE_NEWUTS as u32);
    assert!(s.fd.is_some());
    assert_eq!(s.old_ns[1], u.new_ns[1]);
    assert_eq!(s.new_ns[1], uts, "back in the original UTS namespace");
    assert_eq!(str_array_attr(&recs[1].log.attributes, "vigil.namespace.changed").unwrap(), ["uts"]);
    assert_eq!(str_attr(&recs[1].log.attributes, "vigil.namespace.types_source"), Some("kernel_object"), "a namespace file");
}

/// The `pid`'s `event` records in kernel order (lane sequence), up to and
/// including the first one `marker` matches: waiting for a later record
/// makes "nothing was reported in between" something a test can check.
fn records_until(cap: &mut Capture, event: EventType, pid: u32, marker: impl Fn(&Captured) -> bool) -> Vec<Captured> {
    let ours = |c: &Captured| c.record.header.event == event && c.record.header.tgid == pid;
    cap.wait_for("marker record", WAIT, |c| ours(c) && marker(c));
    let mut recs = cap.all_matching(std::time::Duration::from_millis(20), ours);
    recs.sort_by_key(|c| c.record.header.seq);
    let end = recs.iter().position(&marker).unwrap();
    recs.truncate(end + 1);
    recs
}

fn syscall_of(c: &Captured) -> &str {
    str_attr(&c.log.attributes, "vigil.syscall").unwrap()
}

fn cred_change(c: &Captured) -> &vigil::decode::CredChangeEvent {
    let Event::CredChange(e) = &c.record.event else { panic!("not a credential change: {:?}", c.record.event) };
    e
}

/// (real, effective, saved) ids of this process.
fn own_ids() -> ([u32; 3], [u32; 3]) {
    let (mut u, mut g) = ([0u32; 3], [0u32; 3]);
    // SAFETY: three valid out-pointers each.
    unsafe {
        libc::getresuid(&mut u[0], &mut u[1], &mut u[2]);
        libc::getresgid(&mut g[0], &mut g[1], &mut g[2]);
    }
    (u, g)
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn setgid_setregid_and_setreuid_carry_old_and_new_credentials() {
    let mut cap = Capture::start_default();
    let (uids, gids) = own_ids();
    assert_eq!(uids, [0, 0, 0], "run as root");
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls on this child.
        unsafe {
            // Privileged: every gid.
            if libc::syscall(libc::SYS_setgid, 1000) != 0 {
                return 60;
            }
            // A new real gid also sets the saved gid to the new effective.
            if libc::syscall(libc::SYS_setregid, 2000, 3000) != 0 {
                return 61;
            }
            // Real uid only: euid stays 0, so do the capabilities; the saved
            // uid becomes the (unchanged) effective one.
            if libc::syscall(libc::SYS_setreuid, 4000, -1) != 0 {
                return 62;
            }
            // Effective uid too: no uid is 0 any more, capabilities go.
            if libc::syscall(libc::SYS_setreuid, -1, 5000) != 0 {
                return 63;
            }
            // Unprivileged now: refused.
            if libc::syscall(libc::SYS_setreuid, 0, 0) != -1 {
                return 64;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let recs = records_until(&mut cap, EventType::PrivilegeCredChange, pid, |c| syscall_of(c) == "setreuid" && cred_change(c).sys.ret != 0);
    let calls: Vec<_> = recs.iter().map(syscall_of).collect();
    assert_eq!(calls, ["setgid", "setregid", "setreuid", "setreuid", "setreuid"]);
    let gid4 = |c: &vigil::abi::RawCreds| (c.gid, c.egid, c.sgid, c.fsgid);
    let uid4 = |c: &vigil::abi::RawCreds| (c.uid, c.euid, c.suid, c.fsuid);

    let g = cred_change(&recs[0]);
    assert_eq!(g.sys.ret, 0);
    assert_eq!(g.requested, [1000]);
    assert_eq!(gid4(&g.old_creds), (gids[0], gids[1], gids[2], gids[1]));
    assert_eq!(gid4(&g.new_creds), (1000, 1000, 1000, 1000));
    assert_eq!(uid4(&g.new_creds), (0, 0, 0, 0));
    assert_eq!(g.old_caps, g.new_caps);
    let l = &recs[0].log.attributes;
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_setgid"));
    assert_eq!(str_attr(l, "error.type"), None);
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["1000"]);
    let want_changed: Vec<&str> = [("gid", gids[0]), ("egid", gids[1]), ("sgid", gids[2]), ("fsgid", gids[1])]
        .into_iter()
        .filter(|(_, v)| *v != 1000)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), want_changed);
    assert_eq!(int_attr(l, "vigil.privilege.old.gid"), Some(i64::from(gids[0])));
    assert_eq!(int_attr(l, "vigil.privilege.new.gid"), Some(1000));
    assert_eq!(int_attr(l, "vigil.privilege.new.fsgid"), Some(1000));

    let rg = cred_change(&recs[1]);
    assert_eq!(rg.sys.ret, 0);
    assert_eq!(rg.requested, [2000, 3000]);
    assert_eq!(gid4(&rg.old_creds), (1000, 1000, 1000, 1000));
    assert_eq!(gid4(&rg.new_creds), (2000, 3000, 3000, 3000));
    let l = &recs[1].log.attributes;
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_setregid"));
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["2000", "3000"]);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["gid", "egid", "sgid", "fsgid"]);
    assert_eq!(int_attr(l, "vigil.privilege.old.egid"), Some(1000));
    assert_eq!(int_attr(l, "vigil.privilege.new.egid"), Some(3000));
    assert_eq!(int_attr(l, "vigil.privilege.new.sgid"), Some(3000));

    let ru = cred_change(&recs[2]);
    assert_eq!(ru.sys.ret, 0);
    assert_eq!(ru.requested, [4000, u32::MAX]);
    assert_eq!(uid4(&ru.old_creds), (0, 0, 0, 0));
    assert_eq!(uid4(&ru.new_creds), (4000, 0, 0, 0));
    assert_eq!(ru.old_caps, ru.new_caps, "euid 0 keeps the capabilities");
    let l = &recs[2].log.attributes;
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_setreuid"));
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["4000", "-1"]);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["uid"]);
    assert_eq!(int_attr(l, "vigil.privilege.old.uid"), Some(0));
    assert_eq!(int_attr(l, "vigil.privilege.new.uid"), Some(4000));

    let re = cred_change(&recs[3]);
    assert_eq!(re.sys.ret, 0);
    assert_eq!(re.requested, [u32::MAX, 5000]);
    assert_eq!(uid4(&re.old_creds), (4000, 0, 0, 0));
    assert_eq!(uid4(&re.new_creds), (4000, 5000, 5000, 5000));
    assert_ne!(re.old_caps.permitted, 0);
    assert_eq!((re.new_caps.effective, re.new_caps.permitted), (0, 0), "no uid 0 left");
    assert_eq!(re.new_caps.inheritable, re.old_caps.inheritable);
    let l = &recs[3].log.attributes;
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["-1", "5000"]);
    let mut want = vec!["euid", "suid", "fsuid", "cap_effective", "cap_permitted"];
    if re.old_caps.effective == 0 {
        want.retain(|f| *f != "cap_effective");
    }
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), want);
    assert_eq!(int_attr(l, "vigil.privilege.new.euid"), Some(5000));
    assert_eq!(int_attr(l, "vigil.privilege.new.cap_permitted"), Some(0));

    let denied = cred_change(&recs[4]);
    assert_eq!(denied.sys.errno(), Some(libc::EPERM));
    assert_eq!(denied.requested, [0, 0]);
    assert_eq!(denied.old_creds, denied.new_creds);
    let l = &recs[4].log.attributes;
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EPERM)));
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"));
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), Vec::<String>::new());
}
const CAP_CHOWN: u64 = 1 << 0;
const CAP_DAC_OVERRIDE: u64 = 1 << 1;
const CAP_SETUID: u64 = 1 << 7;

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn setfsuid_change_is_reported_and_a_query_is_not() {
    let mut cap = Capture::start_default();
    let (uids, _) = own_ids();
    assert_eq!(uids, [0, 0, 0], "run as root");
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls on this child. setfsuid returns the previous
        // fsuid, never an errno.
        unsafe {
            if libc::syscall(libc::SYS_setfsuid, 65534) != 0 {
                return 30;
            }
            // A query (-1 is no valid id): nothing changes, the previous
            // (non-zero) fsuid comes back. Not a privilege change.
            if libc::syscall(libc::SYS_setfsuid, -1) != 65534 {
                return 31;
            }
            // The marker: back to 0 (allowed: euid 0, CAP_SETUID).
            if libc::syscall(libc::SYS_setfsuid, 0) != 65534 {
                return 32;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let recs =
        records_until(&mut cap, EventType::PrivilegeCredChange, pid, |c| syscall_of(c) == "setfsuid" && cred_change(c).requested == [0]);
    let calls: Vec<_> = recs.iter().map(|c| (syscall_of(c).to_owned(), cred_change(c).requested.clone())).collect();
    assert_eq!(
        calls,
        [("setfsuid".to_owned(), vec![65534]), ("setfsuid".to_owned(), vec![0])],
        "the setfsuid(-1) query between the two changes is not reported"
    );

    let c = cred_change(&recs[0]);
    assert_eq!(c.sys.ret, 0, "the previous fsuid");
    assert_eq!(c.sys.errno(), None);
    assert_eq!((c.old_creds.uid, c.old_creds.euid, c.old_creds.suid, c.old_creds.fsuid), (0, 0, 0, 0));
    assert_eq!((c.new_creds.uid, c.new_creds.euid, c.new_creds.suid, c.new_creds.fsuid), (0, 0, 0, 65534));
    assert_eq!(c.old_creds.fsgid, c.new_creds.fsgid);
    // A non-zero fsuid loses the file-system capabilities (CAP_FS_MASK).
    assert_eq!(c.old_caps.effective & (CAP_CHOWN | CAP_DAC_OVERRIDE), CAP_CHOWN | CAP_DAC_OVERRIDE);
    assert_eq!(c.new_caps.effective & (CAP_CHOWN | CAP_DAC_OVERRIDE), 0);
    assert_eq!(c.new_caps.effective & CAP_SETUID, CAP_SETUID);
    assert_eq!(c.new_caps.permitted, c.old_caps.permitted);
    let l = &recs[0].log.attributes;
    assert_eq!(recs[0].log.event_name, "vigil.privilege.cred_change");
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_setfsuid"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    assert_eq!(str_attr(l, "error.type"), None);
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["65534"]);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["fsuid", "cap_effective"]);
    assert_eq!(int_attr(l, "vigil.privilege.old.fsuid"), Some(0));
    assert_eq!(int_attr(l, "vigil.privilege.new.fsuid"), Some(65534));

    let back = cred_change(&recs[1]);
    assert_eq!(back.sys.ret, 65534, "the previous fsuid");
    assert_eq!((back.old_creds.fsuid, back.new_creds.fsuid), (65534, 0));
    assert_eq!(back.new_caps.effective, c.old_caps.effective, "file-system capabilities back");
    let l = &recs[1].log.attributes;
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(65534));
    assert_eq!(str_attr(l, "error.type"), None);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["fsuid", "cap_effective"]);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn a_refused_setfsuid_is_a_failure() {
    let mut cap = Capture::start_default();
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls on this child.
        unsafe {
            // Every uid unprivileged: the capabilities go (no keepcaps).
            if libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) != 0 {
                return 40;
            }
            // Refused (0 is none of our uids, no CAP_SETUID): the kernel
            // returns the previous fsuid and changes nothing.
            if libc::syscall(libc::SYS_setfsuid, 0) != 65534 {
                return 41;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let recs = records_until(&mut cap, EventType::PrivilegeCredChange, pid, |c| syscall_of(c) == "setfsuid");
    let calls: Vec<_> = recs.iter().map(syscall_of).collect();
    assert_eq!(calls, ["setresuid", "setfsuid"]);
    let dropped = cred_change(&recs[0]);
    assert_eq!(dropped.new_caps.effective, 0);
    assert_eq!(dropped.new_caps.permitted, 0, "no CAP_SETUID left");

    let r = cred_change(&recs[1]);
    assert_eq!(r.sys.ret, 65534, "the previous fsuid, not an errno");
    assert_eq!(r.requested, [0]);
    assert_eq!((r.old_creds.fsuid, r.new_creds.fsuid), (65534, 65534), "fsuid unchanged");
    assert_eq!(r.old_creds, r.new_creds);
    assert_eq!(r.old_caps, r.new_caps);
    let l = &recs[1].log.attributes;
    assert_eq!(str_attr(l, "vigil.syscall"), Some("setfsuid"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(65534), "the raw return value");
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"), "refusal derived from the credentials after the call");
    assert_eq!(str_array_attr(l, "vigil.privilege.requested").unwrap(), ["0"]);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), Vec::<String>::new());
    assert_eq!(int_attr(l, "vigil.privilege.old.fsuid"), Some(65534));
    assert_eq!(int_attr(l, "vigil.privilege.new.fsuid"), Some(65534));
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn setfsgid_change_query_and_refusal() {
    let mut cap = Capture::start_default();
    let (_, gids) = own_ids();
    let fsgid = gids[1];
    assert_ne!(fsgid, 65534);
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls on this child.
        unsafe {
            if libc::syscall(libc::SYS_setfsgid, 65534) != i64::from(fsgid) {
                return 50;
            }
            // Query: not reported.
            if libc::syscall(libc::SYS_setfsgid, -1) != 65534 {
                return 51;
            }
            // Drop CAP_SETGID (every uid unprivileged; gids untouched).
            if libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) != 0 {
                return 52;
            }
            // 12345 is none of our gids: refused.
            if libc::syscall(libc::SYS_setfsgid, 12345) != 65534 {
                return 53;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let recs = records_until(&mut cap, EventType::PrivilegeCredChange, pid, |c| {
        syscall_of(c) == "setfsgid" && cred_change(c).requested == [12345]
    });
    let calls: Vec<_> = recs.iter().map(syscall_of).collect();
    assert_eq!(calls, ["setfsgid", "setresuid", "setfsgid"], "the setfsgid(-1) query is not reported");

    let c = cred_change(&recs[0]);
    assert_eq!(c.sys.ret, i64::from(fsgid), "the previous fsgid");
    assert_eq!(c.requested, [65534]);
    assert_eq!((c.old_creds.gid, c.old_creds.egid, c.old_creds.sgid, c.old_creds.fsgid), (gids[0], gids[1], gids[2], fsgid));
    assert_eq!((c.new_creds.gid, c.new_creds.egid, c.new_creds.sgid, c.new_creds.fsgid), (gids[0], gids[1], gids[2], 65534));
    assert_eq!(c.old_caps, c.new_caps, "a gid change leaves the capabilities alone");
    let l = &recs[0].log.attributes;
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_setfsgid"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(i64::from(fsgid)));
    assert_eq!(str_attr(l, "error.type"), None);
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), ["fsgid"]);
    assert_eq!(int_attr(l, "vigil.privilege.old.fsgid"), Some(i64::from(fsgid)));
    assert_eq!(int_attr(l, "vigil.privilege.new.fsgid"), Some(65534));

    let r = cred_change(&recs[2]);
    assert_eq!(r.sys.ret, 65534);
    assert_eq!(r.requested, [12345]);
    assert_eq!((r.old_creds.fsgid, r.new_creds.fsgid), (65534, 65534), "fsgid unchanged");
    let l = &recs[2].log.attributes;
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(65534));
    assert_eq!(str_attr(l, "error.type"), Some("EPERM"));
    assert_eq!(str_array_attr(l, "vigil.privilege.changed").unwrap(), Vec::<String>::new());
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn setns_by_namespace_descriptor_without_nstype_names_the_namespace() {
    let mut cap = Capture::start_default();
    let (own_uts, own_net) = (ns_inode("uts"), ns_inode("net"));
    // A child in a new UTS namespace, held until we are done.
    let (mut ready, mut hold) = ([0i32; 2], [0i32; 2]);
    // SAFETY: two pipes, then a fork whose child only makes raw syscalls.
    let holder = unsafe {
        assert_eq!(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC), 0);
        assert_eq!(libc::pipe2(hold.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let pid = libc::fork();
        if pid == 0 {
            let ok = libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) == 0;
            libc::write(ready[1], [u8::from(ok)].as_ptr().cast(), 1);
            let mut b = 0u8;
            libc::read(hold[0], (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
        assert!(pid > 0);
        let mut ok = 0u8;
        assert_eq!(libc::read(ready[0], (&mut ok as *mut u8).cast(), 1), 1);
        assert_eq!(ok, 1, "unshare(CLONE_NEWUTS) in the holder");
        pid
    };
    let holder_uts = std::fs::metadata(format!("/proc/{holder}/ns/uts")).unwrap().ino() as u32;
    assert_ne!(holder_uts, own_uts);
    let path = std::ffi::CString::new(format!("/proc/{holder}/ns/uts")).unwrap();
    let me = std::process::id() as i32;
    let (pid, code) = in_child(|| {
        // SAFETY: raw syscalls in the child.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return 70;
            }
            // nstype 0: "any type"; the kernel takes it from the descriptor
            // (what runc and nsenter do).
            if libc::syscall(libc::SYS_setns, fd, 0) != 0 {
                return 71;
            }
            // Back through a pidfd, which needs the types in the flags.
            let pidfd = libc::syscall(libc::SYS_pidfd_open, me, 0) as i32;
            if pidfd < 0 {
                return 72;
            }
            if libc::syscall(libc::SYS_setns, pidfd, libc::CLONE_NEWUTS) != 0 {
                return 73;
            }
        }
        0
    });
    // SAFETY: releases and reaps our holder child.
    unsafe {
        libc::write(hold[1], [0u8].as_ptr().cast(), 1);
        libc::waitpid(holder, std::ptr::null_mut(), 0);
        for fd in ready.into_iter().chain(hold) {
            libc::close(fd);
        }
    }
    assert_eq!(code, 0, "child step failed");
    let recs = records(&mut cap, EventType::PrivilegeNamespace, pid, 2);

    let Event::Namespace(s) = &recs[0].record.event else { unreachable!() };
    assert_eq!(s.sys.ret, 0);
    assert_eq!(s.flags, 0, "nstype as passed");
    assert!(s.fd.is_some());
    assert_eq!((s.old_ns[1], s.new_ns[1]), (own_uts, holder_uts), "into the holder's UTS namespace");
    assert_eq!((s.old_ns[4], s.new_ns[4]), (own_net, own_net));
    let l = &recs[0].log.attributes;
    assert_eq!(str_attr(l, "vigil.syscall"), Some("setns"));
    assert_eq!(int_attr(l, "vigil.namespace.flags"), Some(0));
    assert_eq!(int_attr(l, "vigil.namespace.fd"), Some(i64::from(s.fd.unwrap())));
    assert_eq!((s.types, s.types_source), (libc::CLONE_NEWUTS as u32, vigil::decode::PathSource::KernelObject));
    assert_eq!(str_array_attr(l, "vigil.namespace.types").unwrap(), ["uts"], "read from the descriptor's namespace");
    assert_eq!(str_attr(l, "vigil.namespace.types_source"), Some("kernel_object"));
    assert_eq!(str_array_attr(l, "vigil.namespace.changed").unwrap(), ["uts"]);
    assert_eq!(int_attr(l, "vigil.namespace.old.uts"), Some(i64::from(own_uts)));
    assert_eq!(int_attr(l, "vigil.namespace.new.uts"), Some(i64::from(holder_uts)));

    let Event::Namespace(p) = &recs[1].record.event else { unreachable!() };
    assert_eq!(p.sys.ret, 0);
    assert_eq!(p.flags, libc::CLONE_NEWUTS as u32);
    assert_eq!((p.old_ns[1], p.new_ns[1]), (holder_uts, own_uts), "back through the pidfd");
    let l = &recs[1].log.attributes;
    assert_eq!((p.types, p.types_source), (libc::CLONE_NEWUTS as u32, vigil::decode::PathSource::SyscallArgument));
    assert_eq!(str_array_attr(l, "vigil.namespace.types").unwrap(), ["uts"], "a pidfd: from the flags");
    assert_eq!(str_attr(l, "vigil.namespace.types_source"), Some("syscall_argument"));
    assert_eq!(str_array_attr(l, "vigil.namespace.changed").unwrap(), ["uts"]);
}
