//! fail_closed: where the BPF-LSM program can not be loaded (this host:
//! BPF-LSM is refused), start-up refuses, or runs degraded when allowed.

use std::sync::Arc;
use vigil::config::{PolicyConfig, PolicyMode};
use vigil::probes::{self, ProbeError, ProbeSettings};

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn fail_closed_load_failure_refuses_or_runs_degraded_when_allowed() {
    super::crate_root_check();
    let settings = |allow_degraded| ProbeSettings {
        policy: PolicyConfig { mode: PolicyMode::FailClosed, allow_degraded, ..PolicyConfig::default() },
        ..ProbeSettings::default()
    };
    let start = |s| {
        let (tx, _rx) = tokio::sync::mpsc::channel(1 << 16);
        probes::start(s, tx, Arc::new(vigil::stats::Stats::default()))
    };
    match start(settings(false)) {
        Ok(r) => {
            // A kernel that runs and allows BPF-LSM programs: enforcing.
            assert!(r.status.fail_closed_enforced, "started under fail_closed without enforcing it");
            assert!(r.status.degraded.is_empty());
            r.stop();
            eprintln!("SKIPPED the refusal half: the BPF-LSM program loaded on this kernel");
            return;
        }
        Err(ProbeError::Load(msg)) => {
            assert!(msg.contains("fail_closed") && msg.contains("BPF-LSM") && msg.contains("allow_degraded"), "{msg}");
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
    let r = start(settings(true)).expect("allowed to degrade: starts");
    assert!(!r.status.fail_closed_enforced);
    assert_eq!(r.status.degraded.len(), 1);
    assert!(r.status.degraded[0].contains("DEGRADED"), "{:?}", r.status.degraded);
    r.stop();
}
