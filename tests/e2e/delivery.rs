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
    ]
}

fn tls_delivery(protocol: &str, endpoint: &str, delivered: &dyn Fn(i64) -> bool, dir: &TempDir, pki: &TestPki) {
    // Trusting the right CA, with a client certificate: delivered (gRPC
    // with gzip; the HTTP test receiver reads uncompressed bodies only).
    let mut env = mtls_env(pki, &pki.ca_file);
    if protocol != "grpc" {
        env.push(("VIGIL_EXPORT__GZIP", std::ffi::OsStr::new("false")));
    }
    let (mut vigil, err_path) = start_vigil(dir, &["--endpoint", endpoint, "--protocol", protocol], &env);
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

// ---------------------------------------------------------------------------
// The spool: outages, crashes, corrupt segments.
// ---------------------------------------------------------------------------

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use vigil_tests::attrs::{int_attr, str_attr, value};
use vigil_tests::collector::Received;

fn is_exit_of(r: &LogRecord, pid: i64) -> bool {
    int_attr(&r.attributes, "process.pid") == Some(pid) && value(&r.attributes, "process.exit.time").is_some()
}

fn uid(r: &LogRecord) -> Option<&str> {
    str_attr(&r.attributes, "log.record.uid")
}

/// Pids whose exit record is among `records`.
fn exits_among<'a>(records: impl IntoIterator<Item = &'a LogRecord>, pids: &[i64]) -> BTreeSet<i64> {
    let want: BTreeSet<i64> = pids.iter().copied().collect();
    records
        .into_iter()
        .filter(|r| value(&r.attributes, "process.exit.time").is_some())
        .filter_map(|r| int_attr(&r.attributes, "process.pid"))
        .filter(|p| want.contains(p))
        .collect()
}

/// Pids whose exit record `sink` received.
fn exits_at(sink: &Sink, pids: &[i64]) -> BTreeSet<i64> {
    let want: BTreeSet<i64> = pids.iter().copied().collect();
    let mut got = BTreeSet::new();
    sink.for_each_record(|r| {
        if let Some(p) = int_attr(&r.attributes, "process.pid").filter(|p| want.contains(p)) {
            if value(&r.attributes, "process.exit.time").is_some() {
                got.insert(p);
            }
        }
    });
    got
}

/// Poll (every 250 ms: the sink must not be starved by the polling) until
/// `sink` has the exit records of all `pids` or `timeout` passes.
fn wait_for_exits(sink: &Sink, pids: &[i64], timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if exits_at(sink, pids).len() == pids.len() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The spool's segment files, oldest first, with the log records of each
/// (decoded independently of vigil: 48-byte header, then the request).
fn spool_segments(dir: &Path) -> Vec<(PathBuf, Vec<LogRecord>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "seg")).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            if bytes.len() < 48 || &bytes[..8] != b"VIGILSPL" || bytes[10] != 0 {
                return Some((p, Vec::new())); // a traces segment, or one being replaced
            }
            let req: ExportLogsServiceRequest = prost::Message::decode(&bytes[48..]).expect("a spooled logs request");
            let records = req.resource_logs.into_iter().flat_map(|rl| rl.scope_logs).flat_map(|sl| sl.log_records).collect();
            Some((p, records))
        })
        .collect()
}

/// Every record delivered more than once must be the same record again
/// (same `log.record.uid`, same bytes): recognisably a duplicate.
fn assert_duplicates_are_identical(records: &[Received]) -> usize {
    let mut by_uid: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for r in records {
        if let Some(u) = uid(&r.record) {
            by_uid.entry(u).or_default().push(prost::Message::encode_to_vec(&r.record));
        }
    }
    let mut dups = 0;
    for (u, copies) in &by_uid {
        dups += copies.len() - 1;
        assert!(copies.iter().all(|c| c == &copies[0]), "records sharing log.record.uid {u} differ");
    }
    dups
}

fn spool_env(spool: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("VIGIL_SPOOL__PATH", spool.to_string_lossy().into_owned()),
        ("VIGIL_EXPORT__RETRY_MAX_ELAPSED_MS", "1000".into()),
        ("VIGIL_EXPORT__RETRY_MAX_BACKOFF_MS", "500".into()),
        ("VIGIL_EXPORT__TIMEOUT_MS", "2000".into()),
        ("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50".into()),
        ("VIGIL_TELEMETRY__HEARTBEAT_INTERVAL_S", "1".into()),
        ("VIGIL_TELEMETRY__LOSS_WINDOW_MS", "200".into()),
    ]
}

fn as_strs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Run /bin/true every `every` for `d`; the pids.
fn steady_workload(d: Duration, every: Duration) -> Vec<i64> {
    let start = std::time::Instant::now();
    let mut pids = Vec::new();
    while start.elapsed() < d {
        pids.push(run_true());
        std::thread::sleep(every);
    }
    pids
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn collector_down_for_30_seconds_loses_nothing() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-outage");
    let spool = dir.path().join("spool");
    let mut sink = Sink::start();
    let env = spool_env(&spool);
    let (mut vigil, err_path) = start_vigil_to_sink(&dir, &sink, &as_strs(&env));
    let diag = |sink: &Sink| {
        let mut n = 0;
        sink.for_each_record(|_| n += 1);
        format!(
            "\n--- vigil stderr ---\n{}\n--- sink: {n} records; spool: {} segments",
            tail(&err_path, 6000),
            spool_segments(&spool).len()
        )
    };

    let every = Duration::from_millis(100);
    let mut pids = steady_workload(Duration::from_secs(3), every);
    sink.stop();
    let outage_pids = steady_workload(Duration::from_secs(30), every);
    let back_at_ns = vigil_tests::collector::unix_now_ns();
    sink.restart();
    pids.extend(&outage_pids);
    pids.extend(steady_workload(Duration::from_secs(3), every));

    let arrived = wait_for_exits(&sink, &pids, Duration::from_secs(90));
    let got = exits_at(&sink, &pids);
    let missing: Vec<i64> = pids.iter().filter(|p| !got.contains(p)).copied().collect();
    assert!(arrived, "{} of {} exit records missing after the outage: {missing:?}{}", missing.len(), pids.len(), diag(&sink));
    std::thread::sleep(Duration::from_millis(1500)); // a heartbeat after the replay
    stop_vigil(&mut vigil, &err_path);

    let records = sink.records();
    let dups = assert_duplicates_are_identical(&records);
    // Replayed records keep their original time.
    for pid in &outage_pids {
        let exit = records.iter().find(|r| is_exit_of(&r.record, *pid)).expect("exit record");
        assert!(exit.record.time_unix_nano < back_at_ns, "pid {pid}: the replayed record was re-stamped");
    }
    // Exact accounting from vigil's exit summary: every log record spooled
    // was replayed or is still in the spool (a busy machine may leave some
    // there at shutdown: the next start sends them); none was lost.
    let err = tail(&err_path, 1 << 20);
    let summary = |name: &str| -> u64 {
        let line = err.lines().rev().find(|l| l.contains("stopped: ")).expect("exit summary");
        line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok()).expect(name)
    };
    let (spooled, replayed) = (summary("spooled"), summary("replayed"));
    let left: usize = spool_segments(&spool).iter().map(|(_, r)| r.len()).sum();
    assert!(spooled > 0, "the outage spooled nothing{}", diag(&sink));
    assert_eq!(spooled - replayed, left as u64, "spooled = replayed + still in the spool");
    let lost = ["spool_full", "spool_corrupt", "export_failed", "shutdown_lost"].map(summary);
    assert_eq!(lost, [0; 4], "spool_full, spool_corrupt, export_failed, shutdown_lost");
    eprintln!(
        "e2e: {} runs, {} during the outage; {spooled} records spooled, {replayed} replayed, {left} left; {dups} duplicates",
        pids.len(),
        outage_pids.len()
    );
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn spooled_records_survive_kill_9_and_arrive_after_a_restart() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-kill9");
    let spool = dir.path().join("spool");
    let mut sink = Sink::start();
    sink.stop();
    let env = spool_env(&spool);
    let (mut vigil, err_path) = start_vigil_to_sink(&dir, &sink, &as_strs(&env));
    let pids = steady_workload(Duration::from_secs(2), Duration::from_millis(100));
    let spooled = wait_until(WAIT, || exits_among(spool_segments(&spool).iter().flat_map(|(_, r)| r), &pids).len() == pids.len());
    assert!(spooled, "the records were not all spooled:\n{}", tail(&err_path, 4000));
    vigil.signal(libc::SIGKILL);
    assert!(vigil.stop(libc::SIGKILL, WAIT).is_some(), "vigil did not die");

    sink.restart();
    let dir2 = TempDir::new("vigil-kill9-restart");
    let (mut vigil, err_path) = start_vigil_to_sink(&dir2, &sink, &as_strs(&env));
    let arrived = wait_for_exits(&sink, &pids, Duration::from_secs(60));
    assert!(arrived, "spooled records did not arrive after the restart:\n{}", tail(&err_path, 4000));
    stop_vigil(&mut vigil, &err_path);
    assert_duplicates_are_identical(&sink.records());
    assert!(tail(&err_path, 1 << 20).contains("will be replayed"), "the restart reports the spool");
    assert!(spool_segments(&spool).is_empty(), "the spool was emptied");
}

/// Requests never mix lanes, so a full spool can evict bulk data first:
/// with the collector down, file records (bulk lane) are spooled in
/// `-bulk` segments and process records (critical) in `-critical` ones.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn spooled_requests_keep_to_one_lane() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-lanes-spool");
    let spool = dir.path().join("spool");
    let mut sink = Sink::start();
    sink.stop();
    let env = spool_env(&spool);
    let (mut vigil, err_path) = start_vigil_to_sink(&dir, &sink, &as_strs(&env));
    let target = dir.path().join("written-by-the-test");
    let mut pids = Vec::new();
    for _ in 0..20 {
        std::fs::write(&target, b"x").expect("write the target file");
        pids.push(run_true());
    }
    let target = target.to_string_lossy().into_owned();
    let ours = |r: &LogRecord| str_attr(&r.attributes, "file.path") == Some(target.as_str());
    let spooled = wait_until(WAIT, || {
        let segs = spool_segments(&spool);
        exits_among(segs.iter().flat_map(|(_, r)| r), &pids).len() == pids.len()
            && segs.iter().flat_map(|(_, r)| r).filter(|r| ours(r)).count() >= 20
    });
    assert!(spooled, "the file and exit records were not all spooled:\n{}", tail(&err_path, 4000));
    vigil.signal(libc::SIGKILL);
    assert!(vigil.stop(libc::SIGKILL, WAIT).is_some(), "vigil did not die");
    let bulk_event = |r: &LogRecord| r.event_name.starts_with("vigil.file.") || r.event_name.starts_with("vigil.network.");
    let (mut bulk_files, mut critical_files) = (0, 0);
    for (path, records) in spool_segments(&spool) {
        let name = path.file_name().expect("segment name").to_string_lossy().into_owned();
        if name.ends_with("-bulk.seg") {
            bulk_files += 1;
            assert!(records.iter().all(bulk_event), "{name} holds a critical record");
        } else {
            assert!(name.ends_with("-critical.seg"), "{name}");
            critical_files += 1;
            assert!(!records.iter().any(bulk_event), "{name} holds a bulk record");
        }
    }
    assert!(bulk_files > 0 && critical_files > 0, "segments: {bulk_files} bulk, {critical_files} critical");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn a_corrupt_segment_is_reported_and_skipped() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-corrupt");
    let spool = dir.path().join("spool");
    let mut sink = Sink::start();
    sink.stop();
    let env = spool_env(&spool);
    let (mut vigil, err_path) = start_vigil_to_sink(&dir, &sink, &as_strs(&env));
    // Far apart, so that the records land in several requests (segments).
    let pids = steady_workload(Duration::from_secs(3), Duration::from_millis(300));
    let spooled = wait_until(WAIT, || exits_among(spool_segments(&spool).iter().flat_map(|(_, r)| r), &pids).len() == pids.len());
    assert!(spooled, "the records were not all spooled:\n{}", tail(&err_path, 4000));
    // A clean stop with the collector away keeps the spool.
    stop_vigil(&mut vigil, &err_path);

    let segments = spool_segments(&spool);
    let (bad_path, bad_records) = segments
        .iter()
        .find(|(_, recs)| !exits_among(recs, &pids).is_empty())
        .map(|(p, r)| (p.clone(), r.clone()))
        .expect("a segment with exit records");
    assert!(segments.len() > 2, "several segments: {}", segments.len());
    let bad_pids = exits_among(&bad_records, &pids);
    let mut bytes = std::fs::read(&bad_path).expect("read segment");
    let mid = 48 + (bytes.len() - 48) / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&bad_path, bytes).expect("corrupt the segment");

    sink.restart();
    let dir2 = TempDir::new("vigil-corrupt-restart");
    let (mut vigil, err_path) = start_vigil_to_sink(&dir2, &sink, &as_strs(&env));
    let good: Vec<i64> = pids.iter().filter(|p| !bad_pids.contains(p)).copied().collect();
    let reported = |sink: &Sink| super::loss_records(&sink.records()).into_iter().find(|l| l.error_type == "spool_corrupt");
    let done = wait_for_exits(&sink, &good, Duration::from_secs(60)) && wait_until(WAIT, || reported(&sink).is_some());
    assert!(done, "the other segments or the report did not arrive:\n{}", tail(&err_path, 4000));
    stop_vigil(&mut vigil, &err_path);
    let loss = reported(&sink).expect("spool_corrupt loss record");
    assert_eq!((loss.stage.as_str(), loss.count), ("export", bad_records.len() as i64), "exactly the corrupt segment's records");
    assert!(exits_at(&sink, &pids).is_disjoint(&bad_pids), "the corrupt segment was not replayed");
    assert!(tail(&err_path, 1 << 20).contains("corrupt spool segment"), "the corruption is logged");
    assert!(!bad_path.exists(), "the corrupt segment was removed");
    assert!(spool_segments(&spool).is_empty());
}

/// `VmRSS` or `VmHWM` of `pid`, bytes.
fn vm(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kib * 1024
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn memory_stays_bounded_while_the_collector_is_stalled() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-memory");
    let spool = dir.path().join("spool");
    let sink = Sink::start();
    // The documented bound (docs/delivery.md): the idle footprint plus the
    // queues: pipeline.queue_records raw records of at most
    // (record header + 3 * path_max_bytes + args_max_bytes) bytes, and
    // (8 + 3) export requests of batch_max_bytes.
    const QUEUE_RECORDS: u64 = 4096;
    const BATCH_MAX_BYTES: u64 = 262_144;
    let record_max = 512 + 3 * 4096 + 16_384;
    let queues = QUEUE_RECORDS * record_max + 11 * BATCH_MAX_BYTES;
    let mut env = spool_env(&spool);
    env.push(("VIGIL_PIPELINE__QUEUE_RECORDS", QUEUE_RECORDS.to_string()));
    env.push(("VIGIL_EXPORT__BATCH_MAX_BYTES", BATCH_MAX_BYTES.to_string()));
    let (mut vigil, err_path) = start_vigil_to_sink(&dir, &sink, &as_strs(&env));
    // Settle, then take the idle footprint.
    let warmup = steady_workload(Duration::from_secs(3), Duration::from_millis(20));
    assert!(wait_for_exits(&sink, &warmup, WAIT), "warm-up records did not arrive:\n{}", tail(&err_path, 4000));
    let idle = vm(vigil.pid(), "VmHWM:");

    const STALL: Duration = Duration::from_secs(60);
    sink.stall_for(STALL + Duration::from_secs(30));
    let start = std::time::Instant::now();
    let mut pids = Vec::new();
    let mut max_rss = 0;
    let mut segments_seen = 0;
    while start.elapsed() < STALL {
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            pids.push(run_true());
            std::thread::sleep(Duration::from_millis(20));
        }
        max_rss = max_rss.max(vm(vigil.pid(), "VmRSS:"));
        segments_seen = segments_seen.max(spool_segments(&spool).len());
    }
    let hwm = vm(vigil.pid(), "VmHWM:");
    sink.release();
    let arrived = wait_for_exits(&sink, &pids, Duration::from_secs(90));
    let missing = pids.len() - exits_at(&sink, &pids).len();
    stop_vigil(&mut vigil, &err_path);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "e2e: {} runs in a {STALL:?} stall; idle VmHWM {:.1} MiB, max VmRSS {:.1} MiB, VmHWM {:.1} MiB, bound {:.1} MiB; {segments_seen} segments at most",
        pids.len(),
        mib(idle),
        mib(max_rss),
        mib(hwm),
        mib(idle + queues)
    );
    assert!(segments_seen > 0, "the stalled exports were spooled");
    assert!(hwm <= idle + queues, "VmHWM {:.1} MiB above the bound {:.1} MiB", mib(hwm), mib(idle + queues));
    // Every record of the stall arrives, unless it was dropped at the
    // counted edge: on a machine shared with heavy workloads the reader may
    // outrun the spool's disk writes; such drops must then be reported.
    if !arrived {
        let err = tail(&err_path, 1 << 20);
        let line = err.lines().rev().find(|l| l.contains("stopped: ")).expect("exit summary").to_owned();
        let counter = |name: &str| -> u64 {
            line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok()).expect(name)
        };
        let dropped = counter("queue_full") + counter("kernel_dropped");
        assert!(
            dropped >= missing as u64,
            "{missing} exit records of the stall did not arrive and only {dropped} drops were counted:\n{line}"
        );
        eprintln!("e2e: {missing} exit records dropped under load, counted ({dropped} drops): {line}");
    }
}

#[test]
#[ignore = "needs root and the rotel collector: run by ci/test.sh"]
fn through_rotel_spooled_records_survive_kill_9_and_arrive_when_the_collector_is_back() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-rotel-kill9");
    let spool = dir.path().join("spool");
    let sink = Sink::start();
    let mut rotel = vigil_tests::collector::Rotel::start(dir.path(), &sink.endpoint());
    let endpoint = rotel.grpc_endpoint();
    rotel.stop(); // the collector process is down
    let env = spool_env(&spool);
    let os_env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(v.as_str()))).collect();
    let args = ["--endpoint", endpoint.as_str(), "--protocol", "grpc"];
    let (mut vigil, err_path) = start_vigil(&dir, &args, &os_env);
    let pids = steady_workload(Duration::from_secs(2), Duration::from_millis(100));
    let spooled = wait_until(WAIT, || exits_among(spool_segments(&spool).iter().flat_map(|(_, r)| r), &pids).len() == pids.len());
    assert!(spooled, "the records were not all spooled:\n{}", tail(&err_path, 4000));
    assert!(vigil.stop(libc::SIGKILL, WAIT).is_some(), "vigil did not die");

    let dir2 = TempDir::new("vigil-rotel-kill9-restart");
    let (mut vigil, err_path) = start_vigil(&dir2, &args, &os_env);
    std::thread::sleep(Duration::from_millis(500));
    rotel.restart(); // the collector is back
    let arrived = wait_for_exits(&sink, &pids, Duration::from_secs(60));
    assert!(arrived, "spooled records did not arrive through rotel:\n{}\n{}", tail(&err_path, 4000), rotel.summary("vigil"));
    stop_vigil(&mut vigil, &err_path);
    assert_duplicates_are_identical(&sink.records());
    assert!(spool_segments(&spool).is_empty(), "the spool was emptied");
}
