//! vigil's own OpenTelemetry metrics, through a real rotel collector: the
//! exported values equal vigil's own final counters.

use std::process::{Command, Stdio};
use std::time::Duration;
use vigil_tests::collector::{free_port, rotel_agent, tail, wait_until, ChildGuard, TempDir, WAIT};

/// The last value rotel's debug log printed for metric `name`.
fn last_value(log: &str, name: &str) -> Option<u64> {
    let at = log.rfind(&format!("-> Name: {name}\n"))?;
    let rest = &log[at..];
    let line = rest.lines().find(|l| l.starts_with("Value: "))?;
    line.trim_start_matches("Value: ").trim().parse::<f64>().ok().map(|v| v as u64)
}

/// `name=<n>` from vigil's exit summary line.
fn summary_value(stderr: &str, name: &str) -> Option<u64> {
    let line = stderr.lines().rev().find(|l| l.contains("stopped: "))?;
    line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok())
}

#[test]
#[ignore = "needs root and the rotel collector: run by ci/test.sh"]
fn own_metrics_reach_the_collector_and_match_the_counters() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-metrics");
    let port = free_port();
    let rotel_out = dir.path().join("rotel.out");
    let mut rotel = ChildGuard::spawn(
        "rotel",
        Command::new(rotel_agent())
            .arg("start")
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{port}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{}", free_port())])
            .args(["--exporter", "blackhole", "--debug-log", "metrics", "--debug-log-verbosity", "detailed"])
            .arg("--pid-file")
            .arg(dir.path().join("rotel.pid"))
            .stdout(std::fs::File::create(&rotel_out).expect("rotel out"))
            .stderr(Stdio::null()),
    );
    let err_path = dir.path().join("vigil.stderr");
    let mut vigil = ChildGuard::spawn(
        "vigil",
        vigil_tests::vigil_command()
            .args(["--endpoint", &format!("http://127.0.0.1:{port}"), "--protocol", "grpc"])
            .env("VIGIL_TELEMETRY__METRICS_INTERVAL_S", "1")
            .env("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).expect("stderr")),
    );
    assert!(wait_until(WAIT, || tail(&err_path, 1 << 20).contains("probes attached")), "vigil did not attach:\n{}", tail(&err_path, 4000));
    for _ in 0..20 {
        Command::new("/bin/true").status().expect("true");
    }
    // At least one periodic collection after the workload.
    assert!(
        wait_until(WAIT, || last_value(&tail(&rotel_out, 1 << 24), "vigil.records.received").is_some_and(|v| v >= 40)),
        "no metrics with the workload reached rotel:\n{}",
        tail(&rotel_out, 3000)
    );
    let status = vigil.stop(libc::SIGINT, WAIT);
    assert!(status.is_some_and(|s| s.success()), "vigil exit: {status:?}\n{}", tail(&err_path, 4000));
    // vigil flushes a last collection at shutdown; give rotel a moment.
    std::thread::sleep(Duration::from_millis(500));
    rotel.stop(libc::SIGTERM, WAIT);
    let log = tail(&rotel_out, 1 << 24);
    let err = tail(&err_path, 1 << 20);
    for (metric, counter) in [("vigil.records.received", "received"), ("vigil.records.exported", "exported")] {
        let exported = last_value(&log, metric).unwrap_or_else(|| panic!("{metric} not in rotel's output"));
        let own = summary_value(&err, counter).unwrap_or_else(|| panic!("{counter}= not in vigil's summary:\n{err}"));
        assert_eq!(exported, own, "{metric} as exported vs vigil's final {counter} counter");
    }
    assert!(last_value(&log, "vigil.queue.depth").is_some(), "gauges are exported too");
    assert!(log.contains("service.name") && log.contains("vigil"), "the metrics carry vigil's resource");
}
