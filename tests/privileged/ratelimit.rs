//! Per-process rate limit of bulk records: the detail over the budget is
//! shed, the count survives in a summary record.

use super::{temp_dir, WAIT};
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::sync::atomic::Ordering;
use vigil::abi::EventType;
use vigil::config::{ProbesConfig, RateLimitConfig};
use vigil::decode::Event;
use vigil::probes::ProbeSettings;
use vigil_tests::attrs::{int_attr, str_attr};
use vigil_tests::capture::Capture;

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn a_process_over_its_bulk_budget_gets_a_summary_with_the_exact_count() {
    const OPENS: u64 = 2000;
    let dir = temp_dir("ratelimit");
    let target = dir.join("target");
    let mut cap = Capture::start_with(ProbeSettings {
        probes: ProbesConfig { poll_interval_ms: 5, ..ProbesConfig::default() },
        ratelimit: RateLimitConfig { bulk_per_process_rate: 50, bulk_per_process_burst: 100 },
        ..ProbeSettings::default()
    });
    // One process (not this one: other tests share this tgid) opens the
    // same file for writing OPENS times, far faster than 50 per second.
    let script = format!("i=0; while [ $i -lt {OPENS} ]; do : > '{}'; i=$((i+1)); done", target.display());
    let mut child = Command::new("/bin/sh").args(["-c", &script]).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    cap.wait_for("the shell's exit", WAIT, |c| super::is_exit_of(c, pid));
    cap.stop();

    let delivered = cap
        .seen
        .iter()
        .filter(|c| {
            c.record.header.tgid == pid
                && matches!(&c.record.event, Event::File(f) if f.path.bytes.as_deref() == Some(target.as_os_str().as_bytes()))
        })
        .count() as u64;
    let summaries: Vec<_> = cap.mapper().suppressed_records(vigil::clock::unix_now_ns()).iter().map(|l| l.decode().unwrap()).collect();
    let ours: Vec<_> = summaries.iter().filter(|l| int_attr(&l.attributes, "process.pid") == Some(i64::from(pid))).collect();
    assert_eq!(ours.len(), 1, "one summary for the shell's file opens: {summaries:?}");
    let s = ours[0];
    assert_eq!(s.event_name, "vigil.telemetry.suppressed");
    assert_eq!(str_attr(&s.attributes, "vigil.suppressed.event_name"), Some("vigil.file.open"));
    let suppressed = int_attr(&s.attributes, "vigil.suppressed.count").unwrap() as u64;
    assert!(suppressed > 0 && delivered > 0, "{delivered} delivered, {suppressed} suppressed");
    assert!(delivered >= 100, "the burst passes: {delivered}");
    assert_eq!(delivered + suppressed, OPENS, "every open is either delivered or counted in the summary");
    let (first, last) =
        (str_attr(&s.attributes, "vigil.suppressed.first_time").unwrap(), str_attr(&s.attributes, "vigil.suppressed.last_time").unwrap());
    assert!(first <= last, "{first} <= {last}");
    let body = format!("{:?}", s.body);
    assert!(body.contains(&format!("pid {pid} produced {suppressed} suppressed vigil.file.open events between")), "{body}");
    // The kernel's own counter agrees, and the rate limit is no loss.
    assert!(cap.stats.ratelimited_of(EventType::FileOpen).load(Ordering::Relaxed) >= suppressed);
    assert_eq!(cap.stats.kernel_dropped_total(), 0);
    std::fs::remove_dir_all(dir).unwrap();
}
