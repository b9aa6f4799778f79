//! The vigil binary with the Docker metadata lookup pointed at a fake daemon
//! that never answers: records of processes in a Docker-layout cgroup still
//! reach the collector at once, under their container's Resource, marked
//! `vigil.metadata.container.status = pending`.

use super::{start_vigil_to_sink, stop_vigil};
use crate::fakes::{FakeDocker, Mode};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use vigil_tests::attrs::{str_array_attr, str_attr};
use vigil_tests::cgroups::TestCgroups;
use vigil_tests::collector::{unix_now_ns, wait_until, Received, Sink, TempDir, WAIT};

/// Run `cmd args...` inside `cgroup` (the shell moves itself there, then
/// execs), without waiting for it.
fn spawn_in(cgroup: &Path, cmd: &str, args: &[&str]) -> std::process::Child {
    let script = format!("echo $$ > '{}/cgroup.procs' && exec \"$0\" \"$@\"", cgroup.display());
    Command::new("/bin/sh").arg("-c").arg(script).arg(cmd).args(args).stdin(Stdio::null()).stdout(Stdio::null()).spawn().unwrap()
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn a_hung_metadata_lookup_does_not_hold_up_records() {
    vigil_tests::require_root();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let dir = TempDir::new("vigil-e2e-metadata");
    let id = format!("{:064x}", unix_now_ns());
    let docker = FakeDocker::start(dir.path(), &id, Mode::Slow);
    let root = vigil::procfs::cgroup2_root().expect("a cgroup2 hierarchy is mounted");
    let (_cleanup, cg) = TestCgroups::create(&root, &format!("vigil-e2e-{}.slice/docker-{id}.scope", std::process::id()));

    let sink = Sink::start();
    let socket = docker.socket.to_string_lossy().into_owned();
    // A lookup is given up only after 60 s: a pipeline that waited for it
    // would deliver nothing within WAIT.
    let env =
        [("VIGIL_METADATA__DOCKER__ENABLED", "true"), ("VIGIL_METADATA__DOCKER__SOCKET", &socket), ("VIGIL_METADATA__TIMEOUT_MS", "60000")];
    let (mut vigil, err) = start_vigil_to_sink(&dir, &sink, &env);

    // Let vigil's cgroup table learn the new directory (a miss triggers a
    // rescan, at most once a second), with a process living in it.
    let mut warm = spawn_in(&cg, "/bin/sleep", &["2"]);
    std::thread::sleep(Duration::from_millis(2500));
    warm.wait().unwrap();

    let markers: Vec<String> = (0..20).map(|i| format!("vigil-e2e-md-{}-{i}", std::process::id())).collect();
    for m in &markers {
        assert!(spawn_in(&cg, "/bin/true", &[m]).wait().unwrap().success());
    }
    // The exec of /bin/true with the marker (the shell before it has the
    // marker in its argv too, but runs outside the cgroup).
    let is_true_of = |r: &Received, m: &str| {
        str_attr(&r.record.attributes, "process.executable.name") == Some("true")
            && str_array_attr(&r.record.attributes, "process.command_args").is_some_and(|a| a.iter().any(|x| x == m))
    };
    let arrived = wait_until(WAIT, || {
        let records = sink.records();
        markers.iter().all(|m| records.iter().any(|r| is_true_of(r, m)))
    });
    assert!(arrived, "exec records did not arrive while the lookup hung:\n{}", vigil_tests::collector::tail(&err, 4000));
    assert!(docker.control.requests() >= 1, "vigil asked the fake daemon");
    assert_eq!(docker.control.answered(), 0, "and the daemon never answered");
    let records = sink.records();
    for m in &markers {
        let r = records.iter().find(|r| is_true_of(r, m)).unwrap();
        let res = &r.resource.attributes;
        assert_eq!(str_attr(res, "container.id"), Some(id.as_str()), "{m}: under its container's Resource");
        assert_eq!(str_attr(res, "container.runtime.name"), Some("docker"));
        assert_eq!(str_attr(res, "vigil.metadata.container.status"), Some("pending"), "{m}");
        assert_eq!(str_attr(res, "vigil.metadata.container.reason"), Some("lookup_in_flight"));
        assert!(str_attr(res, "host.name").is_some() || str_attr(res, "service.name").is_some(), "with the host attributes");
        assert_eq!(str_attr(&r.record.attributes, "container.id"), None, "not repeated on the record");
    }
    stop_vigil(&mut vigil, &err);
}
