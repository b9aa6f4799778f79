//! Delivery without loss: retries that honour the server's requested
//! delay, the on-disk spool through collector outages, crashes and corrupt
//! segments, and bounded memory under a stalled collector.

use super::{run_true, start_vigil_to_sink, stop_vigil};
use std::process::Stdio;
use std::time::Duration;
use vigil_tests::collector::{tail, wait_until, ChildGuard, HttpSink, Sink, TempDir, WAIT};

/// The gap between the first throttled call and the call after it.
fn retry_gap(arrivals: &[(std::time::Instant, bool)]) -> Option<Duration> {
    let first = arrivals.iter().position(|(_, throttled)| *throttled)?;
    let next = arrivals.get(first + 1)?;
    Some(next.0.duration_since(arrivals[first].0))
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn grpc_unavailable_with_retry_info_delay_is_honoured() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-throttle-grpc");
    let sink = Sink::start();
    // Far above the 100 ms first backoff: only RetryInfo explains a wait this long.
    let delay = Duration::from_millis(2500);
    sink.throttle(1, delay);
    let (mut vigil, err_path) = start_vigil_to_sink(&dir, &sink, &[("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")]);
    let pid = run_true();
    let done = wait_until(WAIT, || sink.records().iter().any(|r| super::find_exit(std::slice::from_ref(r), pid).is_some()));
    let arrivals = sink.arrivals();
    assert!(done, "the record after the throttle never arrived; arrivals {arrivals:?}\n{}", tail(&err_path, 4000));
    stop_vigil(&mut vigil, &err_path);
    let gap = retry_gap(&arrivals).expect("a throttled call followed by a retry");
    assert!(gap >= delay, "retried after {gap:?}, before the requested {delay:?}");
    let err = tail(&err_path, 1 << 20);
    assert!(err.contains("Unavailable") && err.contains("retrying"), "the throttle is logged:\n{err}");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn http_429_with_retry_after_is_honoured() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-throttle-http");
    let sink = HttpSink::start();
    sink.throttle(1, "2");
    let err_path = dir.path().join("vigil.stderr");
    let mut vigil = ChildGuard::spawn(
        "vigil",
        vigil_tests::vigil_command()
            .args(["--endpoint", &sink.endpoint(), "--protocol", "http/protobuf", "--log-level", "info"])
            .env("VIGIL_EXPORT__GZIP", "false")
            .env("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).expect("stderr file")),
    );
    assert!(wait_until(WAIT, || tail(&err_path, 1 << 20).contains("probes attached")), "{}", tail(&err_path, 4000));
    run_true();
    let logs = |sink: &HttpSink| sink.calls().into_iter().filter(|c| c.path == "/v1/logs").collect::<Vec<_>>();
    let retried = wait_until(WAIT, || logs(&sink).iter().any(|c| c.status == 200));
    let calls = logs(&sink);
    assert!(
        retried,
        "no accepted request after the 429: {:?}\n{}",
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        tail(&err_path, 4000)
    );
    stop_vigil(&mut vigil, &err_path);
    assert_eq!(calls[0].status, 429, "the first logs request was throttled");
    assert_eq!(calls[1].status, 200);
    let gap = calls[1].at.duration_since(calls[0].at);
    assert!(gap >= Duration::from_secs(2), "retried after {gap:?}, before Retry-After: 2");
    assert_eq!(calls[1].body, calls[0].body, "the retry carries the same request");
    assert!(!sink.records().is_empty());
}
