//! In-kernel exclusion filters: matching records are absent, and every one
//! of them is counted by reason.

use super::{is_exec_of, is_exit_of, temp_dir, TestCgroups, WAIT};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::Ordering;
use vigil::abi::EventType;
use vigil::config::{FiltersConfig, ProbesConfig};
use vigil::decode::Event;
use vigil::filters::FilterReason;
use vigil::probes::ProbeSettings;
use vigil_tests::capture::{Capture, Captured};

fn file_path(c: &Captured) -> Option<&[u8]> {
    match &c.record.event {
        Event::File(f) => f.path.bytes.as_deref(),
        _ => None,
    }
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn excluded_paths_cgroups_executables_and_uids_are_absent_and_counted() {
    const N_FILES: usize = 20;
    const N_RUNS: usize = 5;
    const UID: u32 = 54_321;
    let dir = std::fs::canonicalize(temp_dir("filters")).unwrap();
    let (excluded, kept, exebin) = (dir.join("excluded"), dir.join("kept"), dir.join("exebin"));
    for d in [&excluded, &kept, &exebin] {
        std::fs::create_dir(d).unwrap();
    }
    let exe = exebin.join("true-copy");
    std::fs::copy("/bin/true", &exe).unwrap();
    let root = vigil::procfs::cgroup2_root().expect("a cgroup2 hierarchy is mounted");
    let top = format!("vigil-test-filter-{}.slice", std::process::id());
    let (cg, cg_dir) = TestCgroups::create(&root, &format!("{top}/excluded.scope"));
    let filters = FiltersConfig {
        // The parent: its whole subtree is excluded.
        exclude_cgroups: vec![top.clone()],
        exclude_exe_prefixes: vec![format!("{}/", exebin.display())],
        exclude_file_prefixes: vec![format!("{}/", excluded.display())],
        exclude_uids: vec![UID],
    };
    let mut cap = Capture::start_with(ProbeSettings {
        probes: ProbesConfig { poll_interval_ms: 5, ..ProbesConfig::default() },
        filters,
        ..ProbeSettings::default()
    });

    for i in 0..N_FILES {
        std::fs::File::create(excluded.join(format!("f{i}"))).unwrap();
        std::fs::File::create(kept.join(format!("f{i}"))).unwrap();
    }
    let in_cgroup: Vec<u32> = (0..N_RUNS).map(|_| super::exec_true_in(&cg_dir)).collect();
    let excluded_exe: Vec<u32> = (0..N_RUNS)
        .map(|_| {
            let mut c = super::spawn_copied(&mut Command::new(&exe));
            assert!(c.wait().unwrap().success());
            c.id()
        })
        .collect();
    let as_uid: Vec<u32> = (0..N_RUNS)
        .map(|_| {
            let mut c = Command::new("/bin/true").current_dir("/").uid(UID).gid(UID).spawn().unwrap();
            assert!(c.wait().unwrap().success());
            c.id()
        })
        .collect();
    // File records of excluded processes (decided before the record is
    // built): a write-open in the excluded cgroup and one as the excluded uid.
    let cg_file = kept.join("by-excluded-cgroup");
    let script = format!("echo $$ > '{}/cgroup.procs' && : > '{}'", cg_dir.display(), cg_file.display());
    assert!(Command::new("/bin/sh").args(["-c", &script]).status().unwrap().success());
    let uid_file = kept.join("by-excluded-uid");
    std::fs::set_permissions(&kept, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = format!(": > '{}'", uid_file.display());
    assert!(Command::new("/bin/sh").args(["-c", &script]).uid(UID).gid(UID).status().unwrap().success());
    // A record after all of them, not excluded, to know they were processed.
    let mut marker = Command::new("/bin/true").spawn().unwrap();
    let marker_pid = marker.id();
    marker.wait().unwrap();
    cap.wait_for("the marker's exit", WAIT, |c| is_exit_of(c, marker_pid));
    cap.stop();

    // Absent.
    let under = |c: &Captured, d: &std::path::Path| file_path(c).is_some_and(|p| p.starts_with(d.as_os_str().as_bytes()));
    assert_eq!(cap.seen.iter().filter(|c| under(c, &excluded)).count(), 0, "no file record under the excluded prefix");
    let kept_opens = cap.seen.iter().filter(|c| c.record.header.event == EventType::FileOpen && under(c, &kept)).count();
    assert_eq!(kept_opens, N_FILES, "the files next to it are reported");
    for f in [&cg_file, &uid_file] {
        assert!(!cap.seen.iter().any(|c| file_path(c) == Some(f.as_os_str().as_bytes())), "{}: excluded", f.display());
    }
    for pid in &in_cgroup {
        assert!(cap.seen.iter().any(|c| is_exec_of(c, *pid)), "the shell's exec before it moved is reported");
        assert!(!cap.seen.iter().any(|c| super::is_exec_of_true(c, *pid)), "no exec inside the excluded cgroup");
        assert!(!cap.seen.iter().any(|c| is_exit_of(c, *pid)), "no exit inside the excluded cgroup");
    }
    for pid in excluded_exe.iter().chain(&as_uid) {
        assert!(!cap.seen.iter().any(|c| is_exec_of(c, *pid) || is_exit_of(c, *pid)), "pid {pid}: excluded");
        assert!(cap.seen.iter().any(|c| matches!(&c.record.event, Event::Fork(f) if f.child_tgid == *pid)), "its fork (by us) is reported");
    }
    assert!(cap.seen.iter().any(|c| is_exec_of(c, marker_pid)), "an ordinary exec is reported");

    // Counted, exactly, by reason.
    let s = cap.stats.clone();
    let n = |t: EventType, r: FilterReason| s.excluded_of(t, r).load(Ordering::Relaxed);
    assert_eq!(n(EventType::FileOpen, FilterReason::File), N_FILES as u64);
    // The one write-open each of the two shells was run for (the cgroup
    // shell's open of cgroup.procs came before it moved).
    assert_eq!(n(EventType::FileOpen, FilterReason::Cgroup), 1, "the open in the excluded cgroup is counted");
    assert_eq!(n(EventType::FileOpen, FilterReason::Uid), 1, "the open as the excluded uid is counted");
    // + the exit of the shell that moved itself into the cgroup.
    assert_eq!((n(EventType::Exec, FilterReason::Cgroup), n(EventType::Exit, FilterReason::Cgroup)), (N_RUNS as u64, N_RUNS as u64 + 1));
    assert_eq!((n(EventType::Exec, FilterReason::Exe), n(EventType::Exit, FilterReason::Exe)), (N_RUNS as u64, N_RUNS as u64));
    // + the exec and exit of the shell run as the uid.
    assert_eq!((n(EventType::Exec, FilterReason::Uid), n(EventType::Exit, FilterReason::Uid)), (N_RUNS as u64 + 1, N_RUNS as u64 + 1));
    // Not a loss: no kernel drops, and the heartbeat reports them separately.
    assert_eq!(s.kernel_dropped_total(), 0, "exclusions are not drops");
    let hb = cap.mapper().heartbeat_counters();
    let get = |k: &str| hb.counters.iter().find(|(key, _)| *key == k).map(|(_, v)| *v).unwrap();
    assert_eq!(get("vigil.heartbeat.excluded.file"), s.excluded(FilterReason::File));
    assert!(get("vigil.heartbeat.excluded.file") >= N_FILES as u64);
    assert_eq!(get("vigil.heartbeat.excluded.cgroup"), s.excluded(FilterReason::Cgroup));
    assert_eq!(get("vigil.heartbeat.loss.total"), 0, "exclusions are not counted as loss");
    drop(cg);
    std::fs::remove_dir_all(dir).unwrap();
}
