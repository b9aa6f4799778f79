//! Delivery without loss: retries that honour the server's requested
//! delay, the on-disk spool through collector outages, crashes and corrupt
//! segments, and bounded memory under a stalled collector.

use super::{run_true, start_vigil_to_sink, stop_vigil};
use std::process::Stdio;
use std::time::Duration;
use vigil_tests::collector::{tail, wait_until, ChildGuard, HttpSink, Sink, TempDir, TestPki, WAIT};

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

/// Start vigil with `args` and `env`; wait for its probes.
fn start_vigil(dir: &TempDir, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (ChildGuard, std::path::PathBuf) {
    let err_path = dir.path().join(format!("vigil-{}.stderr", vigil_tests::collector::random_id()));
    let mut cmd = vigil_tests::vigil_command();
    cmd.args(args).args(["--log-level", "info"]).stdin(Stdio::null()).stdout(Stdio::null());
    cmd.stderr(std::fs::File::create(&err_path).expect("stderr file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut vigil = ChildGuard::spawn("vigil", &mut cmd);
    let up = wait_until(WAIT, || vigil.try_status().is_some() || tail(&err_path, 1 << 20).contains("probes attached"));
    assert!(up && vigil.try_status().is_none(), "vigil did not start ({:?}):\n{}", vigil.try_status(), tail(&err_path, 4000));
    (vigil, err_path)
}

/// The OTEL_* variables of a mutual-TLS export to `pki`'s server, trusting
/// `ca`.
fn mtls_env<'a>(pki: &'a TestPki, ca: &'a std::path::Path) -> Vec<(&'static str, &'a std::ffi::OsStr)> {
    vec![
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_os_str()),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.client_cert_file.as_os_str()),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_key_file.as_os_str()),
        ("VIGIL_EXPORT__TLS__SERVER_NAME", std::ffi::OsStr::new(TestPki::SERVER_NAME)),
        ("VIGIL_EXPORT__BATCH_TIMEOUT_MS", std::ffi::OsStr::new("50")),
        ("VIGIL_EXPORT__GZIP", std::ffi::OsStr::new("false")),
    ]
}

fn tls_delivery(protocol: &str, endpoint: &str, delivered: &dyn Fn(i64) -> bool, dir: &TempDir, pki: &TestPki) {
    // Trusting the right CA, with a client certificate: delivered.
    let (mut vigil, err_path) = start_vigil(dir, &["--endpoint", endpoint, "--protocol", protocol], &mtls_env(pki, &pki.ca_file));
    let pid = run_true();
    assert!(wait_until(WAIT, || delivered(pid)), "nothing delivered over mTLS:\n{}", tail(&err_path, 4000));
    stop_vigil(&mut vigil, &err_path);

    // Trusting another CA: nothing is delivered, and the log says why.
    let (mut vigil, err_path) = start_vigil(dir, &["--endpoint", endpoint, "--protocol", protocol], &mtls_env(pki, &pki.other_ca_file));
    let pid = run_true();
    let said = wait_until(WAIT, || {
        let err = tail(&err_path, 1 << 20);
        err.contains("retrying") && (err.contains("UnknownIssuer") || err.contains("certificate"))
    });
    assert!(said, "no clear certificate error with the wrong CA:\n{}", tail(&err_path, 4000));
    assert!(!delivered(pid), "delivered despite the wrong CA");
    let _ = vigil.stop(libc::SIGKILL, WAIT);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn grpc_mutual_tls_delivers_and_a_wrong_ca_is_refused() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-tls-grpc");
    let pki = TestPki::new(dir.path());
    let sink = Sink::start_tls(&pki);
    let delivered = |pid: i64| sink.records().iter().any(|r| super::find_exit(std::slice::from_ref(r), pid).is_some());
    tls_delivery("grpc", &sink.endpoint(), &delivered, &dir, &pki);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn http_mutual_tls_delivers_and_a_wrong_ca_is_refused() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-tls-http");
    let pki = TestPki::new(dir.path());
    let sink = HttpSink::start_tls(&pki);
    let delivered = |pid: i64| {
        sink.records().iter().any(|r| {
            vigil_tests::attrs::int_attr(&r.attributes, "process.pid") == Some(pid)
                && vigil_tests::attrs::value(&r.attributes, "process.exit.time").is_some()
        })
    };
    tls_delivery("http/protobuf", &sink.endpoint(), &delivered, &dir, &pki);
}

#[test]
#[ignore = "needs the vigil binary: run by ci/test.sh"]
fn missing_tls_files_are_configuration_errors() {
    for (var, key) in [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "export.tls.ca_file"),
        ("VIGIL_EXPORT__TLS__CA_FILE", "export.tls.ca_file"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "export.tls.cert_file"),
    ] {
        let out = vigil_tests::vigil_command()
            .args(["--endpoint", "https://127.0.0.1:1"])
            .env(var, "/nonexistent/vigil-test.pem")
            .stdin(Stdio::null())
            .output()
            .expect("run vigil");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(key), "{var}: the error names {key}:\n{err}");
    }
}
